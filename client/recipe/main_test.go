package recipe

// Every test of this package runs against real coordd processes
// (internal/testcluster). Tests that kill, stop or partition nothing share
// one single-server cluster, started on first use and stopped after the
// last test; each works under its own path.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/testcluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	shared.stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// coorddArgs are the flags of every coordd of these tests: short sessions
// are allowed, so that expiry takes a second, not ten.
var coorddArgs = []string{"--min-session-timeout", "300ms", "--reap-interval", "100ms"}

// shortSession is the session timeout of clients whose death a test waits
// for.
const shortSession = 800 * time.Millisecond

// shared is the cluster of the tests that harm no server.
var shared sharedCluster

type sharedCluster struct {
	once  sync.Once
	tb    *shimTB
	addrs []string
	err   error
}

// sharedServers returns the client addresses of the shared cluster.
func sharedServers(t testing.TB) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts coordd processes")
	}
	addrs, err := sharedAddrs()
	if err != nil {
		t.Fatalf("shared cluster: %v", err)
	}
	return addrs
}

// sharedAddrs starts the shared cluster on first use.
func sharedAddrs() ([]string, error) {
	shared.once.Do(func() {
		shared.tb = &shimTB{}
		defer func() {
			if r := recover(); r != nil {
				shared.err = fmt.Errorf("%v", r)
			}
		}()
		shared.addrs = testcluster.Start(shared.tb, 1, testcluster.Options{Args: coorddArgs}).ClientAddrs()
	})
	return shared.addrs, shared.err
}

func (s *sharedCluster) stop() {
	if s.tb != nil {
		s.tb.cleanup()
	}
}

// startCluster starts a cluster of n coordd processes for one test.
func startCluster(t testing.TB, n int) *testcluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts coordd processes")
	}
	return testcluster.Start(t, n, testcluster.Options{Args: coorddArgs})
}

// newClient connects to servers; the client is closed when the test ends.
func newClient(t testing.TB, servers []string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithDialTimeout(time.Second)}, opts...)
	c, err := client.Connect(ctx, servers, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newClients connects n clients.
func newClients(t testing.TB, n int, servers []string, opts ...client.Option) []*client.Client {
	t.Helper()
	cs := make([]*client.Client, n)
	for i := range cs {
		cs[i] = newClient(t, servers, opts...)
	}
	return cs
}

// testCtx is a context that ends with the test (or after a minute).
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testPath returns a path unique to the test, under which it works.
func testPath(t testing.TB, name string) string {
	return "/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/" + name
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testcluster.WaitFor(t, timeout, what, cond)
}

// recv receives from ch, failing the test after timeout.
func recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
	panic("unreachable")
}

// closedWithin reports whether ch is closed within timeout.
func closedWithin(ch <-chan struct{}, timeout time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(timeout):
		return false
	}
}

// async runs f in a goroutine; the returned channel receives its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// shimTB is the part of testing.TB that testcluster uses, for what outlives
// a single test (the shared cluster, examples). Failures panic.
type shimTB struct {
	testing.TB // nil: only the methods below are called

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func (s *shimTB) Helper() {}

func (s *shimTB) TempDir() string {
	dir, err := os.MkdirTemp("", "coord-recipe-")
	if err != nil {
		panic(err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (s *shimTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// cleanup runs the cleanups, last registered first.
func (s *shimTB) cleanup() {
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (s *shimTB) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *shimTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (s *shimTB) Errorf(format string, args ...any) {
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	s.Logf(format, args...)
}

func (s *shimTB) Fatal(args ...any) { s.fail(fmt.Sprint(args...)) }

func (s *shimTB) Fatalf(format string, args ...any) { s.fail(fmt.Sprintf(format, args...)) }

func (s *shimTB) fail(msg string) {
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	panic("coordd cluster: " + msg)
}
