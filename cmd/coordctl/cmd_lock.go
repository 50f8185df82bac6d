package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/client/recipe"
)

func (x *ctl) lockCommand() *cli.Command {
	return &cli.Command{
		Name: "lock", Usage: "run a command while holding a lock", ArgsUsage: "NAME [--] [COMMAND [ARG…]]",
		Description: `Waits for the lock NAME, runs COMMAND while holding it, releases it and exits
with COMMAND's exit code (127 when it cannot be found, 128+N when killed by
signal N). NAME is a name (the lock is then ` + lockRoot + `/NAME) or, when it
starts with '/', the lock's path itself. The lock is client/recipe's Mutex
(ZooKeeper's recipe: waiters queue in order as ephemeral sequential nodes,
each watching its predecessor), so a Go program's recipe.NewMutex on the
same path shares it: the two exclude each other.

COMMAND runs without a shell, with the environment variables
COORD_LOCK_TOKEN (the fencing token: the lock node's czxid, larger for
every later holder), COORD_LOCK_PATH (the lock node) and COORD_LOCK_NAME.
If the lock is lost while COMMAND runs (the session expired, or the node
was deleted), COMMAND gets SIGTERM (SIGKILL 10s later) and coordctl exits
with code 9. SIGTERM sent to coordctl is passed on to COMMAND; Ctrl-C in a
terminal reaches both.

Without COMMAND, prints the lock node and token once held, and holds the
lock until interrupted.

JSON (without COMMAND): {"name":NAME,"path":NODE,"token":N}`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "wait", Usage: "give up (exit code 7) after waiting `DURATION` for the lock (0: wait forever)"},
		},
		Action: func(c *cli.Context) error {
			base := c.Context
			ctx, cancel := x.interruptible(base)
			defer cancel()
			c.Context = ctx
			return withUsageHint(c, x.lock(c, base))
		},
	}
}

// lock implements the lock command. base is the command's context before
// SIGINT handling: only its end (SIGTERM) is passed on to COMMAND.
func (x *ctl) lock(c *cli.Context, base context.Context) error {
	args, err := nargs(c, 1, -1)
	if err != nil {
		return err
	}
	name, command := args[0], args[1:]
	dir, err := recipeDir(lockRoot, name)
	if err != nil {
		return err
	}
	wait := c.Duration("wait")
	if wait < 0 {
		return usagef("lock: --wait must not be negative")
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	m := recipe.NewMutex(cl, dir)
	actx, cancel := c.Context, context.CancelFunc(func() {})
	if wait > 0 {
		actx, cancel = context.WithTimeout(c.Context, wait)
	}
	err = m.Lock(actx)
	cancel()
	switch {
	case err == nil:
	case wait > 0 && errors.Is(err, context.DeadlineExceeded) && c.Context.Err() == nil:
		return &cmdError{code: exitConnection, err: fmt.Errorf("lock %s: not acquired within %v", name, wait),
			hint: fmt.Sprintf(`another process holds it ("coordctl ls %s" lists the holder and the waiters)`, dir)}
	case errors.Is(err, recipe.ErrLockLost):
		return lostErr("waiting for lock "+name, err)
	default:
		return err
	}
	defer func() {
		// A lost lock has nothing left to release: that was reported.
		uctx, cancel := context.WithTimeout(context.Background(), x.Timeout)
		defer cancel()
		if err := m.Unlock(uctx); err != nil && !errors.Is(err, recipe.ErrLockLost) {
			fmt.Fprintf(x.errw, "coordctl: releasing lock %s: %v (the server releases it when the session ends)\n", name, err)
		}
	}()
	hctx, stop := context.WithCancel(base)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	lost := make(chan struct{})
	wg.Go(func() { watchHeld(hctx, cl, m, lost) })

	if len(command) == 0 {
		if err := x.emit(c, lockJSON{Name: name, Path: m.Key(), Token: m.Token()}, func(w io.Writer) {
			fmt.Fprintf(w, "%s token=%d\n", m.Key(), m.Token())
		}); err != nil {
			return err
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-lost:
			return lostErr("holding lock "+name, nil)
		}
	}
	return x.runLocked(base, m, name, command, lost)
}

// watchHeld closes lost when m's hold ends (its session expired: m.Lost)
// or its node is deleted (an operator breaking the lock, which m.Lost does
// not report by itself); it returns when ctx is done.
func watchHeld(ctx context.Context, cl *client.Client, m *recipe.Mutex, lost chan<- struct{}) {
	held, node := m.Lost(), m.Key()
	for {
		var retry <-chan time.Time
		ok, _, ch, err := cl.ExistsW(ctx, node)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && !ok:
			close(lost)
			return
		case err != nil:
			// Disconnected, or the session is gone (held says so):
			// look again in a while.
			ch, retry = nil, time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-held:
			close(lost)
			return
		case ev := <-ch:
			if ev.Type == client.EventNodeDeleted {
				close(lost)
				return
			}
			// Its data changed, or the watch ended with the session
			// (held says so): look again.
		case <-retry:
		}
	}
}

// runLocked runs command while m is held and returns its exit status.
func (x *ctl) runLocked(base context.Context, m *recipe.Mutex, name string, command []string, lost <-chan struct{}) error {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(),
		"COORD_LOCK_TOKEN="+strconv.FormatInt(m.Token(), 10),
		"COORD_LOCK_PATH="+m.Key(),
		"COORD_LOCK_NAME="+name)
	switch {
	case x.in == nil:
		// stdin carries a script: the command gets none.
	case x.files:
		cmd.Stdin = os.Stdin
	default:
		cmd.Stdin = x.in
	}
	errw := x.errw
	if x.files {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	} else {
		// The command's output is copied by exec's goroutines, while
		// this one may write to errw too.
		errw = &lockedWriter{w: x.errw}
		cmd.Stdout, cmd.Stderr = x.out, errw
	}
	if err := cmd.Start(); err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return &cmdError{code: code, err: fmt.Errorf("lock: cannot run %q: %w", command[0], err),
			hint: "check the command's name, its PATH and permissions (the command runs without a shell: use sh -c '…' for shell syntax)"}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // ends when the command does; received below
	var (
		term     = base.Done()
		isLost   bool
		kill     <-chan time.Time
		werr     error
		finished bool
	)
	for !finished {
		select {
		case werr = <-done:
			finished = true
		case <-term:
			term = nil
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-lost:
			lost, isLost = nil, true
			fmt.Fprintf(errw, "coordctl: lock %s lost (session expired or node deleted); stopping %s with SIGTERM\n", name, command[0])
			_ = cmd.Process.Signal(syscall.SIGTERM)
			kill = time.After(10 * time.Second)
		case <-kill:
			_ = cmd.Process.Kill()
		}
	}
	if isLost {
		return lostErr("holding lock "+name, nil)
	}
	if werr == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus(128 + int(ws.Signal()))
		}
		return exitStatus(ee.ExitCode())
	}
	return fmt.Errorf("lock: %s: %w", command[0], werr)
}
