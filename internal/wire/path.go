package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxPathBytes is the longest path PROTOCOL.md accepts.
const MaxPathBytes = 1024

// ErrBadPath is wrapped by every path validation error; it matches
// ErrBadArguments too, since a bad path answers BadArguments.
var ErrBadPath = fmt.Errorf("bad path: %w", ErrBadArguments)

// ValidatePath reports whether p is an acceptable znode path: absolute,
// '/'-separated, with no empty, "." or ".." component, no trailing '/' except
// for the root, no NUL or control characters, valid UTF-8, at most
// MaxPathBytes bytes.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrBadPath)
	case len(p) > MaxPathBytes:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrBadPath, len(p), MaxPathBytes)
	case p[0] != '/':
		return fmt.Errorf("%w: %q is not absolute", ErrBadPath, p)
	case p == "/":
		return nil
	case p[len(p)-1] == '/':
		return fmt.Errorf("%w: %q ends with '/'", ErrBadPath, p)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadPath)
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("%w: control character %#x at byte %d", ErrBadPath, c, i)
			}
			if c != '/' {
				continue
			}
		}
		switch p[start:i] {
		case "":
			return fmt.Errorf("%w: %q has an empty component", ErrBadPath, p)
		case ".", "..":
			return fmt.Errorf("%w: %q has a relative component", ErrBadPath, p)
		}
		start = i + 1
	}
	// C1 control characters (U+0080..U+009F). (Valid UTF-8 holds no
	// surrogates; other code points are allowed, as PROTOCOL.md says.)
	for _, r := range p {
		if r >= 0x80 && r <= 0x9f {
			return fmt.Errorf("%w: control character %U", ErrBadPath, r)
		}
	}
	return nil
}

// ValidateName reports whether name is a single path component.
func ValidateName(name string) error {
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: name %q contains '/'", ErrBadPath, name)
	}
	return ValidatePath("/" + name)
}

// Parent returns the parent of a valid path; the root's parent is "".
func Parent(p string) string {
	if p == "/" {
		return ""
	}
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

// Base returns the last component of a valid path; the root's is "".
func Base(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// Join returns the path of child name under parent.
func Join(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// Depth returns the number of components of a valid path; the root has 0.
func Depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// IsAncestor reports whether a is a strict ancestor of p.
func IsAncestor(a, p string) bool {
	if a == "/" {
		return p != "/"
	}
	return len(p) > len(a) && p[len(a)] == '/' && p[:len(a)] == a
}

var errNoParent = errors.New("the root has no parent")

// ParentOf is Parent with an error for the root, for callers that need one.
func ParentOf(p string) (string, error) {
	if p == "/" {
		return "", fmt.Errorf("%w: %w", ErrBadPath, errNoParent)
	}
	return Parent(p), nil
}
