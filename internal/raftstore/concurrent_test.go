package raftstore

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// TestConcurrentReaders races readers against a writer that appends,
// truncates suffixes (with a higher term, as a new leader does), compacts
// and installs snapshots. Every answer must be a consecutive run of
// entries starting where asked, with non-decreasing terms, or one of
// raft's sentinels.
func TestConcurrentReaders(t *testing.T) {
	for _, cfg := range []Config{{}, {CacheEntries: 8}} {
		s := newStore(t, cfg)
		var stop atomic.Bool
		var reads atomic.Int64
		var wg sync.WaitGroup
		for r := range 3 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 7))
				for !stop.Load() {
					first, _ := s.FirstIndex()
					last, _ := s.LastIndex()
					lo := max(first+uint64(rng.IntN(20)), 5) - 5
					hi := lo + uint64(rng.IntN(40))
					ents, err := s.Entries(lo, hi, uint64(rng.IntN(4000)))
					reads.Add(1)
					switch {
					case err == raft.ErrCompacted || err == raft.ErrUnavailable:
					case err != nil:
						t.Errorf("Entries(%d, %d): %v", lo, hi, err)
						return
					case lo < hi && len(ents) == 0:
						t.Errorf("Entries(%d, %d): nothing", lo, hi)
						return
					default:
						for k, e := range ents {
							if e.GetIndex() != lo+uint64(k) || (k > 0 && e.GetTerm() < ents[k-1].GetTerm()) {
								t.Errorf("Entries(%d, %d)[%d] = %d/%d after %s", lo, hi, k, e.GetIndex(), e.GetTerm(), describe(ents[:k]))
								return
							}
						}
					}
					if _, err := s.Term(last); err != nil && err != raft.ErrCompacted && err != raft.ErrUnavailable {
						t.Errorf("Term(%d): %v", last, err)
						return
					}
				}
			})
		}

		rng := rand.New(rand.NewPCG(42, 0))
		term := uint64(1)
		for range 1500 {
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			switch r := rng.IntN(20); {
			case r < 16:
				from := last + 1
				if last >= first && rng.IntN(4) == 0 {
					from = first + uint64(rng.IntN(int(last-first+1)))
					term++
				}
				ents := make([]*raftpb.Entry, 1+rng.IntN(10))
				for k := range ents {
					ents[k] = &raftpb.Entry{Index: new(from + uint64(k)), Term: new(term), Data: make([]byte, rng.IntN(200))}
				}
				must(t, s.Save(hardState(term, 1, first-1), ents, false))
			case r < 19:
				if last >= first {
					i := first + uint64(rng.IntN(int(last-first+1)))
					it, err := s.Term(i)
					must(t, err)
					must(t, s.Compact(i, it, nil))
				}
			default:
				term++
				must(t, s.ApplySnapshot(snapMeta(max(last, first)+uint64(rng.IntN(3)), term, 1)))
			}
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("config %+v: %d concurrent reads", cfg, reads.Load())
	}
}
