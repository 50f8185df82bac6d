package watch

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

// genPaths returns n distinct paths of depth 2 to 5, shaped like an
// application's tree.
func genPaths(n int) []string {
	out := make([]string, n)
	for i := range out {
		switch i % 4 {
		case 0:
			out[i] = fmt.Sprintf("/app%d/config%d", i%7, i)
		case 1:
			out[i] = fmt.Sprintf("/app%d/svc%d/members/node-%010d", i%7, i%50, i)
		case 2:
			out[i] = fmt.Sprintf("/locks/lock%d/lock-%010d", i%100, i)
		default:
			out[i] = fmt.Sprintf("/app%d/svc%d/shard%d/leader%d/epoch", i%7, i%50, i%16, i)
		}
	}
	return out
}

// fill registers about n watches by nw watchers over paths, mostly one-shot,
// with one recursive watch per 100 so that Trigger walks ancestors.
func fill(r *Registry, n, nw int, paths []string) {
	rnd := rand.New(rand.NewPCG(1, 1))
	for i := range n {
		k := []Kind{Data, Data, Exist, Child, Persistent}[rnd.IntN(5)]
		if i%100 == 0 {
			k = PersistentRecursive
		}
		r.Add(WatcherID(i%nw), paths[rnd.IntN(len(paths))], k)
	}
}

// TestMemoryPerWatch measures the heap held per (path, watcher) pair with
// 100,000 watches of 1,000 watchers.
func TestMemoryPerWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 watches")
	}
	const pairs, watchers = 100_000, 1_000
	for _, tc := range []struct {
		name  string
		paths int
	}{
		{"every pair its own path", pairs},
		{"5 watchers a path", pairs / 5},
		{"100 watchers a path", pairs / 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := genPaths(tc.paths)
			adds := make([]struct {
				w WatcherID
				p string
			}, pairs)
			for i := range adds {
				// Watcher w gets the 100 consecutive paths from
				// w*len(paths)/watchers on: its pairs are distinct, and each
				// path has pairs/len(paths) watchers.
				w := i % watchers
				adds[i].w = WatcherID(w)
				adds[i].p = paths[(i/watchers+w*len(paths)/watchers)%len(paths)]
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := NewRegistry()
			for _, a := range adds {
				r.Add(a.w, a.p, Data)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			s := r.Stats()
			if s.Watches < pairs*9/10 {
				t.Fatalf("only %d distinct pairs", s.Watches)
			}
			per := float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Watches)
			t.Logf("%d pairs on %d paths: %.0f bytes a pair", s.Watches, s.Paths, per)
			if per > 400 {
				t.Errorf("%.0f bytes per (path, watcher) pair, want < 400", per)
			}
			runtime.KeepAlive(r)
			runtime.KeepAlive(adds)
		})
	}
}

// Trigger on a path nobody watches allocates nothing and only looks at the
// path and its ancestors, however many watches there are.
func TestTriggerUnrelatedAllocatesNothing(t *testing.T) {
	r := NewRegistry()
	fill(r, 100_000, 1_000, genPaths(20_000))
	r.Add(1, "/unrelated", PersistentRecursive) // a recursive watch on another ancestor
	c := znode.Change{Zxid: 1, Path: "/app3/svc4/shard5/leader-none/epoch", Type: wire.EventNodeCreated}
	if allocs := testing.AllocsPerRun(100, func() {
		if r.Trigger(c) != nil {
			t.Fatal("fired")
		}
	}); allocs != 0 {
		t.Fatalf("Trigger on an unrelated path: %v allocations, want 0", allocs)
	}
}

func BenchmarkTrigger(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		r := NewRegistry()
		fill(r, n, 1_000, genPaths(n/5))
		b.Run(fmt.Sprintf("unrelated/watches=%d", n), func(b *testing.B) {
			c := znode.Change{Zxid: 1, Path: "/app3/svc4/shard5/leader-none/epoch", Type: wire.EventNodeCreated}
			for b.Loop() {
				r.Trigger(c)
			}
		})
		b.Run(fmt.Sprintf("unrelated-no-recursive/watches=%d", n), func(b *testing.B) {
			r := NewRegistry()
			for i, p := range genPaths(n) {
				r.Add(WatcherID(i%1_000), p, Data)
			}
			c := znode.Change{Zxid: 1, Path: "/app3/svc4/shard5/leader-none/epoch", Type: wire.EventNodeCreated}
			for b.Loop() {
				r.Trigger(c)
			}
		})
	}
	b.Run("hot path 1000 persistent watchers", func(b *testing.B) {
		r := NewRegistry()
		for w := range WatcherID(1_000) {
			r.Add(w, "/config", Persistent)
		}
		c := znode.Change{Zxid: 1, Path: "/config", Type: wire.EventNodeDataChanged}
		for b.Loop() {
			if len(r.Trigger(c)) != 1_000 {
				b.Fatal("lost watchers")
			}
		}
	})
	b.Run("one-shot add and fire", func(b *testing.B) {
		r := NewRegistry()
		fill(r, 100_000, 1_000, genPaths(20_000))
		c := znode.Change{Zxid: 1, Path: "/svc/leader", Type: wire.EventNodeDataChanged}
		for b.Loop() {
			r.Add(1, "/svc/leader", Data)
			r.Trigger(c)
		}
	})
}

func BenchmarkAddRemove(b *testing.B) {
	paths := genPaths(100_000)
	r := NewRegistry()
	fill(r, 100_000, 1_000, paths)
	i := 0
	for b.Loop() {
		w, p := WatcherID(i%1_000), paths[i%len(paths)]
		r.Add(w, p, Child)
		r.Remove(w, p, wire.WatchTypeChildren)
		i++
	}
}

func BenchmarkRemoveWatcher(b *testing.B) {
	paths := genPaths(20_000)
	for b.Loop() {
		b.StopTimer()
		r := NewRegistry()
		for i := range 10_000 {
			r.Add(1, paths[i%len(paths)], Data)
		}
		b.StartTimer()
		r.RemoveWatcher(1)
	}
}
