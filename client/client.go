package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
)

// Client is a session with a coord cluster, kept over one websocket at a
// time. It is safe for concurrent use by many goroutines, and one Client
// carries many concurrent requests: there is rarely a reason for a program
// to hold more than one per cluster.
type Client struct {
	servers []string
	opts    options
	log     *slog.Logger
	dialer  *websocket.Dialer

	// slots holds one token per request queued or sent and not yet
	// answered (close included): at most opts.maxInFlight. waitSlots
	// does the same for reads that wait on the server (WaitGone), at most
	// maxWaitingReads, so that they never hold up other requests. The
	// two bound what a connection's send queue must hold.
	slots     chan struct{}
	waitSlots chan struct{}
	// closing is closed when Close starts.
	closing chan struct{}
	// stopRun cancels the manager goroutine's context.
	stopRun context.CancelFunc
	// newSession wakes the manager of an expired session (capacity 1).
	newSession chan struct{}
	// wg counts the manager goroutine and every stream pump.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		closed    bool
		state     State
		sessionID SessionID // 0: none yet, or expired
		password  string
		timeout   time.Duration // negotiated session timeout
		maxData   int           // the server's max_data_bytes
		lastZxid  int64         // the largest zxid seen in any frame
		nextXid   int64
		pending   map[int64]*call // every request not yet answered, by xid
		conn      *conn           // the serving connection; nil otherwise
		auths     []authCred      // replayed on every connection
		watches   registry
		subs      map[*stream[StateEvent]]struct{}
		pumps     map[stopper]struct{} // every running stream pump
		lastEvent StateEvent           // the last event emitted
		changed   chan struct{}        // closed and replaced at every state change
		lastErr   error                // why the last connection attempt failed
	}
}

// State is the state of a client's session.
type State int

// The session states.
const (
	// StateDisconnected: the session may be alive but the client has no
	// connection; requests wait (as long as their contexts allow) and are
	// sent once it reconnects.
	StateDisconnected State = iota
	// StateConnected: the session is established on a server.
	StateConnected
	// StateExpired: the session is gone, with its ephemeral nodes and
	// watches. Operations fail with ErrSessionExpired until NewSession.
	StateExpired
	// StateClosed: Close was called.
	StateClosed
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "disconnected"
	case StateConnected:
		return "connected"
	case StateExpired:
		return "expired"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// StateEvent reports a change of the session's state.
type StateEvent struct {
	// State is the new state.
	State State
	// Server is the address ("host:port") of the server the client connected
	// to (StateConnected) or lost (StateDisconnected).
	Server string
	// ServerID is the id of the server, for StateConnected.
	ServerID uint64
	// SessionID is the session concerned.
	SessionID SessionID
	// NewSession is true for StateConnected when the session is new (the
	// first, or one started by NewSession), false when an existing session
	// was resumed. Ephemeral nodes and watches survive only a resume.
	NewSession bool
	// Err says why the connection was lost (StateDisconnected) or matches
	// ErrSessionExpired (StateExpired).
	Err error
}

// Connect starts a client of the cluster whose servers' client addresses
// ("host:port") are given, and returns once a session is established. It
// tries a random server first and fails over to the others with exponential
// backoff and jitter until ctx is done. After Connect returns, the client
// reconnects by itself whenever the connection drops, resuming the same
// session on any server. Connect fails only on invalid arguments or options,
// or when ctx ends before the first session is established (the error then
// matches ErrConnectionLoss and ctx's error, and tells why the last attempt
// failed).
func Connect(ctx context.Context, servers []string, opts ...Option) (*Client, error) {
	c, err := newClient(servers, opts)
	if err != nil {
		return nil, &OpError{Op: wire.OpConnect, Err: err}
	}
	life, stop := context.WithCancel(context.Background())
	c.stopRun = stop
	c.wg.Add(1)
	go c.run(life)
	if err := c.waitConnected(ctx); err != nil {
		c.mu.Lock()
		last := c.mu.lastErr
		c.mu.Unlock()
		_ = c.Close()
		if last != nil {
			err = fmt.Errorf("%w: %w (last attempt: %v)", ErrConnectionLoss, err, last)
		} else {
			err = fmt.Errorf("%w: %w", ErrConnectionLoss, err)
		}
		return nil, &OpError{Op: wire.OpConnect, Err: err}
	}
	return c, nil
}

func newClient(servers []string, opts []Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: no servers", ErrBadArguments)
	}
	order := append([]string(nil), servers...)
	if !o.noShuffle {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	c := &Client{
		servers:    order,
		opts:       o,
		log:        o.logger,
		dialer:     &websocket.Dialer{HandshakeTimeout: o.dialTimeout},
		slots:      make(chan struct{}, o.maxInFlight),
		waitSlots:  make(chan struct{}, maxWaitingReads),
		closing:    make(chan struct{}),
		newSession: make(chan struct{}, 1),
	}
	c.mu.nextXid = 1
	c.mu.timeout = o.sessionTimeout
	c.mu.maxData = wire.DefaultMaxDataBytes
	c.mu.pending = make(map[int64]*call)
	c.mu.auths = append([]authCred(nil), o.auths...)
	c.mu.watches = make(registry)
	c.mu.subs = make(map[*stream[StateEvent]]struct{})
	c.mu.pumps = make(map[stopper]struct{})
	c.mu.changed = make(chan struct{})
	return c, nil
}

// Done returns a channel that is closed when Close is called, for
// goroutines that work on the client's behalf and must stop with it.
func (c *Client) Done() <-chan struct{} { return c.closing }

// Close ends the session: it asks the server to close it (deleting its
// ephemeral nodes at once rather than after the session timeout) when
// connected, waits briefly for the answer, then stops every goroutine of the
// client. Requests still waiting fail with ErrClosed (a write that was sent
// also with ErrUnknownOutcome); every watch channel and state stream is
// closed, dropping events not yet received. Close returns nil, and does
// nothing when called again.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	close(c.closing)
	connected := c.mu.conn != nil
	wait := time.NewTimer(min(c.opts.dialTimeout, c.mu.timeout))
	defer wait.Stop()
	c.mu.Unlock()
	if connected {
		c.sendClose(wait.C)
	}
	c.stopRun()
	c.wg.Wait()
	return nil
}

// sendClose sends the close request and waits for its answer, until
// timeout fires. Like any request it takes an in-flight slot first.
func (c *Client) sendClose(timeout <-chan time.Time) {
	select {
	case c.slots <- struct{}{}:
	case <-timeout:
		return
	}
	c.mu.Lock()
	if c.mu.conn == nil {
		c.mu.Unlock()
		<-c.slots
		return
	}
	cl := &call{op: wire.OpClose, tail: closeTail, internal: true, slot: c.slots, done: make(chan struct{})}
	c.submitLocked(cl)
	c.mu.Unlock()
	select {
	case <-cl.done:
	case <-timeout:
	}
}

// closeTail is the encoded close request after its xid.
var closeTail = []byte(`,"op":"close"}`)

// State returns the session's current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.state
}

// SessionID returns the id of the current session, 0 when it expired.
func (c *Client) SessionID() SessionID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.sessionID
}

// StateEvents returns a stream of the session's state changes. Its first
// event is the last change before the call (StateDisconnected with no
// server if there was none), so the state is never missed; every later
// change follows, in order. The stream is closed when ctx is done or the
// client is closed.
//
// The stream never blocks the client: events wait in an unbounded queue
// behind the channel's buffer, so a consumer that stops reading costs memory
// (state changes are rare: one per connection, loss or expiry).
func (c *Client) StateEvents(ctx context.Context) <-chan StateEvent {
	s := newStream[StateEvent]()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		close(s.out)
		return s.out
	}
	s.push(c.mu.lastEvent)
	c.mu.subs[s] = struct{}{}
	c.startPumpLocked(s, func() { s.run(ctx.Done()) })
	return s.out
}

// stopper is a stream of any type, as startPumpLocked tracks them.
type stopper interface{ stop() }

// startPumpLocked starts the pump goroutine of s, which runs run. The pump
// is tracked until it exits, so that shutdown can stop every pump (even of
// a stream no longer in the watch registry) and Close can join them.
func (c *Client) startPumpLocked(s stopper, run func()) {
	c.mu.pumps[s] = struct{}{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		run()
		c.mu.Lock()
		delete(c.mu.pumps, s)
		if ss, ok := s.(*stream[StateEvent]); ok {
			delete(c.mu.subs, ss)
		}
		c.mu.Unlock()
	}()
}

// NewSession starts a fresh session after the previous one expired, and
// waits until it is established or ctx is done (the client keeps trying in
// the background after that). It is idempotent: when the session has not
// expired, for instance because another goroutine already called
// NewSession, it only waits for the connection. The new session has none of
// the old one's ephemeral nodes or watches; credentials given with WithAuth
// and AddAuth are sent again.
func (c *Client) NewSession(ctx context.Context) error {
	c.mu.Lock()
	if c.mu.state == StateExpired && !c.mu.closed {
		c.setStateLocked(StateDisconnected)
		select {
		case c.newSession <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	if err := c.waitConnected(ctx); err != nil {
		return &OpError{Op: "new_session", Err: err}
	}
	return nil
}

// waitConnected waits until the state is StateConnected; it fails at once
// when the session expired or the client is closed.
func (c *Client) waitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, changed := c.mu.state, c.mu.changed
		c.mu.Unlock()
		switch st {
		case StateConnected:
			return nil
		case StateExpired:
			return ErrSessionExpired
		case StateClosed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setStateLocked changes the state without telling the subscribers.
func (c *Client) setStateLocked(st State) {
	c.mu.state = st
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// emitLocked changes the state and tells the subscribers.
func (c *Client) emitLocked(ev StateEvent) {
	c.setStateLocked(ev.State)
	c.mu.lastEvent = ev
	for s := range c.mu.subs {
		s.push(ev)
	}
}

// expireLocked ends the session: every waiting request fails, every watch
// ends, and the state becomes StateExpired until NewSession.
func (c *Client) expireLocked(cause error) {
	c.log.Warn("coord session expired", "session", c.mu.sessionID, "cause", cause)
	sid := c.mu.sessionID
	c.mu.sessionID, c.mu.password = 0, ""
	c.failPendingLocked(ErrSessionExpired, errUnknownExpired)
	c.endWatchesLocked(ErrSessionExpired, false)
	c.emitLocked(StateEvent{State: StateExpired, SessionID: sid, Err: ErrSessionExpired})
}

// shutdown is the manager's last act: it fails what still waits and closes
// every channel the client handed out.
func (c *Client) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.closed = true
	c.mu.conn = nil
	c.failPendingLocked(ErrClosed, errUnknownClosed)
	c.endWatchesLocked(ErrClosed, true)
	c.setStateLocked(StateClosed)
	for s := range c.mu.pumps {
		s.stop()
	}
}

// failPendingLocked fails every waiting request: a write that was sent gets
// unknownErr, every other request err.
func (c *Client) failPendingLocked(err, unknownErr error) {
	for _, cl := range c.mu.pending {
		e := err
		if cl.write && cl.sent.Load() {
			e = unknownErr
		}
		c.completeLocked(cl, nil, e)
	}
}

// backoff returns the pause before the next attempt after n consecutive
// failed attempts: exponential from 50ms up to 2s, with ±50% jitter. After a
// lost connection (n == 0) it is a short random pause, so that the clients
// of a failed server do not all reconnect in the same instant.
func backoff(n int) time.Duration {
	if n <= 0 {
		return rand.N(50 * time.Millisecond)
	}
	d := 2 * time.Second
	if n < 7 {
		d = min(d, 50*time.Millisecond<<(n-1))
	}
	return d/2 + rand.N(d)
}

// run is the manager goroutine: it connects, serves the connection until it
// drops, and reconnects, failing over across the servers, until Close.
func (c *Client) run(life context.Context) {
	defer c.wg.Done()
	defer c.shutdown()
	next, failures := 0, 0
	for {
		c.mu.Lock()
		st, closed := c.mu.state, c.mu.closed
		c.mu.Unlock()
		if closed || life.Err() != nil {
			return
		}
		if st == StateExpired {
			select {
			case <-c.newSession:
			case <-life.Done():
				return
			}
			continue
		}
		if next > 0 {
			t := time.NewTimer(backoff(failures))
			select {
			case <-t.C:
			case <-life.Done():
				t.Stop()
				return
			}
		}
		server := c.servers[next%len(c.servers)]
		next++
		cn, hs, err := c.handshake(life, server)
		if err != nil {
			if life.Err() != nil {
				return
			}
			if errors.Is(err, errSessionGone) {
				c.mu.Lock()
				c.expireLocked(err)
				c.mu.Unlock()
				failures = 0
				continue
			}
			failures++
			c.log.Info("coord connect failed", "server", server, "err", err)
			c.mu.Lock()
			c.mu.lastErr = err
			c.mu.Unlock()
			continue
		}
		failures = 0
		c.serve(life, cn, hs)
	}
}
