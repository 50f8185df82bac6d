package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The workloads, in the order --help lists them.
var workloads = []string{"write", "read", "read-local", "mixed", "watch-fanout", "ephemeral-seq", "idle-sessions", "mutex", "failover"}

// Config is one run. Each field maps to the flag of the same name; zero
// values take the documented defaults in Validate.
type Config struct {
	Workload string
	// Servers are client addresses; sessions are spread over them round-robin.
	// Default 127.0.0.1:7181.
	Servers []string
	// Sessions is the number of sessions (one websocket each). Default 32.
	Sessions int
	// Duration is the measured window. Default 20s.
	Duration time.Duration
	// Warmup runs load before the window; it is not measured. Default 3s;
	// negative means none.
	Warmup time.Duration
	// ValueBytes is the size of written data. Default 100.
	ValueBytes int
	// Keys is the number of nodes in the pool under Prefix/kv. Default 1000.
	Keys int
	// Pipeline is the requests each session keeps in flight (1: closed
	// loop). Default 1, at most 1024 (the server's per-connection cap).
	Pipeline int
	// WritePct is the share of writes in mixed. Default 10.
	WritePct int
	// SessionTimeout is the requested session timeout. Default 10s.
	SessionTimeout time.Duration
	// Prefix is the subtree the tool works in. Default /bench.
	Prefix string

	// Watchers, WatchConns and Rounds shape watch-fanout. Defaults 1000, 32
	// and 200.
	Watchers   int
	WatchConns int
	Rounds     int

	// ServerPIDs are the coordd processes whose CPU use is reported
	// (required for idle-sessions unless they can be found by their
	// listening port on this machine).
	ServerPIDs []int
	// Baseline is how long idle-sessions measures the server's CPU before
	// opening sessions. Default 5s; negative means skip.
	Baseline time.Duration
	// Heartbeat is how idle-sessions keeps sessions alive: "client" (the
	// default) as coord's Go client does on an idle connection, and "ping"
	// as ZooKeeper's clients do: a ping every time; "alternate", an
	// unsolicited pong (which the server does not answer) every other time,
	// as the Go client did before it gave up on a silent connection after
	// two thirds of the timeout (kept to compare).
	Heartbeat string
}

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	if len(c.Servers) == 0 {
		c.Servers = []string{"127.0.0.1:7181"}
	}
	defInt(&c.Sessions, 32)
	defDur(&c.Duration, 20*time.Second)
	defDur(&c.Warmup, 3*time.Second)
	c.Warmup = max(c.Warmup, 0)
	defInt(&c.ValueBytes, 100)
	defInt(&c.Keys, 1000)
	defInt(&c.Pipeline, 1)
	defInt(&c.WritePct, 10)
	defDur(&c.SessionTimeout, 10*time.Second)
	if c.Prefix == "" {
		c.Prefix = "/bench"
	}
	defInt(&c.Watchers, 1000)
	defInt(&c.WatchConns, 32)
	defInt(&c.Rounds, 200)
	defDur(&c.Baseline, 5*time.Second)
	c.Baseline = max(c.Baseline, 0)
	if c.Heartbeat == "" {
		c.Heartbeat = "client"
	}

	var errs []error
	if !slices.Contains([]string{"client", "ping", "alternate"}, c.Heartbeat) {
		errs = append(errs, fmt.Errorf("--heartbeat must be client, ping or alternate, not %q", c.Heartbeat))
	}
	if !slices.Contains(workloads, c.Workload) {
		errs = append(errs, fmt.Errorf("unknown workload %q: want one of %s", c.Workload, strings.Join(workloads, ", ")))
	}
	for _, s := range c.Servers {
		if s == "" || strings.Contains(s, "/") {
			errs = append(errs, fmt.Errorf("server %q: want HOST:PORT", s))
		}
	}
	if c.Sessions < 0 || c.Keys < 0 || c.ValueBytes < 0 || c.Watchers < 0 || c.WatchConns < 0 || c.Rounds < 0 {
		errs = append(errs, errors.New("counts must not be negative"))
	}
	if c.Pipeline < 1 || c.Pipeline > 1024 {
		errs = append(errs, fmt.Errorf("pipeline %d: want 1..1024 (the server answers Throttled past its max-in-flight)", c.Pipeline))
	}
	if c.WritePct < 0 || c.WritePct > 100 {
		errs = append(errs, fmt.Errorf("write-pct %d: want 0..100", c.WritePct))
	}
	if c.Duration < 0 {
		errs = append(errs, errors.New("duration must be positive"))
	}
	if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
		errs = append(errs, fmt.Errorf("prefix %q: want an absolute path without a trailing /", c.Prefix))
	}
	return errors.Join(errs...)
}

func defInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func defDur(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}
