package znode

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCrashRecovery applies random batches on pebble's crashable in-memory
// FS, syncing now and then, and simulates crashes that keep a random part of
// the unsynced writes. The reopened store must hold exactly the model's
// state at its recorded applied index, which must be at least the last
// synced one; replaying the rest of the log must then reach the current
// state.
func TestCrashRecovery(t *testing.T) {
	seeds, batches := []uint64{11, 12, 13}, 150
	if testing.Short() {
		seeds, batches = seeds[:1], 50
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			db := openDB(t, mem)
			defer db.Close()
			s := openStore(t, db, Config{MaxDataBytes: 16})
			m := newModel("", 16)
			g := newGen(seed, m, "")
			rng := rand.New(rand.NewPCG(seed, 7))
			dumps := map[uint64]string{0: m.dump()}
			var log []Committed
			synced, crashes := uint64(0), 0
			for range batches {
				n := 1 + rng.IntN(30)
				var cs []Committed
				for range n {
					c, e := g.next(func(now int64) []Op { return s.ReapCandidates(now, 0) })
					modelApply(m, c, e)
					cs = append(cs, c)
				}
				if err := s.Apply(cs, nil); err != nil {
					t.Fatal(err)
				}
				log = append(log, cs...)
				last := cs[len(cs)-1].Index
				dumps[last] = m.dump()
				switch rng.IntN(10) {
				case 0: // sync the WAL, as the raft log's fsync would
					if err := db.LogData(nil, pebble.Sync); err != nil {
						t.Fatal(err)
					}
					synced = last
				case 1:
					if err := db.Flush(); err != nil {
						t.Fatal(err)
					}
					synced = last
				}
				if rng.IntN(6) != 0 {
					continue
				}
				crashes++
				crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
				db2 := openDB(t, crashed)
				s2 := openStore(t, db2, Config{MaxDataBytes: 16})
				idx := s2.AppliedIndex()
				want, ok := dumps[idx]
				switch {
				case idx < synced || idx > last:
					t.Fatalf("recovered applied index %d, synced %d, last %d", idx, synced, last)
				case !ok:
					t.Fatalf("recovered applied index %d is not a batch boundary", idx)
				}
				if got := dumpStore(t, s2); got != want {
					t.Fatalf("recovered at %d: %s", idx, diffLines(got, want))
				}
				// Replay the log after idx, as raft would.
				var rest []Committed
				for _, c := range log {
					if c.Index > idx {
						rest = append(rest, c)
					}
				}
				for len(rest) > 0 {
					k := min(len(rest), 1+rng.IntN(40))
					if err := s2.Apply(rest[:k], nil); err != nil {
						t.Fatal(err)
					}
					rest = rest[k:]
				}
				if got := dumpStore(t, s2); got != dumps[last] {
					t.Fatalf("replayed to %d: %s", last, diffLines(got, dumps[last]))
				}
				d1, _ := s.Digest()
				d2, _ := s2.Digest()
				if d1 != d2 {
					t.Fatalf("digest after replay differs")
				}
				s2.Close()
				db2.Close()
			}
			t.Logf("%d entries, %d crashes", len(log), crashes)
		})
	}
}

// hookFS calls hook before every sync of a file it opened for writing.
type hookFS struct {
	vfs.FS
	hook func()
}

type hookFile struct {
	vfs.File
	hook func()
}

func (f *hookFile) Sync() error                  { f.hook(); return f.File.Sync() }
func (f *hookFile) SyncData() error              { f.hook(); return f.File.SyncData() }
func (f *hookFile) SyncTo(n int64) (bool, error) { f.hook(); return f.File.SyncTo(n) }
func (fs *hookFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, hook: fs.hook}, nil
}

func (fs *hookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *hookFS) ReuseForWrite(o, n string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(o, n, c))
}

func (fs *hookFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

// TestRestoreCrash crashes in the middle of Restore (at the sync that would
// make its batch durable, keeping a random part of what was written): the
// reopened store holds either the old state or the new one, never a mix.
func TestRestoreCrash(t *testing.T) {
	// The new state: a store with a few thousand nodes, so that its batch
	// spans many WAL blocks.
	src := newHarness(t, Config{})
	src.createSession(4)
	for i := range 10 {
		var es []Entry
		for j := range 100 {
			es = append(es, Entry{Session: 4, Xid: int64(i*100 + j + 1), Op: mkCreate(fmt.Sprintf("/n%04d", i*100+j), "0123456789abcdefghij", "")})
		}
		src.applyBatch(es)
	}
	var snap bytes.Buffer
	if _, err := src.s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	newState := dumpStore(t, src.s)

	rng := rand.New(rand.NewPCG(1, 2))
	iters := 8
	if testing.Short() {
		iters = 4
	}
	sawOld, sawNew := 0, 0
	for it := range iters {
		mem := vfs.NewCrashableMem()
		var (
			mu      sync.Mutex
			armed   bool
			crashed *vfs.MemFS
		)
		skip := rng.IntN(3) // crash at the first, second or third sync
		fs := &hookFS{FS: mem, hook: func() {
			mu.Lock()
			defer mu.Unlock()
			if !armed || crashed != nil {
				return
			}
			if skip > 0 {
				skip--
				return
			}
			crashed = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		}}
		db := openDB(t, fs)
		s := openStore(t, db, Config{})
		h := &harness{t: t, db: db, s: s, next: 1}
		h.apply(Entry{Op: mkCreate("/old", "x", "")})
		h.apply(Entry{Op: mkCreate("/old/child", "y", "")})
		if err := db.LogData(nil, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		oldState := dumpStore(t, s)
		mu.Lock()
		armed = true
		mu.Unlock()
		if err := s.Restore(bytes.NewReader(snap.Bytes())); err != nil {
			t.Fatal(err)
		}
		if got := dumpStore(t, s); got != newState {
			t.Fatalf("restored: %s", diffLines(got, newState))
		}
		s.Close()
		db.Close()
		mu.Lock()
		c := crashed
		mu.Unlock()
		if c == nil {
			t.Fatalf("iteration %d: no sync during restore", it)
		}
		db2 := openDB(t, c)
		s2 := openStore(t, db2, Config{})
		switch got := dumpStore(t, s2); got {
		case oldState:
			sawOld++
		case newState:
			sawNew++
		default:
			t.Fatalf("iteration %d: after a crash in Restore the state is neither old nor new:\n%s", it, diffLines(got, newState))
		}
		s2.Close()
		db2.Close()
	}
	t.Logf("crashes left the old state %d times, the new %d times", sawOld, sawNew)
}
