package main

// The lock and election recipes of ZooKeeper, written directly on the
// client for lock and elect. They are meant to give way to client/recipe
// (issue 6) once it exists; until then they follow the same contract:
// ephemeral sequential nodes under one directory, each waiter watching only
// its predecessor, the fencing token being the lock node's czxid.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// Where lock and elect keep their nodes when NAME is not a path.
const (
	lockRoot     = "/coordctl/locks"
	electionRoot = "/coordctl/elections"
)

// recipeDir maps a lock or election NAME to its directory: a path is
// used as it is, a bare name goes under root.
func recipeDir(root, name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		if err := wire.ValidatePath(name); err != nil || name == "/" {
			return "", usagef("%q is not a valid node path for a lock or election directory", name)
		}
		return name, nil
	}
	if err := wire.ValidateName(name); err != nil || name == "" {
		return "", usageHint("a NAME is one path component (mylock), or an absolute path (/app/locks/db)",
			"%q is not a valid lock or election name", name)
	}
	return wire.Join(root, name), nil
}

// recipe holds what both recipes need: the client and a per-request
// timeout.
type recipe struct {
	c       *client.Client
	timeout time.Duration
}

func (r recipe) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// ensureDir creates dir's ancestors as persistent nodes and dir itself as
// a container (deleted by the server once its last child is gone).
func (r recipe) ensureDir(ctx context.Context, dir string) error {
	var chain []string
	for p := dir; p != "/"; p = wire.Parent(p) {
		chain = append(chain, p)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		mode := client.ModePersistent
		if i == 0 {
			mode = client.ModeContainer
		}
		octx, cancel := r.op(ctx)
		_, _, err := r.c.Create(octx, chain[i], nil, mode)
		cancel()
		if err != nil && !errors.Is(err, client.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// createMember creates an ephemeral sequential node prefix+N in dir,
// recreating dir if the server reaped the empty container meanwhile.
func (r recipe) createMember(ctx context.Context, dir, prefix string, data []byte) (string, *client.Stat, error) {
	for attempt := 0; ; attempt++ {
		if err := r.ensureDir(ctx, dir); err != nil {
			return "", nil, err
		}
		octx, cancel := r.op(ctx)
		node, st, err := r.c.Create(octx, wire.Join(dir, prefix), data, client.ModeEphemeralSequential)
		cancel()
		if errors.Is(err, client.ErrNoNode) && attempt < 5 {
			continue
		}
		return node, st, err
	}
}

// members returns dir's children named prefix + sequence number, sorted
// by sequence number.
func (r recipe) members(ctx context.Context, dir, prefix string) ([]string, error) {
	octx, cancel := r.op(ctx)
	defer cancel()
	kids, _, err := r.c.Children(octx, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range kids {
		if strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
			out = append(out, k)
		}
	}
	// Sequence numbers are ten zero-padded digits: the suffix orders them.
	sort.Slice(out, func(i, j int) bool { return out[i][len(prefix):] < out[j][len(prefix):] })
	return out, nil
}

// remove deletes node, ignoring its absence, with a fresh context so that
// it runs after an interrupted wait.
func (r recipe) remove(node string) error {
	ctx, cancel := r.op(context.Background())
	defer cancel()
	err := r.c.Delete(ctx, node, client.AnyVersion)
	if errors.Is(err, client.ErrNoNode) {
		return nil
	}
	return err
}

// errLost says that the recipe's own node disappeared: its session
// expired, or someone deleted it.
var errLost = errors.New("lost: the lock or candidate node is gone (session expired, or the node was deleted)")

// lostErr wraps errLost as exit code 9.
func lostErr(what string) error {
	return &cmdError{code: exitExpired, err: fmt.Errorf("%s: %w", what, errLost),
		hint: "the session expired or the node was deleted by hand; nothing is held any more"}
}

// mutex is a held (or wanted) lock.
type mutex struct {
	recipe
	dir   string
	node  string // our lock node, once created
	token int64  // its czxid: the fencing token
}

const lockPrefix = "lock-"

// lock waits until the lock is held. On failure (ctx done included) it
// removes its node.
func (m *mutex) lock(ctx context.Context) (err error) {
	host, _ := os.Hostname()
	node, st, err := m.createMember(ctx, m.dir, lockPrefix, fmt.Appendf(nil, "%s pid %d", host, os.Getpid()))
	if err != nil {
		return err
	}
	m.node, m.token = node, st.Czxid
	defer func() {
		if err != nil {
			_ = m.remove(m.node)
		}
	}()
	me := wire.Base(node)
	for {
		names, err := m.members(ctx, m.dir, lockPrefix)
		if err != nil {
			return err
		}
		i := slices.Index(names, me)
		if i < 0 {
			return lostErr("waiting for the lock")
		}
		if i == 0 {
			return nil
		}
		// Watch only the predecessor (no herd). GetW sets no watch when
		// it is already gone.
		octx, cancel := m.op(ctx)
		_, _, ch, err := m.c.GetW(octx, wire.Join(m.dir, names[i-1]))
		cancel()
		if errors.Is(err, client.ErrNoNode) {
			continue
		}
		if err != nil {
			return err
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching {
				return ev.Err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		// Re-check the session after every wait: the loop's Children
		// fails with ErrSessionExpired if it is gone.
	}
}

// unlock releases the lock.
func (m *mutex) unlock() error { return m.remove(m.node) }

// election campaigns (or only observes) under dir.
type election struct {
	recipe
	dir  string
	node string // our candidate node; "" when only observing
}

const candidatePrefix = "n_"

// leader is what observe reports.
type leader struct {
	node  string // "" when there is no candidate
	data  []byte
	token int64
	self  bool
}

// campaign adds our candidate node with value.
func (e *election) campaign(ctx context.Context, value []byte) error {
	node, _, err := e.createMember(ctx, e.dir, candidatePrefix, value)
	if err != nil {
		return err
	}
	e.node = node
	return nil
}

// resign removes our candidate node.
func (e *election) resign() error {
	if e.node == "" {
		return nil
	}
	return e.remove(e.node)
}

// observe calls report with the current leader, then after every change,
// until ctx is done or (when campaigning) our candidate node is gone.
func (e *election) observe(ctx context.Context, report func(leader)) error {
	var last *leader
	for {
		names, err := e.members(ctx, e.dir, candidatePrefix)
		if errors.Is(err, client.ErrNoNode) {
			if e.node != "" {
				return lostErr("campaigning")
			}
			// Nobody campaigns: wait for the directory.
			if last == nil || last.node != "" {
				last = &leader{}
				report(*last)
			}
			octx, cancel := e.op(ctx)
			ok, _, ch, err := e.c.ExistsW(octx, e.dir)
			cancel()
			if err != nil {
				return err
			}
			if !ok {
				if err := wait(ctx, ch); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		if e.node != "" && !slices.Contains(names, wire.Base(e.node)) {
			return lostErr("campaigning")
		}
		var ch <-chan client.Event
		cur := leader{}
		octx, cancel := e.op(ctx)
		if len(names) == 0 {
			_, _, ch, err = e.c.ChildrenW(octx, e.dir)
		} else {
			cur.node = wire.Join(e.dir, names[0])
			var st *client.Stat
			cur.data, st, ch, err = e.c.GetW(octx, cur.node)
			if st != nil {
				cur.token = st.Czxid
			}
			cur.self = cur.node == e.node
		}
		cancel()
		if errors.Is(err, client.ErrNoNode) {
			continue
		}
		if err != nil {
			return err
		}
		if last == nil || last.node != cur.node || string(last.data) != string(cur.data) {
			last = &cur
			report(cur)
		}
		if err := wait(ctx, ch); err != nil {
			return err
		}
	}
}

// wait waits for a one-shot watch event.
func wait(ctx context.Context, ch <-chan client.Event) error {
	select {
	case ev := <-ch:
		if ev.Type == client.EventNotWatching {
			return ev.Err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
