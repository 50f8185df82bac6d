package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/coord-dev/coord/znode"
)

// registerAdmin adds the membership and debugging endpoints:
//
//	GET    /v1/members          the member list
//	POST   /v1/members          add {"id","peer_addr","client_addr"} as a learner
//	POST   /v1/members/{id}/promote  make a learner a voter now
//	DELETE /v1/members/{id}     remove a member
//	POST   /v1/leader           transfer leadership {"to": id} (0: best voter)
//	GET    /v1/digest           {"applied", "digest"} of the replicated state
//	POST   /debug/drop-peers    {"peers":[ids]} drop peer traffic (only with test hooks on)
//	POST   /debug/disk          {"fault":"fsync"|"enospc"|"none"} inject disk faults (test hooks)
//	POST   /debug/crash         {"point":P,"after":N} SIGKILL at the Nth time at crash point P (test hooks)
func (s *Server) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status().Members)
	})
	mux.HandleFunc("POST /v1/members", s.handleAddMember)
	mux.HandleFunc("POST /v1/members/{id}/promote", s.handlePromote)
	mux.HandleFunc("DELETE /v1/members/{id}", s.handleRemoveMember)
	mux.HandleFunc("POST /v1/leader", s.handleTransfer)
	mux.HandleFunc("GET /v1/digest", s.handleDigest)
	if s.cfg.TestHooks {
		mux.HandleFunc("POST /debug/drop-peers", s.handleDropPeers)
		mux.HandleFunc("POST /debug/disk", s.handleDiskFault)
		mux.HandleFunc("POST /debug/crash", s.handleCrashPoint)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// proposeConf proposes a conf change and waits until this server applied a
// membership satisfying done. Raft drops a conf change proposed while
// another is pending (e.g. a member publishing its address), so it is
// proposed again every half second until it shows; every change we make is
// idempotent.
func (s *Server) proposeConf(ctx context.Context, cc *raftpb.ConfChange, done func(*membership) bool) error {
	var last time.Time
	for {
		if m := s.members.Load(); m != nil && done(m) {
			return nil
		}
		if time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			var perr error
			if err := s.ctrlWait(ctx, func(r *raftLoop) { perr = r.rn.ProposeConfChange(cc) }); err != nil {
				return err
			}
			if perr != nil && !errors.Is(perr, raft.ErrProposalDropped) {
				return fmt.Errorf("propose conf change: %w", perr)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the change was not applied in time (no quorum?): %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request) {
	var m Member
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&m); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if m.ID == 0 || m.PeerAddr == "" {
		writeErr(w, http.StatusBadRequest, errors.New("id and peer_addr are required"))
		return
	}
	if cur := s.members.Load(); cur != nil {
		if _, ok := cur.member(m.ID); ok {
			writeErr(w, http.StatusConflict, fmt.Errorf("member %d already exists", m.ID))
			return
		}
	}
	m.Learner = true
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	cctx, _ := json.Marshal(confContext{Member: m})
	err := s.proposeConf(ctx, &raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(m.ID), Context: cctx},
		func(cur *membership) bool { _, ok := cur.member(m.ID); return ok })
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	s.log.Info("member added as a learner", "member", m.ID, "peer_addr", m.PeerAddr)
	writeJSON(w, http.StatusOK, s.Status().Members)
}

func pathID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("member id %q is not a positive integer", r.PathValue("id"))
	}
	return id, nil
}

func (s *Server) handlePromote(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	cur := s.members.Load()
	x, ok := cur.member(id)
	if !ok {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no member %d", id))
		return
	}
	if !x.Learner {
		writeJSON(w, http.StatusOK, s.Status().Members)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	err = s.proposeConf(ctx, &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id)},
		func(cur *membership) bool { x, ok := cur.member(id); return ok && !x.Learner })
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, s.Status().Members)
}

func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	cur := s.members.Load()
	if _, ok := cur.member(id); !ok {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no member %d", id))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if id == s.leader.Load() && id == s.id {
		// Hand leadership over first, so the cluster keeps a leader that
		// stays in it.
		if err := s.transferLeadership(ctx, 0); err != nil {
			writeErr(w, http.StatusServiceUnavailable, err)
			return
		}
	}
	err = s.proposeConf(ctx, &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(id)},
		func(cur *membership) bool { _, ok := cur.member(id); return !ok })
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	s.log.Info("member removed", "member", id)
	writeJSON(w, http.StatusOK, s.Status().Members)
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To uint64 `json:"to"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&body); err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
	}
	if s.role.Load() != "leader" {
		writeErr(w, http.StatusMisdirectedRequest, fmt.Errorf("this member is not the leader; ask member %d", s.leader.Load()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.transferLeadership(ctx, body.To); err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"leader": s.leader.Load()})
}

// Digest returns the applied index and the digest of the replicated state
// at that index.
func (s *Server) Digest() (uint64, string, error) {
	var (
		applied uint64
		digest  string
		err     error
	)
	s.state.View(func(v znode.View) {
		applied = v.AppliedIndex()
		digest, err = v.Digest()
	})
	return applied, digest, err
}

func (s *Server) handleDigest(w http.ResponseWriter, r *http.Request) {
	applied, digest, err := s.Digest()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	body := map[string]any{"applied": applied, "digest": digest}
	if r.URL.Query().Get("conf") != "" {
		body["conf"] = json.RawMessage(s.state.Conf())
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleDropPeers(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Peers []uint64 `json:"peers"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	set := map[uint64]bool{}
	for _, id := range body.Peers {
		set[id] = true
	}
	s.peers.dropped.Store(&set)
	s.log.Warn("test hook: dropping peer traffic", "peers", body.Peers)
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleDiskFault(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Fault string `json:"fault"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	flush := func() error { return s.db.LogData(nil, pebble.Sync) }
	if err := s.disk.setFault(body.Fault, flush); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	s.log.Warn("test hook: disk fault", "fault", body.Fault)
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleCrashPoint(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Point string `json:"point"`
		After int64  `json:"after"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	if err := s.crash.arm(body.Point, body.After); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	s.log.Warn("test hook: crash point armed", "point", body.Point, "after", body.After)
	writeJSON(w, http.StatusOK, body)
}
