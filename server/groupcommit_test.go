package server

import (
	"testing"
	"time"
)

// sim drives a groupCommit as the raft loop does: a batch arrives, goes to
// disk (fsync) unless held, the next arrives.
type sim struct {
	g   groupCommit
	now time.Time
}

func newSim(fsync time.Duration) *sim {
	s := &sim{now: time.Unix(0, 0)}
	s.g.observeFsync(s.now, s.now.Add(fsync))
	return s
}

// lone: one write made now; if held, nobody comes (record false), then it
// is synced for fsync. It reports whether it was held.
func (s *sim) lone(fsync time.Duration) (held bool) {
	if w := s.g.arrived(1, s.now); w > 0 {
		held = true
		s.g.record(false)
		s.now = s.now.Add(w)
	}
	start := s.now
	s.now = s.now.Add(fsync)
	s.g.observeFsync(start, s.now)
	return held
}

func TestGroupCommitNeverHoldsASerialWriter(t *testing.T) {
	s := newSim(200 * time.Microsecond)
	// A client that waits for each answer makes its next write after the
	// fsync, however fast that fsync was compared with the mean: here most
	// are 20µs and every fourth 2ms, so the next write often comes well
	// within one mean fsync time of the last, yet never during its fsync.
	for i := range 1000 {
		fsync := []time.Duration{20 * time.Microsecond, 20 * time.Microsecond, 20 * time.Microsecond, 2 * time.Millisecond}[i%4]
		if s.lone(fsync) {
			t.Fatalf("write %d of a serial writer was held back", i)
		}
		s.now = s.now.Add(30 * time.Microsecond) // the answer's round trip
	}
}

func TestGroupCommitLearnsPairsAndUnlearns(t *testing.T) {
	s := newSim(200 * time.Microsecond)
	// Lone writes each followed, 80µs into their 200µs fsync, by the next:
	// a handoff pattern. While the history fills, nothing is held.
	for i := range groupCommitHistory {
		if w := s.g.arrived(1, s.now); w != 0 {
			t.Fatalf("held back after %d observations, before the history was full", i)
		}
		start := s.now
		s.now = s.now.Add(80 * time.Microsecond) // the next write is made
		s.g.observeFsync(start, start.Add(200*time.Microsecond))
	}
	if w := s.g.arrived(1, s.now); w != 200*time.Microsecond {
		t.Fatalf("after %d paired writes: wait %v, want the mean fsync time 200µs", groupCommitHistory, w)
	}
	s.g.record(true)

	// The load changes: every wait ends alone. It must stop waiting
	// within a few writes, and stay stopped.
	held := 0
	for range 100 {
		s.now = s.now.Add(time.Millisecond)
		if s.lone(200 * time.Microsecond) {
			held++
		}
	}
	if limit := groupCommitHistory - groupCommitNeeded + 1; held > limit {
		t.Fatalf("held back %d lone writes after the pattern ended, want at most %d", held, limit)
	}
	s.now = s.now.Add(time.Millisecond)
	if s.lone(200 * time.Microsecond) {
		t.Fatal("still holding back writes long after the pattern ended")
	}
}

func TestGroupCommitIgnoresBatches(t *testing.T) {
	s := newSim(200 * time.Microsecond)
	for range 100 {
		if w := s.g.arrived(8, s.now); w != 0 {
			t.Fatalf("a batch of 8 was held back %v", w)
		}
		s.now = s.now.Add(10 * time.Microsecond)
	}
	if s.g.seen != 0 {
		t.Fatalf("batches recorded %d lone-write outcomes", s.g.seen)
	}
	// A batch after a lone write still tells whether company came in time.
	start := s.now
	s.g.arrived(1, start)
	s.g.observeFsync(start, start.Add(200*time.Microsecond))
	s.g.arrived(3, start.Add(50*time.Microsecond))
	if s.g.seen != 1 || s.g.outcomes&1 != 1 {
		t.Fatalf("seen %d outcomes %b: want one hit", s.g.seen, s.g.outcomes)
	}
}

func TestGroupCommitUnknownArrivalIsNotAHit(t *testing.T) {
	s := newSim(200 * time.Microsecond)
	s.g.arrived(1, s.now)
	s.g.observeFsync(s.now, s.now.Add(200*time.Microsecond))
	s.g.arrived(1, time.Time{})
	if s.g.seen != 1 || s.g.outcomes != 0 {
		t.Fatalf("a proposal without a creation time counted as company: seen %d, outcomes %b", s.g.seen, s.g.outcomes)
	}
}

func TestGroupCommitWindowFollowsFsyncWithinBounds(t *testing.T) {
	var g groupCommit
	if w := g.window(); w != groupCommitMinWindow {
		t.Fatalf("no fsync seen: window %v, want %v", w, groupCommitMinWindow)
	}
	t0 := time.Unix(0, 0)
	g.observeFsync(t0, t0.Add(10*time.Microsecond))
	if w := g.window(); w != groupCommitMinWindow {
		t.Fatalf("10µs fsyncs: window %v, want the floor %v", w, groupCommitMinWindow)
	}
	for range 200 {
		g.observeFsync(t0, t0.Add(50*time.Millisecond))
	}
	if w := g.window(); w != groupCommitMaxWindow {
		t.Fatalf("50ms fsyncs: window %v, want the cap %v", w, groupCommitMaxWindow)
	}
	g = groupCommit{}
	g.observeFsync(t0, t0.Add(400*time.Microsecond))
	for range 100 {
		g.observeFsync(t0, t0.Add(200*time.Microsecond))
	}
	if w := g.window(); w < 195*time.Microsecond || w > 205*time.Microsecond {
		t.Fatalf("window %v after a run of 200µs fsyncs", w)
	}
}
