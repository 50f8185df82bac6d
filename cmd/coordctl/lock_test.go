package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/client/recipe"
)

// TestLock runs concurrent coordctl lock processes of one name: their
// commands never overlap, the fencing tokens increase, and the commands'
// exit codes come through.
func TestLock(t *testing.T) {
	e := newEnv(t)
	bin := buildCoordctl(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	// Each holder writes start and end markers around a sleep.
	script := `echo "start $COORD_LOCK_TOKEN $COORD_LOCK_PATH" >> "$LOG"; sleep 0.3; echo "end $COORD_LOCK_TOKEN" >> "$LOG"; exit 42`

	const n = 3
	var wg sync.WaitGroup
	codes := make([]int, n)
	outs := make([]string, n)
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(bin, "--servers", e.servers, "lock", "shared", "--", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "LOG="+logPath)
			out, err := cmd.CombinedOutput()
			outs[i] = string(out)
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				codes[i] = ee.ExitCode()
			} else if err != nil {
				codes[i] = -1
				outs[i] += err.Error()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 42 {
			t.Errorf("lock run %d: exit %d, want the command's 42; output:\n%s", i, codes[i], outs[i])
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2*n {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), 2*n, b)
	}
	last := int64(-1)
	for i := 0; i < len(lines); i += 2 {
		start, end := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(start) != 3 || start[0] != "start" || len(end) != 2 || end[0] != "end" || start[1] != end[1] {
			t.Fatalf("holders overlapped:\n%s", b)
		}
		tok, err := strconv.ParseInt(start[1], 10, 64)
		if err != nil || tok <= last {
			t.Fatalf("fencing tokens do not increase:\n%s", b)
		}
		last = tok
		if !strings.HasPrefix(start[2], lockRoot+"/shared/lock-") {
			t.Fatalf("COORD_LOCK_PATH %q", start[2])
		}
	}
	// Every lock node is gone.
	kids, _, err := e.c.Children(e.ctx(), lockRoot+"/shared")
	if err != nil && !isNoNode(err) {
		t.Fatal(err)
	}
	if len(kids) != 0 {
		t.Fatalf("lock nodes left: %v", kids)
	}

	t.Run("exit codes", func(t *testing.T) {
		e.t = t
		e.expectCode(0, "lock", "x", "true")
		e.expectCode(127, "lock", "x", "--", "no-such-command-coordctl")
		if r := e.run("", "lock", "x", "sh", "-c", "kill -TERM $$"); r.code != 128+15 {
			t.Fatalf("command killed by SIGTERM: %v", r)
		}
		// Arguments after the command's name belong to it, flags included.
		if r := e.run("", "lock", "x", "sh", "-c", "echo $0 $1", "-o", "json"); r.code != 0 || r.out != "-o json\n" {
			t.Fatalf("command arguments: %v", r)
		}
	})

	t.Run("held without a command, wait", func(t *testing.T) {
		e.t = t
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &lockedBuffer{}
		done := make(chan result, 1)
		go func() { done <- e.runCtx(ctx, "", out, "-o", "json", "lock", "held") }()
		waitFor(t, "the lock to be held", func() bool { return out.String() != "" })
		var lj lockJSON
		if err := json.Unmarshal([]byte(out.String()), &lj); err != nil || lj.Name != "held" || lj.Token <= 0 || !strings.HasPrefix(lj.Path, lockRoot+"/held/lock-") {
			t.Fatalf("lock json %q: %v", out.String(), err)
		}
		// Another one gives up after --wait.
		r := e.expectCode(exitConnection, "lock", "--wait", "300ms", "held", "true")
		if !strings.Contains(r.err, "not acquired within") {
			t.Fatalf("lock --wait: %v", r)
		}
		cancel()
		if r := <-done; r.code != 0 {
			t.Fatalf("interrupted lock: %v", r)
		}
		ok, _, err := e.c.Exists(e.ctx(), lj.Path)
		if err != nil || ok {
			t.Fatalf("lock node left after release: %v %v", ok, err)
		}
	})

	t.Run("lost", func(t *testing.T) {
		e.t = t
		// Deleting the holder's node by hand takes the lock away: the
		// command is stopped and coordctl exits 9.
		mark := filepath.Join(t.TempDir(), "running")
		done := make(chan result, 1)
		go func() { done <- e.run("", "lock", "lost", "sh", "-c", `touch "$0"; exec sleep 30`, mark) }()
		var node string
		waitFor(t, "the command to run", func() bool {
			_, err := os.Stat(mark)
			return err == nil
		})
		waitFor(t, "the lock node", func() bool {
			kids, _, err := e.c.Children(e.ctx(), lockRoot+"/lost")
			if err != nil || len(kids) == 0 {
				return false
			}
			node = lockRoot + "/lost/" + kids[0]
			return true
		})
		if err := e.c.Delete(e.ctx(), node, client.AnyVersion); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.code != exitExpired || !strings.Contains(r.err, "lost") {
				t.Fatalf("lost lock: %v", r)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the command still runs after the lock was lost")
		}
	})
}

// TestElect campaigns with two candidates and an observer.
func TestElect(t *testing.T) {
	e := newEnv(t)
	type cand struct {
		out    *lockedBuffer
		cancel context.CancelFunc
		done   chan result
	}
	start := func(args ...string) *cand {
		ctx, cancel := context.WithCancel(context.Background())
		c := &cand{out: &lockedBuffer{}, cancel: cancel, done: make(chan result, 1)}
		go func() { c.done <- e.runCtx(ctx, "", c.out, args...) }()
		t.Cleanup(cancel)
		return c
	}
	has := func(c *cand, s string) func() bool {
		return func() bool { return strings.Contains(c.out.String(), s) }
	}
	a := start("elect", "E", "alpha")
	waitFor(t, "alpha to lead", has(a, "leader: alpha (this process)\n"))
	b := start("-o", "json", "elect", "E", "beta")
	obs := start("elect", "--listen", "E")
	waitFor(t, "beta to see alpha", has(b, `"text":"alpha","self":false`))
	waitFor(t, "the observer to see alpha", has(obs, "leader: alpha\n"))

	a.cancel() // alpha resigns
	if r := <-a.done; r.code != 0 {
		t.Fatalf("alpha: %v", r)
	}
	waitFor(t, "beta to lead", has(b, `"text":"beta","self":true`))
	waitFor(t, "the observer to see beta", has(obs, "leader: beta\n"))
	b.cancel()
	if r := <-b.done; r.code != 0 {
		t.Fatalf("beta: %v", r)
	}
	for _, l := range strings.Split(strings.TrimSpace(b.out.String()), "\n") {
		checkKeys(t, "elect", decode(t, l+"\n"), "name", "leader", "data", "text", "self", "token")
	}
	waitFor(t, "the observer to see no leader", has(obs, "no leader\n"))
	obs.cancel()
	if r := <-obs.done; r.code != 0 || r.out != "leader: alpha\nleader: beta\nno leader\n" {
		t.Fatalf("observer: %v", r)
	}
}

// TestLockSharedWithMutex checks that coordctl lock is client/recipe's
// Mutex at the documented path: a Go program's recipe.Mutex on that path
// and coordctl (given the NAME or the path) exclude each other, whichever
// holds the lock first, and the fencing tokens increase across them.
func TestLockSharedWithMutex(t *testing.T) {
	e := newEnv(t)
	dir := lockRoot + "/shared-go"
	m := recipe.NewMutex(e.c, dir)
	if err := m.Lock(e.ctx()); err != nil {
		t.Fatal(err)
	}
	goToken := m.Token()

	// The Go program holds the lock: coordctl waits, by NAME and by path.
	for _, name := range []string{"shared-go", dir} {
		if r := e.expectCode(exitConnection, "lock", "--wait", "300ms", name, "true"); !strings.Contains(r.err, "not acquired within") {
			t.Fatalf("lock %s while a recipe.Mutex holds it: %v", name, r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan result, 1)
	go func() { done <- e.runCtx(ctx, "", out, "-o", "json", "lock", "shared-go") }()
	waitFor(t, "coordctl to queue behind the Mutex", func() bool {
		kids, _, err := e.c.Children(e.ctx(), dir)
		return err == nil && len(kids) == 2
	})
	if s := out.String(); s != "" {
		t.Fatalf("coordctl took the lock a recipe.Mutex holds: %s", s)
	}
	if err := m.Unlock(e.ctx()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "coordctl to hold the lock", func() bool { return out.String() != "" })
	var lj lockJSON
	if err := json.Unmarshal([]byte(out.String()), &lj); err != nil || lj.Token <= goToken || !strings.HasPrefix(lj.Path, dir+"/lock-") {
		t.Fatalf("lock json %q (the Mutex's token was %d): %v", out.String(), goToken, err)
	}

	// coordctl holds it: the Go program cannot take it until it is released.
	if err := m.TryLock(e.ctx()); !errors.Is(err, recipe.ErrLocked) {
		t.Fatalf("TryLock while coordctl holds the lock: %v", err)
	}
	acquired := make(chan error, 1)
	go func() { acquired <- m.Lock(e.ctx()) }()
	select {
	case err := <-acquired:
		t.Fatalf("recipe.Mutex.Lock returned while coordctl holds the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("interrupted lock: %v", r)
	}
	if err := <-acquired; err != nil {
		t.Fatal(err)
	}
	if m.Token() <= lj.Token {
		t.Fatalf("the Mutex's token %d after coordctl's %d", m.Token(), lj.Token)
	}
	if err := m.Unlock(e.ctx()); err != nil {
		t.Fatal(err)
	}
}

// TestElectSharedWithElection campaigns behind a Go program's
// recipe.Election on the same path, then takes over, then loses its node.
func TestElectSharedWithElection(t *testing.T) {
	e := newEnv(t)
	goCand := recipe.NewElection(e.c, electionRoot+"/shared-go")
	if err := goCand.Campaign(e.ctx(), []byte("go")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan result, 1)
	go func() { done <- e.runCtx(ctx, "", out, "elect", "shared-go", "cli") }()
	waitFor(t, "coordctl to see the Go leader", func() bool { return out.String() == "leader: go\n" })
	if err := goCand.Resign(e.ctx()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "coordctl to lead", func() bool { return out.String() == "leader: go\nleader: cli (this process)\n" })
	l, err := goCand.Leader(e.ctx())
	if err != nil || string(l.Value) != "cli" {
		t.Fatalf("Leader: %+v %v", l, err)
	}
	// Deleting the leader's node by hand ends its leadership: exit 9.
	if err := e.c.Delete(e.ctx(), l.Key, client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != exitExpired || !strings.Contains(r.err, "lost") || r.out != "leader: go\nleader: cli (this process)\n" {
			t.Fatalf("elect after its node was deleted: %v", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("elect goes on after its node was deleted")
	}
}
