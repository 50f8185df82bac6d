package raftstore

import (
	"fmt"
	"hash/crc32"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pebbleLogger keeps pebble quiet in tests; errors still reach stderr.
type pebbleLogger struct{}

func (pebbleLogger) Infof(string, ...any) {}
func (pebbleLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (pebbleLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// openDB opens (or reopens) the pebble DB kept in fs. The caller closes it.
func openDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: pebbleLogger{}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return db
}

// newStore opens a Store on a fresh in-memory DB closed at the end of the
// test.
func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	db := openDB(t, vfs.NewMem())
	t.Cleanup(func() { db.Close() })
	s, err := Open(db, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// ents builds entries like raft's storage tests: index(3).terms(3, 4, 5).
type index uint64

func (i index) terms(terms ...uint64) []*raftpb.Entry {
	ents := make([]*raftpb.Entry, 0, len(terms))
	for k, t := range terms {
		ents = append(ents, &raftpb.Entry{Index: new(uint64(i) + uint64(k)), Term: new(t)})
	}
	return ents
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func snapMeta(index, term uint64, voters ...uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: &raftpb.ConfState{Voters: voters}}
}

func equalEntries(a, b []*raftpb.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !proto.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}

func describe(ents []*raftpb.Entry) string {
	s := "["
	for k, e := range ents {
		if k > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d/%d", e.GetIndex(), e.GetTerm())
		if len(e.GetData()) > 0 {
			s += fmt.Sprintf("(%dB:%08x)", len(e.GetData()), crc32.ChecksumIEEE(e.GetData()))
		}
		if e.GetType() != raftpb.EntryNormal {
			s += e.GetType().String()
		}
	}
	return s + "]"
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// state is everything a Store exposes, read through its API, for
// comparing stores with each other and across restarts.
type state struct {
	hs           string
	cs           string
	snap         string
	first, last  uint64
	entries      string
	bootstrapped bool
}

func dump(t testing.TB, s *Store) state {
	t.Helper()
	hs, cs, err := s.InitialState()
	must(t, err)
	snap, err := s.Snapshot()
	must(t, err)
	first, err := s.FirstIndex()
	must(t, err)
	last, err := s.LastIndex()
	must(t, err)
	var ents []*raftpb.Entry
	if last >= first {
		ents, err = s.Entries(first, last+1, 1<<62)
		must(t, err)
	}
	return state{
		hs:           fmt.Sprintf("term=%d vote=%d commit=%d", hs.GetTerm(), hs.GetVote(), hs.GetCommit()),
		cs:           fmt.Sprint(cs.GetVoters(), cs.GetLearners()),
		snap:         fmt.Sprintf("%d/%d", snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()),
		first:        first,
		last:         last,
		entries:      describe(ents),
		bootstrapped: s.Bootstrapped(),
	}
}
