package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// One producer, one consumer: first in, first out; Take waits for an item.
func TestQueueFIFO(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	cs := newClients(t, 2, servers)
	path := testPath(t, "queue")
	put, take := NewQueue(cs[0], path), NewQueue(cs[1], path)

	waiting := async(func() error {
		data, err := take.Take(ctx)
		if err == nil && string(data) != "first" {
			err = fmt.Errorf("took %q", data)
		}
		return err
	})
	if _, err := put.Put(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, waiting, 10*time.Second, "a waiting Take"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := put.Put(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := take.Len(ctx); err != nil || n != 20 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	for i := range 20 {
		data, err := take.Take(ctx)
		if err != nil || string(data) != fmt.Sprint(i) {
			t.Fatalf("take %d: %q %v", i, data, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := take.Take(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take of an empty queue: %v", err)
	}
}

// Three producers and four consumers, one of which dies half-way: every
// item is taken exactly once.
func TestQueueContentionAndDeadConsumer(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "queue")
	cs := newClients(t, 7, servers)
	const producers, perProducer = 3, 40
	var (
		mu    sync.Mutex
		taken = map[string]int{}
		wg    sync.WaitGroup
	)
	errc := make(chan error, 16)
	for p := range producers {
		q := NewQueue(cs[p], path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				if _, err := q.Put(ctx, []byte(fmt.Sprintf("%d/%d", p, i))); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	consumed := make(chan struct{}, producers*perProducer)
	var cwg sync.WaitGroup
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for k := range 4 {
		c := cs[producers+k]
		q := NewQueue(c, path)
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for n := 0; ; n++ {
				if k == 0 && n == 10 {
					c.Close() // dies after taking 10 items
				}
				data, err := q.Take(cctx)
				if err != nil {
					if k != 0 && !errors.Is(err, context.Canceled) {
						errc <- err
					}
					return
				}
				mu.Lock()
				taken[string(data)]++
				mu.Unlock()
				consumed <- struct{}{}
			}
		}()
	}
	wg.Wait()
	for range producers * perProducer {
		recv(t, consumed, 20*time.Second, "an item")
	}
	stop()
	cwg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if len(taken) != producers*perProducer {
		t.Fatalf("%d distinct items taken", len(taken))
	}
	for item, n := range taken {
		if n != 1 {
			t.Errorf("item %s taken %d times", item, n)
		}
	}
	if n, err := NewQueue(cs[producers+1], path).Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len after = %d, %v", n, err)
	}
}
