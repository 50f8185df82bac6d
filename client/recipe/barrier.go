package recipe

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"

	"github.com/coord-dev/coord/client"
)

// Barrier blocks its waiters while it is set: ZooKeeper's barrier recipe.
// It is set while its node exists. The node is persistent: a barrier stays
// set when the process that set it dies, until somebody removes it.
type Barrier struct {
	c    *client.Client
	path string
}

// NewBarrier returns the barrier at path.
func NewBarrier(c *client.Client, path string) *Barrier {
	return &Barrier{c: c, path: path}
}

// Set sets the barrier (it is no error if it is set already).
func (b *Barrier) Set(ctx context.Context) error {
	if err := validDir(b.path); err != nil {
		return err
	}
	_, _, err := createIn(ctx, b.c, path.Dir(b.path), path.Base(b.path), nil, client.ModePersistent)
	if errors.Is(err, client.ErrNodeExists) {
		return nil
	}
	return err
}

// Remove lifts the barrier, releasing every waiter (it is no error if it is
// not set).
func (b *Barrier) Remove(ctx context.Context) error {
	if err := validDir(b.path); err != nil {
		return err
	}
	err := b.c.Delete(ctx, b.path, client.AnyVersion)
	if errors.Is(err, client.ErrNoNode) {
		return nil
	}
	return err
}

// Wait returns once the barrier is not set, at once if it is not, or when
// ctx ends or the session does.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := validDir(b.path); err != nil {
		return err
	}
	for {
		_, _, ch, err := b.c.GetW(ctx, b.path)
		switch {
		case errors.Is(err, client.ErrNoNode):
			return nil
		case err != nil:
			return err
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching && !errors.Is(ev.Err, client.ErrWatchRemoved) {
				return ev.Err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DoubleBarrier makes n participants start and finish a computation
// together: ZooKeeper's double barrier. Enter returns once n participants
// have entered; Leave returns once every participant has left. Each
// participant is an ephemeral node, so one that dies leaves: it no longer
// counts towards n (another must take its place for Enter to return), and
// it does not hold the others in Leave.
//
// A DoubleBarrier's path serves one round: once the participants entered,
// the barrier stays open (a late participant's Enter returns at once)
// until the last one leaves. Use a new path for each round.
//
// A DoubleBarrier is one participant, used by one goroutine at a time.
type DoubleBarrier struct {
	c    *client.Client
	path string
	n    int

	mu struct {
		sync.Mutex
		t *ticket // the participant's node, between Enter and Leave
	}
}

// readyName is the node that opens a double barrier.
const readyName = "ready"

// NewDoubleBarrier returns a participant of the double barrier of n
// participants at path.
func NewDoubleBarrier(c *client.Client, path string, n int) *DoubleBarrier {
	return &DoubleBarrier{c: c, path: path, n: n}
}

// partyKinds are the nodes of a double barrier's participants.
var partyKinds = []string{kindParty}

// Enter joins the barrier and returns once n participants have joined. When
// ctx ends first, the participant leaves.
func (d *DoubleBarrier) Enter(ctx context.Context) error {
	if d.n < 1 {
		return fmt.Errorf("%w: a double barrier of %d participants", client.ErrBadArguments, d.n)
	}
	d.mu.Lock()
	if d.mu.t != nil {
		d.mu.Unlock()
		return ErrAlreadyHeld
	}
	d.mu.Unlock()
	t, err := newTicket(ctx, d.c, d.path, kindParty, partyKinds, nil)
	if err != nil {
		return err
	}
	if err := d.enter(ctx, t); err != nil {
		_ = t.remove(ctx)
		return err
	}
	d.mu.Lock()
	d.mu.t = t
	d.mu.Unlock()
	return nil
}

func (d *DoubleBarrier) enter(ctx context.Context, t *ticket) error {
	ready := join(d.path, readyName)
	for {
		// Watch for the barrier to open before counting, so that the
		// participant who opens it cannot be missed.
		ok, _, ch, err := d.c.ExistsW(ctx, ready)
		if err != nil || ok {
			return err
		}
		kids, me, err := t.list(ctx, "")
		if err != nil {
			return err
		}
		if me < 0 {
			return lostError(d.c, nil)
		}
		if len(kids) >= d.n {
			_, _, err := d.c.Create(ctx, ready, nil, client.ModePersistent)
			if errors.Is(err, client.ErrNodeExists) {
				return nil
			}
			return err
		}
		select {
		case ev := <-ch:
			switch {
			case ev.Type == client.EventNodeCreated:
				return nil
			case ev.Type == client.EventNotWatching && !errors.Is(ev.Err, client.ErrWatchRemoved):
				return lostError(d.c, ev.Err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Leave leaves the barrier and returns once every participant has left (or
// died). It fails with ErrNotHeld without a matching Enter. When ctx ends
// first, the participant has left but the others may not have.
func (d *DoubleBarrier) Leave(ctx context.Context) error {
	d.mu.Lock()
	t := d.mu.t
	d.mu.t = nil
	d.mu.Unlock()
	if t == nil {
		return ErrNotHeld
	}
	if err := t.remove(ctx); err != nil && !errors.Is(err, client.ErrNoNode) {
		return err
	}
	for {
		names, _, ch, err := d.c.ChildrenW(ctx, d.path)
		if err != nil {
			return err
		}
		if len(participants(names, partyKinds...)) == 0 {
			// The last to leave closes the barrier.
			err := d.c.Delete(ctx, join(d.path, readyName), client.AnyVersion)
			if errors.Is(err, client.ErrNoNode) {
				return nil
			}
			return err
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching && !errors.Is(ev.Err, client.ErrWatchRemoved) {
				return ev.Err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
