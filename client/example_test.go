package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/coord-dev/coord/client"
)

// Connect to a cluster, read a node while watching it, and wait for its
// next change. (Not run by go test: it needs a running coordd.)
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.Connect(ctx, []string{"127.0.0.1:7181", "127.0.0.1:7182", "127.0.0.1:7183"},
		client.WithSessionTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, _, err = c.Create(ctx, "/config", []byte("v1"), client.ModePersistent)
	if err != nil && !errors.Is(err, client.ErrNodeExists) {
		log.Fatal(err)
	}

	data, stat, changed, err := c.GetW(ctx, "/config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("config %q at version %d\n", data, stat.Version)

	if _, err := c.Set(ctx, "/config", []byte("v2"), stat.Version); err != nil {
		log.Fatal(err)
	}
	select {
	case ev := <-changed:
		fmt.Println(ev.Type, ev.Path)
	case <-ctx.Done():
		log.Fatal(ctx.Err())
	}
}

// Follow every change below a path with a persistent recursive watch, and
// the session's state.
func ExampleClient_AddWatch() {
	ctx := context.Background()
	c, err := client.Connect(ctx, []string{"127.0.0.1:7181"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	states := c.StateEvents(ctx)
	w, err := c.AddWatch(ctx, "/services", client.WatchPersistentRecursive)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Remove(ctx)
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return // removed, expired or closed
			}
			fmt.Println(ev.Type, ev.Path)
		case st := <-states:
			if st.State == client.StateExpired {
				// Ephemeral nodes and watches are gone: start over.
				if err := c.NewSession(ctx); err != nil {
					log.Fatal(err)
				}
				return
			}
		}
	}
}

// Apply several changes atomically.
func ExampleClient_Multi() {
	ctx := context.Background()
	c, err := client.Connect(ctx, []string{"127.0.0.1:7181"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	results, err := c.Multi(ctx, client.Ops().
		Check("/app", client.AnyVersion).
		Create("/app/job-", []byte("payload"), client.ModePersistentSequential).
		Set("/app", []byte("1 job"), client.AnyVersion))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", results[1].Path)
}
