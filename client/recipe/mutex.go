package recipe

import (
	"context"
	"sync"

	"github.com/coord-dev/coord/client"
)

// Mutex is a distributed lock: ZooKeeper's lock recipe. Each contender
// creates an ephemeral sequential node under the lock's path; the lowest
// holds the lock, and each other watches only the node just before its own
// (no herd effect: a release wakes one waiter).
//
// A Mutex is one contender, used by one goroutine at a time; contenders in
// one program make one Mutex each and may share a Client. The lock is held
// by the Mutex, not by a goroutine, and ends with the client's session:
// watch Lost, and pass Token to whatever the critical section writes to.
type Mutex struct {
	c    *client.Client
	path string

	mu struct {
		sync.Mutex
		busy bool  // Lock or TryLock in progress
		hold *hold // nil when not held
	}
}

// NewMutex returns a contender for the lock at path (an absolute path; it
// and its missing ancestors are created as persistent nodes on first use).
func NewMutex(c *client.Client, path string) *Mutex {
	return &Mutex{c: c, path: path}
}

// mutexKinds are the nodes a Mutex's queue is made of.
var mutexKinds = []string{kindLock}

// Lock acquires the lock, waiting as long as ctx allows. It fails with
// ErrAlreadyHeld when this Mutex holds it already, with an error matching
// ErrLockLost (and client.ErrSessionExpired) when the session expired
// while waiting, and with ctx's error when ctx ends first: its node is
// then deleted, also when it was still being created.
func (m *Mutex) Lock(ctx context.Context) error {
	return m.lock(ctx, false)
}

// TryLock acquires the lock if nobody holds it or waits for it, else fails
// at once with ErrLocked.
func (m *Mutex) TryLock(ctx context.Context) error {
	return m.lock(ctx, true)
}

func (m *Mutex) lock(ctx context.Context, try bool) error {
	m.mu.Lock()
	if m.mu.busy || m.mu.hold != nil {
		m.mu.Unlock()
		return ErrAlreadyHeld
	}
	m.mu.busy = true
	m.mu.Unlock()
	h, err := acquire(ctx, m.c, m.path, kindLock, mutexKinds, nil, try, exclusive)
	m.mu.Lock()
	m.mu.busy = false
	m.mu.hold = h
	m.mu.Unlock()
	return err
}

// exclusive is the blockersFunc of an exclusive lock: every participant
// before it.
func exclusive(kids []child, me int) []child { return kids[:me] }

// acquire creates a ticket of kind in dir and waits until blockers lets it
// go ahead (with try, fails with ErrLocked instead of waiting). On failure
// the ticket's node is deleted.
func acquire(ctx context.Context, c *client.Client, dir, kind string, kinds []string, data []byte, try bool, blockers blockersFunc) (*hold, error) {
	t, err := newTicket(ctx, c, dir, kind, kinds, data)
	if err != nil {
		return nil, err
	}
	if try {
		inner := blockers
		blockers = func(kids []child, me int) []child {
			if bs := inner(kids, me); len(bs) > 0 {
				err = ErrLocked
			}
			return nil
		}
	}
	if werr := t.wait(ctx, blockers); werr != nil || err != nil {
		// When ctx has ended, the delete goes on without us.
		_ = t.remove(ctx)
		if werr != nil {
			return nil, werr
		}
		return nil, err
	}
	return newHold(t), nil
}

// Unlock releases the lock: it deletes the lock node. It fails with
// ErrNotHeld when this Mutex does not hold the lock, and with an error
// matching ErrLockLost when the lock had been lost before. When ctx ends
// first, Unlock returns ctx's error but the delete goes on (and the
// Mutex no longer holds the lock).
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	h := m.mu.hold
	m.mu.hold = nil
	m.mu.Unlock()
	if h == nil {
		return ErrNotHeld
	}
	return h.release(ctx)
}

func (m *Mutex) holding() *hold {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.hold
}

// Token returns the fencing token of the current hold, 0 when not held:
// the czxid of the lock node. Successive holders of a lock get strictly
// increasing tokens, so a service that remembers the largest token it has
// seen can refuse the writes of a holder that lost the lock without
// knowing it yet.
func (m *Mutex) Token() int64 {
	if h := m.holding(); h != nil {
		return h.t.czxid
	}
	return 0
}

// Key returns the path of the lock node of the current hold, "" when not
// held.
func (m *Mutex) Key() string {
	if h := m.holding(); h != nil {
		return h.t.path
	}
	return ""
}

// Lost returns a channel that is closed when the current hold ends: when
// the lock is lost or released by Unlock. The lock is lost when the
// client's session ends (it expired, or the client was closed), and when Do
// finds the lock node gone (someone deleted it: an operator breaking the
// lock). When the lock is not held, the channel is closed already. A holder
// selects on it to stop its critical section: past that point another
// contender may hold the lock.
//
// While the client is disconnected nothing can be known: the session may
// expire meanwhile, and the channel is closed once the client hears of it,
// on reconnecting. A holder that must stop at once treats
// client.StateDisconnected as a possible loss; a service it writes to
// rejects its stale writes by their fencing token (Token).
func (m *Mutex) Lost() <-chan struct{} {
	if h := m.holding(); h != nil {
		return h.lost
	}
	return closedChan
}

// Guard appends to ops a check that the lock node still exists, and
// returns ops: a Multi of them then applies only while this Mutex holds the
// lock. Without a hold, the check fails (ErrNoNode, or ErrBadArguments when
// the Mutex never held the lock). Do is Guard and Multi in one call.
func (m *Mutex) Guard(ops *client.OpList) *client.OpList {
	if h := m.holding(); h != nil {
		return h.guard(ops)
	}
	return ops.Check("", client.AnyVersion)
}

// Do applies ops atomically (client.Multi) if, and only if, this Mutex
// still holds the lock when they apply. It fails with ErrNotHeld without
// sending anything when the Mutex holds no lock, and with an error matching
// ErrLockLost (and the *client.OpError of the failed check) when the lock
// was lost. The results are those of ops, followed by the check's.
func (m *Mutex) Do(ctx context.Context, ops *client.OpList) ([]client.OpResult, error) {
	h := m.holding()
	if h == nil {
		return nil, ErrNotHeld
	}
	return h.do(ctx, ops)
}
