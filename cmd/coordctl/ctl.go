package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// ctl is one run of coordctl: its standard streams, the settings of the
// global flags, and the client session, opened on first use and kept
// across the commands of a shell. Commands run one at a time on the
// goroutine that called run; the shell's background watches and the
// completer only use the client, which is safe for concurrent use.
type ctl struct {
	in     io.Reader // nil when stdin carries a script
	out    io.Writer
	errw   io.Writer
	interr <-chan os.Signal // SIGINT, forwarded to the running command; nil in tests
	// files says that in, out and errw are the process's own streams.
	files bool
	// jsonErrors says that errors are reported as JSON (-o json).
	jsonErrors bool

	// Config holds the global flags, fixed by setup. Output is the
	// default of the shell's lines.
	Config

	cwd string // the shell's working node; "/" outside the shell
	sh  *shell // nil outside the shell

	mu struct {
		sync.Mutex
		client *client.Client
		cancel context.CancelFunc // the running command's, for SIGINT
	}
}

// setup validates the global flags and records them.
func (x *ctl) setup(c *cli.Context) error {
	x.Config = Config{
		Servers:        []string{c.String("servers")},
		Timeout:        c.Duration("timeout"),
		SessionTimeout: c.Duration("session-timeout"),
		Output:         c.String("output"),
		Auth:           c.StringSlice("auth"),
	}
	if c.Duration("timeout") == 0 {
		return usagef("--timeout must be positive, got 0s")
	}
	return x.Config.Validate()
}

// checkOutput validates -o.
func checkOutput(c *cli.Context) error {
	switch o := c.String("output"); o {
	case "text", "json":
		return nil
	default:
		return usagef("-o %q: the output format is text or json", o)
	}
}

// current returns the client if one is open, without connecting.
func (x *ctl) current() *client.Client {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.mu.client
}

// conn returns the session's client, connecting on first use. In the
// shell, a session that expired is replaced by a new one (with a note).
func (x *ctl) conn(ctx context.Context) (*client.Client, error) {
	if c := x.current(); c != nil {
		if c.State() == client.StateExpired && x.sh != nil {
			fmt.Fprintln(x.errw, "coordctl: the session had expired (its ephemeral nodes and watches are gone); starting a new one")
			nctx, cancel := context.WithTimeout(ctx, x.Timeout)
			defer cancel()
			if err := c.NewSession(nctx); err != nil {
				return nil, x.connErr(err)
			}
		}
		return c, nil
	}
	cctx, cancel := context.WithTimeout(ctx, x.Timeout)
	defer cancel()
	opts := []client.Option{
		client.WithSessionTimeout(x.SessionTimeout),
		client.WithDialTimeout(min(x.Timeout, client.DefaultDialTimeout)),
	}
	for _, a := range x.Auth {
		scheme, cred, _ := splitAuth(a) // checked by Validate
		opts = append(opts, client.WithAuth(scheme, cred))
	}
	c, err := client.Connect(cctx, x.Servers, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, x.connErr(err)
	}
	x.mu.Lock()
	x.mu.client = c
	x.mu.Unlock()
	return c, nil
}

func (x *ctl) connErr(err error) error {
	code := exitConnection
	if errors.Is(err, client.ErrAuthFailed) || errors.Is(err, client.ErrBadArguments) {
		code, _ = classify(err, x.Servers)
	}
	return &cmdError{code: code, err: fmt.Errorf("cannot open a session with %s: %w", strings.Join(x.Servers, ","), err),
		hint: fmt.Sprintf("is coordd running and reachable at %s? Set --servers (or COORD_SERVERS), or raise --timeout (now %v)", strings.Join(x.Servers, ","), x.Timeout)}
}

// close ends the session (deleting its ephemeral nodes at once).
func (x *ctl) close() {
	x.mu.Lock()
	c := x.mu.client
	x.mu.client = nil
	x.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// interruptible returns a context for a command that SIGINT cancels.
func (x *ctl) interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	x.mu.Lock()
	x.mu.cancel = cancel
	x.mu.Unlock()
	return ctx, func() {
		x.mu.Lock()
		x.mu.cancel = nil
		x.mu.Unlock()
		cancel()
	}
}

// forwardInterrupts cancels the running command on each SIGINT until ctx
// is done. It runs on its own goroutine, owned and joined by run.
func (x *ctl) forwardInterrupts(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.interr:
			x.mu.Lock()
			cancel := x.mu.cancel
			x.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		}
	}
}

// op returns the context of one request: the command's, bounded by
// --timeout.
func (x *ctl) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, x.Timeout)
}

// resolve turns a path argument into an absolute, clean path: relative
// paths are relative to the shell's working node ("/" outside the shell);
// ".", ".." and repeated or trailing slashes are resolved.
func (x *ctl) resolve(p string) (string, error) {
	if p == "" {
		return "", usagef("empty path")
	}
	abs := p
	if !strings.HasPrefix(p, "/") {
		abs = x.cwd + "/" + p
	}
	clean := path.Clean(abs)
	if err := wire.ValidatePath(clean); err != nil {
		return "", &cmdError{code: exitUsage, err: err, hint: "a path is /-separated names, e.g. /app/config, with no control characters"}
	}
	return clean, nil
}

// isJSON reports whether -o json is in force.
func isJSON(c *cli.Context) bool { return c.String("output") == "json" }

// emit writes v as one line of JSON with -o json, else calls text.
func (x *ctl) emit(c *cli.Context, v any, text func(w io.Writer)) error {
	if isJSON(c) {
		return writeJSON(x.out, v)
	}
	if text != nil {
		text(x.out)
	}
	return nil
}

// writeJSON writes v as one compact line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// lockedWriter serialises writes from the shell's goroutines, so that
// a watch event never lands inside another line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
