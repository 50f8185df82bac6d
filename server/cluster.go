package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/coord-dev/coord/internal/wire"
)

// ErrRemoved is what Done reports when this member was removed from the
// cluster: it stops serving clients.
var ErrRemoved = errors.New("this member was removed from the cluster")

// peerAddr returns the advertised peer address of member id.
func (s *Server) peerAddr(id uint64) string {
	if m := s.members.Load(); m != nil {
		if x, ok := m.member(id); ok {
			return x.PeerAddr
		}
	}
	if a, ok := s.peerHints.Load().(map[uint64]string); ok && a[id] != "" {
		return a[id]
	}
	if s.cfg.Cluster != "" {
		if ms, err := parseCluster(s.cfg.Cluster); err == nil {
			for _, x := range ms {
				if x.ID == id {
					return x.PeerAddr
				}
			}
		}
	}
	return ""
}

// checkPeer decides whether to accept a stream from another member. A
// non-empty reason refuses it; fatal tells the sender to stop for good.
func (s *Server) checkPeer(h *peerHello) (reason string, fatal bool) {
	if cid := s.clusterID(); cid != 0 && h.ClusterID != cid {
		return fmt.Sprintf("cluster id %x is not this cluster's (%x)", h.ClusterID, cid), true
	}
	if h.To != s.id {
		return fmt.Sprintf("this is member %d, not %d", s.id, h.To), false
	}
	if s.removed.Load() {
		return "this member was removed from the cluster", false
	}
	m := s.members.Load()
	if m == nil || len(m.Members) == 0 {
		return "", false // still bootstrapping or joining: accept the leader
	}
	x, ok := m.member(h.From)
	if !ok {
		if h.From == s.id {
			return "a stream from this member's own id", true
		}
		return fmt.Sprintf("member %d is not in the configuration", h.From), false
	}
	if x.Incarnation != 0 && h.Incarnation != x.Incarnation {
		return fmt.Sprintf("member %d's data dir was wiped or replaced (incarnation %x, expected %x): "+
			"remove it from the cluster and add it back as a new member", h.From, h.Incarnation, x.Incarnation), true
	}
	return "", false
}

// peerHeartbeats records liveness reported by a follower.
func (s *Server) peerHeartbeats(ids []wire.SessionID) {
	if !s.sessions.isLeader() {
		return
	}
	now := time.Now()
	for _, id := range ids {
		s.heardFrom(id, now)
	}
}

// forwardHeartbeats sends the liveness of sessions held here to the leader.
func (s *Server) forwardHeartbeats() {
	lead := s.leader.Load()
	ids := s.sessions.beats.Drain()
	if lead == 0 || lead == s.id || len(ids) == 0 {
		return
	}
	s.peers.sendHeartbeats(lead, ids)
}

// errSnapshotBehind refuses a snapshot whose state is not newer than this
// server's.
var errSnapshotBehind = errors.New("snapshot not newer than the state")

// restoreState replaces the state machine with a received snapshot. It runs
// on the apply goroutine, between batches.
func (s *Server) restoreState(r io.Reader) error {
	done := make(chan error, 1)
	select {
	case s.restorec <- restoreRequest{r: r, done: done}:
	case <-s.stopc:
		return errStopped
	}
	select {
	case err := <-done:
		return err
	case <-s.stopc:
		return errStopped
	}
}

type restoreRequest struct {
	r    io.Reader
	done chan error
}

// installSnapshot makes raft's log agree with a snapshot the state machine
// already restored.
func (s *Server) installSnapshot(snap *raftpb.Snapshot) error {
	return s.rlog.ApplySnapshot(snap.GetMetadata())
}

// onMembershipChange runs on the raft goroutine after a conf change.
func (s *Server) onMembershipChange(m *membership, removedSelf bool) {
	if removedSelf {
		s.removed.Store(true)
		go s.fatal(ErrRemoved)
		return
	}
	s.peers.mu.Lock()
	var gone []uint64
	for id := range s.peers.mu.peers {
		if _, ok := m.member(id); !ok {
			gone = append(gone, id)
		}
	}
	s.peers.mu.Unlock()
	for _, id := range gone {
		s.peers.removePeer(id)
	}
}

// publishSelf records this member's current addresses and data-dir
// incarnation in the replicated configuration when they differ.
func (s *Server) publishSelf() {
	m := s.members.Load()
	if m == nil || s.leader.Load() == 0 {
		return
	}
	me, ok := m.member(s.id)
	if !ok {
		return
	}
	if me.Incarnation == s.incarnation && me.PeerAddr == s.cfg.AdvertisePeerAddr && me.ClientAddr == s.cfg.AdvertiseClientAddr {
		return
	}
	me.PeerAddr, me.ClientAddr, me.Incarnation = s.cfg.AdvertisePeerAddr, s.cfg.AdvertiseClientAddr, s.incarnation
	ctx, _ := json.Marshal(confContext{Member: me})
	s.ctrl(func(r *raftLoop) {
		_ = r.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeUpdateNode.Enum(), NodeId: new(s.id), Context: ctx})
	})
}

// promoteLearners, on the leader, promotes learners whose log has caught up.
func (s *Server) promoteLearners() {
	m := s.members.Load()
	if m == nil {
		return
	}
	var learners []uint64
	for _, x := range m.Members {
		if x.Learner {
			learners = append(learners, x.ID)
		}
	}
	if len(learners) == 0 {
		return
	}
	s.ctrl(func(r *raftLoop) {
		st := r.rn.Status()
		if st.RaftState != raft.StateLeader || r.rn.BasicStatus().GetCommit() == 0 {
			return
		}
		commit := st.GetCommit()
		for _, id := range learners {
			pr, ok := st.Progress[id]
			if !ok || !pr.IsLearner || pr.State != tracker.StateReplicate || pr.Match+64 < commit {
				continue
			}
			s.log.Info("promoting a caught-up learner", "member", id, "match", pr.Match, "commit", commit)
			_ = r.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id)})
			return // one conf change at a time
		}
	})
}

// transferLeadershipOnClose hands leadership to the most caught-up voter
// before this server stops, so the cluster does not wait out an election.
func (s *Server) transferLeadershipOnClose(ctx context.Context) {
	if s.role.Load() != "leader" {
		return
	}
	if err := s.transferLeadership(ctx, 0); err != nil {
		s.log.Warn("leadership transfer before stopping failed", "err", err)
	}
}

// transferLeadership moves leadership to member to (0: the most caught-up
// other voter) and waits until it happened.
func (s *Server) transferLeadership(ctx context.Context, to uint64) error {
	err := s.ctrlWait(ctx, func(r *raftLoop) {
		st := r.rn.Status()
		if st.RaftState != raft.StateLeader {
			return
		}
		if to == 0 {
			var best uint64
			for id, pr := range st.Progress {
				if id != s.id && !pr.IsLearner && pr.Match >= best {
					best, to = pr.Match, id
				}
			}
		}
		if to != 0 {
			r.rn.TransferLeader(to)
		}
	})
	if err != nil {
		return err
	}
	if to == 0 {
		return errors.New("no other voter to transfer leadership to")
	}
	for s.leader.Load() == s.id || s.leader.Load() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("leadership did not move to %d: %w", to, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// joinCluster asks a running member (cfg.Join, a client address) to add
// this server as a learner, and returns the cluster id.
func (s *Server) joinCluster() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st Status
	if err := httpJSON(ctx, http.MethodGet, "http://"+s.cfg.Join+"/v1/status", nil, &st); err != nil {
		return 0, fmt.Errorf("join %s: %w", s.cfg.Join, err)
	}
	cid, err := strconv.ParseUint(st.ClusterID, 16, 64)
	if err != nil || cid == 0 {
		return 0, fmt.Errorf("join %s: no cluster id in its status", s.cfg.Join)
	}
	if !slices.ContainsFunc(st.Members, func(m MemberStatus) bool { return m.ID == s.id }) {
		add := Member{ID: s.id, PeerAddr: s.cfg.AdvertisePeerAddr, ClientAddr: s.cfg.AdvertiseClientAddr, Incarnation: s.incarnation}
		if err := httpJSON(ctx, http.MethodPost, "http://"+s.cfg.Join+"/v1/members", add, nil); err != nil {
			return 0, fmt.Errorf("join %s: adding member %d: %w", s.cfg.Join, s.id, err)
		}
	}
	if err := s.saveClusterID(cid); err != nil {
		return 0, err
	}
	// Until the configuration arrives through raft, reach the members at
	// the addresses the cluster reported.
	hints := map[uint64]string{}
	for _, m := range st.Members {
		hints[m.ID] = m.PeerAddr
	}
	s.peerHints.Store(hints)
	s.log.Info("joining the cluster as a learner", "via", s.cfg.Join, "cluster_id", st.ClusterID)
	return cid, nil
}

func httpJSON(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
