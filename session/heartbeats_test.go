package session

import (
	"slices"
	"sync"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

func TestHeartbeats(t *testing.T) {
	tests := []struct {
		name string
		mark []wire.SessionID
		want []wire.SessionID
	}{
		{"none", nil, nil},
		{"one", []wire.SessionID{7}, []wire.SessionID{7}},
		{"deduplicated and sorted", []wire.SessionID{9, 3, 9, 1, 3, 3}, []wire.SessionID{1, 3, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Heartbeats // the zero batch works
			for _, id := range tt.mark {
				h.Mark(id)
			}
			if h.Len() != len(tt.want) {
				t.Fatalf("Len = %d, want %d", h.Len(), len(tt.want))
			}
			if got := h.Drain(); !slices.Equal(got, tt.want) {
				t.Fatalf("Drain = %v, want %v", got, tt.want)
			}
			if got := h.Drain(); got != nil {
				t.Fatalf("second Drain = %v, want nil", got)
			}
			h.Mark(42)
			if got := h.Drain(); !slices.Equal(got, []wire.SessionID{42}) {
				t.Fatalf("Drain after refill = %v", got)
			}
		})
	}
}

// Marking an already marked session allocates nothing.
func TestHeartbeatsMarkIsCheap(t *testing.T) {
	h := NewHeartbeats()
	for id := range wire.SessionID(10_000) {
		h.Mark(id)
	}
	if a := testing.AllocsPerRun(1000, func() { h.Mark(5) }); a != 0 {
		t.Fatalf("Mark of a marked session: %v allocations", a)
	}
	h.Drain()
	if a := testing.AllocsPerRun(1000, func() { h.Mark(5) }); a != 0 {
		t.Fatalf("Mark after Drain: %v allocations, want the map kept", a)
	}
}

func TestHeartbeatsConcurrent(t *testing.T) {
	h := NewHeartbeats()
	var wg sync.WaitGroup
	seen := make(chan []wire.SessionID, 1_000)
	for g := range 4 {
		wg.Go(func() {
			for i := range 1_000 {
				h.Mark(wire.SessionID(g*1_000 + i))
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			seen <- h.Drain()
		}
	})
	wg.Wait()
	close(seen)
	all := h.Drain()
	for ids := range seen {
		all = append(all, ids...)
	}
	slices.Sort(all)
	if len(all) != 4_000 {
		t.Fatalf("drained %d ids, want 4000", len(all))
	}
	for i, id := range all {
		if id != wire.SessionID(i) {
			t.Fatalf("drained ids[%d] = %v: each of 0..3999 should come once", i, id)
		}
	}
}

func BenchmarkHeartbeats(b *testing.B) {
	const n = 10_000
	b.Run("mark 10000 then drain", func(b *testing.B) {
		h := NewHeartbeats()
		for b.Loop() {
			for id := range wire.SessionID(n) {
				h.Mark(id)
			}
			h.Drain()
		}
	})
	b.Run("mark parallel", func(b *testing.B) {
		h := NewHeartbeats()
		b.RunParallel(func(pb *testing.PB) {
			id := wire.SessionID(0)
			for pb.Next() {
				h.Mark(id % n)
				id++
			}
		})
	})
}
