package znode

import (
	"fmt"
	"testing"
)

func TestNodeCache(t *testing.T) {
	c := newNodeCache(64 << 10)
	n := &node{data: make([]byte, 100)}
	for i := range 2000 {
		c.put(fmt.Sprintf("/n%d", i), n)
		if i%10 == 0 {
			c.get("/n0") // kept warm: survives eviction
		}
		if c.used > c.budget {
			t.Fatalf("used %d > budget %d", c.used, c.budget)
		}
	}
	if got, ok := c.get("/n0"); !ok || got != n {
		t.Error("a warm entry was evicted")
	}
	if _, ok := c.get("/n1"); ok {
		t.Error("a cold entry survived")
	}
	if _, ok := c.get("/n1999"); !ok {
		t.Error("the newest entry is missing")
	}
	c.put("/n1999", nil)
	if got, ok := c.get("/n1999"); !ok || got != nil {
		t.Error("absence not recorded")
	}
	c.put("/big", &node{data: make([]byte, 8<<10)})
	if _, ok := c.get("/big"); ok {
		t.Error("an entry over budget/16 was cached")
	}
	live := 0
	for _, s := range c.slots {
		if s.live {
			live++
			if i, ok := c.idx[s.path]; !ok || c.slots[i].path != s.path {
				t.Fatalf("index out of step for %s", s.path)
			}
		}
	}
	if live != len(c.idx) {
		t.Fatalf("%d live slots, %d indexed", live, len(c.idx))
	}
	c.clear()
	if _, ok := c.get("/n0"); ok || c.used != 0 {
		t.Error("clear left entries")
	}
	var none *nodeCache
	none.put("/x", n)
	if _, ok := none.get("/x"); ok {
		t.Error("nil cache cached")
	}
}
