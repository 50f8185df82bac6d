package znode

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coord-dev/coord/internal/wire"
)

func TestSessions(t *testing.T) {
	h := newHarness(t, Config{})
	runSteps(t, h, []step{
		{op: Op{Kind: OpCreateSession, SessionID: 5, TimeoutMs: 3000, PassHash: []byte("h5")}}, // 1
		{op: Op{Kind: OpCreateSession, SessionID: 5, TimeoutMs: 3000}, err: wire.NodeExists},
		{op: Op{Kind: OpCreateSession, SessionID: 0, TimeoutMs: 3000}, err: wire.BadArguments},
		{op: Op{Kind: OpCreateSession, SessionID: 6, TimeoutMs: 0}, err: wire.BadArguments},
		{op: Op{Kind: OpCreateSession, SessionID: 6, TimeoutMs: 4000}}, // 5
		{op: mkCreate("/x", "", ""), sess: 99, err: wire.SessionExpired},
		{op: Op{Kind: OpNoop}, sess: 99, err: wire.SessionExpired},
		{op: mkCreate("/p", "", "")},                             // 8
		{op: mkCreate("/p/e1", "", wire.ModeEphemeral), sess: 5}, // 9
		{op: mkCreate("/p/e2", "", wire.ModeEphemeral), sess: 5}, // 10
		{op: mkCreate("/e3", "", wire.ModeEphemeral), sess: 5},   // 11
		{op: mkCreate("/f", "", wire.ModeEphemeral), sess: 6},    // 12
		{op: Op{Kind: OpCloseSession, SessionID: 6}, sess: 5, err: wire.BadArguments},
		{op: Op{Kind: OpCloseSession}, err: wire.BadArguments},
		{op: Op{Kind: OpCloseSession, SessionID: 77}, err: wire.SessionExpired},
		// 16: deletes in path order, parents updated per delete
		{op: Op{Kind: OpCloseSession, SessionID: 5, Expired: true},
			changes: "NodeDeleted /e3; NodeChildrenChanged /; NodeDeleted /p/e1; NodeChildrenChanged /p; NodeDeleted /p/e2; NodeChildrenChanged /p",
			nodes: map[string]S{
				"/p": {cz: 8, mz: 8, pz: 16, ct: 8000, mt: 8000, cv: 4},
				"/":  {pz: 16, cv: 4, nc: 2},
			},
			gone: []string{"/p/e1", "/p/e2", "/e3"}},
		{op: mkCreate("/y", "", ""), sess: 5, err: wire.SessionExpired},
		{op: Op{Kind: OpCloseSession}, sess: 6, changes: "NodeDeleted /f; NodeChildrenChanged /"}, // own session
		{op: Op{Kind: OpCloseSession, SessionID: 6}, err: wire.SessionExpired},
	})
	if got := h.s.Sessions(); len(got) != 0 {
		t.Errorf("sessions left: %v", got)
	}
}

func TestSessionTable(t *testing.T) {
	h := newHarness(t, Config{})
	h.applyBatch([]Entry{
		{Op: Op{Kind: OpCreateSession, SessionID: 9, TimeoutMs: 1, PassHash: []byte{9}}},
		{Op: Op{Kind: OpCreateSession, SessionID: 2, TimeoutMs: 2, PassHash: []byte{2}}},
		{Session: 9, Op: mkCreate("/a", "", wire.ModeEphemeral)},
		{Session: 9, Op: mkCreate("/b", "", wire.ModeEphemeral)},
		{Session: 2, Op: mkCreate("/c", "", wire.ModeEphemeral)},
	})
	check := func(s *Store) {
		t.Helper()
		want := []Session{{ID: 2, TimeoutMs: 2, PassHash: []byte{2}, Ephemerals: 1}, {ID: 9, TimeoutMs: 1, PassHash: []byte{9}, Ephemerals: 2}}
		if got := s.Sessions(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("sessions %v, want %v", got, want)
		}
		if got := s.Ephemerals(9); fmt.Sprint(got) != "[/a /b]" {
			t.Errorf("ephemerals %v", got)
		}
		if ss, ok := s.Session(2); !ok || ss.Ephemerals != 1 {
			t.Errorf("session 2: %v %v", ss, ok)
		}
		if _, ok := s.Session(3); ok {
			t.Errorf("session 3 exists")
		}
	}
	check(h.s)
	// The table is rebuilt from the DB on Open.
	s2 := openStore(t, h.db, Config{})
	check(s2)
	// Closing and re-creating a session in one batch.
	h.applyBatch([]Entry{
		{Op: Op{Kind: OpCloseSession, SessionID: 9}},
		{Op: Op{Kind: OpCreateSession, SessionID: 9, TimeoutMs: 5}},
		{Session: 9, Op: mkCreate("/d", "", wire.ModeEphemeral)},
	})
	if ss, _ := h.s.Session(9); ss.Ephemerals != 1 || ss.TimeoutMs != 5 {
		t.Errorf("session 9 after re-create: %+v", ss)
	}
	if got := h.s.Ephemerals(9); fmt.Sprint(got) != "[/d]" {
		t.Errorf("ephemerals %v", got)
	}
}

func TestExactlyOnce(t *testing.T) {
	h := newHarness(t, Config{})
	h.createSession(1)
	h.createSession(2)
	w := func(sess wire.SessionID, xid int64, op Op) Outcome {
		return h.apply(Entry{Session: sess, Xid: xid, Op: op})
	}
	first := w(1, 10, mkCreate("/s-", "", wire.ModePersistentSequential))
	if first.Duplicate || first.Result.Path != "/s-0000000000" {
		t.Fatalf("first: %+v", first)
	}
	again := w(1, 10, mkCreate("/s-", "", wire.ModePersistentSequential))
	if !again.Duplicate || !resultsEqual(again.Result, first.Result) || again.Changes != nil {
		t.Fatalf("resend: dup=%v %s changes=%v", again.Duplicate, fmtResult(again.Result), again.Changes)
	}
	if _, err := h.s.Get("/s-0000000001"); !errors.Is(err, wire.ErrNoNode) {
		t.Fatalf("resend applied again")
	}
	// The same xid on another session is another write.
	if o := w(2, 10, mkCreate("/s-", "", wire.ModePersistentSequential)); o.Duplicate || o.Result.Path != "/s-0000000001" {
		t.Fatalf("other session: %+v", o)
	}
	// Failures are cached too, even when the retry would now succeed.
	fail := w(1, 11, mkDelete("/nope", -1))
	w(1, 12, mkCreate("/nope", "", ""))
	if o := w(1, 11, mkDelete("/nope", -1)); !o.Duplicate || o.Result.Err != wire.NoNode || fail.Result.Err != wire.NoNode {
		t.Fatalf("cached failure: %+v", o)
	}
	// Multi results keep their per-op results.
	m := w(1, 13, mkMulti(mkCreate("/m", "", ""), mkSet("/m", "x", -1)))
	if o := w(1, 13, mkMulti(mkCreate("/m", "", ""), mkSet("/m", "x", -1))); !o.Duplicate || !resultsEqual(o.Result, m.Result) {
		t.Fatalf("multi resend: %s want %s", fmtResult(o.Result), fmtResult(m.Result))
	}
	// Reads, noops and xid 0 are not cached.
	if o := w(1, 14, Op{Kind: OpNoop}); o.Duplicate {
		t.Fatal("noop cached")
	}
	if o := w(1, 14, mkCreate("/n14", "", "")); o.Duplicate || o.Result.Err != wire.OK {
		t.Fatalf("after noop: %+v", o)
	}
	w(1, 0, mkCreate("/z", "", ""))
	if o := w(1, 0, mkCreate("/z", "", "")); o.Duplicate || o.Result.Err != wire.NodeExists {
		t.Fatalf("xid 0: %+v", o)
	}
	// A duplicate in the same batch as its first attempt.
	outs := h.applyBatch([]Entry{
		{Session: 2, Xid: 20, Op: mkSet("/m", "y", -1)},
		{Session: 2, Xid: 20, Op: mkSet("/m", "y", -1)},
	})
	if outs[0].Duplicate || !outs[1].Duplicate || !resultsEqual(outs[0].Result, outs[1].Result) {
		t.Fatalf("same batch: %+v", outs)
	}
	if n := h.mustGet("/m"); n.Stat.Version != 2 {
		t.Fatalf("version %d, want 2", n.Stat.Version)
	}
	// Closing the session drops its cache: a new session with its id starts
	// afresh.
	h.apply(Entry{Op: Op{Kind: OpCloseSession, SessionID: 1}})
	h.createSession(1)
	if o := w(1, 10, mkCreate("/s-", "", wire.ModePersistentSequential)); o.Duplicate {
		t.Fatal("cache survived close")
	}
}

func TestResultEviction(t *testing.T) {
	h := newHarness(t, Config{})
	h.createSession(1)
	var es []Entry
	for x := int64(1); x <= ResultsPerSession+5; x++ {
		es = append(es, Entry{Session: 1, Xid: x, Op: mkCreate(fmt.Sprintf("/n%d", x), "", "")})
	}
	// Out of order xids: 3000 then 2000; the lowest xids go first.
	es = append(es, Entry{Session: 1, Xid: 3000, Op: mkCreate("/x3000", "", "")}, Entry{Session: 1, Xid: 2000, Op: mkCreate("/x2000", "", "")})
	h.applyBatch(es[:100])
	h.applyBatch(es[100:])
	// The bookkeeping reloads from the DB as it was kept in memory.
	s2 := openStore(t, h.db, Config{})
	if !slices.Equal(s2.mu.sessions[1].xids, h.s.mu.sessions[1].xids) || len(h.s.mu.sessions[1].xids) != ResultsPerSession {
		t.Fatalf("reloaded xids differ, or %d cached", len(h.s.mu.sessions[1].xids))
	}
	for _, c := range []struct {
		xid int64
		dup bool
	}{{1, false}, {7, false}, {8, true}, {ResultsPerSession + 5, true}, {3000, true}, {2000, true}} {
		o := h.apply(Entry{Session: 1, Xid: c.xid, Op: mkCreate(fmt.Sprintf("/n%d", c.xid), "", "")})
		if o.Duplicate != c.dup {
			t.Errorf("xid %d: duplicate %v, want %v (%s)", c.xid, o.Duplicate, c.dup, fmtResult(o.Result))
		}
	}
	var xids []int64
	if err := h.s.scan(resultPrefix(1), func(k, _ []byte) error {
		xids = append(xids, int64(getU64(k[len(prefixResult)+8:])))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(xids) != ResultsPerSession || !slices.IsSorted(xids) {
		t.Errorf("%d cached results", len(xids))
	}
	e := h.s.mu.sessions[1]
	if !slices.Equal(e.xids, xids) {
		t.Errorf("in-memory xids differ from the DB's")
	}
}

func TestReap(t *testing.T) {
	h := newHarness(t, Config{})
	h.createSession(1)
	sys := func(path string, mode wire.Mode, time int64) Outcome {
		return h.apply(Entry{TimeMs: time, Op: Op{Kind: OpReap, Path: path, Mode: mode}})
	}
	cands := func(now int64) string {
		var s []string
		for _, op := range h.s.ReapCandidates(now, 0) {
			if op.Kind != OpReap {
				t.Fatalf("candidate kind %d", op.Kind)
			}
			s = append(s, string(op.Mode)+":"+op.Path)
		}
		return fmt.Sprint(s)
	}
	h.apply(Entry{TimeMs: 1000, Op: mkCreate("/c", "", wire.ModeContainer)})
	h.apply(Entry{TimeMs: 1000, Op: mkCreate("/c2", "", wire.ModeContainer)})
	h.apply(Entry{TimeMs: 1000, Op: mkTTL("/t", wire.ModePersistentTTL, 5000)})
	h.apply(Entry{TimeMs: 2000, Op: mkTTL("/u", wire.ModePersistentSequentialTTL, 1000)}) // /u0000000003, expires 3000
	if got := cands(2999); got != "[]" {
		t.Fatalf("candidates at 2999: %s", got)
	}
	if got := cands(3000); got != "[persistent_ttl:/u0000000003]" {
		t.Fatalf("candidates at 3000: %s", got)
	}
	if o := sys("/t", wire.ModePersistentTTL, 5999); o.Result.Err != wire.BadVersion {
		t.Fatalf("early reap: %s", o.Result.Err)
	}
	// A child keeps a TTL node and a container alive.
	h.apply(Entry{TimeMs: 1000, Op: mkCreate("/t/x", "", "")})
	h.apply(Entry{TimeMs: 1000, Op: mkCreate("/c/x", "", "")})
	if got := cands(100000); got != "[persistent_ttl:/u0000000003]" {
		t.Fatalf("candidates with children: %s", got)
	}
	if o := sys("/t", wire.ModePersistentTTL, 100000); o.Result.Err != wire.NotEmpty {
		t.Fatalf("reap non-empty: %s", o.Result.Err)
	}
	h.apply(Entry{Op: mkDelete("/t/x", -1)})
	h.apply(Entry{Op: mkDelete("/c/x", -1)})
	if got := cands(6000); got != "[persistent_ttl:/u0000000003 persistent_ttl:/t container:/c]" {
		t.Fatalf("candidates after deletes: %s", got)
	}
	if got := h.s.ReapCandidates(6000, 2); len(got) != 2 {
		t.Fatalf("max 2: %v", got)
	}
	// A set moves the expiry: mtime + ttl.
	h.apply(Entry{TimeMs: 7000, Op: mkSet("/u0000000003", "x", -1)})
	if got := cands(7999); got != "[persistent_ttl:/t container:/c]" {
		t.Fatalf("candidates after set: %s", got)
	}
	for _, c := range []struct {
		sess wire.SessionID
		path string
		mode wire.Mode
		want wire.Code
	}{
		{1, "/t", wire.ModePersistentTTL, wire.NoAuth},
		{0, "/t", wire.ModeContainer, wire.BadArguments},
		{0, "/c", wire.ModePersistentTTL, wire.BadArguments},
		{0, "/c", wire.ModePersistent, wire.BadArguments},
		{0, "/", wire.ModeContainer, wire.BadArguments},
		{0, "/c2", wire.ModeContainer, wire.BadVersion}, // never had children
		{0, "/gone", wire.ModeContainer, wire.NoNode},
		{0, "/u0000000003", wire.ModePersistentTTL, wire.BadVersion},
	} {
		o := h.apply(Entry{Session: c.sess, Op: Op{Kind: OpReap, Path: c.path, Mode: c.mode}})
		if o.Result.Err != c.want {
			t.Errorf("reap %s %s by %v: %q, want %q", c.mode, c.path, c.sess, o.Result.Err, c.want)
		}
	}
	o := sys("/t", wire.ModePersistentTTL, 0)
	if o.Result.Err != wire.OK || fmtChanges(o.Changes) != "NodeDeleted /t; NodeChildrenChanged /" {
		t.Fatalf("reap /t: %s %s", o.Result.Err, fmtChanges(o.Changes))
	}
	if o := sys("/c", wire.ModeContainer, 0); o.Result.Err != wire.OK {
		t.Fatalf("reap /c: %s", o.Result.Err)
	}
	if got := cands(7999); got != "[]" {
		t.Fatalf("candidates after reaping: %s", got)
	}
	// A container emptied inside its parent container makes the parent a
	// candidate only once it is empty too.
	h.apply(Entry{Op: mkCreate("/c2/k", "", wire.ModeContainer)})
	h.apply(Entry{Op: mkCreate("/c2/k/x", "", "")})
	h.apply(Entry{Op: mkDelete("/c2/k/x", -1)})
	if got := cands(0); got != "[container:/c2/k]" {
		t.Fatalf("nested: %s", got)
	}
	sys("/c2/k", wire.ModeContainer, 0)
	if got := cands(0); got != "[container:/c2]" {
		t.Fatalf("nested after reap: %s", got)
	}
}

func TestApplyMisc(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	defer db.Close()
	s := openStore(t, db, Config{})
	var got []Outcome
	pub := func(o []Outcome) { got = o }
	good := (&Entry{Op: mkCreate("/a", "", "")}).Marshal()
	err := s.Apply([]Committed{
		{Index: 1},                             // empty entry
		{Index: 2, Data: []byte{1, 2, 3}},      // garbage
		{Index: 3, Data: good},                 // fine
		{Index: 5, Conf: []byte("members v1")}, // a gap is fine; conf change
	}, pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Entry != nil || got[0].Result.Err != wire.OK ||
		got[1].Entry != nil || got[1].Result.Err != wire.MarshallingError ||
		got[2].Entry == nil || got[2].Result.Err != wire.OK || got[2].Changes[0].Zxid != 3 ||
		got[3].Index != 5 {
		t.Fatalf("outcomes %+v", got)
	}
	if s.AppliedIndex() != 5 || string(s.Conf()) != "members v1" {
		t.Fatalf("applied %d conf %q", s.AppliedIndex(), s.Conf())
	}
	// Already applied entries are skipped; the rest apply.
	got = nil
	if err := s.Apply([]Committed{{Index: 3, Data: good}, {Index: 6, Data: good}}, pub); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Index != 6 || got[0].Result.Err != wire.NodeExists {
		t.Fatalf("outcomes %+v", got)
	}
	got = nil
	if err := s.Apply([]Committed{{Index: 2, Data: good}}, pub); err != nil || got != nil {
		t.Fatalf("all skipped: %v %v", err, got)
	}
	if err := s.Apply([]Committed{{Index: 8}, {Index: 7}}, pub); err == nil {
		t.Fatal("decreasing indices accepted")
	}
	if err := s.Apply([]Committed{{Index: 8}, {Index: 8}}, pub); err == nil {
		t.Fatal("repeated index accepted")
	}
	if s.AppliedIndex() != 6 {
		t.Fatalf("a refused Apply changed the applied index to %d", s.AppliedIndex())
	}
	// Reopen: applied index, conf, time and tree survive.
	s.Close()
	if _, err := s.Get("/a"); err != ErrClosed {
		t.Fatalf("get after close: %v", err)
	}
	s2 := openStore(t, db, Config{})
	if s2.AppliedIndex() != 6 || string(s2.Conf()) != "members v1" {
		t.Fatalf("reopened: applied %d conf %q", s2.AppliedIndex(), s2.Conf())
	}
	if _, err := s2.Get("/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get("bad"); !errors.Is(err, wire.ErrBadArguments) {
		t.Fatalf("bad path: %v", err)
	}
	if _, _, err := s2.Children("/nope", "", 0); !errors.Is(err, wire.ErrNoNode) {
		t.Fatalf("children of nothing: %v", err)
	}
	if err := (&Config{MaxDataBytes: -1}).Validate(); err == nil {
		t.Error("negative MaxDataBytes accepted")
	}
	if err := (&Config{SuperDigest: "nocolon"}).Validate(); err == nil {
		t.Error("bad SuperDigest accepted")
	}
}

func TestChildrenPaging(t *testing.T) {
	h := newHarness(t, Config{})
	var es []Entry
	for _, n := range []string{"b", "a", "c", "aa", "a b", "é"} {
		es = append(es, Entry{Op: mkCreate("/p/"+n, "", "")})
	}
	h.applyBatch(append([]Entry{{Op: mkCreate("/p", "", "")}}, es...))
	h.apply(Entry{Op: mkCreate("/p/a/deep", "", "")})
	h.apply(Entry{Op: mkCreate("/p0", "", "")})
	for _, c := range []struct {
		after string
		limit int
		want  string
	}{
		{"", 0, "[a a b aa b c é]"},
		{"", 2, "[a a b]"},
		{"a b", 2, "[aa b]"},
		{"aa", 0, "[b c é]"},
		{"é", 0, "[]"},
		{"zzz", 0, "[é]"},
		{"ö", 0, "[]"},
	} {
		names, n, err := h.s.Children("/p", c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(names) != c.want || n.Stat.NumChildren != 6 || n.Path != "/p" {
			t.Errorf("Children(/p, %q, %d) = %v (%d children), want %v", c.after, c.limit, names, n.Stat.NumChildren, c.want)
		}
	}
	names, _, _ := h.s.Children("/", "", 0)
	if fmt.Sprint(names) != "[p p0]" {
		t.Errorf("root children %v", names)
	}
}

func TestHistory(t *testing.T) {
	h := newHarness(t, Config{})
	h.apply(Entry{Op: mkCreate("/a", "", "")})             // 1
	h.apply(Entry{Op: mkSet("/a", "x", -1)})               // 2
	h.apply(Entry{Op: mkSetACL("/a", wire.ReadACL(), -1)}) // 3: no change
	h.apply(Entry{Op: mkDelete("/a", -1)})                 // 4
	all := func(after int64) (string, bool) {
		var s []string
		complete, err := h.s.History(after, func(c Change) bool {
			s = append(s, fmt.Sprintf("%d %s %s %v", c.Zxid, c.Type, c.Path, c.ACL))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(s), complete
	}
	got, complete := all(0)
	want := "[1 NodeCreated /a [{cdrwa world anyone}] 1 NodeChildrenChanged / [{cdrwa world anyone}] 2 NodeDataChanged /a [{cdrwa world anyone}] 4 NodeDeleted /a [{r world anyone}] 4 NodeChildrenChanged / [{cdrwa world anyone}]]"
	if got != want || !complete {
		t.Fatalf("history:\n got  %s %v\n want %s", got, complete, want)
	}
	if got, complete := all(2); got != "[4 NodeDeleted /a [{r world anyone}] 4 NodeChildrenChanged / [{cdrwa world anyone}]]" || !complete {
		t.Fatalf("after 2: %s %v", got, complete)
	}
	if got, complete := all(-5); !complete || got != want {
		t.Fatalf("after -5: %s %v", got, complete)
	}
	n := 0
	if _, err := h.s.History(0, func(Change) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("stop early: %d %v", n, err)
	}
	if err := h.s.TrimHistory(3); err != nil {
		t.Fatal(err)
	}
	if got, complete := all(0); complete || got != "[4 NodeDeleted /a [{r world anyone}] 4 NodeChildrenChanged / [{cdrwa world anyone}]]" {
		t.Fatalf("trimmed, after 0: %s %v", got, complete)
	}
	if _, complete := all(1); complete {
		t.Fatal("after 1 is complete though index 2 was trimmed")
	}
	if _, complete := all(2); !complete {
		t.Fatal("after 2 incomplete")
	}
	// Trimming past the applied index stops at it.
	if err := h.s.TrimHistory(1000); err != nil {
		t.Fatal(err)
	}
	if got, complete := all(4); got != "[]" || !complete {
		t.Fatalf("after full trim: %s %v", got, complete)
	}
	h.apply(Entry{Op: mkCreate("/b", "", "")}) // 5
	if got, complete := all(4); !complete || got == "[]" {
		t.Fatalf("new history: %s %v", got, complete)
	}
}

// A write of a session that arrives after a later write of the same session
// was applied (lost with a leader, proposed again) is refused, and so is its
// resend: applying it would reorder the session's writes.
func TestOutOfOrderWriteRefused(t *testing.T) {
	h := newHarness(t, Config{})
	sid := wire.SessionID(42)
	h.createSession(sid)
	w6 := &Entry{Session: sid, Xid: 6, Op: Op{Kind: OpCreate, Path: "/b", Mode: wire.ModePersistent, ACL: wire.OpenACL()}}
	w5 := &Entry{Session: sid, Xid: 5, Op: Op{Kind: OpCreate, Path: "/a", Mode: wire.ModePersistent, ACL: wire.OpenACL()}}
	if o := h.apply(*w6); o.Result.Err != wire.OK {
		t.Fatal(o.Result.Err)
	}
	for i := 0; i < 2; i++ {
		o := h.apply(*w5)
		if o.Result.Err != wire.RuntimeInconsistency || len(o.Changes) != 0 {
			t.Fatalf("attempt %d of the late write: %+v", i, o.Result)
		}
	}
	if _, err := h.s.Get("/a"); !errors.Is(err, wire.ErrNoNode) {
		t.Fatalf("the late write applied: %v", err)
	}
	// A newer xid goes through.
	w7 := &Entry{Session: sid, Xid: 7, Op: Op{Kind: OpCreate, Path: "/a", Mode: wire.ModePersistent, ACL: wire.OpenACL()}}
	if o := h.apply(*w7); o.Result.Err != wire.OK {
		t.Fatal(o.Result.Err)
	}
}
