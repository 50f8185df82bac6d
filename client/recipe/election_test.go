package recipe

import (
	"context"
	"errors"
	"fmt"
	"github.com/coord-dev/coord/internal/faultproxy"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// Leaders die in every way a leader can: its session expires (a partition
// cuts its client off), its client closes, it resigns. Each time the next
// candidate is elected, within about one session timeout of an expiry;
// Leader reads exactly one leader at each step; and an observer sees every
// leader and every proclaimed value, in order.
func TestElectionFailoverAndObserve(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "election")
	proxy := faultproxy.New(t, servers[0])
	short := []client.Option{client.WithSessionTimeout(shortSession), client.WithDialTimeout(300 * time.Millisecond)}
	cs := []*client.Client{newClient(t, []string{proxy.Addr()}, short...)}
	cs = append(cs, newClients(t, 4, servers)...)
	observerC := cs[4]

	observed := logLeaders(t, NewElection(observerC, path))
	if l := observed.wait(t, 1)[0]; l.Key != "" {
		t.Fatalf("a leader before any campaign: %+v", l)
	}
	if _, err := NewElection(observerC, path).Leader(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader with no candidate: %v", err)
	}

	es := make([]*Election, 4)
	won := make([]<-chan error, 4)
	for i := range es {
		es[i] = NewElection(cs[i], path)
		value := []byte(fmt.Sprintf("candidate %d", i))
		won[i] = async(func() error { return es[i].Campaign(ctx, value) })
		if i == 0 {
			if err := recv(t, won[0], 10*time.Second, "the first leader"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		waitFor(t, 10*time.Second, "the candidate's node", func() bool {
			names, _, _ := observerC.Children(ctx, path)
			return len(names) == i+1
		})
	}
	wantLeader := func(i int, value string) {
		t.Helper()
		l, err := es[i].Leader(ctx)
		if err != nil || l.Key != es[i].Key() || string(l.Value) != value || l.Token != es[i].Token() {
			t.Fatalf("Leader() = %+v, %v; want candidate %d (%s) with %q", l, err, i, es[i].Key(), value)
		}
		for j := i + 1; j < len(won); j++ {
			select {
			case err := <-won[j]:
				t.Fatalf("candidate %d elected while %d leads: %v", j, i, err)
			default:
			}
		}
	}
	wantLeader(0, "candidate 0")
	if err := es[1].Campaign(ctx, nil); !errors.Is(err, ErrAlreadyHeld) {
		t.Fatalf("second campaign of one candidate: %v", err)
	}

	// 0's session expires: 1 is elected about one session timeout later.
	lost0 := es[0].Lost()
	proxy.Partition()
	cut := time.Now()
	if err := recv(t, won[1], 10*time.Second, "leader 1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(cut); d > 4*shortSession {
		t.Errorf("the next leader was elected %v after the leader was cut off (session timeout %v)", d, shortSession)
	}
	wantLeader(1, "candidate 1")
	proxy.Heal()
	if !closedWithin(lost0, 10*time.Second) {
		t.Fatal("the expired leader was not told")
	}
	if err := es[0].Resign(ctx); !errors.Is(err, ErrLockLost) || !errors.Is(err, client.ErrSessionExpired) {
		t.Fatalf("Resign of an expired leader: %v", err)
	}

	// 1's client closes: 2 is elected.
	cs[1].Close()
	if err := recv(t, won[2], 10*time.Second, "leader 2"); err != nil {
		t.Fatal(err)
	}
	wantLeader(2, "candidate 2")

	// 2 resigns: 3 is elected, proclaims a new value, resigns.
	if err := es[2].Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, won[3], 10*time.Second, "leader 3"); err != nil {
		t.Fatal(err)
	}
	wantLeader(3, "candidate 3")
	if err := es[3].Proclaim(ctx, []byte("candidate 3, again")); err != nil {
		t.Fatal(err)
	}
	wantLeader(3, "candidate 3, again")
	if err := es[3].Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := es[3].Proclaim(ctx, nil); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Proclaim after Resign: %v", err)
	}

	var got []string
	var tokens []int64
	for _, l := range observed.wait(t, 7) {
		got = append(got, string(l.Value))
		if l.Key != "" {
			tokens = append(tokens, l.Token)
		}
	}
	want := []string{"", "candidate 0", "candidate 1", "candidate 2", "candidate 3", "candidate 3, again", ""}
	if !slices.Equal(got, want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
	if !slices.IsSorted(tokens) || len(slices.Compact(slices.Clone(tokens))) != 4 {
		t.Fatalf("leader tokens %v", tokens)
	}
}

// leaderLog receives an Observe stream as it comes, as a prompt reader
// does. The stream ends with the test.
type leaderLog struct {
	mu      sync.Mutex
	leaders []Leader
}

func logLeaders(t *testing.T, e *Election) *leaderLog {
	ctx, cancel := context.WithCancel(context.Background())
	ch := e.Observe(ctx)
	g := &leaderLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range ch {
			g.mu.Lock()
			g.leaders = append(g.leaders, l)
			g.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return g
}

// wait returns the observations once there are n of them, at least.
func (g *leaderLog) wait(t *testing.T, n int) []Leader {
	t.Helper()
	var out []Leader
	waitFor(t, 10*time.Second, fmt.Sprintf("%d observations", n), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		out = slices.Clone(g.leaders)
		return len(out) >= n
	})
	return out
}

// Eight candidates campaign and resign in a loop, 120 leaderships in all:
// never two leaders at once, and an observer sees exactly the sequence of
// leaders, in order, with no gap, with their values.
func TestElectionContentionObserveSeesEveryLeader(t *testing.T) {
	servers := sharedServers(t)
	ctx := testCtx(t)
	path := testPath(t, "election")
	cs := newClients(t, 9, servers)
	observed := logLeaders(t, NewElection(cs[8], path))
	observed.wait(t, 1) // nobody yet

	const total = 120
	var (
		leaders atomic.Int32
		count   atomic.Int32
		mu      sync.Mutex
		order   []string // keys of the leaders
		values  []string
		wg      sync.WaitGroup
	)
	errc := make(chan error, 16)
	for i, c := range cs[:8] {
		e := NewElection(c, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; count.Load() < total; n++ {
				value := fmt.Sprintf("%d/%d", i, n)
				if err := e.Campaign(ctx, []byte(value)); err != nil {
					errc <- err
					return
				}
				if l := leaders.Add(1); l != 1 {
					errc <- fmt.Errorf("%d leaders at once", l)
				}
				mu.Lock()
				order = append(order, e.Key())
				values = append(values, value)
				mu.Unlock()
				count.Add(1)
				leaders.Add(-1)
				if err := e.Resign(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Each leadership shows as a leader, maybe followed by "nobody".
	var seen []string
	unread := 0
	waitFor(t, 10*time.Second, "every leader observed", func() bool {
		seen, unread = nil, 0
		for _, l := range observed.wait(t, 1) {
			if l.Key == "" {
				continue
			}
			if i := len(seen); i < len(values) && l.Value != nil && string(l.Value) != values[i] {
				t.Fatalf("leader %d (%s) observed with value %q, want %q", i, l.Key, l.Value, values[i])
			}
			if l.Value == nil {
				unread++
			}
			seen = append(seen, l.Key)
		}
		return len(seen) >= len(order)
	})
	if !slices.Equal(seen, order) {
		t.Fatalf("observed leaders differ from the elected ones:\nobserved %q\nelected  %q", seen, order)
	}
	if unread > 0 {
		t.Logf("%d of %d leaders resigned before the observer could read their value", unread, len(seen))
	}
}
