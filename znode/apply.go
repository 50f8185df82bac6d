package znode

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/coord-dev/coord/internal/wire"
)

// Apply applies committed entries in order, in one pebble batch committed
// without fsync (the raft log replays it) together with the new applied
// index, effective time and, when an entry carries one, Conf: after a crash
// the state is exactly the state at some applied index.
//
// Entries with Index <= AppliedIndex() are skipped and yield no Outcome;
// every other one yields one, in order. Indices must increase. An entry whose
// Data does not decode yields an Outcome with Entry nil and Result.Err
// MarshallingError; empty Data (raft's empty entries, conf changes) yields an
// empty Outcome.
//
// publish, if non-nil, is called with the outcomes after the batch committed
// and before any reader can observe the new state: Apply holds the lock
// readers take, in write mode, across commit and publish. publish must not
// call Store methods other than Allowed and MaxDataBytes: the others take
// that lock.
//
// Apply returns an error only for misuse (decreasing indices, a closed
// store), which changes nothing, or for a storage failure, after which the
// store refuses every further Apply: the caller must treat it as fatal.
func (s *Store) Apply(entries []Committed, publish func([]Outcome)) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("znode: store stopped by an earlier storage failure: %w", s.broken)
	}
	if s.mu.closed {
		return ErrClosed
	}
	applied := s.mu.applied
	last, n := applied, 0
	for _, c := range entries {
		if c.Index <= applied {
			continue
		}
		if c.Index <= last {
			return fmt.Errorf("znode: apply: index %d after %d: indices must increase", c.Index, last)
		}
		last = c.Index
		n++
	}
	if n == 0 {
		return nil
	}

	a := newApplier(s)
	defer a.b.Close()
	defer a.rd.close()
	outs := make([]Outcome, 0, n)
	conf, confSet := []byte(nil), false
	for _, c := range entries {
		if c.Index <= applied {
			continue
		}
		out := Outcome{Index: c.Index}
		if len(c.Data) > 0 {
			e, err := DecodeEntry(c.Data)
			if err != nil {
				s.log.Warn("undecodable entry", "index", c.Index, "err", err)
				out.Result.Err = wire.MarshallingError
			} else {
				out.Entry = e
				if err := a.apply(c.Index, e, &out); err != nil {
					s.broken = err
					return err
				}
			}
		}
		if c.Conf != nil {
			conf, confSet = c.Conf, true
		}
		if len(out.Changes) > 0 {
			a.buf = encodeChanges(a.buf[:0], out.Changes)
			a.kbuf = be64(append(a.kbuf[:0], prefixHistory...), c.Index)
			_ = a.b.Set(a.kbuf, a.buf, nil)
		}
		outs = append(outs, out)
	}
	a.flush()
	_ = a.b.Set([]byte(keyApplied), be64(nil, last), nil)
	_ = a.b.Set([]byte(keyTime), be64(nil, uint64(a.timeMs)), nil)
	if confSet {
		_ = a.b.Set([]byte(keyConf), conf, nil)
		conf = slices.Clone(conf)
		if conf == nil {
			conf = []byte{}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := a.b.Commit(pebble.NoSync); err != nil {
		s.broken = fmt.Errorf("znode: apply: commit: %w", err)
		return s.broken
	}
	for _, p := range a.written {
		n := a.t.nodes[p]
		s.cache.put(p, n)
		s.kids.written(p, n != nil)
	}
	s.mu.applied, s.mu.timeMs = last, a.timeMs
	if confSet {
		s.mu.conf = conf
	}
	a.publishSessionsLocked()
	if publish != nil {
		publish(outs)
	}
	return nil
}

// applier applies the entries of one Apply call into one batch.
type applier struct {
	s      *Store
	rd     *dbReader
	b      *pebble.Batch
	t      *txn  // the batch's node writes
	timeMs int64 // effective time
	// sess holds the sessions created (non-nil) or closed (nil) in this
	// batch; the committed table is s.mu.sessions.
	sess map[wire.SessionID]*sessionEntry
	// results holds the results cached in this batch.
	results map[resultRef]Result
	written []string // the paths in t.nodes, sorted (by flush)
	buf     []byte   // scratch for values
	kbuf    []byte   // scratch for keys
}

type resultRef struct {
	id  wire.SessionID
	xid int64
}

func newApplier(s *Store) *applier {
	rd := &dbReader{s: s}
	return &applier{
		s:       s,
		rd:      rd,
		b:       s.db.NewBatch(),
		t:       newTxn(s, rd, nil),
		timeMs:  s.mu.timeMs,
		sess:    make(map[wire.SessionID]*sessionEntry),
		results: make(map[resultRef]Result),
	}
}

// session returns the live session id as of the entries applied so far.
func (a *applier) session(id wire.SessionID) *sessionEntry {
	if e, ok := a.sess[id]; ok {
		return e
	}
	return a.s.mu.sessions[id]
}

// publishSessionsLocked makes the batch's session changes visible. The
// updates touch distinct keys, so their order does not matter.
func (a *applier) publishSessionsLocked() {
	for id, e := range a.sess {
		if e == nil {
			delete(a.s.mu.sessions, id)
		} else {
			a.s.mu.sessions[id] = e
		}
	}
	for id, d := range a.t.eph {
		if e := a.s.mu.sessions[id]; e != nil {
			e.ephemerals += d
		}
	}
}

// flush writes the batch's node and index writes into the batch, in key
// order.
func (a *applier) flush() {
	a.written = slices.Sorted(maps.Keys(a.t.nodes))
	for _, p := range a.written {
		a.kbuf = appendNodeKey(a.kbuf[:0], p)
		if n := a.t.nodes[p]; n == nil {
			_ = a.b.Delete(a.kbuf, nil)
		} else {
			a.buf = encodeNode(a.buf[:0], n)
			_ = a.b.Set(a.kbuf, a.buf, nil)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a.t.idx)) {
		if a.t.idx[k] {
			_ = a.b.Set([]byte(k), nil, nil)
		} else {
			_ = a.b.Delete([]byte(k), nil)
		}
	}
}

// isWrite reports whether results of kind are cached for exactly-once.
func isWrite(k OpKind) bool {
	switch k {
	case OpCreate, OpDelete, OpSet, OpSetACL, OpMulti:
		return true
	}
	return false
}

// apply applies one decoded entry at index into out. Errors are storage
// failures only.
func (a *applier) apply(index uint64, e *Entry, out *Outcome) error {
	a.timeMs = max(a.timeMs, e.TimeMs)
	zxid := int64(index)
	op := &e.Op
	var sess *sessionEntry
	if e.Session != 0 && op.Kind != OpCreateSession {
		if sess = a.session(e.Session); sess == nil {
			out.Result = Result{Kind: op.Kind, Err: wire.SessionExpired}
			return nil
		}
	}
	cache := sess != nil && e.Xid > 0 && isWrite(op.Kind)
	if cache {
		if _, found := slices.BinarySearch(sess.xids, e.Xid); found {
			r, err := a.cachedResult(sess.id, e.Xid)
			if err != nil {
				return err
			}
			out.Result, out.Duplicate = r, true
			return nil
		}
		// A session's xids increase. A write older than one already applied
		// arrived out of order (it was lost with a leader and proposed again
		// after later writes of the session), or its cached result was
		// evicted: applying it now would break the session's FIFO order or
		// apply it twice, so it is refused (and the refusal cached, so a
		// resend gets the same answer).
		if n := len(sess.xids); n > 0 && e.Xid < sess.xids[n-1] {
			out.Result = Result{Kind: op.Kind, Err: wire.RuntimeInconsistency}
			a.cache(sess, e.Xid, &out.Result)
			return nil
		}
	}
	var err error
	switch op.Kind {
	case OpCreate:
		out.Result, out.Changes, err = a.create(a.t, e, op, zxid, nil)
	case OpDelete:
		out.Result, out.Changes, err = a.delete(a.t, e, op, zxid, nil)
	case OpSet:
		out.Result, out.Changes, err = a.set(a.t, e, op, zxid, nil)
	case OpSetACL:
		out.Result, err = a.setACL(a.t, e, op)
	case OpMulti:
		out.Result, out.Changes, err = a.multi(e, op, zxid)
	case OpCreateSession:
		out.Result = a.createSession(op)
	case OpCloseSession:
		err = a.closeSession(e, op, zxid, out)
	case OpReap:
		out.Result, out.Changes, err = a.reap(e, op, zxid)
	case OpNoop:
		out.Result = Result{Kind: OpNoop}
	default: // OpCheck outside a multi, unknown kinds
		out.Result = Result{Kind: op.Kind, Err: wire.BadArguments}
	}
	if err != nil {
		return err
	}
	if cache {
		a.cache(sess, e.Xid, &out.Result)
	}
	return nil
}

// cache stores r as the result of (sess, xid), evicting the lowest xid
// beyond ResultsPerSession.
func (a *applier) cache(sess *sessionEntry, xid int64, r *Result) {
	a.kbuf = appendResultKey(a.kbuf[:0], sess.id, xid)
	a.buf = encodeResult(a.buf[:0], r)
	_ = a.b.Set(a.kbuf, a.buf, nil)
	a.results[resultRef{sess.id, xid}] = *r
	i, _ := slices.BinarySearch(sess.xids, xid)
	sess.xids = slices.Insert(sess.xids, i, xid)
	if len(sess.xids) > ResultsPerSession {
		old := sess.xids[0]
		a.kbuf = appendResultKey(a.kbuf[:0], sess.id, old)
		_ = a.b.Delete(a.kbuf, nil)
		delete(a.results, resultRef{sess.id, old})
		// Reslicing drops the front in O(1); append reallocates now and
		// then, which keeps the total copying linear.
		sess.xids = sess.xids[1:]
	}
}

// cachedResult returns a copy of the cached result of (id, xid).
func (a *applier) cachedResult(id wire.SessionID, xid int64) (Result, error) {
	var v []byte
	if r, ok := a.results[resultRef{id, xid}]; ok {
		v = encodeResult(nil, &r) // a deep copy, as from the DB
	} else {
		val, c, err := a.s.db.Get(resultKey(id, xid))
		if err != nil {
			return Result{}, fmt.Errorf("znode: cached result %v/%d: %w", id, xid, err)
		}
		v = slices.Clone(val)
		c.Close()
	}
	r, err := decodeResult(v)
	if err != nil {
		return Result{}, fmt.Errorf("znode: cached result %v/%d: %w", id, xid, err)
	}
	return r, nil
}

// txn is a set of pending node writes layered over the committed state: the
// batch's (parent nil), or one multi's (parent the batch's), which is merged
// into its parent when the multi succeeds and dropped when it fails.
type txn struct {
	s      *Store
	rd     *dbReader
	parent *txn
	nodes  map[string]*node       // path → node; nil: deleted
	idx    map[string]bool        // derived index key → present
	eph    map[wire.SessionID]int // change of each session's ephemeral count
}

func newTxn(s *Store, rd *dbReader, parent *txn) *txn {
	return &txn{
		s:      s,
		rd:     rd,
		parent: parent,
		nodes:  make(map[string]*node),
		idx:    make(map[string]bool),
		eph:    make(map[wire.SessionID]int),
	}
}

// get returns the node at a valid path as of the writes so far; nil if none.
func (t *txn) get(path string) (*node, error) {
	for x := t; x != nil; x = x.parent {
		if n, ok := x.nodes[path]; ok {
			return n, nil
		}
	}
	return t.rd.node(path)
}

// dbReader reads committed nodes for one Apply call through the node cache
// and one pebble iterator, which is cheaper per lookup than DB.Get (that
// builds an iterator stack per call). The committed state cannot change
// while the applier builds its batch, so the iterator's view stays current.
type dbReader struct {
	s  *Store
	it *pebble.Iterator
	kb []byte
}

func (r *dbReader) node(path string) (*node, error) {
	if n, ok := r.s.cache.get(path); ok {
		return n, nil
	}
	if r.it == nil {
		it, err := r.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixNode), UpperBound: prefixEnd([]byte(prefixNode))})
		if err != nil {
			return nil, fmt.Errorf("znode: read %s: %w", path, err)
		}
		r.it = it
	}
	r.kb = appendNodeKey(r.kb[:0], path)
	if !r.it.SeekPrefixGE(r.kb) || !bytes.Equal(r.it.Key(), r.kb) {
		if err := r.it.Error(); err != nil {
			return nil, fmt.Errorf("znode: read %s: %w", path, err)
		}
		return nil, nil
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("znode: read %s: %w", path, err)
	}
	n, err := decodeNode(v)
	if err != nil {
		return nil, fmt.Errorf("znode: node %s: %w", path, err)
	}
	r.s.cache.put(path, n)
	return n, nil
}

func (r *dbReader) close() {
	if r.it != nil {
		r.it.Close()
		r.it = nil
	}
}

// put replaces old, the node get returned for path (nil: none), by n (nil:
// delete), keeping the derived index keys in step.
func (t *txn) put(path string, old, n *node) {
	t.nodes[path] = n
	var ob, nb [3][]byte
	oldKeys := old.indexKeys(ob[:0], path)
	newKeys := n.indexKeys(nb[:0], path)
	for _, k := range oldKeys {
		if !slices.ContainsFunc(newKeys, func(x []byte) bool { return string(x) == string(k) }) {
			t.setIndex(k, false)
		}
	}
	for _, k := range newKeys {
		if !slices.ContainsFunc(oldKeys, func(x []byte) bool { return string(x) == string(k) }) {
			t.setIndex(k, true)
		}
	}
}

func (t *txn) setIndex(k []byte, present bool) {
	t.idx[string(k)] = present
	if strings.HasPrefix(string(k), prefixEph) {
		id := wire.SessionID(getU64(k[len(prefixEph):]))
		if present {
			t.eph[id]++
		} else {
			t.eph[id]--
		}
	}
}

// merge folds a child txn's writes into t.
func (t *txn) merge(c *txn) {
	maps.Copy(t.nodes, c.nodes)
	maps.Copy(t.idx, c.idx)
	for id, d := range c.eph {
		t.eph[id] += d
	}
}

// ephemeralsOf returns the paths of the ephemerals session id owns as of
// the writes so far (t must be the batch's txn), sorted.
func (a *applier) ephemeralsOf(id wire.SessionID) ([]string, error) {
	prefix := ephPrefix(id)
	set := make(map[string]bool)
	err := a.s.scan(prefix, func(k, _ []byte) error {
		set[string(k[len(prefix):])] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("znode: ephemerals of %v: %w", id, err)
	}
	for k, present := range a.t.idx {
		if p, ok := strings.CutPrefix(k, string(prefix)); ok {
			if present {
				set[p] = true
			} else {
				delete(set, p)
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

var errBrokenTree = errors.New("znode: broken invariant")
