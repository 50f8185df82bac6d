package raftstore

import (
	"go.etcd.io/raft/v3/raftpb"
)

// entryCache keeps the most recent log entries in a ring buffer. It holds a
// contiguous run of indices [lo, lo+n); the Store keeps that run a suffix of
// the log (see doc.go). Entries are shared, never mutated: raft and the
// callers of Entries treat them as immutable.
//
// entryCache is not safe for concurrent use; the Store guards it with mu.
type entryCache struct {
	maxEntries int
	maxBytes   int

	ring  []cachedEntry // len(ring) == maxEntries
	head  int           // ring position of index lo
	n     int           // entries held
	lo    uint64        // index of the first entry held; meaningless if n == 0
	bytes int           // sum of the held entries' sizes
}

type cachedEntry struct {
	e    *raftpb.Entry
	size int // proto.Size(e): what raft's maxSize counts
}

func newEntryCache(maxEntries, maxBytes int) entryCache {
	return entryCache{
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		ring:       make([]cachedEntry, maxEntries),
	}
}

// slot returns the ring position of the k-th held entry.
func (c *entryCache) slot(k int) int {
	return (c.head + k) % len(c.ring)
}

// contains reports whether the entry at index i is held.
func (c *entryCache) contains(i uint64) bool {
	return c.n > 0 && i >= c.lo && i-c.lo < uint64(c.n)
}

// get returns the entry at index i, which must be held.
func (c *entryCache) get(i uint64) cachedEntry {
	return c.ring[c.slot(int(i-c.lo))]
}

// reset drops everything.
func (c *entryCache) reset() {
	for k := range c.n {
		c.ring[c.slot(k)] = cachedEntry{}
	}
	c.head, c.n, c.bytes = 0, 0, 0
}

// dropFront evicts the oldest entry.
func (c *entryCache) dropFront() {
	c.bytes -= c.ring[c.head].size
	c.ring[c.head] = cachedEntry{}
	c.head = (c.head + 1) % len(c.ring)
	c.n--
	c.lo++
	if c.n == 0 {
		c.head = 0
	}
}

// truncateFrom drops the entries at index i and above.
func (c *entryCache) truncateFrom(i uint64) {
	if c.n == 0 || i >= c.lo+uint64(c.n) {
		return
	}
	if i <= c.lo {
		c.reset()
		return
	}
	keep := int(i - c.lo)
	for k := keep; k < c.n; k++ {
		s := c.slot(k)
		c.bytes -= c.ring[s].size
		c.ring[s] = cachedEntry{}
	}
	c.n = keep
}

// dropBefore drops the entries below index i.
func (c *entryCache) dropBefore(i uint64) {
	for c.n > 0 && c.lo < i {
		c.dropFront()
	}
}

// append adds e, of encoded size size, after the last held entry, evicting
// the oldest entries to stay within the bounds. If the cache is not empty,
// e must directly follow its last entry. An entry larger than maxBytes
// empties the cache instead: the cache stays a contiguous run, and the next
// append starts a new one.
func (c *entryCache) append(e *raftpb.Entry, size int) {
	if c.n > 0 && e.GetIndex() != c.lo+uint64(c.n) {
		panic("raftstore: entry cache append out of order")
	}
	if size > c.maxBytes {
		c.reset()
		return
	}
	for c.n > 0 && (c.n == c.maxEntries || c.bytes+size > c.maxBytes) {
		c.dropFront()
	}
	if c.n == 0 {
		c.head, c.lo = 0, e.GetIndex()
	}
	c.ring[c.slot(c.n)] = cachedEntry{e: e, size: size}
	c.n++
	c.bytes += size
}

// slice returns the held entries [lo, hi), cut like raft's limitSize: as
// many as fit in maxSize bytes, but at least one. It reports false, and
// returns nothing, unless all of [lo, hi) is held. lo < hi.
func (c *entryCache) slice(lo, hi, maxSize uint64) ([]*raftpb.Entry, bool) {
	if !c.contains(lo) || !c.contains(hi-1) {
		return nil, false
	}
	// Size the result first so that it is allocated exactly once.
	first := c.get(lo)
	size := uint64(first.size)
	end := lo + 1
	for ; end < hi; end++ {
		size += uint64(c.get(end).size)
		if size > maxSize {
			break
		}
	}
	ents := make([]*raftpb.Entry, 0, end-lo)
	for i := lo; i < end; i++ {
		ents = append(ents, c.get(i).e)
	}
	return ents, true
}
