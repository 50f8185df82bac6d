package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// runFailover measures how long a cluster on this machine takes to
// acknowledge a write after its leader is killed: --sessions clients write
// continuously through the Go client (which fails over); each of --rounds
// rounds kills the leader with SIGKILL, times until the first write
// acknowledged after the kill, then restarts the killed server with its
// original command line and waits for the cluster to settle.
func runFailover(ctx context.Context, cfg *Config) (*Result, error) {
	res := newResult(cfg)
	res.Unit = "failovers"
	if len(cfg.Servers) < 3 {
		return nil, errors.New("failover needs --servers of a cluster of 3 or 5 on this machine")
	}
	var lastAck atomic.Int64
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var wg sync.WaitGroup
	defer wg.Wait()
	var errs errTally = map[string]*errCount{}
	var errMu sync.Mutex
	for i := 0; i < cfg.Sessions; i++ {
		c, err := connectClient(ctx, cfg.Servers, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		path := fmt.Sprintf("%s/failover-%d", cfg.Prefix, i)
		if _, _, err := c.Create(ctx, cfg.Prefix, nil, client.ModePersistent); err != nil && !errors.Is(err, client.ErrNodeExists) {
			c.Close()
			return nil, err
		}
		if _, _, err := c.Create(ctx, path, nil, client.ModePersistent); err != nil && !errors.Is(err, client.ErrNodeExists) {
			c.Close()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			data := value(cfg.ValueBytes)
			for wctx.Err() == nil {
				if _, err := c.Set(wctx, path, data, -1); err != nil {
					if wctx.Err() == nil {
						errMu.Lock()
						errs.add(string(wire.CodeOf(err)), 1, err.Error())
						errMu.Unlock()
					}
					continue
				}
				lastAck.Store(time.Now().UnixNano())
			}
		}()
	}
	h := &histogram{}
	start := time.Now()
	for round := 0; round < cfg.Rounds && ctx.Err() == nil; round++ {
		if err := waitFor(ctx, 60*time.Second, func() bool { return time.Now().UnixNano()-lastAck.Load() < int64(100*time.Millisecond) }); err != nil {
			return res, fmt.Errorf("round %d: no writes acknowledged before the kill: %w", round, err)
		}
		leader, err := findLeader(ctx, cfg.Servers)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", round, err)
		}
		pid, err := findListener(leader)
		if err != nil {
			return res, fmt.Errorf("round %d: the leader's process: %w", round, err)
		}
		argv, dir, err := procCommand(pid)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", round, err)
		}
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return res, fmt.Errorf("round %d: kill %d: %w", round, pid, err)
		}
		if err := waitFor(ctx, 60*time.Second, func() bool { return lastAck.Load() > killed.UnixNano() }); err != nil {
			return res, fmt.Errorf("round %d: no write acknowledged after the kill: %w", round, err)
		}
		took := time.Unix(0, lastAck.Load()).Sub(killed)
		h.record(int64(took))
		res.Notes = append(res.Notes, fmt.Sprintf("round %d: killed the leader %s (pid %d), first ack after %v", round, leader, pid, took.Round(time.Millisecond)))
		// Bring the server back as it was started, and let it catch up.
		if err := waitFor(ctx, 10*time.Second, func() bool { return gone(pid) }); err != nil {
			return res, fmt.Errorf("round %d: the killed leader (pid %d) did not go: %w", round, pid, err)
		}
		if err := restart(withClientAddr(argv, leader), dir); err != nil {
			return res, fmt.Errorf("round %d: restart %q: %w", round, argv, err)
		}
		if err := waitFor(ctx, 60*time.Second, func() bool { return ready(ctx, leader) }); err != nil {
			return res, fmt.Errorf("round %d: the restarted server %s is not ready: %w", round, leader, err)
		}
	}
	res.WindowS = round3(time.Since(start).Seconds())
	res.setMain(h)
	res.OpsPerS = 0
	stopWriters()
	wg.Wait()
	for code, e := range errs {
		// Errors while there is no leader are expected: count them, but a
		// failover run is judged by its times.
		res.Notes = append(res.Notes, fmt.Sprintf("%d writes failed with %s during failovers (e.g. %s)", e.n, code, e.sample))
	}
	return res, nil
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

type status struct {
	ID      uint64 `json:"id"`
	Role    string `json:"role"`
	Leader  uint64 `json:"leader"`
	Members []struct {
		ID         uint64 `json:"id"`
		ClientAddr string `json:"client_addr"`
	} `json:"members"`
}

func getStatus(ctx context.Context, addr string) (status, error) {
	var st status
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/status?local=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// findLeader returns the client address of the current leader.
func findLeader(ctx context.Context, servers []string) (string, error) {
	var last error
	for range 200 {
		for _, s := range servers {
			st, err := getStatus(ctx, s)
			if err != nil {
				last = err
				continue
			}
			if st.Role == "leader" {
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("no leader among %v: %v", servers, last)
}

func ready(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// procCommand returns a process's command line and working directory.
func procCommand(pid int) ([]string, string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, "", err
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	dir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return nil, "", err
	}
	return argv, dir, nil
}

// withClientAddr makes argv listen for clients on addr (a server started on
// port 0 must come back where the clients know it).
func withClientAddr(argv []string, addr string) []string {
	out := make([]string, 0, len(argv)+2)
	for i := 0; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "--client-addr" || a == "-client-addr":
			i++ // drop its value too
		case strings.HasPrefix(a, "--client-addr=") || strings.HasPrefix(a, "-client-addr="):
		default:
			out = append(out, a)
		}
	}
	return append(out, "--client-addr", addr)
}

// restart starts argv again in dir, detached (it outlives coordload), with
// its output appended to coordload-restarts.log in the temp dir.
func restart(argv []string, dir string) error {
	logf, err := os.OpenFile(filepath.Join(os.TempDir(), "coordload-restarts.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		logf = nil
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if logf != nil {
		cmd.Stdout, cmd.Stderr = logf, logf
		defer logf.Close()
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Reap it when it dies, or a later round that kills it again would
	// wait on a zombie. If coordload exits first, init adopts it.
	go func() { _ = cmd.Wait() }()
	return nil
}

// gone reports whether pid has exited: no such process, or a zombie its
// parent has not reaped yet (its ports and files are released already).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z' || b[i+2] == 'X'
	}
	return false
}
