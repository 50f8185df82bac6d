package recipe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/coord-dev/coord/client"
)

// Semaphore is a distributed counting semaphore of n permits. Each
// participant creates an ephemeral sequential node; the first n hold a
// permit, the others wait, in order. Since any of the nodes before a waiter
// may go, waiters watch the whole list: every release wakes every waiter
// (a herd, as Curator's semaphore; it suits tens of waiters, not
// thousands).
//
// The permit count is written in the semaphore's node when it is created;
// a participant with another count fails with client.ErrBadArguments.
//
// A Semaphore is one participant, holding at most one permit, used by one
// goroutine at a time.
type Semaphore struct {
	c    *client.Client
	path string
	n    int

	mu struct {
		sync.Mutex
		busy    bool
		checked bool // the permit count was compared with the node's
		hold    *hold
	}
}

// NewSemaphore returns a participant of the semaphore of n permits at
// path.
func NewSemaphore(c *client.Client, path string, n int) *Semaphore {
	return &Semaphore{c: c, path: path, n: n}
}

// semKinds are the nodes of a semaphore.
var semKinds = []string{kindPermit}

// Acquire takes a permit, waiting as long as ctx allows. Errors are as
// Mutex.Lock's.
func (s *Semaphore) Acquire(ctx context.Context) error { return s.acquire(ctx, false) }

// TryAcquire takes a permit if one is free and nobody waits, else fails
// with ErrLocked.
func (s *Semaphore) TryAcquire(ctx context.Context) error { return s.acquire(ctx, true) }

func (s *Semaphore) acquire(ctx context.Context, try bool) error {
	s.mu.Lock()
	if s.mu.busy || s.mu.hold != nil {
		s.mu.Unlock()
		return ErrAlreadyHeld
	}
	s.mu.busy = true
	checked := s.mu.checked
	s.mu.Unlock()
	h, err := s.take(ctx, try, checked)
	s.mu.Lock()
	s.mu.busy = false
	s.mu.hold = h
	s.mu.checked = s.mu.checked || err == nil
	s.mu.Unlock()
	return err
}

func (s *Semaphore) take(ctx context.Context, try, checked bool) (*hold, error) {
	if s.n < 1 {
		return nil, fmt.Errorf("%w: a semaphore of %d permits", client.ErrBadArguments, s.n)
	}
	if !checked {
		if err := s.checkPermits(ctx); err != nil {
			return nil, err
		}
	}
	t, err := newTicket(ctx, s.c, s.path, kindPermit, semKinds, nil)
	if err != nil {
		return nil, err
	}
	err = t.waitChildren(ctx, func(kids []child, me int) (bool, error) {
		switch {
		case me < s.n:
			return true, nil
		case try:
			return false, ErrLocked
		}
		return false, nil
	})
	if err != nil {
		_ = t.remove(ctx)
		return nil, err
	}
	return newHold(t), nil
}

// checkPermits creates the semaphore's node holding the permit count, or
// checks the count it holds.
func (s *Semaphore) checkPermits(ctx context.Context) error {
	if err := validDir(s.path); err != nil {
		return err
	}
	want := strconv.Itoa(s.n)
	if err := ensurePath(ctx, s.c, s.path, []byte(want)); err != nil {
		return err
	}
	data, _, err := s.c.Get(ctx, s.path)
	if err != nil {
		return err
	}
	if len(data) > 0 && string(data) != want {
		return fmt.Errorf("%w: semaphore %s has %s permits, not %s", client.ErrBadArguments, s.path, data, want)
	}
	return nil
}

// waitChildren returns once ok says the ticket may go ahead, or fails with
// ok's error. It re-reads the list, linearizably (see list), on every change
// of it (a one-shot child watch), checking its own node and session each
// time.
func (t *ticket) waitChildren(ctx context.Context, ok func(kids []child, me int) (bool, error)) error {
	for {
		names, _, ch, err := t.c.ChildrenW(ctx, t.dir)
		switch {
		case errors.Is(err, client.ErrNoNode):
			return lostError(t.c, nil)
		case errors.Is(err, client.ErrSessionExpired), errors.Is(err, client.ErrClosed):
			return lostError(t.c, err)
		case err != nil:
			return err
		}
		kids := participants(names, t.kinds...)
		me := indexOf(kids, t.name)
		if me < 0 {
			return lostError(t.c, nil)
		}
		if err := t.sessionErr(); err != nil {
			return err
		}
		if done, err := ok(kids, me); done || err != nil {
			return err
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching && !errors.Is(ev.Err, client.ErrWatchRemoved) {
				return lostError(t.c, ev.Err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release returns the permit. Errors are as Mutex.Unlock's.
func (s *Semaphore) Release(ctx context.Context) error {
	s.mu.Lock()
	h := s.mu.hold
	s.mu.hold = nil
	s.mu.Unlock()
	if h == nil {
		return ErrNotHeld
	}
	return h.release(ctx)
}

// Lost is Mutex.Lost for the permit.
func (s *Semaphore) Lost() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.hold != nil {
		return s.mu.hold.lost
	}
	return closedChan
}
