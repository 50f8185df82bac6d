package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

type ev struct {
	typ  wire.EventType
	path string
}

func (e ev) String() string { return string(e.typ) + " " + e.path }

// events collects pushed frames until a ping round trip shows nothing more
// is queued; the server pushes a change's events before it answers any
// later request, so the ping is a barrier.
func events(t *testing.T, c *testcluster.RawConn) []ev {
	t.Helper()
	c.MustCall(wire.Request{Op: wire.OpPing})
	var out []ev
	for _, e := range c.Events {
		out = append(out, ev{e.Event, e.Path})
	}
	c.Events = nil
	return out
}

func expectEvents(t *testing.T, c *testcluster.RawConn, want ...ev) {
	t.Helper()
	got := events(t, c)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// Every watch kind against every op, as ZooKeeper fires them.
func TestWatchFiringRules(t *testing.T) {
	nd := startOne(t)
	w := testcluster.Connect(t, nd.ClientAddr())  // the watcher
	wr := testcluster.Connect(t, nd.ClientAddr()) // the writer
	set := func(p string) { wr.MustCall(wire.Request{Op: wire.OpSet, Path: p, Data: []byte("x"), Version: -1}) }
	del := func(p string) { wr.MustCall(wire.Request{Op: wire.OpDelete, Path: p, Version: -1}) }
	mk := func(p string) { wr.MustCall(create(p, "", wire.ModePersistent)) }

	// exists on a missing node: NodeCreated, once.
	w.Call(wire.Request{Op: wire.OpExists, Path: "/a", Watch: true})
	mk("/a")
	set("/a")
	expectEvents(t, w, ev{wire.EventNodeCreated, "/a"})

	// get: NodeDataChanged on set, once; NodeDeleted on delete.
	w.MustCall(wire.Request{Op: wire.OpGet, Path: "/a", Watch: true})
	set("/a")
	set("/a")
	expectEvents(t, w, ev{wire.EventNodeDataChanged, "/a"})
	w.MustCall(wire.Request{Op: wire.OpGet, Path: "/a", Watch: true})
	mk("/a/kid") // a child change does not fire a data watch
	expectEvents(t, w)
	del("/a/kid")
	del("/a")
	expectEvents(t, w, ev{wire.EventNodeDeleted, "/a"})

	// children: NodeChildrenChanged on child create and on child delete,
	// NodeDeleted on delete of the node; data changes of the node do not fire.
	mk("/p")
	w.MustCall(wire.Request{Op: wire.OpChildren, Path: "/p", Watch: true})
	set("/p")
	expectEvents(t, w)
	mk("/p/c")
	expectEvents(t, w, ev{wire.EventNodeChildrenChanged, "/p"})
	w.MustCall(wire.Request{Op: wire.OpChildren, Path: "/p", Watch: true})
	del("/p/c")
	expectEvents(t, w, ev{wire.EventNodeChildrenChanged, "/p"})
	w.MustCall(wire.Request{Op: wire.OpChildren, Path: "/p", Watch: true})
	del("/p")
	expectEvents(t, w, ev{wire.EventNodeDeleted, "/p"})

	// Setting the same watch twice yields one event.
	mk("/twice")
	w.MustCall(wire.Request{Op: wire.OpGet, Path: "/twice", Watch: true})
	w.MustCall(wire.Request{Op: wire.OpExists, Path: "/twice", Watch: true})
	set("/twice")
	expectEvents(t, w, ev{wire.EventNodeDataChanged, "/twice"})

	// persistent: every event on the path, including children, and it stays.
	w.MustCall(wire.Request{Op: wire.OpAddWatch, Path: "/pp", Mode: "persistent"})
	w.MustCall(wire.Request{Op: wire.OpAddWatch, Path: "/pp", Mode: "persistent"}) // a no-op
	mk("/pp")
	set("/pp")
	mk("/pp/c")
	set("/pp/c") // not on the path itself
	del("/pp/c")
	del("/pp")
	mk("/pp")
	expectEvents(t, w, ev{wire.EventNodeCreated, "/pp"}, ev{wire.EventNodeDataChanged, "/pp"},
		ev{wire.EventNodeChildrenChanged, "/pp"}, ev{wire.EventNodeChildrenChanged, "/pp"},
		ev{wire.EventNodeDeleted, "/pp"}, ev{wire.EventNodeCreated, "/pp"})

	// persistent_recursive: the path and everything below, no child events.
	w.MustCall(wire.Request{Op: wire.OpAddWatch, Path: "/r", Mode: "persistent_recursive"})
	mk("/r")
	mk("/r/a")
	mk("/r/a/b")
	set("/r/a/b")
	del("/r/a/b")
	mk("/rx") // a sibling with a common prefix is not below /r
	expectEvents(t, w, ev{wire.EventNodeCreated, "/r"}, ev{wire.EventNodeCreated, "/r/a"}, ev{wire.EventNodeCreated, "/r/a/b"},
		ev{wire.EventNodeDataChanged, "/r/a/b"}, ev{wire.EventNodeDeleted, "/r/a/b"})

	// remove_watches.
	if r := w.Call(wire.Request{Op: wire.OpRemoveWatches, Path: "/r", Type: "persistent"}); r.Err != wire.NoWatcher {
		t.Fatalf("removing a watch of another kind: %s", r.Err)
	}
	w.MustCall(wire.Request{Op: wire.OpRemoveWatches, Path: "/r", Type: "persistent_recursive"})
	w.MustCall(wire.Request{Op: wire.OpRemoveWatches, Path: "/pp", Type: "any"})
	if r := w.Call(wire.Request{Op: wire.OpRemoveWatches, Path: "/pp", Type: "any"}); r.Err != wire.NoWatcher {
		t.Fatalf("removing twice: %s", r.Err)
	}
	mk("/r/z")
	set("/pp")
	expectEvents(t, w)
	// A multi fires the events of each of its ops.
	w.Call(wire.Request{Op: wire.OpExists, Path: "/m1", Watch: true})
	w.MustCall(wire.Request{Op: wire.OpGet, Path: "/twice", Watch: true})
	wr.MustCall(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{create("/m1", "", wire.ModePersistent),
		{Op: wire.OpSet, Path: "/twice", Version: -1}}})
	expectEvents(t, w, ev{wire.EventNodeCreated, "/m1"}, ev{wire.EventNodeDataChanged, "/twice"})
}

// An event reaches the watcher before any response reflecting a later zxid,
// including the response to the write that fired it on the same session.
func TestEventsPrecedeLaterResponses(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	other := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/o", "0", wire.ModePersistent))
	for i := 0; i < 50; i++ {
		c.MustCall(wire.Request{Op: wire.OpGet, Path: "/o", Watch: true})
		// Own write: the event must come before the answer.
		x := c.Send(wire.Request{Op: wire.OpSet, Path: "/o", Data: []byte(fmt.Sprint(i)), Version: -1})
		first, err := c.Read()
		if err != nil || first.Xid != wire.XidWatch || first.Event != wire.EventNodeDataChanged {
			t.Fatalf("round %d: first frame %+v %v", i, first, err)
		}
		if r := c.Recv(x); r.Zxid < first.Zxid {
			t.Fatalf("answer zxid %d before event zxid %d", r.Zxid, first.Zxid)
		}
		// Another session's write: a later read must not overtake the event.
		c.MustCall(wire.Request{Op: wire.OpGet, Path: "/o", Watch: true})
		other.MustCall(wire.Request{Op: wire.OpSet, Path: "/o", Data: []byte("o"), Version: -1})
		g := c.Call(req(wire.OpGet, "/o"))
		if string(g.Data) == "o" && (len(c.Events) != 1 || c.Events[0].Zxid > g.Zxid) {
			t.Fatalf("round %d: a read showing the change came before its event (events %+v)", i, c.Events)
		}
		events(t, c)
	}
}

func TestSetWatchesAfterMissedChanges(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	wr := testcluster.Connect(t, nd.ClientAddr())
	for _, p := range []string{"/sw", "/sw/d", "/sw/x", "/sw/c", "/sw/same", "/sw/gone"} {
		c.MustCall(create(p, "", wire.ModePersistent))
	}
	last := c.MustCall(wire.Request{Op: wire.OpPing}).Zxid
	c.Close()
	// Changes the client misses while disconnected.
	wr.MustCall(wire.Request{Op: wire.OpSet, Path: "/sw/d", Version: -1})
	wr.MustCall(create("/sw/new", "", wire.ModePersistent))
	wr.MustCall(create("/sw/c/k", "", wire.ModePersistent))
	wr.MustCall(wire.Request{Op: wire.OpDelete, Path: "/sw/gone", Version: -1})
	wr.MustCall(wire.Request{Op: wire.OpSet, Path: "/sw/x", Version: -1})
	wr.MustCall(wire.Request{Op: wire.OpSet, Path: "/sw/x", Version: -1})

	c2, r := resume(t, nd.ClientAddr(), c, last)
	if r.Err != wire.OK {
		t.Fatal(r.Err)
	}
	c2.MustCall(wire.Request{Op: wire.OpSetWatches, LastZxid: last,
		DataWatches:       []string{"/sw/d", "/sw/same", "/sw/gone"},
		ExistWatches:      []string{"/sw/new", "/sw/never"},
		ChildWatches:      []string{"/sw/c"},
		PersistentWatches: []string{"/sw/x"},
		RecursiveWatches:  []string{"/sw/c"},
	})
	got := map[string]bool{}
	var persistent []ev
	for _, e := range c2.Events {
		if e.Path == "/sw/x" || e.Path == "/sw/c/k" {
			persistent = append(persistent, ev{e.Event, e.Path})
			continue
		}
		got[fmt.Sprint(ev{e.Event, e.Path})] = true
	}
	for _, want := range []ev{{wire.EventNodeDataChanged, "/sw/d"}, {wire.EventNodeDeleted, "/sw/gone"},
		{wire.EventNodeCreated, "/sw/new"}, {wire.EventNodeChildrenChanged, "/sw/c"}} {
		if !got[want.String()] {
			t.Fatalf("set_watches fired %v, missing %v", got, want)
		}
	}
	if len(got) != 4 {
		t.Fatalf("set_watches fired %v", got)
	}
	// The persistent watch replays every missed event in order; the
	// recursive one the creation below it.
	if fmt.Sprint(persistent) != fmt.Sprint([]ev{{wire.EventNodeCreated, "/sw/c/k"},
		{wire.EventNodeDataChanged, "/sw/x"}, {wire.EventNodeDataChanged, "/sw/x"}}) {
		t.Fatalf("replayed %v", persistent)
	}
	c2.Events = nil
	// The unfired one-shot watches are armed, the fired ones are not.
	wr.MustCall(wire.Request{Op: wire.OpSet, Path: "/sw/same", Version: -1})
	wr.MustCall(wire.Request{Op: wire.OpSet, Path: "/sw/d", Version: -1})
	wr.MustCall(create("/sw/never", "", wire.ModePersistent))
	wr.MustCall(wire.Request{Op: wire.OpSet, Path: "/sw/x", Version: -1})
	expectEvents(t, c2, ev{wire.EventNodeDataChanged, "/sw/same"}, ev{wire.EventNodeCreated, "/sw/never"},
		ev{wire.EventNodeDataChanged, "/sw/x"})
}

func TestSetWatchesResyncAfterCompaction(t *testing.T) {
	nd := startOne(t, "--snapshot-entries", "50", "--history-entries", "20")
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/rs", "", wire.ModePersistent))
	last := c.MustCall(wire.Request{Op: wire.OpPing}).Zxid
	for i := 0; i < 200; i++ {
		c.MustCall(wire.Request{Op: wire.OpSet, Path: "/rs", Version: -1})
	}
	c.MustCall(wire.Request{Op: wire.OpSetWatches, LastZxid: last, PersistentWatches: []string{"/rs"}})
	if len(c.Events) != 1 || c.Events[0].Event != wire.EventResync || c.Events[0].Path != "/rs" {
		t.Fatalf("after compaction: %+v", c.Events)
	}
	c.Events = nil
	// The watch is armed after the Resync.
	c.MustCall(wire.Request{Op: wire.OpSet, Path: "/rs", Version: -1})
	expectEvents(t, c, ev{wire.EventNodeDataChanged, "/rs"})
}

func TestNoEventWithoutReadPermission(t *testing.T) {
	nd := startOne(t)
	owner := testcluster.Connect(t, nd.ClientAddr())
	owner.MustCall(wire.Request{Op: wire.OpAuth, Scheme: "digest", Credential: "o:pw"})
	spy := testcluster.Connect(t, nd.ClientAddr())
	spy.MustCall(wire.Request{Op: wire.OpAddWatch, Path: "/", Mode: "persistent_recursive"})
	owner.MustCall(wire.Request{Op: wire.OpCreate, Path: "/private", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "auth"}}})
	owner.MustCall(wire.Request{Op: wire.OpSet, Path: "/private", Data: []byte("s"), Version: -1})
	owner.MustCall(create("/public", "", wire.ModePersistent))
	expectEvents(t, spy, ev{wire.EventNodeCreated, "/public"})
}

func TestSlowConsumerClosedExplicitly(t *testing.T) {
	nd := startOne(t, "--max-outbound-bytes", "2000000")
	wr := testcluster.Connect(t, nd.ClientAddr())
	wr.MustCall(wire.Request{Op: wire.OpCreate, Path: "/big", Data: make([]byte, 100000)})
	slow := testcluster.Connect(t, nd.ClientAddr())
	slow.MustCall(wire.Request{Op: wire.OpAddWatch, Path: "/", Mode: "persistent_recursive"})
	// slow asks for 40 MB of answers and does not read them.
	for i := 0; i < 300; i++ {
		slow.Send(wire.Request{Op: wire.OpGet, Path: "/big", Local: true})
	}
	testcluster.WaitFor(t, 30*time.Second, "the slow consumer to be cut off", func() bool {
		code, body := testcluster.Get(nd.ClientAddr(), "/metrics")
		return code == 200 && containsLine(body, "coord_slow_consumers_total 1")
	})
	// When it reads again it finds the explicit close code after what was
	// already on its socket.
	var err error
	n := 0
	for err == nil {
		_, err = slow.Read()
		n++
	}
	if !websocket.IsCloseError(err, 4000) || n >= 300 {
		t.Fatalf("slow consumer read %d frames, then %v; want fewer than 300, then close 4000", n, err)
	}
	// Its session lives on, and others were never disturbed.
	s2, r := resume(t, nd.ClientAddr(), slow, 0)
	if r.Err != wire.OK {
		t.Fatalf("resume after slow-consumer close: %s", r.Err)
	}
	s2.MustCall(wire.Request{Op: wire.OpPing})
	wr.MustCall(wire.Request{Op: wire.OpPing})
}

func containsLine(body, line string) bool {
	for len(body) > 0 {
		i := 0
		for i < len(body) && body[i] != '\n' {
			i++
		}
		if body[:i] == line {
			return true
		}
		if i == len(body) {
			break
		}
		body = body[i+1:]
	}
	return false
}

var _ = time.Second
