package recipe

import (
	"context"
	"errors"
	"fmt"

	"github.com/coord-dev/coord/client"
)

// Queue is a distributed FIFO queue: ZooKeeper's queue recipe. Put adds a
// persistent sequential node holding the item; Take removes the lowest. An
// item is taken by exactly one taker: whoever deletes its node. Items
// survive every client; a queue holds as many as a node may have children
// (mind the server's limits: coord reads a directory of many thousand
// items at every Take).
//
// Delivery is at most once to the program when takers can die: an item is
// removed before Take returns it, and lost if its taker dies before it is
// processed. A program that needs at-least-once processing marks items
// done elsewhere, or takes them under a lock.
type Queue struct {
	c    *client.Client
	path string
}

// NewQueue returns the queue at path.
func NewQueue(c *client.Client, path string) *Queue {
	return &Queue{c: c, path: path}
}

// kindItem names the items: "item-<sequence>".
const kindItem = "item"

// Put appends an item and returns its node's path. Put is applied exactly
// once even when the connection is lost and the request resent. Only when
// the session expires with the Put in flight does the error match
// client.ErrUnknownOutcome: the item may or may not be in the queue. (A
// program that must not enqueue twice puts an id in its data and skips
// the duplicates it takes.)
func (q *Queue) Put(ctx context.Context, data []byte) (string, error) {
	if err := validDir(q.path); err != nil {
		return "", err
	}
	p, _, err := createIn(ctx, q.c, q.path, kindItem+"-", data, client.ModePersistentSequential)
	return p, err
}

// Take removes the first item and returns its data, waiting for one as long
// as ctx allows. Once it has sent the removal of an item, Take waits for
// its outcome even if ctx ends, so that it never removes an item without
// returning it. If the session expires while the removal is in flight,
// Take returns the data with an error matching client.ErrUnknownOutcome:
// the item may still be in the queue, and taken again.
func (q *Queue) Take(ctx context.Context) ([]byte, error) {
	if err := validDir(q.path); err != nil {
		return nil, err
	}
	watch := false
	for {
		var names []string
		var ch <-chan client.Event
		var err error
		if watch {
			names, _, ch, err = q.c.ChildrenW(ctx, q.path)
		} else {
			names, _, err = q.c.Children(ctx, q.path)
		}
		if errors.Is(err, client.ErrNoNode) {
			if err := ensurePath(ctx, q.c, q.path, nil); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		items := participants(names, kindItem)
		for _, it := range items {
			data, took, err := q.take(ctx, join(q.path, it.name))
			if took || err != nil {
				return data, err
			}
		}
		if len(items) > 0 || !watch {
			// Others took them all first, or the queue looked empty:
			// read again, watching this time.
			watch = len(items) == 0
			continue
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching && !errors.Is(ev.Err, client.ErrWatchRemoved) {
				return nil, ev.Err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// take tries to remove the item at p; took is false when another taker
// removed it first.
func (q *Queue) take(ctx context.Context, p string) (data []byte, took bool, err error) {
	data, st, err := q.c.Get(ctx, p)
	if errors.Is(err, client.ErrNoNode) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	err = q.c.Delete(context.WithoutCancel(ctx), p, st.Version)
	switch {
	case err == nil:
		return data, true, nil
	case errors.Is(err, client.ErrNoNode):
		return nil, false, nil
	case errors.Is(err, client.ErrUnknownOutcome):
		return data, true, fmt.Errorf("taking %s: %w", p, err)
	}
	return nil, false, err
}

// Len returns the number of items in the queue.
func (q *Queue) Len(ctx context.Context) (int, error) {
	if err := validDir(q.path); err != nil {
		return 0, err
	}
	names, _, err := q.c.Children(ctx, q.path)
	if errors.Is(err, client.ErrNoNode) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return len(participants(names, kindItem)), nil
}
