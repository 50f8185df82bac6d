package raftstore

// Real raft.RawNodes on top of Stores: a single voter, then three wired in
// memory, driven through hundreds of proposals, compactions, a snapshot to
// a lagging follower, and restarts from the stores.

import (
	"fmt"
	"io"
	"log"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// testNode is one server: a Store on its own DB, a RawNode and a trivial
// state machine (the data of the applied entries, in order).
type testNode struct {
	id      uint64
	fs      vfs.FS
	db      *pebble.DB
	st      *Store
	rn      *raft.RawNode
	applied uint64
	cs      *raftpb.ConfState
	data    []string
	snaps   int // snapshots received
}

// testCluster routes messages between testNodes in memory.
type testCluster struct {
	t         *testing.T
	nodes     []*testNode
	queue     []*raftpb.Message
	isolated  map[uint64]bool
	committed map[uint64]*raftpb.Entry // every applied entry, by index: all nodes must agree
}

func newTestCluster(t *testing.T, n int) *testCluster {
	c := &testCluster{t: t, isolated: map[uint64]bool{}, committed: map[uint64]*raftpb.Entry{}}
	var peers []raft.Peer
	for id := uint64(1); id <= uint64(n); id++ {
		peers = append(peers, raft.Peer{ID: id})
	}
	for _, p := range peers {
		nd := &testNode{id: p.ID, fs: vfs.NewMem()}
		c.open(nd)
		if nd.st.Bootstrapped() {
			t.Fatal("fresh store is bootstrapped")
		}
		must(t, nd.rn.Bootstrap(peers))
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.db.Close()
		}
	})
	return c
}

// open opens nd's DB, Store and RawNode, restarting from whatever the
// Store holds.
func (c *testCluster) open(nd *testNode) {
	nd.db = openDB(c.t, nd.fs)
	st, err := Open(nd.db, Config{CacheEntries: 64})
	must(c.t, err)
	nd.st = st
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              nd.id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         st,
		Applied:         nd.applied,
		MaxSizePerMsg:   2048,
		MaxInflightMsgs: 16,
		Logger:          &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	must(c.t, err)
	nd.rn = rn
}

// restart closes nd's DB and reopens everything from it, as after a clean
// shutdown (the state machine, which coord keeps in the same DB, survives
// in nd). It checks that raft resumes with the same hard state and log.
func (c *testCluster) restart(nd *testNode) {
	c.t.Helper()
	before := dump(c.t, nd.st)
	hs := nd.rn.Status().HardState
	must(c.t, nd.db.Close())
	c.open(nd)
	if !nd.st.Bootstrapped() {
		c.t.Fatalf("node %d: not bootstrapped after restart", nd.id)
	}
	if after := dump(c.t, nd.st); after != before {
		c.t.Fatalf("node %d: store after restart\n%+v\nwant\n%+v", nd.id, after, before)
	}
	got := nd.rn.Status()
	if !proto.Equal(got.HardState, hs) {
		c.t.Fatalf("node %d: raft restarted with hard state %v, want %v", nd.id, got.HardState, hs)
	}
	if got.Applied != nd.applied {
		c.t.Fatalf("node %d: raft restarted at applied %d, want %d", nd.id, got.Applied, nd.applied)
	}
}

func (c *testCluster) node(id uint64) *testNode { return c.nodes[id-1] }

// handleReady processes one Ready of nd as coord's raft loop would.
func (c *testCluster) handleReady(nd *testNode) bool {
	t := c.t
	if !nd.rn.HasReady() {
		return false
	}
	rd := nd.rn.Ready()
	if !raft.IsEmptySnap(rd.Snapshot) {
		meta := rd.Snapshot.GetMetadata()
		must(t, nd.st.ApplySnapshot(meta))
		// "Stream" the state machine: rebuild it from the agreed history.
		nd.data = nd.data[:0]
		for i := uint64(1); i <= meta.GetIndex(); i++ {
			e, ok := c.committed[i]
			if !ok {
				t.Fatalf("node %d: snapshot at %d covers unapplied index %d", nd.id, meta.GetIndex(), i)
			}
			if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
				nd.data = append(nd.data, string(e.GetData()))
			}
		}
		nd.applied = meta.GetIndex()
		nd.cs = proto.CloneOf(meta.GetConfState())
		nd.snaps++
	}
	must(t, nd.st.Save(rd.HardState, rd.Entries, rd.MustSync))
	c.queue = append(c.queue, rd.Messages...)
	for _, e := range rd.CommittedEntries {
		c.apply(nd, e)
	}
	nd.rn.Advance(rd)
	return true
}

func (c *testCluster) apply(nd *testNode, e *raftpb.Entry) {
	t := c.t
	if e.GetIndex() != nd.applied+1 {
		t.Fatalf("node %d: applying %d after %d", nd.id, e.GetIndex(), nd.applied)
	}
	if prev, ok := c.committed[e.GetIndex()]; ok && !proto.Equal(prev, e) {
		t.Fatalf("node %d: committed entry %d differs: %v vs %v", nd.id, e.GetIndex(), e, prev)
	}
	c.committed[e.GetIndex()] = e
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		must(t, proto.Unmarshal(e.GetData(), &cc))
		nd.cs = nd.rn.ApplyConfChange(&cc)
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		must(t, proto.Unmarshal(e.GetData(), &cc))
		nd.cs = nd.rn.ApplyConfChange(&cc)
	default:
		if len(e.GetData()) > 0 {
			nd.data = append(nd.data, string(e.GetData()))
		}
	}
	nd.applied = e.GetIndex()
}

// stabilize handles Readies and delivers messages until nothing moves.
func (c *testCluster) stabilize() {
	c.t.Helper()
	for range 100000 {
		moved := false
		for _, nd := range c.nodes {
			if c.handleReady(nd) {
				moved = true
			}
		}
		msgs := c.queue
		c.queue = nil
		for _, m := range msgs {
			if c.isolated[m.GetTo()] || c.isolated[m.GetFrom()] {
				continue
			}
			moved = true
			if err := c.node(m.GetTo()).rn.Step(m); err != nil {
				c.t.Fatalf("step %v: %v", m.GetType(), err)
			}
			if m.GetType() == raftpb.MsgSnap {
				c.node(m.GetFrom()).rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
			}
		}
		if !moved {
			return
		}
	}
	c.t.Fatal("cluster does not stabilize")
}

func (c *testCluster) leader() *testNode {
	c.t.Helper()
	for _, nd := range c.nodes {
		if nd.rn.Status().RaftState == raft.StateLeader {
			return nd
		}
	}
	c.t.Fatal("no leader")
	return nil
}

func (c *testCluster) elect(id uint64) {
	c.t.Helper()
	// Apply what is committed first: raft refuses to campaign with
	// unapplied conf changes (the bootstrap ones, after Bootstrap).
	c.stabilize()
	must(c.t, c.node(id).rn.Campaign())
	c.stabilize()
	if l := c.leader(); l.id != id {
		c.t.Fatalf("leader is %d, want %d", l.id, id)
	}
}

// propose proposes n entries of ~150 bytes through the given nodes in
// turn, stabilizing every few, and returns their data.
func (c *testCluster) propose(prefix string, n int, via ...*testNode) []string {
	c.t.Helper()
	var out []string
	for k := range n {
		d := fmt.Sprintf("%s-%04d-%0140d", prefix, k, k)
		must(c.t, via[k%len(via)].rn.Propose([]byte(d)))
		out = append(out, d)
		if k%7 == 6 {
			c.stabilize()
		}
	}
	c.stabilize()
	return out
}

// compact compacts nd's log up to keep entries below its applied index,
// as coord's server does once the state machine is durable.
func (c *testCluster) compact(nd *testNode, keep uint64) {
	c.t.Helper()
	if nd.applied <= keep {
		return
	}
	i := nd.applied - keep
	term, err := nd.st.Term(i)
	must(c.t, err)
	must(c.t, nd.st.Compact(i, term, nd.cs))
}

// checkApplied checks every node applied exactly want, in the same order.
func (c *testCluster) checkApplied(want []string) {
	c.t.Helper()
	sorted := slices.Sorted(slices.Values(want))
	for _, nd := range c.nodes {
		if got := slices.Sorted(slices.Values(nd.data)); !slices.Equal(got, sorted) {
			c.t.Fatalf("node %d applied %d entries, want %d", nd.id, len(nd.data), len(want))
		}
		if !slices.Equal(nd.data, c.nodes[0].data) {
			c.t.Fatalf("node %d applied in another order than node 1", nd.id)
		}
	}
}

// checkLogs checks the stores agree: same last index, commit and entries
// wherever two logs overlap.
func (c *testCluster) checkLogs() {
	c.t.Helper()
	ref := c.nodes[0]
	refLast, _ := ref.st.LastIndex()
	for _, nd := range c.nodes {
		hs, _, _ := nd.st.InitialState()
		refHS, _, _ := ref.st.InitialState()
		last, _ := nd.st.LastIndex()
		if last != refLast || hs.GetCommit() != refHS.GetCommit() || hs.GetTerm() != refHS.GetTerm() {
			c.t.Fatalf("node %d: last %d, hard state %v; node 1: last %d, hard state %v", nd.id, last, hs, refLast, refHS)
		}
		f1, _ := ref.st.FirstIndex()
		f2, _ := nd.st.FirstIndex()
		lo := max(f1, f2)
		if lo > last {
			continue
		}
		a, err := ref.st.Entries(lo, last+1, 1<<62)
		must(c.t, err)
		b, err := nd.st.Entries(lo, last+1, 1<<62)
		must(c.t, err)
		if !equalEntries(a, b) {
			c.t.Fatalf("node %d: log [%d, %d] differs from node 1's", nd.id, lo, last)
		}
	}
}

func TestRawNodeSingleVoter(t *testing.T) {
	c := newTestCluster(t, 1)
	c.elect(1)
	nd := c.node(1)
	var want []string
	for round := range 6 {
		want = append(want, c.propose(fmt.Sprintf("r%d", round), 50, nd)...)
		c.compact(nd, 20)
	}
	c.checkApplied(want)
	last, _ := nd.st.LastIndex()
	if hs, _, _ := nd.st.InitialState(); hs.GetCommit() != last || nd.applied != last {
		t.Fatalf("commit %d, applied %d, last %d", hs.GetCommit(), nd.applied, last)
	}
	if first, _ := nd.st.FirstIndex(); first <= 250 {
		t.Fatalf("first index %d: log was not compacted", first)
	}

	c.restart(nd)
	c.elect(1)
	want = append(want, c.propose("after-restart", 100, nd)...)
	c.checkApplied(want)

	// A restart that finds committed entries not yet applied (the state
	// machine lags the log): raft hands them out again from the store.
	nd.applied -= 10
	nd.data = nd.data[:len(nd.data)-10]
	c.restart(nd)
	c.stabilize()
	c.checkApplied(want)
	c.elect(1)
	want = append(want, c.propose("after-second-restart", 30, nd)...)
	c.checkApplied(want)
}

func TestRawNodeThreeVoters(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	n1, n2, n3 := c.node(1), c.node(2), c.node(3)

	// A replay reader on another goroutine, as a watch resume would be.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { replayReader(t, n1.st, stop) })

	want := c.propose("a", 200, n1, n2, n3)
	c.checkApplied(want)
	c.checkLogs()

	// Node 3 falls behind, the others compact past it: it needs a
	// snapshot, whose metadata comes from the leader's Store.
	c.isolated[3] = true
	want = append(want, c.propose("b", 100, n1, n2)...)
	c.compact(n1, 5)
	c.compact(n2, 5)
	delete(c.isolated, 3)
	for range 50 {
		if n3.applied == n1.applied {
			break
		}
		n1.rn.Tick()
		c.stabilize()
	}
	if n3.snaps == 0 {
		t.Fatal("node 3 caught up without a snapshot")
	}
	if snap, _ := n3.st.Snapshot(); snap.GetMetadata().GetIndex() == 0 || !slices.Equal(snap.GetMetadata().GetConfState().GetVoters(), []uint64{1, 2, 3}) {
		t.Fatalf("node 3 snapshot metadata %v", snap.GetMetadata())
	}
	want = append(want, c.propose("c", 50, n1, n2, n3)...)
	c.checkApplied(want)
	c.checkLogs()
	close(stop)
	wg.Wait()

	// Restart everyone from their stores; another node leads.
	for _, nd := range c.nodes {
		c.restart(nd)
	}
	c.elect(2)
	want = append(want, c.propose("d", 100, n1, n2, n3)...)
	c.checkApplied(want)
	c.checkLogs()
}

// replayReader reads the whole available log of s over and over until
// stop, checking each answer is consecutive and starts where asked.
func replayReader(t *testing.T, s *Store, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		for lo := first; lo <= last; {
			ents, err := s.Entries(lo, last+1, 4096)
			if err == raft.ErrCompacted || err == raft.ErrUnavailable {
				break // raced a compaction or truncation: start over
			}
			if err != nil {
				t.Errorf("replay Entries(%d, %d): %v", lo, last+1, err)
				return
			}
			for k, e := range ents {
				if e.GetIndex() != lo+uint64(k) {
					t.Errorf("replay Entries(%d, ...)[%d] has index %d", lo, k, e.GetIndex())
					return
				}
			}
			lo += uint64(len(ents))
		}
	}
}
