package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

// AnyVersion matches every version in Delete, Set, SetACL and Check.
const AnyVersion int32 = -1

// CreateOption modifies a Create (or a create in a Multi).
type CreateOption func(*createOptions)

type createOptions struct {
	acl   []ACL
	ttlMs int64
}

// WithACL sets the new node's ACL (default OpenACL()).
func WithACL(acl ...ACL) CreateOption {
	return func(o *createOptions) { o.acl = append([]ACL{}, acl...) }
}

// WithTTL sets the time to live of a node created with ModePersistentTTL or
// ModePersistentSequentialTTL; those modes require it, others refuse it.
func WithTTL(d time.Duration) CreateOption {
	return func(o *createOptions) { o.ttlMs = d.Milliseconds() }
}

// ReadOption modifies a read (Exists, Get, Children, GetACL and their
// watching variants).
type ReadOption func(*readOptions)

type readOptions struct {
	local    bool
	limit    int
	after    string
	waitGone string
}

// Local serves the read from the connected server's applied state rather
// than linearizably: faster, possibly stale, but never older than what this
// session has already seen (ZooKeeper's sequential consistency).
func Local() ReadOption {
	return func(o *readOptions) { o.local = true }
}

// Page makes Children return at most limit names (0: no limit), all sorting
// after the name after ("" for the first page). A page shorter than limit is
// the last; pass the last name of a page as after to read the next. Other
// reads ignore it.
func Page(limit int, after string) ReadOption {
	return func(o *readOptions) { o.limit, o.after = limit, after }
}

// WaitGone makes the read wait, on the server, until no node exists at
// path (an extension of coord's protocol, §13.1). The server serves the
// read at once when path does not exist. Otherwise it answers it right
// after the change that deletes the node, from the state after that
// change, sparing the round trip of watching path and reading again once
// woken. It answers anyway, with the node still there, shortly before
// ctx's deadline (after at most 5 minutes; 30 seconds without a
// deadline), and a server that predates the extension answers at once:
// look at the result (is the name still among the Children?) instead of
// assuming the node is gone. Meanwhile later requests on the connection
// are answered as usual. The read keeps its consistency: linearizable
// unless Local. It takes none of the client's in-flight slots
// (WithMaxInFlight): waiting reads have a pool of their own, of 1,024, as
// many as a server lets wait on one connection.
func WaitGone(path string) ReadOption {
	return func(o *readOptions) { o.waitGone = path }
}

// checkPath wraps a path validation error for op.
func checkPath(op, path string) error {
	if err := wire.ValidatePath(path); err != nil {
		return &OpError{Op: op, Path: path, Err: err}
	}
	return nil
}

// checkData refuses data larger than the server accepts.
func (c *Client) checkData(op, path string, data []byte) error {
	c.mu.Lock()
	limit := c.mu.maxData
	c.mu.Unlock()
	if len(data) > limit {
		return &OpError{Op: op, Path: path, Err: fmt.Errorf("%w: %d bytes of data, more than the server's %d", ErrBadArguments, len(data), limit)}
	}
	return nil
}

// createRequest builds and checks a create request.
func createRequest(path string, data []byte, mode Mode, opts []CreateOption) (wire.Request, error) {
	var o createOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := wire.Request{Op: wire.OpCreate, Path: path, Data: data, Mode: string(mode), ACL: o.acl, TTLMs: o.ttlMs}
	if err := wire.ValidatePath(path); err != nil {
		return r, err
	}
	switch {
	case !mode.Valid():
		return r, fmt.Errorf("%w: unknown mode %q", ErrBadArguments, mode)
	case mode.TTL() && r.TTLMs <= 0:
		return r, fmt.Errorf("%w: mode %s needs a positive TTL (WithTTL)", ErrBadArguments, mode)
	case !mode.TTL() && r.TTLMs != 0:
		return r, fmt.Errorf("%w: mode %s takes no TTL", ErrBadArguments, mode)
	case r.ACL != nil && len(r.ACL) == 0:
		return r, fmt.Errorf("%w: empty ACL", ErrInvalidACL)
	}
	return r, nil
}

// Create creates a node at path with data, and returns the path actually
// created (with its sequence number for sequential modes) and its Stat.
// Parents must exist. The write is applied exactly once even when the
// connection is lost and the request resent; see the package documentation.
func (c *Client) Create(ctx context.Context, path string, data []byte, mode Mode, opts ...CreateOption) (string, *Stat, error) {
	req, err := createRequest(path, data, mode, opts)
	if err != nil {
		return "", nil, &OpError{Op: wire.OpCreate, Path: path, Err: err}
	}
	if err := c.checkData(wire.OpCreate, path, data); err != nil {
		return "", nil, err
	}
	resp, err := c.do(ctx, &req, nil)
	if err != nil {
		return "", nil, err
	}
	return resp.Path, resp.Stat, nil
}

// Delete deletes the node at path if its version is version (AnyVersion
// matches any). A node with children cannot be deleted (ErrNotEmpty).
func (c *Client) Delete(ctx context.Context, path string, version int32) error {
	if err := checkPath(wire.OpDelete, path); err != nil {
		return err
	}
	_, err := c.do(ctx, &wire.Request{Op: wire.OpDelete, Path: path, Version: version}, nil)
	return err
}

// Exists reports whether a node exists at path, with its Stat when it does.
func (c *Client) Exists(ctx context.Context, path string, opts ...ReadOption) (bool, *Stat, error) {
	ok, st, _, err := c.exists(ctx, path, false, opts)
	return ok, st, err
}

// ExistsW is Exists that also sets a one-shot watch, whether or not the node
// exists: the channel receives the next NodeCreated, NodeDataChanged or
// NodeDeleted of path, then is closed. (It receives an EventNotWatching
// instead if the session expires, the client is closed or the watch is
// removed first.) No channel is returned with an error.
func (c *Client) ExistsW(ctx context.Context, path string, opts ...ReadOption) (bool, *Stat, <-chan Event, error) {
	return c.exists(ctx, path, true, opts)
}

func (c *Client) exists(ctx context.Context, path string, watch bool, opts []ReadOption) (bool, *Stat, <-chan Event, error) {
	if err := checkPath(wire.OpExists, path); err != nil {
		return false, nil, nil, err
	}
	req := readRequest(ctx, wire.OpExists, path, watch, opts)
	var ch chan Event
	var onReply func(*wire.Response, bool)
	if watch {
		ch = make(chan Event, 1)
		onReply = func(r *wire.Response, abandoned bool) {
			switch {
			case abandoned:
			case r.Err == wire.OK:
				c.addOneShotLocked(watchKey{path, kindData}, ch)
			case r.Err == wire.NoNode:
				c.addOneShotLocked(watchKey{path, kindExist}, ch)
			}
		}
	}
	resp, err := c.do(ctx, &req, onReply)
	switch {
	case err == nil:
		return true, resp.Stat, ch, nil
	case resp != nil && resp.Err == wire.NoNode:
		return false, nil, ch, nil
	}
	return false, nil, nil, err
}

// readRequest builds a read request with its options.
func readRequest(ctx context.Context, op, path string, watch bool, opts []ReadOption) wire.Request {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := wire.Request{Op: op, Path: path, Watch: watch, Local: o.local, WaitGone: o.waitGone}
	if op == wire.OpChildren {
		r.Limit, r.After = o.limit, o.after
	}
	if r.WaitGone != "" {
		// The server answers somewhat before the caller's deadline
		// (an eighth of the time left, 200 ms at least when there is
		// time for it): with the state then rather than with the
		// deadline's error, and without leaving a read nobody waits for
		// parked on the server.
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			margin := max(left/8, min(left/2, 200*time.Millisecond))
			r.WaitMs = max((left - margin).Milliseconds(), 1)
		}
	}
	return r
}

// oneShot returns the onReply that registers a one-shot watch of kind on
// path when the read succeeds.
func (c *Client) oneShot(path string, kind watchKind, ch chan Event) func(*wire.Response, bool) {
	return func(r *wire.Response, abandoned bool) {
		if !abandoned && r.Err == wire.OK {
			c.addOneShotLocked(watchKey{path, kind}, ch)
		}
	}
}

// Get returns the data and Stat of the node at path.
func (c *Client) Get(ctx context.Context, path string, opts ...ReadOption) ([]byte, *Stat, error) {
	data, st, _, err := c.get(ctx, path, false, opts)
	return data, st, err
}

// GetW is Get that also sets a one-shot watch: the channel receives the next
// NodeDataChanged or NodeDeleted of path, then is closed. (It receives an
// EventNotWatching instead if the session expires, the client is closed or
// the watch is removed first.) No watch is set when the read fails.
func (c *Client) GetW(ctx context.Context, path string, opts ...ReadOption) ([]byte, *Stat, <-chan Event, error) {
	return c.get(ctx, path, true, opts)
}

func (c *Client) get(ctx context.Context, path string, watch bool, opts []ReadOption) ([]byte, *Stat, <-chan Event, error) {
	if err := checkPath(wire.OpGet, path); err != nil {
		return nil, nil, nil, err
	}
	req := readRequest(ctx, wire.OpGet, path, watch, opts)
	var ch chan Event
	var onReply func(*wire.Response, bool)
	if watch {
		ch = make(chan Event, 1)
		onReply = c.oneShot(path, kindData, ch)
	}
	resp, err := c.do(ctx, &req, onReply)
	if err != nil {
		return nil, nil, nil, err
	}
	return resp.Data, resp.Stat, ch, nil
}

// Set replaces the data of the node at path if its version is version
// (AnyVersion matches any), and returns its new Stat.
func (c *Client) Set(ctx context.Context, path string, data []byte, version int32) (*Stat, error) {
	if err := checkPath(wire.OpSet, path); err != nil {
		return nil, err
	}
	if err := c.checkData(wire.OpSet, path, data); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpSet, Path: path, Data: data, Version: version}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Stat, nil
}

// Children returns the sorted names of the children of the node at path,
// and its Stat. See Page for reading a large list in pages.
func (c *Client) Children(ctx context.Context, path string, opts ...ReadOption) ([]string, *Stat, error) {
	names, st, _, err := c.children(ctx, path, false, opts)
	return names, st, err
}

// ChildrenW is Children that also sets a one-shot watch: the channel
// receives the next NodeChildrenChanged or NodeDeleted of path, then is
// closed. (It receives an EventNotWatching instead if the session expires,
// the client is closed or the watch is removed first.) No watch is set when
// the read fails.
func (c *Client) ChildrenW(ctx context.Context, path string, opts ...ReadOption) ([]string, *Stat, <-chan Event, error) {
	return c.children(ctx, path, true, opts)
}

func (c *Client) children(ctx context.Context, path string, watch bool, opts []ReadOption) ([]string, *Stat, <-chan Event, error) {
	if err := checkPath(wire.OpChildren, path); err != nil {
		return nil, nil, nil, err
	}
	req := readRequest(ctx, wire.OpChildren, path, watch, opts)
	var ch chan Event
	var onReply func(*wire.Response, bool)
	if watch {
		ch = make(chan Event, 1)
		onReply = c.oneShot(path, kindChild, ch)
	}
	resp, err := c.do(ctx, &req, onReply)
	if err != nil {
		return nil, nil, nil, err
	}
	names := resp.Children
	if names == nil {
		names = []string{}
	}
	return names, resp.Stat, ch, nil
}

// GetACL returns the ACL and Stat of the node at path.
func (c *Client) GetACL(ctx context.Context, path string, opts ...ReadOption) ([]ACL, *Stat, error) {
	if err := checkPath(wire.OpGetACL, path); err != nil {
		return nil, nil, err
	}
	req := readRequest(ctx, wire.OpGetACL, path, false, opts)
	resp, err := c.do(ctx, &req, nil)
	if err != nil {
		return nil, nil, err
	}
	return resp.ACL, resp.Stat, nil
}

// SetACL replaces the ACL of the node at path if its ACL version (aversion)
// is version (AnyVersion matches any), and returns its new Stat.
func (c *Client) SetACL(ctx context.Context, path string, acl []ACL, version int32) (*Stat, error) {
	if err := checkPath(wire.OpSetACL, path); err != nil {
		return nil, err
	}
	if len(acl) == 0 {
		return nil, &OpError{Op: wire.OpSetACL, Path: path, Err: fmt.Errorf("%w: empty ACL", ErrInvalidACL)}
	}
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpSetACL, Path: path, ACL: acl, Version: version}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Stat, nil
}

// Sync waits until the connected server has applied every write committed
// before the call (a quorum operation), so that a following Local read sees
// them.
func (c *Client) Sync(ctx context.Context, path string) error {
	if err := checkPath(wire.OpSync, path); err != nil {
		return err
	}
	_, err := c.do(ctx, &wire.Request{Op: wire.OpSync, Path: path}, nil)
	return err
}

// AddWatch sets a persistent watch on path: WatchPersistent for every
// event of the node, WatchPersistentRecursive for creations, deletions and
// data changes of the node and every node below it. The watch delivers
// events until Remove, RemoveWatches, the session's expiry or Close, and is
// re-armed across reconnects so that no change is missed (or an EventResync
// says that the server could not replay what was missed).
//
// Each call returns a new Watcher with its own channel, even for a path and
// mode already watched.
func (c *Client) AddWatch(ctx context.Context, path string, mode WatchMode) (*Watcher, error) {
	if err := checkPath(wire.OpAddWatch, path); err != nil {
		return nil, err
	}
	if mode != WatchPersistent && mode != WatchPersistentRecursive {
		return nil, &OpError{Op: wire.OpAddWatch, Path: path, Err: fmt.Errorf("%w: unknown watch mode %q", ErrBadArguments, mode)}
	}
	var w *Watcher
	_, err := c.do(ctx, &wire.Request{Op: wire.OpAddWatch, Path: path, Mode: string(mode)}, func(r *wire.Response, abandoned bool) {
		if !abandoned && r.Err == wire.OK {
			w = c.newWatcherLocked(path, mode)
		}
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// RemoveWatches removes the session's watches of type t on path, on the
// server and in the client: every local watch channel of that type on path
// receives an EventNotWatching whose Err is ErrWatchRemoved and is closed.
// It fails with ErrNoWatcher when there was none. To remove a single
// persistent watcher, use Watcher.Remove.
func (c *Client) RemoveWatches(ctx context.Context, path string, t WatchType) error {
	if err := checkPath(wire.OpRemoveWatches, path); err != nil {
		return err
	}
	if kindsOf(t) == nil {
		return &OpError{Op: wire.OpRemoveWatches, Path: path, Err: fmt.Errorf("%w: unknown watch type %q", ErrBadArguments, t)}
	}
	removed := 0
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpRemoveWatches, Path: path, Type: string(t)}, func(r *wire.Response, _ bool) {
		if r.Err == wire.OK || r.Err == wire.NoWatcher {
			// Done in the reader, in order with the events: no event
			// reaches a removed watch, and none is lost by a kept one.
			removed = c.removeLocalLocked(path, t)
		}
	})
	if resp != nil && resp.Err == wire.NoWatcher && removed > 0 {
		return nil
	}
	return err
}

// AddAuth adds an identity to the session (ZooKeeper's addAuthInfo), e.g.
// AddAuth(ctx, "digest", "alice:secret"). The client sends it again on every
// reconnect and for every new session.
func (c *Client) AddAuth(ctx context.Context, scheme, credential string) error {
	if scheme == "" {
		return &OpError{Op: wire.OpAuth, Err: fmt.Errorf("%w: empty scheme", ErrBadArguments)}
	}
	a := authCred{scheme, credential}
	_, err := c.do(ctx, &wire.Request{Op: wire.OpAuth, Scheme: scheme, Credential: credential}, func(r *wire.Response, _ bool) {
		if r.Err == wire.OK && !slices.Contains(c.mu.auths, a) {
			c.mu.auths = append(c.mu.auths, a)
		}
	})
	return err
}
