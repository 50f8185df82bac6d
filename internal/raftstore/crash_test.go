package raftstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// TestCrash runs random writes on pebble's crashable in-memory FS and, after
// each, clones the FS as a crash would leave it: everything synced, plus a
// random part of what was not. The Store reopened on every clone must hold
// exactly the state after some write k, with k no earlier than the last
// synced write (Save with sync, ApplySnapshot): synced writes survive, and
// what survives is a prefix.
func TestCrash(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { crashRun(t, seed) })
	}
}

func crashRun(t *testing.T, seed uint64) {
	const ops = 40
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	db := openDB(t, fs)
	defer db.Close()
	s, err := Open(db, Config{})
	must(t, err)

	type crash struct {
		fs         *vfs.MemFS
		op         int // writes done before the crash
		lastSynced int // the last of them that synced
		pct        int
	}
	states := []state{dump(t, s)} // states[k]: after k writes
	var crashes []crash
	lastSynced, term := 0, uint64(1)
	for op := 1; op <= ops; op++ {
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		hs, _, _ := s.InitialState()
		synced := false
		switch r := rng.IntN(10); {
		case r < 7:
			// Mostly appends, sometimes overwriting an uncommitted suffix
			// with a new term, as a new leader would.
			from := last + 1
			if last > hs.GetCommit() && rng.IntN(3) == 0 {
				from = hs.GetCommit() + 1 + uint64(rng.IntN(int(last-hs.GetCommit())))
				term++
			}
			ents := make([]*raftpb.Entry, 1+rng.IntN(8))
			for k := range ents {
				ents[k] = &raftpb.Entry{Index: new(from + uint64(k)), Term: new(term), Data: make([]byte, rng.IntN(300))}
			}
			newLast := from + uint64(len(ents)) - 1
			commit := hs.GetCommit() + uint64(rng.IntN(int(newLast-hs.GetCommit())+1))
			synced = rng.IntN(2) == 0
			must(t, s.Save(hardState(term, 1, commit), ents, synced))
		case r < 9:
			if hs.GetCommit() < first {
				break // nothing applied to compact: a no-op write
			}
			i := first + uint64(rng.IntN(int(hs.GetCommit()-first)+1))
			it, err := s.Term(i)
			must(t, err)
			must(t, s.Compact(i, it, &raftpb.ConfState{Voters: []uint64{1, 2, 3}}))
		default:
			term++
			must(t, s.ApplySnapshot(snapMeta(max(last, first)+uint64(rng.IntN(5)), term, 1, 2, 3)))
			synced = true
		}
		if synced {
			lastSynced = op
		}
		states = append(states, dump(t, s))
		pct := []int{0, 30, 70, 100}[rng.IntN(4)]
		crashes = append(crashes, crash{
			fs:         fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng}),
			op:         op,
			lastSynced: lastSynced,
			pct:        pct,
		})
	}

	for _, c := range crashes {
		cdb := openDB(t, c.fs)
		cs, err := Open(cdb, Config{})
		if err != nil {
			cdb.Close()
			t.Fatalf("crash after write %d (%d%% unsynced kept): Open: %v", c.op, c.pct, err)
		}
		got := dump(t, cs)
		must(t, cdb.Close())
		found := -1
		for k := c.op; k >= c.lastSynced; k-- {
			if states[k] == got {
				found = k
				break
			}
		}
		if found < 0 {
			t.Fatalf("crash after write %d (last synced %d, %d%% unsynced kept): state\n%+v\nis not the state after any write in [%d, %d]",
				c.op, c.lastSynced, c.pct, got, c.lastSynced, c.op)
		}
	}
}
