package server_test

import (
	"fmt"
	"testing"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// waitGone is a children read of dir that waits for the deletion of gone.
func waitGone(dir, gone string, waitMs int64) wire.Request {
	return wire.Request{Op: wire.OpChildren, Path: dir, WaitGone: gone, WaitMs: waitMs, Version: -1}
}

// readUntil reads frames until the answer to xid, returning the frames
// read before it (events and other answers) and the answer.
func readUntil(t *testing.T, c *testcluster.RawConn, xid int64) (before []wire.Response, answer wire.Response) {
	t.Helper()
	for {
		r, err := c.Read()
		if err != nil {
			t.Fatalf("waiting for xid %d: %v", xid, err)
		}
		if r.Xid == xid {
			return before, r
		}
		before = append(before, r)
	}
}

func TestWaitGoneAnswersAfterTheDeletion(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	other := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/l", "", wire.ModePersistent))
	c.MustCall(create("/l/a", "", wire.ModePersistent))
	c.MustCall(create("/l/b", "", wire.ModePersistent))
	// A watch on the node too: its event must come before the answer.
	c.MustCall(wire.Request{Op: wire.OpExists, Path: "/l/a", Watch: true, Version: -1})

	parked := c.Send(waitGone("/l", "/l/a", 0))
	// Later requests are answered while the read waits.
	later := c.Send(req(wire.OpGet, "/l/b"))
	if r := c.Recv(later); r.Err != wire.OK || r.Stat == nil {
		t.Fatalf("a get behind a waiting read: %+v", r)
	}

	del := other.MustCall(wire.Request{Op: wire.OpDelete, Path: "/l/a", Version: -1})
	before, r := readUntil(t, c, parked)
	if r.Err != wire.OK || !r.Gone || fmt.Sprint(r.Children) != "[b]" || r.Zxid < del.Zxid {
		t.Fatalf("answer after the deletion at zxid %d: %+v", del.Zxid, r)
	}
	before = append(c.Events, before...)
	if len(before) != 1 || before[0].Event != wire.EventNodeDeleted || before[0].Path != "/l/a" || before[0].Zxid != del.Zxid {
		t.Fatalf("frames before the answer: %+v, want the NodeDeleted event of /l/a", before)
	}
}

func TestWaitGoneOnAMissingNodeAnswersAtOnce(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/l", "", wire.ModePersistent))
	r := c.Call(waitGone("/l", "/l/never", 0))
	if r.Err != wire.OK || !r.Gone || len(r.Children) != 0 {
		t.Fatalf("wait for a node that does not exist: %+v", r)
	}
	// The read's own errors come first: gone says nothing then.
	if r := c.Call(waitGone("/missing", "/l/never", 0)); r.Err != wire.NoNode || r.Gone {
		t.Fatalf("wait_gone on a children read of a missing node: %+v", r)
	}
	if r := c.Call(waitGone("/l", "no-slash", 0)); r.Err != wire.BadArguments {
		t.Fatalf("bad wait_gone path: %+v", r)
	}
	// A read that fails fails at once, even while the node it waits for
	// is there.
	c.MustCall(create("/l/a", "", wire.ModePersistent))
	if r := c.Call(wire.Request{Op: wire.OpChildren, Path: "/l", Limit: -1, WaitGone: "/l/a", Version: -1}); r.Err != wire.BadArguments {
		t.Fatalf("children with a negative limit that waits: %+v", r)
	}
	if r := c.Call(wire.Request{Op: wire.OpGet, Path: "/nope", WaitGone: "/l/a", Version: -1}); r.Err != wire.NoNode || r.Gone {
		t.Fatalf("get of a missing node that waits: %+v", r)
	}
}

func TestWaitGoneTimesOutWithTheStateThen(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/l", "", wire.ModePersistent))
	c.MustCall(create("/l/a", "x", wire.ModePersistent))
	parked := c.Send(wire.Request{Op: wire.OpGet, Path: "/l/a", WaitGone: "/l/a", WaitMs: 50, Version: -1})
	if r := c.Recv(parked); r.Err != wire.OK || r.Gone || string(r.Data) != "x" {
		t.Fatalf("a wait that ran out: %+v", r)
	}
	// The connection goes on as before.
	if r := c.Call(req(wire.OpExists, "/l/a")); r.Err != wire.OK {
		t.Fatalf("exists after the wait: %+v", r)
	}
}

func TestWaitGoneWokenByASessionsEnd(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	owner := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/l", "", wire.ModePersistent))
	e := owner.MustCall(create("/l/e-", "", wire.ModeEphemeralSequential))
	parked := c.Send(waitGone("/l", e.Path, 0))
	owner.MustCall(wire.Request{Op: wire.OpClose})
	_, r := readUntil(t, c, parked)
	if r.Err != wire.OK || !r.Gone || len(r.Children) != 0 {
		t.Fatalf("answer after the owner's session closed: %+v", r)
	}
}

func TestWaitGoneOnAFollower(t *testing.T) {
	cl := testcluster.Start(t, 3, testcluster.Options{})
	lead := cl.Leader()
	follower := cl.Other(lead)
	w := testcluster.Connect(t, lead.ClientAddr())
	w.MustCall(create("/l", "", wire.ModePersistent))
	a := w.MustCall(create("/l/a", "", wire.ModePersistent))
	c := testcluster.Connect(t, follower.ClientAddr())
	// Linearizable: the read sees /l/a however far behind the follower was.
	parked := c.Send(waitGone("/l", a.Path, 0))
	if r := c.Call(req(wire.OpExists, "/l/a")); r.Err != wire.OK {
		t.Fatalf("exists behind the waiting read: %+v", r)
	}
	del := w.MustCall(wire.Request{Op: wire.OpDelete, Path: "/l/a", Version: -1})
	_, r := readUntil(t, c, parked)
	if r.Err != wire.OK || !r.Gone || len(r.Children) != 0 || r.Zxid < del.Zxid {
		t.Fatalf("answer on the follower after the deletion at %d: %+v", del.Zxid, r)
	}
}
