package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

// Reads that wait for a node's deletion (the request's wait_gone, an
// extension: docs/protocol.md §13.1). A lock waiter sends one instead of
// watching its predecessor and reading the queue again when woken, which
// saves the round trip between the wake-up and the read that decides.
//
// Such a read is served as any read first. When the node it waits for
// exists in that view, the read is parked here instead of answered; the
// next apply that deletes the node answers it from the state after its
// batch (as does a snapshot restore whose state lacks the node), and a
// timer answers it with the state then if the deletion does not come
// within its wait. Either answer is pushed, out of request order.
//
// Registering inside the view and taking the read out in publish (which
// runs under the store's write lock) make the two atomic: a deletion
// applied after the view finds the read parked.
//
// An answer after the deletion needs no read index, even when the read was
// not local: the view that parked it was linearizable, so the node was
// deleted after the read arrived, and any state after that deletion was
// the cluster's current one at some moment before the answer.

const (
	waitGoneDefault = 30 * time.Second // wait_ms absent or 0
	waitGoneMax     = 5 * time.Minute
)

// waitsForGone reports whether r is a read that honours wait_gone.
func waitsForGone(r *wire.Request) bool {
	if r.WaitGone == "" {
		return false
	}
	switch r.Op {
	case wire.OpExists, wire.OpGet, wire.OpChildren, wire.OpGetACL:
		return true
	}
	return false
}

// parkedRead is a read waiting for the deletion of its request's
// WaitGone path.
type parkedRead struct {
	c     *conn
	r     *request
	timer *time.Timer
	// Guarded by parking.mu:
	taken bool // out of the registry: answered, expired or dropped
	ci    int  // index in c.parkedReads
	pi    int  // index in parking.mu.byPath[WaitGone]
}

// parking holds the parked reads by the path they wait for, and by
// connection (conn.parkedReads, guarded by mu).
type parking struct {
	n  atomic.Int64 // parked reads, so that publish skips the lock when none are
	mu struct {
		sync.Mutex
		byPath map[string][]*parkedRead
	}
}

// park registers pr and starts its timer, which calls expire after wait.
// It reports false, registering nothing, when the connection has
// maxParkedPerConn reads waiting or is gone (teardown drops a connection's
// reads under the same lock).
func (p *parking) park(pr *parkedRead, wait time.Duration, expire func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.c.gone() || len(pr.c.parkedReads) >= maxParkedPerConn {
		return false
	}
	// The timer's function takes p.mu first, so it finds pr registered.
	pr.timer = time.AfterFunc(wait, expire)
	if p.mu.byPath == nil {
		p.mu.byPath = map[string][]*parkedRead{}
	}
	path := pr.r.req.WaitGone
	pr.pi = len(p.mu.byPath[path])
	p.mu.byPath[path] = append(p.mu.byPath[path], pr)
	c := pr.c
	pr.ci = len(c.parkedReads)
	c.parkedReads = append(c.parkedReads, pr)
	p.n.Add(1)
	return true
}

// takeLocked marks pr taken, stops its timer and removes it from its
// connection's list (not from byPath); it reports false when pr was taken
// already.
func (p *parking) takeLocked(pr *parkedRead) bool {
	if pr.taken {
		return false
	}
	pr.taken = true
	pr.timer.Stop()
	c := pr.c
	last := len(c.parkedReads) - 1
	moved := c.parkedReads[last]
	c.parkedReads[pr.ci] = moved
	moved.ci = pr.ci
	c.parkedReads[last] = nil
	c.parkedReads = c.parkedReads[:last]
	p.n.Add(-1)
	return true
}

// unlinkLocked removes pr from the list of the path it waits for, in
// constant time: many readers may wait for one node (an RWMutex's for its
// writer), and their timers run out together.
func (p *parking) unlinkLocked(pr *parkedRead) {
	path := pr.r.req.WaitGone
	list := p.mu.byPath[path]
	last := len(list) - 1
	if pr.pi > last || list[pr.pi] != pr {
		return
	}
	moved := list[last]
	list[pr.pi] = moved
	moved.pi = pr.pi
	list[last] = nil
	if last == 0 {
		delete(p.mu.byPath, path)
	} else {
		p.mu.byPath[path] = list[:last]
	}
}

// deleted takes out the reads waiting for path, appending them to out.
func (p *parking) deleted(path string, out []*parkedRead) []*parkedRead {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.mu.byPath[path] {
		if p.takeLocked(pr) {
			out = append(out, pr)
		}
	}
	delete(p.mu.byPath, path)
	return out
}

// take takes out one read; it reports false when it was taken already.
func (p *parking) take(pr *parkedRead) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.takeLocked(pr) {
		return false
	}
	p.unlinkLocked(pr)
	return true
}

// all returns every parked read.
func (p *parking) all() []*parkedRead {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*parkedRead
	for _, list := range p.mu.byPath {
		out = append(out, list...)
	}
	return out
}

// dropConn forgets the reads of a connection that is gone.
func (p *parking) dropConn(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(c.parkedReads) > 0 {
		pr := c.parkedReads[len(c.parkedReads)-1]
		p.takeLocked(pr)
		p.unlinkLocked(pr)
	}
}

// maxParkedPerConn bounds the reads one connection may have waiting.
// Beyond it a read with wait_gone is answered at once, without gone, as
// by a server that predates waiting reads (the Go client's recipes then
// watch instead).
const maxParkedPerConn = 1024

// readOrPark serves r, a read with wait_gone, in view v: at once when its
// node is gone or the read fails anyway, else by parking it. It runs
// inside v.
func (c *conn) readOrPark(v znode.View, r *request, zxid int64) {
	s := c.s
	if err := s.checkPath(r.req.WaitGone); err != nil {
		c.complete(r, errResponse(zxid, fmt.Errorf("%w (wait_gone)", err)))
		return
	}
	if _, err := v.Get(r.req.WaitGone); errors.Is(err, wire.ErrNoNode) {
		resp := c.read(v, &r.req, zxid)
		resp.Gone = succeeded(&r.req, &resp)
		c.complete(r, resp)
		return
	}
	// A read that fails fails now, not after the wait. The trial sets no
	// watch, which a read that fails would not have set either, so its
	// answer is the read's; one that succeeds sets it when answered.
	trial := r.req
	trial.Watch = false
	if resp := c.read(v, &trial, zxid); !succeeded(&r.req, &resp) {
		c.complete(r, resp)
		return
	}
	wait := waitGoneDefault
	if ms := r.req.WaitMs; ms > 0 {
		wait = time.Duration(min(ms, waitGoneMax.Milliseconds())) * time.Millisecond
	}
	pr := &parkedRead{c: c, r: r}
	if !s.parking.park(pr, wait, func() { s.waitedTooLong(pr) }) {
		// Too many waiting already, or the connection is gone.
		c.complete(r, c.read(v, &r.req, zxid))
		return
	}
	// Later responses must not wait behind this one, and it does not count
	// against max-in-flight while it waits.
	c.inflight.Add(-1)
	c.out.skip(r.slot)
	s.metrics.parkedReads.Inc()
}

// succeeded reports whether resp answers req without an error: for exists,
// NoNode is an answer too.
func succeeded(req *wire.Request, resp *wire.Response) bool {
	return resp.Err == wire.OK || (req.Op == wire.OpExists && resp.Err == wire.NoNode)
}

// goneResponse sets resp's gone: the read succeeded and no node is at
// req's WaitGone in v.
func goneResponse(v znode.View, resp wire.Response, req *wire.Request) wire.Response {
	if succeeded(req, &resp) {
		_, err := v.Get(req.WaitGone)
		resp.Gone = errors.Is(err, wire.ErrNoNode)
	}
	return resp
}

// answerGone answers reads whose node an apply just deleted, from a state
// after the deletion. It runs after the publish that pushed the events of
// the deletion's batch, so every event the answer reflects precedes it.
func (s *Server) answerGone(due []*parkedRead) {
	s.state.View(func(v znode.View) { s.answerIn(v, due) })
}

// answerIn answers parked reads in view v.
func (s *Server) answerIn(v znode.View, due []*parkedRead) {
	zxid := int64(v.AppliedIndex())
	for _, pr := range due {
		if pr.c.gone() {
			continue
		}
		pr.c.answerParked(pr.r, goneResponse(v, pr.c.read(v, &pr.r.req, zxid), &pr.r.req))
	}
}

// answerRestored answers the parked reads whose node a snapshot restore
// removed: its deletion was inside the snapshot, which publishes no
// change. It runs on the apply goroutine, right after the restore.
func (s *Server) answerRestored() {
	all := s.parking.all()
	if len(all) == 0 {
		return
	}
	s.state.View(func(v znode.View) {
		var due []*parkedRead
		for _, pr := range all {
			if _, err := v.Get(pr.r.req.WaitGone); errors.Is(err, wire.ErrNoNode) && s.parking.take(pr) {
				due = append(due, pr)
			}
		}
		s.answerIn(v, due)
	})
}

// waitedTooLong answers a parked read whose wait ran out, as a new read
// would be answered (with a read index unless it is local).
func (s *Server) waitedTooLong(pr *parkedRead) {
	if !s.parking.take(pr) {
		return
	}
	c, r := pr.c, pr.r
	if c.gone() {
		return
	}
	if !r.req.Local {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		err := s.linearize(ctx)
		cancel()
		if err != nil {
			c.answerParked(r, errResponse(int64(s.applied.load()), err))
			return
		}
	}
	s.state.View(func(v znode.View) {
		c.answerParked(r, goneResponse(v, c.read(v, &r.req, int64(v.AppliedIndex())), &r.req))
	})
}

// answerParked answers a parked read, out of request order.
func (c *conn) answerParked(r *request, resp wire.Response) {
	resp.Xid = r.req.Xid
	c.s.metrics.observe(r.req.Op, resp.Err, time.Time{})
	c.push(resp)
}
