package server_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

func startOne(t *testing.T, args ...string) *testcluster.Node {
	t.Helper()
	return testcluster.Start(t, 1, testcluster.Options{Args: args}).Nodes[0]
}

func req(op, path string) wire.Request { return wire.Request{Op: op, Path: path, Version: -1} }

func create(path, data string, mode wire.Mode) wire.Request {
	return wire.Request{Op: wire.OpCreate, Path: path, Data: []byte(data), Mode: string(mode)}
}

func TestCreateGetSetDeleteStat(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())

	r := c.MustCall(create("/a", "hello", wire.ModePersistent))
	if r.Path != "/a" || r.Stat == nil {
		t.Fatalf("create: %+v", r)
	}
	z := r.Zxid
	st := *r.Stat
	if st.Czxid != z || st.Mzxid != z || st.Pzxid != z || st.Version != 0 || st.Cversion != 0 ||
		st.Aversion != 0 || st.EphemeralOwner != 0 || st.DataLength != 5 || st.NumChildren != 0 || st.Ctime == 0 || st.Ctime != st.Mtime {
		t.Fatalf("stat after create: %+v (zxid %d)", st, z)
	}

	g := c.MustCall(req(wire.OpGet, "/a"))
	if string(g.Data) != "hello" || *g.Stat != st {
		t.Fatalf("get: %q %+v", g.Data, g.Stat)
	}

	s := c.MustCall(wire.Request{Op: wire.OpSet, Path: "/a", Data: []byte("hi"), Version: 0})
	if s.Stat.Version != 1 || s.Stat.Mzxid != s.Zxid || s.Stat.Czxid != z || s.Stat.DataLength != 2 || s.Stat.Mtime < st.Mtime {
		t.Fatalf("stat after set: %+v", s.Stat)
	}
	if r := c.Call(wire.Request{Op: wire.OpSet, Path: "/a", Data: []byte("x"), Version: 0}); r.Err != wire.BadVersion {
		t.Fatalf("set with stale version: %s", r.Err)
	}

	// Children change the parent's cversion, pzxid and num_children only.
	ch := c.MustCall(create("/a/b", "", wire.ModePersistent))
	e := c.MustCall(req(wire.OpExists, "/a"))
	if e.Stat.Cversion != 1 || e.Stat.Pzxid != ch.Zxid || e.Stat.NumChildren != 1 || e.Stat.Version != 1 || e.Stat.Mzxid != s.Zxid {
		t.Fatalf("parent stat after child create: %+v", e.Stat)
	}
	if r := c.Call(wire.Request{Op: wire.OpDelete, Path: "/a", Version: -1}); r.Err != wire.NotEmpty {
		t.Fatalf("delete non-empty: %s", r.Err)
	}
	if r := c.Call(wire.Request{Op: wire.OpDelete, Path: "/a/b", Version: 3}); r.Err != wire.BadVersion {
		t.Fatalf("delete with wrong version: %s", r.Err)
	}
	d := c.MustCall(wire.Request{Op: wire.OpDelete, Path: "/a/b", Version: 0})
	e = c.MustCall(req(wire.OpExists, "/a"))
	if e.Stat.Cversion != 2 || e.Stat.Pzxid != d.Zxid || e.Stat.NumChildren != 0 {
		t.Fatalf("parent stat after child delete: %+v", e.Stat)
	}
	if r := c.Call(req(wire.OpGet, "/a/b")); r.Err != wire.NoNode {
		t.Fatalf("get deleted: %s", r.Err)
	}
	if r := c.Call(req(wire.OpExists, "/a/b")); r.Err != wire.NoNode || r.Stat != nil {
		t.Fatalf("exists deleted: %+v", r)
	}
	if r := c.Call(create("/a", "", wire.ModePersistent)); r.Err != wire.NodeExists {
		t.Fatalf("create existing: %s", r.Err)
	}
	if r := c.Call(create("/missing/child", "", wire.ModePersistent)); r.Err != wire.NoNode {
		t.Fatalf("create under missing parent: %s", r.Err)
	}
	if r := c.Call(wire.Request{Op: wire.OpDelete, Path: "/nope", Version: -1}); r.Err != wire.NoNode {
		t.Fatalf("delete missing: %s", r.Err)
	}
}

func TestSequentialAndChildren(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	c.MustCall(create("/q", "", wire.ModePersistent))
	var names []string
	for i := 0; i < 3; i++ {
		r := c.MustCall(create("/q/item-", "", wire.ModePersistentSequential))
		names = append(names, r.Path)
	}
	want := []string{"/q/item-0000000000", "/q/item-0000000001", "/q/item-0000000002"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("sequential names %v, want %v", names, want)
	}
	// The sequence counts children ever created, not cversion (which also
	// counts deletes).
	c.MustCall(wire.Request{Op: wire.OpDelete, Path: names[0], Version: -1})
	r := c.MustCall(create("/q/item-", "", wire.ModePersistentSequential))
	if r.Path != "/q/item-0000000003" {
		t.Fatalf("after a delete the next sequential name is %s", r.Path)
	}
	// A sequential prefix may end with '/', as in ZooKeeper.
	c.MustCall(create("/q2", "", wire.ModePersistent))
	if r := c.MustCall(create("/q2/", "", wire.ModePersistentSequential)); r.Path != "/q2/0000000000" {
		t.Fatalf("sequential child of /q2/: %s", r.Path)
	}
	if r := c.Call(create("/q2/", "", wire.ModePersistent)); r.Err != wire.BadArguments {
		t.Fatalf("non-sequential trailing slash: %s", r.Err)
	}
	ch := c.MustCall(req(wire.OpChildren, "/q"))
	if fmt.Sprint(ch.Children) != "[item-0000000001 item-0000000002 item-0000000003]" {
		t.Fatalf("children: %v", ch.Children)
	}
	if ch.Stat.NumChildren != 3 || ch.Stat.Cversion != 5 {
		t.Fatalf("children stat: %+v", ch.Stat)
	}
	page := c.MustCall(wire.Request{Op: wire.OpChildren, Path: "/q", Limit: 1, After: "item-0000000001"})
	if fmt.Sprint(page.Children) != "[item-0000000002]" {
		t.Fatalf("children page: %v", page.Children)
	}
	// An empty node answers an empty list, not a missing field.
	c.MustCall(create("/empty", "", wire.ModePersistent))
	raw := rawCall(t, c, `{"xid":%d,"op":"children","path":"/empty"}`)
	if !strings.Contains(raw, `"children":[]`) {
		t.Fatalf("children of an empty node: %s", raw)
	}
}

// rawCall sends a frame built from format (with the xid filled in) and
// returns the raw answer.
func rawCall(t *testing.T, c *testcluster.RawConn, format string) string {
	t.Helper()
	xid := c.NextXid()
	c.SendRaw([]byte(fmt.Sprintf(format, xid)))
	for {
		b, err := c.ReadRaw()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if strings.HasPrefix(string(b), fmt.Sprintf(`{"xid":%d,`, xid)) {
			return string(b)
		}
	}
}

func TestEphemeralModes(t *testing.T) {
	nd := startOne(t)
	owner := testcluster.Connect(t, nd.ClientAddr())
	other := testcluster.Connect(t, nd.ClientAddr())
	r := owner.MustCall(create("/e", "x", wire.ModeEphemeral))
	if r.Stat.EphemeralOwner != owner.Session {
		t.Fatalf("ephemeral owner %s, want %s", r.Stat.EphemeralOwner, owner.Session)
	}
	if r := owner.Call(create("/e/child", "", wire.ModePersistent)); r.Err != wire.NoChildrenForEphemerals {
		t.Fatalf("child of ephemeral: %s", r.Err)
	}
	s := owner.MustCall(create("/es-", "", wire.ModeEphemeralSequential))
	if s.Path != "/es-0000000001" || s.Stat.EphemeralOwner != owner.Session {
		// The root already had /e created under it, so the counter is 1.
		t.Fatalf("ephemeral sequential: %s %+v", s.Path, s.Stat)
	}
	owner.MustCall(wire.Request{Op: wire.OpClose})
	for _, p := range []string{"/e", s.Path} {
		if r := other.Call(req(wire.OpExists, p)); r.Err != wire.NoNode {
			t.Fatalf("%s after its session closed: %s", p, r.Err)
		}
	}
}

func TestContainerAndTTLCreate(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	r := c.MustCall(create("/c", "", wire.ModeContainer))
	if r.Stat.EphemeralOwner != 0 {
		t.Fatalf("container owner: %+v", r.Stat)
	}
	if r := c.Call(create("/t", "", wire.ModePersistentTTL)); r.Err != wire.BadArguments {
		t.Fatalf("ttl mode without ttl_ms: %s", r.Err)
	}
	if r := c.Call(wire.Request{Op: wire.OpCreate, Path: "/p", Mode: "persistent", TTLMs: 100}); r.Err != wire.BadArguments {
		t.Fatalf("ttl_ms without a ttl mode: %s", r.Err)
	}
	tr := c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/t", Mode: string(wire.ModePersistentTTL), TTLMs: 60000})
	if tr.Stat.EphemeralOwner != 0 {
		t.Fatalf("ttl owner: %+v", tr.Stat)
	}
	sq := c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/t/s-", Mode: string(wire.ModePersistentSequentialTTL), TTLMs: 60000})
	if sq.Path != "/t/s-0000000000" {
		t.Fatalf("sequential ttl: %s", sq.Path)
	}
	if r := c.Call(wire.Request{Op: wire.OpCreate, Path: "/x", Mode: "bogus"}); r.Err != wire.BadArguments {
		t.Fatalf("unknown mode: %s", r.Err)
	}
}

func TestMulti(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	ok := c.MustCall(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{
		create("/m", "1", wire.ModePersistent),
		create("/m/a", "", wire.ModePersistent),
		{Op: wire.OpSet, Path: "/m", Data: []byte("2"), Version: 0},
		{Op: wire.OpCheck, Path: "/m", Version: 1},
	}})
	if len(ok.Results) != 4 || ok.Results[0].Path != "/m" || ok.Results[2].Stat == nil || ok.Results[2].Stat.Version != 1 {
		t.Fatalf("multi results: %+v", ok.Results)
	}
	for i, res := range ok.Results {
		if res.Err != wire.OK || res.Op != []string{"create", "create", "set", "check"}[i] {
			t.Fatalf("result %d: %+v", i, res)
		}
		if res.Stat != nil && res.Stat.Mzxid != ok.Zxid && i != 1 {
			t.Fatalf("result %d not at the multi's zxid %d: %+v", i, ok.Zxid, res.Stat)
		}
	}
	// A failing op rolls back the ones before it.
	bad := c.Call(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{
		create("/m/b", "", wire.ModePersistent),
		{Op: wire.OpDelete, Path: "/nope", Version: -1},
		{Op: wire.OpSet, Path: "/m", Data: []byte("3"), Version: -1},
	}})
	if bad.Err != wire.NoNode {
		t.Fatalf("failed multi err %s", bad.Err)
	}
	want := []wire.Code{wire.OK, wire.NoNode, wire.RuntimeInconsistency}
	for i, w := range want {
		if bad.Results[i].Err != w {
			t.Fatalf("failed multi result %d: %s, want %s", i, bad.Results[i].Err, w)
		}
	}
	if r := c.Call(req(wire.OpExists, "/m/b")); r.Err != wire.NoNode {
		t.Fatalf("rolled-back create is visible: %s", r.Err)
	}
	if g := c.MustCall(req(wire.OpGet, "/m")); string(g.Data) != "2" {
		t.Fatalf("rolled-back set is visible: %q", g.Data)
	}
	// Only create, delete, set and check may be in a multi, at most 128.
	if r := c.Call(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{create("/m/ok", "", wire.ModePersistent), {Op: wire.OpGet, Path: "/m"},
		create("/m/ok2", "", wire.ModePersistent)}}); r.Err != wire.BadArguments || len(r.Results) != 3 ||
		r.Results[0].Err != wire.OK || r.Results[1].Err != wire.BadArguments || r.Results[2].Err != wire.RuntimeInconsistency {
		t.Fatalf("get in multi: %+v", r)
	}
	var many []wire.Request
	for i := 0; i < 129; i++ {
		many = append(many, create(fmt.Sprintf("/many%d", i), "", wire.ModePersistent))
	}
	if r := c.Call(wire.Request{Op: wire.OpMulti, Ops: many}); r.Err != wire.BadArguments {
		t.Fatalf("multi over the cap: %s", r.Err)
	}
	if r := c.Call(req(wire.OpExists, "/many0")); r.Err != wire.NoNode {
		t.Fatalf("a refused multi applied something: %s", r.Err)
	}
	if r := c.MustCall(wire.Request{Op: wire.OpMulti, Ops: many[:128]}); len(r.Results) != 128 {
		t.Fatalf("multi at the cap: %d results", len(r.Results))
	}
}

func TestACLAndAuth(t *testing.T) {
	nd := startOne(t)
	alice := testcluster.Connect(t, nd.ClientAddr())
	eve := testcluster.Connect(t, nd.ClientAddr())
	alice.MustCall(wire.Request{Op: wire.OpAuth, Scheme: "digest", Credential: "alice:secret"})
	if r := eve.Call(wire.Request{Op: wire.OpAuth, Scheme: "kerberos", Credential: "x"}); r.Err != wire.AuthFailed {
		t.Fatalf("unknown scheme: %s", r.Err)
	}
	// "auth" expands to alice's digest identity.
	alice.MustCall(wire.Request{Op: wire.OpCreate, Path: "/secret", Data: []byte("s"), ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "auth"}}})
	acl := alice.MustCall(req(wire.OpGetACL, "/secret"))
	if len(acl.ACL) != 1 || acl.ACL[0].Scheme != "digest" || !strings.HasPrefix(acl.ACL[0].ID, "alice:") || acl.ACL[0].ID == "alice:x" {
		t.Fatalf("acl as its admin sees it: %+v", acl.ACL)
	}
	for _, op := range []wire.Request{req(wire.OpGet, "/secret"), req(wire.OpChildren, "/secret"), req(wire.OpGetACL, "/secret"),
		{Op: wire.OpSet, Path: "/secret", Version: -1}, create("/secret/x", "", wire.ModePersistent),
		{Op: wire.OpSetACL, Path: "/secret", ACL: wire.OpenACL(), Version: -1}} {
		if r := eve.Call(op); r.Err != wire.NoAuth {
			t.Fatalf("eve %s: %s", op.Op, r.Err)
		}
	}
	// exists needs no permission (as ZooKeeper).
	eve.MustCall(req(wire.OpExists, "/secret"))
	// A multi is checked op by op.
	if r := eve.Call(wire.Request{Op: wire.OpMulti, Ops: []wire.Request{create("/free", "", wire.ModePersistent),
		{Op: wire.OpSet, Path: "/secret", Version: -1}}}); r.Err != wire.NoAuth {
		t.Fatalf("multi with a forbidden op: %s", r.Err)
	}
	if r := eve.Call(req(wire.OpExists, "/free")); r.Err != wire.NoNode {
		t.Fatalf("the multi applied its allowed op: %s", r.Err)
	}
	// Readers without ADMIN never see a digest credential.
	alice.MustCall(wire.Request{Op: wire.OpSetACL, Path: "/secret", Version: 0, ACL: []wire.ACL{
		{Perms: wire.PermAll, Scheme: "digest", ID: acl.ACL[0].ID}, {Perms: wire.PermRead, Scheme: "world", ID: "anyone"}}})
	seen := eve.MustCall(req(wire.OpGetACL, "/secret"))
	if seen.ACL[0].ID != "alice:x" || seen.Stat.Aversion != 1 {
		t.Fatalf("eve sees %+v (stat %+v)", seen.ACL, seen.Stat)
	}
	if r := alice.Call(wire.Request{Op: wire.OpSetACL, Path: "/secret", Version: 0, ACL: wire.OpenACL()}); r.Err != wire.BadVersion {
		t.Fatalf("set_acl with a stale aversion: %s", r.Err)
	}
	if r := alice.Call(wire.Request{Op: wire.OpCreate, Path: "/bad", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "nope", ID: "x"}}}); r.Err != wire.InvalidACL {
		t.Fatalf("unknown acl scheme: %s", r.Err)
	}
	if r := eve.Call(wire.Request{Op: wire.OpCreate, Path: "/bad", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "auth"}}}); r.Err != wire.InvalidACL {
		t.Fatalf("auth acl without identities: %s", r.Err)
	}
	// The ip scheme matches the connection's own address.
	alice.MustCall(wire.Request{Op: wire.OpCreate, Path: "/local", ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "ip", ID: "127.0.0.0/8"}}})
	eve.MustCall(req(wire.OpGet, "/local"))
}

func TestSyncPingAndUnknownOp(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	if r := c.MustCall(req(wire.OpSync, "/")); r.Path != "/" {
		t.Fatalf("sync: %+v", r)
	}
	c.MustCall(wire.Request{Op: wire.OpPing})
	if r := c.Call(wire.Request{Op: "frobnicate"}); r.Err != wire.Unimplemented {
		t.Fatalf("unknown op: %s", r.Err)
	}
	// Local reads are answered from the applied state.
	c.MustCall(create("/l", "v", wire.ModePersistent))
	if r := c.MustCall(wire.Request{Op: wire.OpGet, Path: "/l", Local: true}); string(r.Data) != "v" {
		t.Fatalf("local get: %q", r.Data)
	}
}

func TestDataIsBase64(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	bin := []byte{0, 1, 2, 0xff, '"', '\n'}
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/bin", Data: bin})
	raw := rawCall(t, c, `{"xid":%d,"op":"get","path":"/bin"}`)
	if !strings.Contains(raw, `"data":"`+base64.StdEncoding.EncodeToString(bin)+`"`) {
		t.Fatalf("binary data on the wire: %s", raw)
	}
}
