package testcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary holds the coordd built for this test process.
type binary struct {
	once sync.Once
	path string
	err  error
}

var coordd binary

// Binary builds cmd/coordd (once per test process) and returns its path.
// Builds land in one shared directory under the system temp dir, renamed
// into place so that concurrent test processes never see a partial binary
// and nothing piles up.
func Binary(t testing.TB) string {
	t.Helper()
	coordd.once.Do(func() {
		dir := filepath.Join(os.TempDir(), "coord-testbin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			coordd.err = err
			return
		}
		name := "coordd"
		if raceEnabled {
			name += "-race"
		}
		tmp, err := os.CreateTemp(dir, name+".*.tmp")
		if err != nil {
			coordd.err = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		args := []string{"build", "-o", tmp.Name()}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/coord-dev/coord/cmd/coordd")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			coordd.err = fmt.Errorf("go build coordd: %v\n%s", err, out)
			return
		}
		// One name per source tree: processes of the same tree build the
		// same binary and replace it atomically (a running coordd keeps the
		// file it started from).
		h := fnv.New32a()
		h.Write([]byte(moduleRoot()))
		coordd.path = filepath.Join(dir, fmt.Sprintf("%s-%08x", name, h.Sum32()))
		if err := os.Rename(tmp.Name(), coordd.path); err != nil {
			coordd.err = err
		}
	})
	if coordd.err != nil {
		t.Fatal(coordd.err)
	}
	return coordd.path
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options configure the members of a cluster.
type Options struct {
	// Args are extra coordd flags for every member.
	Args []string
	// Env are extra environment variables (KEY=VALUE) for every member.
	Env []string
}

// Node is one coordd process.
type Node struct {
	t        testing.TB
	ID       uint64
	DataDir  string
	PeerAddr string // advertised and bound peer address (fixed across restarts)
	args     []string
	env      []string
	logPath  string

	mu         sync.Mutex
	cmd        *exec.Cmd
	clientAddr string
	exited     chan struct{}
	exitErr    error
}

// Cluster is a set of members started together.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// freePort returns a loopback address that was free a moment ago. It picks
// from below the kernel's ephemeral range (ip_local_port_range starts at
// 32768), so that the port-0 binds of running servers and clients cannot
// take it between this check and the server's own bind.
func freePort(t testing.TB) string {
	t.Helper()
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port")
	return ""
}

// Start launches an n-member cluster (n = 1 is a single server) and waits
// until every member is ready. Members are killed when the test ends.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var cluster []string
	for i := 1; i <= n; i++ {
		nd := &Node{t: t, ID: uint64(i), DataDir: filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)), PeerAddr: freePort(t)}
		c.Nodes = append(c.Nodes, nd)
		cluster = append(cluster, fmt.Sprintf("%d=%s", i, nd.PeerAddr))
	}
	for _, nd := range c.Nodes {
		nd.args = append([]string{"--id", fmt.Sprint(nd.ID), "--data-dir", nd.DataDir,
			"--client-addr", "127.0.0.1:0", "--peer-addr", nd.PeerAddr, "--log-level", "debug"}, opts.Args...)
		if n > 1 {
			nd.args = append(nd.args, "--cluster", strings.Join(cluster, ","))
		}
		nd.env = opts.Env
		nd.logPath = nd.DataDir + ".log"
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Kill()
		}
		if t.Failed() {
			for _, nd := range c.Nodes {
				nd.dumpLog()
			}
		}
	})
	for _, nd := range c.Nodes {
		nd.Start()
	}
	c.WaitReady()
	return c
}

// NewNode prepares (but does not start) a member that is not part of the
// initial cluster, e.g. to join it later.
func (c *Cluster) NewNode(id uint64, args ...string) *Node {
	nd := &Node{t: c.t, ID: id, DataDir: filepath.Join(c.t.TempDir(), fmt.Sprintf("n%d", id)), PeerAddr: freePort(c.t)}
	nd.args = append([]string{"--id", fmt.Sprint(id), "--data-dir", nd.DataDir,
		"--client-addr", "127.0.0.1:0", "--peer-addr", nd.PeerAddr, "--log-level", "debug"}, args...)
	nd.logPath = nd.DataDir + ".log"
	c.Nodes = append(c.Nodes, nd)
	return nd
}

// WaitReady waits until every running member answers /readyz.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	for _, nd := range c.Nodes {
		if nd.Running() {
			nd.WaitReady()
		}
	}
}

// ClientAddrs returns the client addresses of the running members.
func (c *Cluster) ClientAddrs() []string {
	var out []string
	for _, nd := range c.Nodes {
		if nd.Running() {
			out = append(out, nd.ClientAddr())
		}
	}
	return out
}

// Leader returns the member that the running members agree leads, waiting
// for one.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	var leader *Node
	WaitFor(c.t, 30*time.Second, "a leader", func() bool {
		for _, nd := range c.Nodes {
			if !nd.Running() {
				continue
			}
			st, err := nd.Status()
			if err == nil && st.Role == "leader" {
				leader = nd
				return true
			}
		}
		return false
	})
	return leader
}

// Other returns the first running member other than nd (a follower, when
// nd is the leader); it fails the test when there is none.
func (c *Cluster) Other(nd *Node) *Node {
	c.t.Helper()
	for _, o := range c.Nodes {
		if o != nd && o.Running() {
			return o
		}
	}
	c.t.Fatalf("no running member other than %d", nd.ID)
	return nil
}

// Start launches the member's process and waits for its "coordd ready" line.
func (nd *Node) Start() {
	nd.t.Helper()
	if err := nd.StartErr(); err != nil {
		nd.dumpLog()
		nd.t.Fatalf("start node %d: %v", nd.ID, err)
	}
}

// StartErr is Start returning the error instead of failing the test, for
// tests that expect a start to be refused.
func (nd *Node) StartErr() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		return fmt.Errorf("node %d already running", nd.ID)
	}
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(Binary(nd.t), nd.args...)
	cmd.Env = append(os.Environ(), nd.env...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, "stdout:", line)
			if strings.HasPrefix(line, "coordd ready ") {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "client="); ok {
						select {
						case ready <- a:
						default:
						}
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := cmd.Wait()
		logf.Close()
		nd.mu.Lock()
		nd.exitErr = err
		nd.mu.Unlock()
		close(exited)
	}()
	nd.cmd, nd.exited = cmd, exited
	nd.mu.Unlock()
	defer nd.mu.Lock()
	select {
	case a := <-ready:
		nd.mu.Lock()
		nd.clientAddr = a
		nd.mu.Unlock()
		return nil
	case <-exited:
		nd.mu.Lock()
		nd.cmd = nil
		err := nd.exitErr
		nd.mu.Unlock()
		return fmt.Errorf("coordd exited before it was ready: %v (log %s)", err, nd.logPath)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("coordd not ready within 60s (log %s)", nd.logPath)
	}
}

// Running reports whether the process is running.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

// ClientAddr returns the member's bound client address.
func (nd *Node) ClientAddr() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.clientAddr
}

// Pid returns the process id, or 0.
func (nd *Node) Pid() int {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return 0
	}
	return nd.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to go.
func (nd *Node) Kill() { nd.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits for a clean exit; it fails the test if the
// process exits non-zero.
func (nd *Node) Stop() {
	nd.t.Helper()
	if err := nd.signal(syscall.SIGTERM, 30*time.Second); err != nil {
		nd.t.Errorf("node %d did not stop cleanly: %v", nd.ID, err)
	}
}

// Signal sends sig to the process without waiting (SIGSTOP/SIGCONT).
func (nd *Node) Signal(sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		_ = nd.cmd.Process.Signal(sig)
	}
}

func (nd *Node) signal(sig syscall.Signal, wait time.Duration) error {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
	}
	nd.mu.Lock()
	defer nd.mu.Unlock()
	nd.cmd = nil
	if sig == syscall.SIGKILL {
		return nil
	}
	return nd.exitErr
}

// Exited returns a channel closed when the current process exits, and its
// exit error once it has.
func (nd *Node) Exited() (<-chan struct{}, func() error) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.exited, func() error {
		nd.mu.Lock()
		defer nd.mu.Unlock()
		return nd.exitErr
	}
}

// Restart kills (if running) and starts the member again on its data dir.
func (nd *Node) Restart() {
	nd.t.Helper()
	nd.Kill()
	nd.Start()
}

// SetArgs replaces the member's extra flags for its next start.
func (nd *Node) SetArgs(args ...string) { nd.args = args }

// Args returns the member's flags.
func (nd *Node) Args() []string { return append([]string(nil), nd.args...) }

// Status fetches /v1/status.
func (nd *Node) Status() (Status, error) {
	var st Status
	addr := nd.ClientAddr()
	if addr == "" {
		return st, fmt.Errorf("node %d not started", nd.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Status mirrors server.Status (decoded from JSON, so tests need not import
// the server).
type Status struct {
	ID      uint64 `json:"id"`
	Role    string `json:"role"`
	Leader  uint64 `json:"leader"`
	Term    uint64 `json:"term"`
	Commit  uint64 `json:"commit"`
	Applied uint64 `json:"applied"`
	Members []struct {
		ID         uint64 `json:"id"`
		PeerAddr   string `json:"peer_addr"`
		ClientAddr string `json:"client_addr"`
		Role       string `json:"role"`
		Applied    uint64 `json:"applied"`
		Reachable  bool   `json:"reachable"`
	} `json:"members"`
}

// WaitReady waits until the member answers /readyz with 200.
func (nd *Node) WaitReady() {
	nd.t.Helper()
	WaitFor(nd.t, 60*time.Second, fmt.Sprintf("node %d ready", nd.ID), func() bool {
		code, _ := Get(nd.ClientAddr(), "/readyz")
		return code == http.StatusOK
	})
}

// Get fetches an HTTP path from addr and returns the status and body.
func Get(addr, path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metrics fetches addr's /metrics and returns its unlabelled samples by
// name.
func Metrics(addr string) (map[string]float64, error) {
	code, body := Get(addr, "/metrics")
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %q: %w", line, err)
		}
		out[name] = f
	}
	return out, nil
}

func (nd *Node) dumpLog() {
	b, err := os.ReadFile(nd.logPath)
	if err != nil {
		return
	}
	const max = 64 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	nd.t.Logf("---- log of node %d (%s), last %d bytes ----\n%s", nd.ID, nd.logPath, len(b), b)
}

// WaitFor polls cond until it holds or the timeout passes (then it fails
// the test naming what).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// LogContains reports whether the member's log holds s.
func (nd *Node) LogContains(s string) bool {
	b, err := os.ReadFile(nd.logPath)
	return err == nil && strings.Contains(string(b), s)
}

// Wipe deletes the member's data dir (the process must not be running).
func (nd *Node) Wipe() {
	nd.t.Helper()
	if nd.Running() {
		nd.t.Fatalf("wipe node %d while it runs", nd.ID)
	}
	if err := os.RemoveAll(nd.DataDir); err != nil {
		nd.t.Fatal(err)
	}
}
