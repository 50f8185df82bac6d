package server

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// pebbleCollector exports a few of pebble's own metrics at scrape time:
// what an operator watches when writes slow down (compactions falling
// behind, L0 piling up, read amplification) and what the data dir costs.
type pebbleCollector struct {
	mu     sync.RWMutex
	db     *pebble.DB // nil once closed
	descs  []*prometheus.Desc
	kinds  []prometheus.ValueType
	values func(m *pebble.Metrics) []float64
}

func newPebbleCollector(db *pebble.DB) *pebbleCollector {
	type metric struct {
		name, help string
		counter    bool
		value      func(m *pebble.Metrics) float64
	}
	ms := []metric{
		{"coord_pebble_compactions_total", "Compactions pebble has completed.", true, func(m *pebble.Metrics) float64 { return float64(m.Compact.Count) }},
		{"coord_pebble_compaction_debt_bytes", "Bytes pebble estimates it must compact to bring the LSM back into shape.", false, func(m *pebble.Metrics) float64 { return float64(m.Compact.EstimatedDebt) }},
		{"coord_pebble_flushes_total", "Memtable flushes pebble has completed.", true, func(m *pebble.Metrics) float64 { return float64(m.Flush.Count) }},
		{"coord_pebble_l0_files", "Sstables in L0.", false, func(m *pebble.Metrics) float64 { return float64(m.Levels[0].TablesCount) }},
		{"coord_pebble_l0_sublevels", "Sublevels of L0 (a read may have to look in each).", false, func(m *pebble.Metrics) float64 { return float64(m.Levels[0].Sublevels) }},
		{"coord_pebble_read_amplification", "Sstables and memtables a point read may have to consult.", false, func(m *pebble.Metrics) float64 { return float64(m.ReadAmp()) }},
		{"coord_pebble_memtable_bytes", "Bytes allocated by memtables, including those being flushed.", false, func(m *pebble.Metrics) float64 { return float64(m.MemTable.Size) }},
		{"coord_pebble_wal_written_bytes_total", "Bytes pebble has written to its write-ahead log (the raft log's entries among them).", true, func(m *pebble.Metrics) float64 { return float64(m.WAL.BytesWritten) }},
		{"coord_pebble_disk_bytes", "Bytes the store uses on disk (tables, WAL, manifest).", false, func(m *pebble.Metrics) float64 { return float64(m.DiskSpaceUsage()) }},
	}
	c := &pebbleCollector{db: db}
	kinds := make([]prometheus.ValueType, len(ms))
	for i, m := range ms {
		c.descs = append(c.descs, prometheus.NewDesc(m.name, m.help, nil, nil))
		kinds[i] = prometheus.GaugeValue
		if m.counter {
			kinds[i] = prometheus.CounterValue
		}
	}
	c.values = func(pm *pebble.Metrics) []float64 {
		out := make([]float64, len(ms))
		for i, m := range ms {
			out[i] = m.value(pm)
		}
		return out
	}
	c.kinds = kinds
	return c
}

func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.db == nil {
		return
	}
	for i, v := range c.values(c.db.Metrics()) {
		ch <- prometheus.MustNewConstMetric(c.descs[i], c.kinds[i], v)
	}
}

// close makes later scrapes skip pebble; call it before closing the DB.
func (c *pebbleCollector) close() {
	c.mu.Lock()
	c.db = nil
	c.mu.Unlock()
}
