package watch

import (
	"fmt"
	"math/bits"

	"github.com/coord-dev/coord/internal/wire"
)

// WatcherID identifies a watcher: one client connection on this server. The
// server chooses the ids; the registry only compares them.
type WatcherID uint64

// Kind is the kind of a watch.
type Kind uint8

// The kinds of watches. The zero Kind is invalid.
const (
	// Data is a one-shot watch set by get (or by exists on a present node).
	Data Kind = iota + 1
	// Exist is a one-shot watch set by exists on an absent node. The
	// registry stores it as Data, as ZooKeeper's server does; the kind only
	// matters to ResumeEvent, because set_watches lists exist watches apart.
	Exist
	// Child is a one-shot watch set by children.
	Child
	// Persistent is add_watch with mode persistent.
	Persistent
	// PersistentRecursive is add_watch with mode persistent_recursive.
	PersistentRecursive
)

var kindNames = [...]string{
	Data:                "data",
	Exist:               "exist",
	Child:               "children",
	Persistent:          "persistent",
	PersistentRecursive: "persistent_recursive",
}

// String returns the kind's name as set_watches spells its list.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool { return k >= Data && k <= PersistentRecursive }

// ModeKind returns the kind add_watch registers for mode m.
func ModeKind(m wire.WatchMode) (Kind, error) {
	switch m {
	case wire.WatchPersistent:
		return Persistent, nil
	case wire.WatchPersistentRecursive:
		return PersistentRecursive, nil
	}
	return 0, fmt.Errorf("%w: watch mode %q", wire.ErrBadArguments, m)
}

// kindSet is the set of kinds one watcher holds on one path, as bits.
type kindSet uint8

const (
	bitData kindSet = 1 << iota
	bitChild
	bitPersistent
	bitRecursive

	oneShot = bitData | bitChild
	allBits = bitData | bitChild | bitPersistent | bitRecursive
)

// bit returns the bit that stores kind k; 0 for an invalid kind.
func (k Kind) bit() kindSet {
	switch k {
	case Data, Exist:
		return bitData
	case Child:
		return bitChild
	case Persistent:
		return bitPersistent
	case PersistentRecursive:
		return bitRecursive
	}
	return 0
}

// typeBits returns the bits remove_watches of type t removes; 0 for an
// unknown type.
func typeBits(t wire.WatchType) kindSet {
	switch t {
	case wire.WatchTypeData:
		return bitData
	case wire.WatchTypeChildren:
		return bitChild
	case wire.WatchTypePersistent:
		return bitPersistent
	case wire.WatchTypePersistentRecursive:
		return bitRecursive
	case wire.WatchTypeAny:
		return allBits
	}
	return 0
}

// selfBits returns the kinds a change of type e fires on the changed path
// itself. Ancestors fire only bitRecursive, and only when selfBits has it.
func selfBits(e wire.EventType) kindSet {
	switch e {
	case wire.EventNodeCreated, wire.EventNodeDataChanged:
		return bitData | bitPersistent | bitRecursive
	case wire.EventNodeDeleted:
		return allBits
	case wire.EventNodeChildrenChanged:
		return bitChild | bitPersistent
	}
	return 0
}

// count returns the number of kinds in s.
func (s kindSet) count() int { return bits.OnesCount8(uint8(s)) }

// kinds returns the kinds in s, in Kind order (Exist is reported as Data).
func (s kindSet) kinds() []Kind {
	var out []Kind
	for _, k := range [...]Kind{Data, Child, Persistent, PersistentRecursive} {
		if s&k.bit() != 0 {
			out = append(out, k)
		}
	}
	return out
}
