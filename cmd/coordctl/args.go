package main

import (
	"errors"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"
)

// token is one word of a shell line.
type token struct {
	text  string
	start int // byte offset of the word's first character in the line
}

// errUnterminated is returned for a line ending inside quotes.
var errUnterminated = errors.New("unterminated quote")

// tokenize splits a shell line into words, as a POSIX shell would for
// plain words: blanks separate words; '…' quotes literally; "…" quotes
// with \" and \\ as the only escapes; a backslash outside quotes escapes
// the next character; '#' at the start of a word begins a comment.
// partial reports that the line ended inside a word (the last token is
// being typed), which completion needs.
func tokenize(line string) (toks []token, partial bool, err error) {
	var (
		cur     strings.Builder
		inWord  bool
		start   int
		quote   rune // 0, '\'' or '"'
		escaped bool
	)
	begin := func(i int) {
		if !inWord {
			inWord, start = true, i
		}
	}
	for i, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				if i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					escaped = true
				} else {
					cur.WriteRune(r)
				}
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			begin(i)
			escaped = true
		case r == '\'' || r == '"':
			begin(i)
			quote = r
		case r == '#' && !inWord:
			return toks, false, nil
		case unicode.IsSpace(r):
			if inWord {
				toks = append(toks, token{cur.String(), start})
				cur.Reset()
				inWord = false
			}
		default:
			begin(i)
			cur.WriteRune(r)
		}
	}
	if quote != 0 || escaped {
		err = errUnterminated
	}
	if inWord {
		toks = append(toks, token{cur.String(), start})
		return toks, true, err
	}
	return toks, false, err
}

// splitWords splits a shell line into words (see tokenize).
func splitWords(line string) ([]string, error) {
	toks, _, err := tokenize(line)
	if err != nil {
		return nil, usagef("%v in %q", err, line)
	}
	words := make([]string, len(toks))
	for i, t := range toks {
		words[i] = t.text
	}
	return words, nil
}

// flagSpec maps every name of a set of flags to whether it takes a value.
type flagSpec map[string]bool

func specOf(flags []cli.Flag) flagSpec {
	s := flagSpec{"help": false, "h": false}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			s[n] = !isBool
		}
	}
	return s
}

// take recognises the flag at args[i] and returns how many arguments it
// spans (0 when it is not one of spec's flags, -1 when it lacks its value).
func (s flagSpec) take(args []string, i int) int {
	a := args[i]
	if len(a) < 2 || a[0] != '-' {
		return 0
	}
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	hasValue := false
	if k := strings.IndexByte(name, '='); k >= 0 {
		name, hasValue = name[:k], true
	}
	if takesValue, ok := s[name]; ok {
		switch {
		case !takesValue || hasValue:
			return 1
		case i+1 < len(args):
			return 2
		}
		return -1
	}
	// Combined short boolean flags: -es.
	if !strings.HasPrefix(a, "--") && !hasValue && len(name) > 1 {
		for _, c := range name {
			if takesValue, ok := s[string(c)]; !ok || takesValue {
				return 0
			}
		}
		return 1
	}
	return 0
}

// looksLikeFlag reports whether an argument that is no known flag was
// meant as one (so that it is reported as unknown rather than taken as a
// path or data): "--x" or "-x" with a letter. "-" and "-5" are arguments.
func looksLikeFlag(a string) bool {
	if strings.HasPrefix(a, "--") {
		return len(a) > 2
	}
	return len(a) > 1 && a[0] == '-' && unicode.IsLetter(rune(a[1]))
}

// positionalLimit is how many positional arguments a command takes before
// the rest, from the first argument that is not one of its flags, is an
// argument list of its own, untouched (lock runs a command): -1 for no
// limit.
func positionalLimit(cmd *cli.Command) int {
	switch cmd.Name {
	case "lock":
		return 1
	}
	return -1
}

// reorderArgs lets flags follow the positional arguments, as most modern
// command lines do (urfave/cli stops at the first argument): it moves the
// flags of the command named in args, and global flags found after it, in
// front of the positional arguments, which it puts after "--" so that
// data such as "-5" or "-" is never taken for a flag. args excludes the
// program name. A "--" in args ends the flags.
func reorderArgs(app *cli.App, args []string) ([]string, error) {
	globals := specOf(app.Flags)
	var gflags, path, flags, pos []string
	i := 0
	missing := func(a string) error {
		return usageHint(`run "coordctl help" for the flags`, "flag %s needs a value", a)
	}
	for i < len(args) {
		n := globals.take(args, i)
		if n < 0 {
			return nil, missing(args[i])
		}
		if n == 0 {
			break
		}
		gflags = append(gflags, args[i:i+n]...)
		i += n
	}
	if i >= len(args) {
		return gflags, nil
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return append(gflags, args[i:]...), nil
	}
	path = append(path, args[i])
	i++
	for len(cmd.Subcommands) > 0 && i < len(args) {
		sub := cmd.Command(args[i])
		if sub == nil {
			break
		}
		cmd = sub
		path = append(path, args[i])
		i++
	}
	spec := specOf(cmd.Flags)
	limit := positionalLimit(cmd)
	for i < len(args) {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		full := limit >= 0 && len(pos) >= limit
		if full && !strings.HasPrefix(a, "-") {
			pos = append(pos, args[i:]...)
			break
		}
		if n := spec.take(args, i); n != 0 {
			if n < 0 {
				return nil, missing(a)
			}
			flags = append(flags, args[i:i+n]...)
			i += n
			continue
		}
		if n := globals.take(args, i); n != 0 {
			if n < 0 {
				return nil, missing(a)
			}
			gflags = append(gflags, args[i:i+n]...)
			i += n
			continue
		}
		if full {
			pos = append(pos, args[i:]...)
			break
		}
		if looksLikeFlag(a) {
			flags = append(flags, a) // unknown: the parser reports it
			i++
			continue
		}
		pos = append(pos, a)
		i++
	}
	out := append(gflags, path...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out, nil
}
