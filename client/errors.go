package client

import (
	"errors"
	"fmt"

	"github.com/coord-dev/coord/internal/wire"
)

// The server's error codes as sentinel errors, shared with the server through
// the wire package. Operations return them wrapped in an *OpError: match
// them with errors.Is, never with ==.
var (
	ErrNoNode                  = wire.ErrNoNode
	ErrNodeExists              = wire.ErrNodeExists
	ErrBadVersion              = wire.ErrBadVersion
	ErrNotEmpty                = wire.ErrNotEmpty
	ErrNoChildrenForEphemerals = wire.ErrNoChildrenForEphemerals
	ErrBadArguments            = wire.ErrBadArguments
	ErrInvalidACL              = wire.ErrInvalidACL
	ErrNoAuth                  = wire.ErrNoAuth
	ErrAuthFailed              = wire.ErrAuthFailed
	ErrSessionExpired          = wire.ErrSessionExpired
	ErrSessionMoved            = wire.ErrSessionMoved
	ErrConnectionLoss          = wire.ErrConnectionLoss
	ErrOperationTimeout        = wire.ErrOperationTimeout
	ErrMarshallingError        = wire.ErrMarshallingError
	ErrRuntimeInconsistency    = wire.ErrRuntimeInconsistency
	ErrUnimplemented           = wire.ErrUnimplemented
	ErrQuotaExceeded           = wire.ErrQuotaExceeded
	ErrThrottled               = wire.ErrThrottled
	ErrNoWatcher               = wire.ErrNoWatcher
	// ErrBadPath is returned for a path PROTOCOL.md does not accept; it
	// matches ErrBadArguments too.
	ErrBadPath = wire.ErrBadPath
)

// Errors made by the client itself.
var (
	// ErrUnknownOutcome is returned for a write that was sent but whose
	// answer was lost together with its session: the write may or may not
	// have been applied. The error matches ErrSessionExpired (or ErrClosed
	// when Close cut the write short) as well.
	ErrUnknownOutcome = errors.New("outcome unknown: the write may or may not have been applied")
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("client closed")
	// ErrWatchRemoved is the Err of the EventNotWatching event a watch channel
	// receives when RemoveWatches removed the watch.
	ErrWatchRemoved = errors.New("watch removed")
)

// errUnknownExpired is the cause of a sent write failed by session expiry.
var errUnknownExpired = fmt.Errorf("%w: %w", ErrUnknownOutcome, ErrSessionExpired)

// errUnknownClosed is the cause of a sent write failed by Close.
var errUnknownClosed = fmt.Errorf("%w: %w", ErrUnknownOutcome, ErrClosed)

// codeError returns the error of a response code, with the server's message.
func codeError(code wire.Code, msg string) error {
	err := code.Err()
	if err == nil || msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}
