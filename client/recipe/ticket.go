package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coord-dev/coord/client"
)

// ticket is one participant's ephemeral sequential node in a recipe
// directory (lock, read-write lock, election, semaphore). A ticket is used
// by one goroutine at a time.
type ticket struct {
	c     *client.Client
	dir   string
	kinds []string // the kinds of node that share the queue
	name  string
	path  string
	czxid int64
	owner client.SessionID // the session that created the node
}

// newTicket creates the participant node of kind in dir, with data.
//
// The create runs detached from ctx: once sent, it goes on (and is resent
// after a reconnect, so that the server's exactly-once answer tells the
// true outcome) even when ctx ends first. newTicket then returns ctx's
// error and a goroutine deletes the node once the create lands, so that
// an abandoned attempt does not hold a place in the queue for the session's
// lifetime. That goroutine ends when the create and delete are answered,
// or failed by the session's expiry or the client's Close.
func newTicket(ctx context.Context, c *client.Client, dir, kind string, kinds []string, data []byte) (*ticket, error) {
	if err := validDir(dir); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := kind + "-" + c.SessionID().String() + "-"
	type created struct {
		path string
		stat *client.Stat
		err  error
	}
	done := make(chan created, 1)
	go func() {
		p, st, err := createIn(context.WithoutCancel(ctx), c, dir, prefix, data, client.ModeEphemeralSequential)
		done <- created{p, st, err}
	}()
	var r created
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				_ = c.Delete(context.Background(), r.path, client.AnyVersion)
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		// After the session's expiry the error also matches
		// client.ErrUnknownOutcome: the node may have been created, but it
		// was ephemeral and is gone with its session.
		return nil, r.err
	}
	return &ticket{
		c: c, dir: dir, kinds: kinds, path: r.path, name: base(r.path),
		czxid: r.stat.Czxid, owner: r.stat.EphemeralOwner,
	}, nil
}

// lostError is the error of a participant whose node is gone; cause is
// what ended its wait, if known.
func lostError(c *client.Client, cause error) error {
	if cause != nil && (errors.Is(cause, client.ErrSessionExpired) || errors.Is(cause, client.ErrClosed)) {
		return fmt.Errorf("%w: %w", ErrLockLost, cause)
	}
	switch c.State() {
	case client.StateExpired:
		return fmt.Errorf("%w: %w", ErrLockLost, client.ErrSessionExpired)
	case client.StateClosed:
		return fmt.Errorf("%w: %w", ErrLockLost, client.ErrClosed)
	}
	return fmt.Errorf("%w: its node was deleted", ErrLockLost)
}

// sessionErr returns an error matching ErrLockLost when the session that
// created the ticket is no longer the client's.
func (t *ticket) sessionErr() error {
	if t.c.SessionID() != t.owner {
		return lostError(t.c, client.ErrSessionExpired)
	}
	return nil
}

// waitGoneOption is client.WaitGone; a test replaces it to play a server
// that predates reads that wait.
var waitGoneOption = client.WaitGone

// blockersFunc returns the participants before kids[me] that keep it
// waiting, in order; none means it may go ahead.
type blockersFunc func(kids []child, me int) []child

// list reads the directory's participants and the ticket's index among
// them; an index of -1 means the ticket's node is gone.
//
// The read is linearizable, since it decides whether the participant goes
// ahead: it then proves that the participant's node, and so its session,
// was alive with nothing before it when the read was served. A local read
// would be enough for ordering (it is never older than what the session
// has seen, and deletions are final), but a follower cut off from the
// leader could serve one that still shows a node whose session the others
// already expired.
//
// With a blocker's path, the read waits on the server until that node is
// gone (client.WaitGone), or answers at once when it already is. It stays
// linearizable: the server answers a waiting read from a state after the
// deletion, which it learned of after the read arrived.
func (t *ticket) list(ctx context.Context, blocker string) ([]child, int, error) {
	var opts []client.ReadOption
	if blocker != "" {
		opts = append(opts, waitGoneOption(blocker))
	}
	names, _, err := t.c.Children(ctx, t.dir, opts...)
	switch {
	case errors.Is(err, client.ErrNoNode):
		return nil, -1, nil
	case errors.Is(err, client.ErrSessionExpired), errors.Is(err, client.ErrClosed):
		return nil, -1, lostError(t.c, err)
	case err != nil:
		return nil, -1, err
	}
	kids := participants(names, t.kinds...)
	return kids, indexOf(kids, t.name), nil
}

// wait returns once no participant blocks the ticket's, waiting only for
// the last blocker (no herd effect). It goes ahead only once a read on its
// live session shows its own node with nothing before it: a session that
// expired meanwhile (Jepsen's finding on etcd's lock) fails the wait, as
// does a node deleted behind its back.
//
// The reads after the first wait on the server for the last blocker's
// deletion and answer with the directory as it is then: one message
// instead of an event and a read's round trip, which is most of what a
// lock's hand-off costs beyond the delete's fsync. When such a read comes
// back with the blocker still there (its wait ran out, the connection has
// too many reads waiting, or the server predates waiting reads), the wait
// falls back to watching the blocker.
func (t *ticket) wait(ctx context.Context, blockers blockersFunc) error {
	kids, me, err := t.list(ctx, "")
	for {
		if err != nil {
			return err
		}
		if me < 0 {
			return lostError(t.c, nil)
		}
		if err := t.sessionErr(); err != nil {
			return err
		}
		bs := blockers(kids, me)
		if len(bs) == 0 {
			return nil
		}
		last := bs[len(bs)-1].name
		kids, me, err = t.list(ctx, join(t.dir, last))
		if err == nil && me >= 0 && indexOf(kids, last) >= 0 {
			if err := t.waitGone(ctx, join(t.dir, last)); err != nil {
				return err
			}
			kids, me, err = t.list(ctx, "")
		}
	}
}

// waitGone returns once the node at p is deleted (or when it is already
// gone): wait's fallback when a read did not wait. Its read is local: a
// node it shows gone is gone (deletions are final), and one it shows
// present is watched, so a stale answer costs at most a wake-up.
func (t *ticket) waitGone(ctx context.Context, p string) error {
	for {
		_, _, ch, err := t.c.GetW(ctx, p, client.Local())
		switch {
		case errors.Is(err, client.ErrNoNode):
			return nil
		case errors.Is(err, client.ErrSessionExpired), errors.Is(err, client.ErrClosed):
			return lostError(t.c, err)
		case err != nil:
			return err
		}
		select {
		case ev := <-ch:
			switch {
			case ev.Type == client.EventNodeDeleted:
				return nil
			case ev.Type == client.EventNotWatching && !errors.Is(ev.Err, client.ErrWatchRemoved):
				return lostError(t.c, ev.Err)
			}
			// Its data changed, or the watch was removed: watch again.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// remove deletes the node. The delete runs detached from ctx, so that it is
// never abandoned (an abandoned request is not resent after a reconnect);
// when ctx ends first, remove returns its error and the delete goes on.
//
// The delete is guaranteed, like Curator's: while it fails with an error
// that leaves the node in place and the session alive (a server with a
// full disk answers QuotaExceeded, a cluster without a leader
// ConnectionLoss), it is retried in the background with backoff until it
// succeeds, the node or the session is gone, or the client is closed.
// Without that, a failed Unlock would leave a node that blocks every other
// contender for as long as the session lives. remove returns the first
// attempt's error.
func (t *ticket) remove(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		dctx := context.WithoutCancel(ctx)
		err := t.c.Delete(dctx, t.path, client.AnyVersion)
		errc <- err
		for backoff := 50 * time.Millisecond; !settled(err); backoff = min(2*backoff, 2*time.Second) {
			select {
			case <-time.After(backoff):
			case <-t.c.Done():
				return
			}
			err = t.c.Delete(dctx, t.path, client.AnyVersion)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settled reports whether a delete's outcome needs no retry.
func settled(err error) bool {
	return err == nil || errors.Is(err, client.ErrNoNode) || errors.Is(err, client.ErrSessionExpired) ||
		errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrNoAuth) || errors.Is(err, client.ErrBadArguments)
}

// hold is a ticket that reached the front: a held lock, leadership or
// permit. Its monitor goroutine follows the client's session states and
// closes lost when the session that holds the node is gone; release stops
// and joins it.
type hold struct {
	t      *ticket
	lost   chan struct{}
	once   sync.Once
	cause  error // why the hold was lost; set before lost is closed
	cancel context.CancelFunc
	done   chan struct{} // closed when the monitor exits
}

// newHold starts the monitor of a ticket that reached the front.
func newHold(t *ticket) *hold {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hold{t: t, lost: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	states := t.c.StateEvents(ctx)
	go h.monitor(ctx, states)
	return h
}

// monitor ends the hold when the session ends: expiry, Close, or a new
// session (which only follows an expiry).
func (h *hold) monitor(ctx context.Context, states <-chan client.StateEvent) {
	defer close(h.done)
	for {
		select {
		case ev, ok := <-states:
			switch {
			case !ok:
				if ctx.Err() == nil {
					h.end(lostError(h.t.c, client.ErrClosed))
				}
				return
			case ev.State == client.StateExpired:
				h.end(lostError(h.t.c, client.ErrSessionExpired))
				return
			case ev.State == client.StateClosed:
				h.end(lostError(h.t.c, client.ErrClosed))
				return
			case ev.State == client.StateConnected && ev.SessionID != h.t.owner:
				h.end(lostError(h.t.c, client.ErrSessionExpired))
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// end closes lost, once; cause is nil for a release.
func (h *hold) end(cause error) {
	h.once.Do(func() {
		h.cause = cause
		close(h.lost)
	})
}

// err returns why the hold was lost, or nil while it is not.
func (h *hold) err() error {
	select {
	case <-h.lost:
		return h.cause
	default:
		return nil
	}
}

// release ends the hold and deletes the node. It returns an error matching
// ErrLockLost when the hold had been lost already.
func (h *hold) release(ctx context.Context) error {
	h.cancel()
	<-h.done
	lost := h.err()
	h.end(nil)
	err := h.t.remove(ctx)
	switch {
	case lost != nil:
		return lost
	case errors.Is(err, client.ErrNoNode), errors.Is(err, client.ErrSessionExpired), errors.Is(err, client.ErrClosed):
		return lostError(h.t.c, err)
	}
	return err
}

// guard appends to ops a check that the hold's node still exists.
func (h *hold) guard(ops *client.OpList) *client.OpList {
	return ops.Check(h.t.path, client.AnyVersion)
}

// do applies ops atomically on condition that the hold's node exists. A
// failed check ends the hold: its node is gone.
func (h *hold) do(ctx context.Context, ops *client.OpList) ([]client.OpResult, error) {
	n := ops.Len()
	res, err := h.t.c.Multi(ctx, h.guard(ops))
	if err != nil && len(res) == n+1 && errors.Is(res[n].Err, client.ErrNoNode) {
		lost := lostError(h.t.c, nil)
		h.end(lost)
		return res, fmt.Errorf("%w: %w", lost, err)
	}
	return res, err
}

// set replaces the data of the hold's node. A missing node ends the hold.
func (h *hold) set(ctx context.Context, data []byte) error {
	_, err := h.t.c.Set(ctx, h.t.path, data, client.AnyVersion)
	if errors.Is(err, client.ErrNoNode) || errors.Is(err, client.ErrSessionExpired) {
		lost := lostError(h.t.c, err)
		h.end(lost)
		return fmt.Errorf("%w: %w", lost, err)
	}
	return err
}

// closedChan is returned by Lost when nothing is held; it is never written.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()
