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
// rounds kills the leader with SIGKILL, times until the first write sent
// after the kill is acknowledged, then restarts the killed server with its
// original command line and waits for the cluster to settle.
func runFailover(ctx context.Context, cfg *Config) (*Result, error) {
	res := newResult(cfg)
	res.Unit = "failovers"
	if len(cfg.Servers) < 3 {
		return nil, errors.New("failover needs --servers of a cluster of 3 or 5 on this machine")
	}
	var lastAck, killedAt, firstAck atomic.Int64
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
				sent := time.Now().UnixNano()
				if _, err := c.Set(wctx, path, data, -1); err != nil {
					if wctx.Err() == nil {
						errMu.Lock()
						errs.add(string(wire.CodeOf(err)), 1, err.Error())
						errMu.Unlock()
					}
					continue
				}
				now := time.Now().UnixNano()
				lastAck.Store(now)
				// The first write sent after the kill and acknowledged
				// times the failover (one sent before could be answered
				// just after the kill without any failover).
				if k := killedAt.Load(); k != 0 && sent > k {
					firstAck.CompareAndSwap(0, now)
				}
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
		firstAck.Store(0)
		killedAt.Store(killed.UnixNano())
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return res, fmt.Errorf("round %d: kill %d: %w", round, pid, err)
		}
		if err := waitFor(ctx, 60*time.Second, func() bool { return firstAck.Load() != 0 }); err != nil {
			return res, fmt.Errorf("round %d: no write acknowledged after the kill: %w", round, err)
		}
		killedAt.Store(0)
		took := time.Unix(0, firstAck.Load()).Sub(killed)
		h.record(int64(took))
		res.Notes = append(res.Notes, fmt.Sprintf("round %d: killed the leader %s (pid %d), first ack after %v", round, leader, pid, took.Round(time.Millisecond)))
		// Bring the server back as it was started, and let it catch up.
		if err := waitFor(ctx, 10*time.Second, func() bool { return gone(pid) }); err != nil {
			return res, fmt.Errorf("round %d: the killed leader (pid %d) did not go: %w", round, pid, err)
		}
		if err := restartReady(ctx, withClientAddr(argv, leader), dir, leader); err != nil {
			return res, fmt.Errorf("round %d: %w", round, err)
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

// restartReady restarts the killed server and waits until it is ready. A
// restart that exits at once (the old process's files not yet released)
// is tried again, a few times.
func restartReady(ctx context.Context, argv []string, dir, addr string) error {
	var err error
	for try := 0; try < 5; try++ {
		var exited <-chan struct{}
		if exited, err = restart(argv, dir); err != nil {
			return fmt.Errorf("restart %q: %w", argv, err)
		}
		died := false
		err = waitFor(ctx, 60*time.Second, func() bool {
			select {
			case <-exited:
				died = true
				return true
			default:
			}
			return ready(ctx, addr)
		})
		if err == nil && !died {
			return nil
		}
		if err == nil {
			err = errors.New("it exited at once (see coordload-restarts.log in the temp dir)")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(try+1) * 200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the restarted server %s is not ready: %w", addr, err)
}

// findLeader returns the client address of the current leader, trying for
// at most a minute.
func findLeader(ctx context.Context, servers []string) (string, error) {
	var last error
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
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
// its output appended to coordload-restarts.log in the temp dir. The
// channel is closed when the process exits.
func restart(argv []string, dir string) (<-chan struct{}, error) {
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
		return nil, err
	}
	// Reap it when it dies, or a later round that kills it again would
	// wait on a zombie. If coordload exits first, init adopts it.
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return exited, nil
}

// gone reports whether pid has exited and released its ports and files:
// no such process, or a zombie its parent has not reaped yet whose threads
// are all gone. (The main thread of a dying process turns zombie while the
// others are still exiting, holding the data dir's lock: a restart then
// fails with "resource temporarily unavailable".)
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X') {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return err != nil || len(fds) == 0
}
