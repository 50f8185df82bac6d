package server

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/watch"
	"github.com/coord-dev/coord/znode"
)

// answerInline is how many parked reads an apply answers itself; more are
// answered by a goroutine of their own.
const answerInline = 4

// runApply is the apply goroutine: it applies committed entries in log order,
// then publishes their effects (watch events, answers, session ends) while
// reads are held off, so no client sees a response reflecting a zxid before
// the watch events of that zxid.
func (s *Server) runApply() {
	var lastCompact uint64 = s.state.AppliedIndex()
	for {
		var items []applyItem
		select {
		case items = <-s.applyc:
		case rq := <-s.restorec:
			// A full disk cannot take a snapshot: refuse it, and the
			// leader sends it again later.
			if !s.disk.enter() {
				rq.done <- s.disk.err()
				continue
			}
			err := s.restore(rq.r)
			s.disk.exit()
			rq.done <- err
			continue
		case <-s.stopc:
			return
		}
		// Take whatever else is queued: one pebble batch for all of it.
		for more := true; more && len(items) < 4096; {
			select {
			case next := <-s.applyc:
				items = append(items, next...)
			default:
				more = false
			}
		}
		// Entries apply in log order without a gap: one would mean the
		// state lost entries (it went back behind what raft considers
		// applied), and applying past it would diverge from the other
		// members for good. Stop instead.
		if err := checkContiguous(s.state.AppliedIndex(), items); err != nil {
			s.fatal(err)
			return
		}
		// Entries handed over before the disk filled wait here, as the
		// raft loop holds its Ready.
		if !s.disk.waitEnter(s.stopc) {
			return
		}
		s.crashPoint(CrashBeforeApply)
		start := time.Now()
		err := s.state.Apply(items, s.publish)
		s.disk.exit()
		if err != nil {
			s.fatal(fmt.Errorf("apply: %w", err))
			return
		}
		if n := len(s.gone); n > 0 {
			if n <= answerInline {
				s.answerGone(s.gone)
			} else {
				// Many readers waited for one node (an RWMutex's
				// readers for a writer): answer them off the apply
				// goroutine, which the next batch waits for.
				go s.answerGone(slices.Clone(s.gone))
			}
			clear(s.gone)
			s.gone = s.gone[:0]
		}
		s.metrics.applyBatch.Observe(float64(len(items)))
		s.metrics.applyLatency.Observe(time.Since(start).Seconds())
		if applied := s.state.AppliedIndex(); applied-lastCompact >= s.cfg.SnapshotEntries {
			lastCompact = applied
			s.compact(applied)
		}
	}
}

// checkContiguous reports an error when the first item past applied is not
// applied+1: the entries in between would never reach the state.
func checkContiguous(applied uint64, items []applyItem) error {
	for _, it := range items {
		if it.Index <= applied {
			continue
		}
		if it.Index != applied+1 {
			return fmt.Errorf("apply: entry %d follows applied index %d: entries %d to %d are missing from the state", it.Index, applied, applied+1, it.Index-1)
		}
		return nil
	}
	return nil
}

// restore replaces the state with a snapshot stream. Clients connected here
// whose connection the jump could have misled are disconnected, to resume
// and re-arm: those with watches (the changes the snapshot skipped fired
// none; set_watches then fires or sends Resync), with writes in flight
// (their entries may be inside the snapshot, where no outcome is
// delivered; resent, they get their one true result), and those whose
// session the snapshot no longer has (its close was skipped, and with it
// the expired frame) or that have none yet. The others keep their
// connection: nothing they were waiting for was skipped, but for the
// deletions parked reads wait for, which are answered here.
func (s *Server) restore(r io.Reader) error {
	err := s.state.Restore(r)
	if err == nil {
		s.applied.set(s.state.AppliedIndex())
		if b := s.state.Conf(); b != nil {
			if m, derr := decodeMembership(b); derr == nil {
				s.members.Store(m)
			}
		}
	}
	if err != nil {
		return err
	}
	// Connections accepted from now on only ever see the new state.
	s.restores.Add(1)
	s.answerRestored()
	closed := s.conns.closeIf(s.misledByRestore, closeRestored, "this server restored a snapshot; resume the session")
	s.log.Info("snapshot restore: client connections told to resume", "closed", closed, "kept", s.conns.count())
	return nil
}

// misledByRestore reports whether connection c must resume after a
// snapshot restore (see restore). Nothing that needs it slips past: watches
// are registered under the store's read lock, which the restore held
// exclusively, so every watch set against the old state is counted here;
// and a write counted in flight only after this check was proposed after
// the restore, so its entry cannot be inside the snapshot.
//
// A connection accepted after the state was replaced saw nothing else: it
// is kept, even while its connect is still on its way.
func (s *Server) misledByRestore(c *conn) bool {
	if c.restores == s.restores.Load() {
		return false
	}
	id := c.session()
	if id == 0 || c.pendingWrites.Load() != 0 || s.watches.Count(c.wid) != 0 {
		return true
	}
	_, ok := s.state.Session(id)
	return !ok
}

// publish runs inside Apply after the batch committed and before any reader
// can see it. It must not block. Every watch event of the batch is pushed
// before any request is answered, so an answer may carry the batch's last
// zxid (PROTOCOL.md: the last applied zxid) without overtaking an event.
func (s *Server) publish(outcomes []znode.Outcome) {
	s.crashPoint(CrashAfterApply)
	if len(outcomes) == 0 {
		return
	}
	for i := range outcomes {
		o := &outcomes[i]
		for _, c := range o.Changes {
			s.fireWatch(c)
			if c.Type == wire.EventNodeDeleted && s.parking.n.Load() != 0 {
				s.gone = s.parking.deleted(c.Path, s.gone)
			}
		}
		if o.Closed != 0 {
			s.sessionClosed(o.Closed, o.Index)
		} else if e := o.Entry; e != nil && e.Op.Kind == znode.OpCloseSession && e.Op.Expired && o.Result.Err == wire.SessionExpired {
			s.forgetSession(e.Op.SessionID)
		}
		if o.Entry != nil && o.Entry.Op.Kind == znode.OpCreateSession && o.Result.Err == wire.OK && !o.Duplicate {
			s.sessionCreated(o.Entry.Op.SessionID, time.Duration(o.Entry.Op.TimeoutMs)*time.Millisecond)
		}
	}
	s.applied.set(outcomes[len(outcomes)-1].Index)
	for i := range outcomes {
		o := &outcomes[i]
		if o.Entry == nil {
			continue
		}
		if p := s.waiters.take(o.Entry.ID); p != nil {
			p.done(o, nil)
		}
	}
}

// fireWatch delivers one change to the watchers it triggers, skipping
// sessions that may not read the path.
func (s *Server) fireWatch(c znode.Change) {
	for _, f := range s.watches.Trigger(c) {
		cn := s.conns.get(f.Watcher)
		if cn == nil {
			continue
		}
		if !s.state.Allowed(c.ACL, cn.identities(), wire.PermRead) {
			continue
		}
		cn.push(wire.WatchEvent(f.Event, f.Path, f.Zxid))
	}
	s.metrics.watchEvents.Add(1)
}

// compact trims the raft log and the change history, keeping
// HistoryEntries behind the applied index for lagging followers and watch
// replay.
func (s *Server) compact(applied uint64) {
	if applied <= s.cfg.HistoryEntries {
		return
	}
	at := applied - s.cfg.HistoryEntries
	if !s.disk.enter() {
		return // the next compaction will do
	}
	err := s.state.TrimHistory(at)
	s.disk.exit()
	if err != nil {
		s.log.Warn("trim change history", "err", err)
	}
	s.ctrl(func(r *raftLoop) { r.compactLog(at) })
}

var _ sync.Locker = (*sync.Mutex)(nil)
var _ = watch.NewRegistry
