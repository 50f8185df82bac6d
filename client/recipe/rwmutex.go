package recipe

import (
	"context"
	"sync"

	"github.com/coord-dev/coord/client"
)

// RWMutex is a distributed read-write lock: ZooKeeper's shared lock recipe.
// Readers and writers queue in one sequence of ephemeral sequential nodes.
// A reader holds the lock once no writer's node is before its own; a writer
// once no node at all is. So readers share the lock, a writer has it alone,
// and a reader that arrives after a waiting writer queues behind it: writers
// do not starve. Each waiter watches one node: a reader the last writer
// before it, a writer the node just before it.
//
// An RWMutex is one participant, holding a read or a write lock at a time;
// it is used by one goroutine at a time. Lost, Token, Guard and Do work as
// the Mutex's, for the hold of either kind.
type RWMutex struct {
	c    *client.Client
	path string

	mu struct {
		sync.Mutex
		busy  bool
		hold  *hold
		write bool // hold is a write lock
	}
}

// NewRWMutex returns a participant of the read-write lock at path.
func NewRWMutex(c *client.Client, path string) *RWMutex {
	return &RWMutex{c: c, path: path}
}

// rwKinds are the nodes of an RWMutex's queue.
var rwKinds = []string{kindRead, kindWrite}

// readBlockers: the writers before it.
func readBlockers(kids []child, me int) []child {
	var ws []child
	for _, k := range kids[:me] {
		if k.kind == kindWrite {
			ws = append(ws, k)
		}
	}
	return ws
}

// RLock acquires a read lock, waiting as long as ctx allows for the
// writers queued before it. Errors are as Mutex.Lock's.
func (rw *RWMutex) RLock(ctx context.Context) error { return rw.lock(ctx, false, false) }

// TryRLock acquires a read lock if no writer holds or waits for the lock,
// else fails with ErrLocked.
func (rw *RWMutex) TryRLock(ctx context.Context) error { return rw.lock(ctx, false, true) }

// Lock acquires the write lock, waiting as long as ctx allows for every
// participant queued before it. Errors are as Mutex.Lock's.
func (rw *RWMutex) Lock(ctx context.Context) error { return rw.lock(ctx, true, false) }

// TryLock acquires the write lock if nobody holds or waits for the lock,
// else fails with ErrLocked.
func (rw *RWMutex) TryLock(ctx context.Context) error { return rw.lock(ctx, true, true) }

func (rw *RWMutex) lock(ctx context.Context, write, try bool) error {
	rw.mu.Lock()
	if rw.mu.busy || rw.mu.hold != nil {
		rw.mu.Unlock()
		return ErrAlreadyHeld
	}
	rw.mu.busy = true
	rw.mu.Unlock()
	kind, blockers := kindRead, readBlockers
	if write {
		kind, blockers = kindWrite, exclusive
	}
	h, err := acquire(ctx, rw.c, rw.path, kind, rwKinds, nil, try, blockers)
	rw.mu.Lock()
	rw.mu.busy = false
	rw.mu.hold, rw.mu.write = h, write
	rw.mu.Unlock()
	return err
}

// RUnlock releases a read lock; it fails with ErrNotHeld when this RWMutex
// holds no read lock. Errors are as Mutex.Unlock's.
func (rw *RWMutex) RUnlock(ctx context.Context) error { return rw.unlock(ctx, false) }

// Unlock releases the write lock; it fails with ErrNotHeld when this
// RWMutex does not hold it. Errors are as Mutex.Unlock's.
func (rw *RWMutex) Unlock(ctx context.Context) error { return rw.unlock(ctx, true) }

func (rw *RWMutex) unlock(ctx context.Context, write bool) error {
	rw.mu.Lock()
	h := rw.mu.hold
	if h == nil || rw.mu.write != write {
		rw.mu.Unlock()
		return ErrNotHeld
	}
	rw.mu.hold = nil
	rw.mu.Unlock()
	return h.release(ctx)
}

func (rw *RWMutex) holding() *hold {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.mu.hold
}

// Token returns the fencing token of the current hold (read or write), 0
// when none: its node's czxid. A writer's token is larger than the token of
// every earlier holder, readers included; readers holding together have
// different tokens in no particular relation.
func (rw *RWMutex) Token() int64 {
	if h := rw.holding(); h != nil {
		return h.t.czxid
	}
	return 0
}

// Lost is Mutex.Lost for the current hold, read or write.
func (rw *RWMutex) Lost() <-chan struct{} {
	if h := rw.holding(); h != nil {
		return h.lost
	}
	return closedChan
}

// Guard is Mutex.Guard for the current hold, read or write.
func (rw *RWMutex) Guard(ops *client.OpList) *client.OpList {
	if h := rw.holding(); h != nil {
		return h.guard(ops)
	}
	return ops.Check("", client.AnyVersion)
}

// Do is Mutex.Do for the current hold, read or write.
func (rw *RWMutex) Do(ctx context.Context, ops *client.OpList) ([]client.OpResult, error) {
	h := rw.holding()
	if h == nil {
		return nil, ErrNotHeld
	}
	return h.do(ctx, ops)
}
