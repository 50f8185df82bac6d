package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coord-dev/coord/client"
)

// FaultKind is one kind of fault the nemesis injects.
type FaultKind string

// The fault kinds.
const (
	KillLeader        FaultKind = "kill-leader"        // kill -9 the leader
	KillMinority      FaultKind = "kill-minority"      // kill -9 up to a minority of random servers
	KillAll           FaultKind = "kill-all"           // kill -9 every server at once
	PauseServer       FaultKind = "pause"              // SIGSTOP the leader or a random server
	PartitionLeader   FaultKind = "partition-leader"   // isolate the leader (blackhole both ways)
	PartitionMajority FaultKind = "partition-majority" // cut a random minority from the majority
	PartitionOneWay   FaultKind = "partition-oneway"   // the leader's messages to the others vanish
	LinkDrop          FaultKind = "link-drop"          // every link drops 50% of raft frames
	LinkDelay         FaultKind = "link-delay"         // every link delays frames 75±50 ms
	DiskFsync         FaultKind = "disk-fsync"         // an fsync fails: the server must exit non-zero at once
	DiskFull          FaultKind = "disk-enospc"        // the disk is full: writes answer QuotaExceeded
)

// AllKinds lists every fault kind.
var AllKinds = []FaultKind{KillLeader, KillMinority, KillAll, PauseServer, PartitionLeader, PartitionMajority,
	PartitionOneWay, LinkDrop, LinkDelay, DiskFsync, DiskFull}

// FaultRecord is one fault: what, on whom, when, and whether it fired.
type FaultRecord struct {
	Kind      FaultKind
	Targets   []uint64
	Start     time.Duration
	Healed    time.Duration
	Recovered time.Duration // the cluster was healthy again (0: never)
	Fired     bool
	Evidence  string
	// Anomaly is set when the fault showed a server misbehaving: an fsync
	// error it survived, a full disk without QuotaExceeded, a cluster
	// that did not recover.
	Anomaly string
	// Known lists anomalies of the fault that are open and tolerated (see
	// Profile.StrictHang): reported, not failed.
	Known []string
	// Harness is set when the harness itself failed to inject the fault.
	Harness string
}

// DiskStats count the disk faults' outcomes.
type DiskStats struct {
	Fsync, FsyncExitedNonZero, FsyncCleanRestart int
	Full, FullQuota, FullReads, FullResumed      int
	FullCrashed                                  int           // exited non-zero on a full disk (fail-stop)
	Hung                                         int           // stopped serving without exiting (any fault)
	FsyncExit                                    time.Duration // slowest exit after an fsync error
}

// nemesis injects faults into a cluster.
type nemesis struct {
	c       *Cluster
	rng     *rand.Rand
	start   time.Time
	hold    time.Duration
	pause   time.Duration
	timeout time.Duration // session timeout of the probe clients
	logf    func(format string, args ...any)
	disk    DiskStats
	probes  int
	// strictDisk makes a server that exits on a full disk, instead of
	// answering QuotaExceeded and serving reads, an anomaly.
	strictDisk bool
	// strictHang makes a server that stops serving without exiting an
	// anomaly; else it is a known one.
	strictHang bool
}

func (n *nemesis) since() time.Duration { return time.Since(n.start) }

// schedule returns every kind rounds times, in a seeded random order, each
// round a new shuffle.
func schedule(rng *rand.Rand, kinds []FaultKind, rounds int) []FaultKind {
	var out []FaultKind
	for r := 0; r < rounds; r++ {
		k := slices.Clone(kinds)
		rng.Shuffle(len(k), func(i, j int) { k[i], k[j] = k[j], k[i] })
		out = append(out, k...)
	}
	return out
}

// run injects one fault, holds it, heals it and waits for the cluster to
// recover.
func (n *nemesis) run(ctx context.Context, kind FaultKind) FaultRecord {
	f := FaultRecord{Kind: kind, Start: n.since()}
	leader, err := n.c.WaitHealthy(ctxTimeout(ctx, 60*time.Second))
	if err != nil {
		// Whatever is left of the last fault (a server that hangs, say):
		// heal once more and try again.
		n.healAll(ctx, &f)
		if leader, err = n.c.WaitHealthy(ctxTimeout(ctx, 60*time.Second)); err != nil {
			f.Harness = fmt.Sprintf("cluster not healthy before the fault: %v", err)
			return f
		}
	}
	ids := n.c.IDs()
	others := func(x ...uint64) []uint64 {
		var o []uint64
		for _, id := range ids {
			if !slices.Contains(x, id) {
				o = append(o, id)
			}
		}
		return o
	}
	switch kind {
	case KillLeader:
		f.Targets = []uint64{leader}
		f.Fired = n.kill(f.Targets)
		n.wait(ctx, n.hold)
	case KillMinority:
		k := 1 + n.rng.IntN((len(ids)-1)/2)
		f.Targets = n.pick(ids, k)
		f.Fired = n.kill(f.Targets)
		n.wait(ctx, n.hold)
	case KillAll:
		f.Targets = ids
		f.Fired = n.kill(ids)
		n.wait(ctx, n.hold/2)
	case PauseServer:
		target := leader
		if n.rng.IntN(2) == 0 {
			target = ids[n.rng.IntN(len(ids))]
		}
		f.Targets = []uint64{target}
		nd := n.c.Node(target)
		pid := nd.Pid()
		nd.Signal(syscall.SIGSTOP)
		f.Fired = waitUntil(ctx, 2*time.Second, func() bool { return processState(pid) == 'T' })
		f.Evidence = fmt.Sprintf("pid %d stopped for %v", pid, n.pause)
		n.wait(ctx, n.pause)
		nd.Signal(syscall.SIGCONT)
	case PartitionLeader, PartitionMajority, PartitionOneWay:
		var links []Link
		fault := LinkFault{Blackhole: true}
		switch kind {
		case PartitionLeader:
			f.Targets = []uint64{leader}
			links = append(Links(f.Targets, others(leader)), Links(others(leader), f.Targets)...)
		case PartitionMajority:
			f.Targets = n.pick(ids, 1+n.rng.IntN((len(ids)-1)/2))
			links = append(Links(f.Targets, others(f.Targets...)), Links(others(f.Targets...), f.Targets)...)
			fault = LinkFault{Cut: true}
		case PartitionOneWay:
			f.Targets = []uint64{leader}
			links = Links(f.Targets, others(leader))
		}
		before := n.c.Net.Total(links...)
		n.c.Net.Set(fault, links...)
		n.wait(ctx, n.hold)
		after := n.c.Net.Total(links...)
		n.c.Net.Set(LinkFault{}, links...)
		f.Fired = after.Blackholed > before.Blackholed || after.Refused > before.Refused || fault.Cut && before.Streams > 0
		f.Evidence = fmt.Sprintf("links %v: %d frames blackholed, %d streams refused", links, after.Blackholed-before.Blackholed, after.Refused-before.Refused)
		if nl := n.c.Leader(ctx); nl != 0 {
			f.Evidence += fmt.Sprintf(", leader during the fault %d (was %d)", nl, leader)
		}
	case LinkDrop, LinkDelay:
		links := Links(ids, ids)
		fault := LinkFault{Drop: 0.5}
		if kind == LinkDelay {
			fault = LinkFault{Delay: 75 * time.Millisecond, Jitter: 50 * time.Millisecond}
		}
		before := n.c.Net.Total(links...)
		n.c.Net.Set(fault, links...)
		n.wait(ctx, n.hold)
		n.c.Net.Set(LinkFault{}, links...)
		after := n.c.Net.Total(links...)
		f.Targets = ids
		f.Fired = after.Dropped > before.Dropped || after.Delayed > before.Delayed
		f.Evidence = fmt.Sprintf("%d frames dropped, %d delayed", after.Dropped-before.Dropped, after.Delayed-before.Delayed)
	case DiskFsync:
		target := ids[n.rng.IntN(len(ids))]
		f.Targets = []uint64{target}
		n.fsync(ctx, &f, target)
	case DiskFull:
		target := ids[n.rng.IntN(len(ids))]
		f.Targets = []uint64{target}
		n.full(ctx, &f, target)
	default:
		f.Harness = "unknown fault kind"
	}
	f.Healed = n.since()
	n.healAll(ctx, &f)
	if _, err := n.c.WaitHealthy(ctxTimeout(ctx, 60*time.Second)); err != nil {
		if ctx.Err() == nil {
			f.Anomaly = strings.TrimSpace(f.Anomaly + fmt.Sprintf(" the cluster did not recover within 60s of healing: %v", err))
		}
	} else {
		f.Recovered = n.since()
	}
	return f
}

// wait is the nemesis holding a fault: a planned duration, not a
// synchronisation.
func (n *nemesis) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (n *nemesis) pick(ids []uint64, k int) []uint64 {
	p := slices.Clone(ids)
	n.rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p[:k]
}

// kill sends SIGKILL to the targets at once; it reports whether each was
// running.
func (n *nemesis) kill(targets []uint64) bool {
	fired := true
	var wg sync.WaitGroup
	for _, id := range targets {
		nd := n.c.Node(id)
		if nd.Pid() == 0 {
			fired = false
			continue
		}
		wg.Go(nd.Kill)
	}
	wg.Wait()
	return fired
}

// restart starts a member that is not running (or whose process ended by
// itself) again.
func (n *nemesis) restart(id uint64) error {
	nd := n.c.Node(id)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		nd.Kill() // reaps a process that exited by itself
		if err = n.c.Start(id); err == nil {
			return nil
		}
		n.logf("restarting member %d: %v", id, err)
	}
	return err
}

// healAll removes every fault: links, pauses, disk faults, dead servers,
// and servers that stopped serving without exiting (recorded as an
// anomaly: their goroutine dump goes to their log).
func (n *nemesis) healAll(ctx context.Context, f *FaultRecord) {
	n.c.Net.HealAll()
	n.reapHung(ctx, f)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, id := range n.c.IDs() {
		nd := n.c.Node(id)
		nd.Signal(syscall.SIGCONT)
		ex, _ := nd.Exited()
		dead := !nd.Running()
		if ex != nil {
			select {
			case <-ex:
				dead = true
			default:
			}
		}
		if !dead {
			continue
		}
		wg.Go(func() {
			if err := n.restart(id); err != nil {
				mu.Lock()
				f.Anomaly = strings.TrimSpace(f.Anomaly + fmt.Sprintf(" member %d does not restart: %v", id, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// reapHung finds servers whose process runs but which stopped: they
// logged a fatal error ("fatal error: stopping") since they were last
// started and did not exit within 10s, or they answer nothing, not even
// /healthz, for 15s. It records them, makes the Go runtime dump their
// goroutines into their logs (SIGQUIT) and kills them; healAll restarts
// them.
func (n *nemesis) reapHung(ctx context.Context, f *FaultRecord) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, id := range n.c.IDs() {
		nd := n.c.Node(id)
		nd.Signal(syscall.SIGCONT)
		if nd.Pid() == 0 {
			continue
		}
		wg.Go(func() {
			exited, _ := nd.Exited()
			gone := func() bool {
				select {
				case <-exited:
					return true // dead, not hung: healAll restarts it
				default:
					return false
				}
			}
			var why string
			if n.c.loggedSinceStart(id, "fatal error: stopping") {
				if waitUntil(ctx, 10*time.Second, gone) {
					return
				}
				why = "logged a fatal error and did not exit within 10s"
			} else {
				alive := waitUntil(ctx, 15*time.Second, func() bool {
					if gone() {
						return true
					}
					_, code, err := n.c.do(ctx, "GET", nd.ClientAddr(), "/healthz", nil)
					return err == nil && code == 200
				})
				if alive {
					return
				}
				why = "answered nothing for 15s"
			}
			if ctx.Err() != nil {
				return
			}
			nd.Signal(syscall.SIGQUIT)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
			}
			nd.Kill()
			msg := fmt.Sprintf("member %d stopped serving but its process did not exit: it %s (its goroutine dump is in %s; TestRegression_FatalStorageErrorHangsShutdown)", id, why, nd.LogPath())
			mu.Lock()
			defer mu.Unlock()
			n.disk.Hung++
			if n.strictHang {
				f.Anomaly = strings.TrimSpace(f.Anomaly + " " + msg)
			} else {
				f.Known = append(f.Known, msg)
			}
		})
	}
	wg.Wait()
}

// fsync makes target's next fsync fail: it must exit non-zero at once and
// then restart cleanly.
func (n *nemesis) fsync(ctx context.Context, f *FaultRecord, target uint64) {
	n.disk.Fsync++
	nd := n.c.Node(target)
	exited, exitErr := nd.Exited()
	injected := time.Now()
	if err := n.c.DiskFault(ctx, target, "fsync"); err != nil {
		// The server may die before it answers.
		n.logf("disk fault fsync on %d: %v", target, err)
	}
	const deadline = 10 * time.Second
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		// Hung after its fatal error (healAll reaps it and says so), or
		// it never noticed the fault.
		f.Fired = true
		if !n.c.loggedSinceStart(target, "fatal error: stopping") {
			f.Anomaly = fmt.Sprintf("member %d still runs %v after an injected fsync error, without a fatal error", target, deadline)
		}
		f.Evidence = fmt.Sprintf("member %d did not exit within %v of the fault", target, deadline)
		return
	case <-ctx.Done():
		return
	}
	took := time.Since(injected)
	n.disk.FsyncExit = max(n.disk.FsyncExit, took)
	f.Fired = true
	err := exitErr()
	f.Evidence = fmt.Sprintf("member %d exited %v after the fault: %v", target, took.Round(time.Millisecond), err)
	if err == nil {
		f.Anomaly = fmt.Sprintf("member %d exited with status 0 after an fsync error", target)
	} else {
		n.disk.FsyncExitedNonZero++
	}
	if err := n.restart(target); err != nil {
		f.Anomaly = strings.TrimSpace(f.Anomaly + fmt.Sprintf(" member %d did not restart cleanly after the fsync error: %v", target, err))
		return
	}
	n.disk.FsyncCleanRestart++
}

// full fills target's disk: writes through it must answer QuotaExceeded,
// local reads must work and linearizable ones work or answer
// QuotaExceeded, it must not crash, and writes resume once space is back.
func (n *nemesis) full(ctx context.Context, f *FaultRecord, target uint64) {
	n.disk.Full++
	nd := n.c.Node(target)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	pc, err := client.Connect(cctx, []string{nd.ClientAddr()}, client.WithSessionTimeout(10*time.Second), client.WithDialTimeout(2*time.Second))
	cancel()
	if err != nil {
		f.Harness = fmt.Sprintf("probe client: %v", err)
		return
	}
	defer pc.Close()
	exited, exitErr := nd.Exited()
	if err := n.c.DiskFault(ctx, target, "enospc"); err != nil {
		f.Harness = fmt.Sprintf("disk fault enospc on %d: %v", target, err)
		return
	}
	n.probes++
	p := fmt.Sprintf("/chaos/enospc-%d", n.probes)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, _, werr := pc.Create(wctx, p, []byte("x"), client.ModePersistent)
	cancel()
	// A local read is served from its state; a linearizable one needs it
	// to catch up, which it cannot: it must then say so (QuotaExceeded),
	// not hang.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, _, lerr := pc.Get(rctx, "/chaos", client.Local())
	cancel()
	rctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	_, _, rerr := pc.Get(rctx, "/chaos")
	cancel()
	if errors.Is(rerr, client.ErrQuotaExceeded) {
		rerr = nil
	}
	n.wait(ctx, n.hold)
	var notes []string
	crashed := false
	select {
	case <-exited:
		crashed = true
		if err := exitErr(); err == nil {
			notes = append(notes, "it exited with status 0")
		} else if n.strictDisk {
			notes = append(notes, fmt.Sprintf("it exited: %v", err))
		}
	default:
		// Stopping after a fatal error, maybe hung (healAll sees to it).
		if n.c.loggedSinceStart(target, "fatal error: stopping") {
			crashed = true
			if n.strictDisk {
				notes = append(notes, "it stopped on a fatal error")
			}
		}
	}
	if crashed {
		n.disk.FullCrashed++
		f.Fired = true
	}
	switch {
	case errors.Is(werr, client.ErrQuotaExceeded):
		f.Fired = true
		n.disk.FullQuota++
	case werr == nil:
		notes = append(notes, "a write through it succeeded")
	case crashed && !n.strictDisk:
		// It stopped (fail-stop) before answering: tolerated, see
		// TestRegression_FullDiskFollowerStopsServing.
	default:
		notes = append(notes, fmt.Sprintf("a write through it failed with %v instead of QuotaExceeded", werr))
	}
	switch {
	case lerr == nil && rerr == nil:
		n.disk.FullReads++
	case crashed && !n.strictDisk:
	default:
		notes = append(notes, fmt.Sprintf("reads through it failed: local %v, linearizable %v", lerr, rerr))
	}
	if !crashed {
		if err := n.c.DiskFault(ctx, target, "none"); err != nil {
			// It may have stopped without exiting: healAll finds out.
			notes = append(notes, fmt.Sprintf("clearing the fault: %v", err))
		}
		// Writes resume by themselves.
		ok := waitUntil(ctx, 20*time.Second, func() bool {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, _, err := pc.Create(wctx, p, []byte("y"), client.ModePersistent)
			return err == nil || errors.Is(err, client.ErrNodeExists)
		})
		select {
		case <-exited:
			// It crashed once space was back (an error pebble latched
			// while the disk was full): fail-stop, tolerated unless strict.
			n.disk.FullCrashed++
			if n.strictDisk {
				notes = append(notes, fmt.Sprintf("it exited after the disk was freed: %v", exitErr()))
			}
		default:
			if ok {
				n.disk.FullResumed++
			} else {
				notes = append(notes, "writes did not resume within 20s of freeing the disk")
			}
		}
	}
	f.Evidence = fmt.Sprintf("member %d: write -> %v, local read -> %v, linearizable read -> %v (QuotaExceeded counts as served)", target, werr, lerr, rerr)
	if len(notes) > 0 {
		f.Anomaly = fmt.Sprintf("member %d with a full disk: %s", target, strings.Join(notes, "; "))
	}
}

// processState returns the state letter of a process (R, S, T, Z...), or 0.
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// waitUntil polls cond until it holds (true) or timeout passes (false).
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
	return true
}

// ctxTimeout returns a context ending after d (or with ctx); its cancel
// runs when ctx ends, which bounds its life.
func ctxTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}
