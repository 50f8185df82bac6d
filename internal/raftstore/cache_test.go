package raftstore

import (
	"fmt"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// cacheString renders the held indices, e.g. "[3 4 5]", after checking the
// bookkeeping.
func cacheString(t *testing.T, c *entryCache) string {
	t.Helper()
	var idx []uint64
	bytes := 0
	for k := range c.n {
		ce := c.ring[c.slot(k)]
		if ce.e.GetIndex() != c.lo+uint64(k) {
			t.Fatalf("slot %d holds index %d, want %d", k, ce.e.GetIndex(), c.lo+uint64(k))
		}
		idx = append(idx, ce.e.GetIndex())
		bytes += ce.size
	}
	if bytes != c.bytes {
		t.Fatalf("bytes %d, want %d", c.bytes, bytes)
	}
	held := 0
	for _, ce := range c.ring {
		if ce.e != nil {
			held++
		}
	}
	if held != c.n {
		t.Fatalf("%d slots set, %d entries held: evicted entries still referenced", held, c.n)
	}
	return fmt.Sprint(idx)
}

func TestEntryCache(t *testing.T) {
	e := func(i uint64) *raftpb.Entry { return &raftpb.Entry{Index: new(i), Term: new(uint64(1))} }
	c := newEntryCache(4, 100)
	for i := uint64(1); i <= 6; i++ {
		c.append(e(i), 10)
	}
	if got := cacheString(t, &c); got != "[3 4 5 6]" {
		t.Fatalf("after 6 appends: %s", got)
	}
	c.truncateFrom(5)
	if got := cacheString(t, &c); got != "[3 4]" {
		t.Fatalf("after truncateFrom(5): %s", got)
	}
	c.append(e(5), 10)
	c.truncateFrom(9) // beyond: nothing
	c.dropBefore(4)
	if got := cacheString(t, &c); got != "[4 5]" {
		t.Fatalf("after dropBefore(4): %s", got)
	}
	// The byte bound evicts the oldest.
	c.append(e(6), 50)
	c.append(e(7), 41)
	if got := cacheString(t, &c); got != "[6 7]" {
		t.Fatalf("after byte-bound eviction: %s", got)
	}
	// An entry bigger than the bound empties the cache, and the next
	// append starts a new run.
	c.append(e(8), 101)
	if got := cacheString(t, &c); got != "[]" {
		t.Fatalf("after oversized entry: %s", got)
	}
	c.append(e(9), 1)
	c.append(e(10), 1)
	if got := cacheString(t, &c); got != "[9 10]" {
		t.Fatalf("after restart of run: %s", got)
	}
	c.truncateFrom(9)
	if got := cacheString(t, &c); got != "[]" {
		t.Fatalf("after truncateFrom(lo): %s", got)
	}
	c.append(e(3), 1)
	c.dropBefore(100)
	if got := cacheString(t, &c); got != "[]" {
		t.Fatalf("after dropBefore(past end): %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("out-of-order append did not panic")
		}
	}()
	c.append(e(1), 1)
	c.append(e(3), 1)
}

func TestEntryCacheSlice(t *testing.T) {
	c := newEntryCache(8, 1000)
	for i := uint64(10); i < 16; i++ {
		c.append(&raftpb.Entry{Index: new(i)}, 10)
	}
	tests := []struct {
		lo, hi, max uint64
		want        string
		ok          bool
	}{
		{10, 16, 1 << 30, "[10 11 12 13 14 15]", true},
		{12, 13, 0, "[12]", true},
		{12, 16, 0, "[12]", true},
		{12, 16, 19, "[12]", true},
		{12, 16, 20, "[12 13]", true},
		{12, 16, 21, "[12 13]", true},
		{9, 12, 1 << 30, "", false},
		{14, 17, 1 << 30, "", false},
	}
	for _, tt := range tests {
		ents, ok := c.slice(tt.lo, tt.hi, tt.max)
		var idx []uint64
		for _, e := range ents {
			idx = append(idx, e.GetIndex())
		}
		got := fmt.Sprint(idx)
		if !tt.ok {
			got = ""
		}
		if ok != tt.ok || got != tt.want {
			t.Errorf("slice(%d, %d, %d) = %s, %v; want %s, %v", tt.lo, tt.hi, tt.max, got, ok, tt.want, tt.ok)
		}
		if ok && cap(ents) != len(ents) {
			t.Errorf("slice(%d, %d, %d): cap %d > len %d", tt.lo, tt.hi, tt.max, cap(ents), len(ents))
		}
	}
}
