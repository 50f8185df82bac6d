package raftstore

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenFile pins value version 1. A new version gets a new file and keeps
// this one, so that TestGoldenDecoding goes on proving v1 data readable.
const goldenFile = "encoding-v1.golden"

// goldenState writes a small but complete raft state through the Store:
// a snapshot with a joint-free ConfState, a hard state and the three kinds
// of entries raft writes (a leader's empty entry, a normal one, a conf
// change).
func goldenState(t *testing.T, s *Store) {
	t.Helper()
	must(t, s.ApplySnapshot(&raftpb.SnapshotMetadata{
		Index: new(uint64(40)), Term: new(uint64(6)),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, AutoLeave: new(false)},
	}))
	cc, err := proto.Marshal(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(4))},
	}})
	must(t, err)
	must(t, s.Save(hardState(7, 2, 42), []*raftpb.Entry{
		{Index: new(uint64(41)), Term: new(uint64(7))},
		{Index: new(uint64(42)), Term: new(uint64(7)), Type: raftpb.EntryNormal.Enum(), Data: []byte("hello, coord")},
		{Index: new(uint64(43)), Term: new(uint64(7)), Type: raftpb.EntryConfChangeV2.Enum(), Data: cc},
	}, true))
}

// rawKeys returns every key of the DB that the Store owns, with its value.
func rawKeys(t *testing.T, db *pebble.DB) [][2][]byte {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("r"), UpperBound: []byte("s")})
	must(t, err)
	defer it.Close()
	var kvs [][2][]byte
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		must(t, err)
		kvs = append(kvs, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(v)})
	}
	must(t, it.Error())
	return kvs
}

func renderGolden(kvs [][2][]byte) string {
	var b strings.Builder
	b.WriteString("# raftstore on-disk encoding, value version 1: one key and value per line, in hex.\n")
	b.WriteString("# Written by: go test ./internal/raftstore -run TestGoldenEncoding -update\n")
	b.WriteString("# Never regenerate to make a test pass: a layout change is a new version and a new file.\n")
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%x %x\n", kv[0], kv[1])
	}
	return b.String()
}

func parseGolden(t *testing.T, text string) [][2][]byte {
	t.Helper()
	var kvs [][2][]byte
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad golden line %q", line)
		}
		kb, err := hex.DecodeString(k)
		must(t, err)
		vb, err := hex.DecodeString(v)
		must(t, err)
		kvs = append(kvs, [2][]byte{kb, vb})
	}
	return kvs
}

// TestGoldenEncoding pins the bytes the Store writes.
func TestGoldenEncoding(t *testing.T) {
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	s, err := Open(db, Config{})
	must(t, err)
	goldenState(t, s)
	got := renderGolden(rawKeys(t, db))
	path := filepath.Join("testdata", goldenFile)
	if *update {
		must(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	must(t, err)
	if got != string(want) {
		t.Fatalf("encoding changed; a layout change needs a new value version.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// TestGoldenDecoding opens a Store over the golden bytes: a DB written by
// this version stays readable.
func TestGoldenDecoding(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", goldenFile))
	must(t, err)
	db := openDB(t, vfs.NewMem())
	defer db.Close()
	for _, kv := range parseGolden(t, string(text)) {
		must(t, db.Set(kv[0], kv[1], pebble.Sync))
	}
	s, err := Open(db, Config{})
	must(t, err)

	db2 := openDB(t, vfs.NewMem())
	defer db2.Close()
	s2, err := Open(db2, Config{})
	must(t, err)
	goldenState(t, s2)
	if got, want := dump(t, s), dump(t, s2); got != want {
		t.Fatalf("golden state\n%+v\nwant\n%+v", got, want)
	}
	ents, err := s.Entries(41, 44, 1<<30)
	must(t, err)
	wents, err := s2.Entries(41, 44, 1<<30)
	must(t, err)
	if !equalEntries(ents, wents) {
		t.Fatalf("entries %v, want %v", ents, wents)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := appendValue(nil, hardState(1, 2, 3))
	must(t, err)
	for name, v := range map[string][]byte{
		"empty":           {},
		"version 0":       append([]byte{0}, good[1:]...),
		"version 2":       append([]byte{2}, good[1:]...),
		"truncated proto": good[:len(good)-1],
	} {
		if err := decodeValue(keyHardState, v, &raftpb.HardState{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: decodeValue = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := parseEntryKey([]byte("re\x00")); err == nil {
		t.Error("parseEntryKey accepted a short key")
	}
}

// TestEntryKeyOrder: byte order of entry keys is index order, and every key
// stays inside the Store's 'r' space.
func TestEntryKeyOrder(t *testing.T) {
	idx := []uint64{0, 1, 2, 255, 256, 1 << 32, 1<<64 - 1}
	for k := 1; k < len(idx); k++ {
		a, b := entryKey(idx[k-1]), entryKey(idx[k])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("entryKey(%d) >= entryKey(%d)", idx[k-1], idx[k])
		}
		if bytes.Compare(b, entryKeysEnd) >= 0 || b[0] != 'r' {
			t.Errorf("entryKey(%d) = %x outside the entry span", idx[k], b)
		}
		if i, err := parseEntryKey(b); err != nil || i != idx[k] {
			t.Errorf("parseEntryKey(entryKey(%d)) = %d, %v", idx[k], i, err)
		}
	}
	for _, k := range [][]byte{keyHardState, keySnapshot, entryPrefix, entryKeysEnd} {
		if k[0] != 'r' {
			t.Errorf("key %q outside the 'r' space", k)
		}
	}
}
