package client

import (
	"errors"
	"github.com/coord-dev/coord/internal/faultproxy"
	"testing"
	"time"
)

// A client cut off from the cluster for longer than its session timeout
// learns on its return that the session expired: StateExpired, a write it
// had sent fails with ErrUnknownOutcome, its watches end, and NewSession
// starts a fresh session.
func TestIntegrationSessionExpiryAndNewSession(t *testing.T) {
	cl := startCluster(t, 1)
	ctx := integrationCtx(t)
	proxy := faultproxy.New(t, cl.ClientAddrs()[0])
	a := connect(t, []string{proxy.Addr()}, WithSessionTimeout(800*time.Millisecond), WithDialTimeout(300*time.Millisecond))
	b := connect(t, cl.ClientAddrs())
	states := a.StateEvents(ctx)
	first := wantState(t, states, StateConnected, proxy.Addr())

	mustCreate(t, a, "/s")
	if _, _, err := a.Create(ctx, "/s/eph", nil, ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	_, _, oneShot, err := a.GetW(ctx, "/s")
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.AddWatch(ctx, "/s", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	ok, _, ephGone, err := b.ExistsW(ctx, "/s/eph")
	if err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}

	proxy.Partition()
	// Sent into the partition: its fate is unknown once the session is.
	lost := async(func() error {
		_, _, err := a.Create(ctx, "/s/lost", nil, ModePersistent)
		return err
	})
	waitFor(t, "the create to be sent", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, cl := range a.mu.pending {
			if cl.op == "create" && cl.sent.Load() {
				return true
			}
		}
		return false
	})
	// The servers expire the session: its ephemeral goes.
	wantEvent(t, ephGone, EventNodeDeleted, "/s/eph")
	if exists(t, b, "/s/lost") {
		t.Fatal("a create sent into a partition was applied")
	}
	proxy.Heal()

	err = lost()
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("write in flight at expiry: %v", err)
	}
	for {
		ev := recv(t, states)
		if ev.State == StateDisconnected {
			continue
		}
		if ev.State != StateExpired || ev.SessionID != first.SessionID || !errors.Is(ev.Err, ErrSessionExpired) {
			t.Fatalf("state event %+v, want expiry of %v", ev, first.SessionID)
		}
		break
	}
	if ev := wantEvent(t, oneShot, EventNotWatching, "/s"); !errors.Is(ev.Err, ErrSessionExpired) {
		t.Fatalf("one-shot watch end %+v", ev)
	}
	if ev := wantEvent(t, w.Events(), EventNotWatching, "/s"); !errors.Is(ev.Err, ErrSessionExpired) {
		t.Fatalf("persistent watch end %+v", ev)
	}
	recvClosed(t, w.Events())
	_, _, err = a.Get(ctx, "/s")
	wantErr(t, "get after expiry", err, ErrSessionExpired)

	if err := a.NewSession(ctx); err != nil {
		t.Fatal(err)
	}
	ev := wantState(t, states, StateConnected, proxy.Addr())
	if !ev.NewSession || ev.SessionID == first.SessionID || ev.SessionID != a.SessionID() {
		t.Fatalf("new session event %+v", ev)
	}
	_, st, err := a.Create(ctx, "/s/eph", nil, ModeEphemeral)
	if err != nil || st.EphemeralOwner != ev.SessionID {
		t.Fatalf("ephemeral of the new session: %+v %v", st, err)
	}
}
