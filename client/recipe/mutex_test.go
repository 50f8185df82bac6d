package recipe

import (
	"context"
	"errors"
	"fmt"
	"github.com/coord-dev/coord/internal/faultproxy"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// 16 contenders on 3 servers, 1,000 acquisitions in all: never two holders
// at once, as a shared counter checked inside the critical section and the
// fencing tokens (strictly increasing) both show; every 10th holder also
// writes through the lock's guard.
func TestMutexSixteenContendersOnThreeServers(t *testing.T) {
	cl := startCluster(t, 3)
	ctx := testCtx(t)
	clients := newClients(t, 16, cl.ClientAddrs())
	lockPath := "/locks/sixteen"
	if _, _, err := clients[0].Create(ctx, "/guarded", []byte("0"), client.ModePersistent); err != nil {
		t.Fatal(err)
	}
	var guarded atomic.Int64
	contend(t, ctx, clients, lockPath, 1000, func(c *client.Client, m *Mutex, n int64) error {
		if n%10 != 0 {
			return nil
		}
		// Read, then write on condition that the lock is still held: no
		// other holder can slip in between.
		data, st, err := c.Get(ctx, "/guarded")
		if err == nil {
			v, _ := strconv.Atoi(string(data))
			_, err = m.Do(ctx, client.Ops().Set("/guarded", []byte(strconv.Itoa(v+1)), st.Version))
		}
		if err != nil {
			return fmt.Errorf("guarded write: %w", err)
		}
		guarded.Add(1)
		return nil
	})
	data, _, err := clients[0].Get(ctx, "/guarded")
	if err != nil || string(data) != strconv.FormatInt(guarded.Load(), 10) {
		t.Fatalf("guarded counter %q after %d guarded writes (%v)", data, guarded.Load(), err)
	}
	names, _, err := clients[0].Children(ctx, lockPath)
	if err != nil || len(names) != 0 {
		t.Fatalf("lock nodes left: %v %v", names, err)
	}
}

// contend runs a contender per client, each looping Lock, hold, Unlock on
// the lock at lockPath until total acquisitions are made in all, and fails
// t if two ever hold it at once (a counter checked inside the critical
// section) or a fencing token does not increase. hold, when not nil, runs
// inside the critical section with the acquisition's number. It returns
// the number of acquisitions.
func contend(t *testing.T, ctx context.Context, clients []*client.Client, lockPath string, total int64,
	hold func(c *client.Client, m *Mutex, n int64) error) int64 {
	t.Helper()
	var (
		acquired  atomic.Int64
		inside    atomic.Int32
		tokenMu   sync.Mutex
		lastToken int64
		wg        sync.WaitGroup
	)
	errc := make(chan error, 4*len(clients))
	for i, c := range clients {
		m := NewMutex(c, lockPath)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for acquired.Load() < total {
				if err := m.Lock(ctx); err != nil {
					errc <- fmt.Errorf("contender %d: lock: %w", i, err)
					return
				}
				n := acquired.Add(1)
				if in := inside.Add(1); in != 1 {
					errc <- fmt.Errorf("contender %d: %d holders at once", i, in)
				}
				tokenMu.Lock()
				if tok := m.Token(); tok <= lastToken {
					errc <- fmt.Errorf("contender %d: token %d after %d", i, tok, lastToken)
				} else {
					lastToken = tok
				}
				tokenMu.Unlock()
				if hold != nil {
					if err := hold(c, m, n); err != nil {
						errc <- fmt.Errorf("contender %d: %w", i, err)
					}
				}
				inside.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					errc <- fmt.Errorf("contender %d: unlock: %w", i, err)
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
	n := acquired.Load()
	if n < total {
		t.Fatalf("%d acquisitions of %d", n, total)
	}
	return n
}

// A holder whose session expires (its client is cut off from the cluster
// by a partition) loses the lock: the next waiter gets it with a larger
// token, and the holder is told (Lost, Unlock) as soon as its client hears
// of the expiry. A waiter cut off the same way does not acquire the lock
// when it returns: its Lock fails, matching client.ErrSessionExpired.
func TestMutexHolderSessionExpires(t *testing.T) {
	cl := startCluster(t, 1)
	ctx := testCtx(t)
	addr := cl.ClientAddrs()[0]
	holderProxy, lateProxy := faultproxy.New(t, addr), faultproxy.New(t, addr)
	short := []client.Option{client.WithSessionTimeout(shortSession), client.WithDialTimeout(300 * time.Millisecond)}
	holderC := newClient(t, []string{holderProxy.Addr()}, short...)
	lateC := newClient(t, []string{lateProxy.Addr()}, short...)
	nextC := newClient(t, cl.ClientAddrs())
	lockPath := testPath(t, "lock")

	holder, next, late := NewMutex(holderC, lockPath), NewMutex(nextC, lockPath), NewMutex(lateC, lockPath)
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	lost := holder.Lost()
	nextDone := async(func() error { return next.Lock(ctx) })
	waitFor(t, 10*time.Second, "the next waiter's node", func() bool {
		names, _, _ := nextC.Children(ctx, lockPath)
		return len(names) == 2
	})
	lateDone := async(func() error { return late.Lock(ctx) })
	waitFor(t, 10*time.Second, "the late waiter's node", func() bool {
		names, _, _ := nextC.Children(ctx, lockPath)
		return len(names) == 3
	})

	holderProxy.Partition()
	lateProxy.Partition()
	select {
	case err := <-nextDone:
		if err != nil {
			t.Fatalf("next waiter: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the next waiter did not get the lock after the holder's session expired")
	}
	if next.Token() <= holder.Token() {
		t.Fatalf("next holder's token %d, not above the lost holder's %d", next.Token(), holder.Token())
	}
	// The late waiter's session expires too (it may outlive the holder's
	// by up to a ping interval): its node goes.
	waitFor(t, 15*time.Second, "the late waiter's session to expire", func() bool {
		names, _, _ := nextC.Children(ctx, lockPath)
		return len(names) == 1
	})
	holderProxy.Heal()
	lateProxy.Heal()

	if !closedWithin(lost, 15*time.Second) {
		t.Fatal("the holder was not told it lost the lock")
	}
	if err := holder.Unlock(ctx); !errors.Is(err, ErrLockLost) || !errors.Is(err, client.ErrSessionExpired) {
		t.Fatalf("unlock of a lost lock: %v", err)
	}
	select {
	case err := <-lateDone:
		if !errors.Is(err, client.ErrSessionExpired) {
			t.Fatalf("late waiter: %v, want its session expired", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the late waiter's Lock did not return")
	}
	if late.Token() != 0 {
		t.Fatal("the late waiter holds a lock")
	}
	if err := next.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TryLock, Guard and Do, loss by deletion, and cancelled waits that leave
// no node behind.
func TestMutexTryLockGuardAndCancel(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	c1, c2 := newClient(t, servers), newClient(t, servers)
	lockPath := testPath(t, "lock")
	a, b := NewMutex(c1, lockPath), NewMutex(c2, lockPath)

	if _, err := a.Do(ctx, client.Ops()); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Do without the lock: %v", err)
	}
	if err := a.Unlock(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Unlock without the lock: %v", err)
	}
	if err := a.TryLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx); !errors.Is(err, ErrAlreadyHeld) {
		t.Fatalf("second Lock: %v", err)
	}
	if err := b.TryLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock of a held lock: %v", err)
	}
	nodes := func() []string {
		names, _, err := c1.Children(ctx, lockPath)
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if n := nodes(); len(n) != 1 || base(a.Key()) != n[0] {
		t.Fatalf("nodes %v after a failed TryLock (holder %s)", n, a.Key())
	}

	// A wait cut short by its context leaves no node behind.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := b.Lock(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a short context: %v", err)
	}
	waitFor(t, 10*time.Second, "the cancelled waiter's node to go", func() bool { return len(nodes()) == 1 })
	// So does one cut short while its node is being created.
	for i := range 30 {
		short, cancel := context.WithTimeout(ctx, time.Duration(i)*50*time.Microsecond)
		err := b.Lock(short)
		cancel()
		if err == nil {
			t.Fatal("b got a held lock")
		}
	}
	waitFor(t, 10*time.Second, "the abandoned nodes to go", func() bool { return len(nodes()) == 1 })

	// Guarded writes apply while the lock is held...
	if _, _, err := c1.Create(ctx, testPath(t, "data"), nil, client.ModePersistent); err != nil {
		t.Fatal(err)
	}
	res, err := a.Do(ctx, client.Ops().Set(testPath(t, "data"), []byte("by a"), client.AnyVersion))
	if err != nil || len(res) != 2 {
		t.Fatalf("guarded write: %+v %v", res, err)
	}
	// ...and not once it is lost: here its node is deleted behind its back.
	lost := a.Lost()
	if err := c2.Delete(ctx, a.Key(), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	_, err = a.Do(ctx, client.Ops().Set(testPath(t, "data"), []byte("stale"), client.AnyVersion))
	if !errors.Is(err, ErrLockLost) || !errors.Is(err, client.ErrNoNode) {
		t.Fatalf("guarded write after the loss: %v", err)
	}
	if !closedWithin(lost, 10*time.Second) {
		t.Fatal("Lost not closed when Do found the lock node deleted")
	}
	_, err = c1.Multi(ctx, a.Guard(client.Ops().Set(testPath(t, "data"), []byte("stale"), client.AnyVersion)))
	if !errors.Is(err, client.ErrNoNode) {
		t.Fatalf("Multi with a stale guard: %v", err)
	}
	if data, _, _ := c1.Get(ctx, testPath(t, "data")); string(data) != "by a" {
		t.Fatalf("data %q", data)
	}
	if err := a.Unlock(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Unlock of a lost lock: %v", err)
	}
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost of an unheld lock is not closed")
	}
	// The lock is free again.
	if err := b.TryLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// Waiters queue in order and each watches only its predecessor: when a
// waiter in the middle gives up, the one behind it moves up to the holder
// and waits on; releasing the lock hands it on in creation order.
func TestMutexFairOrderAndAbandonedWaiter(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	lockPath := testPath(t, "lock")
	clients := newClients(t, 5, servers)
	ms := make([]*Mutex, len(clients))
	for i, c := range clients {
		ms[i] = NewMutex(c, lockPath)
	}
	if err := ms[0].Lock(ctx); err != nil {
		t.Fatal(err)
	}
	var order []int
	var mu sync.Mutex
	done := make([]<-chan error, len(ms))
	cancels := make([]context.CancelFunc, len(ms))
	for i := 1; i < len(ms); i++ {
		wctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		done[i] = async(func() error {
			if err := ms[i].Lock(wctx); err != nil {
				return err
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			return ms[i].Unlock(ctx)
		})
		waitFor(t, 10*time.Second, "waiter's node", func() bool {
			names, _, _ := clients[0].Children(ctx, lockPath)
			return len(names) == i+1
		})
	}
	cancels[2]()
	if err := <-done[2]; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if err := ms[0].Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 3, 4} {
		if err := <-done[i]; err != nil {
			t.Fatalf("waiter %d: %v", i, err)
		}
		cancels[i]()
	}
	if !slices.Equal(order, []int{1, 3, 4}) {
		t.Fatalf("acquired in order %v", order)
	}
}

// BenchmarkMutex16 is issue 6's lock benchmark: 16 contenders, each with its
// own client, loop lock/unlock on one lock of one coordd. It reports
// acquisitions per second and the 50th and 99th percentiles of the time
// Lock takes. Run with
//
//	go test -run '^$' -bench Mutex16 -benchtime 5000x ./client/recipe/
func BenchmarkMutex16(b *testing.B) {
	cl := startCluster(b, 1)
	ctx := testCtx(b)
	clients := newClients(b, 16, cl.ClientAddrs())
	work := make(chan struct{}, len(clients))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		firstErr error
	)
	for _, c := range clients {
		m := NewMutex(c, "/bench/lock")
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range work {
				start := time.Now()
				err := m.Lock(ctx)
				if err == nil {
					mine = append(mine, time.Since(start))
					err = m.Unlock(ctx)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	start := time.Now()
	n := 0
	for b.Loop() {
		work <- struct{}{}
		n++
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	b.ReportMetric(float64(n)/elapsed.Seconds(), "acq/s")
	b.ReportMetric(float64(percentile(lats, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lats, 0.99).Microseconds())/1000, "p99-ms")
}

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// cmpOr returns a if it is not nil, else b.
func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Against a server that predates reads that wait (they come back at once,
// the blocker still there), waiters fall back to watching their blocker,
// and the lock stays exclusive and fair.
func TestMutexWithoutWaitingReads(t *testing.T) {
	var asked atomic.Int64
	waitGoneOption = func(string) client.ReadOption {
		asked.Add(1)
		return client.Page(0, "") // the defaults: the read does not wait
	}
	t.Cleanup(func() { waitGoneOption = client.WaitGone })

	servers := sharedServers(t)
	n := contend(t, testCtx(t), newClients(t, 4, servers), testPath(t, "lock"), 200, nil)
	// Each wait asks once, then watches: a waiter that asked again and
	// again instead would spin on the server.
	if w := asked.Load(); w == 0 || w > 3*n {
		t.Fatalf("%d acquisitions, %d waits", n, w)
	}
}
