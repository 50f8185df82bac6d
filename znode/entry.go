package znode

import (
	"github.com/coord-dev/coord/internal/wire"
)

// entryVersion is the first byte of every encoded Entry. A decoder refuses
// versions it does not know, so a newer proposer cannot be misread.
const entryVersion = 1

// maxOpDepth bounds the nesting of Ops in an encoded entry. Apply refuses a
// nested multi anyway; the bound only keeps decoding of hostile input cheap.
const maxOpDepth = 4

// The bits of an encoded Op's field mask: a field is encoded only when it
// differs from its zero value, in this order. Never renumber.
const (
	fPath = 1 << iota
	fData
	fMode
	fTTL
	fACL
	fVersion
	fOps
	fSessionID
	fTimeout
	fPassHash
	fExpired

	fAll = 1<<iota - 1
)

// Marshal encodes the entry in its versioned binary form (the bytes raft
// carries). DecodeEntry(e.Marshal()) equals e up to nil versus empty slices.
func (e *Entry) Marshal() []byte {
	w := enc{b: make([]byte, 0, 64+e.Op.sizeHint())}
	w.byte(entryVersion)
	w.uvarint(e.ID)
	w.varint(e.TimeMs)
	w.uvarint(uint64(e.Session))
	w.varint(e.Xid)
	w.uvarint(uint64(len(e.Idents)))
	for _, id := range e.Idents {
		w.str(id.Scheme)
		w.str(id.ID)
	}
	e.Op.encode(&w)
	return w.b
}

func (op *Op) sizeHint() int {
	n := len(op.Path) + len(op.Data) + 16
	for i := range op.Ops {
		n += op.Ops[i].sizeHint()
	}
	return n
}

func (op *Op) encode(w *enc) {
	var mask uint64
	if op.Path != "" {
		mask |= fPath
	}
	if len(op.Data) > 0 {
		mask |= fData
	}
	if op.Mode != "" {
		mask |= fMode
	}
	if op.TTLMs != 0 {
		mask |= fTTL
	}
	if len(op.ACL) > 0 {
		mask |= fACL
	}
	if op.Version != 0 {
		mask |= fVersion
	}
	if len(op.Ops) > 0 {
		mask |= fOps
	}
	if op.SessionID != 0 {
		mask |= fSessionID
	}
	if op.TimeoutMs != 0 {
		mask |= fTimeout
	}
	if len(op.PassHash) > 0 {
		mask |= fPassHash
	}
	if op.Expired {
		mask |= fExpired
	}
	w.byte(byte(op.Kind))
	w.uvarint(mask)
	if mask&fPath != 0 {
		w.str(op.Path)
	}
	if mask&fData != 0 {
		w.bytes(op.Data)
	}
	if mask&fMode != 0 {
		w.str(string(op.Mode))
	}
	if mask&fTTL != 0 {
		w.varint(op.TTLMs)
	}
	if mask&fACL != 0 {
		w.acl(op.ACL)
	}
	if mask&fVersion != 0 {
		w.varint(int64(op.Version))
	}
	if mask&fOps != 0 {
		w.uvarint(uint64(len(op.Ops)))
		for i := range op.Ops {
			op.Ops[i].encode(w)
		}
	}
	if mask&fSessionID != 0 {
		w.uvarint(uint64(op.SessionID))
	}
	if mask&fTimeout != 0 {
		w.varint(op.TimeoutMs)
	}
	if mask&fPassHash != 0 {
		w.bytes(op.PassHash)
	}
}

// DecodeEntry decodes an entry encoded by Marshal. It rejects every malformed
// input with an error matching wire.ErrMarshallingError and never panics;
// what it allocates is bounded by a small multiple of len(b). The result
// shares no memory with b.
func DecodeEntry(b []byte) (*Entry, error) {
	d := dec{b: b}
	if v := d.byte(); d.err == nil && v != entryVersion {
		d.fail("entry version %d, want %d", v, entryVersion)
	}
	e := &Entry{}
	e.ID = d.uvarint()
	e.TimeMs = d.varint()
	e.Session = wire.SessionID(d.uvarint())
	e.Xid = d.varint()
	if n := d.count(2); n > 0 {
		e.Idents = make([]Ident, n)
		for i := range e.Idents {
			e.Idents[i] = Ident{Scheme: d.str(), ID: d.str()}
		}
	}
	decodeOp(&d, &e.Op, 0)
	if err := d.done(); err != nil {
		return nil, err
	}
	return e, nil
}

func decodeOp(d *dec, op *Op, depth int) {
	op.Kind = OpKind(d.byte())
	if d.err == nil && (op.Kind < OpCreate || op.Kind > OpNoop) {
		d.fail("op kind %d", op.Kind)
	}
	mask := d.uvarint()
	if d.err == nil && mask&^fAll != 0 {
		d.fail("unknown op fields %#x", mask&^fAll)
	}
	if d.err != nil {
		return
	}
	if mask&fPath != 0 {
		op.Path = d.str()
	}
	if mask&fData != 0 {
		op.Data = d.bytes()
	}
	if mask&fMode != 0 {
		op.Mode = wire.Mode(d.atom())
	}
	if mask&fTTL != 0 {
		op.TTLMs = d.varint()
	}
	if mask&fACL != 0 {
		op.ACL = d.acl()
	}
	if mask&fVersion != 0 {
		op.Version = d.int32()
	}
	if mask&fOps != 0 {
		if depth+1 >= maxOpDepth {
			d.fail("ops nested more than %d deep", maxOpDepth)
			return
		}
		// Grow as elements decode rather than trusting the count: memory
		// then stays proportional to the input even when nested counts
		// each claim the whole remaining input.
		if n := d.count(2); n > 0 {
			op.Ops = make([]Op, 0, min(n, 16))
			for range n {
				var sub Op
				decodeOp(d, &sub, depth+1)
				if d.err != nil {
					return
				}
				op.Ops = append(op.Ops, sub)
			}
		}
	}
	if mask&fSessionID != 0 {
		op.SessionID = wire.SessionID(d.uvarint())
	}
	if mask&fTimeout != 0 {
		op.TimeoutMs = d.varint()
	}
	if mask&fPassHash != 0 {
		op.PassHash = d.bytes()
	}
	op.Expired = mask&fExpired != 0
}
