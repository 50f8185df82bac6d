package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/testcluster"
)

// parkedReads returns the server's count of reads that waited, -1 when
// /metrics cannot be read.
func parkedReads(addr string) float64 {
	m, err := testcluster.Metrics(addr)
	if err != nil {
		return -1
	}
	return m["coord_parked_reads_total"]
}

func TestIntegrationWaitGone(t *testing.T) {
	cl := startCluster(t, 1)
	addr := cl.ClientAddrs()[0]
	c := connect(t, cl.ClientAddrs())
	other := connect(t, cl.ClientAddrs())
	ctx := integrationCtx(t)
	mustCreate(t, c, "/w")
	mustCreate(t, c, "/w/a")
	mustCreate(t, c, "/w/b")

	type result struct {
		names []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		names, _, err := c.Children(ctx, "/w", WaitGone("/w/a"))
		done <- result{names, err}
	}()
	waitFor(t, "the read to wait on the server", func() bool { return parkedReads(addr) == 1 })
	// The connection serves other requests meanwhile.
	if _, _, err := c.Get(ctx, "/w/b"); err != nil {
		t.Fatalf("get while a read waits: %v", err)
	}
	select {
	case r := <-done:
		t.Fatalf("the read came back before the deletion: %v %v", r.names, r.err)
	default:
	}
	if err := other.Delete(ctx, "/w/a", AnyVersion); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || fmt.Sprint(r.names) != "[b]" {
		t.Fatalf("after the deletion: %v %v", r.names, r.err)
	}

	// Already gone: served at once.
	if names, _, err := c.Children(ctx, "/w", WaitGone("/w/a")); err != nil || fmt.Sprint(names) != "[b]" {
		t.Fatalf("waiting for a node that is gone: %v %v", names, err)
	}

	// A node that stays: the answer comes before the caller's deadline,
	// with the node still there.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	names, _, err := c.Children(short, "/w", WaitGone("/w/b"))
	if err != nil || fmt.Sprint(names) != "[b]" {
		t.Fatalf("a wait that ran out: %v %v", names, err)
	}
}

// Reads that wait take no slot of the client's in-flight limit: with more
// of them than slots, the delete they wait for still goes out, also after
// they were all resent on a new connection.
func TestIntegrationWaitGoneTakesNoSlot(t *testing.T) {
	cl := startCluster(t, 1)
	c := connect(t, cl.ClientAddrs(), WithMaxInFlight(2))
	ctx := integrationCtx(t)
	mustCreate(t, c, "/s")
	mustCreate(t, c, "/s/a")
	const waiters = 4
	errc := make(chan error, waiters)
	for range waiters {
		go func() {
			_, _, err := c.Children(ctx, "/s", WaitGone("/s/a"))
			errc <- err
		}()
	}
	waitFor(t, "the reads to wait on the server", func() bool { return parkedReads(cl.ClientAddrs()[0]) == waiters })
	// A new connection gets all of them at once (they are resent before
	// its writer runs): its send queue must hold them besides the slots.
	c.mu.Lock()
	cn := c.mu.conn
	c.mu.Unlock()
	cn.kill(errors.New("test: connection cut"))
	waitFor(t, "the reads to wait again after the reconnect", func() bool {
		return parkedReads(cl.ClientAddrs()[0]) == 2*waiters
	})
	if err := c.Delete(ctx, "/s/a", AnyVersion); err != nil {
		t.Fatalf("delete behind %d waiting reads: %v", waiters, err)
	}
	for range waiters {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
