package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// Report is the outcome of a run.
type Report struct {
	Profile  Profile
	Figures  []Figure
	Faults   []FaultRecord
	Invalid  []string // why the run as a whole is not valid
	Duration time.Duration
}

// OK reports whether every figure passed.
func (r *Report) OK() bool {
	for _, f := range r.Figures {
		if f.Result != Pass {
			return false
		}
	}
	return len(r.Figures) > 0
}

// Lines returns the FIGURE lines.
func (r *Report) Lines() []string {
	out := make([]string, len(r.Figures))
	for i, f := range r.Figures {
		out[i] = f.String()
	}
	return out
}

func isErr(err, target error) bool { return errors.Is(err, target) }

// runner holds a run's state.
type runner struct {
	t      testing.TB
	p      Profile
	start  time.Time
	c      *Cluster
	rng    *rand.Rand
	logf   func(format string, args ...any)
	report *Report

	clients []*client.Client
	links   []*ClientLink
}

// connect opens a client, retrying until the cluster answers.
func (r *runner) connect(ctx context.Context, addrs []string, opts ...client.Option) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithSessionTimeout(r.p.SessionTimeout), client.WithDialTimeout(time.Second)}, opts...)
	c, err := client.Connect(ctx, addrs, opts...)
	if err != nil {
		return nil, err
	}
	r.clients = append(r.clients, c)
	return c, nil
}

func (r *runner) link() (*ClientLink, error) {
	l, err := NewClientLink(r.c.Addrs())
	if err != nil {
		return nil, err
	}
	r.links = append(r.links, l)
	return l, nil
}

func (r *runner) closeAll() {
	var wg sync.WaitGroup
	for _, c := range r.clients {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
	for _, l := range r.links {
		l.Close()
	}
	r.clients, r.links = nil, nil
}

func (r *runner) since() time.Duration { return time.Since(r.start) }

// Run runs a profile against a new cluster and returns its report. It
// fails t only when the harness itself cannot work (a cluster that does
// not start); anomalies and invalid runs are in the report.
func Run(t testing.TB, p Profile) *Report {
	t.Helper()
	r := &runner{t: t, p: p, start: time.Now(), rng: rand.New(rand.NewPCG(p.Seed, 0)), report: &Report{Profile: p}}
	r.logf = func(format string, args ...any) {
		t.Logf("%8.1fs "+format, append([]any{r.since().Seconds()}, args...)...)
	}
	r.logf("profile %s: %d servers, seed %d, %d faults", p.Name, p.Servers, p.Seed, p.Rounds*len(p.kinds()))
	r.c = StartCluster(t, p.Servers, p.Seed, p.serverArgs()...)
	defer r.closeAll()
	r.run()
	r.report.Duration = r.since()
	return r.report
}

func (r *runner) invalid(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("INVALID: %s", msg)
	r.report.Invalid = append(r.report.Invalid, msg)
}

func (r *runner) run() {
	p := r.p
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := r.c.Addrs()
	admin, err := r.connect(ctx, addrs, client.WithSessionTimeout(30*time.Second))
	if err != nil {
		r.invalid("admin client: %v", err)
		return
	}
	for _, path := range []string{"/chaos", linRoot, durRoot, watchRoot, watchClock, lockRoot, lockData, sessRoot, "/chaos/fuzz"} {
		if _, _, err := admin.Create(ctx, path, nil, client.ModePersistent); err != nil && !isErr(err, client.ErrNodeExists) {
			r.invalid("create %s: %v", path, err)
			return
		}
	}

	// The workloads.
	seed := func() uint64 { return r.rng.Uint64() }
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	writerCtx, stopWriter := context.WithCancel(loadCtx)
	defer stopWriter()

	lin := &linLoad{h: NewLinHistory(), keys: p.LinKeys, rotate: p.LinRotate, timeout: p.LinOpTimeout, start: time.Now()}
	for i := 0; i < p.LinClients; i++ {
		c, err := r.connect(ctx, addrs)
		if err != nil {
			r.invalid("LIN client: %v", err)
			return
		}
		s := seed()
		wg.Go(func() { lin.worker(loadCtx, c, s) })
	}
	dur := &DurLog{}
	{
		c, err := r.connect(ctx, addrs, client.WithSessionTimeout(10*time.Second))
		if err != nil {
			r.invalid("DUR client: %v", err)
			return
		}
		wg.Go(func() { dur.writer(loadCtx, c, 10*time.Second) })
	}
	wl := newWatchLoad(r.start, p.WatchPaths)
	for i := 0; i < p.Watchers; i++ {
		sc, err := r.connect(ctx, addrs, client.WithSessionTimeout(4*time.Second))
		if err != nil {
			r.invalid("WATCH client: %v", err)
			return
		}
		oc := sc
		if !p.WatchMixed {
			if oc, err = r.connect(ctx, addrs, client.WithSessionTimeout(4*time.Second)); err != nil {
				r.invalid("WATCH client: %v", err)
				return
			}
		}
		ready := make(chan struct{})
		wg.Go(func() { wl.watcher(loadCtx, i, sc, oc, ready) })
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			r.invalid("watcher %d did not set its watches", i)
			return
		}
	}
	writerDone := make(chan struct{})
	{
		c, err := r.connect(ctx, addrs, client.WithSessionTimeout(10*time.Second))
		if err != nil {
			r.invalid("WATCH writer: %v", err)
			return
		}
		s := seed()
		wg.Go(func() { defer close(writerDone); wl.writer(writerCtx, c, s) })
	}
	var lockWG sync.WaitGroup
	lockDone := make(chan struct{})
	lock := &lockLoad{start: time.Now(), reg: NewFencedRegister(), pause: 3*p.SessionTimeout + 2*time.Second,
		pauseEvery: p.LockPauseEvery, timeout: 20 * time.Second, retryUnlock: !p.StrictLock}
	for i := 0; i < p.LockClients; i++ {
		l, err := r.link()
		if err != nil {
			r.invalid("LOCK link: %v", err)
			return
		}
		c, err := r.connect(ctx, l.Addrs())
		if err != nil {
			r.invalid("LOCK client: %v", err)
			return
		}
		s := seed()
		lockWG.Go(func() { lock.contender(loadCtx, i, c, l, s) })
	}
	wg.Go(func() { lockWG.Wait(); close(lockDone) })
	sess := &sessLoad{start: r.start, timeout: p.SessionTimeout}
	var owners []*sessOwner
	for i := 0; i < p.SessOwners; i++ {
		l, err := r.link()
		if err != nil {
			r.invalid("SESS link: %v", err)
			return
		}
		c, err := r.connect(ctx, l.Addrs())
		if err != nil {
			r.invalid("SESS client: %v", err)
			return
		}
		octx, ocancel := context.WithCancel(ctx)
		defer ocancel()
		o := &sessOwner{id: i, c: c, link: l, cancel: ocancel, done: make(chan struct{})}
		owners = append(owners, o)
		wg.Go(func() { sess.own(octx, o) })
	}

	// Enough load before the first fault.
	warm := waitUntil(ctx, 90*time.Second, func() bool {
		return lin.ops.Load() >= int64(p.WarmupOps) && lock.Acquisitions() >= 1 && wl.Changes() >= 10 && len(dur.Acked()) >= 10
	})
	r.logf("warm-up: %d LIN ops, %d locks, %d watched changes, %d durable writes", lin.ops.Load(), lock.Acquisitions(), wl.Changes(), len(dur.Acked()))
	if !warm {
		r.invalid("the load before the first fault was too low: %d LIN ops (want %d), %d locks, %d watched changes, %d durable writes",
			lin.ops.Load(), p.WarmupOps, lock.Acquisitions(), wl.Changes(), len(dur.Acked()))
	}

	// The nemesis.
	nem := &nemesis{c: r.c, rng: rand.New(rand.NewPCG(p.Seed, 7)), start: r.start, hold: p.Hold, pause: p.Pause,
		timeout: p.SessionTimeout, logf: r.logf, strictDisk: p.StrictDisk, strictHang: p.StrictHang}
	var probes []DurProbe
	for i, kind := range schedule(nem.rng, p.kinds(), p.Rounds) {
		opsBefore := lin.ops.Load()
		f := nem.run(ctx, kind)
		r.report.Faults = append(r.report.Faults, f)
		pr := dur.Probe(ctxTimeout(ctx, 30*time.Second), admin, fmt.Sprintf("%s #%d", kind, i+1))
		probes = append(probes, pr)
		r.logf("fault %d %s targets %v fired=%v %s%s%s%s; %d LIN ops meanwhile; DUR probe %d acked, %d missing%s",
			i+1, kind, f.Targets, f.Fired, f.Evidence, prefixed(" ANOMALY: ", f.Anomaly), prefixed(" KNOWN ANOMALY: ", strings.Join(f.Known, "; ")), prefixed(" HARNESS: ", f.Harness),
			lin.ops.Load()-opsBefore, pr.Checked, len(pr.Missing), prefixed(" probe error: ", errString(pr.Err)))
		nem.wait(ctx, p.Quiet)
	}

	// After the last fault: everything healed, a write must succeed.
	if _, err := r.c.WaitHealthy(ctxTimeout(ctx, 60*time.Second)); err != nil {
		r.invalid("the cluster is not healthy after the last fault: %v", err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	_, _, err = admin.Create(fctx, "/chaos/final", []byte("done"), client.ModePersistent)
	fcancel()
	if err != nil {
		r.invalid("the final write after healing failed: %v", err)
	}

	// The faults may have kept every pause from losing the lock (a pause
	// that overlapped a lost quorum outlives no session): pause once more,
	// in the calm, so that a valid run always checks a lost lock.
	if p.LockPauseEvery > 0 && lock.pausesLost() == 0 {
		r.logf("LOCK: no pause lost the lock during the faults; one more pause with the cluster healthy")
		lock.force.Store(true)
		if !waitUntil(ctx, 2*lock.pause+time.Minute, func() bool { return lock.pausesLost() > 0 }) {
			r.logf("LOCK: the pause in the calm did not lose the lock either")
		}
	}

	// Stop the load: the watch writer first, so that the watchers can
	// catch up with its last change.
	stopWriter()
	<-writerDone
	if !waitUntil(ctx, 30*time.Second, func() bool { return wl.caughtUp(p.Watchers) }) {
		r.logf("watchers did not catch up with the last change within 30s")
	}
	stopLoad()
	// SESS owners go on: they stop in the SESS phase.
	loadDone := make(chan struct{})
	go func() {
		// Everything but the owners; the owners' goroutines end in sessPhase.
		wg.Wait()
		close(loadDone)
	}()
	final := dur.Probe(ctxTimeout(ctx, 30*time.Second), admin, "the end of the run")
	probes = append(probes, final)
	<-lockDone
	lockFinal := lock.finalLock(ctx, admin)

	sessRes := r.sessPhase(ctx, sess, owners)
	<-loadDone
	badRes := r.badPhase(ctx)
	conv := r.convergence(ctx)

	r.figures(lin, dur, probes, wl, lock, lockFinal, sessRes, badRes, conv, nem)
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
