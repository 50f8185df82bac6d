package session

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

// TestTrackerSteps runs scripted steps against a tracker, at times given as
// offsets from a start.
func TestTrackerSteps(t *testing.T) {
	type step struct {
		at      time.Duration // now = start + at
		op      string        // touch, remove, reset, expired
		id      wire.SessionID
		timeout time.Duration
		reset   map[wire.SessionID]time.Duration
		want    []wire.SessionID // expired
	}
	const s = time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"empty", []step{
			{at: 0, op: "expired"},
			{at: 100 * s, op: "expired"},
		}},
		{"expires at its deadline, not before", []step{
			{at: 0, op: "touch", id: 1, timeout: 3 * s},
			{at: 3*s - 1, op: "expired"},
			{at: 3 * s, op: "expired", want: []wire.SessionID{1}},
			{at: 4 * s, op: "expired", want: []wire.SessionID{1}}, // not removed
		}},
		{"touch extends", []step{
			{at: 0, op: "touch", id: 1, timeout: 3 * s},
			{at: 2 * s, op: "touch", id: 1, timeout: 3 * s},
			{at: 4 * s, op: "expired"},
			{at: 5 * s, op: "expired", want: []wire.SessionID{1}},
		}},
		{"touch never shortens", []step{
			{at: 0, op: "touch", id: 1, timeout: 10 * s},
			{at: 1 * s, op: "touch", id: 1, timeout: 2 * s}, // 3s < 10s: kept 10s
			{at: 9 * s, op: "expired"},
			{at: 10 * s, op: "expired", want: []wire.SessionID{1}},
		}},
		{"late report does not revive sooner", []step{
			{at: 5 * s, op: "touch", id: 1, timeout: 3 * s},
			{at: 1 * s, op: "touch", id: 1, timeout: 3 * s}, // an older time
			{at: 7 * s, op: "expired"},
			{at: 8 * s, op: "expired", want: []wire.SessionID{1}},
		}},
		{"touch after deadline revives", []step{
			{at: 0, op: "touch", id: 1, timeout: 3 * s},
			{at: 4 * s, op: "expired", want: []wire.SessionID{1}},
			{at: 4 * s, op: "touch", id: 1, timeout: 3 * s},
			{at: 5 * s, op: "expired"},
		}},
		{"remove", []step{
			{at: 0, op: "touch", id: 1, timeout: 1 * s},
			{at: 0, op: "touch", id: 2, timeout: 1 * s},
			{at: 2 * s, op: "remove", id: 1},
			{at: 2 * s, op: "remove", id: 9}, // unknown: nothing
			{at: 2 * s, op: "expired", want: []wire.SessionID{2}},
			{at: 2 * s, op: "remove", id: 2},
			{at: 2 * s, op: "expired"},
		}},
		{"sorted by id", []step{
			{at: 0, op: "touch", id: 30, timeout: 1 * s},
			{at: 0, op: "touch", id: 10, timeout: 3 * s},
			{at: 0, op: "touch", id: 20, timeout: 2 * s},
			{at: 0, op: "touch", id: 5, timeout: 9 * s},
			{at: 3 * s, op: "expired", want: []wire.SessionID{10, 20, 30}},
		}},
		{"reset gives a fresh full timeout and forgets others", []step{
			{at: 0, op: "touch", id: 1, timeout: 2 * s},
			{at: 0, op: "touch", id: 2, timeout: 2 * s},
			{at: 10 * s, op: "reset", reset: map[wire.SessionID]time.Duration{1: 2 * s, 3: 5 * s}},
			{at: 11 * s, op: "expired"},
			{at: 12 * s, op: "expired", want: []wire.SessionID{1}},
			{at: 15 * s, op: "expired", want: []wire.SessionID{1, 3}},
		}},
		{"reset to nothing", []step{
			{at: 0, op: "touch", id: 1, timeout: 2 * s},
			{at: 0, op: "reset"},
			{at: 9 * s, op: "expired"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker()
			start := time.Now()
			for i, st := range tt.steps {
				now := start.Add(st.at)
				switch st.op {
				case "touch":
					tr.Touch(st.id, st.timeout, now)
				case "remove":
					tr.Remove(st.id)
				case "reset":
					tr.ResetAll(st.reset, now)
				case "expired":
					if got := tr.Expired(now); !slices.Equal(got, st.want) {
						t.Fatalf("step %d: Expired(+%v) = %v, want %v", i, st.at, got, st.want)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, st.op)
				}
				checkTracker(t, tr)
			}
		})
	}
}

func TestTrackerNextDeadline(t *testing.T) {
	var tr Tracker // the zero tracker works
	if _, ok := tr.NextDeadline(); ok {
		t.Fatal("empty tracker has a deadline")
	}
	start := time.Now()
	tr.Touch(1, 5*time.Second, start)
	tr.Touch(2, 3*time.Second, start)
	if d, ok := tr.NextDeadline(); !ok || !d.Equal(start.Add(3*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v", d, ok)
	}
	if got := tr.Expired(start.Add(3 * time.Second)); !slices.Equal(got, []wire.SessionID{2}) {
		t.Fatalf("Expired at NextDeadline = %v", got)
	}
	tr.Remove(2)
	if d, ok := tr.NextDeadline(); !ok || !d.Equal(start.Add(5*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v", d, ok)
	}
	if d, ok := tr.Deadline(1); !ok || !d.Equal(start.Add(5*time.Second)) {
		t.Fatalf("Deadline(1) = %v, %v", d, ok)
	}
	if _, ok := tr.Deadline(2); ok {
		t.Fatal("removed session has a deadline")
	}
	if tr.Len() != 1 {
		t.Fatalf("Len = %d", tr.Len())
	}
}

// The tracker against a naive map of deadlines, on a random history.
func TestTrackerAgainstModel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	tr := NewTracker()
	model := map[wire.SessionID]time.Time{}
	timeouts := map[wire.SessionID]time.Duration{} // the latest Touch's, for Extend
	now := time.Now()
	for step := range 20_000 {
		id := wire.SessionID(rnd.IntN(200) + 1)
		switch op := rnd.IntN(100); {
		case op < 60:
			timeout := time.Duration(rnd.IntN(5_000)) * time.Millisecond
			tr.Touch(id, timeout, now)
			timeouts[id] = timeout
			if d := now.Add(timeout); d.After(model[id]) {
				model[id] = d
			}
		case op < 65:
			tracked := tr.Extend(id, now)
			if d, ok := model[id]; ok != tracked {
				t.Fatalf("step %d: Extend(%v) = %v, tracked %v", step, id, tracked, ok)
			} else if ok {
				if d2 := now.Add(timeouts[id]); d2.After(d) {
					model[id] = d2
				}
			}
		case op < 66:
			d, ok := tr.NextDeadline()
			var want time.Time
			for _, md := range model {
				if want.IsZero() || md.Before(want) {
					want = md
				}
			}
			if ok != (len(model) > 0) || ok && !d.Equal(want) {
				t.Fatalf("step %d: NextDeadline = %v, %v, want %v", step, d, ok, want)
			}
		case op < 72:
			tr.Remove(id)
			delete(model, id)
		case op < 73:
			sessions := map[wire.SessionID]time.Duration{}
			model = map[wire.SessionID]time.Time{}
			for id := range wire.SessionID(rnd.IntN(100)) {
				timeout := time.Duration(rnd.IntN(5_000)) * time.Millisecond
				sessions[id] = timeout
				timeouts[id] = timeout
				model[id] = now.Add(timeout)
			}
			tr.ResetAll(sessions, now)
		default:
			now = now.Add(time.Duration(rnd.IntN(100)) * time.Millisecond)
			var want []wire.SessionID
			for id, d := range model {
				if !d.After(now) {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			if got := tr.Expired(now); !slices.Equal(got, want) {
				t.Fatalf("step %d: Expired = %v, want %v", step, got, want)
			}
		}
		if tr.Len() != len(model) {
			t.Fatalf("step %d: Len = %d, want %d", step, tr.Len(), len(model))
		}
		if step%500 == 0 {
			checkTracker(t, tr)
			for id, d := range model {
				if got, ok := tr.Deadline(id); !ok || !got.Equal(d) {
					t.Fatalf("step %d: Deadline(%v) = %v, want %v", step, id, got, d)
				}
			}
		}
	}
}

// TestTrackerExpiryLoop runs the leader's expiry loop on fake time: one
// client pings, the connected server batches heartbeats to the leader, and a
// second client goes silent and is expired exactly one timeout after it was
// last heard from.
func TestTrackerExpiryLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		start := time.Now()
		tr := NewTracker()
		tr.ResetAll(map[wire.SessionID]time.Duration{1: timeout, 2: timeout}, start)
		var hb Heartbeats
		done := make(chan struct{})
		var wg sync.WaitGroup

		// Client 1 pings every second for good; client 2 for two seconds.
		for id, pings := range map[wire.SessionID]int{1: 1 << 30, 2: 2} {
			wg.Go(func() {
				tk := time.NewTicker(time.Second)
				defer tk.Stop()
				for range pings {
					select {
					case <-done:
						return
					case <-tk.C:
						hb.Mark(id)
					}
				}
			})
		}
		// The connected server reports every 500ms to the leader, which
		// touches the sessions on receipt. Its ticks (0.75s, 1.25s, …) fall
		// between the pings so that the order of events is fixed.
		batches := make(chan []wire.SessionID)
		wg.Go(func() {
			time.Sleep(250 * time.Millisecond)
			tk := time.NewTicker(500 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					if ids := hb.Drain(); ids != nil {
						select {
						case batches <- ids:
						case <-done:
							return
						}
					}
				}
			}
		})
		// The leader sleeps until the next deadline.
		expiredAt := map[wire.SessionID]time.Duration{}
		wg.Go(func() {
			timer := time.NewTimer(0)
			defer timer.Stop()
			for {
				select {
				case <-done:
					return
				case ids := <-batches:
					now := time.Now()
					for _, id := range ids {
						tr.Touch(id, timeout, now)
					}
				case now := <-timer.C:
					for _, id := range tr.Expired(now) {
						expiredAt[id] = now.Sub(start)
						tr.Remove(id) // as if its close applied at once
					}
				}
				if d, ok := tr.NextDeadline(); ok {
					timer.Reset(time.Until(d))
				} else {
					timer.Stop()
				}
			}
		})

		time.Sleep(20 * time.Second)
		close(done)
		wg.Wait()
		// Client 2's last ping at 2s reaches the leader at 2.25s.
		want := map[wire.SessionID]time.Duration{2: 2250*time.Millisecond + timeout}
		if !maps.Equal(expiredAt, want) {
			t.Fatalf("expired %v, want %v", expiredAt, want)
		}
		if tr.Len() != 1 {
			t.Fatalf("Len = %d, want 1", tr.Len())
		}
	})
}

func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5_000 {
				id := wire.SessionID(g*1_000 + i%1_000)
				now := start.Add(time.Duration(i) * time.Millisecond)
				switch i % 5 {
				case 0, 1:
					tr.Touch(id, time.Second, now)
				case 2:
					tr.Expired(now)
				case 3:
					tr.NextDeadline()
					tr.Len()
				case 4:
					tr.Remove(id)
				}
			}
		})
	}
	wg.Wait()
	checkTracker(t, tr)
}

// checkTracker verifies the heap and the index agree.
func checkTracker(t *testing.T, tr *Tracker) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	h := tr.mu.heap
	if len(h) != len(tr.mu.byID) {
		t.Fatalf("heap has %d, index %d", len(h), len(tr.mu.byID))
	}
	for i, s := range h {
		if s.index != i || tr.mu.byID[s.id] != s {
			t.Fatalf("heap[%d] = %+v out of place", i, s)
		}
		if i > 0 && h[(i-1)/2].key.After(s.key) {
			t.Fatalf("heap[%d] is keyed before its parent", i)
		}
		if s.key.After(s.deadline) {
			t.Fatalf("heap[%d] is keyed at %v, after its deadline %v", i, s.key, s.deadline)
		}
	}
}

func BenchmarkTracker(b *testing.B) {
	const n = 10_000
	start := time.Now()
	for _, timeout := range []time.Duration{10 * time.Second, time.Millisecond} {
		name := "none expired"
		if timeout < time.Second {
			name = "all expired"
		}
		b.Run(fmt.Sprintf("sessions=%d/touch+expired/%s", n, name), func(b *testing.B) {
			tr := NewTracker()
			for id := range wire.SessionID(n) {
				tr.Touch(id+1, timeout, start)
			}
			now := start
			i := 0
			for b.Loop() {
				// Heartbeats arrive in order of session; time moves on.
				now = now.Add(time.Microsecond)
				tr.Touch(wire.SessionID(i%n+1), timeout, now)
				if i%n == 0 {
					tr.Expired(now)
				}
				i++
			}
		})
	}
	b.Run(fmt.Sprintf("sessions=%d/touch", n), func(b *testing.B) {
		tr := NewTracker()
		for id := range wire.SessionID(n) {
			tr.Touch(id+1, 10*time.Second, start)
		}
		now := start
		i := 0
		for b.Loop() {
			now = now.Add(time.Microsecond)
			tr.Touch(wire.SessionID(i%n+1), 10*time.Second, now)
			i++
		}
	})
	b.Run(fmt.Sprintf("sessions=%d/expired none due", n), func(b *testing.B) {
		tr := NewTracker()
		for id := range wire.SessionID(n) {
			tr.Touch(id+1, 10*time.Second, start)
		}
		for b.Loop() {
			tr.Expired(start)
		}
	})
	b.Run(fmt.Sprintf("sessions=%d/expired 100 due", n), func(b *testing.B) {
		tr := NewTracker()
		for id := range wire.SessionID(n) {
			tr.Touch(id+1, 10*time.Second+time.Duration(id)*time.Millisecond, start)
		}
		now := start.Add(10*time.Second + 99*time.Millisecond)
		for b.Loop() {
			if len(tr.Expired(now)) != 100 {
				b.Fatal("wrong count")
			}
		}
	})
	b.Run(fmt.Sprintf("sessions=%d/reset all", n), func(b *testing.B) {
		sessions := make(map[wire.SessionID]time.Duration, n)
		for id := range wire.SessionID(n) {
			sessions[id+1] = 10 * time.Second
		}
		tr := NewTracker()
		for b.Loop() {
			tr.ResetAll(sessions, start)
		}
	})
}
