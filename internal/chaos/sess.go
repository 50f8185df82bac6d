package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coord-dev/coord/client"
)

// The SESS checker. Owners hold an ephemeral node each and keep reading it
// with their own session, under every fault. A read that finds it gone
// while the session is alive (proven by the session creating another
// ephemeral afterwards: sessions never come back) is an early deletion.
// Then, with no server fault, some owners die (their network is cut, as
// when a process is killed): each one's ephemeral must be gone within
// session timeout + 1 s.

const sessRoot = "/chaos/sess"

// EarlyDeletion is an owner's ephemeral found gone.
type EarlyDeletion struct {
	Owner   int
	Session client.SessionID
	Path    string
	At      time.Duration
	// Alive says the same session then created another ephemeral.
	Alive bool
}

// Death is one owner's death and its ephemeral's end.
type Death struct {
	Owner   int
	Path    string
	Timeout time.Duration // the session timeout
	Gone    bool          // the ephemeral was deleted
	After   time.Duration // that long after the death
}

// SessHistory is what the SESS workload records.
type SessHistory struct {
	Early       []EarlyDeletion
	Deaths      []Death
	Reads       int
	Expirations int
	// Controls lists, for the owners that did not die, whether their
	// ephemeral was still there after the deaths had been judged.
	Controls []bool
}

// SessResult is the SESS checker's verdict.
type SessResult struct {
	Reads, Expirations, Deaths        int
	EarlyDeletions, Late, ControlLost int
	MaxGone                           time.Duration
	Examples                          []string
}

// Anomalies counts the violations.
func (r SessResult) Anomalies() int { return r.EarlyDeletions + r.Late + r.ControlLost }

// CheckSess judges a SESS history; grace is how long after the session
// timeout an ephemeral may outlive its dead owner.
func CheckSess(h SessHistory, grace time.Duration) SessResult {
	r := SessResult{Reads: h.Reads, Expirations: h.Expirations, Deaths: len(h.Deaths)}
	ex := func(format string, args ...any) {
		if len(r.Examples) < 10 {
			r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, e := range h.Early {
		if e.Alive {
			r.EarlyDeletions++
			ex("owner %d: ephemeral %s gone at %v while session %s was alive (it then created another ephemeral)", e.Owner, e.Path, e.At, e.Session)
		}
	}
	for _, d := range h.Deaths {
		if d.Gone {
			r.MaxGone = max(r.MaxGone, d.After)
		}
		if !d.Gone || d.After > d.Timeout+grace {
			r.Late++
			if d.Gone {
				ex("owner %d died; its ephemeral %s was deleted %v later (session timeout %v)", d.Owner, d.Path, d.After, d.Timeout)
			} else {
				ex("owner %d died; its ephemeral %s was never deleted (session timeout %v)", d.Owner, d.Path, d.Timeout)
			}
		}
	}
	for i, ok := range h.Controls {
		if !ok {
			r.ControlLost++
			ex("control owner %d lost its ephemeral while alive and healthy", i)
		}
	}
	return r
}

// sessOwner is one owner: its client and network.
type sessOwner struct {
	id     int
	c      *client.Client
	link   *ClientLink
	cancel context.CancelFunc
	done   chan struct{}
	path   atomic.Value // string: the current ephemeral
}

// sessLoad is the SESS workload.
type sessLoad struct {
	start   time.Time
	timeout time.Duration
	mu      struct {
		sync.Mutex
		early       []EarlyDeletion
		deaths      []Death
		reads       int
		expirations int
		controls    []bool
	}
}

func (s *sessLoad) since() time.Duration { return time.Since(s.start) }

// History returns the record.
func (s *sessLoad) History() SessHistory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SessHistory{Early: append([]EarlyDeletion(nil), s.mu.early...), Deaths: append([]Death(nil), s.mu.deaths...),
		Reads: s.mu.reads, Expirations: s.mu.expirations, Controls: append([]bool(nil), s.mu.controls...)}
}

// own keeps an ephemeral and reads it until ctx ends.
func (s *sessLoad) own(ctx context.Context, o *sessOwner) {
	defer close(o.done)
	for gen := 0; ctx.Err() == nil; gen++ {
		if o.c.State() == client.StateExpired {
			if err := o.c.NewSession(ctx); err != nil {
				continue
			}
		}
		sid := o.c.SessionID()
		p := fmt.Sprintf("%s/o%d-g%d", sessRoot, o.id, gen)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := o.c.Create(cctx, p, nil, client.ModeEphemeral)
		cancel()
		if err != nil {
			continue
		}
		o.path.Store(p)
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ok, _, err := o.c.Exists(rctx, p)
			cancel()
			if errors.Is(err, client.ErrSessionExpired) {
				s.mu.Lock()
				s.mu.expirations++
				s.mu.Unlock()
				break
			}
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.mu.reads++
			s.mu.Unlock()
			if ok {
				continue
			}
			e := EarlyDeletion{Owner: o.id, Session: sid, Path: p, At: s.since()}
			// Was the session alive? Only a live session can create an
			// ephemeral, and a session never comes back.
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, _, perr := o.c.Create(pctx, p+"-proof", nil, client.ModeEphemeral)
			cancel()
			e.Alive = perr == nil && o.c.SessionID() == sid
			s.mu.Lock()
			s.mu.early = append(s.mu.early, e)
			s.mu.Unlock()
			break
		}
	}
}

// kill cuts the owner's network for good (its process died) and measures
// how long its ephemeral outlives it, watching with observer.
func (s *sessLoad) kill(ctx context.Context, o *sessOwner, observer *client.Client) (Death, error) {
	o.cancel()
	<-o.done
	p, _ := o.path.Load().(string)
	d := Death{Owner: o.id, Path: p, Timeout: s.timeout}
	if p == "" {
		return d, fmt.Errorf("owner %d holds no ephemeral", o.id)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ok, _, ch, err := observer.ExistsW(wctx, p)
	cancel()
	if err != nil {
		return d, err
	}
	if !ok {
		// Gone already: its session expired during the faults (then it
		// cannot be timed), or it is an early deletion.
		s.checkAlive(ctx, o, p)
		return d, errNoEphemeral
	}
	o.link.Cut(true)
	died := time.Now()
	deadline := time.NewTimer(s.timeout + 15*time.Second)
	defer deadline.Stop()
	select {
	case ev := <-ch:
		if ev.Type == client.EventNodeDeleted {
			d.Gone, d.After = true, time.Since(died)
		}
	case <-deadline.C:
	case <-ctx.Done():
		return d, ctx.Err()
	}
	s.mu.Lock()
	s.mu.deaths = append(s.mu.deaths, d)
	s.mu.Unlock()
	return d, nil
}

// errNoEphemeral: an owner to kill had no ephemeral left.
var errNoEphemeral = errors.New("the owner's ephemeral is gone already")

// checkAlive records an early deletion if o's session, whose ephemeral p
// is gone, can still create an ephemeral.
func (s *sessLoad) checkAlive(ctx context.Context, o *sessOwner, p string) {
	if o.c.State() == client.StateExpired {
		return
	}
	sid := o.c.SessionID()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, _, err := o.c.Create(pctx, p+"-proof", nil, client.ModeEphemeral)
	cancel()
	if err == nil && o.c.SessionID() == sid {
		s.mu.Lock()
		s.mu.early = append(s.mu.early, EarlyDeletion{Owner: o.id, Session: sid, Path: p, At: s.since(), Alive: true})
		s.mu.Unlock()
	}
}

// control stops a living owner and checks that it still has its
// ephemeral.
func (s *sessLoad) control(ctx context.Context, o *sessOwner, observer *client.Client) {
	o.cancel()
	<-o.done
	p, _ := o.path.Load().(string)
	if p == "" || o.c.State() != client.StateConnected {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ok, _, err := observer.Exists(rctx, p)
	cancel()
	if err != nil {
		return
	}
	if !ok {
		// Gone: only an anomaly if its session is still the same and alive.
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, perr := o.c.Create(pctx, p+"-proof", nil, client.ModeEphemeral)
		cancel()
		ok = perr != nil
	}
	s.mu.Lock()
	s.mu.controls = append(s.mu.controls, ok)
	s.mu.Unlock()
}
