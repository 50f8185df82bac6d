package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/chzyer/readline"
	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/client"
)

// shell runs commands read from a terminal (with line editing, history and
// completion) or from a script, on one session kept across them.
//
// Goroutines: the shell's own (the caller of runShell) reads and runs the
// commands; each background watch and each pending one-shot watch of get -w
// or ls -w has a goroutine, started by the command and joined by runShell
// after it cancels ctx. readline runs its own goroutines, ended by Close.
type shell struct {
	x      *ctl
	rl     *readline.Instance // nil for a script
	ctx    context.Context    // the shell's life; background work ends with it
	prev   string             // the previous working node, for "cd -"
	wg     sync.WaitGroup
	nextID int // background watch ids, used by the shell's goroutine only

	mu struct {
		sync.Mutex
		watches map[int]bgWatch
	}
}

// bgWatch is a watch running in the background.
type bgWatch struct {
	path   string
	cancel context.CancelFunc
}

// errExit is returned by exit: it ends the shell with code (-1: the
// shell's own status).
type errExit struct{ code int }

func (e errExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

func (x *ctl) shellCommand() *cli.Command {
	return &cli.Command{
		Name: "shell", Usage: "interactive shell, or run a script of commands", ArgsUsage: "[FILE]",
		Description: `With a terminal, starts the interactive shell: line editing, history
(~/.coordctl_history, or $COORD_HISTORY), Tab completion of commands and of
paths from the live tree, cd/pwd and relative paths, help for every command.
The session lasts until the shell exits, so ephemeral nodes created in it
live until then; watch events print as they arrive.

With FILE, or when stdin is not a terminal, runs the commands of FILE (or
stdin) one per line ('#' starts a comment) and stops at the first failure
with its exit code, unless --keep-going (then the exit code is the first
failure's). Running "coordctl" with no command does the same.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "keep-going", Aliases: []string{"k"}, Usage: "in a script, go on after a failed command"},
		},
		Action: func(c *cli.Context) error {
			args, err := nargs(c, 0, 1)
			if err != nil {
				return err
			}
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			return x.runShell(c, file, c.Bool("keep-going"))
		},
	}
}

// runShell runs the shell: interactive when stdin is a terminal and no
// file is given, else a script.
func (x *ctl) runShell(c *cli.Context, file string, keepGoing bool) error {
	var src io.Reader
	interactive := false
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return usagef("cannot read script: %v", err)
		}
		defer f.Close()
		src = f
	case x.files && readline.IsTerminal(int(os.Stdin.Fd())):
		interactive = true
	default:
		src, x.in = x.in, nil // the script owns stdin: no "-" data
	}
	ctx, cancel := context.WithCancel(c.Context)
	sh := &shell{x: x, ctx: ctx}
	sh.mu.watches = map[int]bgWatch{}
	x.sh = sh
	defer func() {
		cancel()
		sh.wg.Wait()
		x.close() // ends the session: its ephemeral nodes go now
		x.sh = nil
	}()
	if interactive {
		return sh.interactive()
	}
	return sh.script(src, keepGoing)
}

// lineApp is the command line of one shell line: the commands, the shell's
// own, and -o.
func (sh *shell) lineApp() *cli.App {
	x := sh.x
	app := &cli.App{
		Name:                   "coordctl",
		Usage:                  "the coord shell",
		UsageText:              "COMMAND [flags] [args]   (Tab completes commands and paths; Ctrl-D or exit leaves)",
		Description:            appDescription,
		Flags:                  []cli.Flag{outputFlag(x.Output)},
		Commands:               x.commands(),
		HideVersion:            true,
		HideHelp:               true,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		Writer:                 x.out,
		ErrWriter:              x.errw,
		ExitErrHandler:         func(*cli.Context, error) {},
		OnUsageError:           onUsageError,
		Before:                 checkOutput,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unknownCommand(c.App, c.Args().First())
			}
			return nil
		},
	}
	finishApp(app)
	return app
}

// exec runs one line.
func (sh *shell) exec(line string) error {
	words, err := splitWords(line)
	if err != nil || len(words) == 0 {
		return err
	}
	app := sh.lineApp()
	if words, err = reorderArgs(app, words); err != nil {
		return err
	}
	return app.RunContext(sh.ctx, append([]string{"coordctl"}, words...))
}

// script runs the lines of src.
func (sh *shell) script(src io.Reader, keepGoing bool) error {
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	first := 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		err := sh.exec(line)
		if err == nil {
			continue
		}
		var ex errExit
		if errors.As(err, &ex) {
			if ex.code < 0 {
				break
			}
			return exitStatus(ex.code)
		}
		fmt.Fprintf(sh.x.errw, "coordctl: line %d: %s\n", n, strings.TrimSpace(line))
		code := report(sh.x.errw, err, sh.x.Servers, sh.x.jsonErrors)
		if !keepGoing {
			return exitStatus(code)
		}
		if first == 0 {
			first = code
		}
	}
	if err := sc.Err(); err != nil {
		return usagef("reading the script: %v", err)
	}
	if first != 0 {
		return exitStatus(first)
	}
	return nil
}

// historyPath is $COORD_HISTORY, else ~/.coordctl_history ("" for none).
func historyPath() string {
	if p, ok := os.LookupEnv("COORD_HISTORY"); ok {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".coordctl_history")
}

func (sh *shell) prompt() string { return "coord:" + sh.x.cwd + "> " }

// interactive runs the terminal shell.
func (sh *shell) interactive() error {
	x := sh.x
	rl, err := readline.NewEx(&readline.Config{
		Prompt:            sh.prompt(),
		HistoryFile:       historyPath(),
		HistorySearchFold: true,
		AutoComplete:      &completer{sh: sh, names: commandNames(sh.lineApp())},
		InterruptPrompt:   "^C",
		EOFPrompt:         "exit",
	})
	if err != nil {
		return fmt.Errorf("starting the shell: %w", err)
	}
	defer rl.Close()
	sh.rl = rl
	stdout, stderr := x.out, x.errw
	x.out = &lockedWriter{w: rl.Stdout()}
	x.errw = &lockedWriter{w: rl.Stderr()}
	defer func() { x.out, x.errw = stdout, stderr }()

	fmt.Fprintf(x.errw, "coordctl shell on %s: \"help\" lists the commands, Tab completes, Ctrl-D exits\n", strings.Join(x.Servers, ","))
	if _, err := x.conn(sh.ctx); err != nil {
		report(x.errw, err, x.Servers, false)
		fmt.Fprintln(x.errw, "coordctl: the shell will try again with the next command")
	}
	for {
		rl.SetPrompt(sh.prompt())
		line, err := rl.Readline()
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		if err := sh.exec(line); err != nil {
			var ex errExit
			if errors.As(err, &ex) {
				if ex.code <= 0 {
					return nil
				}
				return exitStatus(ex.code)
			}
			report(x.errw, err, x.Servers, false)
		}
	}
}

// commands are the shell's own commands.
func (sh *shell) commands() []*cli.Command {
	x := sh.x
	return []*cli.Command{
		{
			Name: "cd", Usage: "change the working node", ArgsUsage: "[PATH | -]",
			Description: `Relative paths in later commands start at the working node. No PATH: /;
"-": the previous working node. The node must exist.`,
			Action: x.action(func(c *cli.Context) error {
				args, err := nargs(c, 0, 1)
				if err != nil {
					return err
				}
				p := "/"
				switch {
				case len(args) == 0:
				case args[0] == "-":
					p = sh.prev
					if p == "" {
						p = x.cwd
					}
				default:
					if p, err = x.resolve(args[0]); err != nil {
						return err
					}
				}
				cl, err := x.conn(c.Context)
				if err != nil {
					return err
				}
				ctx, cancel := x.op(c.Context)
				defer cancel()
				ok, _, err := cl.Exists(ctx, p)
				if err != nil {
					return err
				}
				if !ok {
					return &client.OpError{Op: "cd", Path: p, Err: client.ErrNoNode}
				}
				sh.prev, x.cwd = x.cwd, p
				return nil
			}),
		},
		{
			Name: "pwd", Usage: "print the working node", ArgsUsage: " ",
			Description: `JSON: {"path":P}`,
			Action: func(c *cli.Context) error {
				return x.emit(c, pathJSON{Path: x.cwd}, func(w io.Writer) { fmt.Fprintln(w, x.cwd) })
			},
		},
		{
			Name: "exit", Aliases: []string{"quit"}, Usage: "leave the shell (ending the session)", ArgsUsage: "[CODE]",
			Description: `Ends the shell or script with exit code CODE (default: 0, or in a script
run with --keep-going the first failure's code).`,
			Action: func(c *cli.Context) error {
				args, err := nargs(c, 0, 1)
				if err != nil {
					return err
				}
				code := -1
				if len(args) == 1 {
					if code, err = strconv.Atoi(args[0]); err != nil || code < 0 || code > 255 {
						return usagef("exit: %q is not an exit code (0-255)", args[0])
					}
				}
				return errExit{code}
			},
		},
		{
			Name: "addauth", Usage: "add an identity to the session", ArgsUsage: "SCHEME CREDENTIAL",
			Description: `E.g. addauth digest alice:secret. The identity stays for the session's
life (and is sent again after reconnecting).`,
			Action: x.action(func(c *cli.Context) error {
				args, err := nargs(c, 2, 2)
				if err != nil {
					return err
				}
				cl, err := x.conn(c.Context)
				if err != nil {
					return err
				}
				ctx, cancel := x.op(c.Context)
				defer cancel()
				return cl.AddAuth(ctx, args[0], args[1])
			}),
		},
		{
			Name: "unwatch", Usage: "stop background watches", ArgsUsage: "[PATH]",
			Description: `Stops the background watches started by watch on PATH (all without PATH).`,
			Action: func(c *cli.Context) error {
				args, err := nargs(c, 0, 1)
				if err != nil {
					return err
				}
				p := ""
				if len(args) == 1 {
					if p, err = x.resolve(args[0]); err != nil {
						return err
					}
				}
				if n := sh.stopWatches(p); n == 0 && p != "" {
					return usagef("unwatch: no background watch on %s", p)
				}
				return nil
			},
		},
	}
}

// startWatch runs a watch in the background. It returns once the watch is
// set (or failed to be).
func (sh *shell) startWatch(ctx context.Context, p string, kind watchKind, asJSON bool) error {
	x := sh.x
	cl := x.current()
	wctx, cancel := context.WithCancel(sh.ctx)
	sh.nextID++
	id := sh.nextID
	sh.mu.Lock()
	sh.mu.watches[id] = bgWatch{path: p, cancel: cancel}
	sh.mu.Unlock()
	armed := make(chan error, 1)
	sh.wg.Go(func() {
		defer func() {
			cancel()
			sh.mu.Lock()
			delete(sh.mu.watches, id)
			sh.mu.Unlock()
		}()
		ok := false // the watch was set: later failures are reported here
		err := x.watchLoop(wctx, cl, p, kind, func(err error) {
			ok = err == nil
			armed <- err
		}, func(ev client.Event) {
			x.printEvent(x.out, ev, asJSON, "[watch] ")
		})
		if err != nil && ok && wctx.Err() == nil {
			fmt.Fprintf(x.errw, "coordctl: the watch on %s stopped: %v\n", p, err)
		}
	})
	select {
	case err := <-armed:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
	fmt.Fprintf(x.errw, "watching %s in the background; \"unwatch %s\" stops it\n", p, p)
	return nil
}

// stopWatches stops the background watches on p (all for "") and returns
// how many.
func (sh *shell) stopWatches(p string) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := 0
	for id, w := range sh.mu.watches {
		if p == "" || w.path == p {
			w.cancel()
			delete(sh.mu.watches, id)
			n++
		}
	}
	return n
}

// awaitEvent prints the event of a one-shot watch when it arrives.
func (sh *shell) awaitEvent(ch <-chan client.Event, asJSON bool) {
	sh.wg.Go(func() {
		select {
		case ev, ok := <-ch:
			if ok && ev.Type != client.EventNotWatching {
				sh.x.printEvent(sh.x.out, ev, asJSON, "[watch] ")
			}
		case <-sh.ctx.Done():
		}
	})
}

// commandNames lists the names and aliases of app's commands, sorted.
func commandNames(app *cli.App) []string {
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Names()...)
	}
	names = append(names, "help")
	sort.Strings(names)
	return names
}
