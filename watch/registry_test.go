package watch

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

var allKinds = []Kind{Data, Exist, Child, Persistent, PersistentRecursive}

var allEvents = []wire.EventType{
	wire.EventNodeCreated, wire.EventNodeDeleted, wire.EventNodeDataChanged, wire.EventNodeChildrenChanged,
}

// eventLetter names events in the rule tables: Created, Deleted, Modified
// (data changed), X (children changed).
var eventLetter = map[wire.EventType]string{
	wire.EventNodeCreated:         "C",
	wire.EventNodeDeleted:         "D",
	wire.EventNodeDataChanged:     "M",
	wire.EventNodeChildrenChanged: "X",
}

// TestTriggerRules checks every (kind, event) pair at every position of the
// watched path relative to the changed one, against ZooKeeper's table.
func TestTriggerRules(t *testing.T) {
	// Which events fire a watch of each kind set on the changed path itself,
	// and on a strict ancestor of it.
	onSelf := map[Kind]string{Data: "CDM", Exist: "CDM", Child: "DX", Persistent: "CDMX", PersistentRecursive: "CDM"}
	onAncestor := map[Kind]string{PersistentRecursive: "CDM"}
	positions := []struct {
		name         string
		watch, under string // watched path, changed path
		ancestor     bool
	}{
		{"self", "/a/b", "/a/b", false},
		{"root self", "/", "/", false},
		{"parent", "/a", "/a/b", true},
		{"grandparent", "/a", "/a/b/c", true},
		{"root", "/", "/a/b", true},
		{"root over top level", "/", "/a", true},
		{"child", "/a/b/c", "/a/b", false},
		{"sibling", "/a/c", "/a/b", false},
		{"name prefix", "/a", "/ab", false},
		{"unrelated", "/x/y", "/a/b", false},
	}
	for _, pos := range positions {
		for _, k := range allKinds {
			for _, ev := range allEvents {
				t.Run(fmt.Sprintf("%s/%v/%s", pos.name, k, ev), func(t *testing.T) {
					var want bool
					switch {
					case pos.watch == pos.under:
						want = strings.Contains(onSelf[k], eventLetter[ev])
					case pos.ancestor:
						want = strings.Contains(onAncestor[k], eventLetter[ev])
					}
					r := NewRegistry()
					r.Add(7, pos.watch, k)
					got := r.Trigger(znode.Change{Zxid: 42, Path: pos.under, Type: ev})
					if !want {
						if got != nil {
							t.Fatalf("fired %v, want nothing", got)
						}
						if n := r.Count(7); n != 1 {
							t.Fatalf("Count = %d after no event, want 1", n)
						}
						checkInvariants(t, r)
						return
					}
					wantFired := []Fired{{Watcher: 7, Event: ev, Path: pos.under, Zxid: 42}}
					if !slices.Equal(got, wantFired) {
						t.Fatalf("fired %v, want %v", got, wantFired)
					}
					wantLeft := 1
					if k == Data || k == Exist || k == Child {
						wantLeft = 0 // one-shot: gone once fired
					}
					if n := r.Count(7); n != wantLeft {
						t.Fatalf("Count = %d after firing, want %d", n, wantLeft)
					}
					again := r.Trigger(znode.Change{Zxid: 43, Path: pos.under, Type: ev})
					if (again != nil) != (wantLeft == 1) {
						t.Fatalf("second trigger fired %v; the watch should fire again: %v", again, wantLeft == 1)
					}
					checkInvariants(t, r)
				})
			}
		}
	}
}

func TestTriggerIgnoresOtherEvents(t *testing.T) {
	r := NewRegistry()
	for _, k := range allKinds {
		r.Add(1, "/a", k)
	}
	r.Add(1, "/", PersistentRecursive)
	for _, ev := range []wire.EventType{wire.EventResync, "", "Bogus"} {
		if got := r.Trigger(znode.Change{Zxid: 1, Path: "/a", Type: ev}); got != nil {
			t.Errorf("Trigger(%q) = %v, want nil", ev, got)
		}
	}
	if n := r.Count(1); n != 5 {
		t.Errorf("Count = %d, want 5", n)
	}
}

func TestOneShotFiresOnce(t *testing.T) {
	r := NewRegistry()
	if !r.Add(1, "/a", Data) {
		t.Fatal("first Add = false")
	}
	if r.Add(1, "/a", Data) || r.Add(1, "/a", Exist) {
		t.Fatal("second Add of the same data watch = true")
	}
	if n := r.Count(1); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	got := r.Trigger(znode.Change{Zxid: 5, Path: "/a", Type: wire.EventNodeDataChanged})
	if len(got) != 1 {
		t.Fatalf("first change fired %v, want one event", got)
	}
	for _, ev := range allEvents {
		if got := r.Trigger(znode.Change{Zxid: 6, Path: "/a", Type: ev}); got != nil {
			t.Fatalf("%s after the watch fired: %v", ev, got)
		}
	}
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("Stats = %+v, want empty", s)
	}
	checkEmpty(t, r)
}

// A child watch survives NodeCreated and NodeDataChanged of its own path, and
// a data watch survives NodeChildrenChanged.
func TestOneShotSurvivesOtherEvents(t *testing.T) {
	r := NewRegistry()
	r.Add(1, "/a", Data)
	r.Add(1, "/a", Child)
	got := r.Trigger(znode.Change{Zxid: 5, Path: "/a", Type: wire.EventNodeChildrenChanged})
	if len(got) != 1 || got[0].Event != wire.EventNodeChildrenChanged {
		t.Fatalf("fired %v", got)
	}
	if w := r.Watches(1); !slices.Equal(w, []Watch{{"/a", Data}}) {
		t.Fatalf("Watches = %v, want only the data watch", w)
	}
	r.Add(1, "/a", Child)
	got = r.Trigger(znode.Change{Zxid: 6, Path: "/a", Type: wire.EventNodeDataChanged})
	if len(got) != 1 || got[0].Event != wire.EventNodeDataChanged {
		t.Fatalf("fired %v", got)
	}
	if w := r.Watches(1); !slices.Equal(w, []Watch{{"/a", Child}}) {
		t.Fatalf("Watches = %v, want only the child watch", w)
	}
	checkInvariants(t, r)
}

func TestOneEventPerWatcher(t *testing.T) {
	r := NewRegistry()
	for _, k := range allKinds {
		r.Add(1, "/a/b", k)
	}
	for _, p := range []string{"/", "/a"} {
		r.Add(1, p, PersistentRecursive)
		r.Add(1, p, Data) // not fired by a change below p
	}
	r.Add(2, "/a", PersistentRecursive)
	r.Add(3, "/a/b/c", PersistentRecursive) // below: never fired

	got := r.Trigger(znode.Change{Zxid: 9, Path: "/a/b", Type: wire.EventNodeDeleted})
	want := []Fired{
		{Watcher: 1, Event: wire.EventNodeDeleted, Path: "/a/b", Zxid: 9},
		{Watcher: 2, Event: wire.EventNodeDeleted, Path: "/a/b", Zxid: 9},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	wantLeft := []Watch{
		{"/", Data}, {"/", PersistentRecursive},
		{"/a", Data}, {"/a", PersistentRecursive},
		{"/a/b", Persistent}, {"/a/b", PersistentRecursive},
	}
	if w := r.Watches(1); !slices.Equal(w, wantLeft) {
		t.Fatalf("Watches(1) = %v, want %v", w, wantLeft)
	}
	checkInvariants(t, r)
}

func TestFiredSortedByWatcher(t *testing.T) {
	r := NewRegistry()
	ids := rand.New(rand.NewPCG(1, 2)).Perm(50)
	for i, id := range ids {
		// Spread watchers over the path and its ancestors so the result
		// merges several path entries, past smallMax.
		p := []string{"/", "/a", "/a/b"}[i%3]
		k := PersistentRecursive
		if p == "/a/b" {
			k = Data
		}
		r.Add(WatcherID(id+1), p, k)
		if i%5 == 0 {
			r.Add(WatcherID(id+1), "/a/b", Persistent) // a duplicate to compact
		}
	}
	got := r.Trigger(znode.Change{Zxid: 1, Path: "/a/b", Type: wire.EventNodeDataChanged})
	if len(got) != 50 {
		t.Fatalf("fired %d events, want 50", len(got))
	}
	for i, f := range got {
		if f.Watcher != WatcherID(i+1) {
			t.Fatalf("event %d is for watcher %d, want %d (sorted, one each)", i, f.Watcher, i+1)
		}
	}
	checkInvariants(t, r)
}

func TestRemove(t *testing.T) {
	all := []Kind{Data, Child, Persistent, PersistentRecursive}
	tests := []struct {
		name    string
		have    []Kind
		path    string
		watcher WatcherID
		typ     wire.WatchType
		removed bool
		left    []Kind
	}{
		{"data", all, "/a", 1, wire.WatchTypeData, true, []Kind{Child, Persistent, PersistentRecursive}},
		{"data set by exists", []Kind{Exist}, "/a", 1, wire.WatchTypeData, true, nil},
		{"children", all, "/a", 1, wire.WatchTypeChildren, true, []Kind{Data, Persistent, PersistentRecursive}},
		{"persistent", all, "/a", 1, wire.WatchTypePersistent, true, []Kind{Data, Child, PersistentRecursive}},
		{"persistent_recursive", all, "/a", 1, wire.WatchTypePersistentRecursive, true, []Kind{Data, Child, Persistent}},
		{"any", all, "/a", 1, wire.WatchTypeAny, true, nil},
		{"any of one", []Kind{Child}, "/a", 1, wire.WatchTypeAny, true, nil},
		{"no data watch", []Kind{Child, Persistent}, "/a", 1, wire.WatchTypeData, false, []Kind{Child, Persistent}},
		{"no child watch", []Kind{Data}, "/a", 1, wire.WatchTypeChildren, false, []Kind{Data}},
		{"persistent is not recursive", []Kind{Persistent}, "/a", 1, wire.WatchTypePersistentRecursive, false, []Kind{Persistent}},
		{"recursive is not persistent", []Kind{PersistentRecursive}, "/a", 1, wire.WatchTypePersistent, false, []Kind{PersistentRecursive}},
		{"other path", all, "/b", 1, wire.WatchTypeAny, false, all},
		{"child path", all, "/a/b", 1, wire.WatchTypeAny, false, all},
		{"other watcher", all, "/a", 2, wire.WatchTypeAny, false, all},
		{"unknown type", all, "/a", 1, "exists", false, all},
		{"empty type", all, "/a", 1, "", false, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			for _, k := range tt.have {
				r.Add(1, "/a", k)
			}
			r.Add(3, "/a", Data) // another watcher on the path is never touched
			if got := r.Remove(tt.watcher, tt.path, tt.typ); got != tt.removed {
				t.Fatalf("Remove = %v, want %v", got, tt.removed)
			}
			var left []Watch
			for _, k := range tt.left {
				left = append(left, Watch{"/a", k})
			}
			if got := r.Watches(1); !slices.Equal(got, left) {
				t.Fatalf("Watches(1) = %v, want %v", got, left)
			}
			if n := r.Count(1); n != len(left) {
				t.Fatalf("Count(1) = %d, want %d", n, len(left))
			}
			if got := r.Watches(3); !slices.Equal(got, []Watch{{"/a", Data}}) {
				t.Fatalf("Watches(3) = %v", got)
			}
			checkInvariants(t, r)
		})
	}
}

func TestRemoveFromEmpty(t *testing.T) {
	var r Registry // the zero registry works
	for _, typ := range []wire.WatchType{wire.WatchTypeData, wire.WatchTypeChildren, wire.WatchTypePersistent, wire.WatchTypePersistentRecursive, wire.WatchTypeAny} {
		if r.Remove(1, "/a", typ) {
			t.Errorf("Remove(%s) on an empty registry = true", typ)
		}
	}
	r.RemoveWatcher(1)
	if r.Count(1) != 0 || r.Watches(1) != nil || r.Trigger(znode.Change{Path: "/a", Type: wire.EventNodeDeleted}) != nil {
		t.Error("empty registry is not empty")
	}
}

func TestRemoveRecursiveStopsAncestorWalk(t *testing.T) {
	r := NewRegistry()
	r.Add(1, "/a", PersistentRecursive)
	r.Add(1, "/a", Persistent)
	if !r.Remove(1, "/a", wire.WatchTypePersistentRecursive) {
		t.Fatal("Remove = false")
	}
	if got := r.Trigger(znode.Change{Path: "/a/b", Type: wire.EventNodeCreated}); got != nil {
		t.Fatalf("removed recursive watch fired: %v", got)
	}
	if len(r.mu.recursive) != 0 {
		t.Fatalf("recursive index not empty: %v", r.mu.recursive)
	}
	checkInvariants(t, r)
}

func TestRemoveWatcherLeavesNothing(t *testing.T) {
	r := NewRegistry()
	rnd := rand.New(rand.NewPCG(3, 4))
	paths := []string{"/", "/a", "/a/b", "/a/b/c", "/b", "/c/d"}
	for w := WatcherID(1); w <= 30; w++ { // 30 watchers: some paths go past smallMax
		for range 10 {
			r.Add(w, paths[rnd.IntN(len(paths))], allKinds[rnd.IntN(len(allKinds))])
		}
	}
	r.Trigger(znode.Change{Zxid: 1, Path: "/a/b", Type: wire.EventNodeDeleted})
	checkInvariants(t, r)
	keep := r.Watches(7)
	for w := WatcherID(1); w <= 30; w++ {
		if w != 7 {
			r.RemoveWatcher(w)
		}
	}
	checkInvariants(t, r)
	if got := r.Watches(7); !slices.Equal(got, keep) {
		t.Fatalf("RemoveWatcher of others changed watcher 7: %v, want %v", got, keep)
	}
	r.RemoveWatcher(7)
	r.RemoveWatcher(7) // twice is harmless
	checkEmpty(t, r)
}

func TestWatchesListing(t *testing.T) {
	r := NewRegistry()
	r.Add(1, "/b", Child)
	r.Add(1, "/a", PersistentRecursive)
	r.Add(1, "/b", Exist)
	r.Add(1, "/a", Data)
	want := []Watch{{"/a", Data}, {"/a", PersistentRecursive}, {"/b", Data}, {"/b", Child}}
	if got := r.Watches(1); !slices.Equal(got, want) {
		t.Fatalf("Watches = %v, want %v", got, want)
	}
	if n := r.Count(1); n != 4 {
		t.Fatalf("Count = %d, want 4", n)
	}
	if s := r.Stats(); s != (Stats{Watchers: 1, Paths: 2, Watches: 4}) {
		t.Fatalf("Stats = %+v", s)
	}
}

// The registry keeps its own copy of a path, not the caller's string (which
// may pin a whole request buffer).
func TestAddCopiesPath(t *testing.T) {
	r := NewRegistry()
	buf := "/a/b" + strings.Repeat("x", 1<<10)
	r.Add(1, buf[:4], Data)
	r.Add(2, buf[:4], Data)
	pw := r.mu.paths["/a/b"]
	if pw == nil || pw.path != "/a/b" {
		t.Fatalf("path entry %+v", pw)
	}
	if unsafe.StringData(pw.path) == unsafe.StringData(buf) {
		t.Fatal("registry keeps the caller's string")
	}
}

func TestAddInvalidKindPanics(t *testing.T) {
	for _, k := range []Kind{0, PersistentRecursive + 1, 255} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%v) did not panic", k)
				}
			}()
			NewRegistry().Add(1, "/a", k)
		}()
	}
}

func TestModeKind(t *testing.T) {
	for m, want := range map[wire.WatchMode]Kind{wire.WatchPersistent: Persistent, wire.WatchPersistentRecursive: PersistentRecursive} {
		if k, err := ModeKind(m); k != want || err != nil {
			t.Errorf("ModeKind(%q) = %v, %v; want %v", m, k, err, want)
		}
	}
	for _, m := range []wire.WatchMode{"", "data", "Persistent"} {
		if _, err := ModeKind(m); err == nil || !errors.Is(err, wire.ErrBadArguments) {
			t.Errorf("ModeKind(%q) error = %v, want BadArguments", m, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Data: "data", Exist: "exist", Child: "children", Persistent: "persistent", PersistentRecursive: "persistent_recursive", 0: "Kind(0)", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// model is a naive registry: it scans every watch on every change. The real
// one must agree with it on every step of a random history.
type model map[WatcherID]map[string]kindSet

func (m model) add(w WatcherID, p string, k Kind) bool {
	if m[w] == nil {
		m[w] = map[string]kindSet{}
	}
	old := m[w][p]
	m[w][p] |= k.bit()
	return old != m[w][p]
}

func (m model) remove(w WatcherID, p string, t wire.WatchType) bool {
	old := m[w][p]
	if old&typeBits(t) == 0 {
		return false
	}
	m.set(w, p, old&^typeBits(t))
	return true
}

func (m model) set(w WatcherID, p string, k kindSet) {
	if k != 0 {
		m[w][p] = k
		return
	}
	delete(m[w], p)
	if len(m[w]) == 0 {
		delete(m, w)
	}
}

func (m model) trigger(c znode.Change) []Fired {
	var out []Fired
	for _, w := range slices.Sorted(maps.Keys(m)) {
		fired := false
		for p, k := range m[w] {
			switch {
			case p == c.Path && k&selfBits(c.Type) != 0:
				fired = true
				m.set(w, p, k&^(selfBits(c.Type)&oneShot))
			case wire.IsAncestor(p, c.Path) && k&bitRecursive != 0 && selfBits(c.Type)&bitRecursive != 0:
				fired = true
			}
		}
		if fired {
			out = append(out, Fired{Watcher: w, Event: c.Type, Path: c.Path, Zxid: c.Zxid})
		}
	}
	return out
}

func (m model) watches(w WatcherID) []Watch {
	var out []Watch
	for _, p := range slices.Sorted(maps.Keys(m[w])) {
		for _, k := range m[w][p].kinds() {
			out = append(out, Watch{p, k})
		}
	}
	return out
}

func TestAgainstModel(t *testing.T) {
	paths := []string{"/", "/a", "/a/b", "/a/b/c", "/a/c", "/ab", "/b", "/b/a"}
	types := []wire.WatchType{wire.WatchTypeData, wire.WatchTypeChildren, wire.WatchTypePersistent, wire.WatchTypePersistentRecursive, wire.WatchTypeAny}
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 99))
		r, m := NewRegistry(), model{}
		for step := range 3000 {
			w := WatcherID(rnd.IntN(20) + 1)
			p := paths[rnd.IntN(len(paths))]
			switch op := rnd.IntN(100); {
			case op < 50:
				k := allKinds[rnd.IntN(len(allKinds))]
				if got, want := r.Add(w, p, k), m.add(w, p, k); got != want {
					t.Fatalf("seed %d step %d: Add(%d, %s, %v) = %v, want %v", seed, step, w, p, k, got, want)
				}
			case op < 65:
				typ := types[rnd.IntN(len(types))]
				if got, want := r.Remove(w, p, typ), m.remove(w, p, typ); got != want {
					t.Fatalf("seed %d step %d: Remove(%d, %s, %s) = %v, want %v", seed, step, w, p, typ, got, want)
				}
			case op < 67:
				r.RemoveWatcher(w)
				delete(m, w)
			default:
				c := znode.Change{Zxid: int64(step), Path: p, Type: allEvents[rnd.IntN(len(allEvents))]}
				if got, want := r.Trigger(c), m.trigger(c); !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: Trigger(%+v) = %v, want %v", seed, step, c, got, want)
				}
			}
			if step%100 == 0 {
				checkInvariants(t, r)
				for w := range WatcherID(21) {
					if got, want := r.Watches(w), m.watches(w); !slices.Equal(got, want) {
						t.Fatalf("seed %d step %d: Watches(%d) = %v, want %v", seed, step, w, got, want)
					}
					if got, want := r.Count(w), len(m.watches(w)); got != want {
						t.Fatalf("seed %d step %d: Count(%d) = %d, want %d", seed, step, w, got, want)
					}
				}
			}
		}
		for w := range WatcherID(21) {
			r.RemoveWatcher(w)
		}
		checkEmpty(t, r)
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	paths := []string{"/", "/a", "/a/b", "/a/b/c", "/b", "/b/c"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 2000 {
				w := WatcherID(rnd.IntN(16))
				p := paths[rnd.IntN(len(paths))]
				switch rnd.IntN(8) {
				case 0, 1, 2:
					r.Add(w, p, allKinds[rnd.IntN(len(allKinds))])
				case 3:
					r.Remove(w, p, wire.WatchTypeAny)
				case 4:
					r.Trigger(znode.Change{Zxid: int64(i), Path: p, Type: allEvents[rnd.IntN(len(allEvents))]})
				case 5:
					r.Count(w)
					r.Watches(w)
				case 6:
					r.Stats()
				case 7:
					if i%10 == 0 {
						r.RemoveWatcher(w)
					}
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, r)
	for w := range WatcherID(16) {
		r.RemoveWatcher(w)
	}
	checkEmpty(t, r)
}

// checkInvariants verifies that the path table, the watcher index and the
// counters agree (see the package doc).
func checkInvariants(t *testing.T, r *Registry) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[WatcherID]int{}
	rec := map[string]int{}
	total := 0
	for p, pw := range r.mu.paths {
		if pw.path != p {
			t.Fatalf("path entry %q keyed %q", pw.path, p)
		}
		if pw.len() == 0 {
			t.Fatalf("empty path entry %q", p)
		}
		if pw.large != nil && len(pw.small) > 0 || pw.large == nil && len(pw.small) > smallMax {
			t.Fatalf("path entry %q: %d in slice, map %v", p, len(pw.small), pw.large != nil)
		}
		seen := map[WatcherID]bool{}
		pw.each(func(w WatcherID, k kindSet) {
			if seen[w] {
				t.Fatalf("watcher %d twice on %q", w, p)
			}
			seen[w] = true
			if k == 0 || k&^allBits != 0 {
				t.Fatalf("watcher %d on %q has kinds %b", w, p, k)
			}
			ws := r.mu.watchers[w]
			if ws == nil {
				t.Fatalf("watcher %d on %q has no index", w, p)
			}
			if _, ok := ws.paths[pw]; !ok {
				t.Fatalf("index of watcher %d lacks %q", w, p)
			}
			counts[w] += k.count()
			total += k.count()
			if k&bitRecursive != 0 {
				rec[p]++
			}
		})
	}
	for w, ws := range r.mu.watchers {
		if ws.n == 0 || ws.n != counts[w] {
			t.Fatalf("watcher %d: n = %d, holds %d", w, ws.n, counts[w])
		}
		for pw := range ws.paths {
			if r.mu.paths[pw.path] != pw || pw.get(w) == 0 {
				t.Fatalf("index of watcher %d has stale %q", w, pw.path)
			}
		}
	}
	if total != r.mu.watches {
		t.Fatalf("watches = %d, holds %d", r.mu.watches, total)
	}
	if !maps.Equal(rec, r.mu.recursive) {
		t.Fatalf("recursive index %v, want %v", r.mu.recursive, rec)
	}
}

// checkEmpty verifies that nothing is left behind.
func checkEmpty(t *testing.T, r *Registry) {
	t.Helper()
	checkInvariants(t, r)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mu.paths) != 0 || len(r.mu.watchers) != 0 || len(r.mu.recursive) != 0 || r.mu.watches != 0 {
		t.Fatalf("registry not empty: %d paths, %d watchers, %d recursive, %d watches",
			len(r.mu.paths), len(r.mu.watchers), len(r.mu.recursive), r.mu.watches)
	}
}
