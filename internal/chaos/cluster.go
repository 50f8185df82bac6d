package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/testcluster"
)

// Cluster is a coordd cluster whose peer links all pass through the
// harness's fault-injecting proxies.
type Cluster struct {
	TC      *testcluster.Cluster
	Net     *Net
	proxies []*PeerProxy
	addrs   []string
	http    *http.Client

	mu struct {
		sync.Mutex
		// starts maps a member to the size of its log when its current
		// process started (the log is appended to across restarts).
		starts map[uint64]int64
	}
}

// StartCluster starts n coordd processes (with args added to every one),
// each behind a PeerProxy, and waits until they are ready. Everything
// stops when the test ends.
func StartCluster(t testing.TB, n int, seed uint64, args ...string) *Cluster {
	t.Helper()
	c := &Cluster{Net: NewNet(seed), http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(func() {
		for _, p := range c.proxies {
			p.Close()
		}
	})
	c.TC = testcluster.StartAdvertised(t, n, testcluster.Options{Args: args}, func(id uint64, peerAddr string) string {
		p, err := NewPeerProxy(c.Net, id, peerAddr)
		if err != nil {
			t.Fatalf("peer proxy of %d: %v", id, err)
		}
		c.proxies = append(c.proxies, p)
		return p.Addr()
	})
	c.mu.starts = map[uint64]int64{}
	for _, nd := range c.TC.Nodes {
		c.addrs = append(c.addrs, nd.ClientAddr())
	}
	return c
}

// Start starts member id's process again (it must not be running) and
// remembers where its log was, for loggedSinceStart.
func (c *Cluster) Start(id uint64) error {
	nd := c.Node(id)
	var size int64
	if st, err := os.Stat(nd.LogPath()); err == nil {
		size = st.Size()
	}
	if err := nd.StartErr(); err != nil {
		return err
	}
	c.mu.Lock()
	c.mu.starts[id] = size
	c.mu.Unlock()
	return nil
}

// loggedSinceStart reports whether member id's current process logged a
// line containing s.
func (c *Cluster) loggedSinceStart(id uint64, s string) bool {
	c.mu.Lock()
	from := c.mu.starts[id]
	c.mu.Unlock()
	b, err := os.ReadFile(c.Node(id).LogPath())
	if err != nil || int64(len(b)) < from {
		return false
	}
	return strings.Contains(string(b[from:]), s)
}

// Addrs are the client addresses of every member (fixed across restarts).
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// IDs are the member ids.
func (c *Cluster) IDs() []uint64 {
	out := make([]uint64, len(c.TC.Nodes))
	for i, nd := range c.TC.Nodes {
		out[i] = nd.ID
	}
	return out
}

// Node returns member id.
func (c *Cluster) Node(id uint64) *testcluster.Node { return c.TC.Nodes[id-1] }

// Links returns every link from a member of from to a member of to (none
// to itself).
func Links(from, to []uint64) []Link {
	var out []Link
	for _, f := range from {
		for _, t := range to {
			if f != t {
				out = append(out, Link{f, t})
			}
		}
	}
	return out
}

// status fetches a member's /v1/status without failing anything.
func (c *Cluster) status(ctx context.Context, id uint64) (testcluster.Status, error) {
	var st testcluster.Status
	nd := c.Node(id)
	if !nd.Running() {
		return st, fmt.Errorf("member %d is down", id)
	}
	b, code, err := c.do(ctx, http.MethodGet, nd.ClientAddr(), "/v1/status", nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("status of %d: HTTP %d", id, code)
	}
	return st, json.Unmarshal(b, &st)
}

func (c *Cluster) do(ctx context.Context, method, addr, path string, body any) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// Leader returns the member that claims leadership with the highest term
// among the running members, or 0.
func (c *Cluster) Leader(ctx context.Context) uint64 {
	var leader, term uint64
	for _, id := range c.IDs() {
		st, err := c.status(ctx, id)
		if err == nil && st.Role == "leader" && st.Term >= term {
			leader, term = id, st.Term
		}
	}
	return leader
}

// WaitLeader waits until a running member leads and every running member
// answers /readyz.
func (c *Cluster) WaitHealthy(ctx context.Context) (uint64, error) {
	var last error
	for {
		leader := c.Leader(ctx)
		ok := leader != 0
		if ok {
			for _, nd := range c.TC.Nodes {
				if !nd.Running() {
					continue
				}
				_, code, err := c.do(ctx, http.MethodGet, nd.ClientAddr(), "/readyz", nil)
				if err != nil || code != http.StatusOK {
					ok = false
					last = fmt.Errorf("member %d not ready: HTTP %d %v", nd.ID, code, err)
					break
				}
			}
		} else {
			last = fmt.Errorf("no leader")
		}
		if ok {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cluster not healthy: %v (%w)", last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DiskFault injects a disk fault ("fsync", "enospc" or "none") into
// member id (coordd runs with --test-hooks).
func (c *Cluster) DiskFault(ctx context.Context, id uint64, fault string) error {
	_, code, err := c.do(ctx, http.MethodPost, c.Node(id).ClientAddr(), "/debug/disk", map[string]string{"fault": fault})
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("disk fault %q on %d: HTTP %d", fault, id, code)
	}
	return nil
}

// Digest returns member id's applied index and state digest.
func (c *Cluster) Digest(ctx context.Context, id uint64) (uint64, string, error) {
	b, code, err := c.do(ctx, http.MethodGet, c.Node(id).ClientAddr(), "/v1/digest", nil)
	if err != nil {
		return 0, "", err
	}
	if code != http.StatusOK {
		return 0, "", fmt.Errorf("digest of %d: HTTP %d", id, code)
	}
	var d struct {
		Applied uint64 `json:"applied"`
		Digest  string `json:"digest"`
	}
	err = json.Unmarshal(b, &d)
	return d.Applied, d.Digest, err
}

var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines ([0-9.e+]+)$`)

// Goroutines reads go_goroutines from member id's /metrics.
func (c *Cluster) Goroutines(ctx context.Context, id uint64) (int, error) {
	b, code, err := c.do(ctx, http.MethodGet, c.Node(id).ClientAddr(), "/metrics", nil)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("metrics of %d: HTTP %d", id, code)
	}
	m := goroutinesRE.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no go_goroutines in the metrics of %d", id)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	return int(f), err
}

// logProblems returns the lines of member id's log that show a panic, a
// data race or a runtime fatal error, split into those of a process that
// had a disk fault injected before (the fault's own crash) and the others.
func (c *Cluster) logProblems(id uint64) (faulted, other []string) {
	b, err := os.ReadFile(c.Node(id).LogPath())
	if err != nil {
		return nil, nil
	}
	diskFault := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "coordd ready "):
			diskFault = false // a new process
		case strings.Contains(line, `msg="test hook: disk fault"`) && !strings.Contains(line, "fault=none"):
			diskFault = true
		case strings.HasPrefix(line, "panic:") || strings.Contains(line, "WARNING: DATA RACE") ||
			strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(strings.TrimSpace(line), "fatal error:"):
			p := fmt.Sprintf("member %d: %s", id, strings.TrimSpace(line))
			if diskFault && !strings.Contains(line, "DATA RACE") {
				faulted = append(faulted, p)
			} else {
				other = append(other, p)
			}
		}
	}
	return faulted, other
}

// logCount counts the lines of member id's log that contain s.
func (c *Cluster) logCount(id uint64, s string) int {
	b, err := os.ReadFile(c.Node(id).LogPath())
	if err != nil {
		return 0
	}
	return strings.Count(string(b), s)
}
