package recipe

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/coord-dev/coord/client"
)

// Election is leader election: ZooKeeper's recipe, with etcd's interface.
// Each candidate creates an ephemeral sequential node holding its value;
// the candidate with the lowest node leads, and each other watches only the
// node before its own. At most one candidate is leader at a time (as far
// as coord can tell: a leader whose session expires is told so through
// Lost, and a new leader may be elected before it hears; see the fencing
// Token).
//
// An Election is one candidate, used by one goroutine at a time; anybody
// can ask for the Leader or Observe the leaders without campaigning.
type Election struct {
	c    *client.Client
	path string

	mu struct {
		sync.Mutex
		busy bool
		hold *hold
	}
}

// Leader describes a leader.
type Leader struct {
	// Key is the path of the leader's node; "" when there is no leader.
	Key string
	// Value is the value the leader campaigned with (or proclaimed since).
	Value []byte
	// Token is the fencing token of the leadership: its node's czxid,
	// larger for each later leader.
	Token int64
}

// NewElection returns a candidate of the election at path.
func NewElection(c *client.Client, path string) *Election {
	return &Election{c: c, path: path}
}

// electionKinds are the nodes of an election.
var electionKinds = []string{kindCandidate}

// Campaign enters the election with value and returns once this candidate
// leads, or fails when ctx ends (its node is then deleted), when the
// session expires meanwhile (an error matching ErrLockLost and
// client.ErrSessionExpired), or with ErrAlreadyHeld when this Election
// already campaigns or leads.
func (e *Election) Campaign(ctx context.Context, value []byte) error {
	e.mu.Lock()
	if e.mu.busy || e.mu.hold != nil {
		e.mu.Unlock()
		return ErrAlreadyHeld
	}
	e.mu.busy = true
	e.mu.Unlock()
	h, err := acquire(ctx, e.c, e.path, kindCandidate, electionKinds, value, false, exclusive)
	e.mu.Lock()
	e.mu.busy = false
	e.mu.hold = h
	e.mu.Unlock()
	return err
}

func (e *Election) holding() *hold {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.hold
}

// Proclaim replaces the leader's value, if this candidate still leads
// (else ErrNotHeld, or an error matching ErrLockLost).
func (e *Election) Proclaim(ctx context.Context, value []byte) error {
	h := e.holding()
	if h == nil {
		return ErrNotHeld
	}
	return h.set(ctx, value)
}

// Resign gives up leadership: it deletes the leader's node, and the next
// candidate leads. Errors are as Mutex.Unlock's.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	h := e.mu.hold
	e.mu.hold = nil
	e.mu.Unlock()
	if h == nil {
		return ErrNotHeld
	}
	return h.release(ctx)
}

// Lost is Mutex.Lost for the leadership.
func (e *Election) Lost() <-chan struct{} {
	if h := e.holding(); h != nil {
		return h.lost
	}
	return closedChan
}

// Token returns the fencing token of the leadership, 0 when not leading.
func (e *Election) Token() int64 {
	if h := e.holding(); h != nil {
		return h.t.czxid
	}
	return 0
}

// Key returns the path of the leader's node while this candidate leads.
func (e *Election) Key() string {
	if h := e.holding(); h != nil {
		return h.t.path
	}
	return ""
}

// Do is Mutex.Do for the leadership: ops apply only while this candidate
// leads.
func (e *Election) Do(ctx context.Context, ops *client.OpList) ([]client.OpResult, error) {
	h := e.holding()
	if h == nil {
		return nil, ErrNotHeld
	}
	return h.do(ctx, ops)
}

// Leader returns the current leader, read linearizably, or ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	if err := validDir(e.path); err != nil {
		return Leader{}, err
	}
	for {
		names, _, err := e.c.Children(ctx, e.path)
		if errors.Is(err, client.ErrNoNode) {
			return Leader{}, ErrNoLeader
		}
		if err != nil {
			return Leader{}, err
		}
		kids := participants(names, electionKinds...)
		if len(kids) == 0 {
			return Leader{}, ErrNoLeader
		}
		p := join(e.path, kids[0].name)
		data, st, err := e.c.Get(ctx, p)
		if errors.Is(err, client.ErrNoNode) {
			continue // it resigned meanwhile
		}
		if err != nil {
			return Leader{}, err
		}
		return Leader{Key: p, Value: data, Token: st.Czxid}, nil
	}
}

// Observe returns a stream of the leaders: first the current one, then each
// change, in order, without gaps: every candidate that led, and the values
// it proclaimed. A Leader with an empty Key says that nobody leads. The
// stream is closed when ctx ends, the session expires or the client is
// closed; a slow reader delays the stream, never the client.
//
// Leaders are known from watch events, complete and in order; values are
// read from the candidates' nodes (as soon as they are created), so a
// value proclaimed and replaced in a moment may be skipped, and a
// candidate that led and resigned before its node could be read at all is
// reported with a nil Value.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	out := make(chan Leader)
	go func() {
		defer close(out)
		if validDir(e.path) != nil {
			return
		}
		o := observer{e: e, out: out, kids: map[string]*candidate{}}
		_ = followDir(ctx, e.c, e.path, o.reset(ctx), o.change(ctx))
	}()
	return out
}

// candidate is what an observer knows of a candidate.
type candidate struct {
	child
	czxid int64
	value []byte
	read  bool // value and czxid were read from the node
}

// observer is the state of one Observe stream.
type observer struct {
	e      *Election
	out    chan<- Leader
	kids   map[string]*candidate
	inited bool   // a leader (or none) was reported
	last   Leader // the last reported
}

func (o *observer) reset(ctx context.Context) func(names []string) error {
	return func(names []string) error {
		kids := make(map[string]*candidate, len(names))
		for _, k := range participants(names, electionKinds...) {
			if c, ok := o.kids[k.name]; ok {
				kids[k.name] = c
			} else {
				kids[k.name] = &candidate{child: k}
			}
		}
		o.kids = kids
		return o.emit(ctx)
	}
}

func (o *observer) change(ctx context.Context) func(ev client.Event) error {
	return func(ev client.Event) error {
		name := base(ev.Path)
		k, ok := parseChild(name)
		if !ok || k.kind != kindCandidate {
			return nil
		}
		switch ev.Type {
		case client.EventNodeCreated:
			c := &candidate{child: k, czxid: ev.Zxid}
			o.kids[name] = c
			if err := o.read(ctx, c); err != nil {
				return err
			}
		case client.EventNodeDeleted:
			delete(o.kids, name)
		case client.EventNodeDataChanged:
			if c := o.kids[name]; c != nil {
				if err := o.read(ctx, c); err != nil {
					return err
				}
			}
		}
		return o.emit(ctx)
	}
}

// read reads a candidate's value; a candidate already gone keeps what is
// known of it.
func (o *observer) read(ctx context.Context, c *candidate) error {
	data, st, err := o.e.c.Get(ctx, join(o.e.path, c.name), client.Local())
	switch {
	case err == nil:
		c.value, c.czxid, c.read = data, st.Czxid, true
	case !errors.Is(err, client.ErrNoNode):
		return err
	}
	return nil
}

// emit reports the leader if it, or its value, changed.
func (o *observer) emit(ctx context.Context) error {
	var first *candidate
	for _, c := range o.kids {
		if first == nil || c.seq < first.seq || (c.seq == first.seq && c.name < first.name) {
			first = c
		}
	}
	var l Leader
	if first != nil {
		if !first.read {
			if err := o.read(ctx, first); err != nil {
				return err
			}
		}
		l = Leader{Key: join(o.e.path, first.name), Value: first.value, Token: first.czxid}
	}
	if o.inited && l.Key == o.last.Key && bytes.Equal(l.Value, o.last.Value) {
		return nil
	}
	o.inited, o.last = true, l
	select {
	case o.out <- l:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
