package znode

import (
	"encoding/binary"
	"strings"

	"github.com/coord-dev/coord/internal/wire"
)

// The key layout (see doc.go). Every key of the replicated state starts with
// 'z'; the local change history starts with 'h'. Integers in keys are
// big-endian so that key order is numeric order.
const (
	prefixState   = "z"
	prefixNode    = "zn" // "zn" + parent path + "\x00" + name; the root is "zn\x00"
	prefixSession = "zs" // "zs" + id
	prefixEph     = "ze" // "ze" + owner id + path: ephemeral index
	prefixResult  = "zr" // "zr" + session id + xid: result cache
	prefixTTL     = "zt" // "zt" + expiry ms + path: childless TTL nodes
	prefixCont    = "zc" // "zc" + path: containers that may be reaped
	keyApplied    = "zma"
	keyConf       = "zmc"
	keyTime       = "zmt"
	keyVersion    = "zmv"
	prefixHistory = "h" // "h" + index: []Change of that entry
	keyHistFloor  = "h" // exactly "h": the lowest index history may hold
)

// stateVersion is the value of keyVersion: the layout of the replicated
// state. Open refuses a store with a version it does not know.
const stateVersion = 1

var (
	stateStart   = []byte("z")
	stateEnd     = []byte("{") // 'z'+1
	historyStart = []byte("h")
	historyEnd   = []byte("i")
)

// nodeKey returns the key of the node at a valid path.
func nodeKey(path string) []byte {
	return appendNodeKey(make([]byte, 0, len(path)+4), path)
}

func appendNodeKey(b []byte, path string) []byte {
	b = append(b, prefixNode...)
	if path == "/" {
		return append(b, 0)
	}
	i := strings.LastIndexByte(path, '/')
	if i == 0 {
		b = append(b, '/')
	} else {
		b = append(b, path[:i]...)
	}
	b = append(b, 0)
	return append(b, path[i+1:]...)
}

// childPrefix returns the prefix shared by the keys of path's children.
func childPrefix(path string) []byte {
	b := make([]byte, 0, len(path)+3)
	b = append(b, prefixNode...)
	b = append(b, path...)
	return append(b, 0)
}

// pathOfNodeKey inverts nodeKey.
func pathOfNodeKey(k []byte) (string, bool) {
	if len(k) < len(prefixNode)+1 || string(k[:len(prefixNode)]) != prefixNode {
		return "", false
	}
	k = k[len(prefixNode):]
	i := -1
	for j, c := range k {
		if c == 0 {
			i = j
			break
		}
	}
	switch {
	case i < 0:
		return "", false
	case i == 0 && len(k) == 1:
		return "/", true
	case i == 0:
		return "", false
	}
	return wire.Join(string(k[:i]), string(k[i+1:])), true
}

func sessionKey(id wire.SessionID) []byte {
	return be64([]byte(prefixSession), uint64(id))
}

func ephKey(owner wire.SessionID, path string) []byte {
	b := make([]byte, 0, len(prefixEph)+8+len(path))
	b = append(b, prefixEph...)
	b = be64(b, uint64(owner))
	return append(b, path...)
}

func ephPrefix(owner wire.SessionID) []byte {
	return be64([]byte(prefixEph), uint64(owner))
}

func resultKey(id wire.SessionID, xid int64) []byte {
	return appendResultKey(make([]byte, 0, len(prefixResult)+16), id, xid)
}

func appendResultKey(b []byte, id wire.SessionID, xid int64) []byte {
	b = append(b, prefixResult...)
	b = be64(b, uint64(id))
	return be64(b, uint64(xid))
}

func resultPrefix(id wire.SessionID) []byte {
	return be64([]byte(prefixResult), uint64(id))
}

func ttlKey(expiry uint64, path string) []byte {
	b := make([]byte, 0, len(prefixTTL)+8+len(path))
	b = append(b, prefixTTL...)
	b = be64(b, expiry)
	return append(b, path...)
}

func containerKey(path string) []byte {
	return append([]byte(prefixCont), path...)
}

func historyKey(index uint64) []byte {
	return be64([]byte(prefixHistory), index)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

func getU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
