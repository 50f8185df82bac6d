package client

import (
	"context"
	"fmt"

	"github.com/coord-dev/coord/internal/wire"
)

// OpList is the list of operations of a Multi, built with Ops and chained
// calls:
//
//	ops := client.Ops().
//		Check("/app/lock", 3).
//		Set("/app/config", data, client.AnyVersion).
//		Create("/app/log/entry-", nil, client.ModePersistentSequential)
//
// The first invalid operation (a bad path, mode or TTL) is remembered and
// returned by Multi, which then sends nothing.
type OpList struct {
	ops []wire.Request
	err error
}

// Ops returns an empty OpList.
func Ops() *OpList { return &OpList{} }

// Len returns the number of operations in the list.
func (l *OpList) Len() int { return len(l.ops) }

func (l *OpList) add(r wire.Request, err error) *OpList {
	if err == nil {
		err = wire.ValidatePath(r.Path)
	}
	if err != nil && l.err == nil {
		l.err = &OpError{Op: r.Op, Path: r.Path, Err: fmt.Errorf("multi op %d: %w", len(l.ops), err)}
	}
	l.ops = append(l.ops, r)
	return l
}

// Create adds the creation of a node, as Client.Create.
func (l *OpList) Create(path string, data []byte, mode Mode, opts ...CreateOption) *OpList {
	r, err := createRequest(path, data, mode, opts)
	return l.add(r, err)
}

// Delete adds the deletion of a node, as Client.Delete.
func (l *OpList) Delete(path string, version int32) *OpList {
	return l.add(wire.Request{Op: wire.OpDelete, Path: path, Version: version}, nil)
}

// Set adds the setting of a node's data, as Client.Set.
func (l *OpList) Set(path string, data []byte, version int32) *OpList {
	return l.add(wire.Request{Op: wire.OpSet, Path: path, Data: data, Version: version}, nil)
}

// Check adds a condition: the node at path exists and has version version
// (AnyVersion: merely exists).
func (l *OpList) Check(path string, version int32) *OpList {
	return l.add(wire.Request{Op: wire.OpCheck, Path: path, Version: version}, nil)
}

// OpResult is the outcome of one operation of a Multi.
type OpResult struct {
	// Op is the operation: "create", "delete", "set" or "check".
	Op string
	// Path is the path created, for a create.
	Path string
	// Stat is the node's new Stat, for a create or a set.
	Stat *Stat
	// Err is nil for a success and for the operations before the failing
	// one (rolled back with it), the failure's sentinel for the failing one,
	// and ErrRuntimeInconsistency for the operations after it.
	Err error
}

// Multi applies the operations of ops atomically: all at one zxid, or none.
// It returns one OpResult per operation, also on failure, when err is an
// *OpError naming the first failing operation's path and wrapping its error.
// Like every write, a Multi is applied exactly once even when resent after a
// lost connection.
func (c *Client) Multi(ctx context.Context, ops *OpList) ([]OpResult, error) {
	if ops.err != nil {
		return nil, ops.err
	}
	if len(ops.ops) == 0 {
		return []OpResult{}, nil
	}
	c.mu.Lock()
	limit := c.mu.maxData
	c.mu.Unlock()
	for _, r := range ops.ops {
		if len(r.Data) > limit {
			return nil, &OpError{Op: wire.OpMulti, Path: r.Path, Err: fmt.Errorf("%w: %d bytes of data, more than the server's %d", ErrBadArguments, len(r.Data), limit)}
		}
	}
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpMulti, Ops: ops.ops}, nil)
	if resp == nil {
		return nil, err
	}
	results := make([]OpResult, len(resp.Results))
	failed := ""
	for i, r := range resp.Results {
		results[i] = OpResult{Op: r.Op, Path: r.Path, Stat: r.Stat, Err: r.Err.Err()}
		if r.Err != wire.OK && r.Err == resp.Err && failed == "" && i < len(ops.ops) {
			failed = ops.ops[i].Path
		}
	}
	if err != nil {
		return results, &OpError{Op: wire.OpMulti, Path: failed, Err: codeError(resp.Err, resp.Msg)}
	}
	if len(results) != len(ops.ops) {
		return results, &OpError{Op: wire.OpMulti, Err: fmt.Errorf("%w: %d results for %d ops", ErrRuntimeInconsistency, len(results), len(ops.ops))}
	}
	return results, nil
}
