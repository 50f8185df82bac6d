// Command coordd runs one coord server. With no flags it starts a working
// single-server cluster on 127.0.0.1:7181 with its data in ./coord-data.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/server"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		log.Fatalf("coordd: %v", err)
	}
}

// env names the COORD_ environment variable of a flag.
func env(name string) []string {
	return []string{"COORD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

func newApp() *cli.App {
	var def server.Config
	_ = def.Validate() // the defaults, shown in --help
	flags := []cli.Flag{
		&cli.Uint64Flag{Name: "id", EnvVars: env("id"), Usage: "member `ID` (default 1 for a new single server; restarts read it from the data dir)"},
		&cli.StringFlag{Name: "data-dir", EnvVars: env("data-dir"), Value: def.DataDir, Usage: "`DIR` holding the raft log and state (pebble)"},
		&cli.StringFlag{Name: "client-addr", EnvVars: env("client-addr"), Value: def.ClientAddr, Usage: "`HOST:PORT` for clients (websocket /v1/ws, /healthz, /readyz, /v1/status, /metrics)"},
		&cli.StringFlag{Name: "peer-addr", EnvVars: env("peer-addr"), Value: def.PeerAddr, Usage: "`HOST:PORT` for the other members"},
		&cli.StringFlag{Name: "advertise-client-addr", EnvVars: env("advertise-client-addr"), Usage: "client `HOST:PORT` announced to clients and members (default: the bound client address)"},
		&cli.StringFlag{Name: "advertise-peer-addr", EnvVars: env("advertise-peer-addr"), Usage: "peer `HOST:PORT` announced to members (default: the bound peer address)"},
		&cli.StringFlag{Name: "cluster", EnvVars: env("cluster"), Usage: "initial members `1=HOST:PORT,2=...` (advertised peer addresses) when bootstrapping a new cluster; ignored on restart"},
		&cli.StringFlag{Name: "join", EnvVars: env("join"), Usage: "client `HOST:PORT` of a running member: join its cluster (add this member first with `coordctl members add`)"},
		&cli.DurationFlag{Name: "tick-interval", EnvVars: env("tick-interval"), Value: def.TickInterval, Usage: "raft tick"},
		&cli.IntFlag{Name: "election-ticks", EnvVars: env("election-ticks"), Value: def.ElectionTicks, Usage: "election timeout in ticks"},
		&cli.IntFlag{Name: "heartbeat-ticks", EnvVars: env("heartbeat-ticks"), Value: def.HeartbeatTicks, Usage: "leader heartbeat interval in ticks"},
		&cli.Uint64Flag{Name: "snapshot-entries", EnvVars: env("snapshot-entries"), Value: def.SnapshotEntries, Usage: "applied entries between log compactions"},
		&cli.Uint64Flag{Name: "history-entries", EnvVars: env("history-entries"), Value: def.HistoryEntries, Usage: "entries of log and watch history kept behind the applied index"},
		&cli.BoolFlag{Name: "group-commit-wait", EnvVars: env("group-commit-wait"), Value: true, Usage: "let a lone write wait up to one fsync time for the write that, by the recent load, usually follows it, so both share one fsync (false: every write goes to disk at once)"},
		&cli.DurationFlag{Name: "request-timeout", EnvVars: env("request-timeout"), Value: def.RequestTimeout, Usage: "how long a write may wait to be applied"},
		&cli.DurationFlag{Name: "min-session-timeout", EnvVars: env("min-session-timeout"), Value: def.MinSessionTimeout, Usage: "smallest negotiated session timeout"},
		&cli.DurationFlag{Name: "max-session-timeout", EnvVars: env("max-session-timeout"), Value: def.MaxSessionTimeout, Usage: "largest negotiated session timeout"},
		&cli.DurationFlag{Name: "reap-interval", EnvVars: env("reap-interval"), Value: def.ReapInterval, Usage: "how often the leader deletes expired TTL nodes and empty containers"},
		&cli.IntFlag{Name: "max-data-bytes", EnvVars: env("max-data-bytes"), Value: def.MaxDataBytes, Usage: "largest node data (all members must agree)"},
		&cli.IntFlag{Name: "max-frame-bytes", EnvVars: env("max-frame-bytes"), Usage: "largest websocket frame; larger closes with 1009 (default: room for max-data-bytes base64-encoded + 64 KiB)"},
		&cli.IntFlag{Name: "max-multi-ops", EnvVars: env("max-multi-ops"), Value: def.MaxMultiOps, Usage: "most ops in one multi"},
		&cli.IntFlag{Name: "max-path-bytes", EnvVars: env("max-path-bytes"), Value: def.MaxPathBytes, Usage: "longest path"},
		&cli.IntFlag{Name: "max-path-depth", EnvVars: env("max-path-depth"), Value: def.MaxPathDepth, Usage: "most components in a path"},
		&cli.IntFlag{Name: "max-conns-per-ip", EnvVars: env("max-conns-per-ip"), Value: def.MaxConnsPerIP, Usage: "websockets from one client IP; the next gets HTTP 429"},
		&cli.IntFlag{Name: "max-in-flight", EnvVars: env("max-in-flight"), Value: def.MaxInFlight, Usage: "requests in flight per connection; the next answers Throttled (at most 1024)"},
		&cli.IntFlag{Name: "max-outbound-bytes", EnvVars: env("max-outbound-bytes"), Value: def.MaxOutboundBytes, Usage: "bytes queued for a slow client before its connection is closed (code 4000)"},
		&cli.IntFlag{Name: "max-ephemerals-per-session", EnvVars: env("max-ephemerals-per-session"), Value: def.MaxEphemeralsPerSession, Usage: "ephemeral nodes one session may own"},
		&cli.IntFlag{Name: "max-watches-per-session", EnvVars: env("max-watches-per-session"), Value: def.MaxWatchesPerSession, Usage: "watches one connection may hold"},
		&cli.DurationFlag{Name: "handshake-timeout", EnvVars: env("handshake-timeout"), Value: def.HandshakeTimeout, Usage: "deadline for the HTTP/websocket handshake"},
		&cli.DurationFlag{Name: "first-frame-timeout", EnvVars: env("first-frame-timeout"), Value: def.FirstFrameTimeout, Usage: "deadline for the connect frame after the handshake"},
		&cli.StringSliceFlag{Name: "allowed-origins", EnvVars: env("allowed-origins"), Usage: "browser `ORIGIN`s (scheme://host:port) allowed to open websockets besides the server's own"},
		&cli.StringFlag{Name: "super-digest", EnvVars: env("super-digest"), Usage: "ZooKeeper super user `DIGEST` super:base64(sha1(super:password))"},
		&cli.Int64Flag{Name: "min-free-bytes", EnvVars: env("min-free-bytes"), Value: def.MinFreeBytes, Usage: "free space the data dir must keep; below it writes answer QuotaExceeded"},
		&cli.BoolFlag{Name: "pprof", EnvVars: env("pprof"), Usage: "serve Go's profiler at /debug/pprof/ on the client address"},
		&cli.BoolFlag{Name: "test-hooks", EnvVars: env("test-hooks"), Hidden: true, Usage: "enable fault-injection endpoints (tests only)"},
		&cli.StringFlag{Name: "log-level", EnvVars: env("log-level"), Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", EnvVars: env("log-format"), Value: "text", Usage: "text or json"},
	}
	return &cli.App{
		Name:  "coordd",
		Usage: "the coord coordination server",
		Description: "coordd serves a replicated tree of znodes over websockets (PROTOCOL.md).\n" +
			"With no flags it starts a single-server cluster on 127.0.0.1:7181 with its data in ./coord-data.\n" +
			"Every flag can also be set with a COORD_ environment variable, e.g. COORD_DATA_DIR.",
		Version:         server.Version,
		Flags:           flags,
		HideHelpCommand: true,
		Action:          run,
	}
}

func configFrom(c *cli.Context) (server.Config, error) {
	logger, err := newLogger(c.String("log-level"), c.String("log-format"))
	if err != nil {
		return server.Config{}, err
	}
	return server.Config{
		ID:                      c.Uint64("id"),
		DataDir:                 c.String("data-dir"),
		ClientAddr:              explicit(c, "client-addr"),
		PeerAddr:                explicit(c, "peer-addr"),
		AdvertiseClientAddr:     c.String("advertise-client-addr"),
		AdvertisePeerAddr:       c.String("advertise-peer-addr"),
		Cluster:                 c.String("cluster"),
		Join:                    c.String("join"),
		TickInterval:            c.Duration("tick-interval"),
		ElectionTicks:           c.Int("election-ticks"),
		HeartbeatTicks:          c.Int("heartbeat-ticks"),
		SnapshotEntries:         c.Uint64("snapshot-entries"),
		HistoryEntries:          c.Uint64("history-entries"),
		NoGroupCommitWait:       !c.Bool("group-commit-wait"),
		RequestTimeout:          c.Duration("request-timeout"),
		MinSessionTimeout:       c.Duration("min-session-timeout"),
		MaxSessionTimeout:       c.Duration("max-session-timeout"),
		ReapInterval:            c.Duration("reap-interval"),
		MaxDataBytes:            c.Int("max-data-bytes"),
		MaxFrameBytes:           c.Int("max-frame-bytes"),
		MaxMultiOps:             c.Int("max-multi-ops"),
		MaxPathBytes:            c.Int("max-path-bytes"),
		MaxPathDepth:            c.Int("max-path-depth"),
		MaxConnsPerIP:           c.Int("max-conns-per-ip"),
		MaxInFlight:             c.Int("max-in-flight"),
		MaxOutboundBytes:        c.Int("max-outbound-bytes"),
		MaxEphemeralsPerSession: c.Int("max-ephemerals-per-session"),
		MaxWatchesPerSession:    c.Int("max-watches-per-session"),
		HandshakeTimeout:        c.Duration("handshake-timeout"),
		FirstFrameTimeout:       c.Duration("first-frame-timeout"),
		AllowedOrigins:          c.StringSlice("allowed-origins"),
		SuperDigest:             c.String("super-digest"),
		TestHooks:               c.Bool("test-hooks"),
		Pprof:                   c.Bool("pprof"),
		MinFreeBytes:            c.Int64("min-free-bytes"),
		Logger:                  logger,
	}, nil
}

// explicit returns a flag's value only when it was given, so that a restart
// reuses the addresses stored in the data dir.
func explicit(c *cli.Context, name string) string {
	if c.IsSet(name) {
		return c.String(name)
	}
	return ""
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", c.Args().Slice())
	}
	cfg, err := configFrom(c)
	if err != nil {
		return err
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		_ = srv.Close(context.Background())
		return err
	}
	// Tests and scripts find the bound addresses here (useful with port 0).
	fmt.Printf("coordd ready id=%d client=%s peer=%s\n", srv.ID(), srv.ClientAddr(), srv.PeerAddr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigs:
		cfg.Logger.Info("stopping", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Close waits for every goroutine, and one stuck in a storage that
		// no longer answers would hold it forever: exit anyway after the
		// grace period. Every acknowledged write is on disk already.
		closed := make(chan error, 1)
		go func() { closed <- srv.Close(ctx) }()
		select {
		case err := <-closed:
			return err
		case <-time.After(15 * time.Second):
			cfg.Logger.Error("did not stop within 15s of the signal; exiting without a clean shutdown")
			fmt.Fprintln(os.Stderr, "coordd: did not stop in time")
			os.Exit(1)
			return nil
		}
	case ferr := <-srv.Done():
		if errors.Is(ferr, server.ErrRemoved) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Close(ctx)
			cancel()
			cfg.Logger.Warn("this member was removed from the cluster; exiting")
			os.Exit(3)
		}
		// No Close: a goroutine may be stuck in the storage that failed.
		// A failed fsync, a corrupt store, a refused data dir: exit
		// non-zero at once, without acknowledging anything more.
		cfg.Logger.Error("fatal", "err", ferr)
		fmt.Fprintf(os.Stderr, "coordd: fatal: %v\n", ferr)
		os.Exit(2)
		return errors.New("unreachable")
	}
}
