package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/coord-dev/coord/internal/wire"
)

// PasswordLen is the length in bytes of a session password.
const PasswordLen = 16

// NewID returns a random session id, never 0. Ids are unguessable, not
// guaranteed unique: the create-session entry must still refuse an id that is
// already in the table (a collision is a one in 2^64 event per pair).
func NewID() (wire.SessionID, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("session: new id: %w", err)
		}
		if id := wire.SessionID(binary.BigEndian.Uint64(b[:])); id != 0 {
			return id, nil
		}
	}
}

// NewPassword returns PasswordLen random bytes, the session's password. It is
// sent to the client once; the server keeps only its hash.
func NewPassword() ([]byte, error) {
	pw := make([]byte, PasswordLen)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("session: new password: %w", err)
	}
	return pw, nil
}

// HashPassword returns the SHA-256 of pw, what the session table stores. The
// password is 128 random bits, so a plain hash is enough: there is nothing to
// brute-force.
func HashPassword(pw []byte) []byte {
	h := sha256.Sum256(pw)
	return h[:]
}

// CheckPassword reports whether pw hashes to hash, in time independent of
// where they differ. An empty hash matches nothing.
func CheckPassword(hash, pw []byte) bool {
	return subtle.ConstantTimeCompare(hash, HashPassword(pw)) == 1
}

// Negotiate returns the session timeout granted for requestedMs: clamped into
// [minMs, maxMs], as ZooKeeper does. A request of 0 or less gets minMs. If
// minMs > maxMs (a configuration Validate should refuse) maxMs wins, as in
// ZooKeeper, which applies the minimum first.
func Negotiate(requestedMs, minMs, maxMs int64) int64 {
	t := requestedMs
	if t < minMs {
		t = minMs
	}
	if t > maxMs {
		t = maxMs
	}
	return t
}
