package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// figures judges every checker and fills the report.
func (r *runner) figures(lin *linLoad, dur *DurLog, probes []DurProbe, wl *watchLoad, lock *lockLoad, lockFinal error,
	sessH SessHistory, bad BadResult, conv convResult, nem *nemesis) {
	rep := r.report
	faults := len(rep.Faults)

	// NEMESIS: every fault fired and the cluster recovered from each.
	perKind := map[FaultKind]int{}
	fired, unrecovered := 0, 0
	for _, f := range rep.Faults {
		perKind[f.Kind]++
		if f.Fired {
			fired++
		}
		if f.Recovered == 0 {
			unrecovered++
		}
	}
	nemAnom, runInvalid := judgeNemesis(rep.Faults, rep.Invalid)
	nf := &Figure{ID: "NEMESIS"}
	nf.Add("servers", r.p.Servers).Add("faults", faults).Add("fired", fired).Add("unrecovered", unrecovered)
	for _, k := range r.p.kinds() {
		nf.Add(string(k), perKind[k])
	}
	nf.Add("seconds", int(r.since().Seconds()))
	nf.Judge(nemAnom, runInvalid)

	// LIN.
	lr := CheckLin(lin.h.Ops(), r.p.CheckTimeout, r.p.OutDir)
	lf := &Figure{ID: "LIN"}
	lf.Add("ops", lr.Ops).Add("unknown", lr.Unknown).Add("keys", lr.Keys).Add("illegal", lr.Illegal).Add("timedout", lr.TimedOut).Add("faults", faults)
	var linAnom, linInvalid []string
	if lr.Illegal > 0 {
		linAnom = append(linAnom, lr.Examples...)
		for _, v := range lr.Visualizations {
			linAnom = append(linAnom, "visualization: "+v)
		}
	}
	if lr.TimedOut > 0 {
		linInvalid = append(linInvalid, fmt.Sprintf("porcupine gave up on %d keys", lr.TimedOut))
	}
	if lr.Ops < r.p.MinOps {
		linInvalid = append(linInvalid, fmt.Sprintf("%d operations checked, fewer than %d", lr.Ops, r.p.MinOps))
	}
	lf.Judge(linAnom, append(linInvalid, runInvalid...))

	// DUR.
	df := &Figure{ID: "DUR"}
	missing := map[int]bool{}
	var durAnom, durInvalid []string
	probeErrs := 0
	for _, pr := range probes {
		if pr.Err != nil {
			probeErrs++
			continue
		}
		for _, m := range pr.Missing {
			if !missing[m] {
				missing[m] = true
				durAnom = append(durAnom, fmt.Sprintf("acknowledged create %s missing after %s", durPath(m), pr.After))
			}
		}
	}
	if probeErrs > len(probes)/2 {
		durInvalid = append(durInvalid, fmt.Sprintf("%d of %d probes could not read", probeErrs, len(probes)))
	}
	if probes[len(probes)-1].Err != nil {
		durInvalid = append(durInvalid, "the final probe could not read: "+probes[len(probes)-1].Err.Error())
	}
	df.Add("acked", len(dur.Acked())).Add("probes", len(probes)-probeErrs).Add("missing", len(missing)).Add("kill_all", perKind[KillAll]).Add("faults", faults)
	df.Judge(durAnom, append(durInvalid, runInvalid...))

	// CONV.
	cf := &Figure{ID: "CONV"}
	var convAnom, convInvalid []string
	if conv.Err != "" {
		convInvalid = append(convInvalid, "the members did not reach the same applied index: "+conv.Err)
	}
	if conv.Differ {
		convAnom = append(convAnom, fmt.Sprintf("members applied index %d with different states: %v", conv.Applied, conv.Digests))
	}
	cf.Add("servers", len(conv.Digests)).Add("applied", conv.Applied).Add("digests_equal", conv.Err == "" && !conv.Differ).
		Add("snapshots_sent", conv.SnapSent).Add("snapshots_restored", conv.SnapRestored)
	cf.Judge(convAnom, append(convInvalid, runInvalid...))

	// LOCK.
	lk := CheckLock(lock.History())
	kf := &Figure{ID: "LOCK"}
	kf.Add("acquisitions", lk.Acquisitions).Add("guarded", lk.Guarded).Add("register_writes", lk.RegWrites).
		Add("holder_pauses", lk.Pauses).Add("pauses_lost_lock", lk.PausesLost).Add("stale_attempts", lk.StaleAttempts).Add("stale_rejected", lk.StaleRejected).
		Add("stale_accepted", lk.StaleAccepted).Add("dup_tokens", lk.DupTokens).Add("token_order", lk.TokenOrder).Add("overlaps", lk.Overlaps)
	var lockInvalid []string
	if lk.Acquisitions < 10 {
		lockInvalid = append(lockInvalid, fmt.Sprintf("only %d acquisitions", lk.Acquisitions))
	}
	if r.p.LockPauseEvery > 0 && lk.PausesLost == 0 {
		lockInvalid = append(lockInvalid, fmt.Sprintf("no holder paused past its session timeout and lost the lock (%d pauses)", lk.Pauses))
	}
	kf.Add("unlock_failures", lock.unlockFails.Load()).Add("final_lock", lockFinal == nil)
	var lockAnom []string
	if lk.Anomalies() > 0 {
		lockAnom = lk.Examples
	}
	if lockFinal != nil {
		lockAnom = append(lockAnom, lockFinal.Error())
	}
	kf.Judge(lockAnom, append(lockInvalid, runInvalid...))

	// WATCH.
	wh, surprises := wl.History()
	wr := CheckWatch(wh)
	wf := &Figure{ID: "WATCH"}
	wf.Add("changes", wr.Changes).Add("events", wr.Events).Add("watchers", r.p.Watchers).Add("moves", wl.Moves()).
		Add("arms", wr.Arms).Add("fired", wr.Fired).Add("resyncs", wr.Resyncs).Add("missed", wr.Missed+wr.ArmsMissed).
		Add("duplicate", wr.Duplicate).Add("reordered", wr.Reordered).Add("phantom", wr.Phantom+wr.Stale+wr.WrongFirst)
	var watchAnom, watchInvalid []string
	if wr.Anomalies() > 0 {
		watchAnom = append(watchAnom, wr.Examples...)
	}
	for _, s := range surprises {
		watchAnom = append(watchAnom, "the watch writer's own change was lost or duplicated: "+s)
	}
	if wh.Unresolved {
		watchInvalid = append(watchInvalid, "a change's outcome could not be learnt")
	}
	if wr.Changes < 50 {
		watchInvalid = append(watchInvalid, fmt.Sprintf("only %d changes", wr.Changes))
	}
	if wl.Moves() == 0 {
		watchInvalid = append(watchInvalid, "no watcher moved to another server")
	}
	wf.Judge(watchAnom, append(watchInvalid, runInvalid...))

	// SESS.
	sr := CheckSess(sessH, time.Second)
	sf := &Figure{ID: "SESS"}
	sf.Add("reads", sr.Reads).Add("expirations", sr.Expirations).Add("early_deletions", sr.EarlyDeletions).
		Add("deaths", sr.Deaths).Add("late", sr.Late).Add("max_gone_ms", sr.MaxGone.Milliseconds()).
		Add("timeout_ms", r.p.SessionTimeout.Milliseconds()).Add("controls_lost", sr.ControlLost)
	var sessAnom, sessInvalid []string
	if sr.Anomalies() > 0 {
		sessAnom = sr.Examples
	}
	if sr.Deaths == 0 {
		sessInvalid = append(sessInvalid, "no owner death was timed")
	}
	sf.Judge(sessAnom, append(sessInvalid, runInvalid...))

	// BAD (with the logs of the whole run: no panic, no data race).
	bad.Panics = len(conv.Problems)
	bf := &Figure{ID: "BAD"}
	bf.Add("conns", bad.Conns).Add("frames", bad.Frames).Add("stalls", bad.Stalls).Add("panics", bad.Panics).
		Add("died", bad.Died).Add("leaked", bad.Leaked).Add("affected", bad.Affected).Add("contract", bad.Contract).
		Add("goroutines", fmt.Sprintf("%v->%v", joinInts(bad.Baseline), joinInts(bad.After)))
	var badAnom, badInvalid []string
	if bad.Anomalies() > 0 {
		badAnom = append(append(badAnom, conv.Problems...), bad.Examples...)
	}
	if bad.Conns < 50 || bad.WellBehavedOps < 20 {
		badInvalid = append(badInvalid, fmt.Sprintf("%d fuzz connections, %d well-behaved operations", bad.Conns, bad.WellBehavedOps))
	}
	bf.Judge(badAnom, badInvalid)

	// DISK.
	ds := nem.disk
	kf2 := &Figure{ID: "DISK"}
	kf2.Add("fsync", ds.Fsync).Add("exited_nonzero", ds.FsyncExitedNonZero).Add("clean_restarts", ds.FsyncCleanRestart).
		Add("max_exit_ms", ds.FsyncExit.Milliseconds()).Add("enospc", ds.Full).Add("quota_exceeded", ds.FullQuota).
		Add("reads_ok", ds.FullReads).Add("crashed", ds.FullCrashed).Add("resumed", ds.FullResumed).Add("hung", ds.Hung).
		Add("panicked", panicked(conv.FaultPanics))
	var diskAnom []string
	known := 0
	for _, f := range rep.Faults {
		if f.Anomaly != "" && (f.Kind == DiskFsync || f.Kind == DiskFull) {
			diskAnom = append(diskAnom, fmt.Sprintf("%s on %v: %s", f.Kind, f.Targets, f.Anomaly))
		}
		known += len(f.Known)
	}
	kf2.Add("known", known)
	kf2.Judge(diskAnom, runInvalid)

	rep.Figures = []Figure{*lf, *df, *cf, *kf, *wf, *sf, *bf, *kf2, *nf}
}

// judgeNemesis returns the anomalies the faults showed (except the disk
// faults', judged by DISK) and every reason the run is not valid: the
// run's own, and each fault that never fired.
func judgeNemesis(faults []FaultRecord, runInvalid []string) (anomalies, invalid []string) {
	invalid = append(invalid, runInvalid...)
	for _, f := range faults {
		if !f.Fired {
			invalid = append(invalid, fmt.Sprintf("%s on %v never fired: %s%s", f.Kind, f.Targets, f.Evidence, prefixed(" ", f.Harness)))
		}
		if f.Anomaly != "" && f.Kind != DiskFsync && f.Kind != DiskFull {
			anomalies = append(anomalies, fmt.Sprintf("%s on %v: %s", f.Kind, f.Targets, f.Anomaly))
		}
	}
	return anomalies, invalid
}

// panicked counts the processes that died of a panic after a disk fault
// (a panic line, possibly followed by a runtime fatal error, per process).
func panicked(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, ": panic:") {
			n++
		}
	}
	return n
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// Summary is a human-readable account of the report's failures.
func (r *Report) Summary() string {
	var b strings.Builder
	figs := append([]Figure(nil), r.Figures...)
	sort.SliceStable(figs, func(i, j int) bool { return figs[i].Result != Pass && figs[j].Result == Pass })
	for _, f := range figs {
		if f.Result == Pass {
			continue
		}
		fmt.Fprintf(&b, "%s %s:\n", f.ID, f.Result)
		for i, w := range f.Why {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(f.Why)-i)
				break
			}
			fmt.Fprintf(&b, "  - %s\n", w)
		}
	}
	return b.String()
}
