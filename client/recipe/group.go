package recipe

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/coord-dev/coord/client"
)

// Group is group membership, or service discovery: each member registers
// an ephemeral node named after itself, holding its data (an address, a
// role), which lives as long as the member's session. Anybody can list the
// members or watch the set change.
type Group struct {
	c    *client.Client
	path string
}

// NewGroup returns the group at path.
func NewGroup(c *client.Client, path string) *Group {
	return &Group{c: c, path: path}
}

// Member is one member of a group.
type Member struct {
	// Name is the name it registered with.
	Name string
	// Data is the data it registered with, or last set with Update.
	Data []byte
	// Session is the session that registered it.
	Session client.SessionID
}

// Membership is this client's registration in a group.
type Membership struct {
	h *hold
}

// Register adds this client to the group as name, with data. It fails with
// an error matching client.ErrNodeExists when the name is taken, which is
// also the case for a while after a member's session ended without Close
// (its node lives until the session expires): retry, or choose unique
// names.
func (g *Group) Register(ctx context.Context, name string, data []byte) (*Membership, error) {
	if err := validDir(g.path); err != nil {
		return nil, err
	}
	if name == "" || strings.Contains(name, "/") {
		return nil, &client.OpError{Op: "register", Path: g.path, Err: client.ErrBadArguments}
	}
	p, st, err := createIn(ctx, g.c, g.path, name, data, client.ModeEphemeral)
	if err != nil {
		return nil, err
	}
	t := &ticket{c: g.c, dir: g.path, name: name, path: p, czxid: st.Czxid, owner: st.EphemeralOwner}
	return &Membership{h: newHold(t)}, nil
}

// Update replaces the member's data. It fails with an error matching
// ErrLockLost once the membership is lost.
func (m *Membership) Update(ctx context.Context, data []byte) error {
	return m.h.set(ctx, data)
}

// Leave removes the member from the group. It fails with an error matching
// ErrLockLost when the membership had been lost already (its session
// expired: the member left without saying so).
func (m *Membership) Leave(ctx context.Context) error {
	return m.h.release(ctx)
}

// Lost returns a channel closed when the membership ends: Leave, the
// session's expiry, or the client's Close. A member that must stay in the
// group registers again after client.NewSession.
func (m *Membership) Lost() <-chan struct{} { return m.h.lost }

// Path returns the path of the member's node.
func (m *Membership) Path() string { return m.h.t.path }

// Members returns the current members, sorted by name.
func (g *Group) Members(ctx context.Context) ([]Member, error) {
	if err := validDir(g.path); err != nil {
		return nil, err
	}
	names, _, err := g.c.Children(ctx, g.path)
	if errors.Is(err, client.ErrNoNode) {
		return []Member{}, nil
	}
	if err != nil {
		return nil, err
	}
	ms := make([]Member, 0, len(names))
	for _, n := range names {
		data, st, err := g.c.Get(ctx, join(g.path, n))
		if errors.Is(err, client.ErrNoNode) {
			continue // it left meanwhile
		}
		if err != nil {
			return nil, err
		}
		ms = append(ms, Member{Name: n, Data: data, Session: st.EphemeralOwner})
	}
	return ms, nil
}

// Watch returns a stream of the group's member sets, sorted by name: the
// current set, then a new set after every change. A reader that falls
// behind skips sets but always receives the latest one. The stream is
// closed when ctx ends, the session expires or the client is closed.
func (g *Group) Watch(ctx context.Context) <-chan []Member {
	out := make(chan []Member, 1)
	go func() {
		defer close(out)
		if validDir(g.path) != nil {
			return
		}
		members := map[string]Member{}
		var last []Member
		emit := func() {
			set := make([]Member, 0, len(members))
			for _, m := range members {
				set = append(set, m)
			}
			slices.SortFunc(set, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
			if last != nil && slices.EqualFunc(set, last, func(a, b Member) bool {
				return a.Name == b.Name && a.Session == b.Session && bytes.Equal(a.Data, b.Data)
			}) {
				return
			}
			last = set
			// Replace a set the reader has not taken yet: the latest wins.
			select {
			case out <- set:
			default:
				select {
				case <-out:
				default:
				}
				out <- set
			}
		}
		read := func(name string) error {
			data, st, err := g.c.Get(ctx, join(g.path, name), client.Local())
			switch {
			case errors.Is(err, client.ErrNoNode):
				delete(members, name)
			case err != nil:
				return err
			default:
				members[name] = Member{Name: name, Data: data, Session: st.EphemeralOwner}
			}
			return nil
		}
		_ = followDir(ctx, g.c, g.path, func(names []string) error {
			clear(members)
			for _, n := range names {
				if err := read(n); err != nil {
					return err
				}
			}
			emit()
			return nil
		}, func(ev client.Event) error {
			name := base(ev.Path)
			if ev.Type == client.EventNodeDeleted {
				delete(members, name)
			} else if err := read(name); err != nil {
				return err
			}
			emit()
			return nil
		})
	}()
	return out
}
