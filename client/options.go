package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	// DefaultSessionTimeout is the session timeout asked of the server; the
	// server negotiates it into its own bounds (by default 2s to 60s).
	DefaultSessionTimeout = 10 * time.Second
	// DefaultDialTimeout bounds one attempt to open a websocket and
	// establish or resume the session on it.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxInFlight is the default and largest number of requests in
	// flight on a connection: the server's own limit.
	DefaultMaxInFlight = 1024
	// maxWaitingReads bounds the reads waiting on the server (WaitGone),
	// which do not count against the in-flight limit: the server lets as
	// many wait on one connection.
	maxWaitingReads = 1024
)

// Option configures Connect.
type Option func(*options)

// options holds what the Options set. The zero value means "default" for
// every field; validate fills in defaults and rejects nonsense.
type options struct {
	sessionTimeout time.Duration
	dialTimeout    time.Duration
	logger         *slog.Logger
	maxInFlight    int
	tls            *tls.Config
	auths          []authCred
	noShuffle      bool // tests: try servers in the order given
}

// authCred is one credential replayed on every new connection.
type authCred struct {
	scheme, credential string
}

// WithSessionTimeout sets the session timeout asked of the server (default
// DefaultSessionTimeout). The server may change it; the client then pings
// after about a third of the negotiated timeout without traffic and drops a
// connection that stayed silent for two thirds of it.
func WithSessionTimeout(d time.Duration) Option {
	return func(o *options) { o.sessionTimeout = d }
}

// WithDialTimeout bounds each attempt to open a websocket to one server and
// establish or resume the session on it (default DefaultDialTimeout). While
// it resumes a session, the client gives the dial and the connect request
// less when the session timeout is short (see resumeAttemptTimeout); the
// rest of the handshake (credentials, watches) has the dial timeout.
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

// WithLogger sets the logger of connection events (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithMaxInFlight bounds the number of requests sent and not yet answered
// (default and maximum DefaultMaxInFlight, the server's own limit). A request
// beyond it waits, as long as its context allows, for an earlier one to be
// answered. Reads that wait on the server (WaitGone) are not counted: they
// have a pool of their own, of 1,024.
func WithMaxInFlight(n int) Option {
	return func(o *options) { o.maxInFlight = n }
}

// WithTLSConfig is reserved for connecting with TLS (wss://). It is not yet
// supported: Connect fails with an error matching ErrUnimplemented.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithAuth adds an identity to every session of the client, as AddAuth does:
// the credential is sent on every connection before any request.
func WithAuth(scheme, credential string) Option {
	return func(o *options) { o.auths = append(o.auths, authCred{scheme, credential}) }
}

// withServersInOrder makes the client try the servers in the order given
// instead of a random one first. For tests.
func withServersInOrder() Option {
	return func(o *options) { o.noShuffle = true }
}

// validate fills in defaults and checks the options.
func (o *options) validate() error {
	if o.sessionTimeout == 0 {
		o.sessionTimeout = DefaultSessionTimeout
	}
	if o.dialTimeout == 0 {
		o.dialTimeout = DefaultDialTimeout
	}
	if o.maxInFlight == 0 {
		o.maxInFlight = DefaultMaxInFlight
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.sessionTimeout < time.Millisecond:
		return fmt.Errorf("%w: session timeout %v is not positive", ErrBadArguments, o.sessionTimeout)
	case o.dialTimeout < 0:
		return fmt.Errorf("%w: dial timeout %v is negative", ErrBadArguments, o.dialTimeout)
	case o.maxInFlight < 1 || o.maxInFlight > DefaultMaxInFlight:
		return fmt.Errorf("%w: max in flight %d not in [1, %d]", ErrBadArguments, o.maxInFlight, DefaultMaxInFlight)
	case o.tls != nil:
		return fmt.Errorf("%w: TLS is not yet supported", ErrUnimplemented)
	}
	for _, a := range o.auths {
		if a.scheme == "" {
			return fmt.Errorf("%w: auth with an empty scheme", ErrBadArguments)
		}
	}
	return nil
}
