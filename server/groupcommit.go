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
// next write was made while the lone write's fsync was still running (so
// that it waited for that fsync anyway); when most of the last 16 were, a
// lone write waits up to one mean fsync time for the next one, which then
// shares its fsync. A wait that ends with nobody arriving counts against
// the pattern, so it switches itself off as soon as the load changes. A
// client that waits for each answer is never held: its next write is made
// after the answer, so after the fsync.
type groupCommit struct {
	outcomes  uint16        // the last 16 lone writes, newest in bit 0: 1 = company came in time
	seen      int           // outcomes recorded, up to 16
	lone      bool          // the last batch was a lone write that went ahead without waiting
	fsyncEnd  time.Time     // when the last fsync ended
	fsyncMean time.Duration // running mean of fsync times
}

const (
	groupCommitHistory = 16
	groupCommitNeeded  = 8 // of the last 16 lone writes had company in time
	// The window is the mean fsync time, within these bounds.
	groupCommitMinWindow = 50 * time.Microsecond
	groupCommitMaxWindow = time.Millisecond
)

// observeFsync records an fsync that ran from start to end: its duration
// goes into the running mean (an exponentially weighted one, 1/8 per
// sample).
func (g *groupCommit) observeFsync(start, end time.Time) {
	g.fsyncEnd = end
	d := end.Sub(start)
	if g.fsyncMean == 0 {
		g.fsyncMean = d
		return
	}
	g.fsyncMean += (d - g.fsyncMean) / 8
}

// window is how long a lone write may wait: the mean fsync time.
func (g *groupCommit) window() time.Duration {
	return min(max(g.fsyncMean, groupCommitMinWindow), groupCommitMaxWindow)
}

// record notes whether a lone write had company in time: after it went
// ahead alone (see arrived), or at the end of a wait arrived asked for.
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
// caller reports its outcome with record.
func (g *groupCommit) arrived(n int, first time.Time) time.Duration {
	if g.lone {
		// The previous lone write went ahead alone (and the raft loop
		// synced it before taking this batch): was this one made while
		// that fsync ran?
		g.record(!first.IsZero() && first.Before(g.fsyncEnd))
		g.lone = false
	}
	if n != 1 {
		return 0
	}
	if g.seen == groupCommitHistory && bits.OnesCount16(g.outcomes) >= groupCommitNeeded {
		return g.window()
	}
	g.lone = true
	return 0
}
