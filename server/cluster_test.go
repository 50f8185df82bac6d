package server_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

func startCluster(t *testing.T, n int, args ...string) *testcluster.Cluster {
	t.Helper()
	c := testcluster.Start(t, n, testcluster.Options{Args: args})
	c.Leader()
	t.Cleanup(func() {
		if !t.Failed() {
			c.AssertConverged()
		}
	})
	return c
}

func TestClusterWriteVisibleOnEveryServer(t *testing.T) {
	cl := startCluster(t, 3)
	var conns []*testcluster.RawConn
	for _, nd := range cl.Nodes {
		conns = append(conns, testcluster.Connect(t, nd.ClientAddr()))
	}
	for i, c := range conns {
		c.MustCall(create(fmt.Sprintf("/from%d", i+1), fmt.Sprint(i+1), wire.ModePersistent))
	}
	for _, c := range conns {
		c.MustCall(req(wire.OpSync, "/"))
		for i := range conns {
			g := c.MustCall(wire.Request{Op: wire.OpGet, Path: fmt.Sprintf("/from%d", i+1), Local: true})
			if string(g.Data) != fmt.Sprint(i+1) {
				t.Fatalf("data %q", g.Data)
			}
		}
	}
	// Linearizable reads (the default) see a write made on another server
	// without a sync.
	conns[0].MustCall(wire.Request{Op: wire.OpSet, Path: "/from1", Data: []byte("new"), Version: -1})
	for _, c := range conns[1:] {
		if g := c.MustCall(req(wire.OpGet, "/from1")); string(g.Data) != "new" {
			t.Fatalf("linearizable read on another server: %q", g.Data)
		}
	}
	// Sessions are shared: an ephemeral made through one server is owned by
	// a session every server knows.
	// Any member's status shows every member, its role and applied index.
	testcluster.WaitFor(t, 10*time.Second, "a status with every member's applied index", func() bool {
		st, err := cl.Nodes[2].Status()
		if err != nil || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if !m.Reachable || m.Applied == 0 || m.Role != "voter" || m.ClientAddr == "" {
				return false
			}
		}
		return true
	})
	conns[1].MustCall(create("/eph", "", wire.ModeEphemeral))
	conns[1].MustCall(wire.Request{Op: wire.OpClose})
	if r := conns[2].Call(req(wire.OpExists, "/eph")); r.Err != wire.NoNode {
		t.Fatalf("ephemeral of a closed session seen on another server: %s", r.Err)
	}
}

// writers runs n clients creating sequential nodes until stop, recording
// every acknowledged path.
type writers struct {
	mu      sync.Mutex
	acked   map[string]bool
	lastAck atomic.Int64 // unix nanos of the last ack
	errs    atomic.Int64
	wg      sync.WaitGroup
	stop    chan struct{}
	cancel  context.CancelFunc
}

func startWriters(t *testing.T, addrs []string, n int, prefix string) *writers {
	t.Helper()
	w := &writers{acked: map[string]bool{}, stop: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i := 0; i < n; i++ {
		c, err := client.Connect(ctx, addrs, client.WithSessionTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, _, err := c.Create(ctx, prefix, nil, client.ModePersistent); err != nil && !errors.Is(err, client.ErrNodeExists) {
				t.Fatal(err)
			}
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer c.Close()
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				p, _, err := c.Create(cctx, prefix+"/w-", nil, client.ModePersistentSequential)
				cancel()
				if err != nil {
					w.errs.Add(1)
					continue
				}
				w.mu.Lock()
				w.acked[p] = true
				w.mu.Unlock()
				w.lastAck.Store(time.Now().UnixNano())
			}
		}()
	}
	return w
}

func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writers) halt() map[string]bool {
	close(w.stop)
	w.cancel()
	w.wg.Wait()
	return w.acked
}

// checkAcked verifies every acknowledged path exists, through addr.
func checkAcked(t *testing.T, addr, prefix string, acked map[string]bool) {
	t.Helper()
	c := testcluster.Connect(t, addr)
	c.MustCall(req(wire.OpSync, "/"))
	ch := c.MustCall(req(wire.OpChildren, prefix))
	have := map[string]bool{}
	for _, n := range ch.Children {
		have[prefix+"/"+n] = true
	}
	for p := range acked {
		if !have[p] {
			t.Fatalf("acknowledged %s is lost (%d acked, %d present)", p, len(acked), len(have))
		}
	}
}

func TestClusterKillLeaderUnderLoad(t *testing.T) {
	cl := startCluster(t, 3)
	ctx := context.Background()
	addrs := cl.ClientAddrs()
	w := startWriters(t, addrs, 4, "/load")

	// A session with an ephemeral and a persistent watch, connected to the
	// leader so that it must move.
	leader := cl.Leader()
	holder, err := client.Connect(ctx, []string{leader.ClientAddr()}, client.WithSessionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	// Give it the other servers to fail over to.
	holder.Close()
	holder, err = client.Connect(ctx, append([]string{leader.ClientAddr()}, addrs...), client.WithSessionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, _, err := holder.Create(ctx, "/holder", nil, client.ModeEphemeral); err != nil {
		t.Fatal(err)
	}
	watcher, err := holder.AddWatch(ctx, "/load", client.WatchPersistent)
	if err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 30*time.Second, "load before the fault", func() bool { return w.count() >= 200 })

	killed := time.Now()
	leader.Kill()
	testcluster.WaitFor(t, 30*time.Second, "a write acknowledged after the kill", func() bool {
		return w.lastAck.Load() > killed.UnixNano()
	})
	t.Logf("first acknowledged write %v after kill -9 of the leader", time.Unix(0, w.lastAck.Load()).Sub(killed))
	base := w.count()
	testcluster.WaitFor(t, 30*time.Second, "load after the fault", func() bool { return w.count() >= base+200 })

	// The holder's session moved with its ephemeral, and its watch still fires.
	if ok, st, err := holder.Exists(ctx, "/holder"); err != nil || !ok || st.EphemeralOwner != holder.SessionID() {
		t.Fatalf("ephemeral after the leader died: %v %+v %v", ok, st, err)
	}
	drained := 0
	for len(watcher.Events()) > 0 {
		<-watcher.Events()
		drained++
	}
	if _, _, err := holder.Create(ctx, "/load/after", nil, client.ModePersistent); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for found := false; !found; {
		select {
		case ev := <-watcher.Events():
			found = ev.Type == client.EventNodeChildrenChanged
		case <-timeout:
			t.Fatal("the persistent watch stopped firing after the failover")
		}
	}
	acked := w.halt()
	survivor := cl.Leader()
	checkAcked(t, survivor.ClientAddr(), "/load", acked)
	leader.Start()
}

func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	cl := startCluster(t, 3, "--snapshot-entries", "100", "--history-entries", "20")
	leader := cl.Leader()
	follower := cl.Other(leader)
	follower.Kill()
	c := testcluster.Connect(t, leader.ClientAddr())
	c.MustCall(create("/snap", "", wire.ModePersistent))
	var xids []int64
	for i := 0; i < 600; i++ {
		xids = append(xids, c.Send(create(fmt.Sprintf("/snap/n%d", i), fmt.Sprint(i), wire.ModePersistent)))
	}
	for _, x := range xids {
		if r := c.Recv(x); r.Err != wire.OK {
			t.Fatalf("create: %s", r.Err)
		}
	}
	last := c.MustCall(wire.Request{Op: wire.OpPing})
	follower.Start()
	follower.WaitReady()
	testcluster.WaitFor(t, 30*time.Second, "the follower to catch up", func() bool {
		applied, _, err := follower.Digest()
		return err == nil && int64(applied) >= last.Zxid
	})
	// A connection opened while the restore still sorts out the old ones
	// is told to resume too (4003): connect once that is done.
	testcluster.WaitFor(t, 30*time.Second, "the restore to finish", func() bool {
		return follower.LogContains("snapshot restore: client connections told to resume")
	})
	f := testcluster.Connect(t, follower.ClientAddr())
	f.MustCall(req(wire.OpSync, "/"))
	ch := f.MustCall(wire.Request{Op: wire.OpChildren, Path: "/snap", Local: true})
	if len(ch.Children) != 600 {
		t.Fatalf("the follower has %d of 600 nodes", len(ch.Children))
	}
	if !follower.LogContains("state restored from a snapshot") {
		t.Fatal("the follower caught up without a snapshot")
	}
	if last.Zxid < 600 {
		t.Fatalf("zxid %d", last.Zxid)
	}
}

// A follower that catches up by snapshot keeps the client connections the
// jump cannot have misled, and sends the others away to resume (4003): one
// with a watch, and one whose session the snapshot closed. A read waiting
// for a node that the snapshot no longer has is answered.
func TestSnapshotRestoreClosesOnlyMisledConnections(t *testing.T) {
	// A long election timeout keeps the cut-off follower from giving up on
	// its leader (and closing every connection) while the others move on.
	cl := startCluster(t, 3, "--snapshot-entries", "100", "--history-entries", "20",
		"--election-ticks", "30", "--test-hooks")
	leader := cl.Leader()
	follower := cl.Other(leader)
	var others []uint64
	for _, nd := range cl.Nodes {
		if nd != follower {
			others = append(others, nd.ID)
		}
	}

	c := testcluster.Connect(t, leader.ClientAddr())
	c.MustCall(create("/snap", "", wire.ModePersistent))
	c.MustCall(create("/gone", "", wire.ModePersistent))
	last := c.MustCall(wire.Request{Op: wire.OpPing})
	testcluster.WaitFor(t, 30*time.Second, "the follower to apply /snap", func() bool {
		applied, _, err := follower.Digest()
		return err == nil && int64(applied) >= last.Zxid
	})
	// The raw connections send no heartbeats: a long timeout keeps plain's
	// session alive through the test.
	plain := testcluster.Dial(t, follower.ClientAddr())
	plain.Connect(60000)
	watcher := testcluster.Connect(t, follower.ClientAddr())
	if r := watcher.Call(wire.Request{Op: wire.OpExists, Path: "/w", Watch: true}); r.Err != wire.NoNode {
		t.Fatalf("exists /w with a watch: %s", r.Err)
	}
	moved := testcluster.Connect(t, follower.ClientAddr())
	waiter := testcluster.Dial(t, follower.ClientAddr())
	waiter.Connect(60000)
	parked := waiter.Send(wire.Request{Op: wire.OpExists, Path: "/gone", WaitGone: "/gone", Local: true, Version: -1})
	testcluster.WaitFor(t, 30*time.Second, "the read to wait on the follower", func() bool {
		m, err := testcluster.Metrics(follower.ClientAddr())
		return err == nil && m["coord_parked_reads_total"] == 1
	})

	follower.DropPeers(others...)
	for _, nd := range cl.Nodes {
		if nd != follower {
			nd.DropPeers(follower.ID)
		}
	}
	// moved's session goes on through the leader and ends there; its old
	// connection on the follower is left behind.
	m2 := testcluster.Dial(t, leader.ClientAddr())
	if r := m2.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000, SessionID: moved.Session, Password: moved.Password}); r.Err != wire.OK {
		t.Fatalf("resume on the leader: %s %s", r.Err, r.Msg)
	}
	m2.MustCall(wire.Request{Op: wire.OpClose})
	c.MustCall(wire.Request{Op: wire.OpDelete, Path: "/gone", Version: -1})
	var xids []int64
	for i := 0; i < 600; i++ {
		xids = append(xids, c.Send(create(fmt.Sprintf("/snap/n%d", i), "", wire.ModePersistent)))
	}
	for _, x := range xids {
		if r := c.Recv(x); r.Err != wire.OK {
			t.Fatalf("create: %s", r.Err)
		}
	}
	last = c.MustCall(wire.Request{Op: wire.OpPing})
	for _, nd := range cl.Nodes {
		nd.DropPeers()
	}
	testcluster.WaitFor(t, 30*time.Second, "the follower to catch up", func() bool {
		applied, _, err := follower.Digest()
		return err == nil && int64(applied) >= last.Zxid
	})
	testcluster.WaitFor(t, 30*time.Second, "the follower's log to report the snapshot", func() bool {
		return follower.LogContains("snapshot restore: client connections told to resume")
	})

	// The deletion was inside the snapshot: the waiting read is answered
	// all the same, and its connection kept.
	if r := waiter.Recv(parked); r.Err != wire.NoNode || !r.Gone {
		t.Fatalf("the read waiting for /gone: %+v", r)
	}
	// The plain connection still serves, and sees the state after the jump.
	if r := plain.MustCall(wire.Request{Op: wire.OpChildren, Path: "/snap", Local: true}); len(r.Children) != 600 {
		t.Fatalf("the kept connection lists %d of 600 nodes", len(r.Children))
	}
	for name, rc := range map[string]*testcluster.RawConn{"the watcher": watcher, "the moved session": moved} {
		for {
			r, err := rc.Read()
			if err != nil {
				if !websocket.IsCloseError(err, 4003) {
					t.Fatalf("%s: %v, want close 4003", name, err)
				}
				break
			}
			if r.Xid != wire.XidWatch {
				t.Fatalf("%s: unexpected frame %+v", name, r)
			}
		}
	}
}

func TestAddAndRemoveMembersUnderLoad(t *testing.T) {
	cl := startCluster(t, 3)
	w := startWriters(t, cl.ClientAddrs(), 3, "/mem")
	testcluster.WaitFor(t, 30*time.Second, "load", func() bool { return w.count() >= 100 })

	// A 4th server joins through any member, as a learner, and is promoted.
	n4 := cl.NewNode(4, "--join", cl.Nodes[1].ClientAddr())
	n4.Start()
	testcluster.WaitFor(t, 60*time.Second, "member 4 to become a voter", func() bool {
		st, err := cl.Nodes[1].Status()
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == 4 && m.Role == "voter" {
				return true
			}
		}
		return false
	})
	// Remove member 1 while writes continue.
	code, err := cl.Nodes[1].Post(http.MethodDelete, "/v1/members/1", nil, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("remove member 1: %d %v", code, err)
	}
	exited, _ := cl.Nodes[0].Exited()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the removed member kept running")
	}
	cl.Nodes[0].Kill() // reap it
	base := w.count()
	testcluster.WaitFor(t, 30*time.Second, "load after the change", func() bool { return w.count() >= base+100 })
	acked := w.halt()
	checkAcked(t, n4.ClientAddr(), "/mem", acked)
	st, _ := n4.Status()
	var ids []uint64
	for _, m := range st.Members {
		ids = append(ids, m.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if fmt.Sprint(ids) != "[2 3 4]" {
		t.Fatalf("members %v", ids)
	}
}

func TestMinorityCannotCommit(t *testing.T) {
	cl := startCluster(t, 3, "--test-hooks", "--request-timeout", "2s")
	leader := cl.Leader()
	var minority *testcluster.Node
	var majority []*testcluster.Node
	for _, nd := range cl.Nodes {
		if nd != leader && minority == nil {
			minority = nd
		} else {
			majority = append(majority, nd)
		}
	}
	mc := testcluster.Connect(t, minority.ClientAddr())
	mc.MustCall(create("/before", "", wire.ModePersistent))
	minority.DropPeers(majority[0].ID, majority[1].ID)
	for _, nd := range majority {
		nd.DropPeers(minority.ID)
	}
	if r := mc.Call(wire.Request{Op: wire.OpGet, Path: "/before", Local: true}); r.Err != wire.OK {
		t.Fatalf("a local read on the minority: %s", r.Err)
	}
	// A write and a linearizable read through the minority are never
	// answered OK: they fail, or the server sends the client away.
	wx := mc.Send(create("/cut", "", wire.ModePersistent))
	rx := mc.Send(req(wire.OpGet, "/before"))
	for {
		r, err := mc.Read()
		if err != nil {
			break // closed: "connect to another server"
		}
		if (r.Xid == wx || r.Xid == rx) && r.Err == wire.OK {
			t.Fatalf("the minority answered xid %d OK", r.Xid)
		}
		if r.Xid == rx {
			break
		}
	}
	// New sessions are sent away too.
	fresh := testcluster.Dial(t, minority.ClientAddr())
	if r := fresh.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 5000}); r.Err != wire.ConnectionLoss {
		t.Fatalf("connect to a leaderless server: %s", r.Err)
	}
	big := testcluster.Connect(t, leader.ClientAddr())
	big.MustCall(create("/majority", "", wire.ModePersistent))
	// Heal.
	for _, nd := range cl.Nodes {
		nd.DropPeers()
	}
	testcluster.WaitFor(t, 30*time.Second, "the minority to catch up", func() bool {
		mc2, err := testcluster.DialErr(t, minority.ClientAddr(), nil)
		if err != nil {
			return false
		}
		if mc2.Call(wire.Request{Op: wire.OpConnect, TimeoutMs: 10000}).Err != wire.OK {
			return false
		}
		return mc2.Call(req(wire.OpGet, "/majority")).Err == wire.OK
	})
	// (The write sent through the minority was never answered; it stays in
	// flight and may apply once the partition heals: that is allowed.)
}

func TestKillAllAndRestart(t *testing.T) {
	cl := startCluster(t, 3)
	w := startWriters(t, cl.ClientAddrs(), 3, "/all")
	testcluster.WaitFor(t, 30*time.Second, "load", func() bool { return w.count() >= 300 })
	for _, nd := range cl.Nodes {
		nd.Kill()
	}
	acked := w.halt()
	// A restart needs no flag beyond the data dir.
	cl.Nodes[0].SetArgs("--data-dir", cl.Nodes[0].DataDir)
	for _, nd := range cl.Nodes {
		nd.Start()
	}
	cl.WaitReady()
	cl.Leader()
	checkAcked(t, cl.Nodes[0].ClientAddr(), "/all", acked)
}

func TestWipedMemberIsRefused(t *testing.T) {
	cl := startCluster(t, 3)
	// Wait until every member published its data dir incarnation.
	testcluster.WaitFor(t, 30*time.Second, "members to publish themselves", func() bool {
		st, err := cl.Nodes[0].Status()
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ClientAddr == "" {
				return false
			}
		}
		return len(st.Members) == 3
	})
	n3 := cl.Nodes[2]
	n3.Kill()
	n3.Wipe()
	_ = n3.StartErr() // it may print ready before its peers refuse it
	exited, exitErr := n3.Exited()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("a member with a wiped data dir kept running under its old id")
	}
	if exitErr() == nil {
		t.Fatal("the refused member exited 0")
	}
	if !n3.LogContains("data dir was wiped") {
		t.Fatal("the refusal does not say why")
	}
	n3.Kill()
	// The cluster is unaffected.
	c := testcluster.Connect(t, cl.Nodes[0].ClientAddr())
	c.MustCall(create("/still", "", wire.ModePersistent))
	cl.Nodes = cl.Nodes[:2]
}

func TestStrangerPeerRejected(t *testing.T) {
	cl := startCluster(t, 3)
	conn, err := net.Dial("tcp", cl.Nodes[0].PeerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hello, _ := json.Marshal(map[string]any{"magic": "coord-peer/1", "cluster_id": 12345, "from": 2, "to": 1, "incarnation": 1})
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hello)+1))
	frame = append(frame, 1)
	frame = append(frame, hello...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [5]byte
	if _, err := conn.Read(hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
	if _, err := conn.Read(body); err != nil {
		t.Fatal(err)
	}
	if hdr[4] != 2 || !strings.Contains(string(body), `"ok":false`) || !strings.Contains(string(body), "cluster id") {
		t.Fatalf("a stranger got %d %s", hdr[4], body)
	}
	// And the connection is closed.
	if _, err := conn.Read(hdr[:]); err == nil {
		t.Fatal("the stranger's connection stayed open")
	}
}

func TestGracefulLeaderStopTransfersLeadership(t *testing.T) {
	cl := startCluster(t, 3)
	leader := cl.Leader()
	c := testcluster.Connect(t, cl.Nodes[(int(leader.ID))%3].ClientAddr())
	c.MustCall(create("/before-stop", "", wire.ModePersistent))
	leader.Stop() // SIGTERM; fails the test unless it exits 0
	if !leader.LogContains("starts to transfer leadership") {
		t.Fatal("the leader stopped without handing over leadership")
	}
	next := cl.Leader()
	if next == leader {
		t.Fatal("no new leader")
	}
	c.MustCall(create("/after-stop", "", wire.ModePersistent))
	leader.Start()
}
