package znode

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/coord-dev/coord/internal/wire"
)

// ReapCandidates returns OpReap ops for nodes the reaper may delete at
// nowMs: TTL nodes without children whose mtime + ttl_ms <= nowMs (soonest
// expired first), then empty containers that once had children (by path). At
// most max ops (max <= 0: all). It reads only the TTL and container indexes,
// which hold exactly the childless TTL nodes and the empty, once-used
// containers, so its cost is proportional to what it returns. Apply
// re-checks each op.
func (s *Store) ReapCandidates(nowMs int64, max int) []Op {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return nil
	}
	var ops []Op
	full := func() bool { return max > 0 && len(ops) >= max }
	stop := errors.New("stop")
	err := s.scan([]byte(prefixTTL), func(k, _ []byte) error {
		if full() || len(k) < len(prefixTTL)+8 || nowMs < 0 || getU64(k[len(prefixTTL):]) > uint64(nowMs) {
			return stop
		}
		ops = append(ops, Op{Kind: OpReap, Path: string(k[len(prefixTTL)+8:]), Mode: wire.ModePersistentTTL})
		return nil
	})
	if err == nil || err == stop {
		err = s.scan([]byte(prefixCont), func(k, _ []byte) error {
			if full() {
				return stop
			}
			ops = append(ops, Op{Kind: OpReap, Path: string(k[len(prefixCont):]), Mode: wire.ModeContainer})
			return nil
		})
	}
	if err != nil && err != stop {
		s.log.Error("listing reap candidates", "err", err)
	}
	return ops
}

// History calls fn for every Change with Zxid > after, in zxid order, from
// the local change history, until fn returns false. It reads a consistent
// view: every change published before the call and none published after it
// began. complete is false when history was trimmed (TrimHistory, Restore)
// past after, so changes after it may be missing: the caller must resync.
func (s *Store) History(after int64, fn func(Change) bool) (complete bool, err error) {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return false, ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: historyStart, UpperBound: historyEnd})
	s.mu.RUnlock()
	return s.history(it, err, after, fn)
}

// history walks an iterator over the history opened under the read lock.
func (s *Store) history(it *pebble.Iterator, err error, after int64, fn func(Change) bool) (complete bool, _ error) {
	if err != nil {
		return false, fmt.Errorf("znode: history: %w", err)
	}
	defer it.Close()
	floor, err := histFloor(it)
	if err != nil {
		return false, err
	}
	start := uint64(1) // no change has zxid 0: index 0 is never applied
	if after > 0 {
		start = uint64(after) + 1
	}
	complete = start >= floor
	for ok := it.SeekGE(historyKey(start)); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefixHistory)+8 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return false, fmt.Errorf("znode: history: %w", err)
		}
		cs, err := decodeChanges(v)
		if err != nil {
			return false, fmt.Errorf("znode: history at %d: %w", getU64(k[1:]), err)
		}
		for _, c := range cs {
			if c.Zxid > after && !fn(c) {
				return complete, nil
			}
		}
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("znode: history: %w", err)
	}
	return complete, nil
}

// histFloor reads the lowest index the history may hold.
func histFloor(it *pebble.Iterator) (uint64, error) {
	if !it.SeekGE(historyStart) || string(it.Key()) != keyHistFloor {
		return 0, errors.Join(fmt.Errorf("znode: history floor missing"), it.Error())
	}
	v, err := it.ValueAndErr()
	if err != nil || len(v) != 8 {
		return 0, fmt.Errorf("znode: history floor malformed (%v)", err)
	}
	return getU64(v), nil
}

// TrimHistory drops the history of indices below below (clamped to the
// applied index + 1); History then reports incomplete for anything before.
func (s *Store) TrimHistory(below uint64) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	below = min(below, s.mu.applied+1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: historyStart, UpperBound: historyEnd})
	if err != nil {
		return err
	}
	floor, err := histFloor(it)
	it.Close()
	if err != nil {
		return err
	}
	if below <= floor {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(historyKey(0), historyKey(below), nil)
	_ = b.Set([]byte(keyHistFloor), be64(nil, below), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("znode: trim history: %w", err)
	}
	return nil
}
