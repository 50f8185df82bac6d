package client

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// wantErr fails the test unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
	var oe *OpError
	if !errors.As(err, &oe) {
		t.Fatalf("%s: %T is not an *OpError", what, err)
	}
}

// Every operation of PROTOCOL.md once, end to end against a real coordd,
// with the typed errors of its failures.
func TestIntegrationEveryOperation(t *testing.T) {
	cl := startCluster(t, 1)
	c := connect(t, cl.ClientAddrs())
	ctx := integrationCtx(t)
	sid := c.SessionID()

	t.Run("create modes", func(t *testing.T) {
		mustCreate(t, c, "/m")
		p, st, err := c.Create(ctx, "/m/p", []byte("d"), ModePersistent)
		if err != nil || p != "/m/p" || st.DataLength != 1 || st.EphemeralOwner != 0 {
			t.Fatalf("persistent: %q %+v %v", p, st, err)
		}
		p, st, err = c.Create(ctx, "/m/e", nil, ModeEphemeral)
		if err != nil || p != "/m/e" || st.EphemeralOwner != sid {
			t.Fatalf("ephemeral: %q %+v %v", p, st, err)
		}
		// Sequence numbers count every child ever created under /m.
		p, _, err = c.Create(ctx, "/m/ps-", nil, ModePersistentSequential)
		if err != nil || p != "/m/"+seqName("ps-", 2) {
			t.Fatalf("persistent sequential: %q %v", p, err)
		}
		p, st, err = c.Create(ctx, "/m/es-", nil, ModeEphemeralSequential)
		if err != nil || p != "/m/"+seqName("es-", 3) || st.EphemeralOwner != sid {
			t.Fatalf("ephemeral sequential: %q %+v %v", p, st, err)
		}
		if _, _, err := c.Create(ctx, "/m/ctr", nil, ModeContainer); err != nil {
			t.Fatalf("container: %v", err)
		}
		if _, _, err := c.Create(ctx, "/m/ttl", nil, ModePersistentTTL, WithTTL(time.Hour)); err != nil {
			t.Fatalf("ttl: %v", err)
		}
		p, _, err = c.Create(ctx, "/m/st-", nil, ModePersistentSequentialTTL, WithTTL(time.Hour))
		if err != nil || p != "/m/"+seqName("st-", 6) {
			t.Fatalf("sequential ttl: %q %v", p, err)
		}

		_, _, err = c.Create(ctx, "/m/p", nil, ModePersistent)
		wantErr(t, "create existing", err, ErrNodeExists)
		_, _, err = c.Create(ctx, "/nope/x", nil, ModePersistent)
		wantErr(t, "create without parent", err, ErrNoNode)
		_, _, err = c.Create(ctx, "/m/e/x", nil, ModePersistent)
		wantErr(t, "create under ephemeral", err, ErrNoChildrenForEphemerals)
		_, _, err = c.Create(ctx, "/m/bad/", nil, ModePersistent)
		wantErr(t, "bad path", err, ErrBadArguments)
		_, _, err = c.Create(ctx, "/m/t2", nil, ModePersistentTTL)
		wantErr(t, "ttl mode without ttl", err, ErrBadArguments)
	})

	t.Run("container is reaped", func(t *testing.T) {
		mustCreate(t, c, "/m/ctr/child")
		ok, _, gone, err := c.ExistsW(ctx, "/m/ctr")
		if err != nil || !ok {
			t.Fatalf("exists container: %v %v", ok, err)
		}
		if err := c.Delete(ctx, "/m/ctr/child", AnyVersion); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, gone, EventNodeDeleted, "/m/ctr")
	})

	t.Run("get set exists delete", func(t *testing.T) {
		data, st, err := c.Get(ctx, "/m/p")
		if err != nil || string(data) != "d" || st.Version != 0 {
			t.Fatalf("get: %q %+v %v", data, st, err)
		}
		st, err = c.Set(ctx, "/m/p", []byte("d2"), 0)
		if err != nil || st.Version != 1 {
			t.Fatalf("set: %+v %v", st, err)
		}
		_, err = c.Set(ctx, "/m/p", nil, 0)
		wantErr(t, "set bad version", err, ErrBadVersion)
		_, _, err = c.Get(ctx, "/m/none")
		wantErr(t, "get missing", err, ErrNoNode)
		ok, st, err := c.Exists(ctx, "/m/p")
		if err != nil || !ok || st.Version != 1 {
			t.Fatalf("exists: %v %+v %v", ok, st, err)
		}
		ok, st, err = c.Exists(ctx, "/m/none", Local())
		if err != nil || ok || st != nil {
			t.Fatalf("exists missing: %v %+v %v", ok, st, err)
		}
		wantErr(t, "delete bad version", c.Delete(ctx, "/m/p", 7), ErrBadVersion)
		wantErr(t, "delete not empty", c.Delete(ctx, "/m", AnyVersion), ErrNotEmpty)
		wantErr(t, "delete missing", c.Delete(ctx, "/m/none", AnyVersion), ErrNoNode)
		if err := c.Delete(ctx, "/m/p", 1); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("children paging", func(t *testing.T) {
		mustCreate(t, c, "/kids")
		var want []string
		for i := range 25 {
			p, _, err := c.Create(ctx, "/kids/k-", nil, ModePersistentSequential)
			if err != nil {
				t.Fatal(err)
			}
			if p != "/kids/"+seqName("k-", i) {
				t.Fatalf("child %d is %s", i, p)
			}
			want = append(want, seqName("k-", i))
		}
		all, st, err := c.Children(ctx, "/kids")
		if err != nil || !slices.Equal(all, want) || st.NumChildren != 25 {
			t.Fatalf("children: %v %+v %v", all, st, err)
		}
		var paged []string
		after := ""
		for {
			page, _, err := c.Children(ctx, "/kids", Page(10, after))
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if len(page) < 10 {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("paged %v", paged)
		}
		_, _, err = c.Children(ctx, "/none")
		wantErr(t, "children of missing", err, ErrNoNode)
	})

	t.Run("acl and auth", func(t *testing.T) {
		acl := []ACL{DigestACL(PermAll, "alice", "secret"), {Perms: PermRead, Scheme: "world", ID: "anyone"}}
		if _, _, err := c.Create(ctx, "/secured", []byte("s"), ModePersistent, WithACL(acl...)); err != nil {
			t.Fatal(err)
		}
		// Without admin permission, the server hides the password hashes.
		got, st, err := c.GetACL(ctx, "/secured")
		if err != nil || len(got) != 2 || got[0].ID != "alice:x" || got[1] != acl[1] || st.Aversion != 0 {
			t.Fatalf("get_acl: %v %+v %v", got, st, err)
		}
		_, err = c.Set(ctx, "/secured", []byte("x"), AnyVersion)
		wantErr(t, "set without auth", err, ErrNoAuth)
		_, err = c.SetACL(ctx, "/secured", OpenACL(), AnyVersion)
		wantErr(t, "set_acl without auth", err, ErrNoAuth)
		wantErr(t, "auth with unknown scheme", c.AddAuth(ctx, "kerberos", "x"), ErrAuthFailed)
		if err := c.AddAuth(ctx, "digest", "alice:secret"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, "/secured", []byte("x"), AnyVersion); err != nil {
			t.Fatalf("set with auth: %v", err)
		}
		got, _, err = c.GetACL(ctx, "/secured")
		if err != nil || !slices.Equal(got, acl) {
			t.Fatalf("get_acl as admin: %v %v", got, err)
		}
		st, err = c.SetACL(ctx, "/secured", OpenACL(), 0)
		if err != nil || st.Aversion != 1 {
			t.Fatalf("set_acl: %+v %v", st, err)
		}
		_, err = c.SetACL(ctx, "/secured", OpenACL(), 0)
		wantErr(t, "set_acl bad version", err, ErrBadVersion)
		_, err = c.SetACL(ctx, "/secured", []ACL{{Perms: PermAll, Scheme: "world", ID: "everyone"}}, AnyVersion)
		wantErr(t, "set_acl invalid", err, ErrInvalidACL)
	})

	t.Run("sync", func(t *testing.T) {
		if err := c.Sync(ctx, "/"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("multi", func(t *testing.T) {
		mustCreate(t, c, "/mu")
		res, err := c.Multi(ctx, Ops().
			Check("/mu", 0).
			Create("/mu/a", []byte("1"), ModePersistent).
			Create("/mu/s-", nil, ModePersistentSequential).
			Set("/mu", []byte("2 children"), AnyVersion))
		if err != nil || len(res) != 4 || res[1].Path != "/mu/a" || res[2].Path != "/mu/"+seqName("s-", 1) || res[3].Stat.Version != 1 {
			t.Fatalf("multi: %+v %v", res, err)
		}
		res, err = c.Multi(ctx, Ops().
			Delete("/mu/a", AnyVersion).
			Check("/mu", 0). // stale: the version is 1
			Create("/mu/b", nil, ModePersistent))
		wantErr(t, "multi with a failing check", err, ErrBadVersion)
		var oe *OpError
		if errors.As(err, &oe); oe.Path != "/mu" {
			t.Fatalf("multi failure names %q", oe.Path)
		}
		if len(res) != 3 || res[0].Err != nil || !errors.Is(res[1].Err, ErrBadVersion) || !errors.Is(res[2].Err, ErrRuntimeInconsistency) {
			t.Fatalf("multi results %+v", res)
		}
		if !exists(t, c, "/mu/a") || exists(t, c, "/mu/b") {
			t.Fatal("a failed multi was not rolled back")
		}
	})

	t.Run("watches", func(t *testing.T) {
		mustCreate(t, c, "/w")
		w, err := c.AddWatch(ctx, "/w", WatchPersistent)
		if err != nil {
			t.Fatal(err)
		}
		_, _, oneShot, err := c.GetW(ctx, "/w")
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, c, "/w/x")
		wantEvent(t, w.Events(), EventNodeChildrenChanged, "/w")
		if err := c.RemoveWatches(ctx, "/w", WatchTypeData); err != nil {
			t.Fatal(err)
		}
		ev := wantEvent(t, oneShot, EventNotWatching, "/w")
		if !errors.Is(ev.Err, ErrWatchRemoved) {
			t.Fatalf("removed one-shot: %+v", ev)
		}
		wantErr(t, "remove absent watch", c.RemoveWatches(ctx, "/w", WatchTypeChildren), ErrNoWatcher)
		if err := w.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		recvClosed(t, w.Events())
		// Nothing is watched any more: the server says so.
		wantErr(t, "remove removed watch", c.RemoveWatches(ctx, "/w", WatchTypeAny), ErrNoWatcher)
	})

	t.Run("data limit", func(t *testing.T) {
		_, _, err := c.Create(ctx, "/big", []byte(strings.Repeat("x", 1<<20+1)), ModePersistent)
		wantErr(t, "too much data", err, ErrBadArguments)
	})

	t.Run("close deletes ephemerals", func(t *testing.T) {
		c2 := connect(t, cl.ClientAddrs())
		if _, _, err := c2.Create(ctx, "/eph2", nil, ModeEphemeral); err != nil {
			t.Fatal(err)
		}
		c2.Close()
		if exists(t, c, "/eph2") {
			t.Fatal("ephemeral outlived its closed session")
		}
		_, _, err := c2.Get(ctx, "/")
		wantErr(t, "get after close", err, ErrClosed)
	})
}
