package znode

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coord-dev/coord/internal/wire"
)

// fill applies n random entries from a model-driven generator to h.
func fill(t *testing.T, h *harness, seed uint64, n int) *model {
	t.Helper()
	m := newModel("", 16)
	g := newGen(seed, m, "")
	g.idx = h.next - 1
	for done := 0; done < n; {
		var cs []Committed
		for range 1 + g.r.IntN(20) {
			c, e := g.next(func(now int64) []Op { return h.s.ReapCandidates(now, 0) })
			modelApply(m, c, e)
			cs = append(cs, c)
		}
		if err := h.s.Apply(cs, nil); err != nil {
			t.Fatal(err)
		}
		done += len(cs)
		h.next = cs[len(cs)-1].Index + 1
	}
	return m
}

func TestSnapshotRestore(t *testing.T) {
	a := newHarness(t, Config{MaxDataBytes: 16})
	fill(t, a, 21, 2000)
	if err := a.s.Apply([]Committed{{Index: a.next, Conf: []byte("conf-a")}}, nil); err != nil {
		t.Fatal(err)
	}
	a.next++
	var snap bytes.Buffer
	idx, err := a.s.Snapshot(&snap)
	if err != nil {
		t.Fatal(err)
	}
	if idx != a.s.AppliedIndex() {
		t.Fatalf("snapshot index %d, applied %d", idx, a.s.AppliedIndex())
	}
	wantDigest, _ := a.s.Digest()
	wantDump := dumpStore(t, a.s)

	// Into a non-empty store with its own tree, sessions and history.
	b := newHarness(t, Config{MaxDataBytes: 16})
	fill(t, b, 22, 3000)
	b.apply(Entry{Op: mkCreate("/only-in-b", "", "")})
	if err := b.s.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	gotDigest, _ := b.s.Digest()
	if gotDigest != wantDigest {
		t.Fatalf("digest after restore %s, want %s", gotDigest, wantDigest)
	}
	if got := dumpStore(t, b.s); got != wantDump {
		t.Fatalf("restored tree: %s", diffLines(got, wantDump))
	}
	if b.s.AppliedIndex() != idx || string(b.s.Conf()) != "conf-a" || b.s.LastTimeMs() != a.s.LastTimeMs() {
		t.Fatalf("restored meta: applied %d conf %q time %d", b.s.AppliedIndex(), b.s.Conf(), b.s.LastTimeMs())
	}
	if _, err := b.s.Get("/only-in-b"); !errors.Is(err, wire.ErrNoNode) {
		t.Fatalf("old node survived restore: %v", err)
	}
	// History is cleared: complete only from the snapshot's index on.
	n := 0
	complete, err := b.s.History(0, func(Change) bool { n++; return true })
	if err != nil || complete || n != 0 {
		t.Fatalf("history after restore: complete=%v n=%d err=%v", complete, n, err)
	}
	if complete, _ := b.s.History(int64(idx), func(Change) bool { return true }); !complete {
		t.Fatal("history from the snapshot index on is incomplete")
	}
	// Both continue identically, and a reopen sees the restored state.
	cs := []Committed{{Index: idx}, {Index: idx + 1, Data: (&Entry{Op: mkCreate("/after", "", "")}).Marshal()}}
	for _, s := range []*Store{a.s, b.s} {
		if err := s.Apply(cs, nil); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := a.s.Digest()
	db, _ := b.s.Digest()
	if da != db {
		t.Fatal("digests differ after applying the same entry")
	}
	b2 := openStore(t, b.db, Config{MaxDataBytes: 16})
	if got := dumpStore(t, b2); got != dumpStore(t, a.s) {
		t.Fatalf("reopened after restore: %s", diffLines(got, dumpStore(t, a.s)))
	}
	// The digest covers what it must: a different conf changes it.
	if err := a.s.Apply([]Committed{{Index: idx + 2, Conf: []byte("other")}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.s.Apply([]Committed{{Index: idx + 2, Conf: []byte("other!")}}, nil); err != nil {
		t.Fatal(err)
	}
	da, _ = a.s.Digest()
	db, _ = b.s.Digest()
	if da == db {
		t.Fatal("digest ignores Conf")
	}
}

func TestRestoreRejectsBadStreams(t *testing.T) {
	a := newHarness(t, Config{})
	a.createSession(3)
	a.apply(Entry{Session: 3, Xid: 1, Op: mkCreate("/x", "data", wire.ModeEphemeral)})
	var snap bytes.Buffer
	if _, err := a.s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()

	b := newHarness(t, Config{})
	b.apply(Entry{Op: mkCreate("/mine", "", "")})
	before := dumpStore(t, b.s)
	bad := map[string][]byte{
		"empty":    nil,
		"magic":    append([]byte("x"), good[1:]...),
		"trailing": append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1),
	}
	for i := 0; i < len(good); i += 7 {
		bad[fmt.Sprintf("truncated at %d", i)] = good[:i]
	}
	for i := len(snapMagic) + 1; i < len(good)-32; i += 5 {
		c := bytes.Clone(good)
		c[i] ^= 0x40
		bad[fmt.Sprintf("flipped at %d", i)] = c
	}
	for name, stream := range bad {
		err := b.s.Restore(bytes.NewReader(stream))
		if !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := dumpStore(t, b.s); got != before {
		t.Fatalf("a refused restore changed the state: %s", diffLines(got, before))
	}
	// A stream with a good checksum whose ephemeral names a session it
	// lacks is refused too.
	var recs [][2][]byte
	d := good[len(snapMagic)+1 : len(good)-32]
	for {
		r := dec{b: d}
		kl := r.uvarint()
		if kl == 0 {
			break
		}
		vl := r.uvarint()
		k, v := r.b[:kl], r.b[kl:kl+vl]
		d = r.b[kl+vl:]
		if !bytes.HasPrefix(k, []byte(prefixSession)) {
			recs = append(recs, [2][]byte{k, v})
		}
	}
	if err := b.s.Restore(bytes.NewReader(buildStream(recs))); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("stream without the session: %v", err)
	}
	if got := dumpStore(t, b.s); got != before {
		t.Fatalf("a refused restore changed the state: %s", diffLines(got, before))
	}
	if err := b.s.Restore(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
}

// buildStream writes a snapshot stream of the given records.
func buildStream(recs [][2][]byte) []byte {
	w := enc{}
	w.raw([]byte(snapMagic))
	w.uvarint(snapVersion)
	for _, r := range recs {
		w.uvarint(uint64(len(r[0])))
		w.uvarint(uint64(len(r[1])))
		w.raw(r[0])
		w.raw(r[1])
	}
	w.uvarint(0)
	sum := sha256.Sum256(w.b)
	return append(w.b, sum[:]...)
}

// TestSnapshotWhileApplying takes snapshots while another goroutine applies:
// each must hold exactly the state at its index.
func TestSnapshotWhileApplying(t *testing.T) {
	a := newHarness(t, Config{MaxDataBytes: 16})
	m := newModel("", 16)
	g := newGen(31, m, "")
	dumps := map[uint64]string{0: m.dump()}
	// Model dumps are computed up front, since the model is not safe to
	// share.
	var batches [][]Committed
	for range 120 {
		var cs []Committed
		for range 1 + g.r.IntN(20) {
			c, e := g.next(func(int64) []Op { return nil })
			modelApply(m, c, e)
			cs = append(cs, c)
		}
		batches = append(batches, cs)
		dumps[cs[len(cs)-1].Index] = m.dump()
	}
	done := make(chan error)
	go func() {
		for _, cs := range batches {
			if err := a.s.Apply(cs, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var snaps []*bytes.Buffer
	var idxs []uint64
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		var buf bytes.Buffer
		idx, err := a.s.Snapshot(&buf)
		if err != nil {
			t.Fatal(err)
		}
		snaps, idxs = append(snaps, &buf), append(idxs, idx)
	}
	distinct := map[uint64]bool{}
	for i, buf := range snaps {
		b := newHarness(t, Config{MaxDataBytes: 16})
		if err := b.s.Restore(buf); err != nil {
			t.Fatal(err)
		}
		want, ok := dumps[idxs[i]]
		if !ok || b.s.AppliedIndex() != idxs[i] {
			t.Fatalf("snapshot at %d (restored %d) is not at a batch boundary", idxs[i], b.s.AppliedIndex())
		}
		if got := dumpStore(t, b.s); got != want {
			t.Fatalf("snapshot at %d: %s", idxs[i], diffLines(got, want))
		}
		distinct[idxs[i]] = true
	}
	t.Logf("%d snapshots at %d distinct indices", len(snaps), len(distinct))
}

func TestOpenRefusesForeignState(t *testing.T) {
	fs := vfs.NewMem()
	db := openDB(t, fs)
	defer db.Close()
	if err := db.Set([]byte(keyVersion), []byte{99}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db, Config{}); err == nil {
		t.Fatal("opened a store of an unknown state version")
	}
	if _, err := Open(db, Config{MaxDataBytes: -1}); err == nil {
		t.Fatal("opened with an invalid config")
	}
}
