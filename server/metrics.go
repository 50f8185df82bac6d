package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/coord-dev/coord/internal/wire"
)

// metrics are the server's Prometheus metrics, in a registry of its own (no
// global state: several servers may share a process in tests).
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	connections      prometheus.Gauge
	refusedConns     prometheus.Counter
	slowConsumers    prometheus.Counter
	fsync            prometheus.Histogram
	proposalBatch    prometheus.Histogram
	groupCommitWaits *prometheus.CounterVec
	groupJoined      prometheus.Counter // groupCommitWaits{outcome="joined"}
	groupAlone       prometheus.Counter // groupCommitWaits{outcome="alone"}
	applyBatch       prometheus.Histogram
	applyLatency     prometheus.Histogram
	leaderChanges    prometheus.Counter
	watchEvents      prometheus.Counter
	parkedReads      prometheus.Counter
	sessionsExpired  prometheus.Counter

	mu      sync.Mutex
	byOp    map[string]prometheus.Counter  // cache of requests.WithLabelValues
	latOp   map[string]prometheus.Observer // cache of latency.WithLabelValues
	latency *prometheus.HistogramVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), byOp: map[string]prometheus.Counter{}, latOp: map[string]prometheus.Observer{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coord_requests_total", Help: "Requests answered, by op and error code (\"ok\" for success).",
	}, []string{"op", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "coord_request_duration_seconds", Help: "Time from reading a request to answering it, by op.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"op"})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "coord_connections", Help: "Open client websockets."})
	m.refusedConns = prometheus.NewCounter(prometheus.CounterOpts{Name: "coord_connections_refused_total", Help: "Websockets refused by the per-IP limit."})
	m.slowConsumers = prometheus.NewCounter(prometheus.CounterOpts{Name: "coord_slow_consumers_total", Help: "Connections closed because their outbound queue overflowed."})
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "coord_raft_fsync_seconds", Help: "Latency of persisting raft entries with fsync.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.proposalBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "coord_proposal_batch_size", Help: "Entries handed to raft in one proposal message.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	m.groupCommitWaits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coord_group_commit_waits_total",
		Help: "Lone writes the leader held back for a moment to share an fsync with the next, by outcome (joined: another came; alone: none did)."},
		[]string{"outcome"})
	m.groupJoined = m.groupCommitWaits.WithLabelValues("joined")
	m.groupAlone = m.groupCommitWaits.WithLabelValues("alone")
	m.applyBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "coord_apply_batch_size", Help: "Committed entries applied in one state machine batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13)})
	m.applyLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "coord_apply_seconds", Help: "Time to apply and publish one batch.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "coord_leader_changes_total", Help: "Leader changes seen."})
	m.watchEvents = prometheus.NewCounter(prometheus.CounterOpts{Name: "coord_watch_changes_total", Help: "Changes offered to the watch registry."})
	m.parkedReads = prometheus.NewCounter(prometheus.CounterOpts{Name: "coord_parked_reads_total", Help: "Reads with wait_gone that waited for their node's deletion."})
	m.sessionsExpired = prometheus.NewCounter(prometheus.CounterOpts{Name: "coord_sessions_expired_total", Help: "Sessions this server expired as leader."})
	m.reg.MustRegister(m.requests, m.latency, m.connections, m.refusedConns, m.slowConsumers, m.fsync, m.proposalBatch, m.groupCommitWaits,
		m.applyBatch, m.applyLatency, m.leaderChanges, m.watchEvents, m.parkedReads, m.sessionsExpired,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("coord_raft_term", "Current raft term.", func() float64 { return float64(s.term.Load()) })
	gauge("coord_raft_commit_index", "Raft commit index.", func() float64 { return float64(s.commit.Load()) })
	gauge("coord_raft_applied_index", "Index applied to the state machine.", func() float64 { return float64(s.applied.load()) })
	gauge("coord_raft_is_leader", "1 when this server leads.", func() float64 {
		if s.role.Load() == "leader" {
			return 1
		}
		return 0
	})
	gauge("coord_requests_in_flight", "Proposals waiting to be applied.", func() float64 { return float64(s.waiters.len()) })
	gauge("coord_watches", "Watches registered on this server.", func() float64 { return float64(s.watches.Stats().Watches) })
	return m
}

// observe counts an answered request and, when start is set, its latency.
func (m *metrics) observe(op string, code wire.Code, start time.Time) {
	if !knownOp(op) {
		op = "unknown"
	}
	c := string(code)
	if c == "" {
		c = "ok"
	}
	key := op + "\x00" + c
	m.mu.Lock()
	ctr, ok := m.byOp[key]
	if !ok {
		ctr = m.requests.WithLabelValues(op, c)
		m.byOp[key] = ctr
	}
	var lat prometheus.Observer
	if !start.IsZero() {
		if lat, ok = m.latOp[op]; !ok {
			lat = m.latency.WithLabelValues(op)
			m.latOp[op] = lat
		}
	}
	m.mu.Unlock()
	ctr.Inc()
	if lat != nil {
		lat.Observe(time.Since(start).Seconds())
	}
}

func knownOp(op string) bool {
	switch op {
	case wire.OpConnect, wire.OpPing, wire.OpCreate, wire.OpDelete, wire.OpExists, wire.OpGet, wire.OpSet,
		wire.OpChildren, wire.OpGetACL, wire.OpSetACL, wire.OpSync, wire.OpMulti, wire.OpAddWatch,
		wire.OpRemoveWatches, wire.OpSetWatches, wire.OpAuth, wire.OpClose:
		return true
	}
	return false
}
