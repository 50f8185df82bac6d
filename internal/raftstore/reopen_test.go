package raftstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// reopener owns an in-memory DB that tests close and reopen.
type reopener struct {
	t  *testing.T
	fs vfs.FS
	db *pebble.DB
	s  *Store
}

func newReopener(t *testing.T) *reopener {
	r := &reopener{t: t, fs: vfs.NewMem()}
	r.open()
	t.Cleanup(func() { r.db.Close() })
	return r
}

func (r *reopener) open() {
	r.t.Helper()
	r.db = openDB(r.t, r.fs)
	s, err := Open(r.db, Config{})
	must(r.t, err)
	r.s = s
}

// reopen closes and reopens the DB and checks the Store came back as it was.
func (r *reopener) reopen() {
	r.t.Helper()
	before := dump(r.t, r.s)
	must(r.t, r.db.Close())
	r.open()
	if after := dump(r.t, r.s); after != before {
		r.t.Fatalf("after reopen\n%+v\nwant\n%+v", after, before)
	}
}

func TestReopen(t *testing.T) {
	r := newReopener(t)
	if r.s.Bootstrapped() {
		t.Fatal("fresh store is bootstrapped")
	}
	r.reopen()
	if r.s.Bootstrapped() {
		t.Fatal("fresh store is bootstrapped after reopen")
	}

	must(t, r.s.Save(hardState(1, 1, 0), index(1).terms(1, 1, 1), true))
	if !r.s.Bootstrapped() {
		t.Fatal("not bootstrapped after Save")
	}
	r.reopen()
	must(t, r.s.Save(hardState(2, 1, 3), index(4).terms(2, 2, 2, 2, 2), true))
	r.reopen()
	// Truncate the suffix.
	must(t, r.s.Save(hardState(3, 2, 5), index(6).terms(3), true))
	r.reopen()
	if last, _ := r.s.LastIndex(); last != 6 {
		t.Fatalf("last %d after truncation, want 6", last)
	}
	must(t, r.s.Compact(4, 2, &raftpb.ConfState{Voters: []uint64{1, 2}}))
	r.reopen()
	if first, _ := r.s.FirstIndex(); first != 5 {
		t.Fatalf("first %d after compaction, want 5", first)
	}
	if term, err := r.s.Term(4); err != nil || term != 2 {
		t.Fatalf("Term(4) = %d, %v after compaction", term, err)
	}
	if _, cs, _ := r.s.InitialState(); len(cs.GetVoters()) != 2 {
		t.Fatalf("ConfState %v after compaction", cs)
	}
	must(t, r.s.ApplySnapshot(snapMeta(20, 4, 1, 2, 3)))
	r.reopen()
	must(t, r.s.Save(hardState(4, 0, 21), index(21).terms(4, 4), true))
	r.reopen()
	got := dump(t, r.s)
	want := state{
		hs: "term=4 vote=0 commit=21", cs: "[1 2 3] []", snap: "20/4",
		first: 21, last: 22, entries: "[21/4 22/4]", bootstrapped: true,
	}
	if got != want {
		t.Fatalf("final state\n%+v\nwant\n%+v", got, want)
	}
}

// TestOwnership: the Store never touches keys outside 'r', even when it
// deletes the whole log.
func TestOwnership(t *testing.T) {
	r := newReopener(t)
	foreign := map[string]string{
		"h":             "state machine",
		"hzzz":          "state machine",
		"z":             "state machine",
		"z\x00":         "state machine",
		"q\xff\xff":     "just below",
		"s":             "just above",
		"re":            "", // must not exist: would shadow the prefix
		"r\xff\xff\xff": "",
	}
	for k, v := range foreign {
		if v != "" {
			must(t, r.db.Set([]byte(k), []byte(v), pebble.Sync))
		}
	}
	must(t, r.s.Save(hardState(1, 1, 3), index(1).terms(1, 1, 1, 1), true))
	must(t, r.s.Save(hardState(1, 1, 3), index(3).terms(1), false))
	must(t, r.s.Compact(2, 1, nil))
	must(t, r.s.ApplySnapshot(snapMeta(10, 2, 1)))
	must(t, r.s.Save(hardState(2, 1, 11), index(11).terms(2), true))
	r.reopen()
	for k, v := range foreign {
		got, closer, err := r.db.Get([]byte(k))
		if v == "" {
			if !errors.Is(err, pebble.ErrNotFound) {
				t.Errorf("key %q exists", k)
			}
			continue
		}
		must(t, err)
		if !bytes.Equal(got, []byte(v)) {
			t.Errorf("key %q = %q, want %q", k, got, v)
		}
		closer.Close()
	}
}

func TestOpenRejectsCorrupt(t *testing.T) {
	hs, err := appendValue(nil, hardState(1, 1, 9))
	must(t, err)
	entry := func(i uint64) []byte {
		v, err := appendValue(nil, &raftpb.Entry{Index: new(i), Term: new(uint64(1))})
		must(t, err)
		return v
	}
	snap, err := appendValue(nil, snapMeta(5, 1))
	must(t, err)
	tests := map[string]map[string][]byte{
		"hole at start":     {string(entryKey(2)): entry(2)},
		"entry in snapshot": {string(keySnapshot): snap, string(entryKey(5)): entry(5), string(entryKey(6)): entry(6)},
		"commit past last":  {string(keyHardState): hs, string(entryKey(1)): entry(1)},
		"commit below snap": {string(keySnapshot): snap, string(keyHardState): func() []byte { v, _ := appendValue(nil, hardState(1, 1, 3)); return v }()},
		"bad version":       {string(keyHardState): append([]byte{9}, hs[1:]...)},
		"bad entry key":     {"re\x01": entry(1)},
	}
	for name, kvs := range tests {
		t.Run(name, func(t *testing.T) {
			db := openDB(t, vfs.NewMem())
			defer db.Close()
			for k, v := range kvs {
				must(t, db.Set([]byte(k), v, pebble.Sync))
			}
			if _, err := Open(db, Config{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestCorruptEntryRead: a stored entry that does not decode, or whose index
// disagrees with its key, is reported as ErrCorrupt, not served.
func TestCorruptEntryRead(t *testing.T) {
	r := newReopener(t)
	must(t, r.s.Save(hardState(1, 1, 3), index(1).terms(1, 1, 1), true))
	wrong, err := appendValue(nil, &raftpb.Entry{Index: new(uint64(7)), Term: new(uint64(1))})
	must(t, err)
	must(t, r.db.Set(entryKey(2), wrong, pebble.Sync))
	must(t, r.db.Set(entryKey(3), []byte{1, 0xff}, pebble.Sync))
	must(t, r.db.Close())
	r.open()
	for _, lohi := range [][2]uint64{{2, 3}, {3, 4}, {1, 4}} {
		if _, err := r.s.Entries(lohi[0], lohi[1], 1<<30); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Entries(%d, %d) = %v, want ErrCorrupt", lohi[0], lohi[1], err)
		}
	}
	if _, err := r.s.Term(2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Term(2) = %v, want ErrCorrupt", err)
	}
}

// TestFailedWriteBreaks: after a failed commit, every write is refused and
// reads still show the last committed state.
func TestFailedWriteBreaks(t *testing.T) {
	r := newReopener(t)
	must(t, r.s.Save(hardState(1, 1, 1), index(1).terms(1, 1), true))
	before := dump(t, r.s)
	fsyncErr := errors.New("injected fsync failure")
	r.s.commit = func(*pebble.Batch, *pebble.WriteOptions) error { return fsyncErr }
	if err := r.s.Save(hardState(1, 1, 2), index(3).terms(1), true); !errors.Is(err, fsyncErr) {
		t.Fatalf("Save = %v, want the commit error", err)
	}
	r.s.commit = (*pebble.Batch).Commit
	for name, err := range map[string]error{
		"Save":          r.s.Save(hardState(1, 1, 2), index(3).terms(1), true),
		"Compact":       r.s.Compact(1, 1, nil),
		"ApplySnapshot": r.s.ApplySnapshot(snapMeta(9, 2)),
	} {
		if !errors.Is(err, ErrBroken) || !errors.Is(err, fsyncErr) {
			t.Errorf("%s after failure = %v, want ErrBroken wrapping the cause", name, err)
		}
	}
	if after := dump(t, r.s); after != before {
		t.Fatalf("state changed by failed writes\n%+v\nwant\n%+v", after, before)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{CacheEntries: -1}, {CacheBytes: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate() = nil", c)
		}
		if _, err := Open(nil, c); err == nil {
			t.Errorf("%+v: Open succeeded", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}
