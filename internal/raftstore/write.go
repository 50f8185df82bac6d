package raftstore

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Save appends entries and stores hs in one pebble batch, committed with
// fsync when sync is true (pass raft's Ready.MustSync).
//
// entries must be consecutive. As with MemoryStorage.Append, those at or
// below the snapshot index are ignored, and any stored entries from
// entries[0].Index on are replaced: the log is truncated there. entries
// must not leave a gap after LastIndex(). hs is stored unless
// raft.IsEmptyHardState(hs); its commit index must lie between the
// snapshot index and the new last index. Save with nothing to store does
// nothing.
//
// When a Ready carries a snapshot, call ApplySnapshot before Save.
//
// The Store keeps the entries (not copies) in its cache: they must not be
// mutated afterwards, as raft's Ready contract already demands.
//
// Any error is fatal to the caller: a failed write is never retried (a
// failed fsync may have lost data the kernel reported as written), and the
// Store refuses all later writes with ErrBroken. Only ErrInvalid, returned
// before anything is written, leaves the Store usable.
func (s *Store) Save(hs *raftpb.HardState, entries []*raftpb.Entry, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.broken != nil {
		return s.mu.broken
	}
	for k := 1; k < len(entries); k++ {
		if entries[k].GetIndex() != entries[k-1].GetIndex()+1 {
			return fmt.Errorf("%w: entries not consecutive: %d after %d",
				ErrInvalid, entries[k].GetIndex(), entries[k-1].GetIndex())
		}
	}
	if len(entries) > 0 {
		first := s.mu.snap.GetIndex() + 1
		from := entries[0].GetIndex()
		switch {
		case from+uint64(len(entries))-1 < first:
			// All compacted.
			entries = nil
		case from < first:
			entries = entries[first-from:]
		}
	}
	if len(entries) > 0 && entries[0].GetIndex() > s.mu.last+1 {
		return fmt.Errorf("%w: entry %d leaves a gap after last index %d",
			ErrInvalid, entries[0].GetIndex(), s.mu.last)
	}
	newLast := s.mu.last
	if len(entries) > 0 {
		newLast = entries[len(entries)-1].GetIndex()
	}
	writeHS := !raft.IsEmptyHardState(hs)
	if writeHS && (hs.GetCommit() < s.mu.snap.GetIndex() || hs.GetCommit() > newLast) {
		// Stored, it would make the Store unopenable (and raft panic).
		return fmt.Errorf("%w: commit index %d outside [snapshot %d, last %d]",
			ErrInvalid, hs.GetCommit(), s.mu.snap.GetIndex(), newLast)
	}
	if len(entries) == 0 && !writeHS {
		return nil
	}

	b := s.db.NewBatch()
	defer b.Close()
	// One scratch buffer for every key and value: Batch.Set copies them.
	var sizes []int
	if len(entries) > 0 {
		sizes = make([]int, len(entries))
		buf := make([]byte, 0, 256)
		for k, e := range entries {
			buf = appendEntryKey(buf[:0], e.GetIndex())
			v, err := appendValue(buf, e)
			if err != nil {
				return fmt.Errorf("%w: marshal entry %d: %w", ErrInvalid, e.GetIndex(), err)
			}
			if err := b.Set(v[:entryKeyLen], v[entryKeyLen:], nil); err != nil {
				return s.failLocked("save", err)
			}
			sizes[k] = len(v) - entryKeyLen - 1
			buf = v
		}
		if newLast < s.mu.last {
			// Truncate the old suffix beyond the new entries.
			if err := b.DeleteRange(entryKey(newLast+1), entryKey(s.mu.last+1), nil); err != nil {
				return s.failLocked("save", err)
			}
		}
	}
	if writeHS {
		v, err := appendValue(nil, hs)
		if err != nil {
			return fmt.Errorf("%w: marshal hard state: %w", ErrInvalid, err)
		}
		if err := b.Set(keyHardState, v, nil); err != nil {
			return s.failLocked("save", err)
		}
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := s.commit(b, opts); err != nil {
		return s.failLocked("save", err)
	}

	// The batch is committed: make mu match it.
	if len(entries) > 0 {
		c := &s.mu.cache
		c.truncateFrom(entries[0].GetIndex())
		if c.n > 0 && c.lo+uint64(c.n) != entries[0].GetIndex() {
			// Only possible if the cache did not end at the old last
			// index, which is a broken invariant; start afresh.
			c.reset()
		}
		for k, e := range entries {
			c.append(e, sizes[k])
		}
		s.mu.last = newLast
	}
	if writeHS {
		s.mu.hs = proto.CloneOf(hs)
	}
	s.mu.bootstrapped = true
	return nil
}

// ApplySnapshot records a snapshot received from the leader: it stores
// meta (index, term, conf state), drops every log entry, and makes the
// first index meta.Index+1, in one synced batch. Data is ignored: the
// server restores the state machine itself.
//
// In the same batch it raises the stored hard state to cover the snapshot
// (commit >= meta.Index; term >= meta.Term, with no vote if the term
// moves), which raft's next HardState would do anyway: otherwise a crash
// before the caller's next Save would leave a commit index below the
// first index, and raft refuses to restart from that.
//
// A snapshot not newer than the stored one returns raft.ErrSnapOutOfDate,
// as MemoryStorage does (index 0 is allowed on a fresh store: a bootstrap
// that only sets the ConfState). Errors other than that one are fatal, as
// for Save.
func (s *Store) ApplySnapshot(meta *raftpb.SnapshotMetadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.broken != nil {
		return s.mu.broken
	}
	cur := s.mu.snap.GetIndex()
	if cur != 0 && cur >= meta.GetIndex() {
		return raft.ErrSnapOutOfDate
	}
	snap := raftpb.EnsureSnapshotMetadata(proto.CloneOf(meta))

	b := s.db.NewBatch()
	defer b.Close()
	if s.mu.last > cur {
		if err := b.DeleteRange(entryPrefix, entryKeysEnd, nil); err != nil {
			return s.failLocked("apply snapshot", err)
		}
	}
	hs, err := s.putSnapshotLocked(b, snap)
	if err != nil {
		return err
	}
	if err := s.commit(b, pebble.Sync); err != nil {
		return s.failLocked("apply snapshot", err)
	}

	s.mu.snap = snap
	s.mu.hs = hs
	s.mu.last = snap.GetIndex()
	s.mu.cache.reset()
	s.mu.bootstrapped = true
	return nil
}

// Compact records that the state machine has applied the log through
// index, whose entry has the given term, with conf state cs (nil: keep the
// stored one), and deletes the entries up to index. Term(index) stays
// answerable from the stored snapshot metadata. It raises the stored hard
// state like ApplySnapshot.
//
// The batch is not synced: a crash may undo a compaction, never tear it,
// and the caller redoes it. Because coord keeps everything in one pebble
// DB, whose WAL is replayed as a prefix, a compaction that survives a
// crash implies every earlier write (the state machine's applied index
// among them) survives too.
//
// Compact is idempotent: an index at or below the snapshot index changes
// nothing and returns nil (MemoryStorage returns raft.ErrCompacted). An
// index above LastIndex(), or a term that differs from the entry's,
// returns ErrInvalid. Other errors are fatal, as for Save.
func (s *Store) Compact(index, term uint64, cs *raftpb.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.broken != nil {
		return s.mu.broken
	}
	cur := s.mu.snap
	if index <= cur.GetIndex() {
		if index == cur.GetIndex() && term != cur.GetTerm() {
			return fmt.Errorf("%w: compact at snapshot index %d with term %d, snapshot term is %d",
				ErrInvalid, index, term, cur.GetTerm())
		}
		return nil
	}
	if index > s.mu.last {
		return fmt.Errorf("%w: compact at %d beyond last index %d", ErrInvalid, index, s.mu.last)
	}
	stored, err := s.termLocked(index)
	if err != nil {
		return err
	}
	if stored != term {
		return fmt.Errorf("%w: compact at %d with term %d, entry has term %d", ErrInvalid, index, term, stored)
	}
	if cs == nil {
		cs = cur.ConfState
	}
	snap := raftpb.EnsureSnapshotMetadata(&raftpb.SnapshotMetadata{
		Index:     new(index),
		Term:      new(term),
		ConfState: proto.CloneOf(cs),
	})

	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(entryKey(cur.GetIndex()+1), entryKey(index+1), nil); err != nil {
		return s.failLocked("compact", err)
	}
	hs, err := s.putSnapshotLocked(b, snap)
	if err != nil {
		return err
	}
	if err := s.commit(b, pebble.NoSync); err != nil {
		return s.failLocked("compact", err)
	}

	s.mu.snap = snap
	s.mu.hs = hs
	s.mu.cache.dropBefore(index + 1)
	return nil
}

// putSnapshotLocked adds snap, and the stored hard state raised to cover
// it, to b. It returns the hard state to keep in mu once b is committed.
func (s *Store) putSnapshotLocked(b *pebble.Batch, snap *raftpb.SnapshotMetadata) (*raftpb.HardState, error) {
	v, err := appendValue(nil, snap)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal snapshot metadata: %w", ErrInvalid, err)
	}
	if err := b.Set(keySnapshot, v, nil); err != nil {
		return nil, s.failLocked("snapshot", err)
	}
	hs, raised := raiseHardState(s.mu.hs, snap.GetIndex(), snap.GetTerm())
	if !raised {
		return hs, nil
	}
	if v, err = appendValue(nil, hs); err != nil {
		return nil, fmt.Errorf("%w: marshal hard state: %w", ErrInvalid, err)
	}
	if err := b.Set(keyHardState, v, nil); err != nil {
		return nil, s.failLocked("snapshot", err)
	}
	return hs, nil
}

// raiseHardState returns hs raised to cover a snapshot at (index, term):
// commit at least index, term at least term (dropping the vote, which was
// for an older term). It reports whether anything changed; hs itself is
// never modified.
func raiseHardState(hs *raftpb.HardState, index, term uint64) (*raftpb.HardState, bool) {
	if hs.GetCommit() >= index && hs.GetTerm() >= term {
		return hs, false
	}
	nh := &raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(hs.GetCommit())}
	if hs.GetTerm() < term {
		nh.Term, nh.Vote = new(term), new(uint64(0))
	}
	if hs.GetCommit() < index {
		nh.Commit = new(index)
	}
	return nh, true
}

// termLocked returns the term of the stored entry at index i, which must
// be in (snapshot index, last].
func (s *Store) termLocked(i uint64) (uint64, error) {
	if s.mu.cache.contains(i) {
		return s.mu.cache.get(i).e.GetTerm(), nil
	}
	it, err := s.newEntryIterLocked(i, i+1)
	if err != nil {
		return 0, err
	}
	ents, err := readEntries(it, i, i+1, 0)
	if err != nil {
		return 0, err
	}
	return ents[0].GetTerm(), nil
}

// failLocked marks the Store broken by a failed write and returns the
// error for the caller.
func (s *Store) failLocked(op string, err error) error {
	s.log.Error("raftstore: write failed; refusing further writes", "op", op, "err", err)
	s.mu.broken = fmt.Errorf("%w: %s: %w", ErrBroken, op, err)
	return fmt.Errorf("raftstore: %s: %w", op, err)
}
