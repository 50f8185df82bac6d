package server

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// TestStaleSnapshotKeepsTheState: a snapshot whose state is older than the
// server's (a stream overtaken by entries, or sent by a new leader from an
// older state) must not take the state back: the entries applied since
// would be lost on this member only, and it would diverge for good. Found
// by the long chaos profile (seed 20261126, five servers: "4 [commit:
// 1736692] ignored snapshot [index: 1733071]" right after the state was
// restored to 1736094; CONV then found member 4's digest different at the
// same applied index).
func TestStaleSnapshotKeepsTheState(t *testing.T) {
	s := startAlone(t)
	c := testcluster.Connect(t, s.ClientAddr())
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/a", Mode: string(wire.ModePersistent)})
	var snap bytes.Buffer
	at, err := s.state.Snapshot(&snap)
	if err != nil {
		t.Fatal(err)
	}
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/b", Mode: string(wire.ModePersistent)})
	before := s.state.AppliedIndex()

	err = s.restoreState(bytes.NewReader(snap.Bytes()))
	if !errors.Is(err, errSnapshotBehind) {
		t.Fatalf("restoring a snapshot at %d over a state at %d: %v, want errSnapshotBehind", at, before, err)
	}
	if got := s.state.AppliedIndex(); got < before {
		t.Fatalf("the state went back from %d to %d", before, got)
	}
	if r := c.Call(wire.Request{Op: wire.OpExists, Path: "/b"}); r.Err != wire.OK {
		t.Fatalf("/b, created after the snapshot, is gone: %s %s", r.Err, r.Msg)
	}
	// The server goes on applying.
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/c", Mode: string(wire.ModePersistent)})
}

func TestCheckContiguous(t *testing.T) {
	items := func(idx ...uint64) []applyItem {
		var out []applyItem
		for _, i := range idx {
			out = append(out, applyItem{Index: i})
		}
		return out
	}
	for _, tc := range []struct {
		applied uint64
		items   []applyItem
		ok      bool
	}{
		{10, items(11, 12), true},
		{10, items(9, 10, 11), true}, // redelivered, then the next
		{10, items(5, 6), true},      // all applied already
		{10, nil, true},
		{10, items(12, 13), false}, // 11 missing
		{10, items(9, 12), false},
	} {
		if err := checkContiguous(tc.applied, tc.items); (err == nil) != tc.ok {
			t.Errorf("checkContiguous(%d, %v) = %v, want ok=%v", tc.applied, tc.items, err, tc.ok)
		}
	}
}

// A connection accepted after a restore replaced the state is never sent
// away by that restore's sweep, even before its connect arrives; one
// accepted before it is, when it has no session yet.
func TestRestoreKeepsConnectionsAcceptedAfterIt(t *testing.T) {
	s := startAlone(t)
	before := &conn{s: s, restores: s.restores.Load()}
	s.restores.Add(1) // the restore replaced the state
	after := &conn{s: s, restores: s.restores.Load()}
	if !s.misledByRestore(before) {
		t.Error("a connection without a session accepted before the restore is kept")
	}
	if s.misledByRestore(after) {
		t.Error("a connection accepted after the restore is sent away")
	}
}
