package session

import (
	"container/heap"
	"slices"
	"sync"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

// Tracker is the leader's expiry clock: for every live session, the
// monotonic deadline by which it must be heard from. See the package doc.
// The zero Tracker is empty and ready to use.
type Tracker struct {
	mu struct {
		sync.Mutex
		byID map[wire.SessionID]*tracked
		heap deadlines
	}
}

// tracked is one session in a Tracker.
type tracked struct {
	id       wire.SessionID
	timeout  time.Duration
	deadline time.Time // now+timeout of the latest Touch or Extend
	// key orders the heap: a deadline the session had, at or before
	// deadline. A report only moves deadline, so that it costs a map lookup
	// and no heap work; settleLocked catches key up when it comes due.
	key   time.Time
	index int // in the heap
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{} }

// Touch records that session id was heard from at now: its deadline becomes
// now+timeout unless it already is later. An unknown id is added. The leader
// touches only sessions of its table; now must come from time.Now.
func (t *Tracker) Touch(id wire.SessionID, timeout time.Duration, now time.Time) {
	d := now.Add(timeout)
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.mu.byID[id]; s != nil {
		s.timeout = timeout
		if d.After(s.deadline) {
			s.deadline = d
		}
		return
	}
	if t.mu.byID == nil {
		t.mu.byID = make(map[wire.SessionID]*tracked)
	}
	s := &tracked{id: id, timeout: timeout, deadline: d, key: d}
	t.mu.byID[id] = s
	heap.Push(&t.mu.heap, s)
}

// Extend records that session id was heard from at now, with the timeout it
// is tracked with, and reports whether it is tracked: an unknown id is not
// added (a heartbeat must not bring back a session whose close applied).
// It is the heartbeat's path: a map lookup under the lock, nothing more.
func (t *Tracker) Extend(id wire.SessionID, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.mu.byID[id]
	if s == nil {
		return false
	}
	if d := now.Add(s.timeout); d.After(s.deadline) {
		s.deadline = d
	}
	return true
}

// Remove forgets session id, once its close is applied. Removing an unknown
// id does nothing.
func (t *Tracker) Remove(id wire.SessionID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.mu.byID[id]
	if s == nil {
		return
	}
	heap.Remove(&t.mu.heap, s.index)
	delete(t.mu.byID, id)
}

// ResetAll replaces what the tracker holds by sessions (id → timeout), each
// with a fresh full timeout from now: what a new leader or a restarted server
// does before expiring anything.
func (t *Tracker) ResetAll(sessions map[wire.SessionID]time.Duration, now time.Time) {
	byID := make(map[wire.SessionID]*tracked, len(sessions))
	h := make(deadlines, 0, len(sessions))
	for id, timeout := range sessions {
		d := now.Add(timeout)
		s := &tracked{id: id, timeout: timeout, deadline: d, key: d, index: len(h)}
		byID[id] = s
		h = append(h, s)
	}
	heap.Init(&h)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.byID, t.mu.heap = byID, h
}

// Expired returns, sorted, the sessions whose deadline is at or before now.
// It removes nothing: the caller Removes a session once its close applied,
// and may propose the close again if it did not commit.
func (t *Tracker) Expired(now time.Time) []wire.SessionID {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settleLocked(now)
	// The due sessions form a subtree at the heap's root: walk only it.
	var out []wire.SessionID
	t.walkDueLocked(now, func(s *tracked) { out = append(out, s.id) })
	slices.Sort(out)
	return out
}

// settleLocked brings the key of every session whose key is at or before
// now, but whose deadline is later, up to its deadline. Afterwards a key is
// at or before now exactly when the deadline is.
func (t *Tracker) settleLocked(now time.Time) {
	var stale []*tracked
	t.walkDueLocked(now, func(s *tracked) {
		if s.deadline.After(now) {
			stale = append(stale, s)
		}
	})
	for _, s := range stale {
		s.key = s.deadline
		heap.Fix(&t.mu.heap, s.index)
	}
}

// walkDueLocked calls f for every session whose key is at or before now:
// the subtree of such keys at the heap's root.
func (t *Tracker) walkDueLocked(now time.Time, f func(*tracked)) {
	h := t.mu.heap
	if len(h) == 0 || h[0].key.After(now) {
		return
	}
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(h) || h[i].key.After(now) {
			continue
		}
		f(h[i])
		stack = append(stack, 2*i+1, 2*i+2)
	}
}

// NextDeadline returns the earliest deadline, and false when the tracker is
// empty. Expired(d) is not empty for any d at or after it.
func (t *Tracker) NextDeadline() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.mu.heap
	if len(h) == 0 {
		return time.Time{}, false
	}
	// The least key is a lower bound of every deadline: it is the earliest
	// deadline once it is its session's own.
	for !h[0].key.Equal(h[0].deadline) {
		h[0].key = h[0].deadline
		heap.Fix(&t.mu.heap, 0)
	}
	return h[0].deadline, true
}

// Deadline returns session id's deadline, and false when it is not tracked.
func (t *Tracker) Deadline(id wire.SessionID) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.mu.byID[id]; s != nil {
		return s.deadline, true
	}
	return time.Time{}, false
}

// Len returns the number of sessions tracked.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mu.byID)
}

// deadlines is a min-heap of sessions by key (container/heap).
type deadlines []*tracked

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].key.Before(h[j].key) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *deadlines) Push(x any) {
	s := x.(*tracked)
	s.index = len(*h)
	*h = append(*h, s)
}

func (h *deadlines) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}
