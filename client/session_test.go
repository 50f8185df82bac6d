package client

// Tests against the stand-in server of fakeserver_test.go, until
// integration tests against real coordd processes land.

import (
	"context"
	"errors"
	"testing"
)

func TestSessionExpiredInFlight(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr})
	ctx := testCtx(t)
	states := c.StateEvents(ctx)
	first := wantState(t, states, StateConnected, a.addr)
	if _, _, err := c.Create(ctx, "/x", nil, ModePersistent); err != nil {
		t.Fatal(err)
	}
	_, _, oneShot, err := c.GetW(ctx, "/x")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.AddWatch(ctx, "/", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}

	a.setHold(true)
	waitCreate := async(func() error { _, _, err := c.Create(ctx, "/e1", nil, ModeEphemeral); return err })
	waitGet := async(func() error { _, _, err := c.Get(ctx, "/x"); return err })
	waitFor(t, "2 requests in flight", func() bool { return a.outstanding() == 2 })
	cl.expire(first.SessionID)

	err = waitCreate()
	var oe *OpError
	if !errors.Is(err, ErrSessionExpired) || !errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &oe) || oe.Path != "/e1" {
		t.Fatalf("create in flight at expiry: %v", err)
	}
	if err := waitGet(); !errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("get in flight at expiry: %v", err)
	}
	ev := wantEvent(t, oneShot, EventNotWatching, "/x")
	if !errors.Is(ev.Err, ErrSessionExpired) {
		t.Fatalf("one-shot end: %+v", ev)
	}
	recvClosed(t, oneShot)
	ev = wantEvent(t, w.Events(), EventNotWatching, "/")
	if !errors.Is(ev.Err, ErrSessionExpired) {
		t.Fatalf("persistent end: %+v", ev)
	}
	recvClosed(t, w.Events())
	if st := wantState(t, states, StateExpired, ""); !errors.Is(st.Err, ErrSessionExpired) || st.SessionID != first.SessionID {
		t.Fatalf("expired event %+v", st)
	}
	if _, _, err := c.Get(ctx, "/x"); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("get after expiry: %v", err)
	}
	if c.SessionID() != 0 || c.State() != StateExpired {
		t.Fatalf("session %v state %v after expiry", c.SessionID(), c.State())
	}
	a.setHold(false)

	if err := c.NewSession(ctx); err != nil {
		t.Fatal(err)
	}
	ev2 := wantState(t, states, StateConnected, a.addr)
	if !ev2.NewSession || ev2.SessionID == first.SessionID || ev2.SessionID != c.SessionID() {
		t.Fatalf("new session event %+v", ev2)
	}
	if err := c.NewSession(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/e2", nil, ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	if _, ok := cl.node("/e1"); ok {
		t.Fatal("/e1 applied although held")
	}
}

func TestSessionExpiredWhileDisconnected(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr, b.addr})
	ctx := testCtx(t)
	states := c.StateEvents(ctx)
	first := wantState(t, states, StateConnected, a.addr)

	a.setMute(true)
	waitSent := async(func() error { _, _, err := c.Create(ctx, "/m", nil, ModePersistent); return err })
	waitFor(t, "/m applied", func() bool { _, ok := cl.node("/m"); return ok })
	b.setRefuse(true)
	a.stop()
	wantState(t, states, StateDisconnected, a.addr)
	waitUnsent := async(func() error { _, _, err := c.Create(ctx, "/u", nil, ModePersistent); return err })
	waitRead := async(func() error { _, _, err := c.Get(ctx, "/"); return err })
	waitFor(t, "3 requests pending", func() bool { return pendingCount(c) == 3 })
	cl.expire(first.SessionID)
	b.setRefuse(false)

	if err := waitSent(); !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("sent write: %v", err)
	}
	if err := waitUnsent(); !errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("unsent write: %v", err)
	}
	if err := waitRead(); !errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("read: %v", err)
	}
	wantState(t, states, StateExpired, "")
	if err := c.NewSession(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStateEventStream(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr})
	ctx := testCtx(t)
	states := c.StateEvents(ctx)
	ev := wantState(t, states, StateConnected, a.addr)
	sid := ev.SessionID

	a.drop()
	if ev := wantState(t, states, StateDisconnected, a.addr); ev.Err == nil || ev.SessionID != sid {
		t.Fatalf("disconnected %+v", ev)
	}
	if ev := wantState(t, states, StateConnected, a.addr); ev.NewSession || ev.SessionID != sid {
		t.Fatalf("reconnected %+v", ev)
	}
	cl.expire(sid)
	wantState(t, states, StateExpired, "")
	if err := c.NewSession(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := wantState(t, states, StateConnected, a.addr); !ev.NewSession || ev.SessionID == sid {
		t.Fatalf("new session %+v", ev)
	}

	// A subscription ends with its context, another with Close.
	sub, cancel := context.WithCancel(ctx)
	short := c.StateEvents(sub)
	wantState(t, short, StateConnected, a.addr)
	cancel()
	recvClosed(t, short)
	c.Close()
	recvClosed(t, states)
	if c.State() != StateClosed {
		t.Fatalf("state %v after Close", c.State())
	}
	if _, _, err := c.Get(ctx, "/"); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	recvClosed(t, c.StateEvents(ctx))
}
