package raftstore

// The spirit of raft's storage_test.go (MemoryStorage), run against both
// MemoryStorage and Store: every case checks that they agree.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A variant is one way to build the Store under test, so that every case
// runs against the cache, against pebble alone, and after a reopen.
type variant struct {
	name   string
	cfg    Config
	reopen bool
}

var variants = []variant{
	{name: "cached"},
	{name: "tiny-cache", cfg: Config{CacheEntries: 1}},
	{name: "reopened", reopen: true},
}

// pair is a MemoryStorage and a Store holding the same log.
type pair struct {
	ms *raft.MemoryStorage
	st *Store
}

// newPair builds both storages from ents, whose first element stands for
// the snapshot as in raft's tests (MemoryStorage's dummy entry).
func newPair(t *testing.T, v variant, ents []*raftpb.Entry) *pair {
	t.Helper()
	ms := raft.NewMemoryStorage()
	meta := &raftpb.SnapshotMetadata{Index: new(ents[0].GetIndex()), Term: new(ents[0].GetTerm())}
	must(t, ms.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}))
	must(t, ms.Append(ents[1:]))

	fs := vfs.NewMem()
	db := openDB(t, fs)
	st, err := Open(db, v.cfg)
	must(t, err)
	must(t, st.ApplySnapshot(meta))
	must(t, st.Save(nil, ents[1:], true))
	if v.reopen {
		must(t, db.Close())
		db = openDB(t, fs)
		st, err = Open(db, v.cfg)
		must(t, err)
	}
	t.Cleanup(func() { db.Close() })
	return &pair{ms: ms, st: st}
}

func forVariants(t *testing.T, f func(t *testing.T, v variant)) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { f(t, v) })
	}
}

// check asserts that both storages answer every read alike.
func (p *pair) check(t *testing.T) { p.checkSizes(t, true) }

// checkSizes is check; with allSizes false, Entries is tried with fewer
// maxSize values (those around the total size of a prefix are skipped).
func (p *pair) checkSizes(t *testing.T, allSizes bool) {
	t.Helper()
	mf, _ := p.ms.FirstIndex()
	ml, _ := p.ms.LastIndex()
	sf, err := p.st.FirstIndex()
	must(t, err)
	sl, err := p.st.LastIndex()
	must(t, err)
	if mf != sf || ml != sl {
		t.Fatalf("first, last: MemoryStorage %d, %d; Store %d, %d", mf, ml, sf, sl)
	}
	for i := uint64(0); i <= ml+2; i++ {
		mt, merr := p.ms.Term(i)
		st, serr := p.st.Term(i)
		if mt != st || merr != serr {
			t.Fatalf("Term(%d): MemoryStorage %d, %v; Store %d, %v", i, mt, merr, st, serr)
		}
	}
	var sizes []uint64
	if ml >= mf {
		all, err := p.ms.Entries(mf, ml+1, math.MaxUint64)
		must(t, err)
		var sum uint64
		sizes = append(sizes, 0, 1)
		for k, e := range all {
			sum += uint64(proto.Size(e))
			if allSizes || k == len(all)/2 {
				sizes = append(sizes, sum-1, sum, sum+1)
			}
		}
	}
	sizes = append(sizes, math.MaxUint64)
	for lo := uint64(0); lo <= ml+1; lo++ {
		for hi := lo; hi <= ml+1; hi++ {
			for _, max := range sizes {
				me, merr := p.ms.Entries(lo, hi, max)
				se, serr := p.st.Entries(lo, hi, max)
				if merr != serr || !equalEntries(me, se) {
					t.Fatalf("Entries(%d, %d, %d): MemoryStorage %s, %v; Store %s, %v",
						lo, hi, max, describe(me), merr, describe(se), serr)
				}
			}
		}
	}
	_, mcs, _ := p.ms.InitialState()
	_, scs, err := p.st.InitialState()
	must(t, err)
	if !proto.Equal(mcs, scs) {
		t.Fatalf("ConfState: MemoryStorage %v; Store %v", mcs, scs)
	}
}

func TestTerm(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	tests := []struct {
		i     uint64
		werr  error
		wterm uint64
	}{
		{2, raft.ErrCompacted, 0},
		{3, nil, 3},
		{4, nil, 4},
		{5, nil, 5},
		{6, raft.ErrUnavailable, 0},
	}
	forVariants(t, func(t *testing.T, v variant) {
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.i), func(t *testing.T) {
				p := newPair(t, v, ents)
				for name, s := range map[string]raft.Storage{"MemoryStorage": p.ms, "Store": p.st} {
					term, err := s.Term(tt.i)
					if err != tt.werr || term != tt.wterm {
						t.Errorf("%s.Term(%d) = %d, %v; want %d, %v", name, tt.i, term, err, tt.wterm, tt.werr)
					}
				}
				p.check(t)
			})
		}
	})
}

func TestEntries(t *testing.T) {
	ents := index(3).terms(3, 4, 5, 6)
	size := func(k int) uint64 { return uint64(proto.Size(ents[k])) }
	tests := []struct {
		lo, hi, maxsize uint64
		werr            error
		wentries        []*raftpb.Entry
	}{
		{2, 6, math.MaxUint64, raft.ErrCompacted, nil},
		{3, 4, math.MaxUint64, raft.ErrCompacted, nil},
		{4, 5, math.MaxUint64, nil, index(4).terms(4)},
		{4, 6, math.MaxUint64, nil, index(4).terms(4, 5)},
		{4, 7, math.MaxUint64, nil, index(4).terms(4, 5, 6)},
		// Even if maxsize is zero, the first entry is returned.
		{4, 7, 0, nil, index(4).terms(4)},
		// Limit to 2.
		{4, 7, size(1) + size(2), nil, index(4).terms(4, 5)},
		{4, 7, size(1) + size(2) + size(3)/2, nil, index(4).terms(4, 5)},
		{4, 7, size(1) + size(2) + size(3) - 1, nil, index(4).terms(4, 5)},
		// All.
		{4, 7, size(1) + size(2) + size(3), nil, index(4).terms(4, 5, 6)},
	}
	forVariants(t, func(t *testing.T, v variant) {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%d-%d-%d", tt.lo, tt.hi, tt.maxsize), func(t *testing.T) {
				p := newPair(t, v, ents)
				for name, s := range map[string]raft.Storage{"MemoryStorage": p.ms, "Store": p.st} {
					got, err := s.Entries(tt.lo, tt.hi, tt.maxsize)
					if err != tt.werr || !equalEntries(got, tt.wentries) {
						t.Errorf("%s.Entries = %s, %v; want %s, %v", name, describe(got), err, describe(tt.wentries), tt.werr)
					}
				}
				p.check(t)
			})
		}
	})
}

// TestEntriesBeyondLast: where MemoryStorage panics, the Store answers
// raft.ErrUnavailable, since a reader on another goroutine may race a
// truncation.
func TestEntriesBeyondLast(t *testing.T) {
	forVariants(t, func(t *testing.T, v variant) {
		p := newPair(t, v, index(3).terms(3, 4, 5))
		if _, err := p.st.Entries(4, 7, math.MaxUint64); err != raft.ErrUnavailable {
			t.Fatalf("Entries(4, 7) = %v, want ErrUnavailable", err)
		}
		if _, err := p.st.Entries(5, 4, math.MaxUint64); err == nil {
			t.Fatal("Entries(5, 4) succeeded")
		}
	})
}

func TestLastIndex(t *testing.T) {
	forVariants(t, func(t *testing.T, v variant) {
		p := newPair(t, v, index(3).terms(3, 4, 5))
		if last, _ := p.st.LastIndex(); last != 5 {
			t.Fatalf("LastIndex = %d, want 5", last)
		}
		must(t, p.ms.Append(index(6).terms(5)))
		must(t, p.st.Save(nil, index(6).terms(5), true))
		if last, _ := p.st.LastIndex(); last != 6 {
			t.Fatalf("LastIndex = %d, want 6", last)
		}
		p.check(t)
	})
}

func TestFirstIndex(t *testing.T) {
	forVariants(t, func(t *testing.T, v variant) {
		p := newPair(t, v, index(3).terms(3, 4, 5))
		if first, _ := p.st.FirstIndex(); first != 4 {
			t.Fatalf("FirstIndex = %d, want 4", first)
		}
		must(t, p.ms.Compact(4))
		must(t, p.st.Compact(4, 4, nil))
		if first, _ := p.st.FirstIndex(); first != 5 {
			t.Fatalf("FirstIndex = %d, want 5", first)
		}
		p.check(t)
	})
}

func TestCompact(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	tests := []struct {
		i uint64
		// mserr is MemoryStorage's error; the Store returns nil instead,
		// since its Compact is idempotent.
		mserr  error
		windex uint64 // snapshot index afterwards
		wterm  uint64
		wlen   int // entries left, counting the snapshot as MemoryStorage does
	}{
		{2, raft.ErrCompacted, 3, 3, 3},
		{3, raft.ErrCompacted, 3, 3, 3},
		{4, nil, 4, 4, 2},
		{5, nil, 5, 5, 1},
	}
	forVariants(t, func(t *testing.T, v variant) {
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.i), func(t *testing.T) {
				p := newPair(t, v, ents)
				if err := p.ms.Compact(tt.i); err != tt.mserr {
					t.Fatalf("MemoryStorage.Compact(%d) = %v, want %v", tt.i, err, tt.mserr)
				}
				term, _ := p.ms.Term(max(tt.i, 3))
				if err := p.st.Compact(tt.i, term, nil); err != nil {
					t.Fatalf("Store.Compact(%d) = %v", tt.i, err)
				}
				// Again: idempotent.
				if err := p.st.Compact(tt.i, term, nil); err != nil {
					t.Fatalf("second Store.Compact(%d) = %v", tt.i, err)
				}
				snap, _ := p.st.Snapshot()
				first, _ := p.st.FirstIndex()
				last, _ := p.st.LastIndex()
				if got := snap.GetMetadata().GetIndex(); got != tt.windex || first != tt.windex+1 {
					t.Errorf("snapshot index %d, first %d; want %d, %d", got, first, tt.windex, tt.windex+1)
				}
				if got := snap.GetMetadata().GetTerm(); got != tt.wterm {
					t.Errorf("snapshot term %d, want %d", got, tt.wterm)
				}
				if n := int(last-first) + 2; n != tt.wlen {
					t.Errorf("len %d, want %d", n, tt.wlen)
				}
				p.check(t)
			})
		}
	})
}

func TestCompactInvalid(t *testing.T) {
	forVariants(t, func(t *testing.T, v variant) {
		p := newPair(t, v, index(3).terms(3, 4, 5))
		for _, c := range []struct{ i, term uint64 }{{6, 5}, {4, 5}, {3, 9}} {
			if err := p.st.Compact(c.i, c.term, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("Compact(%d, %d) = %v, want ErrInvalid", c.i, c.term, err)
			}
		}
		// Nothing changed, and the store still works.
		p.check(t)
		must(t, p.st.Save(nil, index(6).terms(6), true))
	})
}

// TestCompactSnapshot is raft's TestStorageCreateSnapshot: Compact with a
// ConfState records what MemoryStorage.CreateSnapshot does (without Data).
func TestCompactSnapshot(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, i := range []uint64{4, 5} {
		forVariants(t, func(t *testing.T, v variant) {
			p := newPair(t, v, ents)
			want, err := p.ms.CreateSnapshot(i, cs, nil)
			must(t, err)
			must(t, p.st.Compact(i, i, cs))
			got, err := p.st.Snapshot()
			must(t, err)
			// The Store sets every optional field (EnsureSnapshot), which
			// MemoryStorage.Snapshot() does too but CreateSnapshot does not.
			want = raftpb.EnsureSnapshot(want)
			if !proto.Equal(got, want) {
				t.Fatalf("Snapshot() = %v, want %v", got, want)
			}
			_, gotCS, _ := p.st.InitialState()
			if !proto.Equal(gotCS, raftpb.EnsureConfState(proto.CloneOf(cs))) {
				t.Fatalf("InitialState ConfState = %v, want %v", gotCS, cs)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	ents := index(3).terms(3, 4, 5)
	tests := []struct {
		entries  []*raftpb.Entry
		wentries []*raftpb.Entry // including the snapshot's dummy entry
	}{
		{index(1).terms(1, 2), index(3).terms(3, 4, 5)},
		{index(3).terms(3, 4, 5), index(3).terms(3, 4, 5)},
		{index(3).terms(3, 6, 6), index(3).terms(3, 6, 6)},
		{index(3).terms(3, 4, 5, 5), index(3).terms(3, 4, 5, 5)},
		// Truncate incoming entries, truncate the existing entries and append.
		{index(2).terms(3, 3, 5), index(3).terms(3, 5)},
		// Truncate the existing entries and append.
		{index(4).terms(5), index(3).terms(3, 5)},
		// Direct append.
		{index(6).terms(5), index(3).terms(3, 4, 5, 5)},
	}
	forVariants(t, func(t *testing.T, v variant) {
		for _, tt := range tests {
			t.Run(describe(tt.entries), func(t *testing.T) {
				p := newPair(t, v, ents)
				must(t, p.ms.Append(tt.entries))
				must(t, p.st.Save(nil, tt.entries, true))
				first, _ := p.st.FirstIndex()
				last, _ := p.st.LastIndex()
				got, err := p.st.Entries(first, last+1, math.MaxUint64)
				must(t, err)
				if !equalEntries(got, tt.wentries[1:]) {
					t.Errorf("entries %s, want %s", describe(got), describe(tt.wentries[1:]))
				}
				p.check(t)
			})
		}
	})
}

func TestAppendInvalid(t *testing.T) {
	forVariants(t, func(t *testing.T, v variant) {
		p := newPair(t, v, index(3).terms(3, 4, 5))
		for _, c := range []struct {
			name string
			hs   *raftpb.HardState
			ents []*raftpb.Entry
		}{
			{"gap after last index", hardState(9, 9, 5), index(7).terms(5)},
			{"not consecutive", hardState(9, 9, 5), append(index(4).terms(4), index(6).terms(4)...)},
			{"commit past new last", hardState(9, 9, 7), index(6).terms(5)},
			{"commit past truncated last", hardState(9, 9, 5), index(4).terms(9)},
			{"commit below snapshot", hardState(9, 9, 2), nil},
		} {
			if err := p.st.Save(c.hs, c.ents, true); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Save(%v, %s) = %v, want ErrInvalid", c.name, c.hs, describe(c.ents), err)
			}
		}
		p.check(t)
		if hs, _, _ := p.st.InitialState(); hs.GetTerm() == 9 {
			t.Error("rejected Save stored its hard state")
		}
	})
}

func TestApplySnapshot(t *testing.T) {
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	tests := []struct {
		name  string
		metas []*raftpb.SnapshotMetadata
		werr  error
	}{
		{"normal case", []*raftpb.SnapshotMetadata{snapMeta(4, 4, 1, 2, 3)}, nil},
		{"snapshot out of date", []*raftpb.SnapshotMetadata{snapMeta(4, 4, 1, 2, 3), snapMeta(3, 3, 1, 2, 3)}, raft.ErrSnapOutOfDate},
		{"same snapshot again", []*raftpb.SnapshotMetadata{snapMeta(4, 4, 1, 2, 3), snapMeta(4, 4, 1, 2, 3)}, raft.ErrSnapOutOfDate},
		{"bootstrap with confState", []*raftpb.SnapshotMetadata{{ConfState: cs}}, nil},
		{"newer snapshot", []*raftpb.SnapshotMetadata{snapMeta(4, 4, 1, 2, 3), snapMeta(9, 5, 1, 2)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := raft.NewMemoryStorage()
			st := newStore(t, Config{})
			var merr, serr error
			for _, m := range tt.metas {
				merr = ms.ApplySnapshot(&raftpb.Snapshot{Data: []byte("data"), Metadata: m})
				serr = st.ApplySnapshot(m)
			}
			if merr != tt.werr || serr != tt.werr {
				t.Fatalf("ApplySnapshot: MemoryStorage %v, Store %v; want %v", merr, serr, tt.werr)
			}
			(&pair{ms: ms, st: st}).check(t)
		})
	}
}

// TestApplySnapshotDropsLog: the log goes, whether the snapshot is ahead
// of it or inside it, and the hard state is raised to cover the snapshot.
func TestApplySnapshotDropsLog(t *testing.T) {
	for _, idx := range []uint64{4, 5, 12} {
		forVariants(t, func(t *testing.T, v variant) {
			p := newPair(t, v, index(3).terms(3, 4, 5, 5))
			must(t, p.st.Save(hardState(5, 1, 4), nil, true))
			meta := snapMeta(idx, 7, 1, 2)
			must(t, p.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}))
			must(t, p.st.ApplySnapshot(meta))
			p.check(t)
			hs, _, _ := p.st.InitialState()
			if hs.GetTerm() != 7 || hs.GetVote() != 0 || hs.GetCommit() != idx {
				t.Fatalf("hard state %v, want term 7 vote 0 commit %d", hs, idx)
			}
			// Appending after the snapshot works.
			ents := index(idx+1).terms(7, 7)
			must(t, p.ms.Append(ents))
			must(t, p.st.Save(hardState(7, 0, idx+2), ents, true))
			p.check(t)
		})
	}
}

// TestRandomOps drives both storages through random appends (with
// overlaps), compactions and snapshots, checking every read after every
// step, under every variant (the reopen variant reopens at each step).
func TestRandomOps(t *testing.T) {
	steps := 100
	if testing.Short() {
		steps = 30
	}
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			forVariants(t, func(t *testing.T, v variant) {
				rng := rand.New(rand.NewPCG(seed, 0))
				ms := raft.NewMemoryStorage()
				fs := vfs.NewMem()
				db := openDB(t, fs)
				defer func() { db.Close() }()
				st, err := Open(db, v.cfg)
				must(t, err)
				for step := range steps {
					first, _ := ms.FirstIndex()
					last, _ := ms.LastIndex()
					var op string
					switch r := rng.IntN(10); {
					case r < 7:
						from := first + uint64(rng.IntN(int(last-first)+2))
						if from > 3 && rng.IntN(4) == 0 {
							from -= 3 // partly compacted
						}
						n := rng.IntN(6)
						ents := make([]*raftpb.Entry, n)
						for k := range ents {
							data := make([]byte, rng.IntN(40))
							for b := range data {
								data[b] = byte(rng.Uint32())
							}
							ents[k] = &raftpb.Entry{Index: new(from + uint64(k)), Term: new(uint64(rng.IntN(5) + 1)), Data: data}
						}
						op = "append " + describe(ents)
						must(t, ms.Append(ents))
						must(t, st.Save(nil, ents, rng.IntN(2) == 0))
					case r < 9:
						i := first - 1 + uint64(rng.IntN(int(last-first)+2))
						if i > 2 && rng.IntN(5) == 0 {
							i -= 2
						}
						op = fmt.Sprintf("compact %d", i)
						// Store.Compact is MemoryStorage's CreateSnapshot
						// and Compact in one.
						if _, err := ms.CreateSnapshot(i, nil, nil); err != nil && err != raft.ErrSnapOutOfDate {
							t.Fatal(err)
						}
						if err := ms.Compact(i); err != nil && err != raft.ErrCompacted {
							t.Fatal(err)
						}
						term, err := st.Term(i)
						if err == raft.ErrCompacted {
							term = 0
						} else {
							must(t, err)
						}
						must(t, st.Compact(i, term, nil))
					default:
						snap, _ := ms.Snapshot()
						i := snap.GetMetadata().GetIndex() + uint64(rng.IntN(int(last-first)+5))
						meta := snapMeta(i, uint64(rng.IntN(5)+1), 1, 2, 3)
						op = fmt.Sprintf("snapshot %d", i)
						merr := ms.ApplySnapshot(&raftpb.Snapshot{Metadata: meta})
						if serr := st.ApplySnapshot(meta); serr != merr {
							t.Fatalf("ApplySnapshot(%d): MemoryStorage %v, Store %v", i, merr, serr)
						}
					}
					if v.reopen {
						must(t, db.Close())
						db = openDB(t, fs)
						st, err = Open(db, v.cfg)
						must(t, err)
					}
					t.Logf("step %d: %s", step, op)
					(&pair{ms: ms, st: st}).checkSizes(t, false)
				}
			})
		})
	}
}
