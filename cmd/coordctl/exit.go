package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/coord-dev/coord/client"
)

// The exit codes of coordctl, one per class of error. docs/coordctl.md and
// the app's help carry the same table; exitTable below is its source.
const (
	exitOK          = 0
	exitUsage       = 1 // bad command line, bad path or data, server BadArguments
	exitNoNode      = 2 // NoNode (and no such member)
	exitNodeExists  = 3 // NodeExists (and member already exists)
	exitBadVersion  = 4 // BadVersion
	exitNotEmpty    = 5 // NotEmpty
	exitAuth        = 6 // NoAuth, AuthFailed, InvalidACL
	exitConnection  = 7 // no server reachable, ConnectionLoss, timeouts, Throttled
	exitServer      = 8 // any other server error
	exitExpired     = 9 // SessionExpired (also: a held lock or leadership lost)
	exitInterrupted = 130
)

// exitClass names each code, for the JSON error object and the docs.
var exitClass = map[int]string{
	exitUsage:       "usage",
	exitNoNode:      "no_node",
	exitNodeExists:  "node_exists",
	exitBadVersion:  "bad_version",
	exitNotEmpty:    "not_empty",
	exitAuth:        "auth",
	exitConnection:  "connection",
	exitServer:      "server",
	exitExpired:     "session_expired",
	exitInterrupted: "interrupted",
}

// cmdError is an error with the exit code it maps to and a hint telling
// the user what to do about it.
type cmdError struct {
	code int
	err  error
	hint string
}

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 1).
func usagef(format string, args ...any) error {
	return &cmdError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// usageHint returns a usage error with a hint.
func usageHint(hint, format string, args ...any) error {
	return &cmdError{code: exitUsage, err: fmt.Errorf(format, args...), hint: hint}
}

// exitStatus is returned by a command that wants a specific exit code and
// has already said everything it had to (lock passing its command's code
// through). It prints nothing.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// classify maps an error to its exit code and a hint. servers is what
// --servers says, for connection hints.
func classify(err error, servers []string) (int, string) {
	var ce *cmdError
	if errors.As(err, &ce) {
		if ce.hint != "" {
			return ce.code, ce.hint
		}
		code, hint := classify(ce.err, servers)
		if ce.code != 0 {
			code = ce.code
		}
		if code == exitUsage && hint == "" {
			hint = `run "coordctl help" for the commands and flags`
		}
		return code, hint
	}
	srv := strings.Join(servers, ",")
	var nerr net.Error
	switch {
	case errors.Is(err, client.ErrSessionExpired):
		return exitExpired, "the session expired: its ephemeral nodes and watches are gone; run the command again (and raise --session-timeout if the network is slow)"
	case errors.Is(err, context.Canceled):
		return exitInterrupted, ""
	case errors.Is(err, client.ErrNoNode):
		return exitNoNode, `check the path ("coordctl ls PARENT" lists what exists); create it with "coordctl create PATH"`
	case errors.Is(err, client.ErrNodeExists):
		return exitNodeExists, `use "coordctl set PATH DATA" to change its data, or delete it first`
	case errors.Is(err, client.ErrBadVersion):
		return exitBadVersion, `the node changed since that version was read: read it again ("coordctl stat PATH") and retry with the current version, or omit -v`
	case errors.Is(err, client.ErrNotEmpty):
		return exitNotEmpty, `delete its children first, or use "coordctl deleteall PATH"`
	case errors.Is(err, client.ErrNoAuth):
		return exitAuth, `authenticate with --auth digest:USER:PASSWORD (in the shell: addauth digest USER:PASSWORD), and check the node's ACL with "coordctl getacl PATH"`
	case errors.Is(err, client.ErrAuthFailed):
		return exitAuth, "check the credentials given with --auth"
	case errors.Is(err, client.ErrInvalidACL):
		return exitAuth, "an ACL entry is scheme:id:perms, e.g. world:anyone:cdrwa or digest:USER:BASE64SHA1:rw; the auth scheme needs an authenticated session (--auth)"
	case errors.Is(err, client.ErrBadArguments):
		return exitUsage, "the server refused the request's arguments (a bad path, data too large, a bad mode or TTL)"
	case errors.Is(err, client.ErrConnectionLoss), errors.Is(err, client.ErrOperationTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, client.ErrSessionMoved):
		return exitConnection, fmt.Sprintf("is coordd running and reachable at %s? Set --servers (or COORD_SERVERS), or raise --timeout", srv)
	case errors.Is(err, client.ErrThrottled):
		return exitConnection, "the server is overloaded; retry later"
	case errors.As(err, &nerr):
		return exitConnection, fmt.Sprintf("is coordd running and reachable at %s? Set --servers (or COORD_SERVERS)", srv)
	case errors.Is(err, client.ErrNoChildrenForEphemerals):
		return exitServer, "ephemeral nodes cannot have children: create the parent as a persistent node"
	}
	return exitServer, ""
}

// errorJSON is the shape of the error object written to stderr with -o json.
type errorJSON struct {
	Error    string `json:"error"`
	Class    string `json:"class"`
	ExitCode int    `json:"exit_code"`
	Hint     string `json:"hint,omitempty"`
}

// report writes err to w and returns the exit code.
func report(w io.Writer, err error, servers []string, asJSON bool) int {
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	code, hint := classify(err, servers)
	if code == exitInterrupted {
		fmt.Fprintln(w, "coordctl: interrupted")
		return code
	}
	msg := errText(err)
	if asJSON {
		b, _ := json.Marshal(errorJSON{Error: msg, Class: exitClass[code], ExitCode: code, Hint: hint})
		fmt.Fprintf(w, "%s\n", b)
		return code
	}
	fmt.Fprintf(w, "coordctl: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(w, "hint: %s\n", hint)
	}
	return code
}

// errText is err's message without the repetition that arises when the
// server's message restates the client's ("get /a: node does not exist:
// get /a: node does not exist").
func errText(err error) string {
	s := err.Error()
	for i := 1; i+2 < len(s); i++ {
		if s[i:i+2] == ": " && strings.HasSuffix(s, ": "+s[:i]) && len(s) == 2*i+2 {
			return s[:i]
		}
	}
	return s
}

// exitTable is the exit code table shown in the help and the docs.
const exitTable = `EXIT CODES:
   0    success
   1    usage: bad command line, path, data or ACL (nothing was changed)
   2    no node: the node (or member) does not exist
   3    node exists: the node (or member) already exists
   4    bad version: the node's version is not the one given with -v
   5    not empty: the node has children
   6    auth: not authorized (NoAuth), bad credentials, invalid ACL
   7    connection: no server reachable, connection lost, timeout
   8    other server error
   9    session expired (also: a lock or leadership lost with it)
   130  interrupted (Ctrl-C) before the command finished
   lock passes its command's exit code through (127: command not found)`
