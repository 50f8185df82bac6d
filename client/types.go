package client

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"

	"github.com/coord-dev/coord/internal/wire"
)

// Stat is a znode's metadata, as ZooKeeper keeps it.
type Stat = wire.Stat

// ACL is one access control entry of a znode.
type ACL = wire.ACL

// Perms is a set of ZooKeeper permissions, written "cdrwa" on the wire.
type Perms = wire.Perms

// Mode is the creation mode of a znode.
type Mode = wire.Mode

// EventType is the kind of a watch event.
type EventType = wire.EventType

// WatchMode is the mode of a persistent watch set with AddWatch.
type WatchMode = wire.WatchMode

// WatchType selects the watches RemoveWatches removes.
type WatchType = wire.WatchType

// SessionID identifies a session; its String form is 16 lowercase hex digits.
type SessionID = wire.SessionID

// OpError reports a failed operation on a path. Every error returned by an
// operation of Client is an *OpError; match its cause with errors.Is.
type OpError = wire.OpError

// The creation modes.
const (
	// ModePersistent nodes live until deleted.
	ModePersistent = wire.ModePersistent
	// ModeEphemeral nodes are deleted when their session ends.
	ModeEphemeral = wire.ModeEphemeral
	// ModePersistentSequential nodes get a ten-digit sequence number appended.
	ModePersistentSequential = wire.ModePersistentSequential
	// ModeEphemeralSequential nodes are ephemeral and sequential.
	ModeEphemeralSequential = wire.ModeEphemeralSequential
	// ModeContainer nodes are deleted by the server once their last child is.
	ModeContainer = wire.ModeContainer
	// ModePersistentTTL nodes are deleted once they have had no children and
	// no change for their TTL (see WithTTL).
	ModePersistentTTL = wire.ModePersistentTTL
	// ModePersistentSequentialTTL nodes are sequential TTL nodes.
	ModePersistentSequentialTTL = wire.ModePersistentSequentialTTL
)

// The permissions, with ZooKeeper's bit values.
const (
	PermRead   = wire.PermRead
	PermWrite  = wire.PermWrite
	PermCreate = wire.PermCreate
	PermDelete = wire.PermDelete
	PermAdmin  = wire.PermAdmin
	PermAll    = wire.PermAll
)

// The event types. All but EventNotWatching come from the server.
const (
	// EventNodeCreated: the watched node was created.
	EventNodeCreated = wire.EventNodeCreated
	// EventNodeDeleted: the watched node was deleted.
	EventNodeDeleted = wire.EventNodeDeleted
	// EventNodeDataChanged: the watched node's data was set.
	EventNodeDataChanged = wire.EventNodeDataChanged
	// EventNodeChildrenChanged: a child of the watched node was created or
	// deleted.
	EventNodeChildrenChanged = wire.EventNodeChildrenChanged
	// EventResync: the server could not replay the changes a persistent watch
	// missed while the client was reconnecting; re-read the path.
	EventResync = wire.EventResync
	// EventNotWatching is made by the client, never sent by the server: the
	// watch ended without a change of its node, because the session expired
	// (Event.Err matches ErrSessionExpired), the client was closed (ErrClosed)
	// or the watch was removed with RemoveWatches (ErrWatchRemoved).
	EventNotWatching EventType = "NotWatching"
)

// The persistent watch modes of AddWatch.
const (
	// WatchPersistent fires for every change of the node itself, including
	// NodeChildrenChanged.
	WatchPersistent = wire.WatchPersistent
	// WatchPersistentRecursive fires for NodeCreated, NodeDeleted and
	// NodeDataChanged of the node and every node below it.
	WatchPersistentRecursive = wire.WatchPersistentRecursive
)

// The watch types of RemoveWatches.
const (
	// WatchTypeData removes data and exists watches.
	WatchTypeData = wire.WatchTypeData
	// WatchTypeChildren removes child watches.
	WatchTypeChildren = wire.WatchTypeChildren
	// WatchTypePersistent removes persistent watches.
	WatchTypePersistent = wire.WatchTypePersistent
	// WatchTypePersistentRecursive removes persistent recursive watches.
	WatchTypePersistentRecursive = wire.WatchTypePersistentRecursive
	// WatchTypeAny removes every watch on the path.
	WatchTypeAny = wire.WatchTypeAny
)

// Event is a watch event delivered to a watch channel.
type Event struct {
	// Type says what happened.
	Type EventType
	// Path is the path of the node that changed (for a recursive watch, a
	// node at or below the watched path).
	Path string
	// Zxid is the zxid the server sent with the event: the change's zxid.
	// It is 0 for EventNotWatching.
	Zxid int64
	// Err is set only for EventNotWatching and says why the watch ended.
	Err error
}

// OpenACL returns ZooKeeper's OPEN_ACL_UNSAFE: world:anyone with every
// permission. It is the ACL of a node created without WithACL.
func OpenACL() []ACL { return wire.OpenACL() }

// CreatorAllACL returns ZooKeeper's CREATOR_ALL_ACL: every permission for
// the identities the creating session authenticated with (see AddAuth).
func CreatorAllACL() []ACL { return wire.CreatorAllACL() }

// ReadACL returns ZooKeeper's READ_ACL_UNSAFE: world:anyone may read.
func ReadACL() []ACL { return wire.ReadACL() }

// DigestACL returns an ACL entry granting perms to the digest identity of
// user with password, as ZooKeeper computes it:
// user:base64(sha1(user:password)). A session gains the identity with
// AddAuth(ctx, "digest", user+":"+password).
func DigestACL(perms Perms, user, password string) ACL {
	sum := sha1.Sum([]byte(user + ":" + password))
	return ACL{Perms: perms, Scheme: "digest", ID: fmt.Sprintf("%s:%s", user, base64.StdEncoding.EncodeToString(sum[:]))}
}
