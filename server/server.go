package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/raftstore"
	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/session"
	"github.com/coord-dev/coord/watch"
	"github.com/coord-dev/coord/znode"
)

// Version is the server's version, reported by /v1/status.
const Version = "0.1.0"

// Server is one coordd member: a raft node over pebble, the znode state
// machine, and the client endpoints. Create it with New, run it with Start,
// stop it with Close.
type Server struct {
	cfg         Config
	log         *slog.Logger
	id          uint64
	incarnation uint64
	stored      identity // the data dir's identity record
	clusterIDv  atomic.Uint64
	removed     atomic.Bool
	soleVoter   atomic.Bool  // this server is the cluster's only voter
	peerHints   atomic.Value // map[uint64]string: peer addresses known before the configuration (joining)
	db          *pebble.DB
	pebbleStats *pebbleCollector // pebble's metrics on /metrics
	rlog        *raftstore.Store
	state       *znode.Store

	watches *watch.Registry
	metrics *metrics

	// Channels into the raft goroutine (node.go), which owns the RawNode.
	propc    chan *proposal
	readc    chan *readRequest
	recvc    chan raftMessage
	ctrlc    chan func(r *raftLoop)
	applyc   chan []applyItem
	restorec chan restoreRequest

	waiters  waitRegistry
	applied  appliedIndex
	parking  parking       // reads waiting for a deletion (waitgone.go)
	restores atomic.Uint64 // snapshot restores completed (apply.go)
	gone     []*parkedRead // parked reads an apply's publish took; apply goroutine only

	// Published raft status, written by the raft goroutine.
	term     atomic.Uint64
	commit   atomic.Uint64
	leader   atomic.Uint64
	role     atomic.Value // string: leader, follower, candidate, learner
	members  atomic.Pointer[membership]
	nextProp atomic.Uint64

	sessions  sessionState
	disk      *diskGuard
	crash     crashHook // test hook: crash points
	conns     connRegistry
	wsBuffers websocket.BufferPool // shared by handshakes

	clientLn net.Listener
	peerLn   net.Listener
	httpSrv  *http.Server
	peers    *transport

	stopOnce  sync.Once     // Close
	stopcOnce sync.Once     // closing stopc
	stopc     chan struct{} // closed by Close
	fatalc    chan error    // receives the first fatal error
	fatalOne  sync.Once
	wg        sync.WaitGroup
}

// New opens the data dir and prepares the server; it does not listen yet.
func New(cfg Config) (*Server, error) {
	unset := map[string]bool{"client": cfg.ClientAddr == "", "peer": cfg.PeerAddr == ""}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// Snapshots staged by a run that died while receiving them.
	stale, _ := filepath.Glob(filepath.Join(cfg.DataDir, stagedSnapshots))
	for _, f := range stale {
		_ = os.Remove(f)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		watches:  watch.NewRegistry(),
		propc:    make(chan *proposal, 4096),
		readc:    make(chan *readRequest, 4096),
		recvc:    make(chan raftMessage, 4096),
		ctrlc:    make(chan func(*raftLoop), 64),
		applyc:   make(chan []applyItem, 64),
		restorec: make(chan restoreRequest),
		stopc:    make(chan struct{}),
		fatalc:   make(chan error, 1),
	}
	s.applied.init()
	s.waiters.init()
	s.sessions.init()
	s.conns.init()
	s.wsBuffers = &sync.Pool{}
	s.metrics = newMetrics(s)
	s.role.Store("follower")

	s.disk = &diskGuard{dir: cfg.DataDir, minFree: uint64(cfg.MinFreeBytes)}
	opts := &pebble.Options{Logger: pebbleLogger{s}, EventListener: &pebble.EventListener{BackgroundError: s.pebbleBackgroundError}}
	znode.TunePebble(opts)
	if cfg.TestHooks {
		opts.FS = s.disk.faultFS()
	}
	db, err := pebble.Open(filepath.Join(cfg.DataDir, "db"), opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble: %w", err)
	}
	s.db = db
	s.pebbleStats = newPebbleCollector(db)
	s.metrics.reg.MustRegister(s.pebbleStats)
	ok := false
	defer func() {
		if !ok {
			s.closeStores()
		}
	}()
	s.rlog, err = raftstore.Open(db, raftstore.Config{Logger: s.log.With("component", "raftlog")})
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	s.state, err = znode.Open(db, znode.Config{
		MaxDataBytes: cfg.MaxDataBytes,
		SuperDigest:  cfg.SuperDigest,
		Logger:       s.log.With("component", "znode"),
		RestoreGate: func(index uint64) error {
			s.crashPoint(CrashRestoreBeforeCommit)
			// A snapshot taken before what this server applied since (a
			// stream that was overtaken, or one a new leader sends from
			// an older state) would take the state back: entries applied
			// in between would be lost here and nowhere else.
			if applied := s.state.AppliedIndex(); index <= applied {
				return fmt.Errorf("%w: the snapshot's state is at %d, this server's at %d", errSnapshotBehind, index, applied)
			}
			if s.disk.isFull() {
				return s.disk.err()
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if err := s.loadIdentity(); err != nil {
		return nil, err
	}
	s.applyStoredAddrs(unset)
	ok = true
	return s, nil
}

// ID returns this member's id.
func (s *Server) ID() uint64 { return s.id }

// ClientAddr returns the bound client address (after Start).
func (s *Server) ClientAddr() string { return s.clientLn.Addr().String() }

// PeerAddr returns the bound peer address (after Start).
func (s *Server) PeerAddr() string { return s.peerLn.Addr().String() }

// Done is closed... it receives the error that stopped the server when a
// fatal error (a failed fsync, a corrupt store) stopped it.
func (s *Server) Done() <-chan error { return s.fatalc }

// Start binds the listeners and starts the raft, apply and client goroutines.
func (s *Server) Start() error {
	var err error
	s.clientLn, err = net.Listen("tcp", s.cfg.ClientAddr)
	if err != nil {
		return fmt.Errorf("listen client address: %w", err)
	}
	s.peerLn, err = net.Listen("tcp", s.cfg.PeerAddr)
	if err != nil {
		s.clientLn.Close()
		return fmt.Errorf("listen peer address: %w", err)
	}
	// Only advertise addresses given explicitly are remembered; the others
	// follow the listen addresses.
	advClient, advPeer := s.cfg.AdvertiseClientAddr, s.cfg.AdvertisePeerAddr
	if s.cfg.AdvertiseClientAddr == "" {
		s.cfg.AdvertiseClientAddr = s.clientLn.Addr().String()
	}
	if s.cfg.AdvertisePeerAddr == "" {
		s.cfg.AdvertisePeerAddr = s.peerLn.Addr().String()
	}
	if err := s.saveAddrs(s.clientLn.Addr().String(), s.peerLn.Addr().String(), advClient, advPeer); err != nil {
		s.clientLn.Close()
		s.peerLn.Close()
		return err
	}
	rn, err := s.newRaftNode()
	if err != nil {
		s.clientLn.Close()
		s.peerLn.Close()
		return err
	}
	s.peers = newTransport(s)
	s.httpSrv = s.newHTTPServer()

	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.runRaft(rn) }()
	go func() { defer s.wg.Done(); s.runApply() }()
	go func() { defer s.wg.Done(); s.runLeaderDuties() }()
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(s.clientLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fatal(fmt.Errorf("client listener: %w", err))
		}
	}()
	s.peers.start(s.peerLn)
	s.log.Info("coordd started", "id", s.id, "client_addr", s.clientLn.Addr().String(),
		"peer_addr", s.peerLn.Addr().String(), "data_dir", s.cfg.DataDir, "applied", s.state.AppliedIndex())
	return nil
}

// Close stops the server: it transfers leadership when it leads a cluster,
// closes client connections, stops raft and closes the stores. ctx bounds
// the leadership transfer.
//
// After a fatal error (Done) do not Close: a goroutine may be stuck in the
// storage that failed; exit the process instead, as cmd/coordd does.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.httpSrv != nil {
			s.transferLeadershipOnClose(ctx)
			_ = s.httpSrv.Close() // closes the listener; hijacked websockets are closed below
			s.conns.closeAll(closeServerStop, "server stopping")
			s.closeStop()
			s.peers.stop()
			s.wg.Wait()
			// The raft loop is gone. A request can still slip into its
			// buffered channels (a send racing with stopc): answer such
			// requests, or their connections would wait for them forever.
			drained := make(chan struct{})
			go s.drainAfterStop(drained)
			s.conns.wait()
			close(drained)
		}
		err = s.closeStores()
	})
	return err
}

// drainAfterStop answers whatever reaches the raft loop's channels after
// it stopped, until done closes.
func (s *Server) drainAfterStop(done <-chan struct{}) {
	for {
		select {
		case p := <-s.propc:
			p.done(nil, errStopped)
		case rq := <-s.readc:
			rq.done(0, errStopped)
		case <-done:
			return
		}
	}
}

// closeStop closes stopc (once), stopping every goroutine that could
// answer a request.
func (s *Server) closeStop() { s.stopcOnce.Do(func() { close(s.stopc) }) }

func (s *Server) closeStores() error {
	var errs []error
	if s.state != nil {
		errs = append(errs, s.state.Close())
	}
	if s.db != nil {
		s.pebbleStats.close() // set with s.db
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// fatal records a fatal error and stops every goroutine that could ack a
// request. The process is expected to exit (cmd/coordd does so on Done).
//
// It never waits for other goroutines (it may run on one of them, e.g. the
// raft goroutine inside a failed pebble commit), so it cannot deadlock with
// Close.
func (s *Server) fatal(err error) {
	s.fatalOne.Do(func() {
		s.log.Error("fatal error: stopping", "err", err)
		s.closeStop()
		s.fatalc <- err
		go s.conns.closeAll(closeServerStop, "server stopping")
	})
}

func (s *Server) stopped() bool {
	select {
	case <-s.stopc:
		return true
	default:
		return false
	}
}

// newProposalID returns an id unique among this server's proposals: the
// member id in the top 16 bits and a counter started from the clock, so a
// restarted server does not reuse ids still in the log.
func (s *Server) newProposalID() uint64 {
	return s.id<<48 | s.nextProp.Add(1)&(1<<48-1)
}

// pebbleLogger routes pebble's logs to slog. Pebble calls Fatalf when it
// cannot write or sync its WAL; if Fatalf returned, the commit would report
// success, so it stops the server and never returns.
type pebbleLogger struct{ s *Server }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.s.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf("storage: "+format, args...)
	l.s.fatal(err)
	select {} // the process exits on Done; never let the commit report success
}

// pebbleBackgroundError handles an error of pebble's background work
// (flushes, compactions). Pebble only logs them and tries again; a flush
// that cannot sync its table then never completes, memtables pile up and
// every later commit stalls, so a server whose disk fails this way would
// hang instead of stopping. An I/O error stops the server, as a failed
// WAL sync does (pebbleLogger.Fatalf). A full disk does not: the disk
// guard stalls writes until space is freed (disk.go), and the flush is
// retried then.
func (s *Server) pebbleBackgroundError(err error) {
	s.log.Error("background error: "+err.Error(), "component", "pebble")
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, pebble.ErrCancelledCompaction) {
		return
	}
	s.fatal(fmt.Errorf("storage: pebble background work failed: %w", err))
}

// waitStopped returns a context cancelled when the server stops.
func (s *Server) stopContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

var _ = wire.OK
var _ = session.NewID
var _ = time.Second
