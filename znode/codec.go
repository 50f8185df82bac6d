package znode

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/coord-dev/coord/internal/wire"
)

// This file holds the byte-level helpers shared by every encoding of the
// package (entries, node values, results, changes, sessions, snapshots).
// Integers are varints (signed ones zig-zag), byte strings are a uvarint
// length followed by the bytes.

// errMalformed is wrapped by every decoding error. It matches
// wire.ErrMarshallingError, the code a client sees for a bad entry.
var errMalformed = fmt.Errorf("%w: malformed encoding", wire.ErrMarshallingError)

// errTruncated is the cause of most decoding failures.
var errTruncated = errors.New("truncated")

// enc appends encoded values to b.
type enc struct{ b []byte }

func (e *enc) byte(c byte)      { e.b = append(e.b, c) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *enc) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) raw(p []byte)     { e.b = append(e.b, p...) }
func (e *enc) bool(v bool)      { e.byte(boolByte(v)) }
func (e *enc) acl(acl []wire.ACL) {
	e.uvarint(uint64(len(acl)))
	for _, a := range acl {
		e.byte(byte(a.Perms))
		e.str(a.Scheme)
		e.str(a.ID)
	}
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// dec reads values from b. The first failure sticks in err; every later read
// returns a zero value, so callers check err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
		d.b = nil
	}
}

func (d *dec) byte() byte {
	if len(d.b) == 0 {
		d.fail("%v", errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		if n == 0 {
			d.fail("%v varint", errTruncated)
		} else {
			d.fail("varint overflows 64 bits")
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		if n == 0 {
			d.fail("%v varint", errTruncated)
		} else {
			d.fail("varint overflows 64 bits")
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int32 reads a varint that must fit an int32.
func (d *dec) int32() int32 {
	v := d.varint()
	if v != int64(int32(v)) {
		d.fail("%d does not fit 32 bits", v)
		return 0
	}
	return int32(v)
}

// count reads a list length. Each element takes at least min bytes, so a
// length the remaining input cannot hold is an error: allocation stays
// bounded by the input's size.
func (d *dec) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail("list of %d elements in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

// view returns the next length-prefixed byte string without copying.
func (d *dec) view() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("string of %d bytes in %d", n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// bytes returns a copy of the next byte string; nil when it is empty.
func (d *dec) bytes() []byte {
	p := d.view()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *dec) str() string { return string(d.view()) }

// atom reads a string that is usually one of a few well-known ones (ACL
// schemes and ids, modes), without allocating for those.
func (d *dec) atom() string {
	b := d.view()
	switch string(b) {
	case "":
		return ""
	case SchemeWorld:
		return SchemeWorld
	case "anyone":
		return "anyone"
	case SchemeDigest:
		return SchemeDigest
	case SchemeIP:
		return SchemeIP
	case SchemeAuth:
		return SchemeAuth
	}
	for _, m := range modeCodes {
		if string(b) == string(m) {
			return string(m)
		}
	}
	return string(b)
}

func (d *dec) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad boolean")
	return false
}

func (d *dec) acl() []wire.ACL {
	n := d.count(3)
	if n == 0 {
		return nil
	}
	acl := make([]wire.ACL, n)
	for i := range acl {
		p := d.byte()
		if wire.Perms(p)&^wire.PermAll != 0 {
			d.fail("perms %#x", p)
		}
		acl[i] = wire.ACL{Perms: wire.Perms(p), Scheme: d.atom(), ID: d.atom()}
	}
	return acl
}

// done fails unless the input was consumed exactly.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// be64 returns v as 8 big-endian bytes appended to b.
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
