package session

import (
	"slices"
	"sync"

	"github.com/coord-dev/coord/internal/wire"
)

// Heartbeats is a connected server's batch of liveness reports for the
// leader: the sessions heard from since the last Drain. The zero Heartbeats
// is empty and ready to use.
type Heartbeats struct {
	mu struct {
		sync.Mutex
		ids map[wire.SessionID]struct{}
	}
}

// NewHeartbeats returns an empty batch.
func NewHeartbeats() *Heartbeats { return &Heartbeats{} }

// Mark records that session id was heard from. Marking it again before the
// next Drain changes nothing.
func (h *Heartbeats) Mark(id wire.SessionID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.ids == nil {
		h.mu.ids = make(map[wire.SessionID]struct{})
	}
	h.mu.ids[id] = struct{}{}
}

// Drain returns the marked sessions, each once and sorted, and empties the
// batch; nil when none was marked.
func (h *Heartbeats) Drain() []wire.SessionID {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.mu.ids) == 0 {
		return nil
	}
	out := make([]wire.SessionID, 0, len(h.mu.ids))
	for id := range h.mu.ids {
		out = append(out, id)
	}
	// Keep the map's room for the next batch: its size follows the number
	// of sessions this server hears from per batch.
	clear(h.mu.ids)
	slices.Sort(out)
	return out
}

// Len returns the number of sessions marked since the last Drain.
func (h *Heartbeats) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.ids)
}
