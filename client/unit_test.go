package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

func TestMatches(t *testing.T) {
	const (
		C  = EventNodeCreated
		D  = EventNodeDeleted
		M  = EventNodeDataChanged
		CH = EventNodeChildrenChanged
		R  = EventResync
	)
	for _, tc := range []struct {
		kind  watchKind
		wpath string
		typ   EventType
		epath string
		want  bool
	}{
		{kindData, "/a", C, "/a", true},
		{kindData, "/a", M, "/a", true},
		{kindData, "/a", D, "/a", true},
		{kindData, "/a", CH, "/a", false},
		{kindData, "/a", M, "/a/b", false},
		{kindData, "/a", R, "/a", false},
		{kindExist, "/a", C, "/a", true},
		{kindExist, "/a", CH, "/a", false},
		{kindChild, "/a", CH, "/a", true},
		{kindChild, "/a", D, "/a", true},
		{kindChild, "/a", C, "/a", false},
		{kindChild, "/a", M, "/a", false},
		{kindChild, "/a", CH, "/", false},
		{kindPersistent, "/a", C, "/a", true},
		{kindPersistent, "/a", CH, "/a", true},
		{kindPersistent, "/a", R, "/a", true},
		{kindPersistent, "/a", M, "/a/b", false},
		{kindRecursive, "/a", M, "/a", true},
		{kindRecursive, "/a", C, "/a/b/c", true},
		{kindRecursive, "/a", D, "/a/b", true},
		{kindRecursive, "/a", CH, "/a", false},
		{kindRecursive, "/a", CH, "/a/b", false},
		{kindRecursive, "/a", M, "/ab", false},
		{kindRecursive, "/", C, "/x", true},
		{kindRecursive, "/a", R, "/a", true},
		{kindRecursive, "/", R, "/a", false},
	} {
		if got := matches(tc.kind, tc.wpath, tc.typ, tc.epath); got != tc.want {
			t.Errorf("matches(%d, %q, %s, %q) = %v, want %v", tc.kind, tc.wpath, tc.typ, tc.epath, got, tc.want)
		}
	}
}

func TestDispatch(t *testing.T) {
	c, err := newClient([]string{"x:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, child, exist := make(chan Event, 1), make(chan Event, 1), make(chan Event, 1)
	c.mu.Lock()
	c.addOneShotLocked(watchKey{"/a", kindData}, data)
	c.addOneShotLocked(watchKey{"/a", kindChild}, child)
	c.addOneShotLocked(watchKey{"/b", kindExist}, exist)
	rec := c.newWatcherLocked("/", WatchPersistentRecursive)
	per := c.newWatcherLocked("/a", WatchPersistent)
	for _, ev := range []Event{
		{Type: EventNodeChildrenChanged, Path: "/a", Zxid: 1},
		{Type: EventNodeDataChanged, Path: "/a", Zxid: 2},
		{Type: EventNodeCreated, Path: "/a/x", Zxid: 3},
		{Type: EventNodeDataChanged, Path: "/a", Zxid: 4},
		{Type: EventNodeDeleted, Path: "/b", Zxid: 5},
		{Type: EventNodeDataChanged, Path: "no/slash", Zxid: 6},
	} {
		c.dispatchLocked(ev)
	}
	left := len(c.mu.watches)
	c.mu.Unlock()

	if ev := <-child; ev.Zxid != 1 {
		t.Fatalf("child watch got %+v", ev)
	}
	if ev := <-data; ev.Zxid != 2 {
		t.Fatalf("data watch got %+v", ev)
	}
	if ev := <-exist; ev.Type != EventNodeDeleted || ev.Zxid != 5 {
		t.Fatalf("exist watch got %+v", ev)
	}
	for _, ch := range []chan Event{child, data, exist} {
		if _, ok := <-ch; ok {
			t.Fatal("one-shot channel not closed")
		}
	}
	if left != 2 {
		t.Fatalf("%d watch keys left, want the 2 persistent ones", left)
	}
	var zx []int64
	for range 4 {
		zx = append(zx, (<-rec.Events()).Zxid)
	}
	if !slices.Equal(zx, []int64{2, 3, 4, 5}) {
		t.Fatalf("recursive watch got zxids %v", zx)
	}
	zx = nil
	for range 3 {
		zx = append(zx, (<-per.Events()).Zxid)
	}
	if !slices.Equal(zx, []int64{1, 2, 4}) {
		t.Fatalf("persistent watch got zxids %v", zx)
	}
	c.mu.Lock()
	c.endWatchesLocked(ErrClosed, true)
	c.mu.Unlock()
	c.wg.Wait()
}

// TestDispatchAfterResync: after a Resync(z), a persistent watch skips the
// events at or before z (those of resumed one-shot watches, which are no
// replayed changes) and gets the later ones; the one-shot watch gets its
// event.
func TestDispatchAfterResync(t *testing.T) {
	c, err := newClient([]string{"x:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := make(chan Event, 1)
	c.mu.Lock()
	rec := c.newWatcherLocked("/", WatchPersistentRecursive)
	per := c.newWatcherLocked("/a", WatchPersistent)
	c.addOneShotLocked(watchKey{"/a", kindData}, data)
	for _, ev := range []Event{
		{Type: EventResync, Path: "/", Zxid: 10},
		{Type: EventResync, Path: "/a", Zxid: 10},
		{Type: EventNodeDataChanged, Path: "/a", Zxid: 7}, // the one-shot's resume event
		{Type: EventNodeCreated, Path: "/a/b", Zxid: 11},
		{Type: EventNodeDataChanged, Path: "/a", Zxid: 12},
	} {
		c.dispatchLocked(ev)
	}
	c.mu.Unlock()
	if ev := <-data; ev.Zxid != 7 {
		t.Fatalf("data watch got %+v", ev)
	}
	for _, tc := range []struct {
		w    *Watcher
		want []string
	}{
		{rec, []string{"Resync/10", "NodeCreated/11", "NodeDataChanged/12"}},
		{per, []string{"Resync/10", "NodeDataChanged/12"}},
	} {
		var got []string
		for range tc.want {
			ev := <-tc.w.Events()
			got = append(got, fmt.Sprintf("%s/%d", ev.Type, ev.Zxid))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s watch got %v, want %v", tc.w.path, got, tc.want)
		}
	}
	c.mu.Lock()
	c.endWatchesLocked(ErrClosed, true)
	c.mu.Unlock()
	c.wg.Wait()
}

func TestStream(t *testing.T) {
	s := newStream[int]()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(nil)
	}()
	const n = 10 * streamBuffer
	for i := range n { // never blocks, though nobody reads yet
		s.push(i)
	}
	s.finish()
	s.push(-1) // dropped
	for i := range n {
		if v := <-s.out; v != i {
			t.Fatalf("got %d, want %d", v, i)
		}
	}
	if _, ok := <-s.out; ok {
		t.Fatal("not closed after finish")
	}
	<-done

	// stop closes at once, dropping the queue.
	s = newStream[int]()
	done = make(chan struct{})
	go func() {
		defer close(done)
		s.run(nil)
	}()
	for i := range n {
		s.push(i)
	}
	s.stop()
	s.stop()
	<-done
	got := 0
	for range s.out {
		got++
	}
	if got > streamBuffer {
		t.Fatalf("%d values after stop", got)
	}

	// cancel closes too.
	s = newStream[int]()
	cancel := make(chan struct{})
	done = make(chan struct{})
	go func() {
		defer close(done)
		s.run(cancel)
	}()
	close(cancel)
	<-done
}

func TestBackoff(t *testing.T) {
	for n := range 20 {
		lo, hi := time.Duration(0), 50*time.Millisecond
		if n > 0 {
			d := min(2*time.Second, 50*time.Millisecond<<min(n-1, 10))
			lo, hi = d/2, d+d/2
		}
		for range 100 {
			if b := backoff(n); b < lo || b >= hi {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v)", n, b, lo, hi)
			}
		}
	}
}

func TestMarshalTail(t *testing.T) {
	for _, tc := range []struct {
		req  wire.Request
		tail []byte
	}{
		{wire.Request{Op: wire.OpPing}, []byte(`,"op":"ping"}`)},
		{wire.Request{Op: wire.OpClose}, closeTail},
	} {
		got, err := marshalTail(&tc.req)
		if err != nil || string(got) != string(tc.tail) {
			t.Fatalf("marshalTail(%s) = %s, %v; want %s", tc.req.Op, got, err, tc.tail)
		}
	}
	req := wire.Request{Xid: 99, Op: wire.OpSet, Path: "/a", Data: []byte("x"), Version: -1}
	tail, err := marshalTail(&req)
	if err != nil {
		t.Fatal(err)
	}
	frame := `{"xid":12345` + string(tail)
	got, err := wire.DecodeRequest([]byte(frame))
	if err != nil || got.Xid != 12345 || got.Op != wire.OpSet || got.Path != "/a" || string(got.Data) != "x" || got.Version != -1 {
		t.Fatalf("spliced frame %s decodes as %+v, %v", frame, got, err)
	}
}

func TestSetWatchesChunks(t *testing.T) {
	c, err := newClient([]string{"x:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.setWatchesLocked(7); got != nil {
		t.Fatalf("set_watches without watches: %+v", got)
	}
	long := "/" + strings.Repeat("x", 1000)
	const n = 400
	for i := range n {
		c.addOneShotLocked(watchKey{fmt.Sprintf("%s/%03d", long, i), watchKind(i % 3)}, make(chan Event, 1))
	}
	reqs := c.setWatchesLocked(7)
	if len(reqs) < 3 {
		t.Fatalf("%d set_watches requests for %d KiB of paths", len(reqs), n)
	}
	total := 0
	for _, r := range reqs {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if r.LastZxid != 7 || len(b) > setWatchesBytes+16<<10 {
			t.Fatalf("set_watches of %d bytes, last zxid %d", len(b), r.LastZxid)
		}
		total += len(r.DataWatches) + len(r.ExistWatches) + len(r.ChildWatches)
	}
	if total != n {
		t.Fatalf("%d watches re-armed, want %d", total, n)
	}
}

func TestDigestACL(t *testing.T) {
	// ZooKeeper's documented digest of user:password.
	if got := DigestACL(PermAll, "user", "password"); got.Scheme != "digest" || got.ID != "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=" || got.Perms != PermAll {
		t.Fatalf("DigestACL = %+v", got)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		want error
	}{
		{WithSessionTimeout(-time.Second), ErrBadArguments},
		{WithDialTimeout(-time.Second), ErrBadArguments},
		{WithMaxInFlight(-1), ErrBadArguments},
		{WithMaxInFlight(DefaultMaxInFlight + 1), ErrBadArguments},
		{WithAuth("", "x"), ErrBadArguments},
		{WithMaxInFlight(1), nil},
		{WithLogger(nil), nil},
	} {
		var o options
		tc.opt(&o)
		if err := o.validate(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("validate: %v, want %v", err, tc.want)
		}
	}
	var o options
	if err := o.validate(); err != nil || o.sessionTimeout != DefaultSessionTimeout || o.dialTimeout != DefaultDialTimeout ||
		o.maxInFlight != DefaultMaxInFlight || o.logger == nil {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
}

func TestErrorsMatchWire(t *testing.T) {
	for _, code := range wire.Codes() {
		err := codeError(code, "detail")
		if wire.CodeOf(err) != code || !errors.Is(err, code.Err()) {
			t.Errorf("code %s: error %v does not match its sentinel", code, err)
		}
	}
	if !errors.Is(errUnknownExpired, ErrSessionExpired) || !errors.Is(errUnknownExpired, ErrUnknownOutcome) {
		t.Fatal("errUnknownExpired")
	}
	if !errors.Is(errUnknownClosed, ErrClosed) || !errors.Is(errUnknownClosed, ErrUnknownOutcome) {
		t.Fatal("errUnknownClosed")
	}
}

func TestExpiredWatcherDoesNotBlockClose(t *testing.T) {
	cl := newFakeCluster(t)
	a := cl.newServer()
	c := connect(t, []string{a.addr})
	ctx := context.Background()
	w, err := c.AddWatch(ctx, "/", WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * streamBuffer { // more than the channel holds; never read
		if _, _, err := c.Create(ctx, fmt.Sprintf("/n%d", i), nil, ModePersistent); err != nil {
			t.Fatal(err)
		}
	}
	cl.expire(c.SessionID())
	waitFor(t, "expiry", func() bool { return c.State() == StateExpired })
	_ = w
	c.Close() // must stop the watcher's pump, blocked on its full channel
}

func TestResumeAttemptTimeout(t *testing.T) {
	tests := []struct {
		timeout time.Duration
		servers int
		want    time.Duration
	}{
		{10 * time.Second, 3, 10 * time.Second / 9}, // a third, shared by three
		{10 * time.Second, 5, 10 * time.Second / 15},
		{60 * time.Second, 1, 20 * time.Second}, // (handshake caps it at the dial timeout)
		{2 * time.Second, 5, minResumeAttempt},  // never below the floor
		{10 * time.Second, 0, 10 * time.Second / 3},
	}
	for _, tc := range tests {
		if got := resumeAttemptTimeout(tc.timeout, tc.servers); got != tc.want {
			t.Errorf("resumeAttemptTimeout(%v, %d) = %v, want %v", tc.timeout, tc.servers, got, tc.want)
		}
	}
}

// A read that waits asks the server to answer before the caller's
// deadline, so that the caller gets the state rather than the deadline's
// error.
func TestWaitGoneAnswersBeforeTheDeadline(t *testing.T) {
	if r := readRequest(context.Background(), wire.OpChildren, "/l", false, []ReadOption{WaitGone("/l/a")}); r.WaitGone != "/l/a" || r.WaitMs != 0 {
		t.Fatalf("no deadline: wait_gone %q wait_ms %d, want the server's default", r.WaitGone, r.WaitMs)
	}
	for _, c := range []struct {
		left     time.Duration
		min, max int64
	}{
		// The lower bounds leave room for a slow machine between
		// WithTimeout and readRequest.
		{time.Minute, 50000, 52500}, // an eighth left
		{time.Second, 600, 800},     // 200 ms left
		{100 * time.Millisecond, 1, 50},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), c.left)
		r := readRequest(ctx, wire.OpGet, "/l", false, []ReadOption{WaitGone("/l/a")})
		cancel()
		if r.WaitMs < c.min || r.WaitMs > c.max {
			t.Errorf("%v before the deadline: wait_ms %d, want %d..%d", c.left, r.WaitMs, c.min, c.max)
		}
	}
	if r := readRequest(context.Background(), wire.OpGet, "/l", false, nil); r.WaitGone != "" || r.WaitMs != 0 {
		t.Fatalf("a plain read waits: %+v", r)
	}
}
