package watch

// smallMax is how many watchers a path entry keeps in its slice before it
// switches to a map. Most watched paths have a few watchers, and a slice of a
// few 16-byte entries costs far less than a map and scans as fast.
const smallMax = 8

// entry is one watcher on a path and the kinds it holds there.
type entry struct {
	w WatcherID
	k kindSet
}

// pathWatches is the entry of one watched path: its watchers and their kinds.
// Either small (unordered, at most smallMax long) or large (non-nil) holds
// them, never both. A kind set stored here is never empty. Guarded by the
// registry's lock.
type pathWatches struct {
	path  string // the registry's own copy; also the key in Registry.mu.paths
	small []entry
	large map[WatcherID]kindSet
}

func (s *pathWatches) len() int {
	if s.large != nil {
		return len(s.large)
	}
	return len(s.small)
}

// get returns w's kinds on this path, empty when it has none.
func (s *pathWatches) get(w WatcherID) kindSet {
	if s.large != nil {
		return s.large[w]
	}
	for _, e := range s.small {
		if e.w == w {
			return e.k
		}
	}
	return 0
}

// put sets w's kinds to k, which must not be empty.
func (s *pathWatches) put(w WatcherID, k kindSet) {
	if s.large != nil {
		s.large[w] = k
		return
	}
	for i := range s.small {
		if s.small[i].w == w {
			s.small[i].k = k
			return
		}
	}
	if len(s.small) < smallMax {
		s.small = append(s.small, entry{w, k})
		return
	}
	// A path that once had many watchers keeps its map until it has none.
	s.large = make(map[WatcherID]kindSet, 2*smallMax)
	for _, e := range s.small {
		s.large[e.w] = e.k
	}
	s.small = nil
	s.large[w] = k
}

// del removes w.
func (s *pathWatches) del(w WatcherID) {
	if s.large != nil {
		delete(s.large, w)
		return
	}
	for i := range s.small {
		if s.small[i].w == w {
			last := len(s.small) - 1
			s.small[i] = s.small[last]
			s.small = s.small[:last]
			return
		}
	}
}

// update replaces each watcher's kinds k by fn(w, k) and drops the watchers
// left with none. fn must not touch s.
func (s *pathWatches) update(fn func(w WatcherID, k kindSet) kindSet) {
	if s.large != nil {
		for w, k := range s.large {
			switch nk := fn(w, k); {
			case nk == 0:
				delete(s.large, w)
			case nk != k:
				s.large[w] = nk
			}
		}
		return
	}
	j := 0
	for _, e := range s.small {
		if nk := fn(e.w, e.k); nk != 0 {
			s.small[j] = entry{e.w, nk}
			j++
		}
	}
	s.small = s.small[:j]
}

// each calls fn for every watcher and its kinds.
func (s *pathWatches) each(fn func(w WatcherID, k kindSet)) {
	if s.large != nil {
		for w, k := range s.large {
			fn(w, k)
		}
		return
	}
	for _, e := range s.small {
		fn(e.w, e.k)
	}
}
