package client

import (
	"context"
	"errors"
	"slices"

	"github.com/coord-dev/coord/internal/wire"
)

// watchKind is the kind of a watch, as the server keeps them: at most one
// of each kind per path and session.
type watchKind uint8

const (
	kindData       watchKind = iota // get, or exists of a node that exists
	kindExist                       // exists of a node that does not exist
	kindChild                       // children
	kindPersistent                  // add_watch persistent
	kindRecursive                   // add_watch persistent_recursive
)

type watchKey struct {
	path string
	kind watchKind
}

// watchSet holds the local watchers of one key: one-shot channels for the
// one-shot kinds, persistent watchers for the others.
type watchSet struct {
	oneShots []chan Event
	watchers []*Watcher
	// resynced is the zxid of the last Resync a persistent set got: the
	// server could not replay the changes up to it, and the events at or
	// before it that still arrive are the resumed one-shot watches' (a
	// node's czxid, mzxid or pzxid, or the current zxid), which are not
	// changes the persistent watchers must see twice or mistyped.
	resynced int64
}

// pushPersistent queues ev for the watchers of a persistent set.
func (set *watchSet) pushPersistent(ev Event) {
	if ev.Type == EventResync {
		set.resynced = max(set.resynced, ev.Zxid)
	} else if ev.Zxid <= set.resynced {
		return
	}
	for _, w := range set.watchers {
		w.s.push(ev)
	}
}

// registry is the client's own record of its watches, guarded by Client.mu.
// It decides which local watchers an event reaches, and what set_watches
// re-arms after a reconnect.
type registry map[watchKey]*watchSet

// matches reports whether a watch of kind on wpath fires for an event of
// type typ on epath. One-shot data and exists watches fire for changes of
// the node itself, child watches for changes of its children list and its
// deletion, persistent watches for every event on the node, recursive ones
// for NodeCreated, NodeDeleted and NodeDataChanged on the node or below.
// Resync reaches only the persistent watches of its own path.
func matches(kind watchKind, wpath string, typ EventType, epath string) bool {
	switch kind {
	case kindData, kindExist:
		return wpath == epath && (typ == EventNodeCreated || typ == EventNodeDataChanged || typ == EventNodeDeleted)
	case kindChild:
		return wpath == epath && (typ == EventNodeChildrenChanged || typ == EventNodeDeleted)
	case kindPersistent:
		return wpath == epath
	case kindRecursive:
		if typ == EventResync {
			return wpath == epath
		}
		return (wpath == epath || wire.IsAncestor(wpath, epath)) &&
			(typ == EventNodeCreated || typ == EventNodeDataChanged || typ == EventNodeDeleted)
	}
	return false
}

// dispatchLocked hands a server event to every local watcher it matches:
// one-shot watchers receive it and are removed, persistent watchers get it
// queued. It never blocks, so events keep their order on every channel.
func (c *Client) dispatchLocked(ev Event) {
	if err := wire.ValidatePath(ev.Path); err != nil {
		c.log.Warn("coord watch event with a bad path", "event", ev.Type, "err", err)
		return
	}
	reg := c.mu.watches
	for _, kind := range [...]watchKind{kindData, kindExist, kindChild} {
		key := watchKey{ev.Path, kind}
		set := reg[key]
		if set == nil || !matches(kind, ev.Path, ev.Type, ev.Path) {
			continue
		}
		for _, ch := range set.oneShots {
			ch <- ev // capacity 1, and this is its only send
			close(ch)
		}
		delete(reg, key)
	}
	if set := reg[watchKey{ev.Path, kindPersistent}]; set != nil && matches(kindPersistent, ev.Path, ev.Type, ev.Path) {
		set.pushPersistent(ev)
	}
	for p := ev.Path; ; p = wire.Parent(p) {
		if set := reg[watchKey{p, kindRecursive}]; set != nil && matches(kindRecursive, p, ev.Type, ev.Path) {
			set.pushPersistent(ev)
		}
		if p == "/" {
			break
		}
	}
}

// addOneShotLocked records a one-shot watcher; ch has capacity 1.
func (c *Client) addOneShotLocked(key watchKey, ch chan Event) {
	set := c.mu.watches[key]
	if set == nil {
		set = &watchSet{}
		c.mu.watches[key] = set
	}
	set.oneShots = append(set.oneShots, ch)
}

// kindsOf returns the watch kinds a remove_watches type covers.
func kindsOf(t WatchType) []watchKind {
	switch t {
	case WatchTypeData:
		return []watchKind{kindData, kindExist}
	case WatchTypeChildren:
		return []watchKind{kindChild}
	case WatchTypePersistent:
		return []watchKind{kindPersistent}
	case WatchTypePersistentRecursive:
		return []watchKind{kindRecursive}
	case WatchTypeAny:
		return []watchKind{kindData, kindExist, kindChild, kindPersistent, kindRecursive}
	}
	return nil
}

// removeLocalLocked ends the local watchers of type t on path, as the
// server's answer to remove_watches did on its side. It returns how many
// it ended.
func (c *Client) removeLocalLocked(path string, t WatchType) int {
	n := 0
	for _, kind := range kindsOf(t) {
		key := watchKey{path, kind}
		set := c.mu.watches[key]
		if set == nil {
			continue
		}
		ev := Event{Type: EventNotWatching, Path: path, Err: ErrWatchRemoved}
		for _, ch := range set.oneShots {
			ch <- ev
			close(ch)
			n++
		}
		for _, w := range set.watchers {
			w.removed = true
			w.s.push(ev)
			w.s.finish()
			n++
		}
		delete(c.mu.watches, key)
	}
	return n
}

// endWatchesLocked ends every watch with an EventNotWatching carrying err.
// When abort is set (Close), persistent watch channels are closed at once
// instead of after their queued events are received.
func (c *Client) endWatchesLocked(err error, abort bool) {
	for key, set := range c.mu.watches {
		ev := Event{Type: EventNotWatching, Path: key.path, Err: err}
		for _, ch := range set.oneShots {
			ch <- ev
			close(ch)
		}
		for _, w := range set.watchers {
			w.removed = true
			if abort {
				w.s.stop()
			} else {
				w.s.push(ev)
				w.s.finish()
			}
		}
	}
	clear(c.mu.watches)
}

// setWatchesBytes bounds the paths carried by one set_watches request, so
// that a client with very many watches re-arms them in several frames, each
// far below the server's frame limit.
const setWatchesBytes = 128 << 10

// setWatchesLocked returns the set_watches requests that re-arm every watch
// of the registry on a new connection (none when there is no watch), for
// the changes after zxid since.
func (c *Client) setWatchesLocked(since int64) []wire.Request {
	keys := make([]watchKey, 0, len(c.mu.watches))
	for k := range c.mu.watches {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b watchKey) int {
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		if a.path < b.path {
			return -1
		}
		if a.path > b.path {
			return 1
		}
		return 0
	})
	var out []wire.Request
	var cur *wire.Request
	size := 0
	for _, k := range keys {
		if cur == nil || size+len(k.path) > setWatchesBytes {
			out = append(out, wire.Request{Op: wire.OpSetWatches, LastZxid: since})
			cur, size = &out[len(out)-1], 0
		}
		size += len(k.path) + 3
		switch k.kind {
		case kindData:
			cur.DataWatches = append(cur.DataWatches, k.path)
		case kindExist:
			cur.ExistWatches = append(cur.ExistWatches, k.path)
		case kindChild:
			cur.ChildWatches = append(cur.ChildWatches, k.path)
		case kindPersistent:
			cur.PersistentWatches = append(cur.PersistentWatches, k.path)
		case kindRecursive:
			cur.RecursiveWatches = append(cur.RecursiveWatches, k.path)
		}
	}
	return out
}

// Watcher is a persistent watch set with AddWatch. Its events arrive on
// Events until it is removed or the session ends.
type Watcher struct {
	c    *Client
	path string
	mode WatchMode
	s    *stream[Event]
	// removed is guarded by Client.mu.
	removed bool
}

// newWatcherLocked registers a persistent watcher and starts its pump.
func (c *Client) newWatcherLocked(path string, mode WatchMode) *Watcher {
	w := &Watcher{c: c, path: path, mode: mode, s: newStream[Event]()}
	key := watchKey{path, kindPersistent}
	if mode == WatchPersistentRecursive {
		key.kind = kindRecursive
	}
	set := c.mu.watches[key]
	if set == nil {
		set = &watchSet{}
		c.mu.watches[key] = set
	}
	set.watchers = append(set.watchers, w)
	c.startPumpLocked(w.s, func() { w.s.run(nil) })
	return w
}

// Events returns the channel of the watch's events, in the order the server
// sent them. It is closed when the watch ends: after Remove (at once), after
// RemoveWatches or the session's expiry (after a last EventNotWatching whose
// Err says why), or at Close (at once).
//
// The channel never blocks the client: events wait in an unbounded queue
// behind its buffer, so a slow consumer never delays other requests or
// watches. The price is memory: a consumer that stops reading without
// removing the watch makes that queue grow with every change under the
// watched path.
func (w *Watcher) Events() <-chan Event { return w.s.out }

// Path returns the watched path.
func (w *Watcher) Path() string { return w.path }

// Mode returns the watch's mode.
func (w *Watcher) Mode() WatchMode { return w.mode }

// Remove ends this watcher and closes its channel at once. When no other
// watcher of the client has the same path and mode, it also removes the
// server's watch; otherwise the others keep receiving events. Removing an
// ended watcher does nothing.
func (w *Watcher) Remove(ctx context.Context) error {
	c := w.c
	key := watchKey{w.path, kindPersistent}
	if w.mode == WatchPersistentRecursive {
		key.kind = kindRecursive
	}
	c.mu.Lock()
	if w.removed {
		c.mu.Unlock()
		return nil
	}
	w.removed = true
	w.s.stop()
	last := true
	if set := c.mu.watches[key]; set != nil {
		set.watchers = slices.DeleteFunc(set.watchers, func(x *Watcher) bool { return x == w })
		if len(set.watchers) > 0 {
			last = false
		} else {
			delete(c.mu.watches, key)
		}
	}
	// An add_watch of the same key still in flight would be undone by a
	// remove_watches sent after it.
	for _, cl := range c.mu.pending {
		if cl.op == wire.OpAddWatch && cl.path == w.path && cl.mode == string(w.mode) && !cl.abandoned {
			last = false
		}
	}
	c.mu.Unlock()
	if !last {
		return nil
	}
	_, err := c.do(ctx, &wire.Request{Op: wire.OpRemoveWatches, Path: w.path, Type: string(w.mode)}, nil)
	if errors.Is(err, ErrNoWatcher) || errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}
