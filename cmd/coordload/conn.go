package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
)

// bufConn lets one writer goroutine coalesce several websocket frames into a
// single write(2): between hold and flush, writes are buffered; otherwise they
// pass straight through (e.g. a pong written by gorilla's reader).
type bufConn struct {
	net.Conn
	mu struct {
		sync.Mutex
		held bool
		buf  []byte
	}
}

func (c *bufConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.held {
		c.mu.buf = append(c.mu.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *bufConn) hold() {
	c.mu.Lock()
	c.mu.held = true
	c.mu.Unlock()
}

func (c *bufConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.held = false
	if len(c.mu.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.mu.buf)
	c.mu.buf = c.mu.buf[:0]
	return err
}

// session is one websocket carrying one coord session. Who may write and
// read it depends on the phase: during setup one goroutine does both; during
// a run each workload gives it one writer and one reader goroutine.
type session struct {
	ws      *websocket.Conn
	bc      *bufConn
	addr    string
	id      wire.SessionID
	timeout time.Duration
	xid     int64 // last xid used; owned by the current writer
	rbuf    []byte

	closeXid atomic.Int64 // xid of the close request, once sent
	closing  atomic.Bool  // read errors from now on are expected
}

// dialOptions tune the websocket buffers (small for thousands of idle
// sessions, larger for pipelined load).
type dialOptions struct {
	readBuf, writeBuf int
	timeoutMs         int64
}

// dial opens a websocket to addr and a new session on it.
func dial(ctx context.Context, addr string, o dialOptions) (*session, error) {
	s := &session{addr: addr}
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   o.readBuf,
		WriteBufferSize:  o.writeBuf,
		NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, a)
			if err != nil {
				return nil, err
			}
			s.bc = &bufConn{Conn: c}
			return s.bc, nil
		},
	}
	ws, resp, err := d.DialContext(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", addr, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	s.ws = ws
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	} else {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	rs, err := s.call([]wire.Request{{Op: wire.OpConnect, TimeoutMs: o.timeoutMs}})
	if err == nil && rs[0].Err != wire.OK {
		err = fmt.Errorf("connect: %s %s", rs[0].Err, rs[0].Msg)
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	s.id, s.timeout = rs[0].SessionID, time.Duration(rs[0].TimeoutMs)*time.Millisecond
	return s, nil
}

// writeFrame sends one text frame.
func (s *session) writeFrame(b []byte) error {
	return s.ws.WriteMessage(websocket.TextMessage, b)
}

// readFrame returns the next data frame; the bytes are valid until the next
// call.
func (s *session) readFrame() ([]byte, error) {
	_, r, err := s.ws.NextReader()
	if err != nil {
		return nil, err
	}
	s.rbuf, err = readAll(r, s.rbuf[:0])
	return s.rbuf, err
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	if cap(b) == 0 {
		b = make([]byte, 0, 1024)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// call sends reqs pipelined and returns their answers in order, skipping
// pushed frames. Only for phases where nothing else reads or writes s.
func (s *session) call(reqs []wire.Request) ([]wire.Response, error) {
	out := make([]wire.Response, 0, len(reqs))
	const window = 256
	for start := 0; start < len(reqs); start += window {
		end := min(start+window, len(reqs))
		first := s.xid + 1
		for i := start; i < end; i++ {
			s.xid++
			reqs[i].Xid = s.xid
			b, err := reqs[i].MarshalJSON()
			if err != nil {
				return out, err
			}
			if err := s.writeFrame(b); err != nil {
				return out, err
			}
		}
		for want := first; want <= s.xid; {
			b, err := s.readFrame()
			if err != nil {
				return out, err
			}
			r, err := wire.DecodeResponse(b)
			if err != nil {
				return out, err
			}
			if r.Xid < 0 {
				if r.Type == "session" {
					return out, fmt.Errorf("session %s: %s", s.id, r.State)
				}
				continue
			}
			if r.Xid != want {
				return out, fmt.Errorf("answer to xid %d while waiting for %d", r.Xid, want)
			}
			out = append(out, r)
			want++
		}
	}
	return out, nil
}

// sendClose sends the close request; the session's reader sees its answer
// (xid closeXid) as the last one.
func (s *session) sendClose() error {
	s.xid++
	s.closeXid.Store(s.xid)
	s.closing.Store(true)
	b := strconv.AppendInt([]byte(`{"xid":`), s.xid, 10)
	b = append(b, `,"op":"close"}`...)
	_ = s.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return s.writeFrame(b)
}

// closeSync closes the session when no reader goroutine runs: sends close,
// waits up to wait for its answer, then closes the socket.
func (s *session) closeSync(wait time.Duration) error {
	defer s.ws.Close()
	if err := s.sendClose(); err != nil {
		return err
	}
	_ = s.ws.SetReadDeadline(time.Now().Add(wait))
	for {
		b, err := s.readFrame()
		if err != nil {
			return err
		}
		h, ok := parseHead(b, nil)
		if ok && h.xid == s.closeXid.Load() {
			if h.code != wire.OK {
				return fmt.Errorf("close: %s", h.code)
			}
			return nil
		}
	}
}

// errClosedByPeer reports whether err is the websocket ending, as opposed to
// a protocol problem.
func errClosedByPeer(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// head is what the load loops need from an answer.
type head struct {
	xid  int64
	code wire.Code
}

// parseHead reads xid and err from a frame laid out as the server writes it
// (wire.Response.AppendJSON: xid, zxid, err first) without a full JSON
// decode. ok is false when the frame has another shape; the caller then
// falls back to wire.DecodeResponse. Pushed frames (xid < 0) return ok with
// only the xid. codes interns known codes (nil: allocate).
func parseHead(b []byte, codes map[string]wire.Code) (h head, ok bool) {
	rest, found := bytes.CutPrefix(b, []byte(`{"xid":`))
	if !found {
		return h, false
	}
	var n int
	h.xid, n, ok = parseInt(rest)
	if !ok {
		return h, false
	}
	if h.xid < 0 {
		return h, true
	}
	rest, found = bytes.CutPrefix(rest[n:], []byte(`,"zxid":`))
	if !found {
		return h, false
	}
	if _, n, ok = parseInt(rest); !ok {
		return h, false
	}
	rest, found = bytes.CutPrefix(rest[n:], []byte(`,"err":"`))
	if !found {
		return h, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || end+1 >= len(rest) || (rest[end+1] != ',' && rest[end+1] != '}') ||
		bytes.IndexByte(rest[:end], '\\') >= 0 {
		return h, false
	}
	if end == 0 {
		return h, true
	}
	if c, known := codes[string(rest[:end])]; known {
		h.code = c
	} else {
		h.code = wire.Code(rest[:end])
	}
	return h, true
}

func parseInt(b []byte) (v int64, n int, ok bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, n = true, 1
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n-start < 18 {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	if n == start {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, n, true
}

// stringField returns the value of the first `"key":"…"` in b when it needs
// no unescaping.
func stringField(b []byte, key string) (string, bool) {
	pat := make([]byte, 0, len(key)+5)
	pat = append(append(append(pat, '"'), key...), `":"`...)
	i := bytes.Index(b, pat)
	if i < 0 {
		return "", false
	}
	rest := b[i+len(pat):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
}

// codeTable maps each known code's text to its value, so parsing an answer
// does not allocate.
func codeTable() map[string]wire.Code {
	m := map[string]wire.Code{}
	for _, c := range wire.Codes() {
		m[string(c)] = c
	}
	return m
}
