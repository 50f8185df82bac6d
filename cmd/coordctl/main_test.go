package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// env is a running single-server cluster and a client of it for the test's
// own checks.
type env struct {
	t       *testing.T
	servers string
	c       *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cl := testcluster.Start(t, 1, testcluster.Options{})
	servers := strings.Join(cl.ClientAddrs(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, cl.ClientAddrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &env{t: t, servers: servers, c: c}
}

// result is what one coordctl run printed and returned.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
}

// run runs coordctl in-process with stdin and the cluster's servers.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), stdin, &bytes.Buffer{}, args...)
}

func (e *env) runCtx(ctx context.Context, stdin string, out syncWriter, args ...string) result {
	var errb bytes.Buffer
	full := append([]string{"--servers", e.servers, "--timeout", "10s"}, args...)
	code := run(ctx, full, stdio{in: strings.NewReader(stdin), out: out, err: &errb})
	return result{out: out.String(), err: errb.String(), code: code}
}

// syncWriter is an output buffer.
type syncWriter interface {
	Write([]byte) (int, error)
	String() string
}

// lockedBuffer is a buffer safe to read while coordctl writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// must runs coordctl and fails unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("coordctl %s: %v", strings.Join(args, " "), r)
	}
	return r.out
}

// expectCode runs coordctl and checks its exit code and that stderr says
// something (and stdout nothing) on failure.
func (e *env) expectCode(code int, args ...string) result {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != code {
		e.t.Fatalf("coordctl %s: want exit %d, got %v", strings.Join(args, " "), code, r)
	}
	if code != 0 && (r.err == "" || r.out != "") {
		e.t.Fatalf("coordctl %s: a failure must explain itself on stderr only: %v", strings.Join(args, " "), r)
	}
	return r
}

// ctx returns a context bounded for one check.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// create makes a node for the test's own setup.
func (e *env) create(p, data string) {
	e.t.Helper()
	if _, _, err := e.c.Create(e.ctx(), p, []byte(data), client.ModePersistent); err != nil {
		e.t.Fatal(err)
	}
}

// snapshot returns every node under root with its data and versions, to
// check that a failed command changed nothing.
func (e *env) snapshot(root string) string {
	e.t.Helper()
	var lines []string
	var walk func(p string)
	walk = func(p string) {
		data, st, err := e.c.Get(e.ctx(), p)
		if err != nil {
			e.t.Fatal(err)
		}
		acl, _, err := e.c.GetACL(e.ctx(), p)
		if err != nil {
			e.t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %q v%d c%d a%d %v", p, data, st.Version, st.Cversion, st.Aversion, acl))
		kids, _, err := e.c.Children(e.ctx(), p)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, k := range kids {
			walk(wire.Join(p, k))
		}
	}
	walk(root)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testcluster.WaitFor(t, 15*time.Second, what, cond)
}

// The coordctl binary, built once per test process for the tests that
// need a real process (the terminal, concurrent locks).
var coordctlBin struct {
	once sync.Once
	path string
	err  error
}

func buildCoordctl(t *testing.T) string {
	t.Helper()
	coordctlBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "coordctl-bin-")
		if err != nil {
			coordctlBin.err = err
			return
		}
		coordctlBin.path = filepath.Join(dir, "coordctl")
		args := []string{"build", "-o", coordctlBin.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			coordctlBin.err = fmt.Errorf("go build coordctl: %v\n%s", err, out)
		}
	})
	if coordctlBin.err != nil {
		t.Fatal(coordctlBin.err)
	}
	return coordctlBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if coordctlBin.path != "" {
		_ = os.RemoveAll(filepath.Dir(coordctlBin.path))
	}
	if code == 0 {
		// Every goroutine of coordctl (and of its client) is gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// isNoNode reports whether err is NoNode.
func isNoNode(err error) bool { return errors.Is(err, client.ErrNoNode) }
