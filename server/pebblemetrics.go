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
	mu      sync.RWMutex
	db      *pebble.DB // nil once closed
	metrics []pebbleMetric
}

type pebbleMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(m *pebble.Metrics) float64
}

func newPebbleCollector(db *pebble.DB) *pebbleCollector {
	c := &pebbleCollector{db: db}
	add := func(name, help string, kind prometheus.ValueType, value func(m *pebble.Metrics) float64) {
		c.metrics = append(c.metrics, pebbleMetric{prometheus.NewDesc(name, help, nil, nil), kind, value})
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	add("coord_pebble_compactions_total", "Compactions pebble has completed.", counter,
		func(m *pebble.Metrics) float64 { return float64(m.Compact.Count) })
	add("coord_pebble_compaction_debt_bytes", "Bytes pebble estimates it must compact to bring the LSM back into shape.", gauge,
		func(m *pebble.Metrics) float64 { return float64(m.Compact.EstimatedDebt) })
	add("coord_pebble_flushes_total", "Memtable flushes pebble has completed.", counter,
		func(m *pebble.Metrics) float64 { return float64(m.Flush.Count) })
	add("coord_pebble_l0_files", "Sstables in L0.", gauge,
		func(m *pebble.Metrics) float64 { return float64(m.Levels[0].TablesCount) })
	add("coord_pebble_l0_sublevels", "Sublevels of L0 (a read may have to look in each).", gauge,
		func(m *pebble.Metrics) float64 { return float64(m.Levels[0].Sublevels) })
	add("coord_pebble_read_amplification", "Sstables and memtables a point read may have to consult.", gauge,
		func(m *pebble.Metrics) float64 { return float64(m.ReadAmp()) })
	add("coord_pebble_memtable_bytes", "Bytes allocated by memtables, including those being flushed.", gauge,
		func(m *pebble.Metrics) float64 { return float64(m.MemTable.Size) })
	add("coord_pebble_wal_written_bytes_total", "Bytes pebble has written to its write-ahead log (the raft log's entries among them).", counter,
		func(m *pebble.Metrics) float64 { return float64(m.WAL.BytesWritten) })
	add("coord_pebble_disk_bytes", "Bytes the store uses on disk (tables, WAL, manifest).", gauge,
		func(m *pebble.Metrics) float64 { return float64(m.DiskSpaceUsage()) })
	return c
}

func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.db == nil {
		return
	}
	pm := c.db.Metrics()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(pm))
	}
}

// close makes later scrapes skip pebble; call it before closing the DB.
func (c *pebbleCollector) close() {
	c.mu.Lock()
	c.db = nil
	c.mu.Unlock()
}
