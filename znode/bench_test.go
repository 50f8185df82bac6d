package znode

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coord-dev/coord/internal/wire"
)

// benchStore opens a store on a pebble DB in a temporary directory on disk,
// with TunePebble's options (unless $ZNODE_BENCH_UNTUNED is set) and
// pebble's defaults otherwise.
func benchStore(b *testing.B) *harness { return benchStoreConfig(b, Config{}) }

func benchStoreConfig(b *testing.B, cfg Config) *harness {
	b.Helper()
	opts := &pebble.Options{FS: vfs.Default, Logger: quietLogger{}}
	if os.Getenv("ZNODE_BENCH_UNTUNED") == "" {
		TunePebble(opts)
	}
	db, err := pebble.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	s := openStore(b, db, cfg)
	b.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return &harness{t: b, db: db, s: s, next: 1}
}

var benchData = make([]byte, 100)

const benchBatch = 100

// cpuTime returns the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runApply applies b.N entries in batches of benchBatch, built by mk
// outside the timer, and reports entries/s of wall time, and entries per
// second of CPU time (the process's, pebble's background work included,
// building entries excluded), which a machine shared with other work
// disturbs less.
func runApply(b *testing.B, h *harness, mk func(i int) Entry) {
	cs := make([]Committed, 0, benchBatch)
	var cpu time.Duration
	defer func() {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "entries/cpu-s")
	}()
	b.ResetTimer()
	for i := 0; i < b.N; {
		b.StopTimer()
		cs = cs[:0]
		for ; len(cs) < benchBatch && i < b.N; i++ {
			e := mk(i)
			cs = append(cs, Committed{Index: h.next, Data: e.Marshal()})
			h.next++
		}
		b.StartTimer()
		c0 := cpuTime()
		if err := h.s.Apply(cs, nil); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkApplySet(b *testing.B) {
	h := benchStore(b)
	h.createSession(1)
	const nodes = 10000
	for i := 0; i < nodes; i += benchBatch {
		var es []Entry
		for j := i; j < i+benchBatch; j++ {
			es = append(es, Entry{Op: mkCreate(fmt.Sprintf("/n%05d", j), string(benchData), "")})
		}
		h.applyBatch(es)
	}
	runApply(b, h, func(i int) Entry {
		return Entry{TimeMs: int64(i), Session: 1, Xid: int64(i + 1),
			Op: Op{Kind: OpSet, Path: fmt.Sprintf("/n%05d", (i*7919)%nodes), Data: benchData, Version: -1}}
	})
}

func BenchmarkApplyCreate(b *testing.B) {
	h := benchStore(b)
	h.createSession(1)
	h.apply(Entry{Op: mkCreate("/bench", "", "")})
	runApply(b, h, func(i int) Entry {
		return Entry{TimeMs: int64(i), Session: 1, Xid: int64(i + 1),
			Op: Op{Kind: OpCreate, Path: fmt.Sprintf("/bench/n%09d", i), Data: benchData, Mode: wire.ModePersistent, ACL: wire.OpenACL()}}
	})
}

// BenchmarkGet reads a 100-byte node: from the node cache, and (Uncached)
// from pebble's block cache.
func BenchmarkGet(b *testing.B) {
	b.Run("Cached", func(b *testing.B) { benchGet(b, Config{}) })
	b.Run("Uncached", func(b *testing.B) { benchGet(b, Config{NodeCacheBytes: -1}) })
}

func benchGet(b *testing.B, cfg Config) {
	h := benchStoreConfig(b, cfg)
	h.apply(Entry{Op: mkCreate("/app", "", "")})
	h.apply(Entry{Op: mkCreate("/app/config", string(benchData), "")})
	if err := h.db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n, err := h.s.Get("/app/config")
		if err != nil || len(n.Data) != 100 {
			b.Fatal(err)
		}
	}
}

func BenchmarkChildren10k(b *testing.B) {
	h := benchStore(b)
	h.apply(Entry{Op: mkCreate("/dir", "", "")})
	for i := 0; i < 10000; i += benchBatch {
		var es []Entry
		for j := i; j < i+benchBatch; j++ {
			es = append(es, Entry{Op: mkCreate(fmt.Sprintf("/dir/child-%05d", j), string(benchData), "")})
		}
		h.applyBatch(es)
	}
	if err := h.db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		names, _, err := h.s.Children("/dir", "", 0)
		if err != nil || len(names) != 10000 {
			b.Fatal(len(names), err)
		}
	}
}
