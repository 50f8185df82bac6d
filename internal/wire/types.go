package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// SessionID identifies a session. On the wire it is a string of 16 lowercase
// hex digits; 0 means "no session".
type SessionID uint64

// String returns the 16-digit hex form.
func (id SessionID) String() string {
	var b [16]byte
	hex.Encode(b[:], []byte{byte(id >> 56), byte(id >> 48), byte(id >> 40), byte(id >> 32), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
	return string(b[:])
}

// ParseSessionID parses the 16-digit hex form.
func ParseSessionID(s string) (SessionID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: session id %q is not 16 hex digits", ErrBadArguments, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, fmt.Errorf("%w: session id %q is not 16 lowercase hex digits", ErrBadArguments, s)
		}
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: session id %q: %v", ErrBadArguments, s, err)
	}
	return SessionID(v), nil
}

// MarshalJSON encodes the id as a hex string.
func (id SessionID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + id.String() + `"`), nil
}

// UnmarshalJSON decodes the hex string form.
func (id *SessionID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: session id: %v", ErrBadArguments, err)
	}
	if s == "" {
		*id = 0
		return nil
	}
	v, err := ParseSessionID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Stat is a znode's metadata, as ZooKeeper keeps it.
type Stat struct {
	Czxid          int64     `json:"czxid"`
	Mzxid          int64     `json:"mzxid"`
	Pzxid          int64     `json:"pzxid"`
	Ctime          int64     `json:"ctime"`
	Mtime          int64     `json:"mtime"`
	Version        int32     `json:"version"`
	Cversion       int32     `json:"cversion"`
	Aversion       int32     `json:"aversion"`
	EphemeralOwner SessionID `json:"ephemeral_owner"`
	DataLength     int32     `json:"data_length"`
	NumChildren    int32     `json:"num_children"`
}

// Perms is a set of ZooKeeper permissions.
type Perms uint8

// The permissions, with ZooKeeper's bit values.
const (
	PermRead   Perms = 1 << 0
	PermWrite  Perms = 1 << 1
	PermCreate Perms = 1 << 2
	PermDelete Perms = 1 << 3
	PermAdmin  Perms = 1 << 4
	PermAll          = PermRead | PermWrite | PermCreate | PermDelete | PermAdmin
)

// String returns the perms in "cdrwa" form.
func (p Perms) String() string {
	var b strings.Builder
	for _, x := range [...]struct {
		p Perms
		c byte
	}{{PermCreate, 'c'}, {PermDelete, 'd'}, {PermRead, 'r'}, {PermWrite, 'w'}, {PermAdmin, 'a'}} {
		if p&x.p != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// ParsePerms parses the "cdrwa" form, in any order.
func ParsePerms(s string) (Perms, error) {
	var p Perms
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'c':
			p |= PermCreate
		case 'd':
			p |= PermDelete
		case 'r':
			p |= PermRead
		case 'w':
			p |= PermWrite
		case 'a':
			p |= PermAdmin
		default:
			return 0, fmt.Errorf("%w: permission %q not one of cdrwa", ErrInvalidACL, s[i])
		}
	}
	return p, nil
}

// MarshalJSON encodes perms as a "cdrwa" string.
func (p Perms) MarshalJSON() ([]byte, error) { return []byte(`"` + p.String() + `"`), nil }

// UnmarshalJSON decodes the "cdrwa" form.
func (p *Perms) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: perms: %v", ErrInvalidACL, err)
	}
	v, err := ParsePerms(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ACL is one access control entry.
type ACL struct {
	Perms  Perms  `json:"perms"`
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
}

// OpenACL is ZooKeeper's OPEN_ACL_UNSAFE: world:anyone with every permission.
func OpenACL() []ACL { return []ACL{{Perms: PermAll, Scheme: "world", ID: "anyone"}} }

// CreatorAllACL is ZooKeeper's CREATOR_ALL_ACL: every permission for the
// identities the creator authenticated with.
func CreatorAllACL() []ACL { return []ACL{{Perms: PermAll, Scheme: "auth", ID: ""}} }

// ReadACL is ZooKeeper's READ_ACL_UNSAFE.
func ReadACL() []ACL { return []ACL{{Perms: PermRead, Scheme: "world", ID: "anyone"}} }

// Mode is a znode creation mode.
type Mode string

// The creation modes.
const (
	ModePersistent              Mode = "persistent"
	ModeEphemeral               Mode = "ephemeral"
	ModePersistentSequential    Mode = "persistent_sequential"
	ModeEphemeralSequential     Mode = "ephemeral_sequential"
	ModeContainer               Mode = "container"
	ModePersistentTTL           Mode = "persistent_ttl"
	ModePersistentSequentialTTL Mode = "persistent_sequential_ttl"
)

// Modes lists every creation mode.
func Modes() []Mode {
	return []Mode{ModePersistent, ModeEphemeral, ModePersistentSequential, ModeEphemeralSequential,
		ModeContainer, ModePersistentTTL, ModePersistentSequentialTTL}
}

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool {
	for _, x := range Modes() {
		if m == x {
			return true
		}
	}
	return false
}

// Ephemeral reports whether nodes of mode m die with their session.
func (m Mode) Ephemeral() bool { return m == ModeEphemeral || m == ModeEphemeralSequential }

// Sequential reports whether mode m appends a sequence number.
func (m Mode) Sequential() bool {
	return m == ModePersistentSequential || m == ModeEphemeralSequential || m == ModePersistentSequentialTTL
}

// TTL reports whether mode m needs ttl_ms.
func (m Mode) TTL() bool { return m == ModePersistentTTL || m == ModePersistentSequentialTTL }

// EventType is the kind of a watch event.
type EventType string

// The watch event types.
const (
	EventNodeCreated         EventType = "NodeCreated"
	EventNodeDeleted         EventType = "NodeDeleted"
	EventNodeDataChanged     EventType = "NodeDataChanged"
	EventNodeChildrenChanged EventType = "NodeChildrenChanged"
	EventResync              EventType = "Resync"
)

// WatchMode is the mode of add_watch.
type WatchMode string

// The persistent watch modes.
const (
	WatchPersistent          WatchMode = "persistent"
	WatchPersistentRecursive WatchMode = "persistent_recursive"
)

// WatchType selects watches in remove_watches.
type WatchType string

// The watch types of remove_watches.
const (
	WatchTypeData                WatchType = "data"
	WatchTypeChildren            WatchType = "children"
	WatchTypePersistent          WatchType = "persistent"
	WatchTypePersistentRecursive WatchType = "persistent_recursive"
	WatchTypeAny                 WatchType = "any"
)
