package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/client/recipe"
)

const (
	lockRoot = "/chaos/lock"
	lockPath = lockRoot + "/m"
	lockData = lockRoot + "/data"
)

// lockLoad is the LOCK workload.
type lockLoad struct {
	start      time.Time
	reg        *FencedRegister
	pause      time.Duration // how long a paused holder sleeps
	pauseEvery time.Duration // at most one paused holder per this long
	timeout    time.Duration
	// retryUnlock deletes the lock node again when Unlock failed to (until
	// TestRegression_UnlockOnFullDiskWedgesTheLock is fixed).
	retryUnlock bool
	unlockFails atomic.Int64

	nextID    atomic.Int64
	lastPause atomic.Int64 // time.Since(start) of the last pause
	force     atomic.Bool  // the next holder pauses, whenever the last pause was
	pausing   atomic.Bool

	mu struct {
		sync.Mutex
		acqs    []Acquisition
		guarded []GuardedWrite
	}
}

func (l *lockLoad) since() time.Duration { return time.Since(l.start) }

// History returns what was recorded.
func (l *lockLoad) History() LockHistory {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LockHistory{
		Acquisitions: append([]Acquisition(nil), l.mu.acqs...),
		Register:     l.reg.Log(),
		Guarded:      append([]GuardedWrite(nil), l.mu.guarded...),
	}
}

// Acquisitions returns how many locks were taken so far.
func (l *lockLoad) Acquisitions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.acqs)
}

// contender takes and releases the lock until ctx ends. link is the
// contender's network, silenced while it pauses.
func (l *lockLoad) contender(ctx context.Context, id int, c *client.Client, link *ClientLink, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for ctx.Err() == nil {
		if c.State() == client.StateExpired {
			if err := c.NewSession(ctx); err != nil {
				continue
			}
		}
		m := recipe.NewMutex(c, lockPath)
		invoked := l.since()
		lctx, cancel := context.WithTimeout(ctx, l.timeout)
		err := m.Lock(lctx)
		cancel()
		if err != nil {
			continue
		}
		a := Acquisition{ID: int(l.nextID.Add(1)), Client: id, Token: m.Token(), Invoked: invoked, Acquired: l.since()}
		l.reg.Write(a.ID, a.Token, false)
		_ = l.guardedWrite(ctx, m, a)
		if l.pauseDue() {
			// A pause: the holder's code stops (this goroutine waits,
			// checking nothing) and so does its network; its session
			// expires meanwhile. Then it wakes and goes on as if it still
			// held the lock.
			a.Paused = true
			link.Silence(true)
			select {
			case <-time.After(l.pause):
			case <-ctx.Done():
			}
			link.Silence(false)
			l.lastPause.Store(int64(l.since()))
			l.pausing.Store(false)
			l.reg.Write(a.ID, a.Token, true)
			// The guarded write must fail now: the session expired
			// (ErrSessionExpired), or the lock node is gone (ErrLockLost).
			err := l.guardedWrite(ctx, m, a)
			a.PauseLost = errors.Is(err, recipe.ErrLockLost) || errors.Is(err, client.ErrSessionExpired)
		} else {
			select {
			case <-time.After(time.Duration(rng.IntN(20)) * time.Millisecond):
			case <-ctx.Done():
			}
			l.reg.Write(a.ID, a.Token, false)
		}
		a.Released = l.since()
		key := m.Key()
		uctx, cancel := context.WithTimeout(ctx, l.timeout)
		err = m.Unlock(uctx)
		cancel()
		if err != nil && !errors.Is(err, recipe.ErrLockLost) && ctx.Err() == nil {
			l.unlockFails.Add(1)
			if l.retryUnlock {
				l.deleteUntilGone(ctx, c, key)
			}
		}
		l.mu.Lock()
		l.mu.acqs = append(l.mu.acqs, a)
		l.mu.Unlock()
	}
}

// deleteUntilGone deletes a lock node whose Unlock failed (the recipe
// tries once), until it is gone or the session is.
func (l *lockLoad) deleteUntilGone(ctx context.Context, c *client.Client, key string) {
	for ctx.Err() == nil && key != "" {
		dctx, cancel := context.WithTimeout(ctx, l.timeout)
		err := c.Delete(dctx, key, client.AnyVersion)
		cancel()
		if err == nil || errors.Is(err, client.ErrNoNode) || errors.Is(err, client.ErrSessionExpired) || errors.Is(err, client.ErrClosed) {
			return
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// finalLock takes the lock once more, with a new contender, after the
// others stopped: a lock left held by a live session would refuse it.
func (l *lockLoad) finalLock(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m := recipe.NewMutex(c, lockPath)
	if err := m.Lock(ctx); err != nil {
		kids, _, _ := c.Children(context.Background(), lockPath)
		return fmt.Errorf("a new contender could not take the lock within 30s of the others stopping: %v (the lock's nodes: %v)", err, kids)
	}
	return m.Unlock(ctx)
}

// pausesLost counts the pauses after which the holder had lost the lock.
func (l *lockLoad) pausesLost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.mu.acqs {
		if a.PauseLost {
			n++
		}
	}
	return n
}

// pauseDue decides whether this holder pauses: one at a time, at most one
// per pauseEvery.
func (l *lockLoad) pauseDue() bool {
	if l.force.Load() && l.pausing.CompareAndSwap(false, true) {
		l.force.Store(false)
		return true
	}
	if l.pauseEvery <= 0 || l.since()-time.Duration(l.lastPause.Load()) < l.pauseEvery {
		return false
	}
	return l.pausing.CompareAndSwap(false, true)
}

// guardedWrite writes the token with Mutex.Do and records it if it
// applied.
func (l *lockLoad) guardedWrite(ctx context.Context, m *recipe.Mutex, a Acquisition) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := m.Do(ctx, client.Ops().Set(lockData, []byte(fmt.Sprint(a.Token)), client.AnyVersion))
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0].Stat == nil {
		return fmt.Errorf("guarded write: results %+v", res)
	}
	l.mu.Lock()
	l.mu.guarded = append(l.mu.guarded, GuardedWrite{Acq: a.ID, Token: a.Token, Zxid: res[0].Stat.Mzxid})
	l.mu.Unlock()
	return nil
}
