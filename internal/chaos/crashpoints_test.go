package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/server"
)

// TestCrashPoints is DUR at the crash points inside the server: under a
// steady write load, a member kills itself with SIGKILL at each point
// (before and after the log fsync, before and after apply, around the log
// compaction, and on both ends of a snapshot); it must restart cleanly
// from its data dir, and every acknowledged write must be readable through
// it. The cluster ends converged.
func TestCrashPoints(t *testing.T) {
	needCluster(t)
	tc := testcluster.Start(t, 3, testcluster.Options{Args: []string{
		"--test-hooks", "--snapshot-entries", "200", "--history-entries", "100",
		"--min-session-timeout", "300ms",
	}})
	// Restarts keep their client address, so that the clients, which know
	// every server, can come back to them.
	for _, nd := range tc.Nodes {
		args := nd.Args()
		for i := range args {
			if args[i] == "--client-addr" && i+1 < len(args) {
				args[i+1] = nd.ClientAddr()
			}
		}
		nd.SetArgs(args...)
	}
	addrs := tc.ClientAddrs()
	var dur DurLog
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	setup := connectT(t, addrs)
	for _, p := range []string{"/chaos", durRoot} {
		if _, _, err := setup.Create(ctx, p, nil, client.ModePersistent); err != nil {
			t.Fatal(err)
		}
	}
	var writers []*client.Client
	for i := 0; i < 3; i++ {
		writers = append(writers, connectT(t, addrs, client.WithSessionTimeout(5*time.Second)))
	}
	// The writers run from before a point is armed until the member is
	// back; they pause for the probe, so that a member still catching up
	// (by snapshot after snapshot, each closing its client connections)
	// settles.
	startWriters := func() (stop func()) {
		wctx, wcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, c := range writers {
			wg.Go(func() { dur.writer(wctx, c, 5*time.Second) })
		}
		return func() { wcancel(); wg.Wait() }
	}

	cases := []struct {
		point    string
		leader   bool // the point is armed on the leader, else on a follower
		snapshot bool // a follower is made to need a snapshot first
	}{
		{server.CrashBeforeLogSave, false, false},
		{server.CrashAfterLogSave, true, false},
		{server.CrashBeforeApply, true, false},
		{server.CrashAfterApply, false, false},
		{server.CrashBeforeCompact, false, false},
		{server.CrashAfterCompact, true, false},
		{server.CrashSnapshotSendMid, true, true},
		{server.CrashSnapshotReceived, false, true},
		{server.CrashRestoreBeforeCommit, false, true},
		{server.CrashAfterRestore, false, true},
	}
	if len(cases) != len(server.CrashPoints) {
		t.Fatalf("%d cases for %d crash points", len(cases), len(server.CrashPoints))
	}
	for _, cs := range cases {
		stopWriters := startWriters()
		acked := len(dur.Acked())
		testcluster.WaitFor(t, 30*time.Second, "acknowledged writes", func() bool { return len(dur.Acked()) >= acked+50 })
		leader := tc.Leader()
		follower := tc.Other(leader)
		target := follower
		if cs.leader {
			target = leader
		}
		exited, exitErr := target.Exited()
		if cs.snapshot {
			isolateUntilBehind(t, tc, leader, follower, 1000)
		}
		// The answer may be lost when the point comes at once.
		if code, err := target.Post("POST", "/debug/crash", map[string]any{"point": cs.point, "after": 1}, nil); err == nil && code != 200 {
			t.Fatalf("%s: arm: %d", cs.point, code)
		}
		if cs.snapshot {
			for _, nd := range tc.Nodes {
				nd.DropPeers()
			}
		}
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: member %d never reached the crash point", cs.point, target.ID)
		}
		if err := exitErr(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("%s: member %d exited with %v, want killed by its own SIGKILL", cs.point, target.ID, err)
		}
		target.Kill() // it is gone already; this only forgets the process
		if err := target.StartErr(); err != nil {
			t.Fatalf("%s: member %d does not restart: %v", cs.point, target.ID, err)
		}
		stopWriters()
		probeThrough(t, &dur, target, "crash at "+cs.point)
		t.Logf("%s on member %d (%s): restarted clean, %d acknowledged writes all present", cs.point, target.ID,
			map[bool]string{true: "leader", false: "follower"}[cs.leader], len(dur.Acked()))
	}
	for _, nd := range tc.Nodes {
		probeThrough(t, &dur, nd, "the end")
	}
	tc.AssertConverged()
}

// isolateUntilBehind cuts f off its peers until the leader has applied
// behind entries more than f: far past the compacted log, so that f can
// only catch up from a snapshot. The caller heals.
func isolateUntilBehind(t *testing.T, tc *testcluster.Cluster, leader, f *testcluster.Node, behind uint64) {
	t.Helper()
	var others []uint64
	for _, nd := range tc.Nodes {
		if nd != f {
			others = append(others, nd.ID)
			nd.DropPeers(f.ID)
		}
	}
	f.DropPeers(others...)
	testcluster.WaitFor(t, 60*time.Second, fmt.Sprintf("member %d to fall %d entries behind", f.ID, behind), func() bool {
		ls, err1 := leader.Status()
		fs, err2 := f.Status()
		return err1 == nil && err2 == nil && ls.Applied > fs.Applied+behind
	})
}

// probeThrough checks, through nd alone and with linearizable reads, that
// every write acknowledged so far is there.
func probeThrough(t *testing.T, dur *DurLog, nd *testcluster.Node, after string) {
	t.Helper()
	c := connectT(t, []string{nd.ClientAddr()})
	var p DurProbe
	testcluster.WaitFor(t, 60*time.Second, fmt.Sprintf("a DUR probe through member %d", nd.ID), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p = dur.Probe(ctx, c, after)
		return p.Err == nil
	})
	if len(p.Missing) > 0 {
		t.Errorf("after %s, member %d lacks %d of %d acknowledged writes, e.g. %v", after, nd.ID, len(p.Missing), p.Checked, p.Missing[:min(5, len(p.Missing))])
	}
	_ = c.Close()
}
