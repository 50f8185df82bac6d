package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/watch"
	"github.com/coord-dev/coord/znode"
)

// conn is one client websocket. It has three goroutines: the reader (reads
// and decodes frames, handles connect, hands requests to the executor in
// order), the executor (runs requests in order: proposes writes, batches
// reads behind one read index) and the writer (the only one writing data
// frames). Responses are released in request order by outbound.
type conn struct {
	s   *Server
	ws  *websocket.Conn
	wid watch.WatcherID
	ip  string
	log *slog.Logger

	mu struct {
		sync.Mutex
		idents []znode.Ident
	}
	sess        atomic.Uint64 // the session, once connected
	timeout     atomic.Int64  // negotiated session timeout, ns
	lastBeat    atomic.Int64  // unix ns of the last heartbeat that was recorded
	deadlineSet atomic.Int64  // unix ns of the heartbeat that last set the read deadline

	reqs     chan *request
	out      outbound
	inflight atomic.Int64
	writes   sync.WaitGroup // writes proposed and not yet answered
	closing  atomic.Bool    // a close request was read: read no more
	done     chan struct{}  // closed when the connection is torn down
	doneOnce sync.Once

	queued        atomic.Int64  // requests handed to the executor and not yet run
	parkedReads   []*parkedRead // reads waiting for a deletion; guarded by Server.parking.mu
	pendingWrites atomic.Int64  // writes proposed and not yet answered

	restores   uint64        // snapshot restores done before the connection was accepted
	peerClosed atomic.Bool   // the client sent a close frame
	readerDone chan struct{} // closed when the reader returns
	writerDone chan struct{} // closed when the writer returns
}

type request struct {
	req   wire.Request
	slot  *slot
	start time.Time
}

func (c *conn) session() wire.SessionID { return wire.SessionID(c.sess.Load()) }

// gone reports whether the connection was torn down.
func (c *conn) gone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *conn) identities() []znode.Ident {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.idents
}

func (c *conn) addIdent(id znode.Ident) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.mu.idents, id) {
		// Copy on write: identities() hands the slice out without the lock.
		c.mu.idents = append(slices.Clone(c.mu.idents), id)
	}
}

// push queues a pushed frame; a full queue closes the connection.
func (c *conn) push(r wire.Response) {
	if c.out.push(r) {
		c.s.metrics.slowConsumers.Inc()
		c.log.Warn("closing a slow consumer: its outbound queue is full", "max_bytes", c.out.max)
	}
}

// complete answers a request, releasing its slot.
func (c *conn) complete(r *request, resp wire.Response) {
	resp.Xid = r.req.Xid
	c.inflight.Add(-1)
	c.s.metrics.observe(r.req.Op, resp.Err, r.start)
	if c.out.complete(r.slot, resp) {
		c.s.metrics.slowConsumers.Inc()
		c.log.Warn("closing a slow consumer: its outbound queue is full", "max_bytes", c.out.max)
	}
}

// teardown ends the connection: closes the socket so the reader and writer
// return, and removes the connection's watches.
func (c *conn) teardown() {
	c.doneOnce.Do(func() {
		close(c.done)
		_ = c.ws.Close()
		c.s.watches.RemoveWatcher(c.wid)
		c.s.parking.dropConn(c)
		if id := c.session(); id != 0 {
			c.s.sessions.detach(id, c)
		}
		c.s.conns.remove(c)
	})
}

// handleWS upgrades /v1/ws and runs the connection.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.removed.Load() {
		http.Error(w, "this member was removed from the cluster; connect to another", http.StatusGone)
		return
	}
	ip := remoteIP(r)
	if !s.conns.admit(ip, s.cfg.MaxConnsPerIP) {
		s.metrics.refusedConns.Inc()
		http.Error(w, "too many connections from "+ip, http.StatusTooManyRequests)
		return
	}
	up := websocket.Upgrader{
		HandshakeTimeout: s.cfg.HandshakeTimeout,
		ReadBufferSize:   4 << 10,
		WriteBufferPool:  s.wsBuffers, // gorilla writes only the handshake: frames go through frameWriter
		CheckOrigin:      s.checkOrigin,
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.conns.release(ip)
		return // Upgrade has answered the client (e.g. 403 for a foreign origin)
	}
	c := &conn{
		s:          s,
		ws:         ws,
		ip:         ip,
		restores:   s.restores.Load(),
		reqs:       make(chan *request, s.cfg.MaxInFlight+8),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.out.init(s.cfg.MaxOutboundBytes)
	c.mu.idents = []znode.Ident{{Scheme: "ip", ID: ip}}
	c.wid = s.conns.add(c)
	c.log = s.log.With("conn", uint64(c.wid), "remote", r.RemoteAddr)
	s.metrics.connections.Inc()
	s.conns.wg.Add(3)
	go func() { defer s.conns.wg.Done(); c.runWriter() }()
	go func() { defer s.conns.wg.Done(); c.runExecutor() }()
	go func() {
		defer s.conns.wg.Done()
		defer s.metrics.connections.Dec()
		defer s.conns.release(ip)
		c.runReader()
	}()
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// checkOrigin accepts programs (no Origin), the server's own origin, and the
// configured allowed origins.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// runReader reads frames until the socket fails or closes.
func (c *conn) runReader() {
	defer close(c.readerDone)
	defer c.teardown()
	s := c.s
	_ = c.ws.SetReadDeadline(time.Now().Add(s.cfg.FirstFrameTimeout))
	// gorilla must never write: the writer goroutine owns the socket's
	// output, so pings and closes are answered through it.
	c.ws.SetPingHandler(func(data string) error {
		c.heartbeat()
		c.out.pong([]byte(data))
		return nil
	})
	c.ws.SetPongHandler(func(string) error {
		c.heartbeat() // an unsolicited pong is a heartbeat too (RFC 6455 §5.5.3)
		return nil
	})
	c.ws.SetCloseHandler(func(code int, text string) error {
		c.peerClosed.Store(true)
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.out.closeAfter(code, "")
		return nil
	})
	var buf bytes.Buffer
	for {
		mt, rd, err := c.ws.NextReader()
		if err == nil {
			buf.Reset()
			var n int64
			n, err = buf.ReadFrom(io.LimitReader(rd, int64(s.cfg.MaxFrameBytes)+1))
			if err == nil && n > int64(s.cfg.MaxFrameBytes) {
				// Too large: close with 1009, then drain what the client is
				// still sending for a moment so that it can read the close
				// frame instead of a reset.
				c.s.metrics.observe("unknown", wire.BadArguments, time.Time{})
				c.closing.Store(true)
				c.out.closeAfter(websocket.CloseMessageTooBig, "frame too large")
				_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now().Add(2 * time.Second))
				_, _ = io.Copy(io.Discard, c.ws.UnderlyingConn())
				return
			}
		}
		if err != nil {
			if c.peerClosed.Load() {
				// Let the writer echo the close before the socket goes.
				select {
				case <-c.writerDone:
				case <-time.After(time.Second):
				}
			} else if !errors.Is(err, net.ErrClosed) && !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				c.log.Debug("websocket read ended", "err", err)
			}
			return
		}
		frame := buf.Bytes()
		if c.closing.Load() || c.out.overflowed() {
			continue // frames after close (or a cut-off) are not answered
		}
		c.heartbeat()
		if mt != websocket.TextMessage && mt != websocket.BinaryMessage {
			continue
		}
		req, derr := wire.DecodeRequest(frame)
		connected := c.session() != 0
		if derr != nil {
			c.answerNow(req.Xid, wire.CodeOf(derr), derr.Error())
			if !connected && wire.CodeOf(derr) != wire.MarshallingError {
				c.out.closeAfter(websocket.ClosePolicyViolation, "first frame must be connect")
			}
			continue
		}
		if !connected {
			if req.Op != wire.OpConnect {
				c.answerNow(req.Xid, wire.BadArguments, "the first request must be connect")
				c.out.closeAfter(websocket.ClosePolicyViolation, "first frame must be connect")
				continue
			}
			if !c.connect(&req) {
				c.closing.Store(true)
			}
			continue
		}
		if req.Xid <= 0 {
			c.answerNow(req.Xid, wire.BadArguments, "xid must be a positive integer")
			continue
		}
		if n := c.inflight.Add(1); n > int64(s.cfg.MaxInFlight) {
			c.inflight.Add(-1)
			c.answerNow(req.Xid, wire.Throttled, "too many requests in flight on this connection")
			continue
		}
		if req.Op == wire.OpClose {
			c.closing.Store(true)
		}
		r := &request{req: req, slot: c.out.reserve(), start: time.Now()}
		if c.queued.Load() == 0 && c.inline(r) {
			continue
		}
		c.queued.Add(1)
		select {
		case c.reqs <- r:
		case <-c.done:
			return
		}
	}
}

// answerNow answers a request that never reached the executor, in order.
func (c *conn) answerNow(xid int64, code wire.Code, msg string) {
	sl := c.out.reserve()
	c.s.metrics.observe("unknown", code, time.Time{})
	c.out.complete(sl, wire.Response{Xid: xid, Zxid: int64(c.s.applied.load()), Err: code, Msg: msg})
}

// heartbeat records that the session is alive and extends the read deadline.
// The deadline only catches dead sockets: a silent client's session expires
// first (after its timeout, on the leader) and the client is told so.
//
// A busy connection sends many frames per timeout; only the first frame in
// each eighth of the timeout does the work, so heartbeats cost little
// however busy or idle the sessions are. The read deadline (a runtime timer
// to move) is set at most once per half timeout, so it lies between 1.375
// (half a timeout, plus the eighth by which a recorded beat may precede the
// last frame) and 2 timeouts, plus a second, after the last frame.
func (c *conn) heartbeat() {
	id := c.session()
	if id == 0 {
		return
	}
	t := time.Duration(c.timeout.Load())
	now := time.Now()
	ns := now.UnixNano()
	if last := c.lastBeat.Load(); last != 0 && ns-last < int64(t/8) {
		return
	}
	c.lastBeat.Store(ns)
	if last := c.deadlineSet.Load(); last == 0 || ns-last >= int64(t/2) {
		c.deadlineSet.Store(ns)
		_ = c.ws.SetReadDeadline(now.Add(2*t + time.Second))
	}
	c.s.touch(id)
}

// writeTimeout bounds one frame's write: a backstop for dead peers (the
// outbound cap is what stops a live client that does not read).
const writeTimeout = 30 * time.Second

// runWriter writes queued frames until the connection ends: everything
// taken from the queue at once goes out in one write.
func (c *conn) runWriter() {
	defer close(c.writerDone)
	defer c.teardown()
	fw := newFrameWriter(c.ws.UnderlyingConn())
	var (
		frames []wire.Response
		pongs  [][]byte
		buf    []byte
	)
	for {
		select {
		case <-c.out.signal:
		case <-c.done:
			return
		}
		var (
			code    int
			text    string
			closeIt bool
		)
		pongs, frames, code, text, closeIt = c.out.take(frames)
		fw.arm(writeTimeout)
		for _, p := range pongs {
			if err := fw.frame(opPong, p); err != nil {
				return
			}
		}
		for i := range frames {
			buf = frames[i].AppendJSON(buf[:0])
			if err := fw.frame(opText, buf); err != nil {
				c.log.Debug("websocket write failed", "err", err)
				return
			}
			// Do not let a huge batch pile up in memory unwritten.
			if fw.w.Buffered() > 1<<20 {
				if err := fw.flush(writeTimeout); err != nil {
					return
				}
			}
		}
		clear(frames)
		if closeIt {
			_ = fw.frame(opClose, closeFrame(code, text))
		}
		if err := fw.flush(writeTimeout); err != nil {
			c.log.Debug("websocket write failed", "err", err)
			return
		}
		if closeIt {
			if !c.peerClosed.Load() {
				// Give the client a moment to answer the close before the
				// socket goes, so it reads the code rather than a reset.
				select {
				case <-c.readerDone:
				case <-time.After(time.Second):
				}
			}
			return
		}
	}
}

// connRegistry tracks live connections: by watcher id (for watch delivery)
// and per client IP (for the connection limit).
type connRegistry struct {
	wg sync.WaitGroup
	mu struct {
		sync.Mutex
		next  watch.WatcherID
		byID  map[watch.WatcherID]*conn
		perIP map[string]int
	}
}

func (r *connRegistry) init() {
	r.mu.byID = map[watch.WatcherID]*conn{}
	r.mu.perIP = map[string]int{}
}

func (r *connRegistry) admit(ip string, max int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.perIP[ip] >= max {
		return false
	}
	r.mu.perIP[ip]++
	return true
}

func (r *connRegistry) release(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.perIP[ip] <= 1 {
		delete(r.mu.perIP, ip)
	} else {
		r.mu.perIP[ip]--
	}
}

func (r *connRegistry) add(c *conn) watch.WatcherID {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.next++
	r.mu.byID[r.mu.next] = c
	return r.mu.next
}

func (r *connRegistry) remove(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.byID[c.wid] == c {
		delete(r.mu.byID, c.wid)
	}
}

func (r *connRegistry) get(id watch.WatcherID) *conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.byID[id]
}

func (r *connRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mu.byID)
}

// closeAll tears down every connection with a close code.
func (r *connRegistry) closeAll(code int, text string) {
	r.closeIf(func(*conn) bool { return true }, code, text)
}

// closeIf tears down, with a close code, every connection for which
// doomed reports true, and returns how many.
func (r *connRegistry) closeIf(doomed func(*conn) bool, code int, text string) int {
	r.mu.Lock()
	all := make([]*conn, 0, len(r.mu.byID))
	for _, c := range r.mu.byID {
		if doomed(c) {
			all = append(all, c)
		}
	}
	r.mu.Unlock()
	for _, c := range all {
		c.out.closeAfter(code, text)
	}
	// The writers send the close frames; sockets that cannot take them
	// are torn down after a moment.
	deadline := time.After(time.Second)
	for _, c := range all {
		select {
		case <-c.writerDone:
		case <-deadline:
		}
		c.teardown()
	}
	return len(all)
}

// wait waits for every connection goroutine to return.
func (r *connRegistry) wait() { r.wg.Wait() }

var _ = context.Background
