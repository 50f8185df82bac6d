package znode

import (
	"github.com/coord-dev/coord/internal/wire"
)

// This file encodes the values stored besides nodes: cached results (the
// exactly-once table), change lists (history) and sessions. Each starts with
// a version byte.

const (
	resultVersion  = 1
	changeVersion  = 1
	sessionVersion = 1
)

// The bits of an encoded Result's flags.
const (
	rPath = 1 << iota
	rStat
	rMulti
)

func encodeResult(b []byte, r *Result) []byte {
	w := enc{b: b}
	w.byte(resultVersion)
	r.encode(&w)
	return w.b
}

func (r *Result) encode(w *enc) {
	var flags uint64
	if r.Path != "" {
		flags |= rPath
	}
	if r.Stat != nil {
		flags |= rStat
	}
	if r.Multi != nil {
		flags |= rMulti
	}
	w.byte(byte(r.Kind))
	w.str(string(r.Err))
	w.uvarint(flags)
	if flags&rPath != 0 {
		w.str(r.Path)
	}
	if flags&rStat != 0 {
		encodeStat(w, r.Stat)
	}
	if flags&rMulti != 0 {
		w.uvarint(uint64(len(r.Multi)))
		for i := range r.Multi {
			r.Multi[i].encode(w)
		}
	}
}

func decodeResult(v []byte) (Result, error) {
	d := dec{b: v}
	if ver := d.byte(); d.err == nil && ver != resultVersion {
		d.fail("result version %d", ver)
	}
	var r Result
	decodeResultInto(&d, &r, 0)
	return r, d.done()
}

func decodeResultInto(d *dec, r *Result, depth int) {
	r.Kind = OpKind(d.byte())
	r.Err = wire.Code(d.str())
	flags := d.uvarint()
	if flags&rPath != 0 {
		r.Path = d.str()
	}
	if flags&rStat != 0 {
		st := decodeStat(d)
		r.Stat = &st
	}
	if flags&rMulti != 0 {
		if depth > 0 {
			d.fail("nested multi result")
			return
		}
		r.Multi = make([]Result, d.count(3))
		for i := range r.Multi {
			decodeResultInto(d, &r.Multi[i], depth+1)
		}
	}
}

func encodeStat(w *enc, s *wire.Stat) {
	w.varint(s.Czxid)
	w.varint(s.Mzxid)
	w.varint(s.Pzxid)
	w.varint(s.Ctime)
	w.varint(s.Mtime)
	w.varint(int64(s.Version))
	w.varint(int64(s.Cversion))
	w.varint(int64(s.Aversion))
	w.uvarint(uint64(s.EphemeralOwner))
	w.varint(int64(s.DataLength))
	w.varint(int64(s.NumChildren))
}

func decodeStat(d *dec) wire.Stat {
	return wire.Stat{
		Czxid:          d.varint(),
		Mzxid:          d.varint(),
		Pzxid:          d.varint(),
		Ctime:          d.varint(),
		Mtime:          d.varint(),
		Version:        d.int32(),
		Cversion:       d.int32(),
		Aversion:       d.int32(),
		EphemeralOwner: wire.SessionID(d.uvarint()),
		DataLength:     d.int32(),
		NumChildren:    d.int32(),
	}
}

// eventCodes maps event types to their byte in a change list. Never renumber.
var eventCodes = [...]wire.EventType{
	1: wire.EventNodeCreated,
	2: wire.EventNodeDeleted,
	3: wire.EventNodeDataChanged,
	4: wire.EventNodeChildrenChanged,
}

func eventCode(t wire.EventType) byte {
	for i, x := range eventCodes {
		if i > 0 && x == t {
			return byte(i)
		}
	}
	panic("znode: change of unknown type " + string(t))
}

func encodeChanges(b []byte, cs []Change) []byte {
	w := enc{b: b}
	w.byte(changeVersion)
	w.uvarint(uint64(len(cs)))
	for i := range cs {
		c := &cs[i]
		w.varint(c.Zxid)
		w.str(c.Path)
		w.byte(eventCode(c.Type))
		w.acl(c.ACL)
	}
	return w.b
}

func decodeChanges(v []byte) ([]Change, error) {
	d := dec{b: v}
	if ver := d.byte(); d.err == nil && ver != changeVersion {
		d.fail("change list version %d", ver)
	}
	cs := make([]Change, d.count(4))
	for i := range cs {
		cs[i].Zxid = d.varint()
		cs[i].Path = d.str()
		t := d.byte()
		if d.err == nil && (t == 0 || int(t) >= len(eventCodes)) {
			d.fail("event type %d", t)
		}
		if d.err != nil {
			break
		}
		cs[i].Type = eventCodes[t]
		cs[i].ACL = d.acl()
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return cs, nil
}

func encodeSession(b []byte, s *sessionEntry) []byte {
	w := enc{b: b}
	w.byte(sessionVersion)
	w.varint(s.timeoutMs)
	w.bytes(s.passHash)
	return w.b
}

func decodeSession(id wire.SessionID, v []byte) (*sessionEntry, error) {
	d := dec{b: v}
	if ver := d.byte(); d.err == nil && ver != sessionVersion {
		d.fail("session version %d", ver)
	}
	s := &sessionEntry{id: id, timeoutMs: d.varint(), passHash: d.bytes()}
	if err := d.done(); err != nil {
		return nil, err
	}
	return s, nil
}
