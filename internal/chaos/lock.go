package chaos

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// The LOCK checker. Contenders take a recipe.Mutex and, holding it, write
// to a fenced register: a service outside coord that remembers the largest
// fencing token it has seen and refuses writes with a smaller one (as a
// storage service guarding against paused lock holders would). They also
// write to a znode with Mutex.Do, which applies only while the lock node
// exists. Sometimes a holder pauses (its network silenced, its code not
// running) past its session timeout, then wakes and writes with its old
// token, as a process resuming from a long GC pause would.

// Acquisition is one successful Lock.
type Acquisition struct {
	ID       int
	Client   int
	Token    int64
	Invoked  time.Duration // Lock called
	Acquired time.Duration // Lock returned
	Released time.Duration // Unlock called (0: never)
	Paused   bool          // the holder paused past its session timeout
	// PauseLost says the lock was gone when the paused holder woke (its
	// guarded write was refused): the pause did outlast the session.
	PauseLost bool
}

// RegWrite is one write to the fenced register.
type RegWrite struct {
	Acq      int // the acquisition it was made under
	Token    int64
	At       time.Duration
	Accepted bool
	Stale    bool // made after a pause, without checking the lock
}

// GuardedWrite is one successful Mutex.Do.
type GuardedWrite struct {
	Acq   int
	Token int64
	Zxid  int64 // the zxid it applied at
}

// FencedRegister is the service the lock protects.
type FencedRegister struct {
	start time.Time
	mu    struct {
		sync.Mutex
		max int64
		log []RegWrite
	}
}

// NewFencedRegister returns an empty register; its times count from now.
func NewFencedRegister() *FencedRegister { return &FencedRegister{start: time.Now()} }

// Write accepts the write if token is at least the largest token seen.
func (r *FencedRegister) Write(acq int, token int64, stale bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := token >= r.mu.max
	if ok {
		r.mu.max = token
	}
	r.mu.log = append(r.mu.log, RegWrite{Acq: acq, Token: token, At: time.Since(r.start), Accepted: ok, Stale: stale})
	return ok
}

// Log returns the writes in the order the register saw them.
func (r *FencedRegister) Log() []RegWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RegWrite(nil), r.mu.log...)
}

// LockHistory is what the LOCK workload records.
type LockHistory struct {
	Acquisitions []Acquisition
	Register     []RegWrite
	Guarded      []GuardedWrite
}

// LockResult is the LOCK checker's verdict.
type LockResult struct {
	Acquisitions, RegWrites, Guarded, Pauses, PausesLost, StaleAttempts, StaleRejected int
	DupTokens, TokenOrder, Overlaps, StaleAccepted                                     int
	Examples                                                                           []string
}

// Anomalies counts the violations.
func (r LockResult) Anomalies() int { return r.DupTokens + r.TokenOrder + r.Overlaps + r.StaleAccepted }

func (r *LockResult) example(format string, args ...any) {
	if len(r.Examples) < 10 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// CheckLock checks:
//   - every acquisition has its own token;
//   - an acquisition that began after another had acquired has a larger
//     token (tokens strictly increase in the order the lock is granted);
//   - the writes guarded by Mutex.Do, in zxid order, carry non-decreasing
//     tokens: no holder's guarded write applied after a later holder's,
//     so no two holders ever held the lock at once as the server sees it;
//   - the register accepted no stale write: none made under an
//     acquisition after a later-granted acquisition's write was accepted.
func CheckLock(h LockHistory) LockResult {
	r := LockResult{Acquisitions: len(h.Acquisitions), RegWrites: len(h.Register), Guarded: len(h.Guarded)}
	byID := map[int]Acquisition{}
	byToken := map[int64]Acquisition{}
	for _, a := range h.Acquisitions {
		byID[a.ID] = a
		if a.Paused {
			r.Pauses++
		}
		if a.PauseLost {
			r.PausesLost++
		}
		if b, dup := byToken[a.Token]; dup {
			r.DupTokens++
			r.example("token %d granted twice: acquisition %d (client %d, at %v) and %d (client %d, at %v)",
				a.Token, b.ID, b.Client, b.Acquired, a.ID, a.Client, a.Acquired)
		}
		byToken[a.Token] = a
	}
	// Grant order: sort by Acquired; for each b, the largest token among
	// those acquired before b was invoked must be smaller than b's.
	acq := append([]Acquisition(nil), h.Acquisitions...)
	sort.Slice(acq, func(i, j int) bool { return acq[i].Acquired < acq[j].Acquired })
	inv := append([]Acquisition(nil), h.Acquisitions...)
	sort.Slice(inv, func(i, j int) bool { return inv[i].Invoked < inv[j].Invoked })
	var best Acquisition
	have, k := false, 0
	for _, b := range inv {
		for k < len(acq) && acq[k].Acquired < b.Invoked {
			if !have || acq[k].Token > best.Token {
				best, have = acq[k], true
			}
			k++
		}
		if have && best.Token >= b.Token {
			r.TokenOrder++
			r.example("acquisition %d (client %d) got token %d at %v, yet acquisition %d (client %d) had already got token %d at %v, before %d was even asked for (%v)",
				b.ID, b.Client, b.Token, b.Acquired, best.ID, best.Client, best.Token, best.Acquired, b.ID, b.Invoked)
		}
	}
	// Guarded writes in zxid order.
	g := append([]GuardedWrite(nil), h.Guarded...)
	sort.Slice(g, func(i, j int) bool { return g[i].Zxid < g[j].Zxid })
	for i := 1; i < len(g); i++ {
		if g[i].Token < g[i-1].Token {
			r.Overlaps++
			r.example("guarded write of acquisition %d (token %d) applied at zxid %d, after acquisition %d's (token %d) at zxid %d: two holders at once",
				g[i].Acq, g[i].Token, g[i].Zxid, g[i-1].Acq, g[i-1].Token, g[i-1].Zxid)
		}
	}
	// Stale writes accepted by the register.
	newestGranted := map[int]bool{} // acquisitions with an accepted write so far
	for _, w := range h.Register {
		if w.Stale {
			r.StaleAttempts++
			if !w.Accepted {
				r.StaleRejected++
			}
		}
		if w.Accepted {
			me := byID[w.Acq]
			for id := range newestGranted {
				o := byID[id]
				if o.Invoked > me.Acquired {
					r.StaleAccepted++
					r.example("the register accepted token %d of acquisition %d (acquired at %v) at %v, after accepting token %d of acquisition %d, which was only asked for at %v",
						w.Token, w.Acq, me.Acquired, w.At, o.Token, o.ID, o.Invoked)
					break
				}
			}
			newestGranted[w.Acq] = true
		}
	}
	return r
}
