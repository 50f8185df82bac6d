package znode

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/coord-dev/coord/internal/wire"
)

// ErrClosed is returned by a Store's methods after Close.
var ErrClosed = errors.New("znode: store closed")

// Store is the replicated state machine on a pebble DB. Apply, Restore and
// TrimHistory serialise on one another; every read method may run
// concurrently with them and with each other.
type Store struct {
	db      *pebble.DB
	cfg     Config
	maxData int
	log     *slog.Logger
	cache   *nodeCache  // nil when disabled
	kids    *childCache // nil when disabled

	// applyMu serialises the writers (Apply, Restore, TrimHistory). It is
	// taken before mu. The fields of mu below marked "applier" are written
	// only with both applyMu and mu held, so a writer may read them holding
	// applyMu alone.
	applyMu sync.Mutex
	// broken is the storage error that stopped Apply: the in-memory tables
	// may be ahead of the DB, so nothing may be applied any more. Guarded by
	// applyMu.
	broken error

	mu struct {
		sync.RWMutex
		closed   bool
		applied  uint64                           // applier
		timeMs   int64                            // applier: last effective time
		conf     []byte                           // applier
		sessions map[wire.SessionID]*sessionEntry // applier
	}
}

// sessionEntry is one live session in the in-memory table.
type sessionEntry struct {
	id        wire.SessionID
	timeoutMs int64
	passHash  []byte
	// ephemerals is the number of ephemeral nodes it owns. Written with mu
	// held in write mode.
	ephemerals int
	// xids are the xids of its cached results, ascending. Touched only by the
	// applier (applyMu); readers never look at it.
	xids []int64
}

func (e *sessionEntry) export() Session {
	return Session{ID: e.id, TimeoutMs: e.timeoutMs, PassHash: slices.Clone(e.passHash), Ephemerals: e.ephemerals}
}

// Open opens the store kept in db, resuming from its applied index. On a DB
// without replicated state it creates the root "/" at applied index 0. The
// store does not own db: Close leaves it open.
func Open(db *pebble.DB, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{db: db, cfg: cfg, maxData: cfg.maxDataBytes(), log: cfg.logger(),
		cache: newNodeCache(cfg.nodeCacheBytes()), kids: newChildCache(cfg.nodeCacheBytes() / 4)}
	if err := s.initIfEmpty(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(); err != nil {
		return nil, err
	}
	s.log.Info("znode store opened", "applied", s.mu.applied, "sessions", len(s.mu.sessions))
	return s, nil
}

// initIfEmpty writes the initial state of an empty store.
func (s *Store) initIfEmpty() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: stateEnd})
	if err != nil {
		return err
	}
	empty := !it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("znode: open: %w", err)
	}
	if !empty {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set([]byte(keyVersion), []byte{stateVersion}, nil)
	_ = b.Set([]byte(keyApplied), be64(nil, 0), nil)
	_ = b.Set([]byte(keyTime), be64(nil, 0), nil)
	_ = b.Set(nodeKey("/"), encodeNode(nil, rootNode()), nil)
	_ = b.DeleteRange(historyStart, historyEnd, nil)
	_ = b.Set([]byte(keyHistFloor), be64(nil, 1), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("znode: initialise: %w", err)
	}
	return nil
}

// loadLocked (re)loads the in-memory tables from the DB.
func (s *Store) loadLocked() error {
	get := func(k string) ([]byte, bool, error) {
		v, c, err := s.db.Get([]byte(k))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		defer c.Close()
		return slices.Clone(v), true, nil
	}
	v, ok, err := get(keyVersion)
	if err != nil {
		return fmt.Errorf("znode: load: %w", err)
	}
	if !ok || len(v) != 1 || v[0] != stateVersion {
		return fmt.Errorf("znode: load: state version %v, want %d", v, stateVersion)
	}
	v, ok, err = get(keyApplied)
	if err != nil || !ok || len(v) != 8 {
		return fmt.Errorf("znode: load: applied index missing or malformed (%v)", err)
	}
	applied := getU64(v)
	v, ok, err = get(keyTime)
	if err != nil || !ok || len(v) != 8 {
		return fmt.Errorf("znode: load: last time missing or malformed (%v)", err)
	}
	timeMs := int64(getU64(v))
	conf, _, err := get(keyConf)
	if err != nil {
		return fmt.Errorf("znode: load: %w", err)
	}
	if conf != nil && len(conf) == 0 {
		conf = []byte{}
	}

	sessions := make(map[wire.SessionID]*sessionEntry)
	err = s.scan([]byte(prefixSession), func(k, v []byte) error {
		if len(k) != len(prefixSession)+8 {
			return fmt.Errorf("session key %q", k)
		}
		id := wire.SessionID(getU64(k[len(prefixSession):]))
		e, err := decodeSession(id, v)
		if err != nil {
			return err
		}
		sessions[id] = e
		return nil
	})
	if err == nil {
		err = s.scan([]byte(prefixEph), func(k, _ []byte) error {
			if len(k) < len(prefixEph)+8 {
				return fmt.Errorf("ephemeral key %q", k)
			}
			id := wire.SessionID(getU64(k[len(prefixEph):]))
			e := sessions[id]
			if e == nil {
				return fmt.Errorf("ephemeral %q of unknown session %v", k[len(prefixEph)+8:], id)
			}
			e.ephemerals++
			return nil
		})
	}
	if err == nil {
		err = s.scan([]byte(prefixResult), func(k, _ []byte) error {
			if len(k) != len(prefixResult)+16 {
				return fmt.Errorf("result key %q", k)
			}
			id := wire.SessionID(getU64(k[len(prefixResult):]))
			e := sessions[id]
			if e == nil {
				return fmt.Errorf("result of unknown session %v", id)
			}
			e.xids = append(e.xids, int64(getU64(k[len(prefixResult)+8:])))
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("znode: load: %w", err)
	}
	s.mu.applied, s.mu.timeMs, s.mu.conf, s.mu.sessions = applied, timeMs, conf, sessions
	return nil
}

// scan calls fn for every key with the prefix, in order. The slices are
// valid only during the call.
func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Close marks the store closed: later calls fail with ErrClosed. It waits for
// a running Apply and does not close the DB, which the server owns.
func (s *Store) Close() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	return nil
}

// AppliedIndex returns the index of the last applied entry (0 for a new
// store).
func (s *Store) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.applied
}

// LastTimeMs returns the effective time of the last applied entry: the
// clock apply runs on (max of the entries' TimeMs so far).
func (s *Store) LastTimeMs() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.timeMs
}

// MaxDataBytes returns the largest data a node may hold.
func (s *Store) MaxDataBytes() int { return s.maxData }

// Conf returns the last membership record stored by Apply, nil if none.
func (s *Store) Conf() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.mu.conf)
}

// Get returns the node at path: an error wrapping wire.ErrBadArguments for
// a bad path, wire.ErrNoNode when there is none. Node.Data is never nil.
func (s *Store) Get(path string) (*Node, error) {
	if err := wire.ValidatePath(path); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getLocked(path)
}

// getLocked is Get for a caller holding mu.RLock, path already valid.
func (s *Store) getLocked(path string) (*Node, error) {
	if s.mu.closed {
		return nil, ErrClosed
	}
	n, err := s.readNode(path)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, wire.ErrNoNode
	}
	return n.export(path), nil
}

// readNode reads the node at a valid path from the committed state; nil when
// there is none. The caller holds mu.RLock or applyMu, so that no commit runs
// (see nodeCache). The node is shared: never modify it.
func (s *Store) readNode(path string) (*node, error) {
	if n, ok := s.cache.get(path); ok {
		return n, nil
	}
	var kb [128]byte
	v, c, err := s.db.Get(appendNodeKey(kb[:0], path))
	if errors.Is(err, pebble.ErrNotFound) {
		s.cache.put(path, nil)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("znode: read %s: %w", path, err)
	}
	n, err := decodeNode(v)
	c.Close()
	if err != nil {
		return nil, fmt.Errorf("znode: node %s: %w", path, err)
	}
	s.cache.put(path, n)
	return n, nil
}

// Children returns the names of path's children greater than after (all
// when after is ""), sorted bytewise, at most limit of them (0: all), with
// the node at path itself. Errors as Get. The names may be shared with the
// store's cache of directory listings: the caller must not modify them.
func (s *Store) Children(path, after string, limit int) ([]string, *Node, error) {
	if err := wire.ValidatePath(path); err != nil {
		return nil, nil, err
	}
	if limit < 0 {
		return nil, nil, fmt.Errorf("%w: negative limit %d", wire.ErrBadArguments, limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.childrenLocked(path, after, limit)
}

// childrenLocked is Children for a caller holding mu.RLock, arguments valid.
func (s *Store) childrenLocked(path, after string, limit int) ([]string, *Node, error) {
	if s.mu.closed {
		return nil, nil, ErrClosed
	}
	n, err := s.readNode(path)
	if err != nil {
		return nil, nil, err
	}
	if n == nil {
		return nil, nil, wire.ErrNoNode
	}
	if all, ok := s.kids.get(path); ok {
		return pageOf(all, after, limit), n.export(path), nil
	}
	if n.stat.NumChildren <= maxCachedChildren && s.kids != nil {
		all, err := s.readChildren(path, n, "", 0)
		if err != nil {
			return nil, nil, err
		}
		s.kids.put(path, all)
		return pageOf(all, after, limit), n.export(path), nil
	}
	names, err := s.readChildren(path, n, after, limit)
	if err != nil {
		return nil, nil, err
	}
	return names, n.export(path), nil
}

// pageOf returns the names of the sorted list all after after (all when
// after is ""), at most limit of them (0: all). The result may share all's
// memory: callers never modify it.
func pageOf(all []string, after string, limit int) []string {
	if after != "" {
		i, found := slices.BinarySearch(all, after)
		if found {
			i++
		}
		all = all[i:]
	}
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return slices.Clip(all)
}

// readChildren reads from pebble the names of the children of the node n
// at path that sort after after, at most limit of them (0: all).
func (s *Store) readChildren(path string, n *node, after string, limit int) ([]string, error) {
	prefix := childPrefix(path)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	start := prefix
	if after != "" {
		start = append(append(slices.Clip(prefix), after...), 0)
	}
	hint := int(n.stat.NumChildren)
	if limit > 0 {
		hint = min(hint, limit)
	}
	// The names are gathered into one buffer and cut from one string: a
	// few allocations instead of one per child.
	buf := make([]byte, 0, 16*hint)
	ends := make([]int, 0, hint)
	for ok := it.SeekGE(start); ok && (limit == 0 || len(ends) < limit); ok = it.Next() {
		buf = append(buf, it.Key()[len(prefix):]...)
		ends = append(ends, len(buf))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("znode: children of %s: %w", path, err)
	}
	all := string(buf)
	names := make([]string, len(ends))
	from := 0
	for i, end := range ends {
		names[i] = all[from:end]
		from = end
	}
	return names, nil
}

// Session returns the live session id.
func (s *Store) Session(id wire.SessionID) (Session, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessionLocked(id)
}

func (s *Store) sessionLocked(id wire.SessionID) (Session, bool) {
	e := s.mu.sessions[id]
	if e == nil {
		return Session{}, false
	}
	return e.export(), true
}

// Sessions returns every live session, sorted by id.
func (s *Store) Sessions() []Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Session, 0, len(s.mu.sessions))
	for _, e := range s.mu.sessions {
		out = append(out, e.export())
	}
	slices.SortFunc(out, func(a, b Session) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Ephemerals returns the paths of the ephemeral nodes session id owns,
// sorted.
func (s *Store) Ephemerals(id wire.SessionID) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	prefix := ephPrefix(id)
	err := s.scan(prefix, func(k, _ []byte) error {
		out = append(out, string(k[len(prefix):]))
		return nil
	})
	if err != nil {
		s.log.Error("listing ephemerals", "session", id, "err", err)
	}
	return out
}
