package testcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
)

// RawConn is a websocket to a server driven frame by frame: tests see exactly
// what the server sends, with no client library in between.
type RawConn struct {
	t    testing.TB
	WS   *websocket.Conn
	Addr string
	xid  int64
	// Session, Password and Timeout are set by Connect.
	Session  wire.SessionID
	Password string
	Events   []wire.Response // pushed frames received while waiting for answers
}

// Dial opens a websocket to addr's /v1/ws without sending anything.
func Dial(t testing.TB, addr string) *RawConn {
	t.Helper()
	c, err := DialErr(t, addr, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return c
}

// DialErr is Dial with extra headers, returning the error (and the HTTP
// response status in it) instead of failing.
func DialErr(t testing.TB, addr string, hdr http.Header) (*RawConn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/v1/ws", hdr)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c := &RawConn{t: t, WS: ws, Addr: addr}
	t.Cleanup(func() { ws.Close() })
	return c, nil
}

// Connect dials and opens a new session.
func Connect(t testing.TB, addr string) *RawConn {
	t.Helper()
	c := Dial(t, addr)
	c.Connect(10000)
	return c
}

// Connect sends connect (new session) and checks it succeeded.
func (c *RawConn) Connect(timeoutMs int64) wire.Response {
	c.t.Helper()
	r := c.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: timeoutMs})
	if r.Err != wire.OK {
		c.t.Fatalf("connect: %s %s", r.Err, r.Msg)
	}
	c.Session, c.Password = r.SessionID, r.Password
	return r
}

// NextXid returns the next xid this connection will use.
func (c *RawConn) NextXid() int64 { c.xid++; return c.xid }

// Send writes one request (assigning an xid when it has none) and returns
// its xid.
func (c *RawConn) Send(req wire.Request) int64 {
	c.t.Helper()
	if req.Xid == 0 {
		req.Xid = c.NextXid()
	} else if req.Xid > c.xid {
		c.xid = req.Xid
	}
	b, err := req.MarshalJSON()
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.SendRaw(b)
	return req.Xid
}

// SendRaw writes a text frame as is.
func (c *RawConn) SendRaw(b []byte) {
	c.t.Helper()
	_ = c.WS.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WS.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// SendJSON marshals v (any shape, e.g. a map) and sends it.
func (c *RawConn) SendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.SendRaw(b)
}

// Read returns the next frame of any kind.
func (c *RawConn) Read() (wire.Response, error) {
	_ = c.WS.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.WS.ReadMessage()
	if err != nil {
		return wire.Response{}, err
	}
	r, err := wire.DecodeResponse(b)
	if err != nil {
		return r, fmt.Errorf("decode %q: %w", b, err)
	}
	return r, nil
}

// ReadRaw returns the next frame's bytes.
func (c *RawConn) ReadRaw() ([]byte, error) {
	_ = c.WS.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.WS.ReadMessage()
	return b, err
}

// Recv returns the answer to xid, keeping pushed frames in Events; it fails
// on an answer to another xid (answers come in order).
func (c *RawConn) Recv(xid int64) wire.Response {
	c.t.Helper()
	for {
		r, err := c.Read()
		if err != nil {
			c.t.Fatalf("waiting for xid %d: %v", xid, err)
		}
		if r.Xid < 0 {
			c.Events = append(c.Events, r)
			continue
		}
		if r.Xid != xid {
			c.t.Fatalf("got the answer to xid %d while waiting for %d: %+v", r.Xid, xid, r)
		}
		return r
	}
}

// Call sends a request and returns its answer.
func (c *RawConn) Call(req wire.Request) wire.Response {
	c.t.Helper()
	return c.Recv(c.Send(req))
}

// MustCall is Call failing the test unless the answer is OK.
func (c *RawConn) MustCall(req wire.Request) wire.Response {
	c.t.Helper()
	r := c.Call(req)
	if r.Err != wire.OK {
		c.t.Fatalf("%s %s: %s %s", req.Op, req.Path, r.Err, r.Msg)
	}
	return r
}

// NextEvent returns the next pushed frame: one already received, or the
// next read (failing on an answer).
func (c *RawConn) NextEvent() wire.Response {
	c.t.Helper()
	if len(c.Events) > 0 {
		e := c.Events[0]
		c.Events = c.Events[1:]
		return e
	}
	r, err := c.Read()
	if err != nil {
		c.t.Fatalf("waiting for an event: %v", err)
	}
	if r.Xid >= 0 {
		c.t.Fatalf("wanted an event, got an answer: %+v", r)
	}
	return r
}

// Close closes the websocket without a close request (a lost connection).
func (c *RawConn) Close() { c.WS.Close() }
