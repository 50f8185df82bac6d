package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/watch"
	"github.com/coord-dev/coord/znode"
)

// checkPath validates a path against the protocol and the configured limits.
func (s *Server) checkPath(p string) error {
	if err := wire.ValidatePath(p); err != nil {
		return err
	}
	if len(p) > s.cfg.MaxPathBytes {
		return fmt.Errorf("%w: path is %d bytes, the limit is %d", wire.ErrBadArguments, len(p), s.cfg.MaxPathBytes)
	}
	if d := wire.Depth(p); d > s.cfg.MaxPathDepth {
		return fmt.Errorf("%w: path has %d components, the limit is %d", wire.ErrBadArguments, d, s.cfg.MaxPathDepth)
	}
	return nil
}

func (s *Server) checkData(d []byte) error {
	if len(d) > s.cfg.MaxDataBytes {
		return fmt.Errorf("%w: data is %d bytes, the limit is %d", wire.ErrBadArguments, len(d), s.cfg.MaxDataBytes)
	}
	return nil
}

// buildOp validates a write request and turns it into a state machine op.
// Apply checks everything again; this only refuses early what can never
// succeed, so that nothing invalid is proposed.
func (s *Server) buildOp(req *wire.Request, sess wire.SessionID) (znode.Op, error) {
	switch req.Op {
	case wire.OpMulti:
		if len(req.Ops) > s.cfg.MaxMultiOps {
			return znode.Op{}, fmt.Errorf("%w: multi has %d ops, the limit is %d", wire.ErrBadArguments, len(req.Ops), s.cfg.MaxMultiOps)
		}
		op := znode.Op{Kind: znode.OpMulti, Ops: make([]znode.Op, 0, len(req.Ops))}
		for i := range req.Ops {
			sub := &req.Ops[i]
			switch sub.Op {
			case wire.OpCreate, wire.OpDelete, wire.OpSet, wire.OpCheck:
			default:
				return znode.Op{}, &multiOpError{index: i, err: fmt.Errorf("%w: %q is not allowed in a multi (only create, delete, set and check)", wire.ErrBadArguments, sub.Op)}
			}
			o, err := s.buildOp(sub, sess)
			if err != nil {
				return znode.Op{}, &multiOpError{index: i, err: err}
			}
			op.Ops = append(op.Ops, o)
		}
		return op, nil
	case wire.OpCreate:
		mode := wire.Mode(req.Mode)
		if mode == "" {
			mode = wire.ModePersistent
		}
		if !mode.Valid() {
			return znode.Op{}, fmt.Errorf("%w: unknown mode %q", wire.ErrBadArguments, req.Mode)
		}
		p := req.Path
		if mode.Sequential() {
			p += "0" // as ZooKeeper: "/q/" is a valid sequential prefix
		}
		if err := s.checkPath(p); err != nil {
			return znode.Op{}, err
		}
		if err := s.checkData(req.Data); err != nil {
			return znode.Op{}, err
		}
		if mode.TTL() != (req.TTLMs != 0) {
			if mode.TTL() {
				return znode.Op{}, fmt.Errorf("%w: mode %s needs ttl_ms > 0", wire.ErrBadArguments, mode)
			}
			return znode.Op{}, fmt.Errorf("%w: ttl_ms is only valid with a TTL mode", wire.ErrBadArguments)
		}
		if mode.Ephemeral() && s.cfg.MaxEphemeralsPerSession > 0 {
			if info, ok := s.state.Session(sess); ok && info.Ephemerals >= s.cfg.MaxEphemeralsPerSession {
				return znode.Op{}, fmt.Errorf("%w: the session holds %d ephemerals, the limit", wire.ErrQuotaExceeded, info.Ephemerals)
			}
		}
		acl := req.ACL
		if acl == nil {
			acl = wire.OpenACL()
		}
		return znode.Op{Kind: znode.OpCreate, Path: req.Path, Data: req.Data, Mode: mode, TTLMs: req.TTLMs, ACL: acl}, nil
	case wire.OpDelete:
		if err := s.checkPath(req.Path); err != nil {
			return znode.Op{}, err
		}
		return znode.Op{Kind: znode.OpDelete, Path: req.Path, Version: req.Version}, nil
	case wire.OpSet:
		if err := s.checkPath(req.Path); err != nil {
			return znode.Op{}, err
		}
		if err := s.checkData(req.Data); err != nil {
			return znode.Op{}, err
		}
		return znode.Op{Kind: znode.OpSet, Path: req.Path, Data: req.Data, Version: req.Version}, nil
	case wire.OpCheck:
		if err := s.checkPath(req.Path); err != nil {
			return znode.Op{}, err
		}
		return znode.Op{Kind: znode.OpCheck, Path: req.Path, Version: req.Version}, nil
	case wire.OpSetACL:
		if err := s.checkPath(req.Path); err != nil {
			return znode.Op{}, err
		}
		if len(req.ACL) == 0 {
			return znode.Op{}, fmt.Errorf("%w: set_acl needs a non-empty acl", wire.ErrInvalidACL)
		}
		return znode.Op{Kind: znode.OpSetACL, Path: req.Path, ACL: req.ACL, Version: req.Version}, nil
	}
	return znode.Op{}, fmt.Errorf("%w: %q is not a write", wire.ErrUnimplemented, req.Op)
}

// multiOpError is a multi refused before it was proposed because of one of
// its ops; the answer gives every op its code, as a failed multi does.
type multiOpError struct {
	index int
	err   error
}

func (e *multiOpError) Error() string { return fmt.Sprintf("multi op %d: %v", e.index, e.err) }
func (e *multiOpError) Unwrap() error { return e.err }

// results returns PROTOCOL.md's per-op results of the refused multi.
func (e *multiOpError) results(ops []wire.Request) []wire.Result {
	out := make([]wire.Result, len(ops))
	for i := range ops {
		out[i].Op = ops[i].Op
		switch {
		case i == e.index:
			out[i].Err = wire.CodeOf(e.err)
		case i > e.index:
			out[i].Err = wire.RuntimeInconsistency
		}
	}
	return out
}

// read answers one read-class request. It runs inside a store View, so what it
// reads and the watches it sets belong to one applied index (zxid).
func (c *conn) read(v znode.View, req *wire.Request, zxid int64) wire.Response {
	s := c.s
	resp := wire.Response{Zxid: zxid}
	fail := func(err error) wire.Response {
		resp.Err, resp.Msg = wire.CodeOf(err), err.Error()
		return resp
	}
	if req.Op == wire.OpSetWatches {
		if err := c.setWatches(v, req, zxid); err != nil {
			return fail(err)
		}
		return resp
	}
	if err := s.checkPath(req.Path); err != nil {
		return fail(err)
	}
	switch req.Op {
	case wire.OpSync:
		resp.Path = req.Path
		return resp
	case wire.OpExists:
		n, err := v.Get(req.Path)
		if req.Watch {
			if werr := c.addWatch(req.Path, watch.Exist); werr != nil {
				return fail(werr)
			}
		}
		if err != nil {
			return fail(opErr(req, err))
		}
		st := n.Stat
		resp.Stat = &st
		return resp
	case wire.OpGet:
		n, err := v.Get(req.Path)
		if err != nil {
			return fail(opErr(req, err))
		}
		if !s.state.Allowed(n.ACL, c.identities(), wire.PermRead) {
			return fail(opErr(req, wire.ErrNoAuth))
		}
		if req.Watch {
			if werr := c.addWatch(req.Path, watch.Data); werr != nil {
				return fail(werr)
			}
		}
		resp.Data = n.Data
		if resp.Data == nil {
			resp.Data = []byte{}
		}
		st := n.Stat
		resp.Stat = &st
		return resp
	case wire.OpChildren:
		if req.Limit < 0 {
			return fail(fmt.Errorf("%w: limit must not be negative", wire.ErrBadArguments))
		}
		names, parent, err := v.Children(req.Path, req.After, req.Limit)
		if err != nil {
			return fail(opErr(req, err))
		}
		if !s.state.Allowed(parent.ACL, c.identities(), wire.PermRead) {
			return fail(opErr(req, wire.ErrNoAuth))
		}
		if req.Watch {
			if werr := c.addWatch(req.Path, watch.Child); werr != nil {
				return fail(werr)
			}
		}
		if names == nil {
			names = []string{}
		}
		resp.Children = names
		st := parent.Stat
		resp.Stat = &st
		return resp
	case wire.OpGetACL:
		n, err := v.Get(req.Path)
		if err != nil {
			return fail(opErr(req, err))
		}
		ids := c.identities()
		admin := s.state.Allowed(n.ACL, ids, wire.PermAdmin)
		if !admin && !s.state.Allowed(n.ACL, ids, wire.PermRead) {
			return fail(opErr(req, wire.ErrNoAuth))
		}
		resp.ACL = redactACL(n.ACL, admin)
		st := n.Stat
		resp.Stat = &st
		return resp
	case wire.OpAddWatch:
		var k watch.Kind
		switch wire.WatchMode(req.Mode) {
		case wire.WatchPersistent, "":
			k = watch.Persistent
		case wire.WatchPersistentRecursive:
			k = watch.PersistentRecursive
		default:
			return fail(fmt.Errorf("%w: add_watch mode must be persistent or persistent_recursive, not %q", wire.ErrBadArguments, req.Mode))
		}
		if err := c.addWatch(req.Path, k); err != nil {
			return fail(err)
		}
		return resp
	case wire.OpRemoveWatches:
		t := wire.WatchType(req.Type)
		if t == "" {
			t = wire.WatchTypeAny
		}
		switch t {
		case wire.WatchTypeData, wire.WatchTypeChildren, wire.WatchTypePersistent, wire.WatchTypePersistentRecursive, wire.WatchTypeAny:
		default:
			return fail(fmt.Errorf("%w: unknown watch type %q", wire.ErrBadArguments, req.Type))
		}
		if !s.watches.Remove(c.wid, req.Path, t) {
			return fail(opErr(req, wire.ErrNoWatcher))
		}
		return resp
	}
	return fail(fmt.Errorf("%w: %q", wire.ErrUnimplemented, req.Op))
}

// firedByReplay reports whether one of the replayed event types of a path
// fires a one-shot watch of kind k on it (ZooKeeper's rules: data and exist
// watches fire on create, change and delete; child watches on children
// changes and delete).
func firedByReplay(k watch.Kind, types []wire.EventType) bool {
	for _, t := range types {
		switch {
		case t == wire.EventNodeDeleted:
			return true
		case k == watch.Child && t == wire.EventNodeChildrenChanged:
			return true
		case k != watch.Child && (t == wire.EventNodeCreated || t == wire.EventNodeDataChanged):
			return true
		}
	}
	return false
}

// changeZxid is the zxid of the change a resumed one-shot watch fires for:
// the node's own record of it, or (for a deletion) the current zxid.
func changeZxid(ev wire.EventType, n *znode.Node, current int64) int64 {
	if n == nil {
		return current
	}
	switch ev {
	case wire.EventNodeCreated:
		return n.Stat.Czxid
	case wire.EventNodeDataChanged:
		return n.Stat.Mzxid
	case wire.EventNodeChildrenChanged:
		return n.Stat.Pzxid
	}
	return current
}

// addWatch sets a watch, within the per-session limit.
func (c *conn) addWatch(path string, k watch.Kind) error {
	if max := c.s.cfg.MaxWatchesPerSession; max > 0 && c.s.watches.Count(c.wid) >= max {
		return fmt.Errorf("%w: the connection holds %d watches, the limit", wire.ErrQuotaExceeded, max)
	}
	c.s.watches.Add(c.wid, path, k)
	return nil
}

func opErr(req *wire.Request, err error) error {
	if errors.Is(err, wire.ErrBadArguments) {
		return err
	}
	return &wire.OpError{Op: req.Op, Path: req.Path, Err: err}
}

// redactACL hides digest credentials from a caller without ADMIN, as
// ZooKeeper does.
func redactACL(acl []wire.ACL, admin bool) []wire.ACL {
	out := make([]wire.ACL, len(acl))
	copy(out, acl)
	if admin {
		return out
	}
	for i := range out {
		if out[i].Scheme == "digest" {
			user, _, _ := strings.Cut(out[i].ID, ":")
			out[i].ID = user + ":x"
		}
	}
	return out
}

// setWatches re-arms a resumed session's watches (PROTOCOL.md set_watches):
// persistent watches first get every event after last_zxid replayed from
// the change history (or one Resync when it is gone), one-shot watches whose
// node changed after last_zxid fire at once; the rest are armed.
func (c *conn) setWatches(v znode.View, req *wire.Request, zxid int64) error {
	s := c.s
	all := [][]string{req.DataWatches, req.ExistWatches, req.ChildWatches, req.PersistentWatches, req.RecursiveWatches}
	total := 0
	for _, l := range all {
		for _, p := range l {
			if err := s.checkPath(p); err != nil {
				return err
			}
		}
		total += len(l)
	}
	if max := s.cfg.MaxWatchesPerSession; max > 0 && s.watches.Count(c.wid)+total > max {
		return fmt.Errorf("%w: %d watches would exceed the limit of %d", wire.ErrQuotaExceeded, total, max)
	}
	last := req.LastZxid
	ids := c.identities()
	// The events replayed for persistent watches, by path: the client hands
	// each to every watch it matches, so a one-shot watch that one of them
	// fires must not get an event of its own besides (one event per change).
	var replayed map[string][]wire.EventType
	if len(req.PersistentWatches)+len(req.RecursiveWatches) > 0 {
		persistent := map[string]bool{}
		for _, p := range req.PersistentWatches {
			persistent[p] = true
		}
		recursive := req.RecursiveWatches
		var replay []wire.Response
		replayed = map[string][]wire.EventType{}
		complete, err := v.History(last, func(ch znode.Change) bool {
			match := persistent[ch.Path]
			if !match && ch.Type != wire.EventNodeChildrenChanged {
				for _, r := range recursive {
					if r == ch.Path || wire.IsAncestor(r, ch.Path) {
						match = true
						break
					}
				}
			}
			if match && s.state.Allowed(ch.ACL, ids, wire.PermRead) {
				replay = append(replay, wire.WatchEvent(ch.Type, ch.Path, ch.Zxid))
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("%w: replaying watch history: %v", wire.ErrRuntimeInconsistency, err)
		}
		if complete {
			for _, e := range replay {
				c.push(e)
				replayed[e.Path] = append(replayed[e.Path], e.Event)
			}
		} else {
			// The history no longer reaches last_zxid: say so instead of
			// replaying a part.
			for _, l := range [][]string{req.PersistentWatches, req.RecursiveWatches} {
				for _, p := range l {
					c.push(wire.WatchEvent(wire.EventResync, p, zxid))
				}
			}
		}
		for _, p := range req.PersistentWatches {
			s.watches.Add(c.wid, p, watch.Persistent)
		}
		for _, p := range req.RecursiveWatches {
			s.watches.Add(c.wid, p, watch.PersistentRecursive)
		}
	}
	resume := func(paths []string, k watch.Kind) {
		for _, p := range paths {
			n, err := v.Get(p)
			if err != nil {
				n = nil
			}
			if ev, fire := watch.ResumeEvent(k, n, last); fire {
				if firedByReplay(k, replayed[p]) {
					continue
				}
				e := wire.WatchEvent(ev, p, changeZxid(ev, n, zxid))
				if n == nil || s.state.Allowed(n.ACL, ids, wire.PermRead) {
					c.push(e)
				}
				continue
			}
			s.watches.Add(c.wid, p, k)
		}
	}
	resume(req.DataWatches, watch.Data)
	resume(req.ExistWatches, watch.Exist)
	resume(req.ChildWatches, watch.Child)
	return nil
}
