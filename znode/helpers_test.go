package znode

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/coord-dev/coord/internal/wire"
)

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

func openDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func openStore(t testing.TB, db *pebble.DB, cfg Config) *Store {
	t.Helper()
	s, err := Open(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// harness applies entries one by one at consecutive indices.
type harness struct {
	t    testing.TB
	db   *pebble.DB
	s    *Store
	next uint64
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	db := openDB(t, vfs.NewMem())
	s := openStore(t, db, cfg)
	t.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return &harness{t: t, db: db, s: s, next: 1}
}

// apply applies e at the next index and returns its outcome.
func (h *harness) apply(e Entry) Outcome {
	h.t.Helper()
	outs := h.applyBatch([]Entry{e})
	return outs[0]
}

func (h *harness) applyBatch(es []Entry) []Outcome {
	h.t.Helper()
	cs := make([]Committed, len(es))
	for i := range es {
		cs[i] = Committed{Index: h.next, Data: es[i].Marshal()}
		h.next++
	}
	var got []Outcome
	if err := h.s.Apply(cs, func(o []Outcome) { got = o }); err != nil {
		h.t.Fatal(err)
	}
	if len(got) != len(es) {
		h.t.Fatalf("got %d outcomes for %d entries", len(got), len(es))
	}
	return got
}

func (h *harness) createSession(id wire.SessionID) {
	h.t.Helper()
	o := h.apply(Entry{Op: Op{Kind: OpCreateSession, SessionID: id, TimeoutMs: 10000, PassHash: []byte("pw")}})
	if o.Result.Err != wire.OK {
		h.t.Fatalf("create session %v: %s", id, o.Result.Err)
	}
}

func (h *harness) mustGet(path string) *Node {
	h.t.Helper()
	n, err := h.s.Get(path)
	if err != nil {
		h.t.Fatalf("get %s: %v", path, err)
	}
	return n
}

// dumpStore renders the whole tree (depth first, children in order) and the
// session table as text, for comparisons.
func dumpStore(t testing.TB, s *Store) string {
	t.Helper()
	var b strings.Builder
	var walk func(p string)
	walk = func(p string) {
		names, n, err := s.Children(p, "", 0)
		if err != nil {
			t.Fatalf("children %s: %v", p, err)
		}
		fmt.Fprintf(&b, "%s %s ttl=%d %+v acl=%v data=%q\n", p, n.Mode, n.TTLMs, n.Stat, n.ACL, n.Data)
		for _, c := range names {
			walk(wire.Join(p, c))
		}
	}
	walk("/")
	for _, ss := range s.Sessions() {
		fmt.Fprintf(&b, "session %v timeout=%d pass=%q eph=%d %v\n", ss.ID, ss.TimeoutMs, ss.PassHash, ss.Ephemerals, s.Ephemerals(ss.ID))
	}
	return b.String()
}

// diffLines reports the first differing line of two dumps.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  got  %s\n  want %s", i+1, x, y)
		}
	}
	return "equal"
}

func statsEqual(a, b *wire.Stat) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func resultsEqual(a, b Result) bool {
	if a.Kind != b.Kind || a.Err != b.Err || a.Path != b.Path || !statsEqual(a.Stat, b.Stat) || (a.Multi == nil) != (b.Multi == nil) || len(a.Multi) != len(b.Multi) {
		return false
	}
	for i := range a.Multi {
		if !resultsEqual(a.Multi[i], b.Multi[i]) {
			return false
		}
	}
	return true
}

func changesEqual(a, b []Change) bool {
	return slices.EqualFunc(a, b, func(x, y Change) bool {
		return x.Zxid == y.Zxid && x.Path == y.Path && x.Type == y.Type && slices.Equal(x.ACL, y.ACL)
	})
}

func fmtResult(r Result) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{kind=%d err=%q path=%q", r.Kind, r.Err, r.Path)
	if r.Stat != nil {
		fmt.Fprintf(&b, " stat=%+v", *r.Stat)
	}
	if r.Multi != nil {
		b.WriteString(" multi=[")
		for _, m := range r.Multi {
			b.WriteString(fmtResult(m))
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	return b.String()
}
