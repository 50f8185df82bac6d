package znode

// This file fixes the exported API that the server is written against.
// Implementations live in the other files of the package.

import (
	"github.com/coord-dev/coord/internal/wire"
)

// Ident is one authenticated identity of a caller, e.g. {"digest",
// "alice:base64(sha1(alice:pw))"} or {"ip", "127.0.0.1"}.
type Ident struct {
	Scheme string
	ID     string
}

// OpKind says what an Op does.
type OpKind uint8

// The op kinds. Values are part of the entry encoding: never renumber.
const (
	OpCreate        OpKind = 1
	OpDelete        OpKind = 2
	OpSet           OpKind = 3
	OpCheck         OpKind = 4
	OpSetACL        OpKind = 5
	OpMulti         OpKind = 6
	OpCreateSession OpKind = 7
	OpCloseSession  OpKind = 8
	OpReap          OpKind = 9  // the leader's delete of an expired TTL node or an empty container
	OpNoop          OpKind = 10 // changes nothing; used to commit a barrier
)

// Op is one operation. Which fields matter depends on Kind:
//
//	OpCreate        Path, Data, Mode, TTLMs (TTL modes), ACL (empty: invalid)
//	OpDelete        Path, Version (-1 any)
//	OpSet           Path, Data, Version
//	OpCheck         Path, Version
//	OpSetACL        Path, ACL, Version (matched against aversion)
//	OpMulti         Ops (create, delete, set, check only)
//	OpCreateSession SessionID, TimeoutMs, PassHash
//	OpCloseSession  SessionID, Expired (true when the leader expired it)
//	OpReap          Path, Mode (ModeContainer or a TTL mode: which rule to re-check)
type Op struct {
	Kind      OpKind
	Path      string
	Data      []byte
	Mode      wire.Mode
	TTLMs     int64
	ACL       []wire.ACL
	Version   int32
	Ops       []Op
	SessionID wire.SessionID
	TimeoutMs int64
	PassHash  []byte
	Expired   bool
}

// Entry is the unit raft carries: one op (possibly a multi) with the context
// apply needs. Apply never reads a clock: TimeMs is stamped by the proposer
// and apply uses max(TimeMs, the last applied time) so time never runs back.
type Entry struct {
	ID      uint64         // proposer-chosen id to find the waiting request; not state
	TimeMs  int64          // proposer's wall clock, ms since the epoch
	Session wire.SessionID // the proposing session; 0 for the system (reaper, expiry)
	Xid     int64          // the request's xid; with Session it identifies a write
	Idents  []Ident        // the caller's authenticated identities, for ACL checks
	Op      Op
}

// Result is the outcome of one op. For a multi, Multi holds one Result per
// op (with Kind set) and Err is the first failing op's code.
type Result struct {
	Kind  OpKind
	Err   wire.Code
	Path  string     // create: the path actually created
	Stat  *wire.Stat // create, set, set_acl; check has none
	Multi []Result
}

// Change is one effect of an applied entry that watches may observe.
type Change struct {
	Zxid int64
	Path string
	Type wire.EventType // NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged
	ACL  []wire.ACL     // the node's ACL at the change (before it, for NodeDeleted)
}

// Committed is one committed raft entry handed to Apply.
type Committed struct {
	Index uint64
	Data  []byte // an encoded Entry; nil for raft's empty entries and conf changes
	Conf  []byte // non-nil: the new membership record, stored atomically with Index
}

// Outcome is what applying one Committed produced.
type Outcome struct {
	Index     uint64
	Entry     *Entry // nil when Data was nil or failed to decode
	Result    Result
	Changes   []Change
	Duplicate bool           // a resent write: Result is the first attempt's, nothing changed
	Closed    wire.SessionID // the session this entry closed, if any
}

// Node is a znode as read.
type Node struct {
	Path  string
	Data  []byte
	Stat  wire.Stat
	ACL   []wire.ACL
	Mode  wire.Mode
	TTLMs int64
}

// Session is a session as the replicated table holds it.
type Session struct {
	ID         wire.SessionID
	TimeoutMs  int64
	PassHash   []byte
	Ephemerals int
}
