package znode

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

// This file drives the reference model (model_test.go) and the store with
// the same long random sequences of entries.

// gen produces random entries against the model's current state.
type gen struct {
	r       *rand.Rand
	m       *model
	super   string
	nextID  wire.SessionID
	xids    map[wire.SessionID]int64
	time    int64
	idx     uint64
	garbage bool
	// few keeps two sessions alive and never closes them, so that result
	// caches fill past ResultsPerSession.
	few bool
}

var (
	genNames = []string{"a", "b", "c", "q-"}
	alice    = Ident{"digest", DigestID("alice", "pw")}
	bobIDs   = []Ident{{"digest", DigestID("bob", "pw")}, {"ip", "10.1.1.1"}}
	eveIDs   = []Ident{{"ip", "192.168.1.1"}}
)

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) path() string {
	if g.r.IntN(10) < 7 && len(g.m.nodes) > 1 {
		var ps []string
		for p := range g.m.nodes {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		p := g.pick(ps)
		if g.r.IntN(3) == 0 && wire.Depth(p) < 4 {
			return wire.Join(p, g.pick(genNames))
		}
		return p
	}
	p := "/" + g.pick(genNames)
	for g.r.IntN(2) == 0 && wire.Depth(p) < 3 {
		p += "/" + g.pick(genNames)
	}
	if g.r.IntN(40) == 0 {
		return g.pick([]string{"", "/", "x", "/a/", "/a//b", "/a/.."})
	}
	return p
}

func (g *gen) acl() []wire.ACL {
	switch g.r.IntN(12) {
	case 0:
		return wire.ReadACL()
	case 1:
		return []wire.ACL{{Perms: wire.PermAll, Scheme: "digest", ID: alice.ID}}
	case 2:
		return []wire.ACL{{Perms: wire.PermRead | wire.PermCreate | wire.PermWrite, Scheme: "ip", ID: "10.0.0.0/8"}, {Perms: wire.PermAll, Scheme: "digest", ID: alice.ID}}
	case 3:
		return wire.CreatorAllACL()
	case 4:
		return []wire.ACL{{Perms: wire.PermAll, Scheme: "world", ID: "bob"}}
	case 5:
		return []wire.ACL{{Perms: wire.PermDelete | wire.PermCreate, Scheme: "world", ID: "anyone"}, {Perms: wire.PermAll, Scheme: "ip", ID: "192.168.1.1"}}
	}
	return wire.OpenACL()
}

func (g *gen) version(p string) int32 {
	switch g.r.IntN(4) {
	case 0, 1:
		return -1
	case 2:
		if n := g.m.nodes[p]; n != nil {
			return n.stat.Version
		}
	}
	return int32(g.r.IntN(3))
}

func (g *gen) data() []byte {
	switch g.r.IntN(8) {
	case 0:
		return nil
	case 1:
		return make([]byte, g.m.maxData+1)
	}
	return []byte(fmt.Sprintf("d%d", g.r.IntN(100)))
}

func (g *gen) simpleOp() Op {
	switch g.r.IntN(10) {
	case 0, 1, 2, 3:
		modes := wire.Modes()
		mode := modes[g.r.IntN(len(modes))]
		if g.r.IntN(20) == 0 {
			mode = "weird"
		}
		op := Op{Kind: OpCreate, Path: g.path(), Data: g.data(), Mode: mode, ACL: g.acl()}
		if mode.TTL() || g.r.IntN(30) == 0 {
			op.TTLMs = int64(g.r.IntN(3000))
		}
		return op
	case 4, 5:
		p := g.path()
		return Op{Kind: OpDelete, Path: p, Version: g.version(p)}
	case 6, 7:
		p := g.path()
		return Op{Kind: OpSet, Path: p, Data: g.data(), Version: g.version(p)}
	case 8:
		p := g.path()
		return Op{Kind: OpCheck, Path: p, Version: g.version(p)}
	}
	p := g.path()
	v := int32(-1)
	if n := g.m.nodes[p]; n != nil && g.r.IntN(2) == 0 {
		v = n.stat.Aversion + int32(g.r.IntN(2))
	}
	return Op{Kind: OpSetACL, Path: p, ACL: g.acl(), Version: v}
}

func (g *gen) liveSession() wire.SessionID {
	var ids []wire.SessionID
	for id := range g.m.sessions {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return 0
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids[g.r.IntN(len(ids))]
}

// next returns the next committed entry (and the decoded entry, nil for
// garbage or empty entries).
func (g *gen) next(reap func(now int64) []Op) (Committed, *Entry) {
	g.idx++
	c := Committed{Index: g.idx}
	if g.garbage && g.r.IntN(100) == 0 {
		if g.r.IntN(2) == 0 {
			c.Data = []byte{entryVersion, 0xff, 0xff}
		}
		return c, nil
	}
	g.time += int64(g.r.IntN(200)) - 20
	e := &Entry{TimeMs: g.time, ID: uint64(g.r.IntN(1000))}
	switch x := g.r.IntN(100); {
	case !g.few && (x < 1 || len(g.m.sessions) == 0 && x < 10), g.few && len(g.m.sessions) < 2:
		g.nextID++
		id := g.nextID
		if g.r.IntN(10) == 0 {
			id = g.liveSession() // NodeExists (or 0: BadArguments)
		}
		e.Op = Op{Kind: OpCreateSession, SessionID: id, TimeoutMs: int64(1000 + g.r.IntN(10)), PassHash: []byte{byte(id)}}
	case x < 2 && !g.few:
		id := g.liveSession()
		if g.r.IntN(2) == 0 {
			e.Session = id
		}
		if g.r.IntN(10) == 0 {
			id = 12345
		}
		e.Op = Op{Kind: OpCloseSession, SessionID: id}
	case x < 10:
		cands := reap(g.time)
		if len(cands) > 0 && g.r.IntN(3) > 0 {
			e.Op = cands[g.r.IntN(len(cands))]
		} else {
			mode := wire.ModeContainer
			if g.r.IntN(2) == 0 {
				mode = wire.ModePersistentTTL
			}
			e.Op = Op{Kind: OpReap, Path: g.path(), Mode: mode}
		}
	case x < 11:
		e.Op = Op{Kind: OpNoop}
	case x < 20:
		n := g.r.IntN(5)
		e.Op = Op{Kind: OpMulti}
		for range n {
			if g.r.IntN(25) == 0 {
				e.Op.Ops = append(e.Op.Ops, Op{Kind: OpMulti})
			} else {
				e.Op.Ops = append(e.Op.Ops, g.simpleOp())
			}
		}
	default:
		e.Op = g.simpleOp()
	}
	if e.Op.Kind != OpCreateSession && e.Op.Kind != OpCloseSession && e.Op.Kind != OpReap {
		switch g.r.IntN(10) {
		case 0:
			e.Session = 0
		case 1:
			e.Session = 999999 // never created
		default:
			e.Session = g.liveSession()
		}
	}
	if e.Session != 0 {
		switch g.r.IntN(12) {
		case 0: // resend a recent xid
			e.Xid = max(g.xids[e.Session]-int64(g.r.IntN(3)), 1)
		case 1: // a very old one
			e.Xid = int64(1 + g.r.IntN(10))
		case 2:
			e.Xid = 0
		default:
			g.xids[e.Session]++
			e.Xid = g.xids[e.Session] + 10
		}
		switch g.r.IntN(5) {
		case 0:
			e.Idents = []Ident{alice}
		case 1:
			e.Idents = bobIDs
		case 2:
			e.Idents = eveIDs
		case 3:
			if g.r.IntN(4) == 0 {
				e.Idents = []Ident{{"digest", g.super}}
			}
		}
	}
	c.Data = e.Marshal()
	return c, e
}

func newGen(seed uint64, m *model, super string) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: m, super: super, xids: map[wire.SessionID]int64{}, garbage: true, time: 1_700_000_000_000}
}

// modelApply applies c to the model, returning the outcome the store must
// produce.
func modelApply(m *model, c Committed, e *Entry) Outcome {
	o := Outcome{Index: c.Index}
	if len(c.Data) == 0 {
		return o
	}
	if e == nil {
		o.Result.Err = wire.MarshallingError
		return o
	}
	o.Entry = e
	o.Result, o.Changes, o.Duplicate, o.Closed = m.apply(c.Index, e)
	return o
}

func checkOutcome(t *testing.T, got, want Outcome) {
	t.Helper()
	if got.Index != want.Index || got.Duplicate != want.Duplicate || got.Closed != want.Closed ||
		!resultsEqual(got.Result, want.Result) || !changesEqual(got.Changes, want.Changes) || (got.Entry == nil) != (want.Entry == nil) {
		var op string
		if want.Entry != nil {
			op = fmt.Sprintf("%+v", *want.Entry)
		}
		t.Fatalf("index %d (%s):\n got  %s dup=%v closed=%v changes=%v\n want %s dup=%v closed=%v changes=%v",
			want.Index, op, fmtResult(got.Result), got.Duplicate, got.Closed, got.Changes,
			fmtResult(want.Result), want.Duplicate, want.Closed, want.Changes)
	}
}

func TestModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	steps := 6000
	if testing.Short() {
		seeds, steps = seeds[:1], 1500
	}
	fewSeed := uint64(4) // the seed run with two long sessions
	super := DigestID("super", "pw")
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			// The node cache must not change anything: run with the default,
			// none, and a tiny one that evicts all the time.
			cfg := Config{SuperDigest: super, MaxDataBytes: 16, NodeCacheBytes: map[uint64]int{2: -1, 3: 8 << 10}[seed]}
			a := newHarness(t, cfg) // random batches
			b := newHarness(t, cfg) // one entry per batch
			m := newModel(super, 16)
			g := newGen(seed, m, super)
			g.few = seed == fewSeed
			reap := func(now int64) []Op { return a.s.ReapCandidates(now, 0) }
			stats := map[string]int{}
			for done := 0; done < steps; {
				n := 1 + g.r.IntN(20)
				var cs []Committed
				var want []Outcome
				for range n {
					c, e := g.next(reap)
					cs = append(cs, c)
					want = append(want, modelApply(m, c, e))
				}
				done += n
				var got []Outcome
				if err := a.s.Apply(cs, func(o []Outcome) { got = o }); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					checkOutcome(t, got[i], want[i])
					k := fmt.Sprintf("%d/%s", want[i].Result.Kind, want[i].Result.Err)
					if want[i].Duplicate {
						k = "dup"
					}
					stats[k]++
				}
				for _, c := range cs {
					if err := b.s.Apply([]Committed{c}, nil); err != nil {
						t.Fatal(err)
					}
				}
				if g.r.IntN(10) == 0 {
					if got, want := dumpStore(t, a.s), m.dump(); got != want {
						t.Fatalf("after index %d: store and model differ: %s", g.idx, diffLines(got, want))
					}
					now := g.time + int64(g.r.IntN(3000))
					var got []string
					for _, op := range a.s.ReapCandidates(now, 0) {
						got = append(got, op.Path)
					}
					if fmt.Sprint(got) != fmt.Sprint(m.candidates(now)) {
						t.Fatalf("reap candidates at %d: %v, want %v", now, got, m.candidates(now))
					}
				}
			}
			if got, want := dumpStore(t, a.s), m.dump(); got != want {
				t.Fatalf("final: store and model differ: %s", diffLines(got, want))
			}
			da, err := a.s.Digest()
			if err != nil {
				t.Fatal(err)
			}
			db, _ := b.s.Digest()
			if da != db {
				t.Fatalf("digests differ between batchings: %s %s", da, db)
			}
			// Every session's result cache matches the model's.
			for id, ms := range m.sessions {
				e := a.s.mu.sessions[id]
				if len(e.xids) != len(ms.results) {
					t.Fatalf("session %v: %d cached results, model %d", id, len(e.xids), len(ms.results))
				}
			}
			maxCached := 0
			for _, ms := range m.sessions {
				maxCached = max(maxCached, len(ms.results))
			}
			t.Logf("%d nodes, %d sessions, max %d cached results; outcomes %v", len(m.nodes), len(m.sessions), maxCached, stats)
		})
	}
}
