package znode

import (
	"slices"
	"sync"

	"github.com/coord-dev/coord/internal/wire"
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

// childCache holds the sorted child names of recently listed nodes, keyed
// by the parent's path, so that listing a directory whose children come and
// go (a lock's or a queue's) does not walk the deletion tombstones pebble
// keeps until it compacts them. It follows the rules of nodeCache: it holds
// committed state only; readers fill it while holding the store's
// mu.RLock; the applier updates the lists of the parents whose children it
// wrote after its commit, with mu held in write mode; Restore clears it.
// Cached lists are immutable and shared: an update replaces the list.
//
// Only lists of at most maxCachedChildren names are kept, so that an update
// (a copy of the list) stays cheap; larger directories are read from
// pebble. When over budget it evicts entries in map order, which Go
// randomises.
type childCache struct {
	mu     sync.Mutex
	budget int
	used   int
	lists  map[string][]string
}

// maxCachedChildren is the most names a cached list holds.
const maxCachedChildren = 4096

// newChildCache returns a cache of about budget bytes; nil (which caches
// nothing) when budget <= 0.
func newChildCache(budget int) *childCache {
	if budget <= 0 {
		return nil
	}
	return &childCache{budget: budget, lists: make(map[string][]string)}
}

func listSize(parent string, names []string) int {
	size := len(parent) + 64 + 16*len(names)
	for _, n := range names {
		size += len(n)
	}
	return size
}

// get returns the cached child names of parent (sorted; never modify it).
func (c *childCache) get(parent string) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	names, ok := c.lists[parent]
	return names, ok
}

// put records names (sorted, complete) as the children of parent.
func (c *childCache) put(parent string, names []string) {
	if c == nil || len(names) > maxCachedChildren {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(parent, names)
}

func (c *childCache) setLocked(parent string, names []string) {
	c.dropLocked(parent)
	size := listSize(parent, names)
	if size > c.budget/16 {
		return
	}
	for p := range c.lists {
		if c.used+size <= c.budget {
			break
		}
		c.dropLocked(p)
	}
	c.lists[parent] = names
	c.used += size
}

// written brings the cache up to date with a committed write of path:
// present says whether a node is now there. The parent's list gains or
// loses the name (a write that does not change the set of children, a set
// or a delete of an absent node, leaves it as it is); a deleted node's own
// list is forgotten (a node created there again is listed afresh).
func (c *childCache) written(path string, present bool) {
	if c == nil || path == "/" {
		return
	}
	parent, name := wire.Parent(path), wire.Base(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !present {
		c.dropLocked(path)
	}
	names, ok := c.lists[parent]
	if !ok {
		return
	}
	i, found := slices.BinarySearch(names, name)
	switch {
	case present == found:
		return
	case present:
		if len(names) >= maxCachedChildren {
			c.dropLocked(parent)
			return
		}
		names = slices.Insert(slices.Clip(names), i, name)
	default:
		names = slices.Delete(slices.Clone(names), i, i+1)
	}
	c.setLocked(parent, names)
}

// dropLocked forgets the list of path, if cached.
func (c *childCache) dropLocked(path string) {
	if old, ok := c.lists[path]; ok {
		c.used -= listSize(path, old)
		delete(c.lists, path)
	}
}

func (c *childCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used, c.lists = 0, make(map[string][]string)
}
