package client

// STAND-IN, NOT A SERVER: the tree, writes and watch firing of the fake
// server of fakeserver_test.go (see there). Delete with it once integration
// tests against real coordd processes land.

import (
	"fmt"
	"sort"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

func (s *fakeServer) setWatchesLocked(fc *fconn, req wire.Request, answer func(wire.Response)) {
	cl := s.cl
	last := req.LastZxid
	var fire []wire.Response
	event := func(t wire.EventType, p string, z int64) {
		// At most one event per change and connection.
		for _, e := range fire {
			if e.Event == t && e.Path == p && e.Zxid == z {
				return
			}
		}
		fire = append(fire, wire.WatchEvent(t, p, z))
	}
	deletedAt := func(p string) int64 {
		for i := len(cl.log) - 1; i >= 0; i-- {
			if e := cl.log[i]; e.path == p && e.typ == wire.EventNodeDeleted {
				return e.zxid
			}
		}
		return cl.zxid
	}
	for _, p := range req.DataWatches {
		n := cl.nodes[p]
		switch {
		case n == nil:
			event(wire.EventNodeDeleted, p, deletedAt(p))
		case n.stat.Mzxid > last:
			event(wire.EventNodeDataChanged, p, n.stat.Mzxid)
		default:
			fc.watches[fwatch{p, "data"}] = struct{}{}
		}
	}
	for _, p := range req.ExistWatches {
		if n := cl.nodes[p]; n != nil {
			event(wire.EventNodeCreated, p, n.stat.Czxid)
		} else {
			fc.watches[fwatch{p, "exist"}] = struct{}{}
		}
	}
	for _, p := range req.ChildWatches {
		n := cl.nodes[p]
		switch {
		case n == nil:
			event(wire.EventNodeDeleted, p, deletedAt(p))
		case n.stat.Pzxid > last:
			event(wire.EventNodeChildrenChanged, p, n.stat.Pzxid)
		default:
			fc.watches[fwatch{p, "child"}] = struct{}{}
		}
	}
	replay := map[int]bool{}
	for _, list := range []struct {
		kind  string
		paths []string
	}{{"persistent", req.PersistentWatches}, {"persistent_recursive", req.RecursiveWatches}} {
		for _, p := range list.paths {
			w := fwatch{p, list.kind}
			fc.watches[w] = struct{}{}
			if last < cl.compacted {
				event(wire.EventResync, p, cl.zxid)
				continue
			}
			for i, e := range cl.log {
				if e.zxid > last && persistentFires(w, e) {
					replay[i] = true
				}
			}
		}
	}
	for i, e := range cl.log {
		if replay[i] {
			event(e.typ, e.path, e.zxid)
		}
	}
	sort.SliceStable(fire, func(i, j int) bool { return fire[i].Zxid < fire[j].Zxid })
	if cl.eventsFirst {
		for _, e := range fire {
			fc.sendLocked(e)
		}
		answer(wire.Response{})
		return
	}
	answer(wire.Response{})
	for _, e := range fire {
		fc.sendLocked(e)
	}
}

func persistentFires(w fwatch, e fevent) bool {
	switch w.kind {
	case "persistent":
		return w.path == e.path
	case "persistent_recursive":
		return (w.path == e.path || wire.IsAncestor(w.path, e.path)) && e.typ != wire.EventNodeChildrenChanged
	}
	return false
}

// fireLocked logs the events of one change and sends each, at most once
// per connection, to the connections whose watches it triggers.
func (cl *fakeCluster) fireLocked(evs []fevent) {
	cl.log = append(cl.log, evs...)
	for _, s := range cl.servers {
		for fc := range s.conns {
			for _, e := range evs {
				hit := false
				for w := range fc.watches {
					switch w.kind {
					case "data", "exist":
						if w.path == e.path && e.typ != wire.EventNodeChildrenChanged {
							delete(fc.watches, w)
							hit = true
						}
					case "child":
						if w.path == e.path && (e.typ == wire.EventNodeChildrenChanged || e.typ == wire.EventNodeDeleted) {
							delete(fc.watches, w)
							hit = true
						}
					default:
						if persistentFires(w, e) {
							hit = true
						}
					}
				}
				if hit {
					fc.sendLocked(wire.WatchEvent(e.typ, e.path, e.zxid))
				}
			}
		}
	}
}

// applyLocked applies one write and returns its answer (without xid and
// zxid). A multi applies to a copy of the tree, kept only if every op
// succeeds.
func (cl *fakeCluster) applyLocked(sid wire.SessionID, req wire.Request) wire.Response {
	if req.Op != wire.OpMulti {
		saved := cl.nodes
		cl.nodes = cloneTree(saved)
		zxid := cl.zxid + 1
		res, evs := cl.applyOneLocked(sid, req, zxid)
		if res.Err != wire.OK {
			cl.nodes = saved
			return wire.Response{Err: res.Err}
		}
		cl.zxid = zxid
		cl.fireLocked(evs)
		return wire.Response{Path: res.Path, Stat: res.Stat}
	}
	saved := cl.nodes
	cl.nodes = cloneTree(saved)
	zxid := cl.zxid + 1
	var all []fevent
	results := make([]wire.Result, len(req.Ops))
	failed := wire.OK
	for i, op := range req.Ops {
		if failed != wire.OK {
			results[i] = wire.Result{Op: op.Op, Err: wire.RuntimeInconsistency}
			continue
		}
		res, evs := cl.applyOneLocked(sid, op, zxid)
		results[i] = res
		if res.Err != wire.OK {
			failed = res.Err
			for j := 0; j < i; j++ {
				results[j] = wire.Result{Op: req.Ops[j].Op}
			}
			continue
		}
		all = append(all, evs...)
	}
	if failed != wire.OK {
		cl.nodes = saved
		return wire.Response{Err: failed, Results: results}
	}
	cl.zxid = zxid
	cl.fireLocked(all)
	return wire.Response{Results: results}
}

func cloneTree(t map[string]*fnode) map[string]*fnode {
	out := make(map[string]*fnode, len(t))
	for p, n := range t {
		c := *n
		c.children = make(map[string]struct{}, len(n.children))
		for k := range n.children {
			c.children[k] = struct{}{}
		}
		out[p] = &c
	}
	return out
}

func (cl *fakeCluster) deleteLocked(p string) {
	delete(cl.nodes, p)
	if parent := cl.nodes[wire.Parent(p)]; parent != nil {
		delete(parent.children, wire.Base(p))
		parent.stat.Cversion++
		parent.stat.NumChildren = int32(len(parent.children))
		parent.stat.Pzxid = cl.zxid
	}
}

func (cl *fakeCluster) applyOneLocked(sid wire.SessionID, op wire.Request, zxid int64) (wire.Result, []fevent) {
	fail := func(c wire.Code) (wire.Result, []fevent) { return wire.Result{Op: op.Op, Err: c}, nil }
	if wire.ValidatePath(op.Path) != nil {
		return fail(wire.BadArguments)
	}
	n := cl.nodes[op.Path]
	now := time.Now().UnixMilli()
	switch op.Op {
	case wire.OpCreate:
		parent := cl.nodes[wire.Parent(op.Path)]
		if parent == nil {
			return fail(wire.NoNode)
		}
		if parent.stat.EphemeralOwner != 0 {
			return fail(wire.NoChildrenForEphemerals)
		}
		mode := wire.Mode(op.Mode)
		if mode == "" {
			mode = wire.ModePersistent
		}
		p := op.Path
		if mode.Sequential() {
			p = fmt.Sprintf("%s%010d", p, parent.seq)
		}
		if cl.nodes[p] != nil {
			return fail(wire.NodeExists)
		}
		parent.seq++
		acl := op.ACL
		if acl == nil {
			acl = wire.OpenACL()
		}
		nn := &fnode{data: op.Data, acl: acl, children: map[string]struct{}{}}
		nn.stat = wire.Stat{Czxid: zxid, Mzxid: zxid, Pzxid: zxid, Ctime: now, Mtime: now, DataLength: int32(len(op.Data))}
		if mode.Ephemeral() {
			nn.stat.EphemeralOwner = sid
		}
		cl.nodes[p] = nn
		parent.children[wire.Base(p)] = struct{}{}
		parent.stat.Cversion++
		parent.stat.NumChildren = int32(len(parent.children))
		parent.stat.Pzxid = zxid
		st := nn.stat
		return wire.Result{Op: op.Op, Path: p, Stat: &st},
			[]fevent{{wire.EventNodeCreated, p, zxid}, {wire.EventNodeChildrenChanged, wire.Parent(p), zxid}}
	case wire.OpDelete:
		switch {
		case n == nil:
			return fail(wire.NoNode)
		case op.Version != -1 && op.Version != n.stat.Version:
			return fail(wire.BadVersion)
		case len(n.children) > 0:
			return fail(wire.NotEmpty)
		}
		saved := cl.zxid
		cl.zxid = zxid
		cl.deleteLocked(op.Path)
		cl.zxid = saved
		return wire.Result{Op: op.Op}, []fevent{{wire.EventNodeDeleted, op.Path, zxid}, {wire.EventNodeChildrenChanged, wire.Parent(op.Path), zxid}}
	case wire.OpSet:
		switch {
		case n == nil:
			return fail(wire.NoNode)
		case op.Version != -1 && op.Version != n.stat.Version:
			return fail(wire.BadVersion)
		}
		n.data = op.Data
		n.stat.Version++
		n.stat.Mzxid, n.stat.Mtime, n.stat.DataLength = zxid, now, int32(len(op.Data))
		st := n.stat
		return wire.Result{Op: op.Op, Stat: &st}, []fevent{{wire.EventNodeDataChanged, op.Path, zxid}}
	case wire.OpCheck:
		switch {
		case n == nil:
			return fail(wire.NoNode)
		case op.Version != -1 && op.Version != n.stat.Version:
			return fail(wire.BadVersion)
		}
		return wire.Result{Op: op.Op}, nil
	case wire.OpSetACL:
		switch {
		case n == nil:
			return fail(wire.NoNode)
		case op.Version != -1 && op.Version != n.stat.Aversion:
			return fail(wire.BadVersion)
		}
		n.acl = op.ACL
		n.stat.Aversion++
		st := n.stat
		return wire.Result{Op: op.Op, Stat: &st}, nil
	}
	return fail(wire.Unimplemented)
}
