package recipe

import "errors"

// Errors of the recipes. Errors from the client (client.ErrSessionExpired,
// client.ErrClosed, *client.OpError, …) and from contexts are returned as
// they are, or wrapped so that errors.Is still matches them.
var (
	// ErrLocked is returned by TryLock, TryRLock and TryAcquire when the
	// lock or every permit is held by others.
	ErrLocked = errors.New("recipe: held by another")
	// ErrNotHeld is returned by Unlock, Release, Resign and Do when this
	// instance holds nothing.
	ErrNotHeld = errors.New("recipe: not held")
	// ErrAlreadyHeld is returned by Lock, Campaign and Acquire when this
	// instance already holds (or is acquiring) the lock, leadership or
	// permit: each instance is one participant.
	ErrAlreadyHeld = errors.New("recipe: already held or being acquired by this instance")
	// ErrLockLost reports that a hold ended without Unlock (or that a
	// waiter's node vanished before it acquired): its ephemeral node was
	// deleted, by the session's expiry (the error then also matches
	// client.ErrSessionExpired), by Close (client.ErrClosed) or by another
	// client. Whatever the holder did after the loss may overlap with the
	// next holder: see the fencing token.
	ErrLockLost = errors.New("recipe: lost")
	// ErrNoLeader is returned by Election.Leader when there is no candidate.
	ErrNoLeader = errors.New("recipe: no leader")
)
