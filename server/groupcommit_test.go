package server

import (
	"testing"
	"time"
)

// loneWrites feeds g n lone writes, each arriving gap after the previous
// one went to disk, and returns how many it would have held back.
func loneWrites(g *groupCommit, t0 time.Time, n int, gap time.Duration) (held int, now time.Time) {
	now = t0
	for range n {
		wait := g.arrived(1, now, now)
		if wait > 0 {
			held++
			g.waited(false) // nobody came: only the first check matters here
		}
		now = now.Add(gap)
	}
	return held, now
}

func TestGroupCommitNeverHoldsASerialWriter(t *testing.T) {
	var g groupCommit
	g.observeFsync(200 * time.Microsecond)
	// A client that waits for each answer sends its next write after the
	// fsync of the previous one: never within the window.
	held, _ := loneWrites(&g, time.Unix(0, 0), 1000, 300*time.Microsecond)
	if held != 0 {
		t.Fatalf("a serial writer was held back %d times", held)
	}
}

func TestGroupCommitLearnsPairsAndUnlearns(t *testing.T) {
	var g groupCommit
	g.observeFsync(200 * time.Microsecond)
	now := time.Unix(0, 0)
	// Lone writes each followed 80µs later by the next: a handoff pattern.
	for i := range groupCommitHistory {
		if w := g.arrived(1, now, now); w != 0 {
			t.Fatalf("held back after %d observations, before the history was full", i)
		}
		now = now.Add(80 * time.Microsecond)
	}
	w := g.arrived(1, now, now)
	if w != 200*time.Microsecond {
		t.Fatalf("after %d paired writes: wait %v, want the mean fsync time 200µs", groupCommitHistory, w)
	}
	g.waited(true)

	// The load changes: every wait ends alone. It must stop waiting
	// within a few writes, and stay stopped.
	misses := 0
	for range 100 {
		now = now.Add(time.Millisecond)
		if g.arrived(1, now, now) > 0 {
			misses++
			g.waited(false)
		}
	}
	if limit := groupCommitHistory - groupCommitNeeded + 1; misses > limit {
		t.Fatalf("held back %d lone writes after the pattern ended, want at most %d", misses, limit)
	}
	if g.arrived(1, now.Add(time.Millisecond), now.Add(time.Millisecond)) != 0 {
		t.Fatal("still holding back writes long after the pattern ended")
	}
}

func TestGroupCommitIgnoresBatches(t *testing.T) {
	var g groupCommit
	g.observeFsync(200 * time.Microsecond)
	now := time.Unix(0, 0)
	for range 100 {
		if w := g.arrived(8, now, now); w != 0 {
			t.Fatalf("a batch of 8 was held back %v", w)
		}
		now = now.Add(10 * time.Microsecond)
	}
	if g.seen != 0 {
		t.Fatalf("batches recorded %d lone-write outcomes", g.seen)
	}
	// A batch after a lone write still tells whether company came in time.
	g.arrived(1, now, now)
	g.arrived(3, now.Add(50*time.Microsecond), now.Add(60*time.Microsecond))
	if g.seen != 1 || g.outcomes&1 != 1 {
		t.Fatalf("seen %d outcomes %b: want one hit", g.seen, g.outcomes)
	}
}

func TestGroupCommitUnknownArrivalIsNotAHit(t *testing.T) {
	var g groupCommit
	g.observeFsync(200 * time.Microsecond)
	now := time.Unix(0, 0)
	g.arrived(1, now, now)
	g.arrived(1, time.Time{}, now.Add(time.Microsecond))
	if g.outcomes != 0 {
		t.Fatalf("a proposal without a creation time counted as company: %b", g.outcomes)
	}
}

func TestGroupCommitWindowFollowsFsyncWithinBounds(t *testing.T) {
	var g groupCommit
	if w := g.window(); w != groupCommitMinWindow {
		t.Fatalf("no fsync seen: window %v, want %v", w, groupCommitMinWindow)
	}
	g.observeFsync(10 * time.Microsecond)
	if w := g.window(); w != groupCommitMinWindow {
		t.Fatalf("10µs fsyncs: window %v, want the floor %v", w, groupCommitMinWindow)
	}
	for range 200 {
		g.observeFsync(50 * time.Millisecond)
	}
	if w := g.window(); w != groupCommitMaxWindow {
		t.Fatalf("50ms fsyncs: window %v, want the cap %v", w, groupCommitMaxWindow)
	}
	g = groupCommit{}
	g.observeFsync(400 * time.Microsecond)
	for range 100 {
		g.observeFsync(200 * time.Microsecond)
	}
	if w := g.window(); w < 195*time.Microsecond || w > 205*time.Microsecond {
		t.Fatalf("window %v after a run of 200µs fsyncs", w)
	}
}
