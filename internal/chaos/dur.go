package chaos

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/coord-dev/coord/client"
)

// The DUR checker: a writer creates numbered persistent nodes, one after
// the other; after every fault (and after every server was killed at
// once) every node whose create was acknowledged must be there.

const (
	durRoot   = "/chaos/dur"
	durBucket = 500 // nodes per parent, so that no listing grows large
)

func durPath(n int) string {
	return fmt.Sprintf("%s/b%04d/d%07d", durRoot, n/durBucket, n)
}

func durParent(b int) string { return fmt.Sprintf("%s/b%04d", durRoot, b) }

// DurLog is the writer's record: which creates were acknowledged.
type DurLog struct {
	mu struct {
		sync.Mutex
		acked   []int // in order
		unknown int
		next    int
	}
}

// Acked returns the numbers acknowledged so far.
func (d *DurLog) Acked() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.mu.acked...)
}

// writer creates nodes until ctx ends.
func (d *DurLog) writer(ctx context.Context, c *client.Client, timeout time.Duration) {
	for ctx.Err() == nil {
		d.mu.Lock()
		n := d.mu.next
		d.mu.next++
		d.mu.Unlock()
		if n%durBucket == 0 {
			// Each bucket's parent first (it may exist from an attempt
			// whose outcome was lost).
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				_, _, err := c.Create(cctx, durParent(n/durBucket), nil, client.ModePersistent)
				cancel()
				if err == nil || isErr(err, client.ErrNodeExists) {
					break
				}
				if c.State() == client.StateExpired {
					_ = c.NewSession(ctx)
				}
			}
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, _, err := c.Create(cctx, durPath(n), []byte(fmt.Sprint(n)), client.ModePersistent)
		cancel()
		d.mu.Lock()
		if err == nil {
			d.mu.acked = append(d.mu.acked, n)
		} else {
			d.mu.unknown++
		}
		d.mu.Unlock()
		if err != nil && c.State() == client.StateExpired && ctx.Err() == nil {
			_ = c.NewSession(ctx)
		}
	}
}

// DurProbe is one check that the acknowledged nodes are all there.
type DurProbe struct {
	After   string // what happened before the probe, e.g. "kill-all #3"
	Checked int    // acknowledged nodes checked
	Missing []int  // acknowledged and absent
	Err     error  // the probe itself could not read (not an anomaly)
}

// Probe reads every bucket with c and compares with the nodes acknowledged
// before it started.
func (d *DurLog) Probe(ctx context.Context, c *client.Client, after string) DurProbe {
	p := DurProbe{After: after}
	acked := d.Acked()
	present := map[int]bool{}
	buckets := map[int]bool{}
	for _, n := range acked {
		buckets[n/durBucket] = true
	}
	for b := range buckets {
		names, _, err := c.Children(ctx, durParent(b))
		if err != nil && !isErr(err, client.ErrNoNode) {
			p.Err = err
			return p
		}
		for _, name := range names {
			var n int
			if _, err := fmt.Sscanf(name, "d%d", &n); err == nil {
				present[n] = true
			}
		}
	}
	return checkDur(acked, present, after)
}

// checkDur lists the acknowledged numbers not present.
func checkDur(acked []int, present map[int]bool, after string) DurProbe {
	p := DurProbe{After: after, Checked: len(acked)}
	for _, n := range acked {
		if !present[n] {
			p.Missing = append(p.Missing, n)
		}
	}
	sort.Ints(p.Missing)
	return p
}
