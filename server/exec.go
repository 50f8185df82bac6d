package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

// opClass says how the executor orders an op.
type opClass uint8

const (
	classImmediate opClass = iota // ping, auth, unknown ops: answered at once
	classWrite                    // proposed through raft
	classRead                     // run against applied state, after earlier writes
	classClose
)

func classOf(op string) opClass {
	switch op {
	case wire.OpCreate, wire.OpDelete, wire.OpSet, wire.OpSetACL, wire.OpMulti:
		return classWrite
	case wire.OpExists, wire.OpGet, wire.OpChildren, wire.OpGetACL, wire.OpSync,
		wire.OpAddWatch, wire.OpRemoveWatches, wire.OpSetWatches:
		return classRead
	case wire.OpClose:
		return classClose
	}
	return classImmediate
}

// runExecutor runs the connection's requests in arrival order. Writes are
// proposed without waiting (many in flight); a run of consecutive reads
// waits for the earlier writes, then shares one linearizable read index.
func (c *conn) runExecutor() {
	batch := make([]*request, 0, 256)
	for {
		select {
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		case <-c.done:
			// The reader proposes writes too (inline): once it is gone,
			// no write can be added while this waits.
			<-c.readerDone
			c.writes.Wait()
			return
		}
		for more := true; more && len(batch) < cap(batch); {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				more = false
			}
		}
		if !c.process(batch) {
			<-c.readerDone
			c.writes.Wait()
			return
		}
		clear(batch)
	}
}

// process runs one batch in order; it returns false after a close.
func (c *conn) process(batch []*request) bool {
	defer c.queued.Add(-int64(len(batch)))
	for i := 0; i < len(batch); {
		r := batch[i]
		switch classOf(r.req.Op) {
		case classWrite:
			c.proposeWrite(r)
			i++
		case classRead:
			j := i + 1
			for j < len(batch) && classOf(batch[j].req.Op) == classRead {
				j++
			}
			c.writes.Wait()
			c.runReads(batch[i:j])
			i = j
		case classClose:
			c.writes.Wait()
			c.closeSession(r)
			return false
		default:
			c.complete(r, c.immediate(&r.req))
			i++
		}
	}
	return true
}

// inline runs r on the reader goroutine, saving a hand-off, when that keeps
// the connection's order: nothing is queued before it, and it does not have
// to wait (a write is only proposed; a read runs now only if no write of
// the connection is pending and it needs no read-index round). It reports
// whether it ran r.
func (c *conn) inline(r *request) bool {
	switch classOf(r.req.Op) {
	case classWrite:
		c.proposeWrite(r)
		return true
	case classRead:
		if c.pendingWrites.Load() != 0 || r.req.Op == wire.OpSync {
			return false
		}
		if !r.req.Local && !(c.s.soleVoter.Load() && c.s.role.Load() == "leader") {
			return false
		}
		c.runReads([]*request{r})
		return true
	case classImmediate:
		c.complete(r, c.immediate(&r.req))
		return true
	}
	return false
}

// immediate answers ops that touch neither raft nor the tree.
func (c *conn) immediate(req *wire.Request) wire.Response {
	zxid := int64(c.s.applied.load())
	switch req.Op {
	case wire.OpPing:
		return wire.Response{Zxid: zxid}
	case wire.OpAuth:
		return c.auth(req, zxid)
	case wire.OpConnect:
		return wire.Response{Zxid: zxid, Err: wire.BadArguments, Msg: "already connected"}
	case wire.OpCheck:
		return wire.Response{Zxid: zxid, Err: wire.BadArguments, Msg: "check is only valid inside multi"}
	}
	return wire.Response{Zxid: zxid, Err: wire.Unimplemented, Msg: fmt.Sprintf("unknown op %q", req.Op)}
}

func (c *conn) auth(req *wire.Request, zxid int64) wire.Response {
	switch req.Scheme {
	case "digest":
		user, pw, ok := cutCredential(req.Credential)
		if !ok {
			return wire.Response{Zxid: zxid, Err: wire.AuthFailed, Msg: "digest credential must be user:password"}
		}
		c.addIdent(znode.Ident{Scheme: "digest", ID: znode.DigestID(user, pw)})
		return wire.Response{Zxid: zxid}
	case "ip":
		return wire.Response{Zxid: zxid, Err: wire.AuthFailed, Msg: "the ip identity is the connection's own address; it cannot be claimed"}
	}
	return wire.Response{Zxid: zxid, Err: wire.AuthFailed, Msg: fmt.Sprintf("unsupported auth scheme %q (supported: digest)", req.Scheme)}
}

func cutCredential(cred string) (user, pw string, ok bool) {
	for i := 0; i < len(cred); i++ {
		if cred[i] == ':' {
			if i == 0 {
				return "", "", false
			}
			return cred[:i], cred[i+1:], true
		}
	}
	return "", "", false
}

// proposeWrite validates a write, proposes it and returns at once; the
// answer comes from the apply goroutine.
func (c *conn) proposeWrite(r *request) {
	s := c.s
	if s.disk.isFull() {
		// A resent write that was applied gets its first result even now;
		// anything else must wait for space.
		if res, ok, _ := s.state.CachedResult(c.session(), r.req.Xid); ok {
			o := &znode.Outcome{Result: res, Duplicate: true}
			c.complete(r, writeResponse(&r.req, o, nil, int64(s.applied.load())))
			return
		}
	}
	op, err := s.buildOp(&r.req, c.session())
	if err != nil {
		resp := errResponse(int64(s.applied.load()), err)
		if me := (*multiOpError)(nil); errors.As(err, &me) {
			resp.Results = me.results(r.req.Ops)
		}
		c.complete(r, resp)
		return
	}
	e := znode.Entry{
		ID:      s.newProposalID(),
		TimeMs:  time.Now().UnixMilli(),
		Session: c.session(),
		Xid:     r.req.Xid,
		Idents:  c.identities(),
		Op:      op,
	}
	c.writes.Add(1)
	c.pendingWrites.Add(1)
	s.propose(&proposal{id: e.ID, data: e.Marshal(), since: time.Now(), abandoned: c.gone, done: func(o *znode.Outcome, err error) {
		defer c.writes.Done()
		defer c.pendingWrites.Add(-1)
		c.complete(r, writeResponse(&r.req, o, err, int64(s.applied.load())))
	}})
}

// propose hands p to the raft goroutine; while the disk is almost full it
// refuses it at once instead.
func (s *Server) propose(p *proposal) {
	if s.disk.isFull() {
		p.done(nil, s.disk.err())
		return
	}
	select {
	case s.propc <- p:
	case <-s.stopc:
		p.done(nil, errStopped)
	}
}

// proposeWait proposes an entry and waits for its outcome.
func (s *Server) proposeWait(ctx context.Context, e *znode.Entry) (*znode.Outcome, error) {
	e.ID = s.newProposalID()
	if e.TimeMs == 0 {
		e.TimeMs = time.Now().UnixMilli()
	}
	type result struct {
		o   *znode.Outcome
		err error
	}
	ch := make(chan result, 1)
	s.propose(&proposal{id: e.ID, data: e.Marshal(), since: time.Now(),
		abandoned: func() bool { return ctx.Err() != nil },
		done:      func(o *znode.Outcome, err error) { ch <- result{o, err} }})
	select {
	case r := <-ch:
		return r.o, r.err
	case <-ctx.Done():
		s.waiters.remove(e.ID)
		return nil, fmt.Errorf("%w: %v", wire.ErrOperationTimeout, ctx.Err())
	}
}

// runReads answers a run of reads in order: one read index for all of them
// (unless all are local), then every read under one view of the state.
func (c *conn) runReads(reads []*request) {
	s := c.s
	needIndex := false
	for _, r := range reads {
		if !r.req.Local || r.req.Op == wire.OpSync {
			needIndex = true
			break
		}
	}
	if needIndex {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		err := s.linearize(ctx)
		cancel()
		if err != nil {
			zxid := int64(s.applied.load())
			for _, r := range reads {
				c.complete(r, errResponse(zxid, err))
			}
			return
		}
	}
	s.state.View(func(v znode.View) {
		zxid := int64(v.AppliedIndex())
		for _, r := range reads {
			if waitsForGone(&r.req) {
				c.readOrPark(v, r, zxid)
				continue
			}
			c.complete(r, c.read(v, &r.req, zxid))
		}
	})
}

// linearize waits until this server has applied everything committed
// before the call: raft's ReadIndex (one quorum round shared by every read
// queued meanwhile), then the applied index.
func (s *Server) linearize(ctx context.Context) error {
	if s.disk.isFull() && !s.soleVoter.Load() {
		return fmt.Errorf("%w: this server's disk is full, so it cannot catch up with the cluster; "+
			"read with local=true or from another server", wire.ErrQuotaExceeded)
	}
	if s.soleVoter.Load() && s.role.Load() == "leader" {
		// The only voter is the quorum: its commit index is the read index,
		// no round of messages is needed to confirm leadership.
		if err := s.applied.wait(ctx, s.commit.Load()); err != nil {
			return fmt.Errorf("%w: not caught up in time", wire.ErrConnectionLoss)
		}
		return nil
	}
	ch := make(chan error, 1)
	var idx uint64
	rq := &readRequest{done: func(index uint64, err error) {
		idx = index
		ch <- err
	}}
	select {
	case s.readc <- rq:
	case <-s.stopc:
		return errStopped
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", wire.ErrOperationTimeout, ctx.Err())
	}
	select {
	case err := <-ch:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("%w: no read index within the deadline (no leader?)", wire.ErrConnectionLoss)
	}
	if err := s.applied.wait(ctx, idx); err != nil {
		return fmt.Errorf("%w: not caught up with the leader in time", wire.ErrConnectionLoss)
	}
	return nil
}

// errResponse turns an error into a response.
func errResponse(zxid int64, err error) wire.Response {
	return wire.Response{Zxid: zxid, Err: wire.CodeOf(err), Msg: err.Error()}
}

// writeResponse builds the answer of a write from its outcome.
func writeResponse(req *wire.Request, o *znode.Outcome, err error, zxid int64) wire.Response {
	if err != nil {
		return errResponse(zxid, err)
	}
	resp := wire.Response{Zxid: zxid, Err: o.Result.Err}
	if o.Result.Err != wire.OK {
		resp.Msg = errMessage(req, o.Result.Err)
		if o.Result.Err == wire.RuntimeInconsistency && req.Op != wire.OpMulti {
			resp.Msg = "not applied: a later write of this session was applied first (this one was delayed by a leader change), " +
				"or it is older than the results the server keeps; send it again with a new xid if it still applies"
		}
	}
	switch req.Op {
	case wire.OpCreate:
		resp.Path = o.Result.Path
		resp.Stat = o.Result.Stat
	case wire.OpSet, wire.OpSetACL:
		resp.Stat = o.Result.Stat
	case wire.OpMulti:
		resp.Results = make([]wire.Result, len(o.Result.Multi))
		for i, m := range o.Result.Multi {
			resp.Results[i] = wire.Result{Op: opName(m.Kind), Err: m.Err, Path: m.Path, Stat: m.Stat}
			if i < len(req.Ops) {
				resp.Results[i].Op = req.Ops[i].Op
			}
		}
	}
	return resp
}

func opName(k znode.OpKind) string {
	switch k {
	case znode.OpCreate:
		return wire.OpCreate
	case znode.OpDelete:
		return wire.OpDelete
	case znode.OpSet:
		return wire.OpSet
	case znode.OpCheck:
		return wire.OpCheck
	case znode.OpSetACL:
		return wire.OpSetACL
	}
	return ""
}

// errMessage gives a human hint for an error code.
func errMessage(req *wire.Request, code wire.Code) string {
	return (&wire.OpError{Op: req.Op, Path: req.Path, Err: code.Err()}).Error()
}
