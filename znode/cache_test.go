package znode

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/coord-dev/coord/internal/wire"
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

// TestChildCacheFollowsApply lists a directory whose children come and go
// (creates, deletes, a multi, a session's ephemerals closing with it, a
// directory growing past maxCachedChildren and shrinking back) and checks
// every listing, whole and paged, against pebble's.
func TestChildCacheFollowsApply(t *testing.T) {
	h := newHarness(t, Config{})
	h.apply(Entry{Op: mkCreate("/d", "", wire.ModePersistent)})
	h.createSession(7)
	check := func(when string) {
		t.Helper()
		n, err := h.s.readNode("/d")
		if err != nil || n == nil {
			t.Fatalf("%s: read /d: %v", when, err)
		}
		want, err := h.s.readChildren("/d", n, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		got, dir, err := h.s.Children("/d", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || int(dir.Stat.NumChildren) != len(want) {
			t.Fatalf("%s: listed %d %v, pebble has %d (num_children %d)", when, len(got), head(got), len(want), dir.Stat.NumChildren)
		}
		for _, after := range []string{"", "c-0000000003", "zz"} {
			for _, limit := range []int{0, 1, 2} {
				page, _, err := h.s.Children("/d", after, limit)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := h.s.readChildren("/d", n, after, limit)
				if !slices.Equal(page, want) {
					t.Fatalf("%s: page after %q limit %d: %v, want %v", when, after, limit, page, want)
				}
			}
		}
	}
	check("empty")
	for i := range 6 {
		h.apply(Entry{Op: mkCreate("/d/c-", "", wire.ModePersistentSequential)})
		check(fmt.Sprint("create ", i))
	}
	h.apply(Entry{Op: mkDelete("/d/c-0000000002", -1)})
	check("delete")
	h.apply(Entry{Op: mkSet("/d/c-0000000003", "x", -1)})
	check("set")
	h.apply(Entry{Op: mkMulti(mkDelete("/d/c-0000000000", -1), mkCreate("/d/a", "", wire.ModePersistent), mkCreate("/d/c-", "", wire.ModePersistentSequential))})
	check("multi")
	h.apply(Entry{Op: mkMulti(mkDelete("/d/c-0000000001", -1), mkCheck("/d/none", -1))}) // fails: nothing changes
	check("failed multi")
	h.apply(Entry{Session: 7, Op: mkCreate("/d/e", "", wire.ModeEphemeral)})
	check("ephemeral")
	h.apply(Entry{Session: 7, Op: Op{Kind: OpCloseSession, SessionID: 7}})
	check("session closed")
	batch := make([]Entry, 0, maxCachedChildren+1)
	for range maxCachedChildren + 1 {
		batch = append(batch, Entry{Op: mkCreate("/d/m-", "", wire.ModePersistentSequential)})
	}
	h.applyBatch(batch)
	check("past the cap")
	if _, ok := h.s.kids.get("/d"); ok {
		t.Error("a list over maxCachedChildren is cached")
	}
	var dels []Entry
	for i := 7; i < 7+maxCachedChildren+1; i++ {
		dels = append(dels, Entry{Op: mkDelete(fmt.Sprintf("/d/m-%010d", i), -1)})
	}
	h.applyBatch(dels)
	check("back under the cap")
	if _, ok := h.s.kids.get("/d"); !ok {
		t.Error("a small list is not cached")
	}
}

func head(names []string) []string { return names[:min(len(names), 5)] }

func TestChildCacheBudget(t *testing.T) {
	c := newChildCache(16 << 10)
	for i := range 500 {
		c.put(fmt.Sprintf("/p%d", i), []string{"a", "b", "c"})
		if c.used > c.budget {
			t.Fatalf("used %d > budget %d", c.used, c.budget)
		}
	}
	big := make([]string, 200)
	for i := range big {
		big[i] = fmt.Sprintf("child-%05d", i)
	}
	c.put("/big", big)
	if _, ok := c.get("/big"); ok {
		t.Error("a list over budget/16 was cached")
	}
	c.put("/p", []string{"a", "c"})
	c.written("/p/b", true)
	c.written("/p/a", false)
	c.written("/p/c", true) // already there: no change
	if got, _ := c.get("/p"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after updates: %v", got)
	}
	c.clear()
	if _, ok := c.get("/p"); ok || c.used != 0 {
		t.Error("clear left entries")
	}
	var none *childCache
	none.put("/x", nil)
	none.written("/x/y", true)
	if _, ok := none.get("/x"); ok {
		t.Error("nil cache cached")
	}
}

// TestTunePebble checks that TunePebble fills in what the caller left
// unset and keeps what it set.
func TestTunePebble(t *testing.T) {
	var o pebble.Options
	TunePebble(&o)
	if o.CacheSize != 64<<20 || o.L0CompactionThreshold != 8 || o.L0StopWritesThreshold != 24 {
		t.Errorf("defaults: cache %d, L0 compaction %d, L0 stop writes %d", o.CacheSize, o.L0CompactionThreshold, o.L0StopWritesThreshold)
	}
	for i := range o.Levels {
		if o.Levels[i].FilterPolicy == nil {
			t.Errorf("level %d has no bloom filter", i)
		}
		if c := o.Levels[i].Compression; c == nil || c() != sstable.NoCompression {
			t.Errorf("level %d is compressed", i)
		}
	}
	o = pebble.Options{CacheSize: 1 << 20, L0CompactionThreshold: 2, L0StopWritesThreshold: 5}
	o.Levels[6].Compression = func() *sstable.CompressionProfile { return sstable.SnappyCompression }
	TunePebble(&o)
	if o.CacheSize != 1<<20 || o.L0CompactionThreshold != 2 || o.L0StopWritesThreshold != 5 {
		t.Errorf("caller's settings changed: cache %d, L0 compaction %d, L0 stop writes %d", o.CacheSize, o.L0CompactionThreshold, o.L0StopWritesThreshold)
	}
	if o.Levels[6].Compression() != sstable.SnappyCompression {
		t.Error("caller's compression of level 6 changed")
	}
}
