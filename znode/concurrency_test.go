package znode

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

// TestReadersSeeOnlyPublished runs readers against a writer: a reader never
// observes state whose outcomes were not yet published, and a listing agrees
// with its parent's num_children.
func TestReadersSeeOnlyPublished(t *testing.T) {
	h := newHarness(t, Config{})
	h.applyBatch([]Entry{{Op: mkCreate("/a", "", "")}, {Op: mkCreate("/b", "", "")}, {Op: mkCreate("/dir", "", "")},
		{Op: Op{Kind: OpCreateSession, SessionID: 1, TimeoutMs: 1}}})
	var published atomic.Uint64
	published.Store(h.next - 1)
	const batches = 300
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch r % 4 {
				case 0:
					n, err := h.s.Get("/a")
					if err == nil && uint64(n.Stat.Mzxid) > published.Load() {
						errc <- fmt.Errorf("read mzxid %d before its publish (%d)", n.Stat.Mzxid, published.Load())
						return
					}
				case 1:
					names, dir, err := h.s.Children("/dir", "", 0)
					if err == nil && len(names) != int(dir.Stat.NumChildren) {
						errc <- fmt.Errorf("%d children listed, num_children %d", len(names), dir.Stat.NumChildren)
						return
					}
				case 2:
					if idx := h.s.AppliedIndex(); idx > published.Load() {
						errc <- fmt.Errorf("applied index %d before its publish (%d)", idx, published.Load())
						return
					}
				case 3:
					if _, err := h.s.History(0, func(Change) bool { return true }); err != nil {
						errc <- err
						return
					}
					// Ephemerals only grow here: a later listing has at least as many.
					if ss := h.s.Sessions(); len(ss) != 1 || ss[0].Ephemerals > len(h.s.Ephemerals(1)) {
						errc <- fmt.Errorf("sessions %v", ss)
						return
					}
					h.s.ReapCandidates(1<<40, 10)
				}
			}
		}()
	}
	for i := range batches {
		cs := []Committed{
			{Index: h.next, Data: (&Entry{Op: mkSet("/a", "x", -1)}).Marshal()},
			{Index: h.next + 1, Data: (&Entry{Op: mkSet("/b", "x", -1)}).Marshal()},
			{Index: h.next + 2, Data: (&Entry{Session: 1, Xid: int64(i + 1), Op: mkCreate(fmt.Sprintf("/dir/%d", i), "", wire.ModeEphemeral)}).Marshal()},
		}
		h.next += 3
		err := h.s.Apply(cs, func(o []Outcome) {
			published.Store(o[len(o)-1].Index)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	a, b := h.mustGet("/a"), h.mustGet("/b")
	if a.Stat.Version != batches || b.Stat.Version != batches {
		t.Fatalf("versions %d %d", a.Stat.Version, b.Stat.Version)
	}
	if _, err := h.s.Get("/dir/x"); err != wire.ErrNoNode {
		t.Fatal(err)
	}
}
