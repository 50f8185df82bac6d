package client

import (
	"fmt"
	"github.com/coord-dev/coord/internal/faultproxy"
	"slices"
	"sync"
	"testing"
	"time"
)

// Kill the server a client is connected to: the client resumes the same
// session on another server, its ephemeral node stays, and its one-shot and
// persistent watches fire for the changes made while it was reconnecting.
func TestIntegrationFailoverKeepsSessionEphemeralsAndWatches(t *testing.T) {
	cl := startCluster(t, 3)
	ctx := integrationCtx(t)
	victim := follower(t, cl) // a follower, so the others keep their leader
	rest := others(cl, victim)

	// A reaches the survivors through proxies, so that the test decides
	// when it may reconnect: after the changes it must not miss.
	var proxies []*faultproxy.Proxy
	servers := []string{victim.ClientAddr()}
	for _, addr := range rest {
		p := faultproxy.New(t, addr)
		proxies = append(proxies, p)
		servers = append(servers, p.Addr())
	}
	a := connect(t, servers, WithDialTimeout(time.Second))
	b := connect(t, rest)
	states := a.StateEvents(ctx)
	first := wantState(t, states, StateConnected, victim.ClientAddr())

	mustCreate(t, a, "/f")
	mustCreate(t, a, "/f/data")
	if _, _, err := a.Create(ctx, "/f/eph", []byte("mine"), ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	_, dataStat, dataCh, err := a.GetW(ctx, "/f/data")
	if err != nil {
		t.Fatal(err)
	}
	ok, _, existCh, err := a.ExistsW(ctx, "/f/new")
	if err != nil || ok {
		t.Fatalf("exists /f/new: %v %v", ok, err)
	}
	_, _, childCh, err := a.ChildrenW(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := a.AddWatch(ctx, "/f", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	pers, err := a.AddWatch(ctx, "/f", WatchPersistent)
	if err != nil {
		t.Fatal(err)
	}

	for _, p := range proxies {
		p.Partition()
	}
	victim.Kill()
	if ev := wantState(t, states, StateDisconnected, victim.ClientAddr()); ev.SessionID != first.SessionID {
		t.Fatalf("disconnected event %+v", ev)
	}

	// Changes while A cannot reach any server.
	if _, err := b.Set(ctx, "/f/data", []byte("x"), dataStat.Version); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/f/new", "/f/c1"} {
		mustCreate(t, b, p)
	}
	if err := b.Delete(ctx, "/f/c1", AnyVersion); err != nil {
		t.Fatal(err)
	}
	if a.State() != StateDisconnected {
		t.Fatalf("A reconnected during the partition: %v", a.State())
	}
	for _, p := range proxies {
		p.Heal()
	}

	ev := wantState(t, states, StateConnected, "")
	if ev.NewSession || ev.SessionID != first.SessionID || ev.ServerID == first.ServerID {
		t.Fatalf("reconnected %+v, want session %v resumed on another server", ev, first.SessionID)
	}
	wantEvent(t, dataCh, EventNodeDataChanged, "/f/data")
	recvClosed(t, dataCh)
	wantEvent(t, existCh, EventNodeCreated, "/f/new")
	wantEvent(t, childCh, EventNodeChildrenChanged, "/f")
	for _, want := range []struct {
		typ  EventType
		path string
	}{
		{EventNodeDataChanged, "/f/data"},
		{EventNodeCreated, "/f/new"},
		{EventNodeCreated, "/f/c1"},
		{EventNodeDeleted, "/f/c1"},
	} {
		wantEvent(t, rec.Events(), want.typ, want.path)
	}
	// The plain persistent watch of /f sees its children change three
	// times: create /f/new, create /f/c1, delete /f/c1.
	for range 3 {
		wantEvent(t, pers.Events(), EventNodeChildrenChanged, "/f")
	}

	_, st, err := b.Get(ctx, "/f/eph")
	if err != nil {
		t.Fatalf("ephemeral gone after failover: %v", err)
	}
	if st.EphemeralOwner != first.SessionID {
		t.Fatalf("ephemeral owner %v, want %v", st.EphemeralOwner, first.SessionID)
	}
	// And A works on.
	if _, err := a.Set(ctx, "/f/data", []byte("y"), AnyVersion); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, rec.Events(), EventNodeDataChanged, "/f/data")
}

// Writes in flight when the connection is cut apply exactly once: the client
// resends them with their xids after resuming the session and gets their
// first outcome. Sequential creates make a duplicate visible as an extra
// child.
func TestIntegrationExactlyOnceAcrossCutConnections(t *testing.T) {
	cl := startCluster(t, 1)
	c := connect(t, cl.ClientAddrs())
	mustCreate(t, c, "/q")

	const n = 400
	paths := runCreates(t, c, "/q/n-", n, func(done int) {
		// Cut the client's websocket (the test's hook into the client)
		// five times while the creates are in flight.
		if done%80 == 40 {
			c.mu.Lock()
			if cn := c.mu.conn; cn != nil {
				cn.kill(fmt.Errorf("test cut at %d", done))
			}
			c.mu.Unlock()
		}
	})
	checkExactlyOnce(t, c, "/q", "n-", paths, n)
}

// The same when the server the client is connected to (the leader, so that
// in-flight proposals may be lost or committed) is killed with writes in
// flight: every create applies once.
func TestIntegrationExactlyOnceAcrossLeaderKill(t *testing.T) {
	cl := startCluster(t, 3)
	leader := cl.Leader()
	c := connect(t, append([]string{leader.ClientAddr()}, others(cl, leader)...))
	mustCreate(t, c, "/q")

	const n = 400
	var once sync.Once
	paths := runCreates(t, c, "/q/n-", n, func(done int) {
		if done >= n/4 {
			once.Do(leader.Kill)
		}
	})
	checkExactlyOnce(t, c, "/q", "n-", paths, n)
}

// The same with the client on a follower, so that the killed leader had
// the follower's forwarded proposals in flight and the client's connection
// survives.
//
// Skipped: the server answers some of those writes RuntimeInconsistency
// ("a later write of this session was applied first (this one was delayed
// by a leader change)"), in about a third of the runs: no write is applied
// twice, but writes the client sent once, in order, on one connection are
// refused, which PROTOCOL.md's exactly-once rule does not allow. Remove the
// skip once the server keeps a session's writes in order across a leader
// change.
func TestIntegrationExactlyOnceFollowerAcrossLeaderKill(t *testing.T) {
	cl := startCluster(t, 3)
	leader := cl.Leader()
	c := connect(t, []string{follower(t, cl).ClientAddr()})
	mustCreate(t, c, "/q")

	const n = 400
	var once sync.Once
	paths := runCreates(t, c, "/q/n-", n, func(done int) {
		if done >= n/4 {
			once.Do(leader.Kill)
		}
	})
	checkExactlyOnce(t, c, "/q", "n-", paths, n)
}

// runCreates runs n sequential creates of prefix from 32 goroutines and
// returns the paths created. progress is called after each answer with the
// number answered so far.
func runCreates(t *testing.T, c *Client, prefix string, n int, progress func(done int)) []string {
	t.Helper()
	ctx := integrationCtx(t)
	var (
		mu    sync.Mutex
		paths []string
		errs  []error
		wg    sync.WaitGroup
		next  = make(chan int, n)
	)
	for i := range n {
		next <- i
	}
	close(next)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				p, _, err := c.Create(ctx, prefix, nil, ModePersistentSequential)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					paths = append(paths, p)
				}
				done := len(paths) + len(errs)
				mu.Unlock()
				progress(done)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("create: %v", err)
	}
	return paths
}

// checkExactlyOnce checks that the n creates answered paths and that the
// children of dir are exactly those: no create lost, none applied twice.
func checkExactlyOnce(t *testing.T, c *Client, dir, prefix string, paths []string, n int) {
	t.Helper()
	ctx := integrationCtx(t)
	if len(paths) != n {
		t.Fatalf("%d creates succeeded, want %d", len(paths), n)
	}
	names, _, err := c.Children(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(paths))
	for i, p := range paths {
		got[i] = p[len(dir)+1:]
	}
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != n {
		t.Fatalf("two creates answered the same path")
	}
	if !slices.Equal(got, names) {
		t.Fatalf("children of %s differ from the created paths: %d children, %d creates (a create applied twice?)\nchildren %v\ncreated  %v",
			dir, len(names), n, names, got)
	}
	// Sequence numbers are dense: the n creates are the only creates.
	for i, name := range names {
		if want := seqName(prefix, i); name != want {
			t.Fatalf("child %d is %s, want %s", i, name, want)
		}
	}
}

// A client cut off from its server, which stays in the cluster (and so
// stops hearing from it, and stops reporting it alive), notices the
// silence in time to resume its session on another server before the
// leader expires it: its ephemeral stays, with the same owner. The client
// reads a frame just before the cut, so that the session's last heartbeat
// and the client's last read coincide, and the next server it tries is cut
// off too (its handshake never completes): the client must give up on the
// silent connection well before a session timeout, as ZooKeeper's does
// after two thirds of it, and must not give the silent next server its
// whole dial timeout (5 s by default, longer than the session's).
func TestIntegrationSessionSurvivesCutFromItsServer(t *testing.T) {
	cl := startCluster(t, 3)
	ctx := integrationCtx(t)
	victim := follower(t, cl)
	rest := others(cl, victim)
	px := faultproxy.New(t, victim.ClientAddr())
	dark := faultproxy.New(t, rest[0])
	dark.Partition()
	a := connect(t, []string{px.Addr(), dark.Addr(), rest[1]}, WithSessionTimeout(4500*time.Millisecond), WithDialTimeout(DefaultDialTimeout))
	b := connect(t, rest)
	states := a.StateEvents(ctx)
	wantState(t, states, StateConnected, px.Addr())
	sid := a.SessionID()

	mustCreate(t, a, "/cut")
	if _, _, err := a.Create(ctx, "/cut/eph", nil, ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(ctx, "/cut"); err != nil {
		t.Fatal(err)
	}
	px.Partition()
	for {
		ev := recv(t, states)
		if ev.State == StateExpired {
			t.Fatalf("the session expired before the client moved: %+v", ev)
		}
		if ev.State == StateConnected {
			if ev.Server != rest[1] || ev.SessionID != sid || ev.NewSession {
				t.Fatalf("reconnected as %+v, want session %v resumed on %s", ev, sid, rest[1])
			}
			break
		}
	}
	_, st, err := b.Get(ctx, "/cut/eph")
	if err != nil {
		t.Fatalf("the ephemeral after the move: %v", err)
	}
	if st.EphemeralOwner != sid {
		t.Fatalf("the ephemeral's owner is %v, want %v", st.EphemeralOwner, sid)
	}
	if _, err := a.Set(ctx, "/cut", []byte("moved"), AnyVersion); err != nil {
		t.Fatalf("a write after the move: %v", err)
	}
}
