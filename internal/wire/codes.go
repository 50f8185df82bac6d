package wire

import (
	"errors"
	"fmt"
)

// Code is an error code carried in the `err` field of a response. The empty
// code means success.
type Code string

// The error codes of PROTOCOL.md.
const (
	OK                      Code = ""
	NoNode                  Code = "NoNode"
	NodeExists              Code = "NodeExists"
	BadVersion              Code = "BadVersion"
	NotEmpty                Code = "NotEmpty"
	NoChildrenForEphemerals Code = "NoChildrenForEphemerals"
	BadArguments            Code = "BadArguments"
	InvalidACL              Code = "InvalidACL"
	NoAuth                  Code = "NoAuth"
	AuthFailed              Code = "AuthFailed"
	SessionExpired          Code = "SessionExpired"
	SessionMoved            Code = "SessionMoved"
	ConnectionLoss          Code = "ConnectionLoss"
	OperationTimeout        Code = "OperationTimeout"
	MarshallingError        Code = "MarshallingError"
	RuntimeInconsistency    Code = "RuntimeInconsistency"
	Unimplemented           Code = "Unimplemented"
	QuotaExceeded           Code = "QuotaExceeded"
	Throttled               Code = "Throttled"
	NoWatcher               Code = "NoWatcher"
)

// Sentinel errors, one per non-empty code. Match them with errors.Is.
var (
	ErrNoNode                  = errors.New("node does not exist")
	ErrNodeExists              = errors.New("node already exists")
	ErrBadVersion              = errors.New("version does not match")
	ErrNotEmpty                = errors.New("node has children")
	ErrNoChildrenForEphemerals = errors.New("ephemeral nodes may not have children")
	ErrBadArguments            = errors.New("bad arguments")
	ErrInvalidACL              = errors.New("invalid ACL")
	ErrNoAuth                  = errors.New("not authorized")
	ErrAuthFailed              = errors.New("authentication failed")
	ErrSessionExpired          = errors.New("session expired")
	ErrSessionMoved            = errors.New("session moved to another server")
	ErrConnectionLoss          = errors.New("connection lost")
	ErrOperationTimeout        = errors.New("operation timed out")
	ErrMarshallingError        = errors.New("malformed frame")
	ErrRuntimeInconsistency    = errors.New("runtime inconsistency")
	ErrUnimplemented           = errors.New("unimplemented operation")
	ErrQuotaExceeded           = errors.New("quota exceeded")
	ErrThrottled               = errors.New("throttled")
	ErrNoWatcher               = errors.New("no such watcher")
)

// codeTable is the one table mapping codes to sentinels and back. It is never
// modified.
var codeTable = [...]struct {
	code Code
	err  error
}{
	{NoNode, ErrNoNode},
	{NodeExists, ErrNodeExists},
	{BadVersion, ErrBadVersion},
	{NotEmpty, ErrNotEmpty},
	{NoChildrenForEphemerals, ErrNoChildrenForEphemerals},
	{BadArguments, ErrBadArguments},
	{InvalidACL, ErrInvalidACL},
	{NoAuth, ErrNoAuth},
	{AuthFailed, ErrAuthFailed},
	{SessionExpired, ErrSessionExpired},
	{SessionMoved, ErrSessionMoved},
	{ConnectionLoss, ErrConnectionLoss},
	{OperationTimeout, ErrOperationTimeout},
	{MarshallingError, ErrMarshallingError},
	{RuntimeInconsistency, ErrRuntimeInconsistency},
	{Unimplemented, ErrUnimplemented},
	{QuotaExceeded, ErrQuotaExceeded},
	{Throttled, ErrThrottled},
	{NoWatcher, ErrNoWatcher},
}

// Codes returns every non-empty code, in PROTOCOL.md order.
func Codes() []Code {
	out := make([]Code, len(codeTable))
	for i, e := range codeTable {
		out[i] = e.code
	}
	return out
}

// Err returns the sentinel error for c, nil for OK, and an error wrapping
// ErrRuntimeInconsistency for a code this version does not know.
func (c Code) Err() error {
	if c == OK {
		return nil
	}
	for _, e := range codeTable {
		if e.code == c {
			return e.err
		}
	}
	return fmt.Errorf("unknown error code %q: %w", string(c), ErrRuntimeInconsistency)
}

// Known reports whether c is OK or one of the codes of PROTOCOL.md.
func (c Code) Known() bool {
	if c == OK {
		return true
	}
	for _, e := range codeTable {
		if e.code == c {
			return true
		}
	}
	return false
}

// CodeOf returns the code of err: OK for nil, the matching code when err is
// (or wraps) a sentinel, else RuntimeInconsistency.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return RuntimeInconsistency
}

// OpError reports a failed operation on a path.
type OpError struct {
	Op   string
	Path string
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Path + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }
