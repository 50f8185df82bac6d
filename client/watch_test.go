package client

// Tests against the stand-in server of fakeserver_test.go, until
// integration tests against real coordd processes land.

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

func TestWatchesRearmedAfterReconnect(t *testing.T) {
	for _, eventsFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("eventsFirst=%v", eventsFirst), func(t *testing.T) {
			cl := newFakeCluster(t)
			cl.eventsFirst = eventsFirst
			a, b, d := cl.newServer(), cl.newServer(), cl.newServer()
			c := connect(t, []string{a.addr, b.addr})
			other := connect(t, []string{d.addr})
			ctx := testCtx(t)
			states := c.StateEvents(ctx)
			wantState(t, states, StateConnected, a.addr)

			if _, _, err := other.Create(ctx, "/w", []byte("0"), ModePersistent); err != nil {
				t.Fatal(err)
			}
			_, _, dataCh, err := c.GetW(ctx, "/w")
			if err != nil {
				t.Fatal(err)
			}
			ok, _, existCh, err := c.ExistsW(ctx, "/nope")
			if err != nil || ok {
				t.Fatalf("ExistsW /nope: %v %v", ok, err)
			}
			_, _, childCh, err := c.ChildrenW(ctx, "/w")
			if err != nil {
				t.Fatal(err)
			}
			rw, err := c.AddWatch(ctx, "/", WatchPersistentRecursive)
			if err != nil {
				t.Fatal(err)
			}
			pw, err := c.AddWatch(ctx, "/w", WatchPersistent)
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			seen := c.mu.lastZxid
			c.mu.Unlock()

			b.setRefuse(true)
			a.stop()
			wantState(t, states, StateDisconnected, a.addr)
			// Changes while c is away.
			if _, err := other.Set(ctx, "/w", []byte("1"), AnyVersion); err != nil {
				t.Fatal(err)
			}
			if _, _, err := other.Create(ctx, "/nope", nil, ModePersistent); err != nil {
				t.Fatal(err)
			}
			if _, _, err := other.Create(ctx, "/w/c", nil, ModePersistent); err != nil {
				t.Fatal(err)
			}
			b.setRefuse(false)
			wantState(t, states, StateConnected, b.addr)

			wantEvent(t, dataCh, EventNodeDataChanged, "/w")
			recvClosed(t, dataCh)
			wantEvent(t, existCh, EventNodeCreated, "/nope")
			recvClosed(t, existCh)
			wantEvent(t, childCh, EventNodeChildrenChanged, "/w")
			recvClosed(t, childCh)
			wantEvent(t, rw.Events(), EventNodeDataChanged, "/w")
			wantEvent(t, rw.Events(), EventNodeCreated, "/nope")
			wantEvent(t, rw.Events(), EventNodeCreated, "/w/c")
			wantEvent(t, pw.Events(), EventNodeDataChanged, "/w")
			wantEvent(t, pw.Events(), EventNodeChildrenChanged, "/w")

			sw := b.receivedOp(wire.OpSetWatches)
			if len(sw) != 1 {
				t.Fatalf("%d set_watches on b", len(sw))
			}
			r := sw[0]
			if r.LastZxid != seen || !slices.Equal(r.DataWatches, []string{"/w"}) || !slices.Equal(r.ExistWatches, []string{"/nope"}) ||
				!slices.Equal(r.ChildWatches, []string{"/w"}) || !slices.Equal(r.PersistentWatches, []string{"/w"}) ||
				!slices.Equal(r.RecursiveWatches, []string{"/"}) {
				t.Fatalf("set_watches %+v, last zxid seen %d", r, seen)
			}

			// The persistent watches stay armed; the one-shots are gone.
			if _, err := other.Set(ctx, "/w", []byte("2"), AnyVersion); err != nil {
				t.Fatal(err)
			}
			wantEvent(t, rw.Events(), EventNodeDataChanged, "/w")
			wantEvent(t, pw.Events(), EventNodeDataChanged, "/w")
		})
	}
}

func TestResyncReachesPersistentWatch(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr, b.addr})
	ctx := testCtx(t)
	w, err := c.AddWatch(ctx, "/", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	cl.compacted = 1 << 40
	cl.mu.Unlock()
	a.stop()
	wantEvent(t, w.Events(), EventResync, "/")
}

func TestWatchDelivery(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr})
	other := connect(t, []string{a.addr})
	ctx := testCtx(t)

	if _, _, err := c.Create(ctx, "/d", []byte("x"), ModePersistent); err != nil {
		t.Fatal(err)
	}
	// Two one-shot watchers of one path both fire, once.
	_, _, ch1, err := c.GetW(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	_, _, ch2, err := c.GetW(ctx, "/d", Local())
	if err != nil {
		t.Fatal(err)
	}
	_, _, chc, err := c.ChildrenW(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Set(ctx, "/d", []byte("y"), AnyVersion); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch1, EventNodeDataChanged, "/d")
	wantEvent(t, ch2, EventNodeDataChanged, "/d")
	recvClosed(t, ch1)
	if err := other.Delete(ctx, "/d", AnyVersion); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, chc, EventNodeDeleted, "/d")

	// GetW of a missing node sets no watch.
	if _, _, ch, err := c.GetW(ctx, "/d"); !errors.Is(err, ErrNoNode) || ch != nil {
		t.Fatalf("GetW of a missing node: %v %v", ch, err)
	}

	// A slow consumer of a persistent watch blocks nothing.
	w, err := c.AddWatch(ctx, "/", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if _, _, err := other.Create(ctx, fmt.Sprintf("/s%03d", i), nil, ModePersistent); err != nil {
			t.Fatal(err)
		}
	}
	// The answer comes after the 300 events on the connection: the reader
	// queued them all without waiting for the consumer.
	if _, _, err := c.Get(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		wantEvent(t, w.Events(), EventNodeCreated, fmt.Sprintf("/s%03d", i))
	}

	// Removing one of two watchers of a path keeps the server's watch.
	w2, err := c.AddWatch(ctx, "/", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	recvClosed(t, w.Events())
	if got := len(a.receivedOp(wire.OpRemoveWatches)); got != 0 {
		t.Fatalf("%d remove_watches while a watcher remains", got)
	}
	if _, _, err := other.Create(ctx, "/t", nil, ModePersistent); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, w2.Events(), EventNodeCreated, "/t")
	if err := w2.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.receivedOp(wire.OpRemoveWatches); len(got) != 1 || got[0].Type != "persistent_recursive" {
		t.Fatalf("remove_watches %+v", got)
	}

	// RemoveWatches ends local one-shots with ErrWatchRemoved.
	_, _, ch, err := c.GetW(ctx, "/t")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveWatches(ctx, "/t", WatchTypeData); err != nil {
		t.Fatal(err)
	}
	if ev := wantEvent(t, ch, EventNotWatching, "/t"); !errors.Is(ev.Err, ErrWatchRemoved) {
		t.Fatalf("removed watch: %+v", ev)
	}
	if err := c.RemoveWatches(ctx, "/t", WatchTypeAny); !errors.Is(err, ErrNoWatcher) {
		t.Fatalf("RemoveWatches of nothing: %v", err)
	}
}

// A handshake that fails after connect was answered, before set_watches
// was, must not advance the zxid the next attempt re-arms from.
func TestSetWatchesRetriedFromSameZxid(t *testing.T) {
	cl := newFakeCluster(t)
	a, b, d := cl.newServer(), cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr, b.addr})
	other := connect(t, []string{d.addr})
	ctx := testCtx(t)
	if _, _, err := other.Create(ctx, "/w", nil, ModePersistent); err != nil {
		t.Fatal(err)
	}
	_, _, ch, err := c.GetW(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	seen := c.mu.lastZxid
	c.mu.Unlock()

	b.cl.mu.Lock()
	b.failSetWatches = 1
	b.cl.mu.Unlock()
	b.setRefuse(true)
	a.stop()
	waitFor(t, "disconnected", func() bool { return c.State() == StateDisconnected })
	for i := range 3 {
		if _, err := other.Set(ctx, "/w", []byte{byte(i)}, AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	b.setRefuse(false)
	wantEvent(t, ch, EventNodeDataChanged, "/w")
	sw := b.receivedOp(wire.OpSetWatches)
	if len(sw) != 2 || sw[0].LastZxid != seen || sw[1].LastZxid != seen {
		t.Fatalf("set_watches %+v, want two from zxid %d", sw, seen)
	}
}
