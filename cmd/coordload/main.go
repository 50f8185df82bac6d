package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// errHadErrors makes the exit status non-zero when a run saw errors (the
// result is printed first).
var errHadErrors = errors.New("the run saw errors")

func main() {
	err := newApp(os.Stdout).Run(os.Args)
	if errors.Is(err, errHadErrors) {
		os.Exit(3)
	}
	if err != nil {
		log.Fatalf("coordload: %v", err)
	}
}

const description = `Workloads (one per run):
  write          set of --value-bytes data on a random node of the --keys pool (created under PREFIX/kv)
  read           linearizable get of a random pool node
  read-local     get with "local":true
  mixed          --write-pct sets (default 10), the rest linearizable gets
  watch-fanout   --watchers one-shot data watches on one node over --watch-conns connections and one writer;
                 per round the watches are re-armed (untimed), then latency = from sending the set until the
                 last connection has its event; --rounds rounds after --warmup
  ephemeral-seq  each session loops create(ephemeral_sequential) + delete of the created node
  idle-sessions  --sessions sessions that only send websocket heartbeats at timeout/3 (--heartbeat client or ping:
                 a ping every time, as the Go client and ZooKeeper's on an idle connection; alternate: an unanswered
                 pong every other time); reports the server's CPU
                 (--server-pid, or found by its listening port) over --duration, after --warmup to settle
  mutex          --sessions contenders (one client each, spread over --servers) loop Lock/Unlock of one
                 recipe.Mutex; latency = one Lock call; fencing tokens are checked to increase
  failover       a cluster on this machine: --sessions clients write continuously; each of --rounds rounds
                 kills the leader (SIGKILL), times until the first write sent after the kill is acknowledged, then
                 restarts the server with its own command line and waits for it to be ready

Every session keeps --pipeline requests in flight (1 = closed loop: latency figures;
larger: throughput). Output: a table and one "RESULT key=value ..." line, or -o json.
The exit status is 3 when the run saw any error.`

func newApp(w io.Writer) *cli.App {
	var def Config
	_ = def.Validate()
	return &cli.App{
		Name:            "coordload",
		Usage:           "load generator for coord servers",
		UsageText:       "coordload [options] WORKLOAD",
		Description:     description,
		Writer:          w,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "servers", Value: strings.Join(def.Servers, ","), Usage: "client `HOST:PORT,...` of the servers; sessions are spread round-robin"},
			&cli.IntFlag{Name: "sessions", Value: def.Sessions, Usage: "sessions (one websocket each)"},
			&cli.DurationFlag{Name: "duration", Value: def.Duration, Usage: "measured window"},
			&cli.DurationFlag{Name: "warmup", Value: def.Warmup, Usage: "unmeasured load before the window"},
			&cli.IntFlag{Name: "value-bytes", Value: def.ValueBytes, Usage: "size of written data"},
			&cli.IntFlag{Name: "keys", Value: def.Keys, Usage: "nodes in the read/write pool"},
			&cli.IntFlag{Name: "pipeline", Value: def.Pipeline, Usage: "requests in flight per session (1: closed loop)"},
			&cli.IntFlag{Name: "write-pct", Value: def.WritePct, Usage: "percentage of writes in mixed"},
			&cli.DurationFlag{Name: "session-timeout", Value: def.SessionTimeout, Usage: "requested session timeout"},
			&cli.StringFlag{Name: "prefix", Value: def.Prefix, Usage: "`PATH` of the subtree the tool works in"},
			&cli.IntFlag{Name: "watchers", Value: def.Watchers, Usage: "watch-fanout: watchers of the node"},
			&cli.IntFlag{Name: "watch-conns", Value: def.WatchConns, Usage: "watch-fanout: connections the watchers are spread over"},
			&cli.IntFlag{Name: "rounds", Value: def.Rounds, Usage: "watch-fanout: measured rounds"},
			&cli.IntSliceFlag{Name: "server-pid", Usage: "`PID`s of the servers, for their CPU use (default: the processes listening on the --servers ports)"},
			&cli.StringFlag{Name: "heartbeat", Value: def.Heartbeat, Usage: "idle-sessions: client or ping (a ping every time, as coord's Go client and ZooKeeper's on an idle connection) or alternate (an unanswered pong every other time)"},
			&cli.DurationFlag{Name: "baseline", Value: def.Baseline, Usage: "idle-sessions: measure the server's CPU this long before opening sessions (negative: skip)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write the load tool's own CPU profile (pprof) to `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("want one WORKLOAD argument, got %d (see --help)", c.NArg())
			}
			out := c.String("output")
			if out != "text" && out != "json" {
				return fmt.Errorf("--output %q: want text or json", out)
			}
			cfg := Config{
				Workload:       c.Args().First(),
				Sessions:       c.Int("sessions"),
				Duration:       c.Duration("duration"),
				Warmup:         c.Duration("warmup"),
				ValueBytes:     c.Int("value-bytes"),
				Keys:           c.Int("keys"),
				Pipeline:       c.Int("pipeline"),
				WritePct:       c.Int("write-pct"),
				SessionTimeout: c.Duration("session-timeout"),
				Prefix:         c.String("prefix"),
				Watchers:       c.Int("watchers"),
				WatchConns:     c.Int("watch-conns"),
				Rounds:         c.Int("rounds"),
				Heartbeat:      c.String("heartbeat"),
				ServerPIDs:     c.IntSlice("server-pid"),
				Baseline:       c.Duration("baseline"),
			}
			for _, s := range strings.Split(c.String("servers"), ",") {
				if s = strings.TrimSpace(s); s != "" {
					cfg.Servers = append(cfg.Servers, s)
				}
			}
			if c.IsSet("warmup") && cfg.Warmup == 0 {
				cfg.Warmup = -1 // an explicit 0: no warmup
			}
			if c.IsSet("baseline") && cfg.Baseline == 0 {
				cfg.Baseline = -1
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if f := c.String("cpuprofile"); f != "" {
				stopProfile, err := startCPUProfile(f)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := run(ctx, &cfg)
			if res != nil {
				if out == "json" {
					if werr := res.writeJSON(c.App.Writer); werr != nil {
						return werr
					}
				} else {
					res.writeText(c.App.Writer)
				}
			}
			if err != nil {
				return err
			}
			if res.Errors > 0 {
				return errHadErrors
			}
			return nil
		},
	}
}

// run runs cfg's workload (cfg must be validated). A result may come with
// an error (e.g. interrupted); it then holds what was measured.
func run(ctx context.Context, cfg *Config) (*Result, error) {
	switch cfg.Workload {
	case "mutex":
		return runMutex(ctx, cfg)
	case "failover":
		return runFailover(ctx, cfg)
	case "watch-fanout":
		return runFanout(ctx, cfg)
	case "idle-sessions":
		return runIdle(ctx, cfg)
	default:
		return runLoad(ctx, cfg)
	}
}
