package chaos

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// The BAD checker: a live protocol fuzzer. Many connections send random
// and mutated frames, binary frames, oversized frames, stalled handshakes
// and wrong passwords for other sessions, while well-behaved sessions go
// on. Afterwards: no server died or logged a panic, every server's
// goroutines are back to what they were before, and no well-behaved
// session saw an error or a disconnection. A few frames with an answer
// fixed by PROTOCOL.md (bad JSON, a missing op, an unknown op, an op
// before connect, an oversized frame) check that answer too.

// BadResult is the BAD checker's verdict.
type BadResult struct {
	Conns, Frames, Stalls int64
	Panics, Died, Leaked  int
	Affected, Contract    int
	WellBehavedOps        int64
	Baseline, After       []int // go_goroutines per server
	Examples              []string
}

// Anomalies counts the violations.
func (r BadResult) Anomalies() int { return r.Panics + r.Died + r.Leaked + r.Affected + r.Contract }

// badStats counts what the fuzzer did and saw.
type badStats struct {
	conns, frames, stalls atomic.Int64
	mu                    struct {
		sync.Mutex
		contract []string
	}
}

func (s *badStats) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.contract = append(s.mu.contract, fmt.Sprintf(format, args...))
}

// fuzzer attacks the servers at addrs.
type fuzzer struct {
	addrs    []string
	stats    *badStats
	sessions []client.SessionID // well-behaved sessions, for hijack attempts
	maxFrame int
	stall    time.Duration
}

var badSeeds = func() [][]byte {
	b64 := base64.StdEncoding.EncodeToString([]byte("fuzz"))
	seeds := []string{
		`{"xid":2,"op":"ping"}`,
		`{"xid":3,"op":"get","path":"/chaos/fuzz/a","watch":true}`,
		`{"xid":4,"op":"create","path":"/chaos/fuzz/a","data":"` + b64 + `","mode":"ephemeral"}`,
		`{"xid":5,"op":"create","path":"/chaos/fuzz/s-","mode":"ephemeral_sequential","acl":[{"perms":"cdrwa","scheme":"world","id":"anyone"}]}`,
		`{"xid":6,"op":"set","path":"/chaos/fuzz/a","data":"` + b64 + `","version":-1}`,
		`{"xid":7,"op":"children","path":"/chaos","watch":true,"limit":2,"after":"a"}`,
		`{"xid":8,"op":"multi","ops":[{"op":"create","path":"/chaos/fuzz/m","mode":"ephemeral"},{"op":"check","path":"/chaos/fuzz/m","version":0},{"op":"delete","path":"/chaos/fuzz/m","version":-1}]}`,
		`{"xid":9,"op":"set_watches","last_zxid":1,"data":["/chaos/fuzz/a"],"exist":["/x"],"children":["/"],"persistent":["/chaos/fuzz"],"persistent_recursive":["/chaos/fuzz"]}`,
		`{"xid":10,"op":"add_watch","path":"/chaos/fuzz","mode":"persistent_recursive"}`,
		`{"xid":11,"op":"remove_watches","path":"/chaos/fuzz","type":"any"}`,
		`{"xid":12,"op":"exists","path":"/chaos/fuzz/zz","watch":true,"local":true}`,
		`{"xid":13,"op":"auth","scheme":"digest","credential":"user:pw"}`,
		`{"xid":14,"op":"sync","path":"/"}`,
		`{"xid":15,"op":"get_acl","path":"/chaos/fuzz"}`,
		`{"xid":16,"op":"delete","path":"/chaos/fuzz/a","version":3}`,
		`{"xid":17,"op":"create","path":"/chaos/fuzz/t","mode":"persistent_ttl","ttl_ms":100}`,
	}
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}()

// weird are values spliced into frames.
var weird = []string{
	`null`, `true`, `-1`, `0`, `1e309`, `9223372036854775808`, `-9223372036854775809`, `"\u0000"`, `"\ud800"`,
	`[]`, `{}`, `""`, `"/"`, `"//"`, `"/.."`, `"` + strings.Repeat("a", 2000) + `"`, `"\xff\xfe"`, `1.5`, `"-1"`,
	`[` + strings.Repeat(`"/x",`, 500) + `"/x"]`, strings.Repeat("[", 200) + strings.Repeat("]", 200),
}

// mutate returns a damaged copy of a seed.
func mutate(rng *rand.Rand, seed []byte) []byte {
	b := append([]byte(nil), seed...)
	for n := 1 + rng.IntN(3); n > 0; n-- {
		if len(b) == 0 {
			b = append(b, '{')
		}
		switch rng.IntN(7) {
		case 0: // flip a byte
			b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
		case 1: // truncate
			b = b[:rng.IntN(len(b))]
		case 2: // insert random bytes
			i := rng.IntN(len(b) + 1)
			ins := make([]byte, 1+rng.IntN(8))
			for j := range ins {
				ins[j] = byte(rng.IntN(256))
			}
			b = append(b[:i], append(ins, b[i:]...)...)
		case 3: // replace a value with a weird one
			var colons []int
			for i, c := range b {
				if c == ':' {
					colons = append(colons, i)
				}
			}
			if len(colons) == 0 {
				continue
			}
			i := colons[rng.IntN(len(colons))]
			j := i + 1
			for j < len(b) && b[j] != ',' && b[j] != '}' {
				j++
			}
			b = append(b[:i+1], append([]byte(weird[rng.IntN(len(weird))]), b[j:]...)...)
		case 4: // duplicate a field
			if i := bytes.IndexByte(b, ','); i > 0 {
				b = append(b[:len(b)-1], append([]byte(","), b[1:i]...)...)
				b = append(b, '}')
			}
		case 5: // swap the op
			ops := []string{"connect", "close", "set_watches", "multi", "frob", "", "CONNECT", "ping"}
			b = bytes.Replace(b, []byte(`"op":"`), []byte(`"op":"`+ops[rng.IntN(len(ops))]+`","x":"`), 1)
		case 6: // random bytes
			b = make([]byte, rng.IntN(200))
			for j := range b {
				b[j] = byte(rng.IntN(256))
			}
		}
	}
	return b
}

func (f *fuzzer) dial(ctx context.Context, addr string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.DialContext(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		return nil, err
	}
	f.stats.conns.Add(1)
	ws.SetReadLimit(64 << 20)
	return ws, nil
}

func (f *fuzzer) send(ws *websocket.Conn, typ int, b []byte) error {
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	f.stats.frames.Add(1)
	return ws.WriteMessage(typ, b)
}

// read returns the next frame, decoded.
func read(ws *websocket.Conn, timeout time.Duration) (wire.Response, error) {
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return wire.Response{}, err
	}
	return wire.DecodeResponse(b)
}

// answer reads until the answer to xid (skipping pushed frames).
func answer(ws *websocket.Conn, xid int64) (wire.Response, error) {
	for {
		r, err := read(ws, 10*time.Second)
		if err != nil {
			return r, err
		}
		if r.Xid == xid {
			return r, nil
		}
	}
}

func connectFrame(xid int64) []byte {
	return []byte(fmt.Sprintf(`{"xid":%d,"op":"connect","timeout_ms":2000}`, xid))
}

// attack runs one random attack against a random server.
func (f *fuzzer) attack(ctx context.Context, rng *rand.Rand) {
	addr := f.addrs[rng.IntN(len(f.addrs))]
	switch x := rng.IntN(100); {
	case x < 45:
		f.mutated(ctx, rng, addr)
	case x < 55:
		f.beforeConnect(ctx, rng, addr)
	case x < 70:
		f.contract(ctx, rng, addr)
	case x < 78:
		f.oversized(ctx, addr)
	case x < 88:
		f.stalled(ctx, rng, addr)
	default:
		f.hijack(ctx, rng, addr)
	}
}

// connect opens a session on ws (xid 1); false when it could not, which
// is not a violation (the fuzzer's other connections may be to blame).
func (f *fuzzer) connect(ws *websocket.Conn) bool {
	if f.send(ws, websocket.TextMessage, connectFrame(1)) != nil {
		return false
	}
	r, err := answer(ws, 1)
	return err == nil && r.Err == wire.OK
}

// mutated connects and sends damaged frames, each followed by a ping that
// must still be answered unless the connection was closed.
func (f *fuzzer) mutated(ctx context.Context, rng *rand.Rand, addr string) {
	ws, err := f.dial(ctx, addr)
	if err != nil {
		return
	}
	defer ws.Close()
	if !f.connect(ws) {
		return
	}
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		typ := websocket.TextMessage
		if rng.IntN(10) == 0 {
			typ = websocket.BinaryMessage
		}
		if f.send(ws, typ, mutate(rng, badSeeds[rng.IntN(len(badSeeds))])) != nil {
			return
		}
		xid := int64(1_000_000 + i)
		if f.send(ws, websocket.TextMessage, []byte(fmt.Sprintf(`{"xid":%d,"op":"ping"}`, xid))) != nil {
			return
		}
		if _, err := answer(ws, xid); err != nil {
			return // closed (a mutated close, connect or an oversized frame may do that)
		}
	}
}

// beforeConnect sends garbage as the first frame.
func (f *fuzzer) beforeConnect(ctx context.Context, rng *rand.Rand, addr string) {
	ws, err := f.dial(ctx, addr)
	if err != nil {
		return
	}
	defer ws.Close()
	if f.send(ws, websocket.TextMessage, mutate(rng, badSeeds[rng.IntN(len(badSeeds))])) != nil {
		return
	}
	_, _ = read(ws, 5*time.Second)
}

// contract sends frames whose answers PROTOCOL.md fixes.
func (f *fuzzer) contract(ctx context.Context, rng *rand.Rand, addr string) {
	ws, err := f.dial(ctx, addr)
	if err != nil {
		return
	}
	defer ws.Close()
	if rng.IntN(4) == 0 {
		// Any op before connect: BadArguments, then the websocket closes.
		if f.send(ws, websocket.TextMessage, []byte(`{"xid":5,"op":"get","path":"/"}`)) != nil {
			return
		}
		r, err := read(ws, 10*time.Second)
		if err != nil || r.Xid != 5 || r.Err != wire.BadArguments {
			f.stats.violation("%s: get before connect answered %+v, %v; want BadArguments", addr, r, err)
			return
		}
		if _, err := read(ws, 10*time.Second); err == nil {
			f.stats.violation("%s: the websocket stayed open after a get before connect", addr)
		}
		return
	}
	if !f.connect(ws) {
		return
	}
	// xid -1 accepts either 0 or the frame's xid: PROTOCOL.md answers "with
	// the frame's xid when it can be read, else 0".
	cases := []struct {
		frame string
		xid   int64
		code  wire.Code
	}{
		{`{"xid":2,"op":"get","path":`, -1, wire.MarshallingError},
		{"\xff\xfe garbage", 0, wire.MarshallingError},
		{`{"xid":3}`, 3, wire.MarshallingError},
		{`{"xid":4,"op":"frobnicate"}`, 4, wire.Unimplemented},
		{`{"xid":5,"op":"get","path":"/a/../b"}`, 5, wire.BadArguments},
		{`{"xid":6,"op":"create","path":"/chaos/fuzz/x","data":"!!notbase64"}`, 6, wire.BadArguments},
	}
	c := cases[rng.IntN(len(cases))]
	if f.send(ws, websocket.TextMessage, []byte(c.frame)) != nil {
		return
	}
	r, err := read(ws, 10*time.Second)
	xidOK := r.Xid == c.xid || c.xid == -1 && (r.Xid == 0 || r.Xid == 2)
	if err != nil || !xidOK || r.Err != c.code {
		f.stats.violation("%s: %q answered %+v, %v; want xid %d %s", addr, c.frame, r, err, c.xid, c.code)
		return
	}
	// The connection stays usable.
	if f.send(ws, websocket.TextMessage, []byte(`{"xid":99,"op":"ping"}`)) != nil {
		return
	}
	if r, err := answer(ws, 99); err != nil || r.Err != wire.OK {
		f.stats.violation("%s: after %q a ping answered %+v, %v", addr, c.frame, r, err)
	}
}

// oversized sends a frame larger than the server accepts: it must close
// the websocket with 1009.
func (f *fuzzer) oversized(ctx context.Context, addr string) {
	ws, err := f.dial(ctx, addr)
	if err != nil {
		return
	}
	defer ws.Close()
	if !f.connect(ws) {
		return
	}
	big := make([]byte, f.maxFrame+1)
	copy(big, `{"xid":2,"op":"ping","x":"`)
	for i := 26; i < len(big)-2; i++ {
		big[i] = 'a'
	}
	copy(big[len(big)-2:], `"}`)
	if err := f.send(ws, websocket.TextMessage, big); err != nil {
		return // the server may cut us off mid-frame
	}
	for {
		_, err := read(ws, 10*time.Second)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
			f.stats.violation("%s: an oversized frame closed the websocket with %d, want 1009", addr, ce.Code)
		}
		return
	}
}

// stalled opens a connection and stops: mid-handshake, or upgraded but
// silent. The server must close it by itself.
func (f *fuzzer) stalled(ctx context.Context, rng *rand.Rand, addr string) {
	f.stats.stalls.Add(1)
	var conn net.Conn
	if rng.IntN(2) == 0 {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return
		}
		conn = c
		f.stats.conns.Add(1)
		req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n"
		_, _ = conn.Write([]byte(req[:rng.IntN(len(req))]))
	} else {
		ws, err := f.dial(ctx, addr)
		if err != nil {
			return
		}
		conn = ws.UnderlyingConn()
	}
	defer conn.Close()
	// Wait for the server to hang up; it must within its timeouts.
	_ = conn.SetReadDeadline(time.Now().Add(f.stall))
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				f.stats.violation("%s: a stalled connection was still open after %v", addr, f.stall)
			}
			return
		}
	}
}

// hijack tries to resume a well-behaved session with a wrong password:
// AuthFailed, and the session must not notice.
func (f *fuzzer) hijack(ctx context.Context, rng *rand.Rand, addr string) {
	if len(f.sessions) == 0 {
		return
	}
	ws, err := f.dial(ctx, addr)
	if err != nil {
		return
	}
	defer ws.Close()
	sid := f.sessions[rng.IntN(len(f.sessions))]
	pw := make([]byte, 16)
	for i := range pw {
		pw[i] = byte(rng.IntN(256))
	}
	req := map[string]any{"xid": 1, "op": "connect", "timeout_ms": 2000, "session_id": sid.String(),
		"password": base64.StdEncoding.EncodeToString(pw), "last_zxid": rng.IntN(10)}
	b, _ := json.Marshal(req)
	if f.send(ws, websocket.TextMessage, b) != nil {
		return
	}
	r, err := read(ws, 10*time.Second)
	if err != nil {
		return
	}
	if r.Err != wire.AuthFailed {
		f.stats.violation("%s: resuming session %s with a wrong password answered %q, want AuthFailed", addr, sid, r.Err)
	}
}

// wellBehaved runs ordinary operations on its own node until ctx ends,
// counting every error and every disconnection.
type wellBehaved struct {
	ops, errs, disconnects atomic.Int64
	mu                     struct {
		sync.Mutex
		first []string
	}
}

func (w *wellBehaved) fail(format string, args ...any) {
	w.errs.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.mu.first) < 5 {
		w.mu.first = append(w.mu.first, fmt.Sprintf(format, args...))
	}
}

func (w *wellBehaved) run(ctx context.Context, id int, c *client.Client) {
	var wg sync.WaitGroup
	defer wg.Wait()
	states := c.StateEvents(ctx)
	wg.Go(func() {
		for ev := range states {
			if ev.State == client.StateDisconnected || ev.State == client.StateExpired {
				w.disconnects.Add(1)
				w.fail("well-behaved session %d: %s (%v)", id, ev.State, ev.Err)
			}
		}
	})
	p := fmt.Sprintf("/chaos/ok-%d", id)
	for i := 0; ctx.Err() == nil; i++ {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if i%2 == 0 {
			_, err = c.Set(octx, p, []byte(fmt.Sprint(i)), client.AnyVersion)
		} else {
			var b []byte
			b, _, err = c.Get(octx, p)
			if err == nil && string(b) != fmt.Sprint(i-1) {
				w.fail("well-behaved session %d: read %q after writing %d", id, b, i-1)
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			w.fail("well-behaved session %d: %v", id, err)
		}
		w.ops.Add(1)
	}
}
