package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
)

// errSessionGone marks a handshake whose session the server no longer has.
var errSessionGone = fmt.Errorf("resuming: %w", ErrSessionExpired)

// conn is one websocket carrying the session, with its reader and writer
// goroutines. The manager goroutine owns it: it starts both goroutines in
// serve and joins them before the next connection.
type conn struct {
	ws     *websocket.Conn
	server string
	// sendq holds requests for the writer, in xid order. Every request in
	// it holds a slot, so it never fills: enqueue never blocks while
	// Client.mu is held.
	sendq chan *call
	// readTimeout: the connection is dead after that long without a frame:
	// two thirds of the session timeout, as ZooKeeper's client, so that a
	// client cut off from its server (which then stops hearing from it)
	// still has a third of the timeout to resume the session on another
	// before the leader expires it.
	readTimeout time.Duration
	// lastRead is when the last frame (or pong) arrived, unix ns.
	lastRead atomic.Int64
	// pingInterval: the writer pings after that long without writing.
	pingInterval time.Duration

	dead    chan struct{} // closed by kill
	once    sync.Once
	err     error       // why it died; set before dead is closed
	expired atomic.Bool // the server pushed "session expired"
}

// kill closes the websocket, which ends the reader and the writer. The first
// error is the one reported.
func (cn *conn) kill(err error) {
	cn.once.Do(func() {
		cn.err = err
		close(cn.dead)
		cn.ws.Close()
	})
}

// enqueue hands cl to the writer. Called with Client.mu held.
func (cn *conn) enqueue(cl *call) {
	select {
	case cn.sendq <- cl:
	default:
		// Impossible while the slot accounting holds. The request stays
		// pending and goes out on the next connection.
		cn.kill(errors.New("client: send queue overflow"))
	}
}

// minResumeAttempt is the least time an attempt to resume a session on a
// server is given, however short the session timeout.
const minResumeAttempt = 500 * time.Millisecond

// resumeAttemptTimeout bounds the dial and the connect request of one
// attempt to resume a session of the given timeout on one of n servers. A client gives up on a silent connection
// after two thirds of the timeout, so a third is left before the leader,
// no longer told the session is alive, may expire it: the attempts share
// it, so that servers that do not answer at all (a dead host, a partition)
// cannot use it up before a live one is tried. ZooKeeper's client bounds
// an attempt by the session timeout over the number of servers.
func resumeAttemptTimeout(timeout time.Duration, n int) time.Duration {
	return max(timeout/time.Duration(3*max(n, 1)), minResumeAttempt)
}

// handshakeResult describes an established session on a new connection.
type handshakeResult struct {
	newSession bool
	serverID   uint64
	sessionID  SessionID
}

// handshake dials server and establishes (or resumes) the session on the new
// websocket, then replays the credentials and re-arms every watch with
// set_watches. It runs in the manager goroutine, reading and writing the
// websocket itself; watch events read meanwhile are dispatched as usual.
func (c *Client) handshake(life context.Context, server string) (*conn, *handshakeResult, error) {
	ctx, cancel := context.WithTimeout(life, c.opts.dialTimeout)
	defer cancel()
	// Resuming, the dial and the connect (which tells the server the
	// session is alive) must fit in the attempt's share of the time left;
	// what follows (auth replay, set_watches) has the whole dial timeout.
	c.mu.Lock()
	resuming := c.mu.sessionID != 0
	connectBy, _ := ctx.Deadline()
	if by := time.Now().Add(resumeAttemptTimeout(c.mu.timeout, len(c.servers))); resuming && by.Before(connectBy) {
		connectBy = by
	}
	c.mu.Unlock()
	dctx, dcancel := context.WithDeadline(ctx, connectBy)
	defer dcancel()
	ws, resp, err := c.dialer.DialContext(dctx, "ws://"+server+"/v1/ws", nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", server, err)
	}
	// Unblock the reads below when ctx ends.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	ok := false
	defer func() {
		if !ok {
			stop()
			ws.Close()
		}
	}()
	ws.SetReadDeadline(connectBy)
	ws.SetWriteDeadline(connectBy)

	c.mu.Lock()
	// since is the last zxid seen on the previous connections. The frames
	// of this handshake carry larger zxids (the server's), but the watches
	// are not armed on this connection until set_watches, so its events
	// may be missing: set_watches must ask for everything after since.
	since := c.mu.lastZxid
	connect := wire.Request{
		Op:        wire.OpConnect,
		TimeoutMs: c.opts.sessionTimeout.Milliseconds(),
		SessionID: c.mu.sessionID,
		Password:  c.mu.password,
		LastZxid:  since,
	}
	c.mu.Unlock()
	// seen is the largest zxid of this handshake's frames. It becomes the
	// client's last zxid only once every watch is re-armed: if this attempt
	// fails, the next must ask again for everything after since.
	seen := since
	r, err := c.roundTrip(ws, &connect, &seen)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case r.Err == wire.SessionExpired:
		return nil, nil, errSessionGone
	case r.Err == wire.AuthFailed && resuming:
		// Our password is the one the server gave: the session is not
		// ours to resume any more.
		return nil, nil, fmt.Errorf("%w: password refused: %w", errSessionGone, ErrAuthFailed)
	case r.Err != wire.OK:
		return nil, nil, fmt.Errorf("connect to %s: %w", server, codeError(r.Err, r.Msg))
	case r.SessionID == 0 || (!resuming && r.Password == ""):
		return nil, nil, fmt.Errorf("connect to %s: %w: no session in the answer", server, ErrMarshallingError)
	case resuming && r.SessionID != connect.SessionID:
		return nil, nil, fmt.Errorf("connect to %s: %w: resumed session %v as %v", server, ErrRuntimeInconsistency, connect.SessionID, r.SessionID)
	}
	// The server holds the session now (and counts every frame as a
	// heartbeat): the rest of the handshake has the whole dial timeout.
	if deadline, _ := ctx.Deadline(); deadline.After(connectBy) {
		ws.SetReadDeadline(deadline)
		ws.SetWriteDeadline(deadline)
	}

	c.mu.Lock()
	if !resuming {
		c.mu.sessionID, c.mu.password = r.SessionID, r.Password
	}
	timeout := c.opts.sessionTimeout
	if r.TimeoutMs > 0 {
		timeout = time.Duration(r.TimeoutMs) * time.Millisecond
	}
	c.mu.timeout = timeout
	if r.MaxDataBytes > 0 {
		c.mu.maxData = r.MaxDataBytes
	}
	auths := append([]authCred(nil), c.mu.auths...)
	sw := c.setWatchesLocked(since)
	c.mu.Unlock()

	for _, a := range auths {
		r, err := c.roundTrip(ws, &wire.Request{Op: wire.OpAuth, Scheme: a.scheme, Credential: a.credential}, &seen)
		if err != nil {
			return nil, nil, err
		}
		if r.Err != wire.OK {
			c.log.Error("coord auth refused", "scheme", a.scheme, "err", codeError(r.Err, r.Msg))
		}
	}
	for i := range sw {
		r, err := c.roundTrip(ws, &sw[i], &seen)
		if err != nil {
			return nil, nil, err
		}
		if r.Err != wire.OK {
			// Retrying elsewhere would meet the same answer.
			c.log.Error("coord set_watches refused; watches may miss events", "err", codeError(r.Err, r.Msg))
		}
	}

	if !stop() {
		return nil, nil, fmt.Errorf("connect to %s: %w", server, ctx.Err())
	}
	ok = true
	c.mu.Lock()
	c.mu.lastZxid = max(c.mu.lastZxid, seen)
	c.mu.Unlock()
	ws.SetReadDeadline(time.Time{})
	ws.SetWriteDeadline(time.Time{})
	cn := &conn{
		ws:           ws,
		server:       server,
		sendq:        make(chan *call, c.opts.maxInFlight+maxWaitingReads),
		readTimeout:  timeout * 2 / 3,
		pingInterval: timeout / 3,
		dead:         make(chan struct{}),
	}
	return cn, &handshakeResult{newSession: !resuming, serverID: r.ServerID, sessionID: r.SessionID}, nil
}

// roundTrip sends req with a fresh xid on ws and reads until its answer,
// dispatching the watch events it reads meanwhile and raising *seen to the
// largest zxid read. For the handshake only.
func (c *Client) roundTrip(ws *websocket.Conn, req *wire.Request, seen *int64) (*wire.Response, error) {
	c.mu.Lock()
	req.Xid = c.mu.nextXid
	c.mu.nextXid++
	c.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", req.Op, ErrMarshallingError, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("%s: %w", req.Op, err)
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.Op, err)
		}
		r, err := wire.DecodeResponse(msg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.Op, err)
		}
		*seen = max(*seen, r.Zxid)
		c.mu.Lock()
		expired := c.frameLocked(nil, &r)
		c.mu.Unlock()
		if expired {
			return nil, errSessionGone
		}
		if r.Xid == req.Xid {
			return &r, nil
		}
	}
}

// serve runs an established connection until it dies: it makes it the
// client's connection, queues every pending request on it, starts its
// reader and writer, and joins them.
func (c *Client) serve(life context.Context, cn *conn, hs *handshakeResult) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		cn.kill(ErrClosed)
		return
	}
	c.mu.conn = cn
	c.flushLocked(cn)
	c.log.Info("coord connected", "server", cn.server, "server_id", hs.serverID, "session", hs.sessionID, "new_session", hs.newSession)
	c.emitLocked(StateEvent{State: StateConnected, Server: cn.server, ServerID: hs.serverID, SessionID: hs.sessionID, NewSession: hs.newSession})
	c.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.readLoop(cn)
	}()
	go func() {
		defer wg.Done()
		c.writeLoop(cn)
	}()
	select {
	case <-cn.dead:
	case <-life.Done():
		cn.kill(ErrClosed)
	}
	wg.Wait()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.conn = nil
	switch {
	case cn.expired.Load():
		c.expireLocked(errors.New("the server ended the session"))
	case c.mu.closed:
	default:
		c.log.Info("coord disconnected", "server", cn.server, "err", cn.err)
		c.emitLocked(StateEvent{State: StateDisconnected, Server: cn.server, SessionID: c.mu.sessionID, Err: cn.err})
	}
}

// readLoop is the connection's reader goroutine: it reads every frame,
// answers pending requests and dispatches watch events, until the
// connection dies.
func (c *Client) readLoop(cn *conn) {
	cn.ws.SetPongHandler(func(string) error {
		cn.lastRead.Store(time.Now().UnixNano())
		return cn.ws.SetReadDeadline(time.Now().Add(cn.readTimeout))
	})
	for {
		if err := cn.ws.SetReadDeadline(time.Now().Add(cn.readTimeout)); err != nil {
			cn.kill(err)
			return
		}
		_, msg, err := cn.ws.ReadMessage()
		cn.lastRead.Store(time.Now().UnixNano())
		if err != nil {
			cn.kill(err)
			return
		}
		r, err := wire.DecodeResponse(msg)
		if err != nil {
			cn.kill(err)
			return
		}
		c.mu.Lock()
		c.frameLocked(cn, &r)
		c.mu.Unlock()
	}
}

// frameLocked handles one frame read from the server; cn is nil during the
// handshake, whose zxids are accounted for by handshake itself. It reports
// whether the frame says the session expired.
func (c *Client) frameLocked(cn *conn, r *wire.Response) (expired bool) {
	if cn != nil && r.Zxid > c.mu.lastZxid {
		c.mu.lastZxid = r.Zxid
	}
	switch {
	case r.Xid == wire.XidWatch:
		c.dispatchLocked(Event{Type: r.Event, Path: r.Path, Zxid: r.Zxid})
	case r.Xid == wire.XidSession:
		if r.State == "expired" {
			if cn != nil {
				cn.expired.Store(true)
				cn.kill(errSessionGone)
			}
			return true
		}
		c.log.Debug("coord unknown session state", "state", r.State)
	case r.Xid > 0:
		if cn == nil {
			return false // the handshake's own answer
		}
		cl := c.mu.pending[r.Xid]
		if cl == nil {
			c.log.Warn("coord answer to no pending request", "xid", r.Xid, "err", r.Err)
			return false
		}
		c.completeLocked(cl, r, nil)
	default:
		c.log.Warn("coord error about an unreadable frame", "xid", r.Xid, "err", r.Err, "msg", r.Msg)
	}
	return false
}

// writeLoop is the connection's writer goroutine: it writes queued requests
// in order, and pings after pingInterval without a write.
func (c *Client) writeLoop(cn *conn) {
	idle := time.NewTimer(cn.pingInterval)
	defer idle.Stop()
	var prefix []byte
	for {
		select {
		case cl := <-cn.sendq:
			cl.sent.Store(true)
			prefix = append(append(prefix[:0], `{"xid":`...), strconv.FormatInt(cl.xid, 10)...)
			if err := cn.write(prefix, cl.tail); err != nil {
				cn.kill(err)
				return
			}
		case <-idle.C:
			if err := c.ping(cn); err != nil {
				cn.kill(err)
				return
			}
		case <-cn.dead:
			return
		}
		idle.Reset(cn.pingInterval)
	}
}

// write sends one text frame made of prefix and tail.
func (cn *conn) write(prefix, tail []byte) error {
	if err := cn.ws.SetWriteDeadline(time.Now().Add(cn.readTimeout)); err != nil {
		return err
	}
	w, err := cn.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write(prefix); err != nil {
		return err
	}
	if _, err := w.Write(tail); err != nil {
		return err
	}
	return w.Close()
}

// ping keeps the session alive on a connection the client has not written
// to for pingInterval, with websocket control frames, which the server
// handles without decoding JSON: a ping, whose pong tells the client the
// server is still there, or an unsolicited pong (a heartbeat the server does
// not answer, RFC 6455 §5.5.3) when a frame from the server arrived within
// the last quarter of readTimeout. Then the next heartbeat comes at most
// pingInterval later, and a ping then is answered long before readTimeout:
// the silence stays under half the session timeout. An idle session thus
// costs the server, per third of the timeout, one read and one write (as a
// ZooKeeper session does); one that receives events often, one read. Runs in
// the writer goroutine.
func (c *Client) ping(cn *conn) error {
	deadline := time.Now().Add(cn.readTimeout)
	if time.Since(time.Unix(0, cn.lastRead.Load())) < cn.readTimeout/4 {
		return cn.ws.WriteControl(websocket.PongMessage, nil, deadline)
	}
	return cn.ws.WriteControl(websocket.PingMessage, nil, deadline)
}
