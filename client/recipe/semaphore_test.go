package recipe

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// Three permits: three holders at once, a fourth waits, and gets a permit
// when a holder dies; a participant with another permit count is refused.
func TestSemaphorePermitsAndDeath(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "sem")
	cs := newClients(t, 5, servers)
	ss := make([]*Semaphore, 5)
	for i := range ss {
		ss[i] = NewSemaphore(cs[i], path, 3)
	}
	for _, s := range ss[:3] {
		if err := s.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss[0].Acquire(ctx); !errors.Is(err, ErrAlreadyHeld) {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := ss[3].TryAcquire(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryAcquire with every permit taken: %v", err)
	}
	fourth := async(func() error { return ss[3].Acquire(ctx) })
	waitFor(t, 10*time.Second, "the fourth participant's node", func() bool {
		names, _, _ := cs[4].Children(ctx, path)
		return len(names) == 4
	})
	select {
	case err := <-fourth:
		t.Fatalf("a fourth permit: %v", err)
	default:
	}
	cs[1].Close() // a holder dies
	if err := recv(t, fourth, 10*time.Second, "the freed permit"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(ss[1].Lost(), 10*time.Second) {
		t.Fatal("the dead holder's Lost is open")
	}
	if err := NewSemaphore(cs[4], path, 5).TryAcquire(ctx); !errors.Is(err, client.ErrBadArguments) {
		t.Fatalf("a participant with 5 permits: %v", err)
	}
	for _, s := range []*Semaphore{ss[0], ss[2], ss[3]} {
		if err := s.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss[0].Release(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("second Release: %v", err)
	}
}

// Eight participants loop on a semaphore of three permits: never more than
// three holders.
func TestSemaphoreContention(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "sem")
	cs := newClients(t, 8, servers)
	var (
		in, most atomic.Int32
		wg       sync.WaitGroup
	)
	errc := make(chan error, 16)
	for _, c := range cs {
		s := NewSemaphore(c, path, 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := s.Acquire(ctx); err != nil {
					errc <- err
					return
				}
				n := in.Add(1)
				if n > 3 {
					errc <- fmt.Errorf("%d holders of 3 permits", n)
				}
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				in.Add(-1)
				if err := s.Release(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	t.Logf("at most %d holders at once", most.Load())
}
