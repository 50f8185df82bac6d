package server_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// fastSessions lets tests use short session timeouts.
var fastSessions = []string{"--min-session-timeout", "300ms", "--reap-interval", "100ms"}

func resume(t *testing.T, addr string, c *testcluster.RawConn, lastZxid int64) (*testcluster.RawConn, wire.Response) {
	t.Helper()
	c2 := testcluster.Dial(t, addr)
	r := c2.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000, SessionID: c.Session, Password: c.Password, LastZxid: lastZxid})
	c2.Session, c2.Password = c.Session, c.Password
	return c2, r
}

func TestEphemeralVanishesOnExpiry(t *testing.T) {
	nd := startOne(t, fastSessions...)
	watcher := testcluster.Connect(t, nd.ClientAddr())
	owner := testcluster.Dial(t, nd.ClientAddr())
	owner.Connect(600)
	owner.MustCall(create("/eph", "", wire.ModeEphemeral))
	watcher.MustCall(wire.Request{Op: wire.OpExists, Path: "/eph", Watch: true})
	start := time.Now()
	// The owner goes silent: no frame, no ping.
	ev := watcher.NextEvent()
	took := time.Since(start)
	if ev.Event != wire.EventNodeDeleted || ev.Path != "/eph" {
		t.Fatalf("event %+v", ev)
	}
	// Expiry takes the timeout plus the leader's tick; allow generous
	// scheduling slack on a shared machine but not a second timeout.
	if took < 500*time.Millisecond || took > 600*time.Millisecond+3*time.Second {
		t.Fatalf("expired after %v with a 600ms timeout", took)
	}
	// The silent client learns its session expired, then the socket closes.
	sawExpired := false
	for {
		r, err := owner.Read()
		if err != nil {
			if !websocket.IsCloseError(err, 4002) {
				t.Fatalf("owner socket ended with %v", err)
			}
			break
		}
		if r.Xid == wire.XidSession && r.State == "expired" {
			sawExpired = true
		}
	}
	if !sawExpired {
		t.Fatal("the expired session got no expired frame")
	}
	_, r := resume(t, nd.ClientAddr(), owner, 0)
	if r.Err != wire.SessionExpired {
		t.Fatalf("resuming an expired session: %s", r.Err)
	}
}

func TestPingingSessionLives(t *testing.T) {
	nd := startOne(t, fastSessions...)
	c := testcluster.Dial(t, nd.ClientAddr())
	c.Connect(500)
	c.MustCall(create("/alive", "", wire.ModeEphemeral))
	other := testcluster.Connect(t, nd.ClientAddr())
	// Ping every ~150ms for 3s (six timeouts), half of them as websocket
	// control pings.
	for i := 0; i < 20; i++ {
		if i%2 == 0 {
			c.MustCall(wire.Request{Op: wire.OpPing})
		} else if err := c.WS.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond) // the client's ping cadence, not synchronisation
	}
	if r := other.Call(req(wire.OpExists, "/alive")); r.Err != wire.OK {
		t.Fatalf("ephemeral of a pinging session: %s", r.Err)
	}
}

func TestEphemeralSurvivesResume(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	r := c.MustCall(create("/mine", "", wire.ModeEphemeral))
	c.Close()
	c2, resp := resume(t, nd.ClientAddr(), c, r.Zxid)
	if resp.Err != wire.OK || resp.SessionID != c.Session || resp.TimeoutMs != 10000 {
		t.Fatalf("resume: %+v", resp)
	}
	e := c2.MustCall(req(wire.OpExists, "/mine"))
	if e.Stat.EphemeralOwner != c.Session {
		t.Fatalf("owner after resume: %+v", e.Stat)
	}
	// The old socket's session is now held by the new one; a third resume
	// takes it over and the second is closed.
	c3, _ := resume(t, nd.ClientAddr(), c, r.Zxid)
	if _, err := c2.Read(); !websocket.IsCloseError(err, 4001) {
		t.Fatalf("superseded connection: %v", err)
	}
	c3.MustCall(wire.Request{Op: wire.OpPing})
}

func TestResumeRefusals(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/kept", "", wire.ModeEphemeral))

	bad := testcluster.Dial(t, nd.ClientAddr())
	r := bad.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000, SessionID: c.Session, Password: "AAAAAAAAAAAAAAAAAAAAAA=="})
	if r.Err != wire.AuthFailed {
		t.Fatalf("wrong password: %s", r.Err)
	}
	if _, err := bad.Read(); err == nil {
		t.Fatal("the socket stayed open after AuthFailed")
	}
	// The real session is untouched.
	c.MustCall(wire.Request{Op: wire.OpPing})
	c.MustCall(req(wire.OpExists, "/kept"))

	unknown := testcluster.Dial(t, nd.ClientAddr())
	r = unknown.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000, SessionID: 0x1234, Password: c.Password})
	if r.Err != wire.SessionExpired {
		t.Fatalf("unknown session: %s", r.Err)
	}
	// A client ahead of the server (last_zxid in the future) is sent away.
	ahead := testcluster.Dial(t, nd.ClientAddr())
	r = ahead.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000, SessionID: c.Session, Password: c.Password, LastZxid: 1 << 40})
	if r.Err != wire.ConnectionLoss {
		t.Fatalf("last_zxid ahead of the server: %s", r.Err)
	}
	if r := c.Call(req(wire.OpExists, "/kept")); r.Err != wire.OK {
		t.Fatalf("after refused resumes: %s", r.Err)
	}
}

func TestTimeoutNegotiation(t *testing.T) {
	nd := startOne(t, "--min-session-timeout", "3s", "--max-session-timeout", "20s")
	for _, tc := range []struct{ ask, want int64 }{{100, 3000}, {0, 3000}, {5000, 5000}, {999999, 20000}} {
		c := testcluster.Dial(t, nd.ClientAddr())
		if r := c.Connect(tc.ask); r.TimeoutMs != tc.want {
			t.Fatalf("asked %d, got %d, want %d", tc.ask, r.TimeoutMs, tc.want)
		}
	}
}

func TestRestartGivesSessionsAFreshTimeout(t *testing.T) {
	nd := startOne(t, fastSessions...)
	keeper := testcluster.Dial(t, nd.ClientAddr())
	keeper.Connect(1500)
	r := keeper.MustCall(create("/keep", "", wire.ModeEphemeral))
	lost := testcluster.Dial(t, nd.ClientAddr())
	lost.Connect(1500)
	lost.MustCall(create("/lose", "", wire.ModeEphemeral))

	nd.Kill()
	nd.Start()
	restarted := time.Now()
	nd.WaitReady()
	// keeper comes back within its timeout (counted from the restart) and
	// keeps its ephemeral; lost never does, and loses it after a full timeout.
	k2, resp := resume(t, nd.ClientAddr(), keeper, r.Zxid)
	if resp.Err != wire.OK {
		t.Fatalf("resume after restart: %s %s", resp.Err, resp.Msg)
	}
	k2.MustCall(req(wire.OpExists, "/keep"))
	k2.MustCall(wire.Request{Op: wire.OpExists, Path: "/lose", Watch: true})
	ev := nextEventPinging(t, k2, 200*time.Millisecond)
	if ev.Event != wire.EventNodeDeleted || ev.Path != "/lose" {
		t.Fatalf("event %+v", ev)
	}
	if took := time.Since(restarted); took < 1500*time.Millisecond {
		t.Fatalf("a session expired %v after the restart, before a full timeout", took)
	}
	if r := k2.Call(req(wire.OpExists, "/keep")); r.Err != wire.OK {
		t.Fatalf("the resumed session's ephemeral: %s", r.Err)
	}
}

func TestTTLAndContainerReaping(t *testing.T) {
	nd := startOne(t, fastSessions...)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/ttl", Mode: string(wire.ModePersistentTTL), TTLMs: 300})
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/ttlkids", Mode: string(wire.ModePersistentTTL), TTLMs: 300})
	c.MustCall(create("/ttlkids/k", "", wire.ModePersistent))
	c.MustCall(create("/box", "", wire.ModeContainer))
	c.MustCall(create("/fresh", "", wire.ModeContainer))
	c.MustCall(create("/box/item", "", wire.ModePersistent))
	c.MustCall(wire.Request{Op: wire.OpExists, Path: "/ttl", Watch: true})
	c.MustCall(wire.Request{Op: wire.OpExists, Path: "/box", Watch: true})
	c.MustCall(wire.Request{Op: wire.OpDelete, Path: "/box/item", Version: -1})
	got := map[string]bool{}
	for len(got) < 2 {
		ev := c.NextEvent()
		if ev.Event != wire.EventNodeDeleted {
			t.Fatalf("event %+v", ev)
		}
		got[ev.Path] = true
	}
	if !got["/ttl"] || !got["/box"] {
		t.Fatalf("reaped %v", got)
	}
	// A TTL node with children and a container that never had any stay.
	c.MustCall(req(wire.OpExists, "/ttlkids"))
	c.MustCall(req(wire.OpExists, "/fresh"))
}

// nextEventPinging waits for the next pushed frame while keeping the session
// alive with a ping every interval (a raw connection has no background
// heartbeat).
func nextEventPinging(t *testing.T, c *testcluster.RawConn, interval time.Duration) wire.Response {
	t.Helper()
	for i := 0; i < 600; i++ {
		if len(c.Events) > 0 {
			return c.NextEvent()
		}
		c.MustCall(wire.Request{Op: wire.OpPing}) // collects events that arrive first
		if len(c.Events) > 0 {
			return c.NextEvent()
		}
		time.Sleep(interval) // the ping cadence
	}
	t.Fatal("no event")
	return wire.Response{}
}
