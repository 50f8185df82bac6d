package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	intr := make(chan os.Signal, 1)
	signal.Notify(intr, os.Interrupt)
	code := run(ctx, os.Args[1:], stdio{
		in: os.Stdin, out: os.Stdout, err: os.Stderr,
		interrupts: intr, files: true,
	})
	stop()
	os.Exit(code)
}

// stdio is what run works with: the process's streams in main, buffers in
// tests.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	// interrupts delivers SIGINT; it cancels the running command (nil: none).
	interrupts <-chan os.Signal
	// files says that in, out and err are the process's own stdin, stdout
	// and stderr: the shell may use the terminal and lock's command
	// inherits them.
	files bool
}

// run runs coordctl with args (without the program name) and returns its
// exit code.
func run(ctx context.Context, args []string, s stdio) int {
	x := &ctl{in: s.in, out: s.out, errw: s.err, interr: s.interrupts, files: s.files, cwd: "/"}
	if x.interr != nil {
		fctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { x.forwardInterrupts(fctx) })
		defer wg.Wait()
		defer cancel()
	}
	defer x.close()
	app := x.newApp()
	args, err := reorderArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, append([]string{"coordctl"}, args...))
	}
	if err == nil {
		return exitOK
	}
	return report(x.errw, err, x.Servers, x.jsonErrors)
}

// globalFlags are the flags before (or anywhere after) the command.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "servers", EnvVars: []string{"COORD_SERVERS"}, Value: "127.0.0.1:7181",
			Usage: "client `HOST:PORT`s of the cluster's servers, comma-separated"},
		&cli.DurationFlag{Name: "timeout", EnvVars: []string{"COORD_TIMEOUT"}, Value: 10 * time.Second,
			Usage: "how long to wait for a session and for each request, a `DURATION`"},
		&cli.DurationFlag{Name: "session-timeout", EnvVars: []string{"COORD_SESSION_TIMEOUT"}, Value: 10 * time.Second,
			Usage: "session timeout asked of the server, a `DURATION`: how long ephemeral nodes, locks and leadership outlive a coordctl that vanished"},
		outputFlag("text"),
		&cli.StringSliceFlag{Name: "auth", EnvVars: []string{"COORD_AUTH"},
			Usage: "authenticate the session as `SCHEME:CREDENTIAL`, e.g. digest:alice:secret (repeatable)"},
	}
}

// outputFlag is -o, with the default format def.
func outputFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, EnvVars: []string{"COORD_OUTPUT"}, Value: def,
		Usage: "output `FORMAT`: text, or json (one object per line; shapes in each command's help)"}
}

const appDescription = `coordctl reads and changes a coord cluster's tree of znodes, watches it,
runs commands under a lock, campaigns in elections and manages members.
With no command it starts an interactive shell (or runs the commands read
from stdin as a script when stdin is not a terminal).

PATHS are absolute (/app/config) or relative to the shell's working node
(cd, pwd); outside the shell relative paths start at /.

DATA is taken from the argument; "@FILE" reads FILE, "-" reads stdin and
"@@TEXT" is the literal "@TEXT". With --base64 the argument is base64.
Printable text is written as is; other data is shown as a quoted, escaped
string (get --base64 or --raw for the bytes).

Flags may follow the arguments; "--" ends the flags (for data that starts
with "-").

` + exitTable

// newApp builds the one-shot command line.
func (x *ctl) newApp() *cli.App {
	app := &cli.App{
		Name:                   "coordctl",
		Usage:                  "the coord command line and shell",
		UsageText:              "coordctl [global flags] COMMAND [flags] [args]\ncoordctl [global flags]            (interactive shell, or a script from stdin)",
		Description:            appDescription,
		Flags:                  globalFlags(),
		Commands:               x.commands(),
		HideVersion:            true,
		HideHelp:               true,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		Reader:                 x.in,
		Writer:                 x.out,
		ErrWriter:              x.errw,
		ExitErrHandler:         func(*cli.Context, error) {},
		OnUsageError:           onUsageError,
		Before: func(c *cli.Context) error {
			x.jsonErrors = c.String("output") == "json"
			return x.setup(c)
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unknownCommand(c.App, c.Args().First())
			}
			return x.runShell(c, "", false)
		},
	}
	finishApp(app)
	return app
}

// finishApp applies the settings every command shares, and gives the app
// and each command a help flag and the app a help command of their own:
// urfave/cli's defaults are package-level values that it modifies while
// running, which would make concurrent apps (tests) race.
func finishApp(app *cli.App) {
	app.Flags = append(app.Flags, helpFlag())
	app.Commands = append(app.Commands, helpCommand())
	for _, cmd := range app.Commands {
		cmd.HelpName = cmd.Name // App.Setup prefixes the app's name
		finish(cmd, app.Name+" "+cmd.Name)
	}
}

// finish sets up cmd, whose full name is path ("coordctl members").
func finish(cmd *cli.Command, path string) {
	cmd.UseShortOptionHandling = true
	cmd.OnUsageError = onUsageError
	cmd.HideHelp = true
	cmd.HideHelpCommand = true
	cmd.Flags = append(cmd.Flags, helpFlag())
	for _, sub := range cmd.Subcommands {
		sub.HelpName = path + " " + sub.Name
		finish(sub, sub.HelpName)
	}
}

func helpFlag() cli.Flag {
	return &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"}
}

// helpCommand shows the app's help, or a command's ("help members add").
func helpCommand() *cli.Command {
	return &cli.Command{
		Name: "help", Usage: "show the commands, or a command's help", ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				return cli.ShowAppHelp(c)
			}
			cmd := c.App.Command(args[0])
			for _, a := range args[1:] {
				if cmd == nil {
					break
				}
				cmd = cmd.Command(a)
			}
			if cmd == nil {
				return unknownCommand(c.App, strings.Join(args, " "))
			}
			tpl := cli.CommandHelpTemplate
			if len(cmd.Subcommands) > 0 {
				// Without categories, which only a running command has.
				tpl = strings.Replace(cli.SubcommandHelpTemplate, `{{template "visibleCommandCategoryTemplate" .}}`, `{{template "visibleCommandTemplate" .}}`, 1)
			}
			cli.HelpPrinter(c.App.Writer, tpl, cmd)
			return nil
		},
	}
}

// cmdName is the command's name as typed ("members add"), "" for the root.
func cmdName(c *cli.Context) string {
	if c.Command == nil || c.Command.Name == "" || c.Command.Name == c.App.Name {
		return ""
	}
	if h := c.Command.HelpName; h != "" {
		return strings.TrimPrefix(h, c.App.HelpName+" ")
	}
	return c.Command.Name
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	name := cmdName(c)
	hint := `run "coordctl help" for the commands and flags`
	if name != "" {
		hint = fmt.Sprintf(`run "coordctl help %s" for its usage`, name)
		return usageHint(hint, "%s: %v", name, err)
	}
	return usageHint(hint, "%v", err)
}

func unknownCommand(app *cli.App, name string) error {
	var names []string
	for _, c := range app.VisibleCommands() {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return usageHint("the commands are: "+strings.Join(names, ", ")+` ("help COMMAND" tells more)`,
		"unknown command %q", name)
}

// commands lists the commands of one-shot mode; the shell adds its own.
func (x *ctl) commands() []*cli.Command {
	cmds := x.treeCommands()
	cmds = append(cmds, x.watchCommand(), x.lockCommand(), x.electCommand())
	cmds = append(cmds, x.adminCommands()...)
	if x.sh == nil {
		cmds = append(cmds, x.shellCommand())
	} else {
		cmds = append(cmds, x.sh.commands()...)
	}
	return cmds
}

// action wraps a command's action: SIGINT cancels its context.
func (x *ctl) action(f func(c *cli.Context) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		ctx, cancel := x.interruptible(c.Context)
		defer cancel()
		c.Context = ctx
		return withUsageHint(c, f(c))
	}
}

// withUsageHint points a usage error without a hint to the command's help.
func withUsageHint(c *cli.Context, err error) error {
	var ce *cmdError
	if errors.As(err, &ce) && ce.code == exitUsage && ce.hint == "" {
		ce.hint = fmt.Sprintf(`run "coordctl help %s" for its usage`, cmdName(c))
	}
	return err
}

// nargs checks the number of positional arguments.
func nargs(c *cli.Context, min, max int) ([]string, error) {
	args := c.Args().Slice()
	if len(args) < min || (max >= 0 && len(args) > max) {
		want := fmt.Sprintf("%d", min)
		switch {
		case max < 0:
			want = fmt.Sprintf("at least %d", min)
		case max != min:
			want = fmt.Sprintf("%d to %d", min, max)
		}
		name := cmdName(c)
		return nil, usageHint(fmt.Sprintf(`usage: %s %s (run "coordctl help %s")`, name, c.Command.ArgsUsage, name),
			"%s: expected %s argument(s), got %d", name, want, len(args))
	}
	return args, nil
}
