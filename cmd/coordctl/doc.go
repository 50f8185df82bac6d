// Command coordctl is coord's command line and interactive shell, built
// on the Go client (package client) and urfave/cli.
//
// One-shot commands (coordctl [global flags] COMMAND [flags] [args]) read
// and change the tree (ls, get, set, create, delete, deleteall, stat,
// sync, getacl, setacl), follow it (watch), run a command under a lock
// (lock), campaign in an election (elect) and manage the cluster through
// the servers' admin endpoints (status, members). With no command, or
// with "shell", it starts an interactive shell on a terminal, or runs the
// commands of a script from a file or a pipe. docs/coordctl.md is the
// user's reference: exit codes, JSON shapes, data rules.
//
// # Structure
//
//   - main.go: run (the testable entry point: args and streams in, exit
//     code out), the app and its global flags; config.go: Config, the
//     global settings and their defaults.
//   - ctl.go: ctl, one run's state: streams, settings, the session
//     (opened on first use, kept across a shell's commands), path
//     resolution, output.
//   - args.go: reordering of flags given after arguments; shell word
//     splitting.
//   - exit.go: the exit code table and the mapping of errors to it.
//   - data.go, output.go: reading DATA; writing data safely; JSON shapes.
//   - cmd_*.go: the commands; lock and elect use client/recipe's Mutex and
//     Election, so that they share locks and elections with Go programs.
//     recipe.go: where their recipes live (the NAME to path rule) and the
//     exit code of a lost hold.
//   - shell.go, complete.go: the shell, its own commands and completion.
//
// # Invariants
//
//   - A failing command changes nothing it did not report: arguments,
//     paths, data and ACLs are checked before connecting.
//   - Every error maps to one exit code (classify); stdout carries only
//     results, stderr messages and hints.
//   - -o json writes one object per line, in the documented shapes; fields
//     are only ever added.
//
// # Goroutines
//
// Commands run one at a time on the goroutine that called run. run starts
// the SIGINT forwarder (it cancels the running command) and joins it. The
// shell starts one goroutine per background watch and per pending one-shot
// watch event, and joins them before closing the session. lock starts a
// goroutine that watches the held lock node and the hold's Lost channel,
// joined before the lock is released, and one that waits for the command's
// process. elect runs Campaign on a goroutine while it reads the leaders
// from an Observe stream (whose goroutine client/recipe owns); it joins the
// first and drains the stream before it returns. The recipes' own
// goroutines are client/recipe's (its doc.go).
// readline runs its own goroutines, ended by its Close.
package main
