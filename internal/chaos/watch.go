package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coord-dev/coord/client"
)

// The WATCH checker. One writer changes a few nodes under watchRoot, one
// change per entry, and learns the zxid of each. Watchers on several
// clients (which fail over between servers as servers die) hold a
// persistent recursive watch on watchRoot and re-armed one-shot watches on
// each node.
//
// A persistent watch must deliver every change after it was set, exactly
// once, in zxid order, across reconnects. A one-shot watch armed by a read
// that saw the node at mzxid m must fire once, for a change after m: for
// the first change after m when no reconnect came in between (a watch
// re-armed after a reconnect fires at once for "something changed since",
// with the server's zxid, as ZooKeeper's).

// Change is one committed change of a watched node.
type Change struct {
	Zxid    int64
	Path    string
	Type    client.EventType
	Invoked time.Duration // the write was sent (it applied after this)
	At      time.Duration // and acknowledged (it applied before this)
}

// StreamEvent is one event a persistent watch delivered.
type StreamEvent struct {
	Zxid int64
	Path string
	Type client.EventType
}

// Stream is what one persistent watch delivered. A stream covers the
// changes sent after From (when the watch was set: a change sent after it
// applied after it) and, unless Final, up to its last event (it ended with
// its session).
type Stream struct {
	Watcher int
	From    time.Duration
	Final   bool
	Events  []StreamEvent
}

// Arm is one one-shot watch.
type Arm struct {
	Watcher int
	Path    string
	Exists  bool          // armed by a get that found the node (else by exists)
	Mzxid   int64         // the node's mzxid the get saw
	Invoked time.Duration // the arming read was sent
	Armed   time.Duration // and answered
	// Fired, Event and EventZxid tell whether and how it fired.
	Fired     bool
	Event     client.EventType
	EventZxid int64
	Received  time.Duration
	// Reconnected says the watcher's connection changed between the arm
	// and its event.
	Reconnected bool
}

// WatchHistory is what the WATCH workload records.
type WatchHistory struct {
	Changes []Change
	Streams []Stream
	Arms    []Arm
	// Unresolved is set when a change's outcome could not be learnt:
	// missed and phantom events are then not judged.
	Unresolved bool
}

// WatchResult is the WATCH checker's verdict.
type WatchResult struct {
	Changes, Events, Arms, Fired, Resyncs                                int
	Missed, Duplicate, Reordered, Phantom, Stale, WrongFirst, ArmsMissed int
	Examples                                                             []string
}

// Anomalies counts the violations.
func (r WatchResult) Anomalies() int {
	return r.Missed + r.Duplicate + r.Reordered + r.Phantom + r.Stale + r.WrongFirst + r.ArmsMissed
}

func (r *WatchResult) example(format string, args ...any) {
	if len(r.Examples) < 10 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

type changeKey struct {
	zxid int64
	path string
}

// CheckWatch checks the streams and arms against the changes.
func CheckWatch(h WatchHistory) WatchResult {
	r := WatchResult{Changes: len(h.Changes), Arms: len(h.Arms)}
	changes := append([]Change(nil), h.Changes...)
	sort.Slice(changes, func(i, j int) bool { return changes[i].Zxid < changes[j].Zxid })
	byKey := map[changeKey]Change{}
	byPath := map[string][]Change{}
	for _, c := range changes {
		byKey[changeKey{c.Zxid, c.Path}] = c
		byPath[c.Path] = append(byPath[c.Path], c)
	}
	for _, s := range h.Streams {
		r.checkStream(s, changes, byKey, h.Unresolved)
	}
	for _, a := range h.Arms {
		r.checkArm(a, byPath[a.Path], h.Unresolved)
	}
	return r
}

func (r *WatchResult) checkStream(s Stream, changes []Change, byKey map[changeKey]Change, unresolved bool) {
	seen := map[changeKey]bool{}
	var last int64
	// A Resync(z) event excuses the changes after the last event before it,
	// up to z: the server could no longer replay them.
	type span struct{ lo, hi int64 }
	var excuses []span
	for _, e := range s.Events {
		if e.Type == client.EventResync {
			r.Resyncs++
			excuses = append(excuses, span{last, e.Zxid})
			continue
		}
		r.Events++
		k := changeKey{e.Zxid, e.Path}
		switch {
		case seen[k]:
			r.Duplicate++
			r.example("watcher %d: event %s %s zxid %d delivered twice", s.Watcher, e.Type, e.Path, e.Zxid)
		case e.Zxid <= last:
			r.Reordered++
			r.example("watcher %d: event %s %s zxid %d after an event with zxid %d", s.Watcher, e.Type, e.Path, e.Zxid, last)
		}
		seen[k] = true
		last = max(last, e.Zxid)
		c, ok := byKey[k]
		switch {
		case !ok && !unresolved:
			r.Phantom++
			r.example("watcher %d: event %s %s zxid %d matches no change", s.Watcher, e.Type, e.Path, e.Zxid)
		case ok && c.Type != e.Type:
			r.Phantom++
			r.example("watcher %d: event %s %s zxid %d, but that change was a %s", s.Watcher, e.Type, e.Path, e.Zxid, c.Type)
		}
	}
	if unresolved {
		return
	}
	// Every change applied after one sent after the watch was set (and,
	// for a stream cut short, up to its last event) must have been
	// delivered. (Not "acknowledged after": an answer can come long after
	// the change, when the writer's connection was lost.)
	excused := func(z int64) bool {
		for _, x := range excuses {
			if z > x.lo && z <= x.hi {
				return true
			}
		}
		return false
	}
	var firstZ int64 = -1
	for _, c := range changes {
		if c.Invoked > s.From {
			firstZ = c.Zxid
			break
		}
	}
	if firstZ < 0 {
		return
	}
	for _, c := range changes {
		if c.Zxid < firstZ || (!s.Final && c.Zxid > last) {
			continue
		}
		if !seen[changeKey{c.Zxid, c.Path}] && !excused(c.Zxid) {
			r.Missed++
			r.example("watcher %d: change %s %s zxid %d never delivered; the stream around it: %s",
				s.Watcher, c.Type, c.Path, c.Zxid, around(s.Events, c.Zxid))
		}
	}
}

// around describes the events of a stream next to zxid z.
func around(events []StreamEvent, z int64) string {
	i := sort.Search(len(events), func(i int) bool { return events[i].Zxid >= z })
	var parts []string
	for j := max(0, i-3); j < min(len(events), i+3); j++ {
		e := events[j]
		parts = append(parts, fmt.Sprintf("%s %s@%d", e.Type, e.Path, e.Zxid))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (r *WatchResult) checkArm(a Arm, changes []Change, unresolved bool) {
	if a.Fired {
		r.Fired++
		if a.Event == client.EventNotWatching {
			return // ended by the session's expiry or Close, not by a change
		}
		if a.Exists && a.EventZxid <= a.Mzxid {
			r.Stale++
			r.example("one-shot watch on %s armed at mzxid %d fired %s with zxid %d: a change it had already seen",
				a.Path, a.Mzxid, a.Event, a.EventZxid)
			return
		}
	}
	if unresolved {
		return
	}
	// The changes that must fire the watch, in zxid order: after the
	// node's mzxid for a data watch; for an exists watch on an absent node
	// (whose read point is not known), the creates acknowledged after the
	// read began.
	var due []Change
	for _, c := range changes {
		if a.Exists && c.Zxid > a.Mzxid || !a.Exists && c.Type == client.EventNodeCreated && c.At > a.Invoked {
			due = append(due, c)
		}
	}
	if !a.Fired {
		for _, c := range due {
			// A create acknowledged after an exists read returned was
			// applied after the read (the writer is sequential, so it was
			// not deleted again before the read).
			if a.Exists || c.At > a.Armed {
				r.ArmsMissed++
				r.example("one-shot watch on %s (armed at %v, mzxid %d) never fired, though %s zxid %d followed",
					a.Path, a.Armed, a.Mzxid, c.Type, c.Zxid)
				break
			}
		}
		return
	}
	if len(due) == 0 || due[0].Zxid > a.EventZxid {
		r.Phantom++
		r.example("one-shot watch on %s (armed at %v, mzxid %d) fired %s zxid %d, with no change of the node in between",
			a.Path, a.Armed, a.Mzxid, a.Event, a.EventZxid)
		return
	}
	if a.Reconnected {
		return
	}
	if a.Exists {
		if due[0].Zxid != a.EventZxid || due[0].Type != a.Event {
			r.WrongFirst++
			r.example("one-shot watch on %s (mzxid %d) fired %s zxid %d; the first change after it was %s zxid %d",
				a.Path, a.Mzxid, a.Event, a.EventZxid, due[0].Type, due[0].Zxid)
		}
		return
	}
	for _, c := range due {
		if c.Zxid == a.EventZxid && a.Event == client.EventNodeCreated {
			return
		}
	}
	r.WrongFirst++
	r.example("exists watch on %s fired %s zxid %d, which is no create of the node", a.Path, a.Event, a.EventZxid)
}
