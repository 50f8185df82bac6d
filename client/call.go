package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/coord-dev/coord/internal/wire"
)

// call is one request from the moment it has an xid until it is answered or
// failed. It stays in Client.mu.pending, and is resent with the same xid
// after every reconnect that resumes the session, until then.
type call struct {
	xid      int64
	op       string
	path     string
	mode     string        // add_watch: the watch mode
	tail     []byte        // the request's JSON after `{"xid":0`; see marshalTail
	write    bool          // applied through raft: exactly-once, outcome may be unknown
	internal bool          // made by the client (ping, close): never resent
	slot     chan struct{} // the pool it holds a token of (Client.slots or waitSlots), or nil

	// onReply, when set, runs in the goroutine that reads the answer, with
	// Client.mu held, before done is closed; abandoned says whether the
	// caller stopped waiting. It is where watches are registered, so that a
	// watch is in place before any later frame is read.
	onReply func(resp *wire.Response, abandoned bool)

	// sent is set by the writer goroutine before the request first goes
	// to a websocket.
	sent atomic.Bool

	// abandoned is guarded by Client.mu: the caller's context ended.
	abandoned bool

	// resp and err are set before done is closed.
	done chan struct{}
	resp wire.Response
	err  error
}

// xidPrefix is how Request.AppendJSON begins for xid 0.
var xidPrefix = []byte(`{"xid":0`)

// marshalTail encodes req with xid 0 and returns what follows the xid, so
// that the xid, which must be assigned in send order under Client.mu, is
// spliced in by the writer without encoding (or copying) under the lock.
func marshalTail(req *wire.Request) ([]byte, error) {
	req.Xid = 0
	b := req.AppendJSON(nil)
	if !bytes.HasPrefix(b, xidPrefix) {
		return nil, fmt.Errorf("request encoding does not start with the xid: %.40q", b)
	}
	return b[len(xidPrefix):], nil
}

// frameLimit is the largest request frame the client sends to a server
// accepting maxData bytes of data: the data base64-encoded plus 64 KiB for
// the other fields. PROTOCOL.md leaves the server's exact limit open.
func frameLimit(maxData int) int {
	return base64.StdEncoding.EncodedLen(maxData) + 64<<10
}

// isWrite reports whether op changes the tree, through raft.
func isWrite(op string) bool {
	switch op {
	case wire.OpCreate, wire.OpDelete, wire.OpSet, wire.OpSetACL, wire.OpMulti:
		return true
	}
	return false
}

// usableLocked returns why no request can be made now, or nil.
func (c *Client) usableLocked() error {
	switch {
	case c.mu.closed:
		return ErrClosed
	case c.mu.state == StateExpired:
		return ErrSessionExpired
	}
	return nil
}

// do sends req and waits for its answer. onReply (may be nil) runs as
// described on call. The returned response is non-nil whenever the server
// answered, even with an error code; every error is an *OpError.
func (c *Client) do(ctx context.Context, req *wire.Request, onReply func(*wire.Response, bool)) (*wire.Response, error) {
	opErr := func(err error) error { return &OpError{Op: req.Op, Path: req.Path, Err: err} }
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	tail, err := marshalTail(req)
	if err != nil {
		return nil, opErr(fmt.Errorf("%w: %v", ErrMarshallingError, err))
	}
	c.mu.Lock()
	limit := frameLimit(c.mu.maxData)
	c.mu.Unlock()
	if len(tail) > limit {
		// The server would close the websocket (1009), and the client
		// resend the request on every new connection.
		return nil, opErr(fmt.Errorf("%w: a %d-byte request, more than the %d bytes a frame may hold", ErrBadArguments, len(tail), limit))
	}
	// A read that waits on the server takes a slot of its own pool: it
	// holds it for as long as it waits, and enough of them in the common
	// pool would starve the very delete they wait for.
	slot := c.slots
	if req.WaitGone != "" {
		slot = c.waitSlots
	}
	cl := &call{
		op: req.Op, path: req.Path, mode: req.Mode, tail: tail, write: isWrite(req.Op),
		slot: slot, onReply: onReply, done: make(chan struct{}),
	}
	c.mu.Lock()
	err = c.usableLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, opErr(err)
	}
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, opErr(ctx.Err())
	case <-c.closing:
		return nil, opErr(ErrClosed)
	}
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		<-slot
		return nil, opErr(err)
	}
	c.submitLocked(cl)
	c.mu.Unlock()

	select {
	case <-cl.done:
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-cl.done:
		default:
			// The request stays in flight (it holds its xid and slot until
			// answered), but nobody waits for it any more.
			cl.abandoned = true
		}
		abandoned := cl.abandoned
		c.mu.Unlock()
		if abandoned {
			return nil, opErr(ctx.Err())
		}
	}
	if cl.err != nil {
		return nil, opErr(cl.err)
	}
	if err := codeError(cl.resp.Err, cl.resp.Msg); err != nil {
		return &cl.resp, opErr(err)
	}
	return &cl.resp, nil
}

// submitLocked gives cl the next xid, records it as pending and, when
// connected, queues it for the writer. Both happen under Client.mu, so
// requests go out in xid order.
func (c *Client) submitLocked(cl *call) {
	cl.xid = c.mu.nextXid
	c.mu.nextXid++
	c.mu.pending[cl.xid] = cl
	if c.mu.conn != nil {
		c.mu.conn.enqueue(cl)
	}
}

// completeLocked answers cl with resp (nil when failing) or err.
func (c *Client) completeLocked(cl *call, resp *wire.Response, err error) {
	if _, ok := c.mu.pending[cl.xid]; !ok {
		return
	}
	delete(c.mu.pending, cl.xid)
	if cl.slot != nil {
		<-cl.slot
	}
	if resp != nil {
		if cl.onReply != nil {
			cl.onReply(resp, cl.abandoned)
		}
		cl.resp = *resp
	}
	cl.err = err
	close(cl.done)
}

// flushLocked queues every pending request on the new connection cn, in xid
// order (their original order): those of a resumed session with their
// original xids, so the server answers each write with its one true
// outcome. Requests nobody waits for any more (their context ended) and the
// client's own pings are dropped instead: a cancelled write is not sent again
// on a new connection, where it would apply long after its caller gave up.
func (c *Client) flushLocked(cn *conn) {
	calls := make([]*call, 0, len(c.mu.pending))
	for _, cl := range c.mu.pending {
		calls = append(calls, cl)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].xid < calls[j].xid })
	resent := 0
	for _, cl := range calls {
		if cl.internal || cl.abandoned {
			c.completeLocked(cl, nil, ErrConnectionLoss)
			continue
		}
		if cl.sent.Load() {
			resent++
		}
		cn.enqueue(cl)
	}
	if resent > 0 {
		c.log.Debug("coord resending requests in flight", "count", resent, "server", cn.server)
	}
}
