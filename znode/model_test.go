package znode

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/coord-dev/coord/internal/wire"
)

// This file holds a reference model of the state machine, written
// independently of the store (plain maps, whole-state copies for multi, no
// indexes). gen_test.go drives it and the store with the same entries.

type mNode struct {
	data     []byte
	stat     wire.Stat // NumChildren and DataLength are derived when read
	acl      []wire.ACL
	mode     wire.Mode
	ttl      int64
	created  int64 // children ever created
	children map[string]bool
}

type mSession struct {
	timeout int64
	pass    []byte
	results map[int64]Result
}

type model struct {
	nodes    map[string]*mNode
	sessions map[wire.SessionID]*mSession
	time     int64
	super    string
	maxData  int
}

func newModel(super string, maxData int) *model {
	m := &model{nodes: map[string]*mNode{}, sessions: map[wire.SessionID]*mSession{}, super: super, maxData: maxData}
	m.nodes["/"] = &mNode{acl: wire.OpenACL(), mode: wire.ModePersistent, children: map[string]bool{}}
	return m
}

func (m *model) clone() *model {
	c := *m
	c.nodes = map[string]*mNode{}
	for p, n := range m.nodes {
		nn := *n
		nn.children = map[string]bool{}
		for k := range n.children {
			nn.children[k] = true
		}
		c.nodes[p] = &nn
	}
	return &c
}

func (m *model) statOf(p string) wire.Stat {
	n := m.nodes[p]
	st := n.stat
	st.NumChildren = int32(len(n.children))
	st.DataLength = int32(len(n.data))
	return st
}

func mParent(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func mBase(p string) string { return p[strings.LastIndex(p, "/")+1:] }

func mValidACL(acl []wire.ACL, ids []Ident) ([]wire.ACL, bool) {
	if len(acl) == 0 {
		return nil, false
	}
	var out []wire.ACL
	push := func(a wire.ACL) {
		for _, x := range out {
			if x == a {
				return
			}
		}
		out = append(out, a)
	}
	for _, a := range acl {
		if a.Perms > wire.PermAll {
			return nil, false
		}
		switch a.Scheme {
		case "world":
			if a.ID != "anyone" {
				return nil, false
			}
			push(a)
		case "auth":
			n := 0
			for _, id := range ids {
				if id.Scheme == "digest" && len(strings.Split(id.ID, ":")) == 2 && !strings.HasPrefix(id.ID, ":") && !strings.HasSuffix(id.ID, ":") {
					push(wire.ACL{Perms: a.Perms, Scheme: "digest", ID: id.ID})
					n++
				}
			}
			if n == 0 {
				return nil, false
			}
		case "digest":
			parts := strings.Split(a.ID, ":")
			if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
				return nil, false
			}
			push(a)
		case "ip":
			if _, _, err := net.ParseCIDR(a.ID); err != nil && net.ParseIP(a.ID) == nil {
				return nil, false
			}
			push(a)
		default:
			return nil, false
		}
	}
	return out, true
}

func (m *model) may(e *Entry, acl []wire.ACL, perm wire.Perms) bool {
	if e.Session == 0 || len(acl) == 0 {
		return true
	}
	for _, id := range e.Idents {
		if m.super != "" && id.Scheme == "digest" && id.ID == m.super {
			return true
		}
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		for _, id := range e.Idents {
			switch {
			case a.Scheme == "world" && a.ID == "anyone":
				return true
			case a.Scheme == "digest" && id.Scheme == "digest" && id.ID == a.ID:
				return true
			case a.Scheme == "ip" && id.Scheme == "ip":
				if _, nw, err := net.ParseCIDR(a.ID); err == nil {
					if nw.Contains(net.ParseIP(id.ID)) {
						return true
					}
				} else if net.ParseIP(a.ID).Equal(net.ParseIP(id.ID)) {
					return true
				}
			}
		}
		if a.Scheme == "world" && a.ID == "anyone" {
			return true
		}
	}
	return false
}

// apply applies one entry: result, changes, duplicate, closed session.
func (m *model) apply(idx uint64, e *Entry) (Result, []Change, bool, wire.SessionID) {
	if e.TimeMs > m.time {
		m.time = e.TimeMs
	}
	z := int64(idx)
	k := e.Op.Kind
	var sess *mSession
	if e.Session != 0 && k != OpCreateSession {
		sess = m.sessions[e.Session]
		if sess == nil {
			return Result{Kind: k, Err: wire.SessionExpired}, nil, false, 0
		}
	}
	cacheable := sess != nil && e.Xid > 0 && (k == OpCreate || k == OpDelete || k == OpSet || k == OpSetACL || k == OpMulti)
	if cacheable {
		if r, ok := sess.results[e.Xid]; ok {
			return r, nil, true, 0
		}
	}
	var r Result
	var ch []Change
	var closed wire.SessionID
	late := false
	if cacheable {
		// The session's xids increase: a write older than one applied is
		// refused (out of order, or its result evicted).
		for x := range sess.results {
			if x > e.Xid {
				late = true
				break
			}
		}
	}
	switch {
	case late:
		r = Result{Kind: k, Err: wire.RuntimeInconsistency}
	case k == OpCreate, k == OpDelete, k == OpSet:
		r, ch = m.simple(e, &e.Op, z)
	case k == OpSetACL:
		r = m.setACL(e, &e.Op)
	case k == OpMulti:
		r, ch = m.multi(e, z)
	case k == OpCreateSession:
		r = Result{Kind: k}
		switch {
		case e.Op.SessionID == 0 || e.Op.TimeoutMs <= 0:
			r.Err = wire.BadArguments
		case m.sessions[e.Op.SessionID] != nil:
			r.Err = wire.NodeExists
		default:
			m.sessions[e.Op.SessionID] = &mSession{timeout: e.Op.TimeoutMs, pass: e.Op.PassHash, results: map[int64]Result{}}
		}
	case k == OpCloseSession:
		r, ch, closed = m.closeSession(e, z)
	case k == OpReap:
		r, ch = m.reap(e, z)
	case k == OpNoop:
		r = Result{Kind: k}
	default:
		r = Result{Kind: k, Err: wire.BadArguments}
	}
	if cacheable {
		sess.results[e.Xid] = r
		if len(sess.results) > ResultsPerSession {
			low := int64(-1)
			for x := range sess.results {
				if low == -1 || x < low {
					low = x
				}
			}
			delete(sess.results, low)
		}
	}
	return r, ch, false, closed
}

func (m *model) chg(z int64, p string, t wire.EventType, acl []wire.ACL) Change {
	return Change{Zxid: z, Path: p, Type: t, ACL: acl}
}

// simple applies create, delete, set or check.
func (m *model) simple(e *Entry, op *Op, z int64) (Result, []Change) {
	r := Result{Kind: op.Kind}
	bad := func(c wire.Code) (Result, []Change) { r.Err = c; return r, nil }
	switch op.Kind {
	case OpCreate:
		mode := op.Mode
		if mode == "" {
			mode = wire.ModePersistent
		}
		isTTL := mode == wire.ModePersistentTTL || mode == wire.ModePersistentSequentialTTL
		isSeq := mode == wire.ModePersistentSequential || mode == wire.ModeEphemeralSequential || mode == wire.ModePersistentSequentialTTL
		isEph := mode == wire.ModeEphemeral || mode == wire.ModeEphemeralSequential
		if !mode.Valid() || (isTTL && (op.TTLMs < 1 || op.TTLMs > 0xFFFFFFFFFF)) || (!isTTL && op.TTLMs != 0) ||
			len(op.Data) > m.maxData || (isEph && e.Session == 0) {
			return bad(wire.BadArguments)
		}
		var parent string
		if isSeq {
			if wire.ValidatePath(op.Path+"1") != nil {
				return bad(wire.BadArguments)
			}
			parent = mParent(op.Path + "1")
		} else {
			if op.Path == "/" || wire.ValidatePath(op.Path) != nil {
				return bad(wire.BadArguments)
			}
			parent = mParent(op.Path)
		}
		acl, ok := mValidACL(op.ACL, e.Idents)
		if !ok {
			return bad(wire.InvalidACL)
		}
		pn := m.nodes[parent]
		if pn == nil {
			return bad(wire.NoNode)
		}
		if !m.may(e, pn.acl, wire.PermCreate) {
			return bad(wire.NoAuth)
		}
		p := op.Path
		if isSeq {
			p = fmt.Sprintf("%s%010d", op.Path, pn.created)
			if wire.ValidatePath(p) != nil {
				return bad(wire.BadArguments)
			}
		}
		if m.nodes[p] != nil {
			return bad(wire.NodeExists)
		}
		if pn.stat.EphemeralOwner != 0 {
			return bad(wire.NoChildrenForEphemerals)
		}
		n := &mNode{data: op.Data, acl: acl, mode: mode, ttl: op.TTLMs, children: map[string]bool{}}
		n.stat = wire.Stat{Czxid: z, Mzxid: z, Pzxid: z, Ctime: m.time, Mtime: m.time}
		if isEph {
			n.stat.EphemeralOwner = e.Session
		}
		m.nodes[p] = n
		pn.children[mBase(p)] = true
		pn.created++
		pn.stat.Cversion++
		pn.stat.Pzxid = z
		st := m.statOf(p)
		r.Path, r.Stat = p, &st
		return r, []Change{m.chg(z, p, wire.EventNodeCreated, acl), m.chg(z, parent, wire.EventNodeChildrenChanged, pn.acl)}
	case OpDelete:
		if op.Path == "/" || wire.ValidatePath(op.Path) != nil {
			return bad(wire.BadArguments)
		}
		n := m.nodes[op.Path]
		if n == nil {
			return bad(wire.NoNode)
		}
		if !m.may(e, m.nodes[mParent(op.Path)].acl, wire.PermDelete) {
			return bad(wire.NoAuth)
		}
		if op.Version != -1 && op.Version != n.stat.Version {
			return bad(wire.BadVersion)
		}
		if len(n.children) > 0 {
			return bad(wire.NotEmpty)
		}
		return r, m.remove(op.Path, z)
	case OpSet:
		if wire.ValidatePath(op.Path) != nil || len(op.Data) > m.maxData {
			return bad(wire.BadArguments)
		}
		n := m.nodes[op.Path]
		if n == nil {
			return bad(wire.NoNode)
		}
		if !m.may(e, n.acl, wire.PermWrite) {
			return bad(wire.NoAuth)
		}
		if op.Version != -1 && op.Version != n.stat.Version {
			return bad(wire.BadVersion)
		}
		n.data = op.Data
		n.stat.Version++
		n.stat.Mzxid = z
		n.stat.Mtime = m.time
		st := m.statOf(op.Path)
		r.Stat = &st
		return r, []Change{m.chg(z, op.Path, wire.EventNodeDataChanged, n.acl)}
	case OpCheck:
		if wire.ValidatePath(op.Path) != nil {
			return bad(wire.BadArguments)
		}
		n := m.nodes[op.Path]
		if n == nil {
			return bad(wire.NoNode)
		}
		if !m.may(e, n.acl, wire.PermRead) {
			return bad(wire.NoAuth)
		}
		if op.Version != -1 && op.Version != n.stat.Version {
			return bad(wire.BadVersion)
		}
		return r, nil
	}
	return bad(wire.BadArguments)
}

func (m *model) remove(p string, z int64) []Change {
	n := m.nodes[p]
	parent := mParent(p)
	pn := m.nodes[parent]
	delete(m.nodes, p)
	delete(pn.children, mBase(p))
	pn.stat.Cversion++
	pn.stat.Pzxid = z
	return []Change{m.chg(z, p, wire.EventNodeDeleted, n.acl), m.chg(z, parent, wire.EventNodeChildrenChanged, pn.acl)}
}

func (m *model) setACL(e *Entry, op *Op) Result {
	r := Result{Kind: OpSetACL}
	if wire.ValidatePath(op.Path) != nil {
		r.Err = wire.BadArguments
		return r
	}
	acl, ok := mValidACL(op.ACL, e.Idents)
	n := m.nodes[op.Path]
	switch {
	case !ok:
		r.Err = wire.InvalidACL
	case n == nil:
		r.Err = wire.NoNode
	case !m.may(e, n.acl, wire.PermAdmin):
		r.Err = wire.NoAuth
	case op.Version != -1 && op.Version != n.stat.Aversion:
		r.Err = wire.BadVersion
	default:
		n.acl = acl
		n.stat.Aversion++
		st := m.statOf(op.Path)
		r.Stat = &st
	}
	return r
}

func (m *model) multi(e *Entry, z int64) (Result, []Change) {
	saved := m.clone()
	r := Result{Kind: OpMulti, Multi: []Result{}}
	var ch []Change
	for i, op := range e.Op.Ops {
		var sr Result
		var sc []Change
		switch op.Kind {
		case OpCreate, OpDelete, OpSet, OpCheck:
			sr, sc = m.simple(e, &e.Op.Ops[i], z)
		default:
			sr = Result{Kind: op.Kind, Err: wire.BadArguments}
		}
		if sr.Err != "" {
			*m = *saved
			out := Result{Kind: OpMulti, Err: sr.Err}
			for j, o := range e.Op.Ops {
				c := wire.Code("")
				if j == i {
					c = sr.Err
				} else if j > i {
					c = wire.RuntimeInconsistency
				}
				out.Multi = append(out.Multi, Result{Kind: o.Kind, Err: c})
			}
			return out, nil
		}
		r.Multi = append(r.Multi, sr)
		ch = append(ch, sc...)
	}
	return r, ch
}

func (m *model) closeSession(e *Entry, z int64) (Result, []Change, wire.SessionID) {
	r := Result{Kind: OpCloseSession}
	id := e.Op.SessionID
	if id == 0 {
		id = e.Session
	}
	if id == 0 || (e.Session != 0 && e.Session != id) {
		r.Err = wire.BadArguments
		return r, nil, 0
	}
	if m.sessions[id] == nil {
		r.Err = wire.SessionExpired
		return r, nil, 0
	}
	var eph []string
	for p, n := range m.nodes {
		if n.stat.EphemeralOwner == id {
			eph = append(eph, p)
		}
	}
	sort.Strings(eph)
	var ch []Change
	for _, p := range eph {
		ch = append(ch, m.remove(p, z)...)
	}
	delete(m.sessions, id)
	return r, ch, id
}

func (m *model) reap(e *Entry, z int64) (Result, []Change) {
	r := Result{Kind: OpReap}
	op := &e.Op
	isTTL := func(md wire.Mode) bool { return md == wire.ModePersistentTTL || md == wire.ModePersistentSequentialTTL }
	if e.Session != 0 {
		r.Err = wire.NoAuth
		return r, nil
	}
	if op.Path == "/" || wire.ValidatePath(op.Path) != nil || (op.Mode != wire.ModeContainer && !isTTL(op.Mode)) {
		r.Err = wire.BadArguments
		return r, nil
	}
	n := m.nodes[op.Path]
	switch {
	case n == nil:
		r.Err = wire.NoNode
	case (op.Mode == wire.ModeContainer) != (n.mode == wire.ModeContainer) || (isTTL(op.Mode) && !isTTL(n.mode)):
		r.Err = wire.BadArguments
	case len(n.children) > 0:
		r.Err = wire.NotEmpty
	case n.mode == wire.ModeContainer && n.stat.Cversion == 0, isTTL(n.mode) && n.stat.Mtime+n.ttl > m.time:
		r.Err = wire.BadVersion
	default:
		return r, m.remove(op.Path, z)
	}
	return r, nil
}

// candidates mirrors ReapCandidates.
func (m *model) candidates(now int64) []string {
	type c struct {
		exp  int64
		path string
	}
	var ttl []c
	var cont []string
	for p, n := range m.nodes {
		if len(n.children) > 0 {
			continue
		}
		if (n.mode == wire.ModePersistentTTL || n.mode == wire.ModePersistentSequentialTTL) && n.stat.Mtime+n.ttl <= now {
			ttl = append(ttl, c{n.stat.Mtime + n.ttl, p})
		}
		if n.mode == wire.ModeContainer && n.stat.Cversion > 0 {
			cont = append(cont, p)
		}
	}
	sort.Slice(ttl, func(i, j int) bool {
		if ttl[i].exp != ttl[j].exp {
			return ttl[i].exp < ttl[j].exp
		}
		return ttl[i].path < ttl[j].path
	})
	sort.Strings(cont)
	var out []string
	for _, x := range ttl {
		out = append(out, x.path)
	}
	return append(out, cont...)
}

// dump renders the model as dumpStore renders a store.
func (m *model) dump() string {
	var b strings.Builder
	var walk func(p string)
	walk = func(p string) {
		n := m.nodes[p]
		data := n.data
		if data == nil {
			data = []byte{}
		}
		fmt.Fprintf(&b, "%s %s ttl=%d %+v acl=%v data=%q\n", p, n.mode, n.ttl, m.statOf(p), n.acl, data)
		var names []string
		for c := range n.children {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			if p == "/" {
				walk("/" + c)
			} else {
				walk(p + "/" + c)
			}
		}
	}
	walk("/")
	var ids []wire.SessionID
	for id := range m.sessions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		s := m.sessions[id]
		var eph []string
		for p, n := range m.nodes {
			if n.stat.EphemeralOwner == id {
				eph = append(eph, p)
			}
		}
		sort.Strings(eph)
		fmt.Fprintf(&b, "session %v timeout=%d pass=%q eph=%d %v\n", id, s.timeout, s.pass, len(eph), eph)
	}
	return b.String()
}
