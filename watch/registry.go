package watch

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

// Fired is one event to push: tell Watcher that Event happened to Path at
// Zxid.
type Fired struct {
	Watcher WatcherID
	Event   wire.EventType
	Path    string
	Zxid    int64
}

// Watch is one registered watch, as Watches lists it.
type Watch struct {
	Path string
	Kind Kind // Data for both Data and Exist watches
}

// Stats counts what a registry holds.
type Stats struct {
	Watchers int // watchers holding at least one watch
	Paths    int // paths holding at least one watch
	Watches  int // watches: one per (watcher, path, kind)
}

// watcherState is a watcher's reverse index: the path entries it holds
// watches in, and how many watches (kind bits) it holds in all.
type watcherState struct {
	paths map[*pathWatches]struct{}
	n     int
}

// Registry is the watch registry of one server. See the package doc for the
// firing rules and invariants. The zero Registry is ready to use.
type Registry struct {
	mu struct {
		sync.Mutex
		paths     map[string]*pathWatches     // every watched path; entries never empty
		watchers  map[WatcherID]*watcherState // every watcher holding a watch
		recursive map[string]int              // paths holding recursive watches: how many
		watches   int                         // total of watcherState.n
	}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Add registers a watch of kind k on path for watcher w and reports whether it
// is new. A second Add of the same (w, path, kind) changes nothing (Exist and
// Data are the same watch). Add panics on an invalid kind.
func (r *Registry) Add(w WatcherID, path string, k Kind) (added bool) {
	bit := k.bit()
	if bit == 0 {
		panic(fmt.Sprintf("watch: Add of invalid %v", k))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.paths == nil {
		r.mu.paths = make(map[string]*pathWatches)
		r.mu.watchers = make(map[WatcherID]*watcherState)
		r.mu.recursive = make(map[string]int)
	}
	pw := r.mu.paths[path]
	if pw == nil {
		pw = &pathWatches{path: strings.Clone(path)}
		r.mu.paths[pw.path] = pw
	}
	old := pw.get(w)
	if old&bit != 0 {
		return false
	}
	pw.put(w, old|bit)
	r.accountLocked(pw, w, old, old|bit)
	return true
}

// Remove removes w's watches on path selected by t (remove_watches' type:
// data also removes what exists set; any removes every kind) and reports
// whether any was removed; false answers NoWatcher. An unknown type matches
// nothing.
func (r *Registry) Remove(w WatcherID, path string, t wire.WatchType) (removed bool) {
	mask := typeBits(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	pw := r.mu.paths[path]
	if pw == nil || mask == 0 {
		return false
	}
	old := pw.get(w)
	nk := old &^ mask
	if nk == old {
		return false
	}
	if nk == 0 {
		pw.del(w)
	} else {
		pw.put(w, nk)
	}
	r.accountLocked(pw, w, old, nk)
	r.dropIfEmptyLocked(pw)
	return true
}

// RemoveWatcher removes every watch of w, when its connection closed.
func (r *Registry) RemoveWatcher(w WatcherID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.mu.watchers[w]
	if ws == nil {
		return
	}
	for pw := range ws.paths {
		k := pw.get(w)
		pw.del(w)
		if k&bitRecursive != 0 {
			r.decRecursiveLocked(pw.path)
		}
		r.mu.watches -= k.count()
		r.dropIfEmptyLocked(pw)
	}
	delete(r.mu.watchers, w)
}

// Count returns the number of watches w holds, one per (path, kind), for
// per-session limits.
func (r *Registry) Count(w WatcherID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws := r.mu.watchers[w]; ws != nil {
		return ws.n
	}
	return 0
}

// Watches lists w's watches sorted by path, then kind.
func (r *Registry) Watches(w WatcherID) []Watch {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.mu.watchers[w]
	if ws == nil {
		return nil
	}
	out := make([]Watch, 0, ws.n)
	for pw := range ws.paths {
		for _, k := range pw.get(w).kinds() {
			out = append(out, Watch{Path: pw.path, Kind: k})
		}
	}
	slices.SortFunc(out, func(a, b Watch) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

// Stats returns the registry's counts.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{Watchers: len(r.mu.watchers), Paths: len(r.mu.paths), Watches: r.mu.watches}
}

// Trigger applies the firing rules to change c: it removes the one-shot
// watches that fire and returns one Fired per watcher told, sorted by
// WatcherID; nil when nobody is. A change type other than the four node
// events fires nothing.
func (r *Registry) Trigger(c znode.Change) []Fired {
	self := selfBits(c.Type)
	if self == 0 {
		return nil
	}
	var ids []WatcherID

	r.mu.Lock()
	if pw := r.mu.paths[c.Path]; pw != nil {
		ids = make([]WatcherID, 0, pw.len())
		pw.update(func(w WatcherID, k kindSet) kindSet {
			if k&self == 0 {
				return k
			}
			ids = append(ids, w)
			nk := k &^ (self & oneShot)
			r.accountLocked(pw, w, k, nk)
			return nk
		})
		r.dropIfEmptyLocked(pw)
	}
	ancestors := 0
	if self&bitRecursive != 0 && len(r.mu.recursive) > 0 {
		for p := wire.Parent(c.Path); p != ""; p = wire.Parent(p) {
			if r.mu.recursive[p] == 0 {
				continue
			}
			ancestors++
			r.mu.paths[p].each(func(w WatcherID, k kindSet) {
				if k&bitRecursive != 0 {
					ids = append(ids, w)
				}
			})
		}
	}
	r.mu.Unlock()

	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	if ancestors > 0 {
		// Only a watcher of several paths can be listed twice.
		ids = slices.Compact(ids)
	}
	out := make([]Fired, len(ids))
	for i, w := range ids {
		out[i] = Fired{Watcher: w, Event: c.Type, Path: c.Path, Zxid: c.Zxid}
	}
	return out
}

// accountLocked records in the watcher index and the counters that w's kinds
// on pw changed from old to nk. The caller has already changed pw itself.
func (r *Registry) accountLocked(pw *pathWatches, w WatcherID, old, nk kindSet) {
	if old == nk {
		return
	}
	ws := r.mu.watchers[w]
	if ws == nil {
		ws = &watcherState{paths: make(map[*pathWatches]struct{})}
		r.mu.watchers[w] = ws
	}
	switch {
	case old == 0:
		ws.paths[pw] = struct{}{}
	case nk == 0:
		delete(ws.paths, pw)
	}
	d := nk.count() - old.count()
	ws.n += d
	r.mu.watches += d
	if ws.n == 0 {
		delete(r.mu.watchers, w)
	}
	switch {
	case old&bitRecursive == 0 && nk&bitRecursive != 0:
		r.mu.recursive[pw.path]++
	case old&bitRecursive != 0 && nk&bitRecursive == 0:
		r.decRecursiveLocked(pw.path)
	}
}

func (r *Registry) decRecursiveLocked(path string) {
	if n := r.mu.recursive[path] - 1; n > 0 {
		r.mu.recursive[path] = n
	} else {
		delete(r.mu.recursive, path)
	}
}

// dropIfEmptyLocked forgets pw once it has no watcher left.
func (r *Registry) dropIfEmptyLocked(pw *pathWatches) {
	if pw.len() == 0 {
		delete(r.mu.paths, pw.path)
	}
}
