package server

import (
	"math/bits"
	"time"
)

// groupCommit decides whether a write that reaches an idle leader alone
// waits a moment for company before it goes to disk.
//
// Writes that arrive while an fsync is running share the next one, so a
// busy server batches by itself. What it cannot batch is a lone write
// followed closely by another: the second arrives just after the first's
// fsync began and waits for it to end, then pays a whole fsync of its own.
// A lock handoff is that pattern: the releasing holder's delete is answered,
// then its next create and the new holder's delete arrive a fraction of an
// fsync apart, every time.
//
// groupCommit learns the pattern. After each lone write it notes whether the
// next write arrived within one fsync time of it (the time a second write
// would have waited anyway); when most of the last 16 did, a lone write
// waits up to that long for the next one, which then shares its fsync.
// A wait that ends with nobody arriving counts against the pattern, so it
// switches itself off as soon as the load changes: a lone client waiting
// for each answer never arrives within an fsync of its previous write (its
// answer comes after that fsync), so it is never delayed.
type groupCommit struct {
	outcomes uint16    // the last 16 lone writes, newest in bit 0: 1 = another came within the window
	seen     int       // outcomes recorded, up to 16
	lone     time.Time // when the last lone write went to disk without waiting; zero: none pending
	fsync    time.Duration
}

const (
	groupCommitHistory = 16
	groupCommitNeeded  = 10 // of the last 16 lone writes had company in time
	// The window is the mean fsync time, within these bounds.
	groupCommitMinWindow = 50 * time.Microsecond
	groupCommitMaxWindow = time.Millisecond
)

// observeFsync folds one fsync's duration into the running mean (an
// exponentially weighted one, 1/8 per sample).
func (g *groupCommit) observeFsync(d time.Duration) {
	if g.fsync == 0 {
		g.fsync = d
		return
	}
	g.fsync += (d - g.fsync) / 8
}

// window is how long a lone write may wait: the mean fsync time.
func (g *groupCommit) window() time.Duration {
	return min(max(g.fsync, groupCommitMinWindow), groupCommitMaxWindow)
}

func (g *groupCommit) record(hit bool) {
	g.outcomes <<= 1
	if hit {
		g.outcomes |= 1
	}
	g.seen = min(g.seen+1, groupCommitHistory)
}

// arrived learns from a batch about to be proposed: n writes, the first of
// them made at first (zero: unknown). It returns how long to wait for one
// more write before proposing: zero means go ahead now. After a wait, the
// caller reports its outcome with waited.
func (g *groupCommit) arrived(n int, first, now time.Time) time.Duration {
	w := g.window()
	if !g.lone.IsZero() && !first.IsZero() {
		// The previous lone write went ahead alone: did this one come
		// soon enough to have shared its fsync?
		g.record(first.Sub(g.lone) < w)
	}
	g.lone = time.Time{}
	if n != 1 {
		return 0
	}
	if g.seen == groupCommitHistory && bits.OnesCount16(g.outcomes) >= groupCommitNeeded {
		return w
	}
	g.lone = now
	return 0
}

// waited reports the outcome of a wait that arrived asked for.
func (g *groupCommit) waited(company bool) {
	g.record(company)
}
