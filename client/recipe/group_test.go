package recipe

import (
	"context"
	"errors"
	"fmt"
	"github.com/coord-dev/coord/internal/faultproxy"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// Members register, update and leave, one closes and one's session expires;
// Members and Watch follow, and a name cannot be taken twice.
func TestGroupMembership(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "services")
	proxy := faultproxy.New(t, servers[0])
	short := []client.Option{client.WithSessionTimeout(shortSession), client.WithDialTimeout(300 * time.Millisecond)}
	cs := newClients(t, 3, servers)
	expiring := newClient(t, []string{proxy.Addr()}, short...)
	watcher := newClient(t, servers)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	sets := NewGroup(watcher, path).Watch(wctx)
	// wantSet waits for the member set described as "name=data,...".
	wantSet := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		var got string
		for {
			select {
			case set, ok := <-sets:
				if !ok {
					t.Fatalf("watch ended waiting for %q", want)
				}
				var parts []string
				for _, m := range set {
					parts = append(parts, m.Name+"="+string(m.Data))
				}
				if got = strings.Join(parts, ","); got == want {
					return
				}
			case <-deadline:
				t.Fatalf("member set %q, want %q", got, want)
			}
		}
	}
	wantSet("")

	ms := make([]*Membership, 3)
	for i, c := range cs {
		m, err := NewGroup(c, path).Register(ctx, fmt.Sprintf("m%d", i), []byte(fmt.Sprintf("10.0.0.%d:80", i)))
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	if _, err := NewGroup(expiring, path).Register(ctx, "m1", nil); !errors.Is(err, client.ErrNodeExists) {
		t.Fatalf("a taken name: %v", err)
	}
	mx, err := NewGroup(expiring, path).Register(ctx, "mx", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	wantSet("m0=10.0.0.0:80,m1=10.0.0.1:80,m2=10.0.0.2:80,mx=x")
	members, err := NewGroup(watcher, path).Members(ctx)
	if err != nil || len(members) != 4 || members[3].Session != expiring.SessionID() {
		t.Fatalf("Members: %+v %v", members, err)
	}

	if err := ms[0].Update(ctx, []byte("10.0.0.9:80")); err != nil {
		t.Fatal(err)
	}
	wantSet("m0=10.0.0.9:80,m1=10.0.0.1:80,m2=10.0.0.2:80,mx=x")
	if err := ms[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	wantSet("m0=10.0.0.9:80,m2=10.0.0.2:80,mx=x")
	cs[2].Close()
	wantSet("m0=10.0.0.9:80,mx=x")
	proxy.Partition() // mx's session expires
	wantSet("m0=10.0.0.9:80")
	proxy.Heal()
	if !closedWithin(mx.Lost(), 10*time.Second) {
		t.Fatal("the expired member was not told")
	}
	if err := mx.Leave(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Leave of an expired member: %v", err)
	}
	members, err = NewGroup(watcher, path).Members(ctx)
	if err != nil || !slices.EqualFunc(members, []Member{{Name: "m0"}}, func(a, b Member) bool { return a.Name == b.Name }) {
		t.Fatalf("Members: %+v %v", members, err)
	}
	stop()
	for range sets {
	}
}
