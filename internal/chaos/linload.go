package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// linRoot is where the LIN workload's keys live.
const linRoot = "/chaos/lin"

// linLoad is the LIN workload: clients doing random single-key operations
// on a few keys. The key set changes every rotate (keys of an epoch are
// never touched again), which bounds the size of each key's history and
// so porcupine's search.
type linLoad struct {
	h       *LinHistory
	keys    int
	rotate  time.Duration
	timeout time.Duration
	start   time.Time
	ops     atomic.Int64
	errs    atomic.Int64 // operations that ended with an unknown outcome
}

// key returns key i of the current epoch.
func (l *linLoad) key(i int) string {
	epoch := int(time.Since(l.start) / l.rotate)
	return fmt.Sprintf("%s/e%04d-k%d", linRoot, epoch, i)
}

// worker runs one client's operations until ctx ends.
func (l *linLoad) worker(ctx context.Context, c *client.Client, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	cid := l.h.NewClient()
	seen := map[string]linState{}
	failures := 0
	for seq := 0; ctx.Err() == nil; seq++ {
		key := l.key(rng.IntN(l.keys))
		in := LinInput{Key: key, Version: -1, Value: fmt.Sprintf("c%d.%d", cid, seq)}
		st, known := seen[key]
		x := rng.IntN(100)
		switch {
		case x < 40:
			in.Op, in.Value = LinGet, ""
		case !known || !st.Exists && x < 80:
			in.Op = LinCreate
		case x < 55:
			in.Op = LinSet
		case x < 68:
			in.Op, in.Version = LinSet, st.Version
		case x < 75:
			in.Op = LinCreate
		case x < 85:
			in.Op, in.Value = LinDelete, ""
			if x%2 == 0 {
				in.Version = st.Version
			}
		case x < 95:
			in.Op, in.Version = LinMultiSet, st.Version
		default:
			in.Op, in.Version = LinRecreate, st.Version
		}
		call := l.h.Now()
		out := l.exec(ctx, c, in)
		ret := l.h.Now()
		l.h.Add(cid, in, call, out, ret)
		l.ops.Add(1)
		if out.Unknown {
			l.errs.Add(1)
			cid = l.h.NewClient()
			delete(seen, key)
			if c.State() == client.StateExpired && ctx.Err() == nil {
				_ = c.NewSession(ctx)
			}
			// Back off as a real client would: a server that fails fast
			// (no leader) must not fill the history with unknown writes,
			// each of which porcupine must place somewhere.
			failures++
			t := time.NewTimer(min(time.Duration(failures)*20*time.Millisecond, 500*time.Millisecond))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		failures = 0
		switch {
		case out.Err == wire.NoNode:
			seen[key] = linState{}
		case out.Err != wire.OK:
		case in.Op == LinGet || in.Op == LinSet || in.Op == LinMultiSet:
			seen[key] = linState{Exists: true, Version: out.Version}
		case in.Op == LinCreate || in.Op == LinRecreate:
			seen[key] = linState{Exists: true}
		case in.Op == LinDelete:
			seen[key] = linState{}
		}
	}
}

// definite are the errors after which a write certainly did not apply, or
// a read certainly saw what it says.
var definite = []struct {
	err  error
	code wire.Code
}{
	{client.ErrNoNode, wire.NoNode},
	{client.ErrNodeExists, wire.NodeExists},
	{client.ErrBadVersion, wire.BadVersion},
	// Refused before being proposed: never applied (PROTOCOL.md's
	// exactly-once promise makes a resend answer the first outcome).
	{client.ErrQuotaExceeded, wire.QuotaExceeded},
}

// outcome maps an operation's error to the model's output.
func outcome(err error) LinOutput {
	if err == nil {
		return LinOutput{}
	}
	for _, d := range definite {
		if errors.Is(err, d.err) {
			return LinOutput{Err: d.code}
		}
	}
	return LinOutput{Unknown: true}
}

func (l *linLoad) exec(ctx context.Context, c *client.Client, in LinInput) LinOutput {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	data := []byte(in.Value)
	switch in.Op {
	case LinGet:
		b, st, err := c.Get(ctx, in.Key)
		out := outcome(err)
		if err == nil {
			out.Value, out.Version = string(b), st.Version
		}
		return out
	case LinSet:
		st, err := c.Set(ctx, in.Key, data, in.Version)
		out := outcome(err)
		if err == nil {
			out.Version = st.Version
		}
		return out
	case LinCreate:
		_, _, err := c.Create(ctx, in.Key, data, client.ModePersistent)
		return outcome(err)
	case LinDelete:
		return outcome(c.Delete(ctx, in.Key, in.Version))
	case LinMultiSet:
		res, err := c.Multi(ctx, client.Ops().Check(in.Key, in.Version).Set(in.Key, data, client.AnyVersion))
		out := outcome(err)
		if err == nil {
			out.Version = res[1].Stat.Version
		}
		return out
	case LinRecreate:
		_, err := c.Multi(ctx, client.Ops().Delete(in.Key, in.Version).Create(in.Key, data, client.ModePersistent))
		return outcome(err)
	}
	panic("unknown op")
}
