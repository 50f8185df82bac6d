package znode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

// S is a compact Stat for expectations.
type S struct {
	cz, mz, pz, ct, mt int64
	v, cv, av          int32
	eo                 wire.SessionID
	dl, nc             int32
}

func (s S) stat() wire.Stat {
	return wire.Stat{Czxid: s.cz, Mzxid: s.mz, Pzxid: s.pz, Ctime: s.ct, Mtime: s.mt,
		Version: s.v, Cversion: s.cv, Aversion: s.av, EphemeralOwner: s.eo, DataLength: s.dl, NumChildren: s.nc}
}

func mkCreate(path, data string, mode wire.Mode) Op {
	return Op{Kind: OpCreate, Path: path, Data: []byte(data), Mode: mode, ACL: wire.OpenACL()}
}

func mkTTL(path string, mode wire.Mode, ttl int64) Op {
	op := mkCreate(path, "", mode)
	op.TTLMs = ttl
	return op
}

func mkDelete(path string, v int32) Op { return Op{Kind: OpDelete, Path: path, Version: v} }
func mkSet(path, data string, v int32) Op {
	return Op{Kind: OpSet, Path: path, Data: []byte(data), Version: v}
}
func mkCheck(path string, v int32) Op { return Op{Kind: OpCheck, Path: path, Version: v} }
func mkSetACL(path string, acl []wire.ACL, v int32) Op {
	return Op{Kind: OpSetACL, Path: path, ACL: acl, Version: v}
}
func mkMulti(ops ...Op) Op { return Op{Kind: OpMulti, Ops: ops} }

// A builds an ACL entry.
func A(p wire.Perms, scheme, id string) wire.ACL { return wire.ACL{Perms: p, Scheme: scheme, ID: id} }

// step is one entry of a scenario and what must hold after it. The entry
// applies at the next index i with TimeMs 1000*i unless time is set.
type step struct {
	op      Op
	sess    wire.SessionID
	xid     int64
	ids     []Ident
	time    int64
	err     wire.Code
	path    string       // Result.Path, when set
	stat    *S           // Result.Stat, when set
	multi   []wire.Code  // the Multi results' codes, when set
	changes string       // "Type path; ..." when set ("-" for none)
	nodes   map[string]S // Stats after the step
	data    map[string]string
	gone    []string // paths that must not exist after the step
}

func fmtChanges(cs []Change) string {
	if len(cs) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, string(c.Type)+" "+c.Path)
	}
	return strings.Join(parts, "; ")
}

func runSteps(t *testing.T, h *harness, steps []step) {
	t.Helper()
	for i, st := range steps {
		idx := h.next
		e := Entry{Session: st.sess, Xid: st.xid, Idents: st.ids, TimeMs: int64(idx) * 1000, Op: st.op}
		if st.time != 0 {
			e.TimeMs = st.time
		}
		o := h.apply(e)
		where := fmt.Sprintf("step %d (index %d, %v %s)", i, idx, st.op.Kind, st.op.Path)
		if o.Result.Err != st.err {
			t.Fatalf("%s: err %q, want %q (result %s)", where, o.Result.Err, st.err, fmtResult(o.Result))
		}
		if o.Result.Kind != st.op.Kind {
			t.Errorf("%s: result kind %d, want %d", where, o.Result.Kind, st.op.Kind)
		}
		if st.path != "" && o.Result.Path != st.path {
			t.Errorf("%s: path %q, want %q", where, o.Result.Path, st.path)
		}
		if st.stat != nil {
			if o.Result.Stat == nil || *o.Result.Stat != st.stat.stat() {
				t.Errorf("%s: stat %+v, want %+v", where, o.Result.Stat, st.stat.stat())
			}
		}
		if st.multi != nil {
			var got []wire.Code
			for _, m := range o.Result.Multi {
				got = append(got, m.Err)
			}
			if fmt.Sprint(got) != fmt.Sprint(st.multi) {
				t.Errorf("%s: multi codes %q, want %q", where, got, st.multi)
			}
		}
		if st.changes != "" && fmtChanges(o.Changes) != st.changes {
			t.Errorf("%s: changes %q, want %q", where, fmtChanges(o.Changes), st.changes)
		}
		for _, c := range o.Changes {
			if c.Zxid != int64(idx) {
				t.Errorf("%s: change %v at zxid %d", where, c, c.Zxid)
			}
		}
		for p, want := range st.nodes {
			n, err := h.s.Get(p)
			if err != nil {
				t.Errorf("%s: get %s: %v", where, p, err)
				continue
			}
			if n.Stat != want.stat() {
				t.Errorf("%s: %s stat\n  got  %+v\n  want %+v", where, p, n.Stat, want.stat())
			}
		}
		for p, want := range st.data {
			if n := h.mustGet(p); string(n.Data) != want {
				t.Errorf("%s: %s data %q, want %q", where, p, n.Data, want)
			}
		}
		for _, p := range st.gone {
			if _, err := h.s.Get(p); err != wire.ErrNoNode {
				t.Errorf("%s: %s: err %v, want NoNode", where, p, err)
			}
		}
	}
}

func TestCreate(t *testing.T) {
	h := newHarness(t, Config{MaxDataBytes: 8})
	h.createSession(7) // index 1
	runSteps(t, h, []step{
		// 2
		{op: mkCreate("/a", "x", ""), path: "/a", stat: &S{cz: 2, mz: 2, pz: 2, ct: 2000, mt: 2000, dl: 1},
			changes: "NodeCreated /a; NodeChildrenChanged /",
			nodes: map[string]S{
				"/":  {pz: 2, cv: 1, nc: 1},
				"/a": {cz: 2, mz: 2, pz: 2, ct: 2000, mt: 2000, dl: 1},
			}},
		// 3
		{op: mkCreate("/a/b", "xy", wire.ModePersistent), path: "/a/b",
			nodes: map[string]S{
				"/":    {pz: 2, cv: 1, nc: 1},
				"/a":   {cz: 2, mz: 2, pz: 3, ct: 2000, mt: 2000, dl: 1, cv: 1, nc: 1},
				"/a/b": {cz: 3, mz: 3, pz: 3, ct: 3000, mt: 3000, dl: 2},
			}},
		{op: mkCreate("/a", "", ""), err: wire.NodeExists, changes: "-"},
		{op: mkCreate("/x/y", "", ""), err: wire.NoNode},
		{op: mkCreate("/", "", ""), err: wire.BadArguments},
		{op: mkCreate("a", "", ""), err: wire.BadArguments},
		{op: mkCreate("/a/", "", ""), err: wire.BadArguments},
		{op: mkCreate("/a/./b", "", ""), err: wire.BadArguments},
		{op: mkCreate("/c", "", "bogus"), err: wire.BadArguments},
		{op: mkCreate("/c", "123456789", ""), err: wire.BadArguments},
		{op: mkTTL("/c", wire.ModePersistent, 10), err: wire.BadArguments},
		{op: mkTTL("/c", wire.ModeContainer, 10), err: wire.BadArguments},
		{op: mkTTL("/c", wire.ModePersistentTTL, 0), err: wire.BadArguments},
		{op: mkTTL("/c", wire.ModePersistentTTL, -1), err: wire.BadArguments},
		{op: mkTTL("/c", wire.ModePersistentTTL, MaxTTLMs+1), err: wire.BadArguments},
		{op: mkCreate("/c", "", wire.ModeEphemeral), err: wire.BadArguments}, // no session
		{op: Op{Kind: OpCreate, Path: "/c"}, err: wire.InvalidACL},
		{op: Op{Kind: OpCreate, Path: "/c", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "world", ID: "bob"}}}, err: wire.InvalidACL},
		{op: Op{Kind: OpCreate, Path: "/c", ACL: wire.CreatorAllACL()}, err: wire.InvalidACL},
		{op: Op{Kind: OpCreate, Path: "/c", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "x509", ID: "cn"}}}, err: wire.InvalidACL},
		{op: Op{Kind: OpCreate, Path: "/c", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "ip", ID: "10.0.0.0/99"}}}, err: wire.InvalidACL},
		// The failures changed nothing.
		{op: mkCreate("/e", "12345678", wire.ModeEphemeral), sess: 7, path: "/e",
			stat:  &S{cz: 23, mz: 23, pz: 23, ct: 23000, mt: 23000, eo: 7, dl: 8},
			nodes: map[string]S{"/": {pz: 23, cv: 2, nc: 2}}},
		{op: mkCreate("/e/x", "", ""), sess: 7, err: wire.NoChildrenForEphemerals},
		{op: mkCreate("/e/x", "", wire.ModeContainer), err: wire.NoChildrenForEphemerals},
		{op: mkTTL("/t", wire.ModePersistentTTL, 100), path: "/t", stat: &S{cz: 26, mz: 26, pz: 26, ct: 26000, mt: 26000}},
		{op: mkCreate("/k", "", wire.ModeContainer), path: "/k"},
		{op: mkCreate("/e2", "", wire.ModeEphemeralSequential), sess: 7, path: "/e20000000004",
			stat: &S{cz: 28, mz: 28, pz: 28, ct: 28000, mt: 28000, eo: 7}},
	})
	for p, m := range map[string]wire.Mode{"/a": wire.ModePersistent, "/e": wire.ModeEphemeral, "/t": wire.ModePersistentTTL, "/k": wire.ModeContainer, "/e20000000004": wire.ModeEphemeralSequential} {
		if n := h.mustGet(p); n.Mode != m {
			t.Errorf("%s: mode %s, want %s", p, n.Mode, m)
		}
	}
	if n := h.mustGet("/t"); n.TTLMs != 100 {
		t.Errorf("ttl %d", n.TTLMs)
	}
	if s, _ := h.s.Session(7); s.Ephemerals != 2 {
		t.Errorf("session ephemerals %d, want 2", s.Ephemerals)
	}
}

func TestSequential(t *testing.T) {
	h := newHarness(t, Config{})
	runSteps(t, h, []step{
		{op: mkCreate("/q", "", "")}, // 1
		{op: mkCreate("/q/n-", "", wire.ModePersistentSequential), path: "/q/n-0000000000",
			nodes: map[string]S{"/q": {cz: 1, mz: 1, pz: 2, ct: 1000, mt: 1000, cv: 1, nc: 1}}},
		{op: mkCreate("/q/n-", "", wire.ModePersistentSequential), path: "/q/n-0000000001"},
		{op: mkDelete("/q/n-0000000000", -1), changes: "NodeDeleted /q/n-0000000000; NodeChildrenChanged /q",
			nodes: map[string]S{"/q": {cz: 1, mz: 1, pz: 4, ct: 1000, mt: 1000, cv: 3, nc: 1}}},
		// The sequence counts creates only: 2, while cversion is 3.
		{op: mkCreate("/q/n-", "", wire.ModePersistentSequential), path: "/q/n-0000000002",
			nodes: map[string]S{"/q": {cz: 1, mz: 1, pz: 5, ct: 1000, mt: 1000, cv: 4, nc: 2}}},
		{op: mkCreate("/q/", "", wire.ModePersistentSequential), path: "/q/0000000003"},
		{op: mkCreate("/q/plain", "", "")}, // counts too: next is 5, then 6
		// A plain node taking the next sequential name makes it collide.
		{op: mkCreate("/q/s0000000006", "", "")},
		{op: mkCreate("/q/s", "", wire.ModePersistentSequential), err: wire.NodeExists},
		{op: mkTTL("/q/t", wire.ModePersistentSequentialTTL, 50), path: "/q/t0000000006"},
		{op: mkCreate("/", "", wire.ModePersistentSequential), path: "/0000000001"},
		{op: mkCreate("/q//", "", wire.ModePersistentSequential), err: wire.BadArguments},
		{op: mkCreate("/q/"+strings.Repeat("x", wire.MaxPathBytes-12), "", wire.ModePersistentSequential), err: wire.BadArguments},
		{op: mkCreate("/nope/", "", wire.ModePersistentSequential), err: wire.NoNode},
	})
	names, q, err := h.s.Children("/q", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "[0000000003 n-0000000001 n-0000000002 plain s0000000006 t0000000006]"
	if fmt.Sprint(names) != want {
		t.Errorf("children %v, want %v", names, want)
	}
	if q.Stat.NumChildren != 6 || q.Stat.Cversion != 8 {
		t.Errorf("/q stat %+v", q.Stat)
	}
}

func TestDeleteSetCheck(t *testing.T) {
	h := newHarness(t, Config{MaxDataBytes: 4})
	runSteps(t, h, []step{
		{op: mkCreate("/a", "1", "")},   // 1
		{op: mkCreate("/a/b", "2", "")}, // 2
		{op: mkDelete("/", -1), err: wire.BadArguments},
		{op: mkDelete("a", -1), err: wire.BadArguments},
		{op: mkDelete("/x", -1), err: wire.NoNode},
		{op: mkDelete("/a/b", 3), err: wire.BadVersion},
		{op: mkDelete("/a", -1), err: wire.NotEmpty},
		{op: mkSet("/x", "", -1), err: wire.NoNode},
		{op: mkSet("/a", "", 1), err: wire.BadVersion},
		{op: mkSet("/a", "12345", -1), err: wire.BadArguments},
		{op: mkSet("a", "", -1), err: wire.BadArguments},
		// 12
		{op: mkSet("/a", "abcd", 0), stat: &S{cz: 1, mz: 12, pz: 2, ct: 1000, mt: 12000, v: 1, cv: 1, dl: 4, nc: 1},
			changes: "NodeDataChanged /a",
			nodes:   map[string]S{"/": {pz: 1, cv: 1, nc: 1}},
			data:    map[string]string{"/a": "abcd"}},
		// 13: set to empty, any version
		{op: mkSet("/a", "", -1), stat: &S{cz: 1, mz: 13, pz: 2, ct: 1000, mt: 13000, v: 2, cv: 1, nc: 1},
			data: map[string]string{"/a": ""}},
		{op: mkCheck("/a", 2), err: wire.BadArguments}, // check outside multi
		// 15
		{op: mkDelete("/a/b", 0), changes: "NodeDeleted /a/b; NodeChildrenChanged /a",
			nodes: map[string]S{"/a": {cz: 1, mz: 13, pz: 15, ct: 1000, mt: 13000, v: 2, cv: 2}},
			gone:  []string{"/a/b"}},
		// 16
		{op: mkDelete("/a", 2), nodes: map[string]S{"/": {pz: 16, cv: 2}}, gone: []string{"/a"}},
		{op: mkDelete("/a", -1), err: wire.NoNode},
	})
}

func TestSetACL(t *testing.T) {
	h := newHarness(t, Config{})
	alice := Ident{SchemeDigest, DigestID("alice", "pw")}
	runSteps(t, h, []step{
		{op: Op{Kind: OpCreateSession, SessionID: 1, TimeoutMs: 1}},
		{op: mkCreate("/a", "", "")}, // 2
		{op: mkSetACL("/x", wire.OpenACL(), -1), err: wire.NoNode},
		{op: mkSetACL("/a", nil, -1), err: wire.InvalidACL},
		{op: mkSetACL("/a", wire.OpenACL(), 1), err: wire.BadVersion},
		{op: mkSet("/a", "v", -1)}, // 6: version 1, aversion still 0
		{op: mkSetACL("/a", wire.OpenACL(), 1), err: wire.BadVersion},
		// 8: aversion matched, mzxid unchanged, no change; auth expands to
		// the digest idents only
		{op: mkSetACL("/a", wire.CreatorAllACL(), 0), sess: 1, ids: []Ident{{SchemeIP, "127.0.0.1"}, alice},
			stat: &S{cz: 2, mz: 6, pz: 2, ct: 2000, mt: 6000, v: 1, av: 1, dl: 1}, changes: "-"},
		// bob cannot administer it any more
		{op: mkSetACL("/a", wire.OpenACL(), -1), sess: 1, ids: []Ident{{SchemeDigest, DigestID("bob", "pw")}}, err: wire.NoAuth},
		{op: mkSetACL("/a", wire.OpenACL(), 1), sess: 1, ids: []Ident{alice}, stat: &S{cz: 2, mz: 6, pz: 2, ct: 2000, mt: 6000, v: 1, av: 2, dl: 1}},
	})
	if n := h.mustGet("/a"); fmt.Sprint(n.ACL) != fmt.Sprint(wire.OpenACL()) {
		t.Errorf("acl %v", n.ACL)
	}
}

func TestACLEnforcement(t *testing.T) {
	super := DigestID("super", "secret")
	h := newHarness(t, Config{SuperDigest: super})
	h.createSession(1) // 1
	alice := []Ident{{SchemeDigest, DigestID("alice", "pw")}}
	bob := []Ident{{SchemeDigest, DigestID("bob", "pw")}, {SchemeIP, "10.1.2.3"}}
	carol := []Ident{{SchemeIP, "192.168.0.9"}}
	sup := []Ident{{SchemeDigest, super}}
	aliceAll := wire.ACL{Perms: wire.PermAll, Scheme: SchemeDigest, ID: DigestID("alice", "pw")}
	netRead := wire.ACL{Perms: wire.PermRead | wire.PermCreate, Scheme: SchemeIP, ID: "10.0.0.0/8"}
	withACL := func(op Op, acl ...wire.ACL) Op { op.ACL = acl; return op }
	runSteps(t, h, []step{
		// 2: /p: alice all, 10/8 read+create
		{op: withACL(mkCreate("/p", "", ""), aliceAll, netRead), sess: 1, ids: alice},
		{op: mkCreate("/p/c", "", ""), sess: 1, ids: carol, err: wire.NoAuth},
		{op: mkCreate("/p/c", "", ""), sess: 1, ids: bob}, // 4: create via CIDR
		{op: mkDelete("/p/c", -1), sess: 1, ids: bob, err: wire.NoAuth},
		{op: mkSet("/p", "x", -1), sess: 1, ids: bob, err: wire.NoAuth},
		{op: mkMulti(mkCheck("/p", -1)), sess: 1, ids: carol, err: wire.NoAuth, multi: []wire.Code{wire.NoAuth}},
		{op: mkMulti(mkCheck("/p", -1)), sess: 1, ids: bob},
		{op: mkSet("/p", "x", -1), sess: 1, ids: alice},
		{op: mkSetACL("/p", wire.ReadACL(), -1), sess: 1, ids: bob, err: wire.NoAuth},
		{op: mkDelete("/p/c", -1), sess: 1, ids: sup}, // 11: super
		{op: mkSetACL("/p", wire.ReadACL(), -1), sess: 1, ids: alice},
		{op: mkSet("/p", "y", -1), sess: 1, ids: alice, err: wire.NoAuth},
		{op: mkSet("/p", "y", -1)}, // 14: the system passes every check
		{op: mkCreate("/p/d", "", ""), sess: 1, ids: bob, err: wire.NoAuth},
		{op: withACL(mkCreate("/q", "", ""), wire.ACL{Perms: wire.PermAll, Scheme: SchemeIP, ID: "192.168.0.9"}), sess: 1},
		{op: mkSet("/q", "z", -1), sess: 1, ids: carol},
		{op: mkSet("/q", "z", -1), sess: 1, ids: []Ident{{SchemeIP, "192.168.0.10"}}, err: wire.NoAuth},
	})
}

func TestAllowed(t *testing.T) {
	s := &Store{cfg: Config{SuperDigest: DigestID("super", "x")}}
	d := DigestID("u", "p")
	cases := []struct {
		acl    []wire.ACL
		idents []Ident
		perm   wire.Perms
		want   bool
	}{
		{nil, nil, wire.PermAdmin, true},
		{wire.OpenACL(), nil, wire.PermAdmin, true},
		{wire.ReadACL(), nil, wire.PermWrite, false},
		{wire.ReadACL(), nil, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "digest", d)}, []Ident{{"digest", d}}, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "digest", d)}, []Ident{{"digest", d}}, wire.PermWrite, false},
		{[]wire.ACL{A(wire.PermRead, "digest", d)}, []Ident{{"ip", d}}, wire.PermRead, false},
		{[]wire.ACL{A(wire.PermRead, "digest", d)}, []Ident{{"digest", DigestID("super", "x")}}, wire.PermAdmin, true},
		{[]wire.ACL{A(wire.PermRead, "ip", "10.0.0.0/8")}, []Ident{{"ip", "10.200.0.1"}}, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "ip", "10.0.0.0/8")}, []Ident{{"ip", "11.0.0.1"}}, wire.PermRead, false},
		{[]wire.ACL{A(wire.PermRead, "ip", "10.0.0.0/8")}, []Ident{{"ip", "10.0.0.1:5555"}}, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "ip", "10.0.0.0/8")}, []Ident{{"ip", "::ffff:10.0.0.1"}}, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "ip", "10.0.0.0/8")}, []Ident{{"ip", "fe80::1"}}, wire.PermRead, false},
		{[]wire.ACL{A(wire.PermRead, "ip", "127.0.0.1")}, []Ident{{"ip", "127.0.0.1"}}, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "ip", "127.0.0.1")}, []Ident{{"ip", "127.0.0.2"}}, wire.PermRead, false},
		{[]wire.ACL{A(wire.PermRead, "ip", "2001:db8::/32")}, []Ident{{"ip", "2001:db8::7"}}, wire.PermRead, true},
		{[]wire.ACL{A(wire.PermRead, "ip", "garbage")}, []Ident{{"ip", "garbage"}}, wire.PermRead, false},
		{[]wire.ACL{A(wire.PermRead, "world", "someone")}, nil, wire.PermRead, false},
	}
	for i, c := range cases {
		if got := s.Allowed(c.acl, c.idents, c.perm); got != c.want {
			t.Errorf("case %d: Allowed(%v, %v, %v) = %v", i, c.acl, c.idents, c.perm, got)
		}
	}
}

func TestValidateACL(t *testing.T) {
	d := DigestID("u", "p")
	ids := []Ident{{SchemeIP, "1.2.3.4"}, {SchemeDigest, d}, {SchemeDigest, DigestID("v", "q")}}
	got, err := ValidateACL([]wire.ACL{A(wire.PermRead, "auth", ""), A(wire.PermRead, "world", "anyone"), A(wire.PermRead, "world", "anyone")}, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.ACL{A(wire.PermRead, SchemeDigest, d), A(wire.PermRead, SchemeDigest, DigestID("v", "q")), A(wire.PermRead, "world", "anyone")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range [][]wire.ACL{
		nil,
		{A(wire.PermAll, "auth", "")}, // with only an ip ident below
		{A(wire.PermAll, "digest", "nocolon")},
		{A(wire.PermAll, "digest", "a:b:c")},
		{A(wire.PermAll, "digest", ":b")},
		{A(wire.PermAll, "ip", "1.2.3")},
		{A(wire.PermAll, "sasl", "x")},
		{A(wire.PermAll|0x40, "world", "anyone")},
	} {
		if _, err := ValidateACL(bad, ids[:1]); wire.CodeOf(err) != wire.InvalidACL {
			t.Errorf("ValidateACL(%v) = %v, want InvalidACL", bad, err)
		}
	}
	if DigestID("super", "test") != "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" {
		t.Errorf("DigestID = %s", DigestID("super", "test"))
	}
}

func TestMulti(t *testing.T) {
	h := newHarness(t, Config{})
	h.createSession(3) // 1
	runSteps(t, h, []step{
		{op: mkCreate("/m", "", "")}, // 2
		// 3: all at one zxid; later ops see earlier ones
		{op: mkMulti(
			mkCreate("/m/a", "1", ""),
			mkCreate("/m/s-", "", wire.ModeEphemeralSequential),
			mkCreate("/m/s-", "", wire.ModePersistentSequential),
			mkSet("/m/a", "22", 0),
			mkCheck("/m/a", 1),
			mkDelete("/m/s-0000000002", 0),
		), sess: 3,
			multi:   []wire.Code{"", "", "", "", "", ""},
			changes: "NodeCreated /m/a; NodeChildrenChanged /m; NodeCreated /m/s-0000000001; NodeChildrenChanged /m; NodeCreated /m/s-0000000002; NodeChildrenChanged /m; NodeDataChanged /m/a; NodeDeleted /m/s-0000000002; NodeChildrenChanged /m",
			nodes: map[string]S{
				"/m":              {cz: 2, mz: 2, pz: 3, ct: 2000, mt: 2000, cv: 4, nc: 2},
				"/m/a":            {cz: 3, mz: 3, pz: 3, ct: 3000, mt: 3000, v: 1, dl: 2},
				"/m/s-0000000001": {cz: 3, mz: 3, pz: 3, ct: 3000, mt: 3000, eo: 3},
			},
			gone: []string{"/m/s-0000000002"}},
		// 4: fails at op 2: nothing applies
		{op: mkMulti(
			mkCreate("/m/b", "", ""),
			mkSet("/m/a", "x", -1),
			mkCheck("/m/a", 7),
			mkDelete("/m/a", -1),
		), err: wire.BadVersion, changes: "-",
			multi: []wire.Code{"", "", wire.BadVersion, wire.RuntimeInconsistency},
			nodes: map[string]S{
				"/m":   {cz: 2, mz: 2, pz: 3, ct: 2000, mt: 2000, cv: 4, nc: 2},
				"/m/a": {cz: 3, mz: 3, pz: 3, ct: 3000, mt: 3000, v: 1, dl: 2},
			},
			gone: []string{"/m/b"}},
		// 5: a failed multi consumed no sequence number
		{op: mkMulti(mkCreate("/m/s-", "", wire.ModePersistentSequential), mkCreate("/nope/x", "", "")),
			err: wire.NoNode, multi: []wire.Code{"", wire.NoNode}},
		{op: mkMulti(mkCreate("/m/s-", "", wire.ModePersistentSequential)), multi: []wire.Code{""},
			nodes: map[string]S{"/m": {cz: 2, mz: 2, pz: 6, ct: 2000, mt: 2000, cv: 5, nc: 3}}},
		{op: mkMulti(), changes: "-", multi: []wire.Code{}},
		{op: mkMulti(mkCheck("/m", -1), mkMulti()), err: wire.BadArguments, multi: []wire.Code{"", wire.BadArguments}},
		{op: mkMulti(mkSetACL("/m", wire.OpenACL(), -1)), err: wire.BadArguments, multi: []wire.Code{wire.BadArguments}},
		{op: mkMulti(Op{Kind: OpCreateSession, SessionID: 9, TimeoutMs: 1}, mkCheck("/m", -1)), err: wire.BadArguments,
			multi: []wire.Code{wire.BadArguments, wire.RuntimeInconsistency}},
		// create then delete of the same node, and delete then re-create
		{op: mkMulti(mkCreate("/m/t", "", ""), mkDelete("/m/t", -1), mkDelete("/m/a", -1), mkCreate("/m/a", "new", "")),
			nodes: map[string]S{"/m/a": {cz: 11, mz: 11, pz: 11, ct: 11000, mt: 11000, dl: 3},
				"/m": {cz: 2, mz: 2, pz: 11, ct: 2000, mt: 2000, cv: 9, nc: 3}},
			gone: []string{"/m/t"}},
	})
	o := h.apply(Entry{Session: 3, TimeMs: 12000, Op: mkMulti(mkCreate("/m/r", "", ""), mkSet("/m/r", "x", -1), mkCheck("/m/r", 1), mkDelete("/m/r", 1))})
	want := Result{Kind: OpMulti, Multi: []Result{
		{Kind: OpCreate, Path: "/m/r", Stat: &wire.Stat{Czxid: 12, Mzxid: 12, Pzxid: 12, Ctime: 12000, Mtime: 12000}},
		{Kind: OpSet, Stat: &wire.Stat{Czxid: 12, Mzxid: 12, Pzxid: 12, Ctime: 12000, Mtime: 12000, Version: 1, DataLength: 1}},
		{Kind: OpCheck},
		{Kind: OpDelete},
	}}
	if !resultsEqual(o.Result, want) {
		t.Errorf("multi result\n  got  %s\n  want %s", fmtResult(o.Result), fmtResult(want))
	}
	if s, _ := h.s.Session(3); s.Ephemerals != 1 {
		t.Errorf("ephemerals %d, want 1", s.Ephemerals)
	}
}

func TestTimeNeverRunsBack(t *testing.T) {
	h := newHarness(t, Config{})
	runSteps(t, h, []step{
		{op: mkCreate("/a", "", ""), time: 5000, stat: &S{cz: 1, mz: 1, pz: 1, ct: 5000, mt: 5000}},
		{op: mkCreate("/b", "", ""), time: 10, stat: &S{cz: 2, mz: 2, pz: 2, ct: 5000, mt: 5000}},
		{op: mkSet("/b", "", -1), time: 7000, stat: &S{cz: 2, mz: 3, pz: 2, ct: 5000, mt: 7000, v: 1}},
	})
	if got := h.s.LastTimeMs(); got != 7000 {
		t.Errorf("LastTimeMs %d", got)
	}
}
