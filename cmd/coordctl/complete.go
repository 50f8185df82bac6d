package main

import (
	"context"
	"strings"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// completer completes the shell's command names and, for the commands
// that take paths, znode paths read from the live tree (readline's
// AutoCompleter). readline calls it on its own goroutine while the shell's
// goroutine waits in Readline; it only reads the working node and uses the
// client, never connecting.
type completer struct {
	sh    *shell
	names []string // commands and aliases, sorted
}

// completionTimeout bounds the reads of one completion.
const completionTimeout = 2 * time.Second

// takesPaths reports whether a command takes paths as arguments.
func takesPaths(cmd string) bool {
	switch cmd {
	case "ls", "get", "set", "create", "delete", "rm", "deleteall", "rmr", "stat",
		"sync", "getacl", "setacl", "watch", "cd", "unwatch":
		return true
	}
	return false
}

// Do returns the candidates' remaining characters and the length of the
// word being completed.
func (cp *completer) Do(line []rune, pos int) ([][]rune, int) {
	s := string(line[:pos])
	toks, partial, err := tokenize(s)
	if err != nil {
		return nil, 0 // inside quotes: no completion
	}
	cur := ""
	if partial {
		last := toks[len(toks)-1]
		if s[last.start:] != last.text {
			return nil, 0 // quoted or escaped: leave it alone
		}
		cur, toks = last.text, toks[:len(toks)-1]
	}
	if len(toks) == 0 || (len(toks) == 1 && toks[0].text == "help") {
		return complete(cp.names, cur, " "), len([]rune(cur))
	}
	cmd := toks[0].text
	if cmd == "members" && len(toks) == 1 {
		return complete([]string{"add", "list", "move-leader", "promote", "remove"}, cur, " "), len([]rune(cur))
	}
	if !takesPaths(cmd) || strings.HasPrefix(cur, "-") {
		return nil, 0
	}
	return cp.paths(cur)
}

// complete returns the suffixes of the words starting with prefix, each
// followed by end when it is the only one.
func complete(words []string, prefix, end string) [][]rune {
	var out [][]rune
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, []rune(w[len(prefix):]))
		}
	}
	if len(out) == 1 {
		out[0] = append(out[0], []rune(end)...)
	}
	return out
}

// paths completes a path argument from the children of its directory
// part. A single match is followed by "/" when it has children, else by
// a space.
func (cp *completer) paths(cur string) ([][]rune, int) {
	cl := cp.sh.x.current()
	if cl == nil {
		return nil, 0
	}
	dirPart, prefix := "", cur
	if i := strings.LastIndexByte(cur, '/'); i >= 0 {
		dirPart, prefix = cur[:i+1], cur[i+1:]
	}
	dir := dirPart
	if dir == "" {
		dir = "."
	}
	abs, err := cp.sh.x.resolve(dir)
	if err != nil {
		return nil, 0
	}
	ctx, cancel := context.WithTimeout(cp.sh.ctx, completionTimeout)
	defer cancel()
	kids, _, err := cl.Children(ctx, abs, client.Local())
	if err != nil {
		return nil, 0
	}
	var match []string
	for _, k := range kids {
		if strings.HasPrefix(k, prefix) {
			match = append(match, k)
		}
	}
	if len(match) != 1 {
		return complete(match, prefix, ""), len([]rune(prefix))
	}
	end := " "
	if _, st, err := cl.Exists(ctx, wire.Join(abs, match[0]), client.Local()); err == nil && st != nil && st.NumChildren > 0 {
		end = "/"
	}
	return complete(match, prefix, end), len([]rune(prefix))
}
