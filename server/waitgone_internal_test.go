package server

import (
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

func TestParkingTakesEachReadOnce(t *testing.T) {
	var p parking
	c1 := &conn{done: make(chan struct{})}
	c2 := &conn{done: make(chan struct{})}
	park := func(c *conn, path string) *parkedRead {
		pr := &parkedRead{c: c, r: &request{req: wire.Request{Op: wire.OpChildren, Path: "/", WaitGone: path}}}
		if !p.park(pr, time.Hour, func() { t.Error("a timer fired") }) {
			t.Fatalf("park on a live connection refused")
		}
		return pr
	}
	a1, a2, b1, b1again := park(c1, "/a"), park(c2, "/a"), park(c1, "/b"), park(c1, "/b")
	if p.n.Load() != 4 || len(c1.parkedReads) != 3 || len(c2.parkedReads) != 1 {
		t.Fatalf("after parking four: n=%d, c1 %d, c2 %d", p.n.Load(), len(c1.parkedReads), len(c2.parkedReads))
	}

	// The timer of one read lost the race to nobody: take it.
	if !p.take(b1again) || p.take(b1again) {
		t.Fatalf("a read was taken twice, or not once")
	}
	// A deletion takes every read waiting for the path, once.
	got := p.deleted("/a", nil)
	if len(got) != 2 || got[0] != a1 || got[1] != a2 {
		t.Fatalf("deleted /a took %v", got)
	}
	if p.take(a1) || len(p.deleted("/a", nil)) != 0 {
		t.Fatalf("a read taken by a deletion was taken again")
	}
	if len(c2.parkedReads) != 0 || len(c1.parkedReads) != 1 || c1.parkedReads[0] != b1 || b1.ci != 0 {
		t.Fatalf("connection lists: c1 %v (b1 at %d), c2 %v", c1.parkedReads, b1.ci, c2.parkedReads)
	}

	// A connection that goes drops what it still has parked, and parks
	// nothing more.
	close(c1.done)
	p.dropConn(c1)
	if p.n.Load() != 0 || len(p.mu.byPath) != 0 || !b1.taken {
		t.Fatalf("after the connection went: n=%d, paths %v", p.n.Load(), p.mu.byPath)
	}
	pr := &parkedRead{c: c1, r: &request{req: wire.Request{WaitGone: "/c"}}}
	if p.park(pr, time.Hour, func() {}) || p.n.Load() != 0 {
		t.Fatalf("a read was parked on a connection that is gone")
	}

	// Reads taken out of the middle of a path's list leave the others
	// there.
	e1, e2, e3 := park(c2, "/e"), park(c2, "/e"), park(c2, "/e")
	if !p.take(e1) || !p.take(e3) {
		t.Fatal("taking parked reads failed")
	}
	if got := p.deleted("/e", nil); len(got) != 1 || got[0] != e2 || p.n.Load() != 0 {
		t.Fatalf("deleted /e took %v, want the one left (n=%d)", got, p.n.Load())
	}

	// One connection parks at most maxParkedPerConn reads.
	for range maxParkedPerConn {
		park(c2, "/d")
	}
	pr = &parkedRead{c: c2, r: &request{req: wire.Request{WaitGone: "/d"}}}
	if p.park(pr, time.Hour, func() {}) || p.n.Load() != maxParkedPerConn {
		t.Fatalf("connection parked more than %d reads (n=%d)", maxParkedPerConn, p.n.Load())
	}
	if got := p.deleted("/d", nil); len(got) != maxParkedPerConn || p.n.Load() != 0 || len(c2.parkedReads) != 0 {
		t.Fatalf("deleted /d took %d, n=%d", len(got), p.n.Load())
	}
}
