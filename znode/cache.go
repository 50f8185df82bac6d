package znode

import (
	"sync"
)

// nodeCache is a bounded cache of committed nodes, or of their absence
// (a nil node), keyed by path. It holds committed state only, so it never
// changes what Apply decides: the applier puts its batch's writes after the
// commit, with mu held in write mode; anyone may put what it just read from
// the DB while no commit can run (a reader holds mu.RLock, the applier holds
// applyMu and commits only under mu). Restore clears it. Cached nodes are
// immutable and shared: export copies them.
//
// Eviction is CLOCK over a byte budget (an estimate of each entry's memory).
type nodeCache struct {
	mu     sync.Mutex
	budget int
	used   int
	idx    map[string]int // path → slot
	slots  []cacheSlot
	free   []int
	hand   int
}

type cacheSlot struct {
	path string
	n    *node
	size int
	ref  bool
	live bool
}

// newNodeCache returns a cache of about budget bytes; nil (which caches
// nothing) when budget <= 0.
func newNodeCache(budget int) *nodeCache {
	if budget <= 0 {
		return nil
	}
	return &nodeCache{budget: budget, idx: make(map[string]int)}
}

func entrySize(path string, n *node) int {
	size := len(path) + 96 // slot, map entry, string header
	if n != nil {
		size += 192 + len(n.data)
		for _, a := range n.acl {
			size += 40 + len(a.Scheme) + len(a.ID)
		}
	}
	return size
}

// get returns the cached node at path and whether the cache knows it (a
// known absent node is (nil, true)).
func (c *nodeCache) get(path string) (*node, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.idx[path]
	if !ok {
		return nil, false
	}
	c.slots[i].ref = true
	return c.slots[i].n, true
}

// put records n (nil: absent) as the committed node at path.
func (c *nodeCache) put(path string, n *node) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	size := entrySize(path, n)
	if i, ok := c.idx[path]; ok {
		c.used -= c.slots[i].size
		c.dropLocked(i)
	}
	if size > c.budget/16 {
		return // too big to be worth it
	}
	for c.used+size > c.budget && c.used > 0 {
		c.evictLocked()
	}
	var i int
	if k := len(c.free); k > 0 {
		i, c.free = c.free[k-1], c.free[:k-1]
	} else {
		i = len(c.slots)
		c.slots = append(c.slots, cacheSlot{})
	}
	c.slots[i] = cacheSlot{path: path, n: n, size: size, live: true}
	c.idx[path] = i
	c.used += size
}

func (c *nodeCache) dropLocked(i int) {
	delete(c.idx, c.slots[i].path)
	c.slots[i] = cacheSlot{}
	c.free = append(c.free, i)
}

// evictLocked drops one entry, giving recently used ones a second chance.
func (c *nodeCache) evictLocked() {
	for {
		if c.hand >= len(c.slots) {
			c.hand = 0
		}
		s := &c.slots[c.hand]
		c.hand++
		switch {
		case !s.live:
		case s.ref:
			s.ref = false
		default:
			c.used -= s.size
			c.dropLocked(c.hand - 1)
			return
		}
	}
}

func (c *nodeCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used, c.hand, c.idx, c.slots, c.free = 0, 0, make(map[string]int), nil, nil
}
