package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) newHTTPServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", s.handleWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.registerAdmin(mux)
	if s.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
}

// Ready reports whether this server knows a leader and has applied what it
// knows to be committed.
func (s *Server) Ready() bool {
	return s.leader.Load() != 0 && s.applied.load() >= s.commit.Load() && !s.stopped() && !s.removed.Load()
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !s.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready"))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// Status is the body of /v1/status.
type Status struct {
	ID        uint64         `json:"id"`
	Version   string         `json:"version"`
	Role      string         `json:"role"`
	Leader    uint64         `json:"leader"`
	Term      uint64         `json:"term"`
	Commit    uint64         `json:"commit"`
	Applied   uint64         `json:"applied"`
	ClusterID string         `json:"cluster_id"`
	Members   []MemberStatus `json:"members"`
}

// MemberStatus is one member in /v1/status.
type MemberStatus struct {
	ID         uint64 `json:"id"`
	PeerAddr   string `json:"peer_addr"`
	ClientAddr string `json:"client_addr"`
	Role       string `json:"role"`              // voter or learner
	Match      uint64 `json:"match,omitempty"`   // the leader's view of its log, when this server leads
	Applied    uint64 `json:"applied,omitempty"` // its applied index, as it reports it
	Reachable  bool   `json:"reachable"`         // it answered this status request
}

// Status returns what /v1/status shows.
func (s *Server) Status() Status {
	st := Status{
		ID:      s.id,
		Version: Version,
		Role:    s.role.Load().(string),
		Leader:  s.leader.Load(),
		Term:    s.term.Load(),
		Commit:  s.commit.Load(),
		Applied: s.applied.load(),
	}
	m := s.members.Load()
	if m == nil {
		return st
	}
	st.ClusterID = formatClusterID(m.ClusterID)
	progress := s.progress()
	for _, x := range m.Members {
		ms := MemberStatus{ID: x.ID, PeerAddr: x.PeerAddr, ClientAddr: x.ClientAddr, Role: "voter"}
		if x.Learner {
			ms.Role = "learner"
		}
		ms.Match = progress[x.ID]
		if x.ID == s.id {
			ms.Applied = st.Applied
			if ms.ClientAddr == "" {
				ms.ClientAddr = s.cfg.AdvertiseClientAddr
			}
		}
		st.Members = append(st.Members, ms)
	}
	return st
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.Status()
	if r.URL.Query().Get("local") == "" {
		s.fillPeerStatus(r.Context(), &st)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// fillPeerStatus asks every other member for its own status (briefly, in
// parallel) to report each one's applied index and whether it answers.
func (s *Server) fillPeerStatus(ctx context.Context, st *Status) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := range st.Members {
		m := &st.Members[i]
		if m.ID == s.id {
			m.Reachable = true
			continue
		}
		if m.ClientAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var peer Status
			if err := httpJSON(ctx, http.MethodGet, "http://"+m.ClientAddr+"/v1/status?local=1", nil, &peer); err == nil && peer.ID == m.ID {
				m.Applied, m.Reachable = peer.Applied, true
			}
		}()
	}
	wg.Wait()
}
