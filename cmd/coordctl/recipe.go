package main

// What lock and elect share: where their recipes (client/recipe's Mutex
// and Election) live in the tree, and how losing a hold maps to an exit
// code. The recipes themselves are client/recipe's, so that a coordctl
// lock and a Go program's recipe.Mutex on the same path exclude each other.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coord-dev/coord/internal/wire"
)

// Where lock and elect keep their recipes when NAME is not a path.
const (
	lockRoot     = "/coordctl/locks"
	electionRoot = "/coordctl/elections"
)

// recipeDir maps a lock or election NAME to the path of its recipe: a NAME
// that starts with '/' is the path itself, any other NAME is one path
// component under root. A Go program shares the lock (or election) by
// passing the same path to recipe.NewMutex (recipe.NewElection).
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

// errLost says that a held lock or a candidacy ended without coordctl
// giving it up.
var errLost = errors.New("lost: the lock or candidate node is gone (session expired, or the node was deleted)")

// lostErr returns exit code 9 for a lock or candidacy lost while doing
// what; cause, if not nil, is the recipe's error (matching
// recipe.ErrLockLost), else errLost stands for it.
func lostErr(what string, cause error) error {
	if cause == nil {
		cause = errLost
	}
	return &cmdError{code: exitExpired, err: fmt.Errorf("%s: %w", what, cause),
		hint: "the session expired or the node was deleted by hand; nothing is held any more"}
}
