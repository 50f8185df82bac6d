package recipe_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/client/recipe"
)

// Take a lock, write under its guard, release it.
func ExampleMutex() {
	servers := recipe.ServersForExamples() // the client addresses of your servers
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	m := recipe.NewMutex(c, "/examples/locks/report")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	// Past this point another process may hold the lock if this session
	// expires: stop when Lost is closed, and hand Token to the services
	// written to, so that they can refuse a stale holder.
	fmt.Println("locked, token > 0:", m.Token() > 0)
	select {
	case <-m.Lost():
		log.Fatal("lost the lock")
	default:
	}

	// A write to coord that applies only while the lock is held.
	_, err = m.Do(ctx, client.Ops().Create("/examples/report", []byte("done"), client.ModePersistent))
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("unlocked")
	// Output:
	// locked, token > 0: true
	// unlocked
}

// Campaign for leadership while following who leads.
func ExampleElection() {
	servers := recipe.ServersForExamples()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func() *client.Client {
		c, err := client.Connect(ctx, servers)
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	alice, bob, watcher := connect(), connect(), connect()
	defer alice.Close()
	defer bob.Close()
	defer watcher.Close()

	const path = "/examples/election"
	leaders := recipe.NewElection(watcher, path).Observe(ctx)
	fmt.Printf("leader: %q\n", (<-leaders).Value) // nobody yet

	a := recipe.NewElection(alice, path)
	if err := a.Campaign(ctx, []byte("alice")); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("leader: %q\n", (<-leaders).Value)

	b := recipe.NewElection(bob, path)
	bobLeads := make(chan error, 1)
	go func() { bobLeads <- b.Campaign(ctx, []byte("bob")) }()

	alice.Close() // alice dies: her session ends, bob takes over
	if err := <-bobLeads; err != nil {
		log.Fatal(err)
	}
	for l := range leaders {
		if l.Key != "" { // skip "nobody", if bob was not queued yet
			fmt.Printf("leader: %q\n", l.Value)
			break
		}
	}
	l, err := b.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob leads: %v\n", l.Key == b.Key())
	// Output:
	// leader: ""
	// leader: "alice"
	// leader: "bob"
	// bob leads: true
}
