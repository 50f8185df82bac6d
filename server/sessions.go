package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/session"
	"github.com/coord-dev/coord/znode"
)

// sessionState is this server's view of live sessions: which connection
// holds each session here, the leader's expiry tracker, and the liveness
// reports a follower batches to the leader.
type sessionState struct {
	tracker *session.Tracker
	beats   *session.Heartbeats
	leader  atomic.Bool // this server leads: it runs the expiry clock
	mu      struct {
		sync.Mutex
		conns   map[wire.SessionID]*conn
		closing map[wire.SessionID]time.Time // expiry proposed, not yet applied
	}
}

func (st *sessionState) init() {
	st.tracker = session.NewTracker()
	st.beats = session.NewHeartbeats()
	st.mu.conns = map[wire.SessionID]*conn{}
	st.mu.closing = map[wire.SessionID]time.Time{}
}

// attach records that c holds id and returns the connection that held it
// before on this server, if any.
func (st *sessionState) attach(id wire.SessionID, c *conn) *conn {
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.mu.conns[id]
	st.mu.conns[id] = c
	return old
}

func (st *sessionState) detach(id wire.SessionID, c *conn) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.conns[id] == c {
		delete(st.mu.conns, id)
	}
}

func (st *sessionState) conn(id wire.SessionID) *conn {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.mu.conns[id]
}

func (st *sessionState) isLeader() bool { return st.leader.Load() }

// touch records that session id, held by a connection here, is alive.
func (s *Server) touch(id wire.SessionID) {
	if !s.sessions.isLeader() {
		s.sessions.beats.Mark(id)
		return
	}
	s.heardFrom(id, time.Now())
}

// heardFrom extends, on the leader, the expiry clock of session id, heard
// from at now (here or through a follower). A session the tracker does not
// hold is closed, or not yet added by sessionCreated or onLeaderChange:
// only a live one may be added, since Touch would bring a closed one back
// (and should a close race with this, the leader forgets the entry once
// that close fails; see forgetSession).
func (s *Server) heardFrom(id wire.SessionID, now time.Time) {
	if s.sessions.tracker.Extend(id, now) {
		return
	}
	if info, ok := s.state.Session(id); ok {
		s.sessions.tracker.Touch(id, time.Duration(info.TimeoutMs)*time.Millisecond, now)
	}
}

// sessionCreated starts the expiry clock of a new session on the leader.
func (s *Server) sessionCreated(id wire.SessionID, timeout time.Duration) {
	if s.sessions.isLeader() {
		s.sessions.tracker.Touch(id, timeout, time.Now())
	}
}

// sessionClosed runs when a close of session id was applied: the leader
// stops tracking it, and a connection holding it here learns it expired.
func (s *Server) sessionClosed(id wire.SessionID, index uint64) {
	s.sessions.tracker.Remove(id)
	s.sessions.mu.Lock()
	delete(s.sessions.mu.closing, id)
	c := s.sessions.mu.conns[id]
	delete(s.sessions.mu.conns, id)
	s.sessions.mu.Unlock()
	if c != nil && !c.closing.Load() {
		c.push(wire.SessionEvent("expired", int64(index)))
		c.out.closeAfter(closeExpired, "session expired")
	}
}

// onLeaderChange runs on the raft goroutine when the leader changes. A new
// leader gives every session a fresh full timeout before expiring any.
func (s *Server) onLeaderChange(isLeader bool) {
	s.sessions.mu.Lock()
	s.sessions.leader.Store(isLeader)
	clear(s.sessions.mu.closing)
	s.sessions.mu.Unlock()
	if !isLeader {
		s.sessions.tracker.ResetAll(nil, time.Now())
		return
	}
	// Clear the clock, then read the table: a session whose create applies
	// after the read finds this server leading and adds itself in
	// sessionCreated, and none added before the read is dropped.
	now := time.Now()
	s.sessions.tracker.ResetAll(nil, now)
	for _, se := range s.state.Sessions() {
		s.sessions.tracker.Touch(se.ID, time.Duration(se.TimeoutMs)*time.Millisecond, now)
	}
}

// forgetSession stops the expiry clock of a session the table does not
// hold: a close the leader proposed for it failed (a heartbeat that raced
// with its close brought the tracker entry back). Without this the leader
// would propose that close again and again.
func (s *Server) forgetSession(id wire.SessionID) {
	s.sessions.tracker.Remove(id)
	s.sessions.mu.Lock()
	delete(s.sessions.mu.closing, id)
	s.sessions.mu.Unlock()
}

// runLeaderDuties expires sessions and reaps TTL and container nodes while
// this server leads, and forwards liveness reports while it follows.
func (s *Server) runLeaderDuties() {
	tick := time.NewTicker(s.cfg.TickInterval)
	defer tick.Stop()
	lastReap, lastPublish, lastPromote := time.Now(), time.Time{}, time.Time{}
	var leaderless time.Time // since when no leader is known; zero: one is
	electionTimeout := s.cfg.TickInterval * time.Duration(s.cfg.ElectionTicks)
	for {
		select {
		case <-s.stopc:
			return
		case <-tick.C:
		}
		now := time.Now()
		// A server cut off from any leader cannot serve its clients: tell
		// them to go elsewhere (ZooKeeper's followers do the same) rather
		// than let their requests hang. Their sessions live on.
		if s.leader.Load() != 0 {
			leaderless = time.Time{}
		} else if leaderless.IsZero() {
			leaderless = now
		} else if now.Sub(leaderless) > 3*electionTimeout && s.conns.count() > 0 {
			s.log.Warn("no leader: closing client connections so they move to another server", "since", leaderless)
			s.conns.closeAll(closeNoLeader, "this server has no leader; connect to another")
			leaderless = now
		}
		if now.Sub(lastPublish) >= time.Second {
			lastPublish = now
			s.publishSelf()
		}
		if !s.sessions.isLeader() {
			s.forwardHeartbeats()
			continue
		}
		s.expireSessions(now)
		if now.Sub(lastPromote) >= 200*time.Millisecond {
			lastPromote = now
			s.promoteLearners()
		}
		if now.Sub(lastReap) >= s.cfg.ReapInterval {
			lastReap = now
			s.reap(now)
		}
	}
}

func (s *Server) expireSessions(now time.Time) {
	for _, id := range s.sessions.tracker.Expired(now) {
		s.sessions.mu.Lock()
		since, proposed := s.sessions.mu.closing[id]
		if proposed && now.Sub(since) < s.cfg.RequestTimeout {
			s.sessions.mu.Unlock()
			continue
		}
		s.sessions.mu.closing[id] = now
		s.sessions.mu.Unlock()
		s.log.Info("session expired", "session", id.String())
		s.metrics.sessionsExpired.Inc()
		e := znode.Entry{ID: s.newProposalID(), TimeMs: now.UnixMilli(),
			Op: znode.Op{Kind: znode.OpCloseSession, SessionID: id, Expired: true}}
		s.propose(&proposal{id: e.ID, data: e.Marshal(), since: now, done: func(*znode.Outcome, error) {},
			abandoned: expiresAt(now.Add(s.cfg.RequestTimeout))})
	}
}

// expiresAt returns an abandoned func for proposals nobody waits for: the
// duty that made them proposes again if they are lost.
func expiresAt(t time.Time) func() bool {
	return func() bool { return time.Now().After(t) }
}

func (s *Server) reap(now time.Time) {
	for _, op := range s.state.ReapCandidates(now.UnixMilli(), 1000) {
		e := znode.Entry{ID: s.newProposalID(), TimeMs: now.UnixMilli(), Op: op}
		s.propose(&proposal{id: e.ID, data: e.Marshal(), since: now, done: func(*znode.Outcome, error) {},
			abandoned: expiresAt(now.Add(s.cfg.RequestTimeout))})
	}
}

// connect handles the first frame of a websocket. It reports false when the
// connection is to be closed.
func (c *conn) connect(req *wire.Request) bool {
	s := c.s
	sl := c.out.reserve()
	resp, ok := c.connectResponse(req)
	resp.Xid = req.Xid
	s.metrics.observe(wire.OpConnect, resp.Err, time.Time{})
	c.out.complete(sl, resp)
	if !ok {
		c.out.closeAfter(websocket.ClosePolicyViolation, string(resp.Err))
	}
	return ok
}

func (c *conn) connectResponse(req *wire.Request) (wire.Response, bool) {
	s := c.s
	fail := func(err error) (wire.Response, bool) {
		return wire.Response{Zxid: int64(s.applied.load()), Err: wire.CodeOf(err), Msg: err.Error()}, false
	}
	if s.leader.Load() == 0 {
		return fail(fmt.Errorf("%w: this server has no leader; try another", wire.ErrConnectionLoss))
	}
	if req.TimeoutMs < 0 || req.LastZxid < 0 {
		return fail(fmt.Errorf("%w: timeout_ms and last_zxid must not be negative", wire.ErrBadArguments))
	}
	timeout := session.Negotiate(req.TimeoutMs, s.cfg.MinSessionTimeout.Milliseconds(), s.cfg.MaxSessionTimeout.Milliseconds())
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()

	if req.SessionID != 0 {
		pw, err := base64.StdEncoding.DecodeString(req.Password)
		if err != nil {
			return fail(fmt.Errorf("%w: password is not base64", wire.ErrAuthFailed))
		}
		// Catch up to what the session has seen, and to the leader, so
		// that a session closed elsewhere is not resumed here.
		wctx, wcancel := context.WithTimeout(ctx, min(time.Duration(timeout)*time.Millisecond/2, 5*time.Second))
		err = s.linearize(wctx)
		if err == nil {
			err = s.applied.wait(wctx, uint64(req.LastZxid))
		}
		wcancel()
		if err != nil {
			return fail(fmt.Errorf("%w: this server is behind the session (zxid %d); try another", wire.ErrConnectionLoss, req.LastZxid))
		}
		info, ok := s.state.Session(req.SessionID)
		if !ok {
			return fail(fmt.Errorf("%w: session %s is closed or expired", wire.ErrSessionExpired, req.SessionID))
		}
		if !session.CheckPassword(info.PassHash, pw) {
			return fail(fmt.Errorf("%w: wrong password for session %s", wire.ErrAuthFailed, req.SessionID))
		}
		c.attach(req.SessionID, time.Duration(info.TimeoutMs)*time.Millisecond)
		return wire.Response{Zxid: int64(s.applied.load()), SessionID: req.SessionID, Password: req.Password,
			TimeoutMs: info.TimeoutMs, ServerID: s.id, MaxDataBytes: s.cfg.MaxDataBytes}, true
	}

	if req.LastZxid > 0 {
		// A new session of a client that has seen state before: never
		// answer from older state than it saw.
		wctx, wcancel := context.WithTimeout(ctx, min(time.Duration(timeout)*time.Millisecond/2, 5*time.Second))
		err := s.applied.wait(wctx, uint64(req.LastZxid))
		wcancel()
		if err != nil {
			return fail(fmt.Errorf("%w: this server is behind zxid %d; try another", wire.ErrConnectionLoss, req.LastZxid))
		}
	}
	pw, err := session.NewPassword()
	if err != nil {
		return fail(fmt.Errorf("%w: %v", wire.ErrRuntimeInconsistency, err))
	}
	for attempt := 0; ; attempt++ {
		id, err := session.NewID()
		if err != nil {
			return fail(fmt.Errorf("%w: %v", wire.ErrRuntimeInconsistency, err))
		}
		o, err := s.proposeWait(ctx, &znode.Entry{Op: znode.Op{Kind: znode.OpCreateSession, SessionID: id,
			TimeoutMs: timeout, PassHash: session.HashPassword(pw)}})
		if err != nil {
			return fail(err)
		}
		if o.Result.Err == wire.NodeExists && attempt < 3 {
			continue // an id collision: draw another
		}
		if o.Result.Err != wire.OK {
			return fail(o.Result.Err.Err())
		}
		c.attach(id, time.Duration(timeout)*time.Millisecond)
		return wire.Response{Zxid: int64(s.applied.load()), SessionID: id, Password: base64.StdEncoding.EncodeToString(pw),
			TimeoutMs: timeout, ServerID: s.id, MaxDataBytes: s.cfg.MaxDataBytes}, true
	}
}

// attach binds the session to this connection; a connection that held it
// before on this server is closed.
func (c *conn) attach(id wire.SessionID, timeout time.Duration) {
	c.timeout.Store(int64(timeout))
	c.lastBeat.Store(0)
	c.deadlineSet.Store(0)
	c.sess.Store(uint64(id))
	if old := c.s.sessions.attach(id, c); old != nil && old != c {
		old.closing.Store(true)
		old.out.closeAfter(closeSessionMoved, "session resumed on another connection")
	}
	c.heartbeat()
}

// closeSession answers `close`: the session ends through raft, then the
// websocket closes.
func (c *conn) closeSession(r *request) {
	s := c.s
	id := c.session()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	o, err := s.proposeWait(ctx, &znode.Entry{Session: id, Xid: r.req.Xid,
		Op: znode.Op{Kind: znode.OpCloseSession, SessionID: id}})
	var resp wire.Response
	switch {
	case err != nil:
		resp = errResponse(int64(s.applied.load()), err)
	case o.Result.Err != wire.OK && !errors.Is(o.Result.Err.Err(), wire.ErrSessionExpired):
		resp = wire.Response{Zxid: int64(s.applied.load()), Err: o.Result.Err}
	default:
		resp = wire.Response{Zxid: int64(s.applied.load())}
	}
	c.complete(r, resp)
	c.out.closeAfter(websocket.CloseNormalClosure, "session closed")
}

var _ = subtle.ConstantTimeCompare
