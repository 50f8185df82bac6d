package server_test

import (
	"testing"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// metricValues returns the unlabelled samples of a /metrics page.
func metricValues(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	m, err := testcluster.Metrics(addr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// /metrics carries pebble's own figures, read at scrape time.
func TestMetricsIncludeTheStore(t *testing.T) {
	nd := startOne(t)
	c := testcluster.Connect(t, nd.ClientAddr())
	before := metricValues(t, nd.ClientAddr())
	for _, name := range []string{
		"coord_pebble_compactions_total", "coord_pebble_compaction_debt_bytes", "coord_pebble_flushes_total",
		"coord_pebble_l0_files", "coord_pebble_l0_sublevels", "coord_pebble_read_amplification",
		"coord_pebble_memtable_bytes", "coord_pebble_wal_written_bytes_total", "coord_pebble_disk_bytes",
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s on /metrics", name)
		}
	}
	c.MustCall(wire.Request{Op: wire.OpCreate, Path: "/m", Data: make([]byte, 4096)})
	after := metricValues(t, nd.ClientAddr())
	if after["coord_pebble_wal_written_bytes_total"] < before["coord_pebble_wal_written_bytes_total"]+4096 {
		t.Errorf("WAL bytes went from %v to %v over a 4 KiB write", before["coord_pebble_wal_written_bytes_total"], after["coord_pebble_wal_written_bytes_total"])
	}
	if after["coord_pebble_disk_bytes"] <= 0 || after["coord_pebble_memtable_bytes"] <= 0 {
		t.Errorf("disk %v, memtables %v bytes", after["coord_pebble_disk_bytes"], after["coord_pebble_memtable_bytes"])
	}
}
