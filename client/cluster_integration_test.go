package client

// Helpers of the tests against real coordd processes
// (*_integration_test.go), started by internal/testcluster.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/testcluster"
)

// coorddArgs are the flags of every coordd these tests start: short
// sessions are allowed, so that expiry tests take a second, not ten.
var coorddArgs = []string{"--min-session-timeout", "300ms", "--reap-interval", "100ms"}

// startCluster starts n coordd processes (killed when the test ends).
func startCluster(t testing.TB, n int) *testcluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts coordd processes")
	}
	return testcluster.Start(t, n, testcluster.Options{Args: coorddArgs})
}

// integrationCtx is testCtx with room for a leader election or two.
func integrationCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// nodeByAddr returns the member serving client address addr.
func nodeByAddr(t *testing.T, cl *testcluster.Cluster, addr string) *testcluster.Node {
	t.Helper()
	for _, nd := range cl.Nodes {
		if nd.ClientAddr() == addr {
			return nd
		}
	}
	t.Fatalf("no member serves %s", addr)
	return nil
}

// follower returns a running member that is not the leader.
func follower(t *testing.T, cl *testcluster.Cluster) *testcluster.Node {
	t.Helper()
	return cl.Other(cl.Leader())
}

// others returns the client addresses of the running members but nd.
func others(cl *testcluster.Cluster, nd *testcluster.Node) []string {
	var out []string
	for _, x := range cl.Nodes {
		if x != nd && x.Running() {
			out = append(out, x.ClientAddr())
		}
	}
	return out
}

// mustCreate creates path (persistent, empty) or fails the test.
func mustCreate(t *testing.T, c *Client, path string) {
	t.Helper()
	if _, _, err := c.Create(integrationCtx(t), path, nil, ModePersistent); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// exists reports whether path exists, read linearizably through c.
func exists(t *testing.T, c *Client, path string) bool {
	t.Helper()
	ok, _, err := c.Exists(integrationCtx(t), path)
	if err != nil {
		t.Fatalf("exists %s: %v", path, err)
	}
	return ok
}

// seqName is the name of the i-th sequential child made from prefix.
func seqName(prefix string, i int) string { return fmt.Sprintf("%s%010d", prefix, i) }
