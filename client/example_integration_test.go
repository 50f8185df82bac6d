package client_test

// Runnable examples: each starts its own coordd (a real process, through
// internal/testcluster) and checks its output.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/testcluster"
)

// Connect to a cluster, create a node and read it back.
func ExampleConnect() {
	servers, stop := exampleServers() // the client addresses of your servers
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.Connect(ctx, servers, client.WithSessionTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("state:", c.State())

	if _, _, err := c.Create(ctx, "/greeting", []byte("hello"), client.ModePersistent); err != nil {
		log.Fatal(err)
	}
	data, stat, err := c.Get(ctx, "/greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, version %d\n", data, stat.Version)

	_, _, err = c.Create(ctx, "/greeting", nil, client.ModePersistent)
	fmt.Println("again:", errors.Is(err, client.ErrNodeExists))
	// Output:
	// state: connected
	// hello, version 0
	// again: true
}

// Read a node and watch it: the channel receives its next change, once.
// A persistent watch streams every change below a path until removed.
func ExampleClient_GetW() {
	servers, stop := exampleServers()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, _, err := c.Create(ctx, "/config", []byte("v1"), client.ModePersistent); err != nil {
		log.Fatal(err)
	}
	data, stat, changed, err := c.GetW(ctx, "/config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %s\n", data)
	all, err := c.AddWatch(ctx, "/config", client.WatchPersistentRecursive)
	if err != nil {
		log.Fatal(err)
	}
	defer all.Remove(ctx)

	if _, err := c.Set(ctx, "/config", []byte("v2"), stat.Version); err != nil {
		log.Fatal(err)
	}
	ev := <-changed // one event, then the channel is closed
	fmt.Println("one-shot:", ev.Type, ev.Path)

	if _, _, err := c.Create(ctx, "/config/feature", nil, client.ModePersistent); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		ev := <-all.Events()
		fmt.Println("persistent:", ev.Type, ev.Path)
	}
	// Output:
	// read v1
	// one-shot: NodeDataChanged /config
	// persistent: NodeDataChanged /config
	// persistent: NodeCreated /config/feature
}

// exampleServers starts a single coordd for one example and returns its
// client address and a function that stops it. A program passes the
// addresses of its cluster's servers instead.
func exampleServers() ([]string, func()) {
	tb := &exampleTB{}
	cl := testcluster.Start(tb, 1, testcluster.Options{})
	return cl.ClientAddrs(), tb.cleanup
}

// exampleTB is the part of testing.TB that testcluster uses, for examples,
// which have no *testing.T. Failures panic, which fails the example.
type exampleTB struct {
	testing.TB // nil: only the methods below are called

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func (e *exampleTB) Helper() {}

func (e *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "coord-example-")
	if err != nil {
		panic(err)
	}
	e.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (e *exampleTB) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// cleanup runs the cleanups, last registered first, as testing does.
func (e *exampleTB) cleanup() {
	e.mu.Lock()
	fs := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (e *exampleTB) Failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

func (e *exampleTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (e *exampleTB) Errorf(format string, args ...any) {
	e.mu.Lock()
	e.failed = true
	e.mu.Unlock()
	e.Logf(format, args...)
}

func (e *exampleTB) Fatal(args ...any) {
	e.fail(fmt.Sprint(args...))
}

func (e *exampleTB) Fatalf(format string, args ...any) {
	e.fail(fmt.Sprintf(format, args...))
}

func (e *exampleTB) fail(msg string) {
	e.mu.Lock()
	e.failed = true
	e.mu.Unlock()
	e.cleanup()
	panic("example cluster: " + msg)
}
