package znode

import (
	"github.com/coord-dev/coord/internal/wire"
)

// node is a znode as the store keeps it. Values are immutable once stored in
// a txn or read: an op that changes a node copies the struct (ACL and Data
// slices are shared and never written in place).
type node struct {
	stat wire.Stat // DataLength is len(data)
	mode wire.Mode
	ttl  int64
	seq  int64 // children ever created under this node: the sequential suffix
	acl  []wire.ACL
	data []byte
}

// nodeVersion is the first byte of every node value.
const nodeVersion = 1

// modeCodes maps modes to their byte in a node value. Never renumber.
var modeCodes = [...]wire.Mode{
	0: wire.ModePersistent,
	1: wire.ModeEphemeral,
	2: wire.ModePersistentSequential,
	3: wire.ModeEphemeralSequential,
	4: wire.ModeContainer,
	5: wire.ModePersistentTTL,
	6: wire.ModePersistentSequentialTTL,
}

func modeCode(m wire.Mode) byte {
	for i, x := range modeCodes {
		if x == m {
			return byte(i)
		}
	}
	panic("znode: storing a node of unknown mode " + string(m))
}

// encodeNode appends n's value to b:
//
//	version byte, mode byte, czxid mzxid pzxid ctime mtime (varints),
//	version cversion aversion (varints), ephemeral owner (uvarint),
//	num_children seq ttl (varints), ACL, then the data to the end.
func encodeNode(b []byte, n *node) []byte {
	w := enc{b: b}
	w.byte(nodeVersion)
	w.byte(modeCode(n.mode))
	w.varint(n.stat.Czxid)
	w.varint(n.stat.Mzxid)
	w.varint(n.stat.Pzxid)
	w.varint(n.stat.Ctime)
	w.varint(n.stat.Mtime)
	w.varint(int64(n.stat.Version))
	w.varint(int64(n.stat.Cversion))
	w.varint(int64(n.stat.Aversion))
	w.uvarint(uint64(n.stat.EphemeralOwner))
	w.varint(int64(n.stat.NumChildren))
	w.varint(n.seq)
	w.varint(n.ttl)
	w.acl(n.acl)
	w.raw(n.data)
	return w.b
}

// decodeNode decodes a node value. The result shares no memory with v.
func decodeNode(v []byte) (*node, error) {
	d := dec{b: v}
	if ver := d.byte(); d.err == nil && ver != nodeVersion {
		d.fail("node version %d", ver)
	}
	n := &node{}
	mc := d.byte()
	if d.err == nil && int(mc) >= len(modeCodes) {
		d.fail("mode %d", mc)
	}
	if d.err != nil {
		return nil, d.err
	}
	n.mode = modeCodes[mc]
	n.stat.Czxid = d.varint()
	n.stat.Mzxid = d.varint()
	n.stat.Pzxid = d.varint()
	n.stat.Ctime = d.varint()
	n.stat.Mtime = d.varint()
	n.stat.Version = d.int32()
	n.stat.Cversion = d.int32()
	n.stat.Aversion = d.int32()
	n.stat.EphemeralOwner = wire.SessionID(d.uvarint())
	n.stat.NumChildren = d.int32()
	n.seq = d.varint()
	n.ttl = d.varint()
	n.acl = d.acl()
	if d.err != nil {
		return nil, d.err
	}
	n.data = append([]byte{}, d.b...)
	n.stat.DataLength = int32(len(n.data))
	return n, nil
}

// export returns n as the API's Node. The Node owns its slices.
func (n *node) export(path string) *Node {
	return &Node{
		Path:  path,
		Data:  append(make([]byte, 0, len(n.data)), n.data...),
		Stat:  n.stat,
		ACL:   append([]wire.ACL(nil), n.acl...),
		Mode:  n.mode,
		TTLMs: n.ttl,
	}
}

// ttlExpiry is when a TTL node expires: mtime + ttl, saturating.
func (n *node) ttlExpiry() uint64 {
	if n.stat.Mtime < 0 {
		return uint64(n.ttl)
	}
	e := uint64(n.stat.Mtime) + uint64(n.ttl)
	if e < uint64(n.stat.Mtime) {
		return ^uint64(0)
	}
	return e
}

// indexKeys appends the derived index keys n must have: the ephemeral index
// of its owner, the TTL index while it is childless, the container index
// while it is an empty container that once had children.
func (n *node) indexKeys(keys [][]byte, path string) [][]byte {
	if n == nil {
		return keys
	}
	if n.stat.EphemeralOwner != 0 {
		keys = append(keys, ephKey(n.stat.EphemeralOwner, path))
	}
	if n.mode.TTL() && n.stat.NumChildren == 0 {
		keys = append(keys, ttlKey(n.ttlExpiry(), path))
	}
	if n.mode == wire.ModeContainer && n.stat.NumChildren == 0 && n.stat.Cversion > 0 {
		keys = append(keys, containerKey(path))
	}
	return keys
}

// rootNode is the node "/" of an empty store: zero Stat, open ACL.
func rootNode() *node {
	return &node{mode: wire.ModePersistent, acl: wire.OpenACL(), data: []byte{}}
}
