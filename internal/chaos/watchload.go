package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/coord-dev/coord/client"
)

const (
	watchRoot  = "/chaos/watch"
	watchClock = "/chaos/wclock" // set with every change: its stat tells the change's zxid
)

// watchLoad is the WATCH workload.
type watchLoad struct {
	start time.Time
	paths []string

	mu struct {
		sync.Mutex
		changes     []Change
		resolved    map[int]time.Duration // index in changes -> when it was learnt
		unresolved  bool
		surprises   []string
		streams     []Stream
		arms        []Arm
		disconnects map[int][]time.Duration
		moves       int
		lastZxid    map[int]int64 // per watcher, the last stream event
	}
}

func newWatchLoad(start time.Time, paths int) *watchLoad {
	w := &watchLoad{start: start}
	for i := 0; i < paths; i++ {
		w.paths = append(w.paths, fmt.Sprintf("%s/p%d", watchRoot, i))
	}
	w.mu.resolved = map[int]time.Duration{}
	w.mu.disconnects = map[int][]time.Duration{}
	w.mu.lastZxid = map[int]int64{}
	return w
}

func (w *watchLoad) since() time.Duration { return time.Since(w.start) }

// Changes returns the number of changes made.
func (w *watchLoad) Changes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.changes)
}

// Moves returns how often a watcher's session moved to another server.
func (w *watchLoad) Moves() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.moves
}

// writer changes the watched nodes until ctx ends. Its writes have no
// deadline: the client resends them across reconnects until the server
// answers, so the outcome is lost only with the session.
func (w *watchLoad) writer(ctx context.Context, c *client.Client, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	exists := map[string]bool{}
	for seq := 1; ctx.Err() == nil; seq++ {
		p := w.paths[rng.IntN(len(w.paths))]
		token := []byte(fmt.Sprint(seq))
		ops := client.Ops()
		var typ client.EventType
		switch {
		case !exists[p]:
			ops.Create(p, token, client.ModePersistent)
			typ = client.EventNodeCreated
		case rng.IntN(4) == 0:
			ops.Delete(p, client.AnyVersion)
			typ = client.EventNodeDeleted
		default:
			ops.Set(p, token, client.AnyVersion)
			typ = client.EventNodeDataChanged
		}
		ops.Set(watchClock, token, client.AnyVersion)
		invoked := w.since()
		res, err := c.Multi(ctx, ops)
		switch {
		case err == nil:
			w.record(Change{Zxid: res[1].Stat.Mzxid, Path: p, Type: typ, Invoked: invoked, At: w.since()}, -1)
			exists[p] = typ != client.EventNodeDeleted
			continue
		case errors.Is(err, client.ErrNoNode) || errors.Is(err, client.ErrNodeExists):
			// The sole writer's knowledge is exact: this means a change
			// it made was lost, or one it did not make appeared.
			w.mu.Lock()
			w.mu.surprises = append(w.mu.surprises, fmt.Sprintf("%s of %s at %v failed: %v", typ, p, invoked, err))
			w.mu.Unlock()
			exists[p] = errors.Is(err, client.ErrNodeExists)
			continue
		}
		// The outcome is unknown: learn it from the clock.
		applied, zxid, ok := w.resolve(c, token)
		switch {
		case !ok:
			w.mu.Lock()
			w.mu.unresolved = true
			w.mu.Unlock()
			return
		case applied:
			w.record(Change{Zxid: zxid, Path: p, Type: typ, Invoked: invoked, At: w.since()}, invoked)
			exists[p] = typ != client.EventNodeDeleted
		}
	}
}

// resolve tells whether the change that set the clock to token applied,
// and at which zxid, with a fresh session if need be.
func (w *watchLoad) resolve(c *client.Client, token []byte) (applied bool, zxid int64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c.State() == client.StateExpired {
			if err := c.NewSession(ctx); err != nil {
				continue
			}
		}
		if c.State() == client.StateClosed {
			return false, 0, false
		}
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		data, st, err := c.Get(rctx, watchClock)
		rcancel()
		if err == nil {
			return string(data) == string(token), st.Mzxid, true
		}
	}
	return false, 0, false
}

// record adds a change; a change learnt by resolve (invoked >= 0) has an
// uncertain acknowledgement time, from invoked to now.
func (w *watchLoad) record(c Change, invoked time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if invoked >= 0 {
		w.mu.resolved[len(w.mu.changes)] = invoked
	}
	w.mu.changes = append(w.mu.changes, c)
}

// watcher runs watcher id's watches until ctx ends: the persistent one on
// sc, the one-shot ones on oc (the same client or not).
func (w *watchLoad) watcher(ctx context.Context, id int, sc, oc *client.Client, ready chan<- struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	w.track(ctx, &wg, id, sc)
	if oc != sc {
		w.track(ctx, &wg, id, oc)
	}
	started := make(chan struct{})
	wg.Go(func() { w.stream(ctx, id, sc, started) })
	<-started
	for _, p := range w.paths {
		wg.Go(func() { w.oneShot(ctx, id, oc, p) })
	}
	close(ready)
}

// track records the disconnections of c and its moves between servers.
func (w *watchLoad) track(ctx context.Context, wg *sync.WaitGroup, id int, c *client.Client) {
	states := c.StateEvents(ctx)
	wg.Go(func() {
		var last uint64
		for ev := range states {
			switch ev.State {
			case client.StateDisconnected:
				w.mu.Lock()
				w.mu.disconnects[id] = append(w.mu.disconnects[id], w.since())
				w.mu.Unlock()
			case client.StateConnected:
				if last != 0 && ev.ServerID != last {
					w.mu.Lock()
					w.mu.moves++
					w.mu.Unlock()
				}
				last = ev.ServerID
			}
		}
	})
}

// stream keeps a persistent recursive watch on watchRoot, setting it again
// after a session expiry.
func (w *watchLoad) stream(ctx context.Context, id int, c *client.Client, started chan<- struct{}) {
	once := sync.OnceFunc(func() { close(started) })
	defer once()
	for ctx.Err() == nil {
		if c.State() == client.StateExpired {
			if err := c.NewSession(ctx); err != nil {
				continue
			}
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		wt, err := c.AddWatch(actx, watchRoot, client.WatchPersistentRecursive)
		cancel()
		if err != nil {
			continue
		}
		s := Stream{Watcher: id, From: w.since()}
		once()
		ended := false
		for !ended {
			select {
			case ev, ok := <-wt.Events():
				if !ok || ev.Type == client.EventNotWatching {
					ended = true
					break
				}
				s.Events = append(s.Events, StreamEvent{Zxid: ev.Zxid, Path: ev.Path, Type: ev.Type})
				w.mu.Lock()
				w.mu.lastZxid[id] = max(w.mu.lastZxid[id], ev.Zxid)
				w.mu.Unlock()
			case <-ctx.Done():
				s.Final = true
				ended = true
			}
		}
		w.mu.Lock()
		w.mu.streams = append(w.mu.streams, s)
		w.mu.Unlock()
	}
}

// oneShot re-arms a one-shot watch on p after every event.
func (w *watchLoad) oneShot(ctx context.Context, id int, c *client.Client, p string) {
	for ctx.Err() == nil {
		if c.State() == client.StateExpired {
			// The stream goroutine starts the new session.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		a := Arm{Watcher: id, Path: p, Invoked: w.since()}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, st, ch, err := c.GetW(rctx, p)
		if errors.Is(err, client.ErrNoNode) {
			var ok bool
			ok, st, ch, err = c.ExistsW(rctx, p)
			if err == nil && !ok {
				st = nil
			}
		}
		cancel()
		if err != nil {
			continue
		}
		a.Armed = w.since()
		if st != nil {
			a.Exists, a.Mzxid = true, st.Mzxid
		}
		select {
		case ev := <-ch:
			a.Fired, a.Event, a.EventZxid, a.Received = true, ev.Type, ev.Zxid, w.since()
		case <-ctx.Done():
		}
		w.mu.Lock()
		w.mu.arms = append(w.mu.arms, a)
		w.mu.Unlock()
	}
}

// caughtUp reports whether every watcher's stream reached the last change.
func (w *watchLoad) caughtUp(watchers int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last int64
	for _, c := range w.mu.changes {
		last = max(last, c.Zxid)
	}
	for id := 0; id < watchers; id++ {
		if w.mu.lastZxid[id] < last {
			return false
		}
	}
	return true
}

// History returns the record, once the writer and watchers have stopped.
func (w *watchLoad) History() (WatchHistory, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.mu.arms {
		// A disconnect is reported by another goroutine, maybe a little
		// after the events of the next connection: allow for that.
		a := &w.mu.arms[i]
		for _, d := range w.mu.disconnects[a.Watcher] {
			if a.Fired && d >= a.Invoked && d <= a.Received+2*time.Second {
				a.Reconnected = true
			}
		}
	}
	h := WatchHistory{
		Changes:    append([]Change(nil), w.mu.changes...),
		Streams:    append([]Stream(nil), w.mu.streams...),
		Arms:       append([]Arm(nil), w.mu.arms...),
		Unresolved: w.mu.unresolved,
	}
	// Arms on a node with a change whose acknowledgement time is uncertain
	// (learnt after a lost session) are not judged from that change on.
	if len(w.mu.resolved) > 0 {
		var kept []Arm
		for _, a := range h.Arms {
			skip := false
			for i := range w.mu.resolved {
				if c := w.mu.changes[i]; c.Path == a.Path && c.At >= a.Invoked {
					skip = true
				}
			}
			if !skip {
				kept = append(kept, a)
			}
		}
		h.Arms = kept
	}
	return h, append([]string(nil), w.mu.surprises...)
}
