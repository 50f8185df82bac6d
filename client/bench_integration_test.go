package client

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Pipelining: 32 goroutines issuing gets over one client (one websocket)
// against 32 goroutines each with its own client. Issue 6 asks that the
// first be no slower than the second. Run with
//
//	go test -run '^$' -bench 'Gets' -benchtime 20000x ./client/
func BenchmarkGetsOneConn32Goroutines(b *testing.B) {
	benchGets(b, 1)
}

// See BenchmarkGetsOneConn32Goroutines.
func BenchmarkGets32Conns(b *testing.B) {
	benchGets(b, 32)
}

// benchGets runs b.N linearizable gets of a 100-byte node from 32
// goroutines spread over conns clients of one coordd.
func benchGets(b *testing.B, conns int) {
	cl := startCluster(b, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	clients := make([]*Client, conns)
	for i := range clients {
		c, err := Connect(ctx, cl.ClientAddrs())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	if _, _, err := clients[0].Create(ctx, "/bench", make([]byte, 100), ModePersistent); err != nil {
		b.Fatal(err)
	}

	const workers = 32
	work := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for i := range workers {
		c := clients[i%conns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if _, _, err := c.Get(ctx, "/bench"); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
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
	b.ReportMetric(float64(n)/elapsed.Seconds(), "gets/s")
}
