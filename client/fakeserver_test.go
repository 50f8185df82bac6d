package client

// STAND-IN, NOT A SERVER. This file is a minimal in-process implementation
// of PROTOCOL.md over a map, written only so that the client's connection
// mechanics (pipelining, cancellation, failover, resume and resend,
// set_watches, expiry) can be tested before coordd exists. It is no
// reference for the protocol: when integration tests against real coordd
// processes land, they replace the tests that use it, and this file should
// be deleted rather than grown.
//
// Several fakeServers share one fakeCluster, which plays the replicated
// state: nodes, sessions, the exactly-once result cache and the change log
// (for set_watches replay). Watches live per connection, as in coordd.
// Knobs let a test hold requests (received, not applied), mute a server
// (writes applied, answers dropped), refuse upgrades, drop connections, stop
// a server (its listener closed), and expire a session.

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
)

type fkey struct {
	sid wire.SessionID
	xid int64
}

type fevent struct {
	typ  wire.EventType
	path string
	zxid int64
}

type fnode struct {
	data     []byte
	stat     wire.Stat
	acl      []wire.ACL
	children map[string]struct{}
	seq      int32
}

type fsession struct {
	id        wire.SessionID
	password  string
	timeoutMs int64
	auths     []string
}

// fwatch is a server-side watch of one connection. kind is one of "data",
// "exist", "child", "persistent", "persistent_recursive".
type fwatch struct {
	path string
	kind string
}

type fakeCluster struct {
	t testing.TB

	mu          sync.Mutex
	zxid        int64
	nodes       map[string]*fnode
	sessions    map[wire.SessionID]*fsession
	nextSession uint64
	log         []fevent
	compacted   int64 // set_watches below it answers Resync for persistent watches
	results     map[fkey]wire.Response
	applies     map[fkey]int
	servers     []*fakeServer
	// eventsFirst sends set_watches' events before its answer.
	eventsFirst bool
}

type fakeServer struct {
	cl   *fakeCluster
	id   uint64
	addr string
	hs   *httptest.Server
	wg   sync.WaitGroup

	// Guarded by cl.mu.
	conns   map[*fconn]struct{}
	hold    chan struct{}
	mute    bool
	delays  map[string]time.Duration // op → how long the server takes to answer it
	refuse  bool
	stopped bool
	// failSetWatches: close the connection instead of answering the next
	// that many set_watches.
	failSetWatches int
	frames         []frec
	upgrades       int
	pings, pongs   int // websocket control frames received
}

type frec struct {
	conn *fconn
	sid  wire.SessionID
	req  wire.Request
}

type fconn struct {
	srv *fakeServer
	ws  *websocket.Conn
	wmu sync.Mutex

	// Guarded by srv.cl.mu.
	sess        *fsession
	watches     map[fwatch]struct{}
	inflight    int
	maxInflight int
	closed      bool
	gone        chan struct{} // closed with closed
}

func newFakeCluster(t testing.TB) *fakeCluster {
	cl := &fakeCluster{
		t:        t,
		nodes:    map[string]*fnode{"/": {children: map[string]struct{}{}, acl: wire.OpenACL()}},
		sessions: map[wire.SessionID]*fsession{},
		results:  map[fkey]wire.Response{},
		applies:  map[fkey]int{},
	}
	t.Cleanup(cl.stopAll)
	return cl
}

func (cl *fakeCluster) newServer() *fakeServer {
	s := &fakeServer{cl: cl, conns: map[*fconn]struct{}{}}
	cl.mu.Lock()
	cl.servers = append(cl.servers, s)
	s.id = uint64(len(cl.servers))
	cl.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", s.handle)
	s.hs = httptest.NewServer(mux)
	s.addr = strings.TrimPrefix(s.hs.URL, "http://")
	return s
}

func (cl *fakeCluster) stopAll() {
	cl.mu.Lock()
	servers := slices.Clone(cl.servers)
	cl.mu.Unlock()
	for _, s := range servers {
		s.stop()
	}
}

// stop closes the listener and every connection, as a killed process would.
func (s *fakeServer) stop() {
	s.cl.mu.Lock()
	if s.stopped {
		s.cl.mu.Unlock()
		return
	}
	s.stopped = true
	// Connections first, so that held requests die unapplied.
	for fc := range s.conns {
		fc.closeLocked()
	}
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
	s.cl.mu.Unlock()
	s.hs.Close()
	s.wg.Wait()
}

// drop closes every connection of the server, without a close frame.
func (s *fakeServer) drop() {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	for fc := range s.conns {
		fc.closeLocked()
	}
}

func (s *fakeServer) setHold(on bool) {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	switch {
	case on && s.hold == nil:
		s.hold = make(chan struct{})
	case !on && s.hold != nil:
		close(s.hold)
		s.hold = nil
	}
}

// setDelay makes the server take d to answer each request of op.
func (s *fakeServer) setDelay(op string, d time.Duration) {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	if s.delays == nil {
		s.delays = map[string]time.Duration{}
	}
	s.delays[op] = d
}

func (s *fakeServer) setMute(on bool) {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	s.mute = on
}

func (s *fakeServer) setRefuse(on bool) {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	s.refuse = on
}

// outstanding returns the requests received and not yet answered (or
// muted) on all the server's open connections.
func (s *fakeServer) outstanding() int {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	n := 0
	for fc := range s.conns {
		n += fc.inflight
	}
	return n
}

func (s *fakeServer) maxOutstanding() int {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	n := 0
	for fc := range s.conns {
		n = max(n, fc.maxInflight)
	}
	return n
}

// heartbeats returns the websocket pings and unsolicited pongs received.
func (s *fakeServer) heartbeats() (pings, pongs int) {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	return s.pings, s.pongs
}

func (s *fakeServer) numUpgrades() int {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	return s.upgrades
}

// received returns every request the server read, in order.
func (s *fakeServer) received() []frec {
	s.cl.mu.Lock()
	defer s.cl.mu.Unlock()
	return slices.Clone(s.frames)
}

func (s *fakeServer) receivedOp(op string) []wire.Request {
	var out []wire.Request
	for _, f := range s.received() {
		if f.req.Op == op {
			out = append(out, f.req)
		}
	}
	return out
}

func (cl *fakeCluster) appliesOf(sid wire.SessionID, xid int64) int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.applies[fkey{sid, xid}]
}

func (cl *fakeCluster) totalApplies() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := 0
	for _, v := range cl.applies {
		n += v
	}
	return n
}

func (cl *fakeCluster) node(path string) ([]byte, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := cl.nodes[path]
	if n == nil {
		return nil, false
	}
	return slices.Clone(n.data), true
}

// expire ends a session as the leader would: its ephemerals are deleted,
// its connections told and closed.
func (cl *fakeCluster) expire(sid wire.SessionID) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.endSessionLocked(sid)
	for _, s := range cl.servers {
		for fc := range s.conns {
			if fc.sess != nil && fc.sess.id == sid {
				fc.sendLocked(wire.SessionEvent("expired", cl.zxid))
				fc.closeLocked()
			}
		}
	}
}

func (cl *fakeCluster) endSessionLocked(sid wire.SessionID) {
	if cl.sessions[sid] == nil {
		return
	}
	delete(cl.sessions, sid)
	var eph []string
	for p, n := range cl.nodes {
		if n.stat.EphemeralOwner == sid {
			eph = append(eph, p)
		}
	}
	sort.Strings(eph)
	for _, p := range eph {
		cl.zxid++
		cl.deleteLocked(p)
		cl.fireLocked([]fevent{{wire.EventNodeDeleted, p, cl.zxid}, {wire.EventNodeChildrenChanged, wire.Parent(p), cl.zxid}})
	}
}

var fakeUpgrader = websocket.Upgrader{}

func (s *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	s.cl.mu.Lock()
	refuse := s.refuse || s.stopped
	s.cl.mu.Unlock()
	if refuse {
		http.Error(w, "refused", http.StatusServiceUnavailable)
		return
	}
	ws, err := fakeUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	fc := &fconn{srv: s, ws: ws, watches: map[fwatch]struct{}{}, gone: make(chan struct{})}
	s.cl.mu.Lock()
	if s.stopped {
		s.cl.mu.Unlock()
		ws.Close()
		return
	}
	s.upgrades++
	s.conns[fc] = struct{}{}
	s.wg.Add(2)
	s.cl.mu.Unlock()

	ws.SetPingHandler(func(data string) error {
		s.cl.mu.Lock()
		s.pings++
		s.cl.mu.Unlock()
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	ws.SetPongHandler(func(string) error {
		s.cl.mu.Lock()
		s.pongs++
		s.cl.mu.Unlock()
		return nil
	})
	in := make(chan wire.Request, 8192)
	go func() { // reader
		defer s.wg.Done()
		defer close(in)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				s.cl.mu.Lock()
				fc.closeLocked()
				s.cl.mu.Unlock()
				return
			}
			req, err := wire.DecodeRequest(msg)
			if err != nil {
				s.cl.t.Errorf("fake server: bad frame %q: %v", msg, err)
				continue
			}
			s.cl.mu.Lock()
			sid := wire.SessionID(0)
			if fc.sess != nil {
				sid = fc.sess.id
			}
			s.frames = append(s.frames, frec{fc, sid, req})
			fc.inflight++
			fc.maxInflight = max(fc.maxInflight, fc.inflight)
			if fc.inflight > 1024 {
				s.cl.t.Errorf("fake server: %d requests in flight, more than the server's cap", fc.inflight)
			}
			s.cl.mu.Unlock()
			in <- req
		}
	}()
	go func() { // processor: answers in order
		defer s.wg.Done()
		for req := range in {
			s.cl.mu.Lock()
			hold, delay := s.hold, s.delays[req.Op]
			s.cl.mu.Unlock()
			if delay > 0 {
				select { // a slow server, not a synchronisation
				case <-time.After(delay):
				case <-fc.gone:
				}
			}
			if hold != nil {
				select {
				case <-hold:
				case <-fc.gone:
				}
			}
			s.cl.mu.Lock()
			if !fc.closed {
				s.processLocked(fc, req)
			}
			s.cl.mu.Unlock()
		}
	}()
}

func (fc *fconn) closeLocked() {
	if fc.closed {
		return
	}
	fc.closed = true
	close(fc.gone)
	fc.ws.Close()
	delete(fc.srv.conns, fc)
}

func (fc *fconn) sendLocked(r wire.Response) {
	if fc.closed {
		return
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	fc.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := fc.ws.WriteMessage(websocket.TextMessage, r.AppendJSON(nil)); err != nil {
		fc.closeLocked()
	}
}

func isFakeWrite(op string) bool {
	switch op {
	case wire.OpCreate, wire.OpDelete, wire.OpSet, wire.OpSetACL, wire.OpMulti:
		return true
	}
	return false
}

func (s *fakeServer) processLocked(fc *fconn, req wire.Request) {
	cl := s.cl
	fc.inflight--
	answer := func(r wire.Response) {
		r.Xid = req.Xid
		r.Zxid = cl.zxid
		fc.sendLocked(r)
	}
	if fc.sess == nil {
		if req.Op != wire.OpConnect {
			answer(wire.Response{Err: wire.BadArguments})
			fc.closeLocked()
			return
		}
		s.connectLocked(fc, req, answer)
		return
	}
	sid := fc.sess.id
	if isFakeWrite(req.Op) {
		key := fkey{sid, req.Xid}
		r, ok := cl.results[key]
		if !ok {
			r = cl.applyLocked(sid, req)
			cl.results[key] = r
			cl.applies[key]++
		}
		if s.mute {
			return
		}
		answer(r)
		return
	}
	switch req.Op {
	case wire.OpPing:
		answer(wire.Response{})
	case wire.OpClose:
		cl.endSessionLocked(sid)
		answer(wire.Response{})
		fc.closeLocked()
	case wire.OpAuth:
		if req.Credential == "bad" {
			answer(wire.Response{Err: wire.AuthFailed})
			return
		}
		fc.sess.auths = append(fc.sess.auths, req.Scheme+":"+req.Credential)
		answer(wire.Response{})
	case wire.OpExists:
		n := cl.nodes[req.Path]
		if req.Watch {
			kind := "data"
			if n == nil {
				kind = "exist"
			}
			fc.watches[fwatch{req.Path, kind}] = struct{}{}
		}
		if n == nil {
			answer(wire.Response{Err: wire.NoNode})
			return
		}
		st := n.stat
		answer(wire.Response{Stat: &st})
	case wire.OpGet:
		n := cl.nodes[req.Path]
		if n == nil {
			answer(wire.Response{Err: wire.NoNode})
			return
		}
		if req.Watch {
			fc.watches[fwatch{req.Path, "data"}] = struct{}{}
		}
		st := n.stat
		answer(wire.Response{Data: append([]byte{}, n.data...), Stat: &st})
	case wire.OpChildren:
		n := cl.nodes[req.Path]
		if n == nil {
			answer(wire.Response{Err: wire.NoNode})
			return
		}
		if req.Watch {
			fc.watches[fwatch{req.Path, "child"}] = struct{}{}
		}
		names := []string{}
		for c := range n.children {
			if c > req.After {
				names = append(names, c)
			}
		}
		sort.Strings(names)
		if req.Limit > 0 && len(names) > req.Limit {
			names = names[:req.Limit]
		}
		st := n.stat
		answer(wire.Response{Children: names, Stat: &st})
	case wire.OpGetACL:
		n := cl.nodes[req.Path]
		if n == nil {
			answer(wire.Response{Err: wire.NoNode})
			return
		}
		st := n.stat
		answer(wire.Response{ACL: n.acl, Stat: &st})
	case wire.OpSync:
		answer(wire.Response{Path: req.Path})
	case wire.OpAddWatch:
		fc.watches[fwatch{req.Path, req.Mode}] = struct{}{}
		answer(wire.Response{})
	case wire.OpRemoveWatches:
		var kinds []string
		switch wire.WatchType(req.Type) {
		case wire.WatchTypeData:
			kinds = []string{"data", "exist"}
		case wire.WatchTypeChildren:
			kinds = []string{"child"}
		case wire.WatchTypeAny:
			kinds = []string{"data", "exist", "child", "persistent", "persistent_recursive"}
		default:
			kinds = []string{req.Type}
		}
		found := false
		for _, k := range kinds {
			if _, ok := fc.watches[fwatch{req.Path, k}]; ok {
				delete(fc.watches, fwatch{req.Path, k})
				found = true
			}
		}
		if !found {
			answer(wire.Response{Err: wire.NoWatcher})
			return
		}
		answer(wire.Response{})
	case wire.OpSetWatches:
		if s.failSetWatches > 0 {
			s.failSetWatches--
			fc.closeLocked()
			return
		}
		s.setWatchesLocked(fc, req, answer)
	default:
		answer(wire.Response{Err: wire.Unimplemented})
	}
}

func (s *fakeServer) connectLocked(fc *fconn, req wire.Request, answer func(wire.Response)) {
	cl := s.cl
	if req.SessionID == 0 {
		cl.nextSession++
		var pw [16]byte
		rand.Read(pw[:])
		timeout := req.TimeoutMs
		if timeout == 0 {
			timeout = 10000
		}
		fc.sess = &fsession{id: wire.SessionID(0xc0de0000 + cl.nextSession), password: base64.StdEncoding.EncodeToString(pw[:]), timeoutMs: timeout}
		cl.sessions[fc.sess.id] = fc.sess
	} else {
		sess := cl.sessions[req.SessionID]
		switch {
		case sess == nil:
			answer(wire.Response{Err: wire.SessionExpired})
			fc.closeLocked()
			return
		case sess.password != req.Password:
			answer(wire.Response{Err: wire.AuthFailed})
			fc.closeLocked()
			return
		}
		fc.sess = sess
	}
	if req.LastZxid > cl.zxid {
		answer(wire.Response{Err: wire.ConnectionLoss})
		fc.closeLocked()
		return
	}
	answer(wire.Response{SessionID: fc.sess.id, Password: fc.sess.password, TimeoutMs: fc.sess.timeoutMs,
		ServerID: s.id, MaxDataBytes: wire.DefaultMaxDataBytes})
}
