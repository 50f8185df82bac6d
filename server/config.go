package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

// Config configures one coordd server. Every field maps one-to-one to a
// command-line flag of cmd/coordd; the zero value of each field means the
// documented default, applied by Validate.
type Config struct {
	// ID is this member's id in the raft group. 0 means 1 when bootstrapping
	// a new single-server cluster, or the id stored in DataDir on restart.
	ID uint64
	// DataDir holds the pebble database (raft log and state). Default "coord-data".
	DataDir string
	// ClientAddr is where clients connect (websocket and HTTP). Default 127.0.0.1:7181.
	ClientAddr string
	// PeerAddr is where the other members connect. Default 127.0.0.1:7188.
	PeerAddr string
	// AdvertiseClientAddr and AdvertisePeerAddr are the addresses announced to
	// clients and peers. Default: the listen addresses (after binding, so
	// port 0 advertises the chosen port).
	AdvertiseClientAddr string
	AdvertisePeerAddr   string
	// Cluster seeds the member list when a new cluster is bootstrapped:
	// "1=host:port,2=host:port" (advertised peer addresses). Empty: a
	// single-member cluster of this server. Ignored on restart.
	Cluster string
	// Join, when set, is the client address of a running member; a server
	// with an empty data dir then joins that cluster (it must have been
	// added with the admin endpoint first).
	Join string

	// TickInterval is raft's logical clock tick. Default 100ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Default 10.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks. Default 1.
	HeartbeatTicks int
	// SnapshotEntries is how many applied entries trigger a log compaction.
	// Default 10000.
	SnapshotEntries uint64
	// HistoryEntries is how many entries of log and change history are kept
	// behind the compaction point for watch replay. Default 50000.
	HistoryEntries uint64
	// RequestTimeout bounds how long a write waits to be applied. Default 10s.
	RequestTimeout time.Duration

	// MinSessionTimeout and MaxSessionTimeout bound negotiated session
	// timeouts. Defaults 2s and 60s.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// ReapInterval is how often the leader looks for expired TTL nodes and
	// empty containers. Default 1s.
	ReapInterval time.Duration

	// NoGroupCommitWait turns off the leader's short wait, learned from
	// the load, that lets a lone write share its fsync with the write that
	// usually follows it closely (see groupCommit).
	NoGroupCommitWait bool

	// MaxDataBytes is the largest data a node holds. Default 1 MiB. Every
	// member must use the same value.
	MaxDataBytes int
	// MaxFrameBytes is the largest websocket frame read; a larger one closes
	// the websocket with 1009. Default: enough for MaxDataBytes base64-encoded
	// plus 64 KiB of fields.
	MaxFrameBytes int
	// MaxMultiOps is the most ops in one multi. Default 128.
	MaxMultiOps int
	// MaxPathBytes and MaxPathDepth bound paths. Defaults 1024 and 128.
	MaxPathBytes int
	MaxPathDepth int
	// MaxConnsPerIP bounds websocket connections from one client IP.
	// Default 4096.
	MaxConnsPerIP int
	// MaxInFlight bounds requests in flight on one connection; the next
	// answers Throttled. Default 1024 (it may not exceed
	// znode.ResultsPerSession, which exactly-once relies on).
	MaxInFlight int
	// MaxOutboundBytes bounds frames queued for one slow client; past it the
	// connection is closed with code 4000 (the session lives on). Default 64 MiB.
	MaxOutboundBytes int
	// MaxEphemeralsPerSession and MaxWatchesPerSession bound what one
	// session may hold. Defaults 100000 each.
	MaxEphemeralsPerSession int
	MaxWatchesPerSession    int
	// HandshakeTimeout bounds reading the HTTP upgrade request; FirstFrameTimeout
	// bounds the wait for `connect` after it. Defaults 5s and 10s.
	HandshakeTimeout  time.Duration
	FirstFrameTimeout time.Duration
	// AllowedOrigins lists browser origins (scheme://host[:port]) allowed to
	// open websockets besides the server's own.
	AllowedOrigins []string
	// SuperDigest is ZooKeeper's super user digest "super:base64(sha1(super:pw))".
	SuperDigest string

	// MinFreeBytes is the free space the data dir's file system must keep;
	// below it writes answer QuotaExceeded (reads go on). Default 64 MiB.
	MinFreeBytes int64

	// Pprof serves Go's profiler at /debug/pprof/ on the client address.
	Pprof bool

	// TestHooks enables fault-injection endpoints for tests (/debug/...).
	// Never on in production.
	TestHooks bool

	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
}

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if c.DataDir == "" {
		c.DataDir = "coord-data"
	}
	if c.ClientAddr == "" {
		c.ClientAddr = "127.0.0.1:7181"
	}
	if c.PeerAddr == "" {
		c.PeerAddr = "127.0.0.1:7188"
	}
	def(&c.TickInterval, 100*time.Millisecond)
	defInt(&c.ElectionTicks, 10)
	defInt(&c.HeartbeatTicks, 1)
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10000
	}
	if c.HistoryEntries == 0 {
		c.HistoryEntries = 50000
	}
	def(&c.RequestTimeout, 10*time.Second)
	def(&c.MinSessionTimeout, 2*time.Second)
	def(&c.MaxSessionTimeout, 60*time.Second)
	def(&c.ReapInterval, time.Second)
	defInt(&c.MaxDataBytes, wire.DefaultMaxDataBytes)
	defInt(&c.MaxFrameBytes, (c.MaxDataBytes+2)/3*4+64<<10)
	defInt(&c.MaxMultiOps, 128)
	defInt(&c.MaxPathBytes, wire.MaxPathBytes)
	defInt(&c.MaxPathDepth, 128)
	defInt(&c.MaxConnsPerIP, 4096)
	defInt(&c.MaxInFlight, 1024)
	defInt(&c.MaxOutboundBytes, 64<<20)
	defInt(&c.MaxEphemeralsPerSession, 100000)
	defInt(&c.MaxWatchesPerSession, 100000)
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 64 << 20
	}
	def(&c.HandshakeTimeout, 5*time.Second)
	def(&c.FirstFrameTimeout, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}

	var errs []error
	if c.HeartbeatTicks >= c.ElectionTicks {
		errs = append(errs, fmt.Errorf("heartbeat ticks (%d) must be fewer than election ticks (%d)", c.HeartbeatTicks, c.ElectionTicks))
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout {
		errs = append(errs, fmt.Errorf("min session timeout %v exceeds max %v", c.MinSessionTimeout, c.MaxSessionTimeout))
	}
	if c.MaxSessionTimeout < 2*c.TickInterval*time.Duration(c.ElectionTicks) {
		errs = append(errs, fmt.Errorf("max session timeout %v must be at least two election timeouts", c.MaxSessionTimeout))
	}
	if c.MaxInFlight > 1024 {
		errs = append(errs, fmt.Errorf("max in-flight %d exceeds 1024, the results kept per session for exactly-once", c.MaxInFlight))
	}
	if c.MaxPathBytes > wire.MaxPathBytes {
		errs = append(errs, fmt.Errorf("max path bytes %d exceeds the protocol's %d", c.MaxPathBytes, wire.MaxPathBytes))
	}
	if c.MaxFrameBytes < c.MaxDataBytes {
		errs = append(errs, fmt.Errorf("max frame bytes %d is below max data bytes %d", c.MaxFrameBytes, c.MaxDataBytes))
	}
	for _, a := range []struct{ name, addr string }{{"client", c.ClientAddr}, {"peer", c.PeerAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s address %q: %w", a.name, a.addr, err))
		}
	}
	if c.HistoryEntries < c.SnapshotEntries/10 {
		errs = append(errs, errors.New("history entries must be at least a tenth of snapshot entries"))
	}
	return errors.Join(errs...)
}
