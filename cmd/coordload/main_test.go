package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coord-dev/coord/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestWorkloads runs every workload for about a second against a real
// coordd with a few sessions: each must finish with ops > 0 and no error.
func TestWorkloads(t *testing.T) {
	nd := testcluster.Start(t, 1, testcluster.Options{}).Nodes[0]
	base := Config{
		Servers:        []string{nd.ClientAddr()},
		Sessions:       4,
		Duration:       time.Second,
		Warmup:         200 * time.Millisecond,
		Keys:           50,
		SessionTimeout: 2 * time.Second,
		ServerPIDs:     []int{nd.Pid()},
	}
	for _, tc := range []struct {
		workload string
		tweak    func(*Config)
	}{
		{"write", nil},
		{"read", nil},
		{"read-local", nil},
		{"mixed", func(c *Config) { c.Pipeline = 8 }},
		{"write", func(c *Config) { c.Pipeline = 32 }},
		{"ephemeral-seq", func(c *Config) { c.Pipeline = 2 }},
		{"watch-fanout", func(c *Config) { c.Watchers, c.WatchConns, c.Rounds = 20, 6, 30 }},
		{"idle-sessions", func(c *Config) { c.Sessions, c.Baseline = 20, 200*time.Millisecond }},
		{"mutex", nil},
	} {
		cfg := base
		cfg.Workload = tc.workload
		if tc.tweak != nil {
			tc.tweak(&cfg)
		}
		t.Run(fmt.Sprintf("%s/pipeline=%d", tc.workload, max(cfg.Pipeline, 1)), func(t *testing.T) {
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := run(ctx, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res.writeText(&out)
			t.Logf("\n%s", out.String())
			if res.Ops == 0 {
				t.Errorf("no %s measured", res.Unit)
			}
			if res.Errors != 0 {
				t.Errorf("%d errors: %v %v", res.Errors, res.ErrorsByCode, res.ErrorSamples)
			}
			if res.ServerCPUPct == nil {
				t.Errorf("server CPU not measured: %v", res.Notes)
			}
			if res.Unit == "ops" && (res.Latency == nil || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50) {
				t.Errorf("implausible latency %+v", res.Latency)
			}
			if tc.workload == "mixed" && len(res.ByOp) != 2 {
				t.Errorf("mixed: want get and set, got %+v", res.ByOp)
			}
			if tc.workload == "idle-sessions" && res.BaselineCPUPct == nil {
				t.Errorf("idle-sessions: no baseline")
			}
		})
	}
}

// TestCLI checks the command line: the RESULT line, -o json, the server pid
// found by its port.
func TestCLI(t *testing.T) {
	nd := testcluster.Start(t, 1, testcluster.Options{}).Nodes[0]
	args := []string{"coordload", "--servers", nd.ClientAddr(), "--sessions", "2", "--duration", "500ms", "--warmup", "0", "--keys", "10"}

	var out bytes.Buffer
	if err := newApp(&out).Run(append(args, "read")); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var result string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "RESULT ") {
			result = l
		}
	}
	for _, want := range []string{"workload=read ", "sessions=2 ", "errors=0 ", "ops_per_s=", "p99_ms=", "server_cpu_pct="} {
		if !strings.Contains(result, want) {
			t.Errorf("RESULT line %q lacks %q\n%s", result, want, out.String())
		}
	}

	out.Reset()
	if err := newApp(&out).Run(append(args, "-o", "json", "write")); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if res.Workload != "write" || res.Ops == 0 || res.Errors != 0 || res.Latency == nil {
		t.Errorf("-o json: %+v", res)
	}
	if len(res.ServerPIDs) != 1 || res.ServerPIDs[0] != nd.Pid() {
		t.Errorf("server pid found by port: %v, want %d (%v)", res.ServerPIDs, nd.Pid(), res.Notes)
	}

	if err := newApp(&out).Run(append(args, "nonsense")); err == nil || errors.Is(err, errHadErrors) {
		t.Errorf("unknown workload: %v", err)
	}
}

// TestFailover kills the leader of a real 3-server cluster twice and checks
// that each round measured a failover and brought the server back.
func TestFailover(t *testing.T) {
	cl := testcluster.Start(t, 3, testcluster.Options{})
	cfg := Config{Workload: "failover", Servers: cl.ClientAddrs(), Sessions: 3, Rounds: 2, SessionTimeout: 5 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The killed servers are restarted by the tool, outside testcluster:
	// make sure they go when the test ends.
	t.Cleanup(func() {
		for _, a := range cfg.Servers {
			if pid, err := findListener(a); err == nil && pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	res, err := run(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 2 || res.Latency == nil || res.Latency.Max <= 0 {
		t.Fatalf("failover result %+v", res)
	}
	for _, a := range cfg.Servers {
		if !ready(ctx, a) {
			t.Fatalf("%s not ready after the run", a)
		}
	}
}
