package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Errors returned by the Store, besides raft's own sentinels
// (raft.ErrCompacted, raft.ErrUnavailable, raft.ErrSnapOutOfDate), which
// are returned unwrapped because raft compares them with ==.
var (
	// ErrCorrupt means the stored raft state is unreadable or breaks an
	// invariant of doc.go: an unknown value version, a malformed key or
	// value, a hole in the log.
	ErrCorrupt = errors.New("raftstore: corrupt raft state")
	// ErrInvalid means a write would break the log's invariants: entries
	// that are not consecutive or leave a gap after the last index, or a
	// compaction past the last index or with the wrong term. Nothing was
	// written. It is a bug in the caller.
	ErrInvalid = errors.New("raftstore: invalid write")
	// ErrBroken means an earlier write failed. A failed write (above all a
	// failed fsync) leaves pebble and the Store's view in doubt, so the
	// Store refuses every later write; the server must stop and restart.
	ErrBroken = errors.New("raftstore: store broken by an earlier failed write")
)

// Store is raft's log and hard state on pebble. It implements
// raft.Storage. Reads are safe from any goroutine; the writes (Save,
// ApplySnapshot, Compact) must come from one goroutine, raft's.
type Store struct {
	db  *pebble.DB
	log *slog.Logger
	// commit is (*pebble.Batch).Commit; tests replace it to inject
	// failures.
	commit func(*pebble.Batch, *pebble.WriteOptions) error

	mu struct {
		sync.Mutex
		// hs is the stored hard state; empty (not nil) if none is stored.
		hs *raftpb.HardState
		// snap is the stored snapshot metadata (index 0 if none); never
		// nil, all fields set. The first log index is snap.Index+1.
		snap *raftpb.SnapshotMetadata
		// last is the last log index; last == snap.Index when the log
		// holds no entries.
		last uint64
		// cache holds a suffix of the log [cache.lo, last], or nothing.
		cache entryCache
		// bootstrapped: some raft state is stored.
		bootstrapped bool
		// broken is set by the first failed write; see ErrBroken.
		broken error
	}
}

var _ raft.Storage = (*Store)(nil)

// Open loads the raft state held in db and returns a Store over it. The
// Store does not own db: the caller closes it, after the last use of the
// Store.
func Open(db *pebble.DB, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{db: db, log: cfg.Logger, commit: (*pebble.Batch).Commit}
	s.mu.cache = newEntryCache(cfg.CacheEntries, cfg.CacheBytes)

	hs := &raftpb.HardState{}
	foundHS, err := s.load(keyHardState, hs)
	if err != nil {
		return nil, err
	}
	snap := &raftpb.SnapshotMetadata{}
	foundSnap, err := s.load(keySnapshot, snap)
	if err != nil {
		return nil, err
	}
	snap = raftpb.EnsureSnapshotMetadata(snap)
	firstKey, lastKey, foundEntries, err := s.entryBounds()
	if err != nil {
		return nil, err
	}

	last := snap.GetIndex()
	if foundEntries {
		if firstKey != snap.GetIndex()+1 {
			return nil, fmt.Errorf("%w: first entry %d does not follow snapshot index %d",
				ErrCorrupt, firstKey, snap.GetIndex())
		}
		last = lastKey
	}
	if !raft.IsEmptyHardState(hs) && (hs.GetCommit() < snap.GetIndex() || hs.GetCommit() > last) {
		return nil, fmt.Errorf("%w: commit index %d outside [snapshot %d, last %d]",
			ErrCorrupt, hs.GetCommit(), snap.GetIndex(), last)
	}

	s.mu.hs = hs
	s.mu.snap = snap
	s.mu.last = last
	s.mu.bootstrapped = foundHS || foundSnap || foundEntries
	s.log.Info("raftstore: opened",
		"first", snap.GetIndex()+1, "last", last,
		"snapshot_index", snap.GetIndex(), "snapshot_term", snap.GetTerm(),
		"term", hs.GetTerm(), "vote", hs.GetVote(), "commit", hs.GetCommit())
	return s, nil
}

// load decodes the value at key into m, reporting whether it was there.
func (s *Store) load(key []byte, m proto.Message) (bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("raftstore: read %x: %w", key, err)
	}
	defer closer.Close()
	return true, decodeValue(key, v, m)
}

// entryBounds returns the smallest and largest stored entry indices.
func (s *Store) entryBounds() (first, last uint64, found bool, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: entryPrefix, UpperBound: entryKeysEnd})
	if err != nil {
		return 0, 0, false, fmt.Errorf("raftstore: %w", err)
	}
	defer it.Close()
	if !it.First() {
		return 0, 0, false, it.Error()
	}
	if first, err = parseEntryKey(it.Key()); err != nil {
		return 0, 0, false, err
	}
	if !it.Last() {
		return 0, 0, false, fmt.Errorf("raftstore: entry iterator lost its last key: %w", it.Error())
	}
	if last, err = parseEntryKey(it.Key()); err != nil {
		return 0, 0, false, err
	}
	return first, last, true, it.Error()
}

// InitialState implements raft.Storage. The ConfState is that of the
// last snapshot (from ApplySnapshot or Compact); the server may override
// it with the one its state machine stored. The results are copies.
func (s *Store) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := proto.CloneOf(s.mu.hs)
	cs := proto.CloneOf(raftpb.EnsureConfState(s.mu.snap.ConfState))
	return hs, cs, nil
}

// Bootstrapped reports whether any raft state (hard state, entries or
// snapshot) is stored, i.e. whether the data directory is not fresh.
func (s *Store) Bootstrapped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.bootstrapped
}

// FirstIndex implements raft.Storage: the index after the last snapshot.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.snap.GetIndex() + 1, nil
}

// LastIndex implements raft.Storage.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.last, nil
}

// Snapshot implements raft.Storage. It returns only the metadata of the
// last snapshot, with empty Data: the server streams the state machine
// itself.
func (s *Store) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &raftpb.Snapshot{Metadata: proto.CloneOf(s.mu.snap)}, nil
}

// Term implements raft.Storage. It answers for i in [FirstIndex()-1,
// LastIndex()]; below that it returns raft.ErrCompacted, above it
// raft.ErrUnavailable.
func (s *Store) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	snap := s.mu.snap
	switch {
	case i < snap.GetIndex():
		s.mu.Unlock()
		return 0, raft.ErrCompacted
	case i == snap.GetIndex():
		s.mu.Unlock()
		return snap.GetTerm(), nil
	case i > s.mu.last:
		s.mu.Unlock()
		return 0, raft.ErrUnavailable
	case s.mu.cache.contains(i):
		t := s.mu.cache.get(i).e.GetTerm()
		s.mu.Unlock()
		return t, nil
	}
	it, err := s.newEntryIterLocked(i, i+1)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	ents, err := readEntries(it, i, i+1, 0)
	if err != nil {
		return 0, err
	}
	return ents[0].GetTerm(), nil
}

// Entries implements raft.Storage: the entries [lo, hi), as many as fit in
// maxSize bytes of encoding but at least one. It returns raft.ErrCompacted
// if lo <= the snapshot index, and raft.ErrUnavailable if hi > LastIndex()+1
// (where MemoryStorage panics: a concurrent reader may race a suffix
// truncation) or the log holds no entries. The caller owns the returned
// slice; the entries in it are shared and must not be mutated.
func (s *Store) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	switch {
	case lo <= s.mu.snap.GetIndex():
		s.mu.Unlock()
		return nil, raft.ErrCompacted
	case hi > s.mu.last+1 || s.mu.last == s.mu.snap.GetIndex():
		s.mu.Unlock()
		return nil, raft.ErrUnavailable
	case lo > hi:
		s.mu.Unlock()
		return nil, fmt.Errorf("raftstore: Entries(%d, %d): lo > hi", lo, hi)
	case lo == hi:
		s.mu.Unlock()
		return nil, nil
	}
	if ents, ok := s.mu.cache.slice(lo, hi, maxSize); ok {
		s.mu.Unlock()
		return ents, nil
	}
	it, err := s.newEntryIterLocked(lo, hi)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return readEntries(it, lo, hi, maxSize)
}

// newEntryIterLocked returns an iterator over the stored entries [lo, hi).
// A pebble iterator is a point-in-time view, and writers hold mu until
// their batch is committed and mu's fields match it, so the iterator sees
// exactly the log mu describes even once mu is released: readers do their
// I/O without holding up raft's writes.
func (s *Store) newEntryIterLocked(lo, hi uint64) (*pebble.Iterator, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(lo), UpperBound: entryKey(hi)})
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	return it, nil
}

// readEntries reads [lo, hi) from it, cut to maxSize like raft's limitSize,
// and closes it. Every index in [lo, hi) must be stored.
func readEntries(it *pebble.Iterator, lo, hi, maxSize uint64) (_ []*raftpb.Entry, err error) {
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("raftstore: %w", cerr)
		}
	}()
	var ents []*raftpb.Entry
	var size uint64
	next, cut := lo, false
	for valid := it.First(); valid && next < hi; valid = it.Next() {
		key := it.Key()
		i, err := parseEntryKey(key)
		if err != nil {
			return nil, err
		}
		if i != next {
			return nil, fmt.Errorf("%w: entry %d missing (found %d)", ErrCorrupt, next, i)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("raftstore: read entry %d: %w", i, err)
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("%w: entry %d: empty value", ErrCorrupt, i)
		}
		// The stored encoding is the version byte and the entry's proto
		// encoding, so this is proto.Size of the decoded entry.
		size += uint64(len(v) - 1)
		if len(ents) > 0 && size > maxSize {
			cut = true
			break
		}
		if ents == nil {
			ents = make([]*raftpb.Entry, 0, min(hi-lo, 256))
		}
		e := &raftpb.Entry{}
		if err := decodeValue(key, v, e); err != nil {
			return nil, err
		}
		if e.GetIndex() != i {
			return nil, fmt.Errorf("%w: entry at key %d has index %d", ErrCorrupt, i, e.GetIndex())
		}
		ents = append(ents, e)
		next++
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("raftstore: read entries [%d, %d): %w", lo, hi, err)
	}
	if !cut && next < hi {
		return nil, fmt.Errorf("%w: entry %d missing", ErrCorrupt, next)
	}
	return ents, nil
}
