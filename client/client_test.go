package client

// These tests run the client against the stand-in server of
// fakeserver_test.go. They test the client's connection mechanics until
// integration tests against real coordd processes land.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coord-dev/coord/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect connects to servers, trying them in the order given.
func connect(t *testing.T, servers []string, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{withServersInOrder(), WithDialTimeout(2 * time.Second), WithLogger(testLogger)}, opts...)
	c, err := Connect(testCtx(t), servers, opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("channel closed")
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting on a channel")
	}
	panic("unreachable")
}

func recvClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v, ok := <-ch:
		if ok {
			t.Fatalf("got %+v, want the channel closed", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for the channel to close")
	}
}

func wantEvent(t *testing.T, ch <-chan Event, typ EventType, path string) Event {
	t.Helper()
	ev := recv(t, ch)
	if ev.Type != typ || ev.Path != path {
		t.Fatalf("event %+v, want %s %s", ev, typ, path)
	}
	return ev
}

func wantState(t *testing.T, ch <-chan StateEvent, st State, server string) StateEvent {
	t.Helper()
	ev := recv(t, ch)
	if ev.State != st || (server != "" && ev.Server != server) {
		t.Fatalf("state event %+v, want %v on %q", ev, st, server)
	}
	return ev
}

// async runs f in a goroutine; the returned function waits for its error.
func async(f func() error) func() error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return func() error {
		select {
		case err := <-ch:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("timed out")
		}
	}
}

func pendingCount(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.pending)
}

func opsOf(frames []frec, ops ...string) []wire.Request {
	var out []wire.Request
	for _, f := range frames {
		if slices.Contains(ops, f.req.Op) {
			out = append(out, f.req)
		}
	}
	return out
}

func TestPipelineThousandInFlight(t *testing.T) {
	cl := newFakeCluster(t)
	s := cl.newServer()
	c := connect(t, []string{s.addr})
	ctx := testCtx(t)

	const n = 1000
	s.setHold(true)
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], _, errs[i] = c.Create(ctx, fmt.Sprintf("/n%04d", i), []byte(fmt.Sprint(i)), ModePersistent)
		}()
	}
	waitFor(t, "1000 creates in flight", func() bool { return len(s.receivedOp(wire.OpCreate)) == n })
	if got := s.outstanding(); got < n {
		t.Fatalf("outstanding %d, want >= %d", got, n)
	}
	s.setHold(false)
	wg.Wait()
	for i := range n {
		if want := fmt.Sprintf("/n%04d", i); errs[i] != nil || paths[i] != want {
			t.Fatalf("create %d: %q, %v; want %q", i, paths[i], errs[i], want)
		}
	}
	if max := s.maxOutstanding(); max > DefaultMaxInFlight {
		t.Fatalf("max outstanding %d > %d", max, DefaultMaxInFlight)
	}

	// Xids strictly increase on the connection.
	var last int64
	for _, f := range s.received() {
		if f.req.Xid <= last {
			t.Fatalf("xid %d (%s) after %d", f.req.Xid, f.req.Op, last)
		}
		last = f.req.Xid
	}

	// Answers match their requests with many reads in flight.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, st, err := c.Get(ctx, fmt.Sprintf("/n%04d", i))
			if err != nil || string(data) != fmt.Sprint(i) || st == nil || st.DataLength != int32(len(data)) {
				errs[i] = fmt.Errorf("get %d: %q %+v %v", i, data, st, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	names, _, err := c.Children(ctx, "/")
	if err != nil || len(names) != n {
		t.Fatalf("children: %d names, %v", len(names), err)
	}
}

func TestMaxInFlight(t *testing.T) {
	cl := newFakeCluster(t)
	s := cl.newServer()
	c := connect(t, []string{s.addr}, WithMaxInFlight(8))
	ctx := testCtx(t)

	s.setHold(true)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Get(ctx, "/"); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "8 requests in flight", func() bool { return s.outstanding() == 8 })
	time.Sleep(50 * time.Millisecond)
	if got := len(s.receivedOp(wire.OpGet)); got != 8 {
		t.Fatalf("server received %d gets, want 8", got)
	}
	// A request waiting for a slot gives up with its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, _, err := c.Get(short, "/")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get waiting for a slot: %v", err)
	}
	s.setHold(false)
	wg.Wait()
	if got := s.maxOutstanding(); got != 8 {
		t.Fatalf("max outstanding %d, want 8", got)
	}
}

func TestCancelStopsWaitNotConnection(t *testing.T) {
	cl := newFakeCluster(t)
	s := cl.newServer()
	c := connect(t, []string{s.addr})
	ctx := testCtx(t)
	states := c.StateEvents(ctx)
	wantState(t, states, StateConnected, s.addr)

	s.setHold(true)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	_, _, err := c.Get(short, "/")
	cancel()
	var oe *OpError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "get" || oe.Path != "/" {
		t.Fatalf("cancelled get: %v", err)
	}
	// A watch set by an abandoned read is not registered.
	short, cancel = context.WithTimeout(ctx, 30*time.Millisecond)
	_, _, _, err = c.GetW(short, "/")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled getw: %v", err)
	}
	s.setHold(false)
	if _, _, err := c.Get(ctx, "/"); err != nil {
		t.Fatalf("get after cancel: %v", err)
	}
	waitFor(t, "abandoned requests answered", func() bool { return pendingCount(c) == 0 })
	c.mu.Lock()
	watches := len(c.mu.watches)
	c.mu.Unlock()
	if watches != 0 {
		t.Fatalf("%d watches registered by abandoned reads", watches)
	}
	if s.numUpgrades() != 1 || c.State() != StateConnected {
		t.Fatalf("%d connections, state %v: cancellation touched the connection", s.numUpgrades(), c.State())
	}
	select {
	case ev := <-states:
		t.Fatalf("unexpected state event %+v", ev)
	default:
	}
}

func TestConnectFailsOverToSecondServer(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	a.stop() // its listener is closed: connection refused
	c := connect(t, []string{a.addr, b.addr})
	ctx := testCtx(t)
	ev := wantState(t, c.StateEvents(ctx), StateConnected, b.addr)
	if ev.ServerID != b.id || !ev.NewSession || ev.SessionID == 0 {
		t.Fatalf("state %+v", ev)
	}
	if _, _, err := c.Create(ctx, "/x", nil, ModeEphemeral); err != nil {
		t.Fatal(err)
	}
}

func TestConnectGivesUpWithContext(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	a.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Connect(ctx, []string{a.addr})
	if !errors.Is(err, ErrConnectionLoss) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect to a dead server: %v", err)
	}
	if _, err := Connect(ctx, nil); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("Connect without servers: %v", err)
	}
	if _, err := Connect(ctx, []string{a.addr}, WithMaxInFlight(1025)); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("WithMaxInFlight(1025): %v", err)
	}
	if _, err := Connect(ctx, []string{a.addr}, WithTLSConfig(&tls.Config{})); !errors.Is(err, ErrUnimplemented) {
		t.Fatalf("WithTLSConfig: %v", err)
	}
}

func TestResumeResendsInFlightWithSameXids(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr, b.addr})
	ctx := testCtx(t)
	states := c.StateEvents(ctx)
	first := wantState(t, states, StateConnected, a.addr)
	if _, _, err := c.Create(ctx, "/base", []byte("v1"), ModePersistent); err != nil {
		t.Fatal(err)
	}

	// Two writes applied whose answers are lost...
	a.setMute(true)
	var x1 string
	waitX1 := async(func() (err error) { x1, _, err = c.Create(ctx, "/x1", []byte("one"), ModeEphemeral); return })
	waitFor(t, "/x1 applied", func() bool { _, ok := cl.node("/x1"); return ok })
	var setStat *Stat
	waitSet := async(func() (err error) { setStat, err = c.Set(ctx, "/base", []byte("v2"), 0); return })
	waitFor(t, "set applied", func() bool { d, _ := cl.node("/base"); return string(d) == "v2" })
	// ...then a write and a read received but not applied.
	a.setMute(false)
	a.setHold(true)
	var x3 string
	waitX3 := async(func() (err error) { x3, _, err = c.Create(ctx, "/x3", nil, ModePersistent); return })
	waitFor(t, "/x3 received", func() bool { return len(a.receivedOp(wire.OpCreate)) == 3 })
	var got []byte
	waitGet := async(func() (err error) { got, _, err = c.Get(ctx, "/x1"); return })
	waitFor(t, "get received", func() bool { return len(a.receivedOp(wire.OpGet)) == 1 })

	a.stop()
	wantState(t, states, StateDisconnected, a.addr)
	ev := wantState(t, states, StateConnected, b.addr)
	if ev.NewSession || ev.SessionID != first.SessionID {
		t.Fatalf("reconnected as %+v, want session %v resumed", ev, first.SessionID)
	}

	if err := waitX1(); err != nil || x1 != "/x1" {
		t.Fatalf("create /x1: %q %v", x1, err)
	}
	if err := waitSet(); err != nil || setStat.Version != 1 {
		t.Fatalf("set: %+v %v", setStat, err)
	}
	if err := waitX3(); err != nil || x3 != "/x3" {
		t.Fatalf("create /x3: %q %v", x3, err)
	}
	if err := waitGet(); err != nil || string(got) != "one" {
		t.Fatalf("get: %q %v", got, err)
	}

	// b saw the resume, then the same requests with the same xids, in the
	// same order.
	bf := b.received()
	if bf[0].req.Op != wire.OpConnect || bf[0].req.SessionID != first.SessionID || bf[0].req.Password == "" || bf[0].req.LastZxid == 0 {
		t.Fatalf("first frame on b: %+v", bf[0].req)
	}
	sent := opsOf(a.received(), wire.OpCreate, wire.OpSet, wire.OpGet)[1:] // after /base
	resent := opsOf(bf, wire.OpCreate, wire.OpSet, wire.OpGet)
	if len(resent) != len(sent) {
		t.Fatalf("resent %d requests, want %d", len(resent), len(sent))
	}
	for i := range sent {
		if sent[i].Xid != resent[i].Xid || sent[i].Op != resent[i].Op || sent[i].Path != resent[i].Path {
			t.Fatalf("resent #%d: %s %s xid %d, first sent %s %s xid %d", i,
				resent[i].Op, resent[i].Path, resent[i].Xid, sent[i].Op, sent[i].Path, sent[i].Xid)
		}
	}
	for _, r := range resent {
		if isWrite(r.Op) {
			if n := cl.appliesOf(first.SessionID, r.Xid); n != 1 {
				t.Fatalf("%s %s applied %d times", r.Op, r.Path, n)
			}
		}
	}
	if n := cl.totalApplies(); n != 4 {
		t.Fatalf("%d writes applied, want 4", n)
	}
	// The ephemeral survived: same session.
	if ok, _, err := c.Exists(ctx, "/x1"); !ok || err != nil {
		t.Fatalf("/x1 after resume: %v %v", ok, err)
	}
}

func TestOperations(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr})
	ctx := testCtx(t)

	p, st, err := c.Create(ctx, "/q", []byte("hi"), ModePersistent, WithACL(OpenACL()...))
	if err != nil || p != "/q" || st == nil || st.Czxid == 0 {
		t.Fatalf("create: %q %+v %v", p, st, err)
	}
	if _, _, err := c.Create(ctx, "/q", nil, ModePersistent); !errors.Is(err, ErrNodeExists) {
		t.Fatalf("create again: %v", err)
	}
	seq, _, err := c.Create(ctx, "/q/item-", nil, ModePersistentSequential)
	if err != nil || seq != "/q/item-0000000000" {
		t.Fatalf("sequential: %q %v", seq, err)
	}
	if _, _, err := c.Create(ctx, "/t", nil, ModePersistentTTL); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("TTL mode without TTL: %v", err)
	}
	if _, _, err := c.Create(ctx, "/t", nil, ModePersistent, WithTTL(time.Second)); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("TTL without TTL mode: %v", err)
	}
	if _, _, err := c.Create(ctx, "bad", nil, ModePersistent); !errors.Is(err, ErrBadPath) || !errors.Is(err, ErrBadArguments) {
		t.Fatalf("bad path: %v", err)
	}
	if _, _, err := c.Create(ctx, "/big", make([]byte, wire.DefaultMaxDataBytes+1), ModePersistent); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("too much data: %v", err)
	}
	big := Ops()
	for i := range 3 {
		big.Create(fmt.Sprintf("/big%d", i), make([]byte, wire.DefaultMaxDataBytes/2), ModePersistent)
	}
	if _, err := c.Multi(ctx, big); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("multi larger than a frame: %v", err)
	}
	if _, err := c.Set(ctx, "/q", []byte("x"), 7); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("set with a wrong version: %v", err)
	}
	if err := c.Delete(ctx, "/q", AnyVersion); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("delete non-empty: %v", err)
	}
	if ok, _, err := c.Exists(ctx, "/nope"); ok || err != nil {
		t.Fatalf("exists /nope: %v %v", ok, err)
	}
	acl, _, err := c.GetACL(ctx, "/q")
	if err != nil || len(acl) != 1 || acl[0].Perms != PermAll {
		t.Fatalf("get_acl: %+v %v", acl, err)
	}
	if st, err := c.SetACL(ctx, "/q", ReadACL(), 0); err != nil || st.Aversion != 1 {
		t.Fatalf("set_acl: %+v %v", st, err)
	}
	if err := c.Sync(ctx, "/q"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAuth(ctx, "digest", "u:p"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAuth(ctx, "digest", "bad"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("bad auth: %v", err)
	}

	// Paging and local reads.
	for i := range 5 {
		if _, _, err := c.Create(ctx, fmt.Sprintf("/q/c%d", i), nil, ModePersistent); err != nil {
			t.Fatal(err)
		}
	}
	page, _, err := c.Children(ctx, "/q", Page(2, "c1"), Local())
	if err != nil || !slices.Equal(page, []string{"c2", "c3"}) {
		t.Fatalf("page: %v %v", page, err)
	}
	reqs := a.receivedOp(wire.OpChildren)
	if r := reqs[len(reqs)-1]; !r.Local || r.Limit != 2 || r.After != "c1" {
		t.Fatalf("children request %+v", r)
	}

	// Multi.
	res, err := c.Multi(ctx, Ops().Create("/m", []byte("a"), ModePersistent).Set("/m", []byte("b"), 0).Check("/m", 1).Delete("/q/c0", AnyVersion))
	if err != nil || len(res) != 4 || res[0].Path != "/m" || res[1].Stat == nil || res[1].Stat.Version != 1 {
		t.Fatalf("multi: %+v %v", res, err)
	}
	res, err = c.Multi(ctx, Ops().Set("/m", []byte("c"), AnyVersion).Check("/m", 5).Delete("/m", AnyVersion))
	var oe *OpError
	if !errors.Is(err, ErrBadVersion) || !errors.As(err, &oe) || oe.Op != "multi" || oe.Path != "/m" {
		t.Fatalf("failed multi: %v", err)
	}
	if len(res) != 3 || res[0].Err != nil || !errors.Is(res[1].Err, ErrBadVersion) || !errors.Is(res[2].Err, ErrRuntimeInconsistency) {
		t.Fatalf("failed multi results: %+v", res)
	}
	if d, _, _ := c.Get(ctx, "/m"); string(d) != "b" {
		t.Fatalf("failed multi applied: %q", d)
	}
	before := len(a.receivedOp(wire.OpMulti))
	if _, err := c.Multi(ctx, Ops().Check("/m", 0).Delete("rel", 0)); !errors.Is(err, ErrBadPath) {
		t.Fatalf("multi with a bad path: %v", err)
	}
	if len(a.receivedOp(wire.OpMulti)) != before {
		t.Fatal("an invalid multi was sent")
	}
}

func TestAuthReplayedBeforeResend(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr, b.addr}, WithAuth("digest", "u:p"))
	ctx := testCtx(t)
	if err := c.AddAuth(ctx, "digest", "v:q"); err != nil {
		t.Fatal(err)
	}
	a.setHold(true)
	wait := async(func() error { _, err := c.Set(ctx, "/", []byte("x"), AnyVersion); return err })
	waitFor(t, "set received", func() bool { return len(a.receivedOp(wire.OpSet)) == 1 })
	a.stop()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, f := range b.received() {
		op := f.req.Op
		if op == wire.OpAuth {
			op += " " + f.req.Credential
		}
		ops = append(ops, op)
	}
	if want := []string{"connect", "auth u:p", "auth v:q", "set"}; !slices.Equal(ops[:4], want) {
		t.Fatalf("frames on b: %v, want %v first", ops, want)
	}
}

// An idle client keeps its session with websocket control frames, never
// JSON requests: pings, answered, since it has not heard from the server
// lately. One that hears from the server often (a stream of events) but
// writes nothing sends pongs instead, heartbeats the server does not answer.
func TestPingWhenIdle(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr}, WithSessionTimeout(150*time.Millisecond))
	waitFor(t, "pings", func() bool { pings, _ := a.heartbeats(); return pings >= 3 })
	if _, pongs := a.heartbeats(); pongs != 0 {
		t.Fatalf("an idle client sent %d pongs: nothing tells it the server is there", pongs)
	}
	if a.numUpgrades() != 1 || c.State() != StateConnected {
		t.Fatalf("%d connections, state %v", a.numUpgrades(), c.State())
	}
	if n := len(a.receivedOp(wire.OpPing)); n != 0 {
		t.Fatalf("%d JSON ping requests", n)
	}

	ctx := testCtx(t)
	w := connect(t, []string{b.addr}, WithSessionTimeout(150*time.Millisecond))
	if _, err := w.AddWatch(ctx, "/", WatchPersistentRecursive); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writer := async(func() error {
		for {
			select {
			case <-stop:
				return nil
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := c.Set(ctx, "/", []byte("x"), AnyVersion); err != nil {
				return err
			}
		}
	})
	waitFor(t, "pongs from the watcher", func() bool { _, pongs := b.heartbeats(); return pongs >= 3 })
	close(stop)
	if err := writer(); err != nil {
		t.Fatal(err)
	}
	if n := len(b.receivedOp(wire.OpPing)); n != 0 || w.State() != StateConnected {
		t.Fatalf("%d JSON ping requests, state %v", n, w.State())
	}
}

func TestCloseFailsPending(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr}, WithDialTimeout(200*time.Millisecond))
	ctx := testCtx(t)
	if _, _, err := c.Create(ctx, "/eph", nil, ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	_, _, ch, err := c.GetW(ctx, "/eph")
	if err != nil {
		t.Fatal(err)
	}
	a.setHold(true)
	wait := async(func() error { _, _, err := c.Create(ctx, "/late", nil, ModePersistent); return err })
	waitFor(t, "create received", func() bool { return len(a.receivedOp(wire.OpCreate)) == 2 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("write in flight at Close: %v", err)
	}
	if ev := wantEvent(t, ch, EventNotWatching, "/eph"); !errors.Is(ev.Err, ErrClosed) {
		t.Fatalf("watch at close: %+v", ev)
	}
	waitFor(t, "the close request", func() bool { return len(a.receivedOp(wire.OpClose)) == 1 })
	a.setHold(false)
	// A clean close ends the session at once.
	c2 := connect(t, []string{a.addr})
	if _, _, err := c2.Create(ctx, "/eph2", nil, ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if _, ok := cl.node("/eph2"); ok {
		t.Fatal("ephemeral survived Close")
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
}

// testLogger is the logger of test clients; discard unless debugging.
var testLogger = slog.New(slog.DiscardHandler)

// With every slot taken by a slow request, the idle writer keeps the
// connection alive with websocket pings, whose pongs the reader counts as
// traffic.
func TestControlPingWhenNoSlotIsFree(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr}, WithSessionTimeout(300*time.Millisecond), WithMaxInFlight(1))
	ctx := testCtx(t)
	a.setHold(true)
	wait := async(func() error { _, _, err := c.Get(ctx, "/"); return err })
	time.Sleep(time.Second) // five read timeouts
	if a.numUpgrades() != 1 || c.State() != StateConnected {
		t.Fatalf("%d connections, state %v", a.numUpgrades(), c.State())
	}
	if n := len(a.receivedOp(wire.OpPing)); n != 0 {
		t.Fatalf("%d ping requests with no free slot", n)
	}
	a.setHold(false)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// Resuming, only the dial and the connect request must fit in the
// attempt's share of the session timeout (500 ms here): re-arming the
// watches on a slow server may take the whole dial timeout.
func TestResumeLetsWatchesTakeTheDialTimeout(t *testing.T) {
	cl := newFakeCluster(t)
	a, b := cl.newServer(), cl.newServer()
	c := connect(t, []string{a.addr, b.addr}, WithSessionTimeout(300*time.Millisecond))
	ctx := testCtx(t)
	states := c.StateEvents(ctx)
	first := wantState(t, states, StateConnected, a.addr)
	if _, _, _, err := c.GetW(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	b.setDelay(wire.OpSetWatches, 3*minResumeAttempt/2)
	a.stop()
	wantState(t, states, StateDisconnected, a.addr)
	ev := wantState(t, states, StateConnected, b.addr)
	if ev.NewSession || ev.SessionID != first.SessionID {
		t.Fatalf("reconnected as %+v, want session %v resumed", ev, first.SessionID)
	}
	if n := len(b.receivedOp(wire.OpConnect)); n != 1 {
		t.Fatalf("%d connect attempts on b, want 1", n)
	}
}
