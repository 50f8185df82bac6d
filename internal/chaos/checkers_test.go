package chaos

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// Each checker must be able to fail: fed a history with the anomaly it
// looks for, it reports it; fed the same history without it, it passes.

func op(client int, in LinInput, call int64, out LinOutput, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

func get(key string) LinInput { return LinInput{Op: LinGet, Key: key, Version: -1} }
func set(key, v string, version int32) LinInput {
	return LinInput{Op: LinSet, Key: key, Value: v, Version: version}
}
func create(key, v string) LinInput         { return LinInput{Op: LinCreate, Key: key, Value: v, Version: -1} }
func val(v string, version int32) LinOutput { return LinOutput{Value: v, Version: version} }
func ok(version int32) LinOutput            { return LinOutput{Version: version} }

var unknown = LinOutput{Unknown: true}

func TestCheckLin(t *testing.T) {
	base := []porcupine.Operation{
		op(0, create("k", "a"), 0, ok(0), 10),
		op(1, set("k", "b", -1), 20, ok(1), 30),
		op(2, get("k"), 25, val("b", 1), 35), // concurrent with the set
		op(0, set("k", "c", 1), 40, ok(2), 50),
		op(1, get("k"), 60, val("c", 2), 70),
	}
	cases := []struct {
		name    string
		ops     []porcupine.Operation
		illegal bool
	}{
		{"valid", base, false},
		{"stale read", append(base[:5:5], op(2, get("k"), 80, val("b", 1), 90)), true},
		{"lost acknowledged write", append(base[:5:5], op(2, get("k"), 80, LinOutput{Err: wire.NoNode}, 90)), true},
		{"lost acknowledged create", []porcupine.Operation{
			op(0, create("k", "a"), 0, ok(0), 10),
			op(1, get("k"), 20, LinOutput{Err: wire.NoNode}, 30),
		}, true},
		{"write applied twice", append(base[:5:5], op(2, get("k"), 80, val("c", 3), 90)), true},
		{"compare-and-set against the wrong version", append(base[:5:5], op(2, set("k", "d", 1), 80, ok(3), 90)), true},
		{"multi applied despite a failed check", append(base[:5:5],
			op(2, LinInput{Op: LinMultiSet, Key: "k", Value: "d", Version: 0}, 80, LinOutput{Err: wire.BadVersion}, 90),
			op(1, get("k"), 100, val("d", 3), 110)), true},
		{"a write refused with QuotaExceeded took effect", append(base[:5:5],
			op(2, set("k", "q", -1), 80, LinOutput{Err: wire.QuotaExceeded}, 90),
			op(1, get("k"), 100, val("q", 3), 110)), true},
		{"a write refused with QuotaExceeded took no effect", append(base[:5:5],
			op(2, set("k", "q", -1), 80, LinOutput{Err: wire.QuotaExceeded}, 90),
			op(1, get("k"), 100, val("c", 2), 110)), false},
		{"unknown outcome, seen applied later", append(base[:5:5],
			op(2, set("k", "u", -1), 80, unknown, 90),
			op(1, get("k"), 200, val("u", 3), 210)), false},
		{"unknown outcome, never applied", append(base[:5:5],
			op(2, set("k", "u", -1), 80, unknown, 90),
			op(1, get("k"), 200, val("c", 2), 210)), false},
		{"unknown outcome applied after a later read saw it not", append(base[:5:5],
			op(2, set("k", "u", -1), 80, unknown, 90),
			op(1, get("k"), 200, val("u", 3), 210),
			op(0, get("k"), 220, val("c", 2), 230)), true},
		{"delete then recreate", []porcupine.Operation{
			op(0, create("k", "a"), 0, ok(0), 10),
			op(1, LinInput{Op: LinRecreate, Key: "k", Value: "z", Version: 0}, 20, LinOutput{}, 30),
			op(2, get("k"), 40, val("z", 0), 50),
			op(0, LinInput{Op: LinDelete, Key: "k", Version: 5}, 60, LinOutput{Err: wire.BadVersion}, 70),
			op(0, LinInput{Op: LinDelete, Key: "k", Version: -1}, 80, LinOutput{}, 90),
			op(2, get("k"), 100, LinOutput{Err: wire.NoNode}, 110),
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := CheckLin(tc.ops, 10*time.Second, dir)
			if (r.Illegal > 0) != tc.illegal || r.TimedOut > 0 {
				t.Fatalf("illegal=%d timedout=%d, want illegal %v\n%v", r.Illegal, r.TimedOut, tc.illegal, r.Examples)
			}
			if tc.illegal {
				if len(r.Visualizations) != 1 {
					t.Fatalf("visualizations %v", r.Visualizations)
				}
				if st, err := os.Stat(r.Visualizations[0]); err != nil || st.Size() == 0 {
					t.Fatalf("visualization not written: %v", err)
				}
			}
		})
	}
}

func TestCheckLinPartitionsByKey(t *testing.T) {
	ops := []porcupine.Operation{
		op(0, create("a", "1"), 0, ok(0), 10),
		op(1, create("b", "2"), 0, ok(0), 10),
		op(0, get("a"), 20, val("1", 0), 30),
		op(1, get("b"), 20, val("1", 0), 30), // b never held "1"
		op(2, get("c"), 20, unknown, 30),     // an unknown read says nothing
	}
	r := CheckLin(ops, 10*time.Second, "")
	if r.Keys != 2 || r.Illegal != 1 || r.Ops != 4 {
		t.Fatalf("%+v", r)
	}
}

func TestCheckDur(t *testing.T) {
	if p := checkDur([]int{1, 2, 3}, map[int]bool{1: true, 2: true, 3: true, 4: true}, "x"); len(p.Missing) != 0 {
		t.Fatalf("valid: %+v", p)
	}
	if p := checkDur([]int{1, 2, 3}, map[int]bool{1: true, 3: true}, "x"); len(p.Missing) != 1 || p.Missing[0] != 2 {
		t.Fatalf("lost acknowledged write: %+v", p)
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func lockBase() LockHistory {
	return LockHistory{
		Acquisitions: []Acquisition{
			{ID: 1, Client: 0, Token: 10, Invoked: ms(0), Acquired: ms(5), Released: ms(20)},
			{ID: 2, Client: 1, Token: 12, Invoked: ms(1), Acquired: ms(21), Released: ms(30)},
			{ID: 3, Client: 0, Token: 15, Invoked: ms(22), Acquired: ms(31), Released: ms(40)},
		},
		Register: []RegWrite{
			{Acq: 1, Token: 10, At: ms(6), Accepted: true},
			{Acq: 2, Token: 12, At: ms(22), Accepted: true},
			{Acq: 3, Token: 15, At: ms(32), Accepted: true},
		},
		Guarded: []GuardedWrite{{Acq: 1, Token: 10, Zxid: 100}, {Acq: 2, Token: 12, Zxid: 110}, {Acq: 3, Token: 15, Zxid: 120}},
	}
}

func TestCheckLock(t *testing.T) {
	if r := CheckLock(lockBase()); r.Anomalies() != 0 {
		t.Fatalf("valid history: %+v", r)
	}
	cases := []struct {
		name   string
		mutate func(h *LockHistory)
		count  func(r LockResult) int
	}{
		{"duplicate token", func(h *LockHistory) { h.Acquisitions[2].Token = 12 }, func(r LockResult) int { return r.DupTokens }},
		{"token smaller than an earlier grant's", func(h *LockHistory) { h.Acquisitions[2].Token = 11 }, func(r LockResult) int { return r.TokenOrder }},
		{"overlapping lock holders", func(h *LockHistory) {
			// Holder 1's guarded write applied after holder 2's.
			h.Guarded[0].Zxid = 115
		}, func(r LockResult) int { return r.Overlaps }},
		{"stale write accepted", func(h *LockHistory) {
			// Holder 2 paused; holder 3 (asked for after 2 acquired) wrote;
			// then 2's stale write was accepted.
			h.Acquisitions[2].Token = 11 // so the register accepts 2's token after it
			h.Register = append(h.Register, RegWrite{Acq: 2, Token: 12, At: ms(45), Accepted: true, Stale: true})
		}, func(r LockResult) int { return r.StaleAccepted }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := lockBase()
			tc.mutate(&h)
			r := CheckLock(h)
			if tc.count(r) == 0 || r.Anomalies() == 0 {
				t.Fatalf("not detected: %+v", r)
			}
		})
	}
	// A paused holder's stale write that the register refused is fine.
	h := lockBase()
	h.Acquisitions[1].Paused = true
	h.Register = append(h.Register, RegWrite{Acq: 2, Token: 12, At: ms(45), Accepted: false, Stale: true})
	if r := CheckLock(h); r.Anomalies() != 0 || r.StaleAttempts != 1 || r.StaleRejected != 1 || r.Pauses != 1 {
		t.Fatalf("refused stale write: %+v", r)
	}
}

func watchBase() WatchHistory {
	changes := []Change{
		{Zxid: 10, Path: "/w/a", Type: client.EventNodeCreated, Invoked: ms(8), At: ms(10)},
		{Zxid: 12, Path: "/w/a", Type: client.EventNodeDataChanged, Invoked: ms(18), At: ms(20)},
		{Zxid: 15, Path: "/w/b", Type: client.EventNodeCreated, Invoked: ms(28), At: ms(30)},
		{Zxid: 19, Path: "/w/a", Type: client.EventNodeDeleted, Invoked: ms(38), At: ms(40)},
	}
	var evs []StreamEvent
	for _, c := range changes {
		evs = append(evs, StreamEvent{Zxid: c.Zxid, Path: c.Path, Type: c.Type})
	}
	return WatchHistory{
		Changes: changes,
		Streams: []Stream{{Watcher: 0, From: ms(1), Final: true, Events: evs}},
		Arms: []Arm{
			{Watcher: 1, Path: "/w/a", Exists: true, Mzxid: 10, Invoked: ms(11), Armed: ms(12), Fired: true, Event: client.EventNodeDataChanged, EventZxid: 12, Received: ms(21)},
			{Watcher: 1, Path: "/w/b", Invoked: ms(5), Armed: ms(6), Fired: true, Event: client.EventNodeCreated, EventZxid: 15, Received: ms(31)},
			// Re-armed after a reconnect: fired with the server's zxid.
			{Watcher: 1, Path: "/w/a", Exists: true, Mzxid: 12, Invoked: ms(22), Armed: ms(23), Fired: true, Event: client.EventNodeDeleted, EventZxid: 25, Received: ms(50), Reconnected: true},
		},
	}
}

func TestCheckWatch(t *testing.T) {
	if r := CheckWatch(watchBase()); r.Anomalies() != 0 {
		t.Fatalf("valid history: %+v %v", r, r.Examples)
	}
	cases := []struct {
		name   string
		mutate func(h *WatchHistory)
		count  func(r WatchResult) int
	}{
		{"duplicated event", func(h *WatchHistory) {
			s := &h.Streams[0]
			s.Events = append(s.Events[:2:2], append([]StreamEvent{s.Events[1]}, s.Events[2:]...)...)
		}, func(r WatchResult) int { return r.Duplicate }},
		{"reordered events", func(h *WatchHistory) {
			s := &h.Streams[0]
			s.Events[1], s.Events[2] = s.Events[2], s.Events[1]
		}, func(r WatchResult) int { return r.Reordered }},
		{"missed event", func(h *WatchHistory) {
			s := &h.Streams[0]
			s.Events = append(s.Events[:1:1], s.Events[2:]...)
		}, func(r WatchResult) int { return r.Missed }},
		{"event of no change", func(h *WatchHistory) {
			s := &h.Streams[0]
			s.Events = append(s.Events, StreamEvent{Zxid: 30, Path: "/w/b", Type: client.EventNodeDataChanged})
		}, func(r WatchResult) int { return r.Phantom }},
		{"event of the wrong type", func(h *WatchHistory) {
			h.Streams[0].Events[1].Type = client.EventNodeDeleted
		}, func(r WatchResult) int { return r.Phantom }},
		{"one-shot watch fired for an older change", func(h *WatchHistory) {
			h.Arms[0].EventZxid = 10
		}, func(r WatchResult) int { return r.Stale }},
		{"one-shot watch fired for a later change than the first", func(h *WatchHistory) {
			h.Arms[0].Event, h.Arms[0].EventZxid = client.EventNodeDeleted, 19
		}, func(r WatchResult) int { return r.WrongFirst }},
		{"one-shot watch never fired", func(h *WatchHistory) {
			h.Arms[0].Fired = false
		}, func(r WatchResult) int { return r.ArmsMissed }},
		{"re-armed watch fired with no change", func(h *WatchHistory) {
			h.Arms[2].Mzxid = 19
			h.Arms[2].EventZxid = 25
		}, func(r WatchResult) int { return r.Phantom }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := watchBase()
			tc.mutate(&h)
			r := CheckWatch(h)
			if tc.count(r) == 0 {
				t.Fatalf("not detected: %+v", r)
			}
		})
	}
	// A stream cut short by its session's expiry is judged up to its last
	// event; a Resync excuses what it covers.
	h := watchBase()
	h.Streams[0].Final = false
	h.Streams[0].Events = h.Streams[0].Events[:2]
	if r := CheckWatch(h); r.Anomalies() != 0 {
		t.Fatalf("interrupted stream: %v", r.Examples)
	}
	h = watchBase()
	h.Streams[0].Events = append([]StreamEvent{{Zxid: 13, Path: "/w", Type: client.EventResync}}, h.Streams[0].Events[2:]...)
	if r := CheckWatch(h); r.Anomalies() != 0 || r.Resyncs != 1 {
		t.Fatalf("resync: %+v %v", r, r.Examples)
	}
	// A stream set after a change was sent need not deliver it, even when
	// the change was acknowledged after the stream was set.
	h = watchBase()
	h.Streams[0].From = ms(9)
	h.Changes[0].At = ms(50)
	h.Streams[0].Events = h.Streams[0].Events[1:]
	if r := CheckWatch(h); r.Anomalies() != 0 {
		t.Fatalf("change sent before the watch was set: %v", r.Examples)
	}
	h.Streams[0].From = ms(7)
	if r := CheckWatch(h); r.Missed != 1 {
		t.Fatalf("change sent after the watch was set, not delivered: %+v", r)
	}
	// A Resync excuses only what came between the last event and it.
	h = watchBase()
	evs := h.Streams[0].Events
	h.Streams[0].Events = []StreamEvent{evs[0], {Zxid: 11, Path: "/w", Type: client.EventResync}, evs[2], evs[3]}
	if r := CheckWatch(h); r.Missed != 1 {
		t.Fatalf("a change after the Resync's zxid missed: %+v %v", r, r.Examples)
	}
}

func TestCheckSess(t *testing.T) {
	base := SessHistory{
		Early:    []EarlyDeletion{{Owner: 1, Alive: false}}, // gone with its expired session: fine
		Deaths:   []Death{{Owner: 2, Timeout: 2 * time.Second, Gone: true, After: 2500 * time.Millisecond}},
		Controls: []bool{true},
	}
	if r := CheckSess(base, time.Second); r.Anomalies() != 0 {
		t.Fatalf("valid: %+v", r)
	}
	cases := []struct {
		name   string
		mutate func(h *SessHistory)
	}{
		{"early ephemeral deletion", func(h *SessHistory) { h.Early[0].Alive = true }},
		{"ephemeral outlives its dead owner too long", func(h *SessHistory) { h.Deaths[0].After = 3100 * time.Millisecond }},
		{"ephemeral never deleted", func(h *SessHistory) { h.Deaths[0].Gone = false }},
		{"living owner's ephemeral gone", func(h *SessHistory) { h.Controls[0] = false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := base
			h.Early = append([]EarlyDeletion(nil), base.Early...)
			h.Deaths = append([]Death(nil), base.Deaths...)
			h.Controls = append([]bool(nil), base.Controls...)
			tc.mutate(&h)
			if r := CheckSess(h, time.Second); r.Anomalies() == 0 {
				t.Fatalf("not detected: %+v", r)
			}
		})
	}
}

func TestFigureJudge(t *testing.T) {
	f := (&Figure{ID: "X"}).Add("ops", 3)
	if f.Judge(nil, nil); f.Result != Pass || f.String() != "FIGURE id=X ops=3 result=PASS" {
		t.Fatal(f.String())
	}
	if f.Judge(nil, []string{"a fault never fired"}); f.Result != Invalid {
		t.Fatal(f.String())
	}
	if f.Judge([]string{"stale read"}, []string{"a fault never fired"}); f.Result != Fail {
		t.Fatal(f.String())
	}
}

func TestJudgeRun(t *testing.T) {
	fired := FaultRecord{Kind: KillLeader, Fired: true, Recovered: time.Second}
	cases := []struct {
		name            string
		faults          []FaultRecord
		invalid         []string
		anomaly, broken bool
	}{
		{"valid", []FaultRecord{fired}, nil, false, false},
		{"a fault never fired", []FaultRecord{fired, {Kind: PauseServer}}, nil, false, true},
		{"too little load before the first fault", []FaultRecord{fired}, []string{"the load before the first fault was too low"}, false, true},
		{"the final write failed", []FaultRecord{fired}, []string{"the final write after healing failed"}, false, true},
		{"no recovery", []FaultRecord{{Kind: KillAll, Fired: true, Anomaly: "the cluster did not recover"}}, nil, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			anomalies, invalid := judgeNemesis(tc.faults, tc.invalid)
			if (len(anomalies) > 0) != tc.anomaly || (len(invalid) > 0) != tc.broken {
				t.Fatalf("anomalies %v, invalid %v", anomalies, invalid)
			}
		})
	}
}

func TestOutDirIsUsable(t *testing.T) {
	d := filepath.Join(t.TempDir(), "vis")
	r := CheckLin([]porcupine.Operation{
		op(0, create("k", "a"), 0, ok(0), 10),
		op(1, get("k"), 20, LinOutput{Err: wire.NoNode}, 30),
	}, 10*time.Second, d)
	if len(r.Visualizations) != 1 {
		t.Fatalf("%+v", r)
	}
}
