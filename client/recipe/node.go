package recipe

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/coord-dev/coord/client"
)

// seqDigits is the length of the sequence number the server appends to a
// sequential node's name.
const seqDigits = 10

// The kinds of participant nodes, the first part of their names:
// "<kind>-<session id>-<sequence>". The session id says which session made
// a node (for operators, and to attribute a leftover); the sequence orders
// the participants of one directory, all kinds together.
const (
	kindLock      = "lock"
	kindRead      = "read"
	kindWrite     = "write"
	kindCandidate = "candidate"
	kindPermit    = "permit"
	kindParty     = "party"
)

// child is a participant node of a recipe directory.
type child struct {
	name string
	kind string
	seq  int64
}

// parseChild parses a participant node's name; ok is false for any other
// name (a node the recipe did not make, or of another format).
func parseChild(name string) (c child, ok bool) {
	if len(name) < seqDigits+2 || name[len(name)-seqDigits-1] != '-' {
		return c, false
	}
	seq, err := strconv.ParseInt(name[len(name)-seqDigits:], 10, 64)
	if err != nil || seq < 0 {
		return c, false
	}
	kind, _, found := strings.Cut(name, "-")
	if !found {
		return c, false
	}
	return child{name: name, kind: kind, seq: seq}, true
}

// participants returns the children of the given kinds (all when kinds is
// empty), in sequence order: the order of their creation.
func participants(names []string, kinds ...string) []child {
	out := make([]child, 0, len(names))
	for _, n := range names {
		c, ok := parseChild(n)
		if ok && (len(kinds) == 0 || slices.Contains(kinds, c.kind)) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b child) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// indexOf returns the index of name in kids, or -1.
func indexOf(kids []child, name string) int {
	return slices.IndexFunc(kids, func(c child) bool { return c.name == name })
}

// ensurePath creates p and its missing ancestors as persistent nodes.
func ensurePath(ctx context.Context, c *client.Client, p string, data []byte) error {
	if p == "/" {
		return nil
	}
	for {
		_, _, err := c.Create(ctx, p, data, client.ModePersistent)
		switch {
		case err == nil, errors.Is(err, client.ErrNodeExists):
			return nil
		case !errors.Is(err, client.ErrNoNode):
			return err
		}
		if err := ensurePath(ctx, c, path.Dir(p), nil); err != nil {
			return err
		}
	}
}

// createIn creates a node named by prefix (a sequence number appended in
// sequential modes) in dir, creating dir first if it is missing.
func createIn(ctx context.Context, c *client.Client, dir, prefix string, data []byte, mode client.Mode) (string, *client.Stat, error) {
	for try := 0; ; try++ {
		p, st, err := c.Create(ctx, join(dir, prefix), data, mode)
		if !errors.Is(err, client.ErrNoNode) || try == 10 {
			return p, st, err
		}
		// The directory is missing (or was deleted meanwhile).
		if err := ensurePath(ctx, c, dir, nil); err != nil {
			return "", nil, err
		}
	}
}

// validDir checks a recipe's directory path early, so that a mistake is
// reported by the first call rather than as a create's odd failure.
func validDir(dir string) error {
	if dir == "" || dir[0] != '/' || (len(dir) > 1 && strings.HasSuffix(dir, "/")) || dir == "/" {
		return fmt.Errorf("%w: recipe path %q must be an absolute path below /", client.ErrBadArguments, dir)
	}
	return nil
}

// join returns dir/name.
func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// base returns the last element of p.
func base(p string) string { return path.Base(p) }
