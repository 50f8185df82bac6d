package server_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// rootCversion is a cheap witness that nothing was created or deleted at
// the top level.
func rootCversion(t *testing.T, c *testcluster.RawConn) int32 {
	t.Helper()
	return c.MustCall(req(wire.OpExists, "/")).Stat.Cversion
}

func TestPipelining1000InOrder(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/p", "", wire.ModePersistent))
	// 1,000 requests in flight at once, reads and writes mixed.
	var xids []int64
	for i := 0; i < 1000; i++ {
		var r wire.Request
		switch i % 3 {
		case 0:
			r = create(fmt.Sprintf("/p/n%04d", i), "v", wire.ModePersistent)
		case 1:
			r = req(wire.OpGet, fmt.Sprintf("/p/n%04d", i-1))
		default:
			r = wire.Request{Op: wire.OpSet, Path: fmt.Sprintf("/p/n%04d", i-2), Data: []byte("w"), Version: 0}
		}
		xids = append(xids, c.Send(r))
	}
	for i, xid := range xids {
		r := c.Recv(xid) // fails the test if answers come out of order
		if r.Err != wire.OK {
			t.Fatalf("request %d: %s %s", i, r.Err, r.Msg)
		}
		// A read sees the write sent just before it on the same session.
		if i%3 == 1 && string(r.Data) != "v" {
			t.Fatalf("get %d saw %q", i, r.Data)
		}
	}
	if ch := c.MustCall(req(wire.OpChildren, "/p")); len(ch.Children) != 334 {
		t.Fatalf("%d children", len(ch.Children))
	}
}

func TestExactlyOnceAcrossReconnect(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/once", "", wire.ModePersistent))
	// Send sequential creates (a second application would be visible as a
	// new name) and drop the connection without reading the answers.
	var sent []wire.Request
	for i := 0; i < 20; i++ {
		r := create("/once/n-", "", wire.ModePersistentSequential)
		r.Xid = c.NextXid()
		c.Send(r)
		sent = append(sent, r)
	}
	c.Close()

	// Resume the session on a new websocket and resend every write.
	c2 := testcluster.Dial(t, nd.ClientAddr())
	resp := c2.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000, SessionID: c.Session, Password: c.Password})
	if resp.Err != wire.OK || resp.SessionID != c.Session {
		t.Fatalf("resume: %+v", resp)
	}
	seen := map[string]bool{}
	for _, r := range sent {
		a := c2.Call(r)
		if a.Err != wire.OK {
			t.Fatalf("resent xid %d: %s %s", r.Xid, a.Err, a.Msg)
		}
		if seen[a.Path] {
			t.Fatalf("two writes answered with %s", a.Path)
		}
		seen[a.Path] = true
	}
	ch := c2.MustCall(req(wire.OpChildren, "/once"))
	if len(ch.Children) != 20 {
		t.Fatalf("%d children after resending 20 writes: %v", len(ch.Children), ch.Children)
	}
	// A resent write answers its first result, even a failed one.
	fail := wire.Request{Xid: c2.NextXid(), Op: wire.OpCreate, Path: "/once"}
	first := c2.Call(fail)
	c2.MustCall(wire.Request{Op: wire.OpDelete, Path: "/once/" + ch.Children[0], Version: -1})
	again := c2.Call(fail)
	if first.Err != wire.NodeExists || again.Err != wire.NodeExists || again.Zxid < first.Zxid {
		t.Fatalf("resent failing write: first %+v, again %+v", first, again)
	}
}

func TestDurabilityKill9(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/d", "", wire.ModePersistent))
	var xids []int64
	for i := 0; i < 300; i++ {
		xids = append(xids, c.Send(create("/d/s-", fmt.Sprint(i), wire.ModePersistentSequential)))
	}
	acked := map[string]string{}
	for i, x := range xids {
		r := c.Recv(x)
		if r.Err != wire.OK {
			t.Fatalf("create %d: %s", i, r.Err)
		}
		acked[r.Path] = fmt.Sprint(i)
	}
	nd.Kill()
	nd.Start()
	nd.WaitReady()
	c2 := testcluster.Connect(t, nd.ClientAddr())
	for p, v := range acked {
		g := c2.Call(req(wire.OpGet, p))
		if g.Err != wire.OK || string(g.Data) != v {
			t.Fatalf("acknowledged %s=%s after kill -9: %s %q", p, v, g.Err, g.Data)
		}
	}
	r := c2.MustCall(create("/d/s-", "", wire.ModePersistentSequential))
	if r.Path != "/d/s-0000000300" {
		t.Fatalf("sequence after restart: %s", r.Path)
	}
}

func TestMalformedFrames(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	before := rootCversion(t, c)
	cases := []struct {
		frame string
		xid   int64
		code  wire.Code
	}{
		{`{not json`, 0, wire.MarshallingError},
		{`{"xid":77,"op":"create","path":`, 77, wire.MarshallingError}, // the xid could be read
		{`{"xid":78}`, 78, wire.MarshallingError},
		{`{"op":"get","path":"/"}`, 0, wire.MarshallingError},
		{`[1,2,3]`, 0, wire.MarshallingError},
		{`{"xid":79,"op":"create","path":"/x","data":"***"}`, 79, wire.BadArguments},
		{`{"xid":80,"op":"create","path":"/x","data":12}`, 80, wire.BadArguments},
		{`{"xid":81,"op":"teleport","path":"/x"}`, 81, wire.Unimplemented},
		{`{"xid":82,"op":"connect","timeout_ms":1000}`, 82, wire.BadArguments},
		{`{"xid":83,"op":"check","path":"/","version":0}`, 83, wire.BadArguments},
	}
	for _, tc := range cases {
		c.SendRaw([]byte(tc.frame))
		r, err := c.Read()
		if err != nil {
			t.Fatalf("%s: connection died: %v", tc.frame, err)
		}
		if r.Err != tc.code || r.Xid != tc.xid {
			t.Fatalf("%s: got xid %d %s (%s), want xid %d %s", tc.frame, r.Xid, r.Err, r.Msg, tc.xid, tc.code)
		}
	}
	// The connection is still usable and nothing changed.
	if after := rootCversion(t, c); after != before {
		t.Fatalf("root cversion %d -> %d", before, after)
	}
	// A binary frame with a valid request is accepted too.
	if err := c.WS.WriteMessage(websocket.BinaryMessage, []byte(`{"xid":100,"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if r := c.Recv(100); r.Err != wire.OK {
		t.Fatalf("binary ping: %s", r.Err)
	}
}

func TestOpBeforeConnectClosesSocket(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Dial(t, nd.ClientAddr())
	c.SendRaw([]byte(`{"xid":5,"op":"create","path":"/early"}`))
	r, err := c.Read()
	if err != nil || r.Err != wire.BadArguments || r.Xid != 5 {
		t.Fatalf("op before connect: %+v %v", r, err)
	}
	if _, err := c.Read(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("after an op before connect: %v", err)
	}
	other := testcluster.Connect(t, nd.ClientAddr())
	if r := other.Call(req(wire.OpExists, "/early")); r.Err != wire.NoNode {
		t.Fatalf("the early create applied: %s", r.Err)
	}
}

func TestBadPaths(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	before := rootCversion(t, c)
	bad := []string{"", "a", "/a/", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/a\x00b", "/a\x01b", "/a\x7fb",
		"/" + strings.Repeat("x", 1024), "/a\u0085b"}
	for _, p := range bad {
		for _, op := range []wire.Request{create(p, "", wire.ModePersistent), req(wire.OpGet, p),
			{Op: wire.OpSet, Path: p, Version: -1}, {Op: wire.OpDelete, Path: p, Version: -1}, req(wire.OpChildren, p),
			{Op: wire.OpAddWatch, Path: p, Mode: "persistent"}} {
			if r := c.Call(op); r.Err != wire.BadArguments {
				t.Fatalf("%s %q: %s, want BadArguments", op.Op, p, r.Err)
			}
		}
	}
	if r := c.Call(wire.Request{Op: wire.OpDelete, Path: "/", Version: -1}); r.Err != wire.BadArguments {
		t.Fatalf("delete /: %s", r.Err)
	}
	if r := c.Call(create("/", "", wire.ModePersistent)); r.Err != wire.BadArguments && r.Err != wire.NodeExists {
		t.Fatalf("create /: %s", r.Err)
	}
	if after := rootCversion(t, c); after != before {
		t.Fatalf("bad paths changed the tree: cversion %d -> %d", before, after)
	}
	// The longest valid path works.
	long := "/" + strings.Repeat("y", 1023)
	c.MustCall(create(long, "", wire.ModePersistent))
}

func TestDataAndFrameLimits(t *testing.T) {
	nd := startOne(t, "--max-data-bytes", "1000")
	c := testcluster.Connect(t, nd.ClientAddr())
	other := testcluster.Connect(t, nd.ClientAddr())
	before := rootCversion(t, c)
	if r := c.Call(create("/big", strings.Repeat("x", 1001), wire.ModePersistent)); r.Err != wire.BadArguments {
		t.Fatalf("data over the limit: %s", r.Err)
	}
	c.MustCall(create("/fits", strings.Repeat("x", 1000), wire.ModePersistent))
	if r := c.Call(wire.Request{Op: wire.OpSet, Path: "/fits", Data: []byte(strings.Repeat("x", 1001)), Version: -1}); r.Err != wire.BadArguments {
		t.Fatalf("set over the limit: %s", r.Err)
	}
	if r := c.Call(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{create("/m1", "", wire.ModePersistent),
		create("/m2", strings.Repeat("x", 1001), wire.ModePersistent)}}); r.Err != wire.BadArguments {
		t.Fatalf("multi with data over the limit: %s", r.Err)
	}
	// A frame too large for max data base64-encoded plus fields closes the
	// websocket with 1009 and applies nothing.
	huge := fmt.Sprintf(`{"xid":%d,"op":"create","path":"/huge","data":"%s"}`, c.NextXid(), strings.Repeat("A", 200<<10))
	c.SendRaw([]byte(huge))
	if _, err := c.Read(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("oversized frame: %v", err)
	}
	if after := rootCversion(t, other); after != before+1 {
		t.Fatalf("root cversion %d -> %d: something besides /fits was applied", before, after)
	}
	if r := other.Call(req(wire.OpExists, "/huge")); r.Err != wire.NoNode {
		t.Fatalf("/huge: %s", r.Err)
	}
}

func TestConnectionLimitPerIP(t *testing.T) {
	nd := startOne(t, "--max-conns-per-ip", "3")
	var conns []*testcluster.RawConn
	for i := 0; i < 3; i++ {
		conns = append(conns, testcluster.Connect(t, nd.ClientAddr()))
	}
	_, err := testcluster.DialErr(t, nd.ClientAddr(), nil)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("4th connection: %v, want HTTP 429", err)
	}
	for _, c := range conns {
		c.MustCall(wire.Request{Op: wire.OpPing})
	}
	conns[0].Close()
	testcluster.WaitFor(t, 10*time.Second, "a freed connection slot", func() bool {
		c, err := testcluster.DialErr(t, nd.ClientAddr(), nil)
		if err != nil {
			return false
		}
		c.Connect(10000)
		return true
	})
}

func TestStalledHandshakeAndFirstFrame(t *testing.T) {
	nd := startOne(t, "--handshake-timeout", "300ms", "--first-frame-timeout", "300ms")
	// A TCP connection that never sends its HTTP request is closed.
	raw, err := net.Dial("tcp", nd.ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(raw); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a stalled handshake was not closed")
		}
	}
	// A websocket that never sends connect is closed.
	c := testcluster.Dial(t, nd.ClientAddr())
	if _, err := c.Read(); err == nil {
		t.Fatal("a websocket without connect got a frame")
	}
	// Other sessions are unaffected.
	ok := testcluster.Connect(t, nd.ClientAddr())
	ok.MustCall(wire.Request{Op: wire.OpPing})
	if code, body := testcluster.Get(nd.ClientAddr(), "/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("healthz: %d %q", code, body)
	}
}

func TestBrowserOrigin(t *testing.T) {
	nd := startOne(t, "--allowed-origins", "http://app.example")
	if _, err := testcluster.DialErr(t, nd.ClientAddr(), http.Header{"Origin": {"http://evil.example"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: %v, want 403", err)
	}
	for _, o := range []string{"http://app.example", "http://" + nd.ClientAddr()} {
		c, err := testcluster.DialErr(t, nd.ClientAddr(), http.Header{"Origin": {o}})
		if err != nil {
			t.Fatalf("origin %s: %v", o, err)
		}
		c.Connect(10000)
	}
}

func TestThrottledBeyondInFlightCap(t *testing.T) {
	nd := startOne(t, "--max-in-flight", "8")
	c := testcluster.Connect(t, nd.ClientAddr())
	// Writes take an fsync each round; 200 at once overrun a cap of 8.
	var xids []int64
	for i := 0; i < 200; i++ {
		xids = append(xids, c.Send(create(fmt.Sprintf("/t%d", i), "", wire.ModePersistent)))
	}
	throttled, ok := 0, 0
	for _, x := range xids {
		switch r := c.Recv(x); r.Err {
		case wire.Throttled:
			throttled++
		case wire.OK:
			ok++
		default:
			t.Fatalf("xid %d: %s", x, r.Err)
		}
	}
	if throttled == 0 || ok < 8 {
		t.Fatalf("%d ok, %d throttled", ok, throttled)
	}
	ch := c.MustCall(req(wire.OpChildren, "/"))
	if len(ch.Children) != ok {
		t.Fatalf("%d nodes exist but %d creates were acknowledged", len(ch.Children), ok)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	nd := startOne(t)
	st, err := nd.Status()
	if err != nil || st.Role != "leader" || st.Leader != 1 || st.ID != 1 || len(st.Members) != 1 || st.Members[0].ClientAddr != nd.ClientAddr() {
		t.Fatalf("status %+v %v", st, err)
	}
	if code, _ := testcluster.Get(nd.ClientAddr(), "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz %d", code)
	}
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/metric", "", wire.ModePersistent))
	code, body := testcluster.Get(nd.ClientAddr(), "/metrics")
	for _, want := range []string{`coord_requests_total{code="ok",op="create"} 1`, "coord_raft_term", "coord_raft_applied_index",
		"coord_raft_fsync_seconds_bucket", "coord_proposal_batch_size", "coord_request_duration_seconds_bucket{op=\"create\"",
		"coord_connections 1"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

func postJSON(t *testing.T, nd *testcluster.Node, path string, body any) {
	t.Helper()
	if code, err := nd.Post(http.MethodPost, path, body, nil); err != nil || code != http.StatusOK {
		t.Fatalf("POST %s: %d %v", path, code, err)
	}
}

func TestFsyncFailureStopsTheServer(t *testing.T) {
	nd := startOne(t, "--test-hooks")
	c := testcluster.Connect(t, nd.ClientAddr())
	acked := c.MustCall(create("/kept", "v", wire.ModePersistent))
	postJSON(t, nd, "/debug/disk", map[string]string{"fault": "fsync"})
	x := c.Send(create("/doomed", "", wire.ModePersistent))
	// The write is never acknowledged: the server exits non-zero at once.
	if r, err := c.Read(); err == nil && r.Xid == x && r.Err == wire.OK {
		t.Fatalf("a write was acknowledged after its fsync failed: %+v", r)
	}
	exited, exitErr := nd.Exited()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the server kept running after a failed fsync")
	}
	if exitErr() == nil {
		t.Fatal("the server exited 0 after a failed fsync")
	}
	nd.Kill()
	nd.Start() // the injected fault does not survive a restart
	nd.WaitReady()
	c2 := testcluster.Connect(t, nd.ClientAddr())
	g := c2.MustCall(req(wire.OpGet, "/kept"))
	if string(g.Data) != "v" || g.Stat.Czxid != acked.Zxid {
		t.Fatalf("acknowledged write after the restart: %+v", g)
	}
	c2.MustCall(create("/after", "", wire.ModePersistent))
}

func TestDiskFullRefusesWritesExplicitly(t *testing.T) {
	nd := startOne(t, "--test-hooks")
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/pre", "v", wire.ModePersistent))
	_, before, err := nd.Digest()
	if err != nil {
		t.Fatal(err)
	}
	postJSON(t, nd, "/debug/disk", map[string]string{"fault": "enospc"})
	r := c.Call(create("/full", "", wire.ModePersistent))
	if r.Err != wire.QuotaExceeded || !strings.Contains(r.Msg, "disk is full") {
		t.Fatalf("a write on a full disk: %s %q", r.Err, r.Msg)
	}
	if g := c.MustCall(req(wire.OpGet, "/pre")); string(g.Data) != "v" {
		t.Fatalf("a read on a full disk: %q", g.Data)
	}
	if _, after, _ := nd.Digest(); after != before {
		t.Fatal("the state changed while the disk was full")
	}
	postJSON(t, nd, "/debug/disk", map[string]string{"fault": "none"})
	c.MustCall(create("/full", "", wire.ModePersistent))
	nd.Kill()
	nd.Start()
	nd.WaitReady()
	c2 := testcluster.Connect(t, nd.ClientAddr())
	c2.MustCall(req(wire.OpGet, "/pre"))
	c2.MustCall(req(wire.OpGet, "/full"))
}
