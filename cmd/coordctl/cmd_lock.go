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
)

func (x *ctl) lockCommand() *cli.Command {
	return &cli.Command{
		Name: "lock", Usage: "run a command while holding a lock", ArgsUsage: "NAME [--] [COMMAND [ARG…]]",
		Description: `Waits for the lock NAME, runs COMMAND while holding it, releases it and exits
with COMMAND's exit code (127 when it cannot be found, 128+N when killed by
signal N). NAME is a name (kept under ` + lockRoot + `/NAME) or an absolute
path of the lock's directory. Waiters queue in order (ZooKeeper's recipe:
ephemeral sequential nodes, each watching its predecessor).

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
	m := &mutex{recipe: recipe{c: cl, timeout: x.Timeout}, dir: dir}
	actx, cancel := c.Context, context.CancelFunc(func() {})
	if wait > 0 {
		actx, cancel = context.WithTimeout(c.Context, wait)
	}
	err = m.lock(actx)
	cancel()
	if err != nil {
		if wait > 0 && errors.Is(err, context.DeadlineExceeded) && c.Context.Err() == nil {
			return &cmdError{code: exitConnection, err: fmt.Errorf("lock %s: not acquired within %v", name, wait),
				hint: fmt.Sprintf(`another process holds it ("coordctl ls %s" lists the holder and the waiters)`, dir)}
		}
		return err
	}
	defer func() {
		if err := m.unlock(); err != nil {
			fmt.Fprintf(x.errw, "coordctl: releasing lock %s: %v (the server releases it when the session ends)\n", name, err)
		}
	}()
	hctx, stop := context.WithCancel(base)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	lost := make(chan struct{})
	wg.Go(func() { watchHeld(hctx, cl, m.node, lost) })

	if len(command) == 0 {
		if err := x.emit(c, lockJSON{Name: name, Path: m.node, Token: m.token}, func(w io.Writer) {
			fmt.Fprintf(w, "%s token=%d\n", m.node, m.token)
		}); err != nil {
			return err
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-lost:
			return lostErr("holding lock " + name)
		}
	}
	return x.runLocked(base, m, name, command, lost)
}

// watchHeld closes lost when the session expires or node is deleted; it
// returns when ctx is done.
func watchHeld(ctx context.Context, cl *client.Client, node string, lost chan<- struct{}) {
	states := cl.StateEvents(ctx)
	for {
		ok, _, ch, err := cl.ExistsW(ctx, node)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, client.ErrSessionExpired) || (err == nil && !ok):
			close(lost)
			return
		case err != nil:
			// Unknown: keep watching the session; retry the node.
			ch = nil
		}
		select {
		case <-ctx.Done():
			return
		case st, ok := <-states:
			if !ok {
				return
			}
			if st.State == client.StateExpired {
				close(lost)
				return
			}
		case ev := <-ch:
			if ev.Type == client.EventNodeDeleted || errors.Is(ev.Err, client.ErrSessionExpired) {
				close(lost)
				return
			}
		case <-time.After(time.Second):
			// Re-check (only reached after an error).
		}
	}
}

// runLocked runs command while m is held and returns its exit status.
func (x *ctl) runLocked(base context.Context, m *mutex, name string, command []string, lost <-chan struct{}) error {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(),
		"COORD_LOCK_TOKEN="+strconv.FormatInt(m.token, 10),
		"COORD_LOCK_PATH="+m.node,
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
		return lostErr("holding lock " + name)
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

func (x *ctl) electCommand() *cli.Command {
	return &cli.Command{
		Name: "elect", Usage: "campaign for leadership and print the leader as it changes", ArgsUsage: "NAME VALUE | --listen NAME",
		Description: `Joins the election NAME as a candidate with VALUE (argument, @FILE or -),
then prints the leader's value each time leadership changes, until
interrupted (Ctrl-C; exit code 0), when it resigns. The first candidate
leads; when the leader's session ends the next one takes over. With
--listen it only observes. NAME is a name (under ` + electionRoot + `/NAME)
or an absolute path of the election's directory.

Text: "leader: VALUE", with " (this process)" when it is this candidate,
or "no leader".
JSON, one object per change: {"name":NAME,"leader":NODE,"data":BASE64,
"text":STRING|null,"self":BOOL,"token":CZXID} ("leader" is "" when none).
If this candidate's session expires, exit code 9.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "listen", Aliases: []string{"l"}, Usage: "observe only, do not campaign"},
		},
		Action: x.action(x.elect),
	}
}

func (x *ctl) elect(c *cli.Context) error {
	listen := c.Bool("listen")
	n := 2
	if listen {
		n = 1
	}
	args, err := nargs(c, n, n)
	if err != nil {
		return err
	}
	name := args[0]
	dir, err := recipeDir(electionRoot, name)
	if err != nil {
		return err
	}
	var value []byte
	if !listen {
		if value, err = readData(args[1], x.in, false); err != nil {
			return err
		}
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	e := &election{recipe: recipe{c: cl, timeout: x.Timeout}, dir: dir}
	if !listen {
		if err := e.campaign(c.Context, value); err != nil {
			return err
		}
		defer func() {
			if err := e.resign(); err != nil {
				fmt.Fprintf(x.errw, "coordctl: resigning from %s: %v (the server removes the candidate when the session ends)\n", name, err)
			}
		}()
	}
	asJSON := isJSON(c)
	err = e.observe(c.Context, func(l leader) {
		if asJSON {
			b, text := dataJSON(l.data)
			_ = writeJSON(x.out, leaderJSON{Name: name, Leader: l.node, Data: b, Text: text, Self: l.self, Token: l.token})
			return
		}
		switch {
		case l.node == "":
			fmt.Fprintln(x.out, "no leader")
		case l.self:
			fmt.Fprintf(x.out, "leader: %s (this process)\n", safeText(l.data))
		default:
			fmt.Fprintf(x.out, "leader: %s\n", safeText(l.data))
		}
	})
	if errors.Is(err, context.Canceled) && c.Context.Err() != nil {
		return nil
	}
	return err
}
