package server

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// waitRegistry holds the proposals handed to raft and not yet applied, by
// proposal id. The raft goroutine adds and re-proposes; the apply goroutine
// takes.
type waitRegistry struct {
	mu struct {
		sync.Mutex
		m map[uint64]*proposal
	}
}

func (w *waitRegistry) init() { w.mu.m = map[uint64]*proposal{} }

func (w *waitRegistry) add(p *proposal) {
	w.mu.Lock()
	w.mu.m[p.id] = p
	w.mu.Unlock()
}

// take removes and returns the proposal with id, or nil.
func (w *waitRegistry) take(id uint64) *proposal {
	w.mu.Lock()
	p := w.mu.m[id]
	if p != nil {
		delete(w.mu.m, id)
	}
	w.mu.Unlock()
	return p
}

func (w *waitRegistry) remove(id uint64) { w.take(id) }

// due returns, in proposal order, the proposals to hand to raft again: those
// last handed over in a term before term, and those waiting longer than
// timeout. Proposals raft refused (term 0) are retried separately.
func (w *waitRegistry) due(now time.Time, timeout time.Duration, term uint64) []*proposal {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*proposal
	for _, p := range w.mu.m {
		if p.term != 0 && (p.term < term || now.Sub(p.since) > timeout) {
			out = append(out, p)
		}
	}
	sortProposals(out)
	return out
}

// olderTerm returns, in proposal order, the proposals last handed to raft in
// a term before term.
func (w *waitRegistry) olderTerm(term uint64) []*proposal {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*proposal
	for _, p := range w.mu.m {
		if p.term != 0 && p.term < term {
			out = append(out, p)
		}
	}
	sortProposals(out)
	return out
}

// drain removes and returns every proposal.
func (w *waitRegistry) drain() []*proposal {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*proposal, 0, len(w.mu.m))
	for _, p := range w.mu.m {
		out = append(out, p)
	}
	w.mu.m = map[uint64]*proposal{}
	sortProposals(out)
	return out
}

func (w *waitRegistry) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.m)
}

func sortProposals(ps []*proposal) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
}

// appliedIndex is the state machine's applied index with a way to wait for
// it to reach a value.
type appliedIndex struct {
	v  atomic.Uint64
	mu struct {
		sync.Mutex
		ch chan struct{} // closed and replaced at every advance
	}
}

func (a *appliedIndex) init() { a.mu.ch = make(chan struct{}) }

func (a *appliedIndex) load() uint64 { return a.v.Load() }

func (a *appliedIndex) set(i uint64) {
	a.v.Store(i)
	a.mu.Lock()
	close(a.mu.ch)
	a.mu.ch = make(chan struct{})
	a.mu.Unlock()
}

// wait returns once the applied index is at least i, or ctx is done.
func (a *appliedIndex) wait(ctx context.Context, i uint64) error {
	for {
		if a.v.Load() >= i {
			return nil
		}
		a.mu.Lock()
		ch := a.mu.ch
		a.mu.Unlock()
		if a.v.Load() >= i {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
