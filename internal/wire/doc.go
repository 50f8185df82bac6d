// Package wire holds the types of coord's client protocol (PROTOCOL.md): the
// JSON request and response frames, Stat, ACL, create modes, watch events,
// the error codes and their Go sentinels, and path validation.
//
// It imports only the standard library, so that the client shares it with the
// server without pulling in raft or pebble. Nothing here holds mutable state.
//
// Invariants: every wire error code maps to exactly one sentinel error and
// back (codes.go, proven complete by a test); a path accepted by ValidatePath
// is absolute, canonical and at most MaxPathBytes long.
package wire
