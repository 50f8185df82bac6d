package recipe

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Readers share the lock; a writer waits for them; a reader arriving after
// a waiting writer queues behind it (no writer starvation); and a writer
// that dies while holding the lock releases it.
func TestRWMutexSharingOrderAndDeath(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	lockPath := testPath(t, "rw")
	cs := newClients(t, 6, servers)
	nodes := func() int {
		names, _, _ := cs[0].Children(ctx, lockPath)
		return len(names)
	}

	readers := make([]*RWMutex, 3)
	for i := range readers {
		readers[i] = NewRWMutex(cs[i], lockPath)
		// Each returns while the others hold: the lock is shared.
		if err := readers[i].RLock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	writer := NewRWMutex(cs[3], lockPath)
	if err := writer.TryLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock under readers: %v", err)
	}
	writerDone := async(func() error { return writer.Lock(ctx) })
	waitFor(t, 10*time.Second, "the writer's node", func() bool { return nodes() == 4 })
	late := NewRWMutex(cs[4], lockPath)
	if err := late.TryRLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryRLock behind a waiting writer: %v", err)
	}
	lateDone := async(func() error { return late.RLock(ctx) })
	waitFor(t, 10*time.Second, "the late reader's node", func() bool { return nodes() == 5 })

	for _, r := range readers {
		if err := r.RUnlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := recv(t, writerDone, 10*time.Second, "the writer's lock"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lateDone:
		t.Fatalf("a reader got in with the writer: %v", err)
	default:
	}
	if err := writer.RUnlock(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("RUnlock of a write lock: %v", err)
	}
	for _, r := range readers {
		if r.Token() >= writer.Token() {
			t.Fatalf("reader token %d not below the writer's %d", r.Token(), writer.Token())
		}
	}
	// The writer dies holding the lock: the reader behind it goes ahead.
	cs[3].Close()
	if err := recv(t, lateDone, 10*time.Second, "the late reader's lock"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(writer.Lost(), 10*time.Second) {
		t.Fatal("the dead writer's Lost is open")
	}
	if err := late.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// Three readers and two writers loop on one lock: a writer is always
// alone, a reader never with a writer, and no node is left behind.
func TestRWMutexContention(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	lockPath := testPath(t, "rw")
	cs := newClients(t, 5, servers)
	var (
		readersIn, writersIn atomic.Int32
		maxReaders           atomic.Int32
		wg                   sync.WaitGroup
	)
	errc := make(chan error, 100)
	for i, c := range cs {
		rw := NewRWMutex(c, lockPath)
		write := i >= 3
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 30 {
				if write {
					if err := rw.Lock(ctx); err != nil {
						errc <- err
						return
					}
					if w, r := writersIn.Add(1), readersIn.Load(); w != 1 || r != 0 {
						errc <- fmt.Errorf("writer with %d writers and %d readers", w, r)
					}
					writersIn.Add(-1)
					if err := rw.Unlock(ctx); err != nil {
						errc <- err
						return
					}
					continue
				}
				if err := rw.RLock(ctx); err != nil {
					errc <- err
					return
				}
				r := readersIn.Add(1)
				for m := maxReaders.Load(); r > m && !maxReaders.CompareAndSwap(m, r); m = maxReaders.Load() {
				}
				if w := writersIn.Load(); w != 0 {
					errc <- fmt.Errorf("reader with %d writers", w)
				}
				readersIn.Add(-1)
				if err := rw.RUnlock(ctx); err != nil {
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
	names, _, err := cs[0].Children(ctx, lockPath)
	if err != nil || len(names) != 0 {
		t.Fatalf("nodes left: %v %v", names, err)
	}
	t.Logf("at most %d readers at once", maxReaders.Load())
}
