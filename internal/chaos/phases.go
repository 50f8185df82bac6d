package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// The phases of a run after the nemesis: SESS deaths, the BAD fuzzer and
// the CONV comparison.

// sessPhase kills some owners with no server fault and times how long
// their ephemerals outlive them; the others must keep theirs.
func (r *runner) sessPhase(ctx context.Context, sess *sessLoad, owners []*sessOwner) SessHistory {
	observer, err := r.connect(ctx, r.c.Addrs(), client.WithSessionTimeout(30*time.Second))
	if err != nil {
		r.invalid("SESS observer: %v", err)
		for _, o := range owners {
			o.cancel()
			<-o.done
		}
		return sess.History()
	}
	n := min(r.p.SessDeaths, len(owners))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	skipped := 0
	for _, o := range owners[:n] {
		wg.Go(func() {
			_, err := sess.kill(ctx, o, observer)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, errNoEphemeral):
				skipped++
			case err != nil:
				problems = append(problems, err.Error())
			}
		})
	}
	wg.Wait()
	for _, o := range owners[n:] {
		sess.control(ctx, o, observer)
	}
	for _, p := range problems {
		r.invalid("SESS: %s", p)
	}
	if skipped > 0 {
		r.logf("SESS: %d owners to kill had lost their ephemeral with their session already", skipped)
	}
	h := sess.History()
	r.logf("SESS: %d deaths timed, %d controls, %d reads under faults, %d expirations", len(h.Deaths), len(h.Controls), h.Reads, h.Expirations)
	return h
}

// badPhase runs the live protocol fuzzer next to well-behaved sessions.
func (r *runner) badPhase(ctx context.Context) BadResult {
	res := BadResult{}
	ids := r.c.IDs()
	addrs := r.c.Addrs()
	wb := &wellBehaved{}
	wbCtx, stopWB := context.WithCancel(ctx)
	defer stopWB()
	var wbWG sync.WaitGroup
	var sessions []client.SessionID
	for i := 0; i < 4; i++ {
		c, err := r.connect(ctx, addrs, client.WithSessionTimeout(10*time.Second))
		if err != nil {
			r.invalid("BAD well-behaved client: %v", err)
			return res
		}
		if _, _, err := c.Create(ctx, fmt.Sprintf("/chaos/ok-%d", i), []byte("-1"), client.ModeEphemeral); err != nil {
			r.invalid("BAD well-behaved node: %v", err)
			return res
		}
		sessions = append(sessions, c.SessionID())
		wbWG.Go(func() { wb.run(wbCtx, i, c) })
	}
	waitUntil(ctx, 10*time.Second, func() bool { return wb.ops.Load() >= 20 })
	baseline := make([]int, len(ids))
	for i, id := range ids {
		baseline[i] = r.stableGoroutines(ctx, id)
	}
	stats := &badStats{}
	fz := &fuzzer{addrs: addrs, stats: stats, sessions: sessions, maxFrame: 4*wire.DefaultMaxDataBytes/3 + 64<<10 + 4096, stall: 8 * time.Second}
	fctx, stopFuzz := context.WithTimeout(ctx, r.p.BadDuration)
	var fwg sync.WaitGroup
	for w := 0; w < r.p.BadWorkers; w++ {
		s := r.rng.Uint64()
		fwg.Go(func() {
			rng := rand.New(rand.NewPCG(s, 5))
			for fctx.Err() == nil {
				fz.attack(fctx, rng)
			}
		})
	}
	fwg.Wait()
	stopFuzz()
	// Back to the baseline?
	const slack = 15
	after := make([]int, len(ids))
	for i, id := range ids {
		waitUntil(ctx, 30*time.Second, func() bool {
			g, err := r.c.Goroutines(ctx, id)
			after[i] = g
			return err == nil && g <= baseline[i]+slack
		})
	}
	stopWB()
	wbWG.Wait()
	res.Conns, res.Frames, res.Stalls = stats.conns.Load(), stats.frames.Load(), stats.stalls.Load()
	res.Baseline, res.After = baseline, after
	res.WellBehavedOps = wb.ops.Load()
	for i, id := range ids {
		if !r.c.Node(id).Running() {
			res.Died++
			res.Examples = append(res.Examples, fmt.Sprintf("member %d died during the fuzzing", id))
			continue
		}
		if after[i] > baseline[i]+slack {
			res.Leaked++
			res.Examples = append(res.Examples, fmt.Sprintf("member %d: %d goroutines 30s after the fuzzing, %d before", id, after[i], baseline[i]))
		}
	}
	for _, id := range ids {
		ex, _ := r.c.Node(id).Exited()
		select {
		case <-ex:
			res.Died++
			res.Examples = append(res.Examples, fmt.Sprintf("member %d exited during the fuzzing", id))
		default:
		}
	}
	res.Affected = int(wb.errs.Load())
	wb.mu.Lock()
	res.Examples = append(res.Examples, wb.mu.first...)
	wb.mu.Unlock()
	stats.mu.Lock()
	res.Contract = len(stats.mu.contract)
	for i, v := range stats.mu.contract {
		if i < 10 {
			res.Examples = append(res.Examples, "contract: "+v)
		}
	}
	stats.mu.Unlock()
	r.logf("BAD: %d connections, %d frames, %d stalls; goroutines %v -> %v; well-behaved ops %d, errors %d",
		res.Conns, res.Frames, res.Stalls, baseline, after, res.WellBehavedOps, res.Affected)
	return res
}

// stableGoroutines reads a member's goroutine count a few times and keeps
// the largest, so that a momentary dip does not make a strict baseline.
func (r *runner) stableGoroutines(ctx context.Context, id uint64) int {
	best := 0
	for i := 0; i < 3; i++ {
		if g, err := r.c.Goroutines(ctx, id); err == nil {
			best = max(best, g)
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return best
}

// convResult is what CONV saw.
type convResult struct {
	Applied  uint64
	Digests  map[uint64]string
	Err      string // the members did not reach the same index
	Differ   bool
	Problems []string // panics and races in the logs
	// FaultPanics are the panics of processes whose disk failed by
	// injection (how they died), judged by DISK.
	FaultPanics []string
	// Snapshots sent to lagging members and restored by them.
	SnapSent, SnapRestored int
}

// convergence waits until every member has applied the same index (no one
// writes any more) and compares their digests.
func (r *runner) convergence(ctx context.Context) convResult {
	var res convResult
	ok := waitUntil(ctx, 60*time.Second, func() bool {
		res.Digests = map[uint64]string{}
		var applied []uint64
		for _, id := range r.c.IDs() {
			a, d, err := r.c.Digest(ctx, id)
			if err != nil {
				res.Err = err.Error()
				return false
			}
			res.Digests[id] = d
			applied = append(applied, a)
		}
		for _, a := range applied {
			if a != applied[0] {
				res.Err = fmt.Sprintf("applied indexes %v", applied)
				return false
			}
		}
		res.Applied, res.Err = applied[0], ""
		return true
	})
	if ok {
		for _, d := range res.Digests {
			for _, e := range res.Digests {
				if d != e {
					res.Differ = true
				}
			}
		}
	}
	for _, id := range r.c.IDs() {
		faulted, other := r.c.logProblems(id)
		res.Problems = append(res.Problems, other...)
		res.FaultPanics = append(res.FaultPanics, faulted...)
		res.SnapSent += r.c.logCount(id, "snapshot sent")
		res.SnapRestored += r.c.logCount(id, "state restored from a snapshot")
	}
	return res
}
