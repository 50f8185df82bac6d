package znode

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files and the fuzz seed corpus")

// sampleEntries covers every op kind and every field of the entry encoding.
// Slices are nil where empty, as DecodeEntry returns them.
func sampleEntries() []struct {
	name string
	e    Entry
} {
	return []struct {
		name string
		e    Entry
	}{
		{"create", Entry{ID: 42, TimeMs: 1764160000000, Session: 0x3e9, Xid: 7,
			Idents: []Ident{{"digest", DigestID("alice", "pw")}, {"ip", "10.0.0.1"}},
			Op: Op{Kind: OpCreate, Path: "/app/config", Data: []byte("hello"), Mode: wire.ModePersistentSequentialTTL, TTLMs: 60000,
				ACL: []wire.ACL{{Perms: wire.PermAll, Scheme: "world", ID: "anyone"}, {Perms: wire.PermRead, Scheme: "auth"}}}}},
		{"delete", Entry{TimeMs: 1, Session: 1, Xid: 1, Op: Op{Kind: OpDelete, Path: "/a", Version: -1}}},
		{"set", Entry{TimeMs: 2, Session: 1, Xid: 2, Op: Op{Kind: OpSet, Path: "/a", Data: []byte{0, 1, 2, 255}, Version: 3}}},
		{"set_acl", Entry{Session: 1, Xid: 3, Op: Op{Kind: OpSetACL, Path: "/a", ACL: wire.ReadACL(), Version: 0}}},
		{"multi", Entry{Session: 1, Xid: 4, Op: Op{Kind: OpMulti, Ops: []Op{
			{Kind: OpCheck, Path: "/a", Version: 2},
			{Kind: OpCreate, Path: "/a/b", Mode: wire.ModeEphemeral, ACL: wire.OpenACL()},
			{Kind: OpDelete, Path: "/a/c", Version: -1},
		}}}},
		{"create_session", Entry{ID: 9, TimeMs: 5, Op: Op{Kind: OpCreateSession, SessionID: 0xdeadbeefcafe, TimeoutMs: 10000, PassHash: bytes.Repeat([]byte{0xab}, 32)}}},
		{"close_session", Entry{TimeMs: 6, Op: Op{Kind: OpCloseSession, SessionID: 0xdeadbeefcafe, Expired: true}}},
		{"reap", Entry{TimeMs: -1, Op: Op{Kind: OpReap, Path: "/c", Mode: wire.ModeContainer}}},
		{"noop", Entry{Op: Op{Kind: OpNoop}}},
	}
}

// goldenValues returns the other stored encodings (node, result, change
// list, session) of fixed values.
func goldenValues() []struct {
	name string
	b    []byte
} {
	st := wire.Stat{Czxid: 5, Mzxid: 9, Pzxid: 12, Ctime: 1764160000000, Mtime: 1764160001000, Version: 2, Cversion: 3, Aversion: 1,
		EphemeralOwner: 0x3e9, DataLength: 5, NumChildren: 0}
	n := &node{stat: st, mode: wire.ModeEphemeralSequential, seq: 4, acl: wire.OpenACL(), data: []byte("hello")}
	r := Result{Kind: OpMulti, Multi: []Result{{Kind: OpCreate, Path: "/a0000000001", Stat: &st}, {Kind: OpCheck}, {Kind: OpDelete, Err: wire.RuntimeInconsistency}}, Err: wire.BadVersion}
	cs := []Change{{Zxid: 12, Path: "/a", Type: wire.EventNodeCreated, ACL: wire.OpenACL()}, {Zxid: 12, Path: "/", Type: wire.EventNodeChildrenChanged, ACL: wire.ReadACL()}}
	return []struct {
		name string
		b    []byte
	}{
		{"node", encodeNode(nil, n)},
		{"root", encodeNode(nil, rootNode())},
		{"result", encodeResult(nil, &r)},
		{"changes", encodeChanges(nil, cs)},
		{"session", encodeSession(nil, &sessionEntry{timeoutMs: 10000, passHash: []byte{1, 2, 3}})},
	}
}

// goldenSnapshot is the snapshot stream and digest of a small fixed store.
func goldenSnapshot(t *testing.T) (snap []byte, digest string) {
	h := newHarness(t, Config{})
	h.createSession(0x3e9)
	h.apply(Entry{TimeMs: 1000, Session: 0x3e9, Xid: 1, Op: mkCreate("/a", "x", "")})
	h.apply(Entry{TimeMs: 2000, Session: 0x3e9, Xid: 2, Op: mkCreate("/a/e", "", wire.ModeEphemeral)})
	h.apply(Entry{TimeMs: 3000, Op: mkTTL("/t", wire.ModePersistentTTL, 500)})
	if err := h.s.Apply([]Committed{{Index: 5, Conf: []byte("conf")}}, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := h.s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	d, err := h.s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), d
}

// TestGolden pins every stored or replicated encoding: entries (what raft
// carries), node values, cached results, change lists, sessions, the
// snapshot stream and the digest. A change here breaks compatibility with
// existing logs and stores: bump the version byte of what changed instead.
func TestGolden(t *testing.T) {
	var got []string
	for _, s := range sampleEntries() {
		got = append(got, "entry/"+s.name+" "+hex.EncodeToString(s.e.Marshal()))
	}
	for _, v := range goldenValues() {
		got = append(got, "value/"+v.name+" "+hex.EncodeToString(v.b))
	}
	snap, digest := goldenSnapshot(t)
	got = append(got, "snapshot "+hex.EncodeToString(snap), "digest "+digest)
	file := filepath.Join("testdata", "encodings.golden")
	if *update {
		if err := os.WriteFile(file, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	if len(wantLines) != len(got) {
		t.Fatalf("%d golden lines, produced %d (run with -update after a deliberate change)", len(wantLines), len(got))
	}
	for i := range got {
		if got[i] != wantLines[i] {
			t.Errorf("encoding changed:\n got  %s\n want %s", got[i], wantLines[i])
		}
	}
	// The golden bytes decode to the samples.
	for i, s := range sampleEntries() {
		b, _ := hex.DecodeString(strings.Fields(wantLines[i])[1])
		e, err := DecodeEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !reflect.DeepEqual(*e, s.e) {
			t.Errorf("%s: decoded\n  %+v\nwant\n  %+v", s.name, *e, s.e)
		}
	}
	if *update {
		writeSeedCorpus(t)
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, v := range goldenValues() {
		var err error
		var again []byte
		switch v.name {
		case "node", "root":
			var n *node
			if n, err = decodeNode(v.b); err == nil {
				again = encodeNode(nil, n)
			}
		case "result":
			var r Result
			if r, err = decodeResult(v.b); err == nil {
				again = encodeResult(nil, &r)
			}
		case "changes":
			var cs []Change
			if cs, err = decodeChanges(v.b); err == nil {
				again = encodeChanges(nil, cs)
			}
		case "session":
			var s *sessionEntry
			if s, err = decodeSession(1, v.b); err == nil {
				again = encodeSession(nil, s)
			}
		}
		if err != nil || !bytes.Equal(again, v.b) {
			t.Errorf("%s: round trip: %v %x != %x", v.name, err, again, v.b)
		}
		// Every truncation is an error, never a panic. A node's data runs
		// to the end of its value: only cuts inside the header must fail.
		end := len(v.b)
		if v.name == "node" {
			end -= len("hello")
		}
		for i := range end {
			var err error
			switch v.name {
			case "node", "root":
				_, err = decodeNode(v.b[:i])
			case "result":
				_, err = decodeResult(v.b[:i])
			case "changes":
				_, err = decodeChanges(v.b[:i])
			case "session":
				_, err = decodeSession(1, v.b[:i])
			}
			if err == nil {
				t.Errorf("%s truncated at %d decoded", v.name, i)
			}
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, s := range sampleEntries() {
		b := s.e.Marshal()
		e, err := DecodeEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !reflect.DeepEqual(*e, s.e) {
			t.Errorf("%s: round trip\n  %+v\n  %+v", s.name, *e, s.e)
		}
		for i := range b {
			if _, err := DecodeEntry(b[:i]); err == nil {
				t.Errorf("%s: truncated at %d decoded", s.name, i)
			} else if wire.CodeOf(err) != wire.MarshallingError {
				t.Errorf("%s: error %v does not match MarshallingError", s.name, err)
			}
		}
		if _, err := DecodeEntry(append(bytes.Clone(b), 0)); err == nil {
			t.Errorf("%s: trailing byte accepted", s.name)
		}
	}
	// Zero values are not encoded, empty slices come back nil.
	e := Entry{Op: Op{Kind: OpSet, Data: []byte{}, ACL: []wire.ACL{}, Ops: []Op{}}}
	d, err := DecodeEntry(e.Marshal())
	if err != nil || d.Op.Data != nil || d.Op.ACL != nil || d.Op.Ops != nil {
		t.Errorf("empty slices: %+v %v", d, err)
	}
	for name, b := range map[string][]byte{
		"version":      {2, 0, 0, 0, 0, 0, 1, 0},
		"kind 0":       {1, 0, 0, 0, 0, 0, 0, 0},
		"kind 11":      {1, 0, 0, 0, 0, 0, 11, 0},
		"unknown bits": {1, 0, 0, 0, 0, 0, 1, 0x80, 0x10},
		"huge count":   {1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":  {1, 0, 0, 0, 0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad perms":    {1, 0, 0, 0, 0, 0, 1, fACL, 1, 0x20, 0, 0},
		"long varint":  {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := DecodeEntry(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// Nesting is bounded.
	op := Op{Kind: OpNoop}
	for range maxOpDepth {
		op = Op{Kind: OpMulti, Ops: []Op{op}}
	}
	if _, err := DecodeEntry((&Entry{Op: op}).Marshal()); err == nil {
		t.Error("deep nesting decoded")
	}
}

// writeSeedCorpus writes the fuzz seed corpus of FuzzDecodeEntry: the
// sample entries and some truncated or damaged ones.
func writeSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeEntry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sampleEntries() {
		b := s.e.Marshal()
		write("sample_"+s.name, b)
		write("truncated_"+s.name, b[:len(b)/2])
		c := bytes.Clone(b)
		c[len(c)/3] ^= 0x81
		write("flipped_"+s.name, c)
	}
	write("empty", nil)
}

func FuzzDecodeEntry(f *testing.F) {
	for _, s := range sampleEntries() {
		f.Add(s.e.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			if wire.CodeOf(err) != wire.MarshallingError {
				t.Fatalf("error %v does not match MarshallingError", err)
			}
			return
		}
		b2 := e.Marshal()
		e2, err := DecodeEntry(b2)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("decode→encode→decode changed the entry:\n %+v\n %+v", e, e2)
		}
		if b3 := e2.Marshal(); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding unstable: %x != %x", b2, b3)
		}
	})
}
