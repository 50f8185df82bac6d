package raftstore

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Key layout. Every key this package writes starts with 'r'; see doc.go.
var (
	keyHardState = []byte("rh")
	keySnapshot  = []byte("rs")
	// Entry keys are "re" followed by the index as 8 big-endian bytes, so
	// that pebble's byte order is log order.
	entryPrefix = []byte("re")
	// entryKeysEnd is the exclusive upper bound of every entry key.
	entryKeysEnd = []byte("rf")
)

const (
	entryKeyLen = 2 + 8
	// valueVersion is the first byte of every stored value. A reader
	// refuses any other version with ErrCorrupt; a future layout change
	// adds a version and keeps decoding the old ones.
	valueVersion byte = 1
)

// marshalOpts is used for every stored value. Deterministic so that the
// golden files pin the bytes; raftpb has no maps, so it costs nothing.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// appendEntryKey appends the key of the entry at index i to b.
func appendEntryKey(b []byte, i uint64) []byte {
	b = append(b, entryPrefix...)
	return binary.BigEndian.AppendUint64(b, i)
}

// entryKey returns the key of the entry at index i.
func entryKey(i uint64) []byte {
	return appendEntryKey(make([]byte, 0, entryKeyLen), i)
}

// parseEntryKey returns the index encoded in an entry key.
func parseEntryKey(k []byte) (uint64, error) {
	if len(k) != entryKeyLen || k[0] != entryPrefix[0] || k[1] != entryPrefix[1] {
		return 0, fmt.Errorf("%w: malformed entry key %x", ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[2:]), nil
}

// appendValue appends the stored form of m to b: the version byte, then
// m's protobuf encoding.
func appendValue(b []byte, m proto.Message) ([]byte, error) {
	b = append(b, valueVersion)
	return marshalOpts.MarshalAppend(b, m)
}

// decodeValue decodes a stored value read at key into m. Byte slices in m
// do not alias v, so v may be reused once decodeValue returns.
func decodeValue(key, v []byte, m proto.Message) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: key %x: empty value", ErrCorrupt, key)
	}
	if v[0] != valueVersion {
		return fmt.Errorf("%w: key %x: unsupported value version %d", ErrCorrupt, key, v[0])
	}
	if err := proto.Unmarshal(v[1:], m); err != nil {
		return fmt.Errorf("%w: key %x: %w", ErrCorrupt, key, err)
	}
	return nil
}
