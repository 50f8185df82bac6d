package raftstore

import (
	"fmt"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// benchStore opens a Store on a real directory, as the server does.
func benchStore(b *testing.B, cfg Config) *Store {
	b.Helper()
	db, err := pebble.Open(b.TempDir(), &pebble.Options{FS: vfs.Default, Logger: pebbleLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := Open(db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchEntries(from uint64, n int, data []byte) []*raftpb.Entry {
	ents := make([]*raftpb.Entry, n)
	for k := range ents {
		ents[k] = &raftpb.Entry{Index: new(from + uint64(k)), Term: new(uint64(1)), Type: raftpb.EntryNormal.Enum(), Data: data}
	}
	return ents
}

// BenchmarkSave is one Ready's worth of work: 64 entries of 150 bytes and a
// hard state in one batch, with and without fsync. The log is compacted
// as it grows, as the server does.
func BenchmarkSave(b *testing.B) {
	const n, size = 64, 150
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync=%t", sync), func(b *testing.B) {
			s := benchStore(b, Config{})
			data := make([]byte, size)
			next := uint64(1)
			b.SetBytes(n * size)
			b.ReportAllocs()
			for b.Loop() {
				ents := benchEntries(next, n, data)
				next += n
				if err := s.Save(hardState(1, 1, next-1), ents, sync); err != nil {
					b.Fatal(err)
				}
				if next%(64*n) == 1 && next > 128*n {
					if err := s.Compact(next-1-64*n, 1, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
		})
	}
}

// BenchmarkEntries reads recent entries, as a leader replicating to
// followers does: from the cache, and from pebble for comparison (the
// tiny cache holds only the last entry, which the reads exclude).
func BenchmarkEntries(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"cache", Config{}},
		{"pebble", Config{CacheEntries: 1}},
	} {
		s := benchStore(b, c.cfg)
		data := make([]byte, 150)
		for i := uint64(1); i <= 4096; i += 64 {
			if err := s.Save(hardState(1, 1, i+63), benchEntries(i, 64, data), false); err != nil {
				b.Fatal(err)
			}
		}
		for _, n := range []uint64{1, 64} {
			b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ents, err := s.Entries(4096-n, 4096, math.MaxUint64)
					if err != nil || uint64(len(ents)) != n {
						b.Fatal(len(ents), err)
					}
				}
			})
		}
		b.Run(c.name+"/term", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Term(4000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
