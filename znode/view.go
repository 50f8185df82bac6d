package znode

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/coord-dev/coord/internal/wire"
)

// View is a read-only view of the store pinned at one applied index: while
// View's function runs, no Apply commits or publishes. The server reads
// through a View when what it reads and what it does with it (register a
// watch, answer in order with the events of a publish) must be atomic with
// respect to apply.
type View struct{ s *Store }

// View runs fn holding the store's read lock. fn must read through v only:
// calling other Store methods (but Allowed and MaxDataBytes) from fn could
// deadlock behind a waiting Apply.
func (s *Store) View(fn func(v View)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(View{s})
}

// AppliedIndex returns the applied index of the view.
func (v View) AppliedIndex() uint64 { return v.s.mu.applied }

// Get is Store.Get in the view.
func (v View) Get(path string) (*Node, error) {
	if err := wire.ValidatePath(path); err != nil {
		return nil, err
	}
	return v.s.getLocked(path)
}

// Children is Store.Children in the view.
func (v View) Children(path, after string, limit int) ([]string, *Node, error) {
	if err := wire.ValidatePath(path); err != nil {
		return nil, nil, err
	}
	if limit < 0 {
		return nil, nil, wire.ErrBadArguments
	}
	return v.s.childrenLocked(path, after, limit)
}

// Session is Store.Session in the view.
func (v View) Session(id wire.SessionID) (Session, bool) { return v.s.sessionLocked(id) }

// History is Store.History up to the view's applied index.
func (v View) History(after int64, fn func(Change) bool) (complete bool, err error) {
	if v.s.mu.closed {
		return false, ErrClosed
	}
	it, err := v.s.db.NewIter(&pebble.IterOptions{LowerBound: historyStart, UpperBound: historyEnd})
	return v.s.history(it, err, after, fn)
}

// Digest is Store.Digest of the view's state (at AppliedIndex).
func (v View) Digest() (string, error) {
	if v.s.mu.closed {
		return "", ErrClosed
	}
	it, err := v.s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: stateEnd})
	return digest(it, err)
}

// Allowed is Store.Allowed.
func (v View) Allowed(acl []wire.ACL, idents []Ident, perm wire.Perms) bool {
	return v.s.Allowed(acl, idents, perm)
}

// CachedResult returns the result the session's write xid got, when it was
// applied and its result is still kept (the last ResultsPerSession writes).
func (s *Store) CachedResult(id wire.SessionID, xid int64) (Result, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return Result{}, false, ErrClosed
	}
	v, c, err := s.db.Get(resultKey(id, xid))
	if errors.Is(err, pebble.ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("znode: cached result: %w", err)
	}
	defer c.Close()
	r, err := decodeResult(slices.Clone(v))
	if err != nil {
		return Result{}, false, fmt.Errorf("znode: cached result: %w", err)
	}
	return r, true, nil
}
