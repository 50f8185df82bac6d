package znode

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/coord-dev/coord/internal/wire"
)

// MaxTTLMs is the largest ttl_ms a TTL node may have, as ZooKeeper's
// EphemeralType.MAX_TTL.
const MaxTTLMs = 0xFF_FFFF_FFFF

// This file holds the semantics of each op. The checks of an op come in
// ZooKeeper's order (PrepRequestProcessor) and all precede its first write,
// so a failing op writes nothing. Errors returned are storage failures only;
// an op's own failure is its Result.Err.

// allowed reports whether e's caller may do perm on a node with acl. The
// system (session 0) may do anything.
func (a *applier) allowed(e *Entry, acl []wire.ACL, perm wire.Perms) bool {
	return e.Session == 0 || allowed(a.s.cfg.SuperDigest, acl, e.Idents, perm)
}

// seqName returns path with the sequential suffix n: ten digits at least,
// zero-padded, as ZooKeeper's "%010d".
func seqName(path string, n int64) string {
	d := strconv.FormatInt(n, 10)
	b := make([]byte, 0, len(path)+max(10, len(d)))
	b = append(b, path...)
	for i := len(d); i < 10; i++ {
		b = append(b, '0')
	}
	return string(append(b, d...))
}

func (a *applier) create(t *txn, e *Entry, op *Op, zxid int64, ch []Change) (Result, []Change, error) {
	res := Result{Kind: OpCreate}
	fail := func(c wire.Code) (Result, []Change, error) {
		res.Err = c
		return res, ch, nil
	}
	mode := op.Mode
	if mode == "" {
		mode = wire.ModePersistent
	}
	switch {
	case !mode.Valid(),
		mode.TTL() && (op.TTLMs <= 0 || op.TTLMs > MaxTTLMs),
		!mode.TTL() && op.TTLMs != 0,
		len(op.Data) > a.s.maxData,
		mode.Ephemeral() && e.Session == 0:
		return fail(wire.BadArguments)
	}
	path := op.Path
	var parentPath string
	if mode.Sequential() {
		// The name is path plus digits: "/q/" is fine, giving "/q/0000000000".
		if wire.ValidatePath(path+"0") != nil {
			return fail(wire.BadArguments)
		}
		parentPath = wire.Parent(path + "0")
	} else {
		if path == "/" || wire.ValidatePath(path) != nil {
			return fail(wire.BadArguments)
		}
		parentPath = wire.Parent(path)
	}
	acl, err := ValidateACL(op.ACL, e.Idents)
	if err != nil {
		return fail(wire.InvalidACL)
	}
	parent, err := t.get(parentPath)
	if err != nil {
		return res, ch, err
	}
	if parent == nil {
		return fail(wire.NoNode)
	}
	if !a.allowed(e, parent.acl, wire.PermCreate) {
		return fail(wire.NoAuth)
	}
	if mode.Sequential() {
		path = seqName(path, parent.seq)
		if wire.ValidatePath(path) != nil {
			return fail(wire.BadArguments)
		}
	}
	old, err := t.get(path)
	if err != nil {
		return res, ch, err
	}
	if old != nil {
		return fail(wire.NodeExists)
	}
	if parent.stat.EphemeralOwner != 0 {
		return fail(wire.NoChildrenForEphemerals)
	}

	n := &node{
		stat: wire.Stat{
			Czxid: zxid, Mzxid: zxid, Pzxid: zxid,
			Ctime: a.timeMs, Mtime: a.timeMs,
			DataLength: int32(len(op.Data)),
		},
		mode: mode,
		ttl:  op.TTLMs,
		acl:  acl,
		data: op.Data,
	}
	if mode.Ephemeral() {
		n.stat.EphemeralOwner = e.Session
	}
	p := *parent
	p.stat.Cversion++
	p.stat.Pzxid = zxid
	p.stat.NumChildren++
	p.seq++
	t.put(parentPath, parent, &p)
	t.put(path, nil, n)
	ch = append(ch,
		Change{Zxid: zxid, Path: path, Type: wire.EventNodeCreated, ACL: acl},
		Change{Zxid: zxid, Path: parentPath, Type: wire.EventNodeChildrenChanged, ACL: p.acl})
	st := n.stat
	res.Path, res.Stat = path, &st
	return res, ch, nil
}

func (a *applier) delete(t *txn, e *Entry, op *Op, zxid int64, ch []Change) (Result, []Change, error) {
	res := Result{Kind: OpDelete}
	if op.Path == "/" || wire.ValidatePath(op.Path) != nil {
		res.Err = wire.BadArguments
		return res, ch, nil
	}
	n, err := t.get(op.Path)
	if err != nil {
		return res, ch, err
	}
	if n == nil {
		res.Err = wire.NoNode
		return res, ch, nil
	}
	parent, err := t.get(wire.Parent(op.Path))
	if err != nil {
		return res, ch, err
	}
	if parent == nil {
		return res, ch, fmt.Errorf("%w: %s has no parent", errBrokenTree, op.Path)
	}
	switch {
	case !a.allowed(e, parent.acl, wire.PermDelete):
		res.Err = wire.NoAuth
	case op.Version != -1 && op.Version != n.stat.Version:
		res.Err = wire.BadVersion
	case n.stat.NumChildren > 0:
		res.Err = wire.NotEmpty
	default:
		ch = remove(t, op.Path, n, parent, zxid, ch)
	}
	return res, ch, nil
}

// remove deletes the childless node n at path, whose parent is parent.
func remove(t *txn, path string, n, parent *node, zxid int64, ch []Change) []Change {
	pp := wire.Parent(path)
	p := *parent
	p.stat.Cversion++
	p.stat.Pzxid = zxid
	p.stat.NumChildren--
	t.put(path, n, nil)
	t.put(pp, parent, &p)
	return append(ch,
		Change{Zxid: zxid, Path: path, Type: wire.EventNodeDeleted, ACL: n.acl},
		Change{Zxid: zxid, Path: pp, Type: wire.EventNodeChildrenChanged, ACL: p.acl})
}

func (a *applier) set(t *txn, e *Entry, op *Op, zxid int64, ch []Change) (Result, []Change, error) {
	res := Result{Kind: OpSet}
	if wire.ValidatePath(op.Path) != nil || len(op.Data) > a.s.maxData {
		res.Err = wire.BadArguments
		return res, ch, nil
	}
	n, err := t.get(op.Path)
	if err != nil {
		return res, ch, err
	}
	switch {
	case n == nil:
		res.Err = wire.NoNode
	case !a.allowed(e, n.acl, wire.PermWrite):
		res.Err = wire.NoAuth
	case op.Version != -1 && op.Version != n.stat.Version:
		res.Err = wire.BadVersion
	default:
		m := *n
		m.data = op.Data
		m.stat.DataLength = int32(len(op.Data))
		m.stat.Version++
		m.stat.Mzxid = zxid
		m.stat.Mtime = a.timeMs
		t.put(op.Path, n, &m)
		ch = append(ch, Change{Zxid: zxid, Path: op.Path, Type: wire.EventNodeDataChanged, ACL: m.acl})
		st := m.stat
		res.Stat = &st
	}
	return res, ch, nil
}

func (a *applier) check(t *txn, e *Entry, op *Op) (Result, error) {
	res := Result{Kind: OpCheck}
	if wire.ValidatePath(op.Path) != nil {
		res.Err = wire.BadArguments
		return res, nil
	}
	n, err := t.get(op.Path)
	if err != nil {
		return res, err
	}
	switch {
	case n == nil:
		res.Err = wire.NoNode
	case !a.allowed(e, n.acl, wire.PermRead):
		res.Err = wire.NoAuth
	case op.Version != -1 && op.Version != n.stat.Version:
		res.Err = wire.BadVersion
	}
	return res, nil
}

// setACL changes a node's ACL: aversion+1, mzxid unchanged, no watch fires.
func (a *applier) setACL(t *txn, e *Entry, op *Op) (Result, error) {
	res := Result{Kind: OpSetACL}
	if wire.ValidatePath(op.Path) != nil {
		res.Err = wire.BadArguments
		return res, nil
	}
	acl, err := ValidateACL(op.ACL, e.Idents)
	if err != nil {
		res.Err = wire.InvalidACL
		return res, nil
	}
	n, err := t.get(op.Path)
	if err != nil {
		return res, err
	}
	switch {
	case n == nil:
		res.Err = wire.NoNode
	case !a.allowed(e, n.acl, wire.PermAdmin):
		res.Err = wire.NoAuth
	case op.Version != -1 && op.Version != n.stat.Aversion:
		res.Err = wire.BadVersion
	default:
		m := *n
		m.acl = acl
		m.stat.Aversion++
		t.put(op.Path, n, &m)
		st := m.stat
		res.Stat = &st
	}
	return res, nil
}

// multi applies create, delete, set and check ops atomically at one zxid.
func (a *applier) multi(e *Entry, op *Op, zxid int64) (Result, []Change, error) {
	res := Result{Kind: OpMulti, Multi: make([]Result, len(op.Ops))}
	mt := newTxn(a.s, a.rd, a.t)
	var ch []Change
	for i := range op.Ops {
		sub := &op.Ops[i]
		var r Result
		var err error
		switch sub.Kind {
		case OpCreate:
			r, ch, err = a.create(mt, e, sub, zxid, ch)
		case OpDelete:
			r, ch, err = a.delete(mt, e, sub, zxid, ch)
		case OpSet:
			r, ch, err = a.set(mt, e, sub, zxid, ch)
		case OpCheck:
			r, err = a.check(mt, e, sub)
		default:
			r = Result{Kind: sub.Kind, Err: wire.BadArguments}
		}
		if err != nil {
			return res, nil, err
		}
		if r.Err != wire.OK {
			for j := range op.Ops {
				code := wire.OK
				switch {
				case j == i:
					code = r.Err
				case j > i:
					code = wire.RuntimeInconsistency
				}
				res.Multi[j] = Result{Kind: op.Ops[j].Kind, Err: code}
			}
			res.Err = r.Err
			return res, nil, nil
		}
		res.Multi[i] = r
	}
	a.t.merge(mt)
	return res, ch, nil
}

func (a *applier) createSession(op *Op) Result {
	res := Result{Kind: OpCreateSession}
	switch {
	case op.SessionID == 0 || op.TimeoutMs <= 0:
		res.Err = wire.BadArguments
	case a.session(op.SessionID) != nil:
		res.Err = wire.NodeExists
	default:
		s := &sessionEntry{id: op.SessionID, timeoutMs: op.TimeoutMs, passHash: slices.Clone(op.PassHash)}
		a.sess[s.id] = s
		// A session closed earlier in this batch under the same id left
		// its ephemeral count change behind; the new one starts at zero.
		delete(a.t.eph, s.id)
		_ = a.b.Set(sessionKey(s.id), encodeSession(nil, s), nil)
	}
	return res
}

// closeSession deletes a session's ephemerals (in path order), its result
// cache and the session itself.
func (a *applier) closeSession(e *Entry, op *Op, zxid int64, out *Outcome) error {
	out.Result = Result{Kind: OpCloseSession}
	id := op.SessionID
	if id == 0 {
		id = e.Session
	}
	if id == 0 || (e.Session != 0 && id != e.Session) {
		out.Result.Err = wire.BadArguments
		return nil
	}
	if a.session(id) == nil {
		out.Result.Err = wire.SessionExpired
		return nil
	}
	paths, err := a.ephemeralsOf(id)
	if err != nil {
		return err
	}
	for _, p := range paths {
		n, err := a.t.get(p)
		if err != nil {
			return err
		}
		if n == nil || n.stat.EphemeralOwner != id || n.stat.NumChildren != 0 {
			return fmt.Errorf("%w: ephemeral index lists %s for session %v", errBrokenTree, p, id)
		}
		parent, err := a.t.get(wire.Parent(p))
		if err != nil {
			return err
		}
		if parent == nil {
			return fmt.Errorf("%w: %s has no parent", errBrokenTree, p)
		}
		out.Changes = remove(a.t, p, n, parent, zxid, out.Changes)
	}
	prefix := resultPrefix(id)
	_ = a.b.DeleteRange(prefix, prefixEnd(prefix), nil)
	for ref := range a.results {
		if ref.id == id {
			delete(a.results, ref)
		}
	}
	_ = a.b.Delete(sessionKey(id), nil)
	a.sess[id] = nil
	out.Closed = id
	return nil
}

// reap deletes an expired TTL node or an empty container, re-checking the
// rule at apply time: a reap that raced a change fails (NoNode, NotEmpty,
// BadVersion when the node is not, or no longer, expired) and changes
// nothing.
func (a *applier) reap(e *Entry, op *Op, zxid int64) (Result, []Change, error) {
	res := Result{Kind: OpReap}
	if e.Session != 0 {
		res.Err = wire.NoAuth
		return res, nil, nil
	}
	if op.Path == "/" || wire.ValidatePath(op.Path) != nil || !(op.Mode == wire.ModeContainer || op.Mode.TTL()) {
		res.Err = wire.BadArguments
		return res, nil, nil
	}
	n, err := a.t.get(op.Path)
	if err != nil {
		return res, nil, err
	}
	switch {
	case n == nil:
		res.Err = wire.NoNode
		return res, nil, nil
	case op.Mode == wire.ModeContainer && n.mode != wire.ModeContainer,
		op.Mode.TTL() && !n.mode.TTL():
		res.Err = wire.BadArguments
		return res, nil, nil
	case n.stat.NumChildren > 0:
		res.Err = wire.NotEmpty
		return res, nil, nil
	case n.mode == wire.ModeContainer && n.stat.Cversion == 0,
		n.mode.TTL() && n.ttlExpiry() > uint64(a.timeMs):
		res.Err = wire.BadVersion
		return res, nil, nil
	}
	parent, err := a.t.get(wire.Parent(op.Path))
	if err != nil {
		return res, nil, err
	}
	if parent == nil {
		return res, nil, fmt.Errorf("%w: %s has no parent", errBrokenTree, op.Path)
	}
	return res, remove(a.t, op.Path, n, parent, zxid, nil), nil
}
