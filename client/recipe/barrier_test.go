package recipe

import (
	"errors"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// Waiters block while the barrier is set and all go when it is removed; a
// waiter that dies is told, and the others are not disturbed.
func TestBarrier(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "barrier")
	cs := newClients(t, 4, servers)
	if err := NewBarrier(cs[0], path).Wait(ctx); err != nil {
		t.Fatalf("Wait on an unset barrier: %v", err)
	}
	b := NewBarrier(cs[0], path)
	if err := b.Set(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx); err != nil {
		t.Fatalf("Set of a set barrier: %v", err)
	}
	var waits []<-chan error
	for _, c := range cs[1:] {
		w := NewBarrier(c, path)
		waits = append(waits, async(func() error { return w.Wait(ctx) }))
	}
	// The watches are set once each waiter has read the node.
	waitFor(t, 10*time.Second, "the waiters", func() bool {
		for _, c := range cs[1:] {
			if ok, _, _ := c.Exists(ctx, path); !ok {
				return false
			}
		}
		return true
	})
	cs[3].Close()
	if err := recv(t, waits[2], 10*time.Second, "the dead waiter"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Wait of a closed client: %v", err)
	}
	for _, w := range waits[:2] {
		select {
		case err := <-w:
			t.Fatalf("a waiter passed a set barrier: %v", err)
		default:
		}
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range waits[:2] {
		if err := recv(t, w, 10*time.Second, "a released waiter"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatalf("Remove of an unset barrier: %v", err)
	}
}

// Enter waits for n live participants (one that dies no longer counts) and
// Leave for every participant to leave (one that dies has left).
func TestDoubleBarrier(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "double")
	cs := newClients(t, 5, servers)
	ds := make([]*DoubleBarrier, len(cs))
	for i, c := range cs {
		ds[i] = NewDoubleBarrier(c, path, 3)
	}
	parties := func() int {
		names, _, _ := cs[4].Children(ctx, path)
		return len(participants(names, partyKinds...))
	}
	entered := make([]<-chan error, len(ds))
	for i := range 2 {
		entered[i] = async(func() error { return ds[i].Enter(ctx) })
		waitFor(t, 10*time.Second, "the participant's node", func() bool { return parties() == i+1 })
	}
	cs[0].Close() // dies before the barrier opens: it no longer counts
	if err := recv(t, entered[0], 10*time.Second, "the dead participant"); err == nil {
		t.Fatal("a dead participant entered")
	}
	waitFor(t, 10*time.Second, "the dead participant's node to go", func() bool { return parties() == 1 })
	entered[2] = async(func() error { return ds[2].Enter(ctx) })
	waitFor(t, 10*time.Second, "the third participant", func() bool { return parties() == 2 })
	for _, i := range []int{1, 2} {
		select {
		case err := <-entered[i]:
			t.Fatalf("participant %d entered with 2 of 3: %v", i, err)
		default:
		}
	}
	entered[3] = async(func() error { return ds[3].Enter(ctx) })
	for _, i := range []int{1, 2, 3} {
		if err := recv(t, entered[i], 10*time.Second, "entry"); err != nil {
			t.Fatalf("participant %d: %v", i, err)
		}
	}
	if err := ds[1].Enter(ctx); !errors.Is(err, ErrAlreadyHeld) {
		t.Fatalf("second Enter: %v", err)
	}

	left1 := async(func() error { return ds[1].Leave(ctx) })
	waitFor(t, 10*time.Second, "participant 1 to leave", func() bool { return parties() == 2 })
	cs[2].Close() // dies inside: it has left
	left3 := async(func() error { return ds[3].Leave(ctx) })
	for _, l := range []<-chan error{left1, left3} {
		if err := recv(t, l, 10*time.Second, "leave"); err != nil {
			t.Fatal(err)
		}
	}
	names, _, err := cs[4].Children(ctx, path)
	if err != nil || len(names) != 0 {
		t.Fatalf("left behind: %v %v", names, err)
	}
	if err := ds[4].Leave(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Leave without Enter: %v", err)
	}
}
