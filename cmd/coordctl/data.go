package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// readData turns a DATA argument into bytes: "-" reads stdin, "@FILE" reads
// a file, "@@…" is a literal starting with "@", anything else is the
// literal. With b64 the result is base64-decoded.
func readData(arg string, stdin io.Reader, b64 bool) ([]byte, error) {
	var data []byte
	switch {
	case arg == "-":
		if stdin == nil {
			return nil, usagef(`data "-" (stdin) is not available here: stdin carries the script; use @FILE`)
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, usagef("reading data from stdin: %v", err)
		}
		data = b
	case strings.HasPrefix(arg, "@@"):
		data = []byte(arg[1:])
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, usageHint(`"@FILE" reads the data from FILE; write "@@…" for data that starts with "@"`,
				"cannot read data file %q: %v", arg[1:], err)
		}
		data = b
	default:
		data = []byte(arg)
	}
	if b64 {
		s := strings.TrimSpace(string(data))
		dec, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			dec, err = base64.RawStdEncoding.DecodeString(s)
		}
		if err != nil {
			return nil, usagef("--base64: data is not base64: %v", err)
		}
		data = dec
	}
	return data, nil
}

// dataFormat says how data is written in text output.
type dataFormat int

const (
	// dataText writes printable UTF-8 text as is and anything else as a
	// quoted, escaped Go string literal (with a note on stderr).
	dataText dataFormat = iota
	// dataBase64 writes standard base64.
	dataBase64
	// dataRaw writes the bytes untouched (for redirecting to a file).
	dataRaw
)

// printable reports whether data is UTF-8 text safe to write to a terminal:
// graphic characters (letters, marks, numbers, punctuation, symbols,
// spaces), tabs and newlines only.
func printable(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for _, r := range string(data) {
		if r == '\n' || r == '\t' {
			continue
		}
		// Graphic excludes control (\r, ESC…) and format characters
		// (bidirectional overrides, zero-width joiners).
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}

// formatData renders data for text output. escaped reports whether the
// result is a quoted escape of data that is not printable text. The
// result ends in a newline except in raw form.
func formatData(data []byte, f dataFormat) (out []byte, escaped bool) {
	switch f {
	case dataRaw:
		return data, false
	case dataBase64:
		return []byte(base64.StdEncoding.EncodeToString(data) + "\n"), false
	}
	if printable(data) {
		if len(data) == 0 || data[len(data)-1] != '\n' {
			return append(append([]byte(nil), data...), '\n'), false
		}
		return data, false
	}
	return []byte(strconv.Quote(string(data)) + "\n"), true
}

// writeData writes data in format f to w, with a note on stderr when it
// had to be escaped.
func writeData(w, stderr io.Writer, data []byte, f dataFormat) {
	out, escaped := formatData(data, f)
	_, _ = w.Write(out)
	if escaped {
		fmt.Fprintln(stderr, "coordctl: the data is not printable text; it is shown as a quoted, escaped string (use --base64 or --raw for the bytes)")
	}
}

// safeText escapes a string for one line of text output (a value printed
// next to others, e.g. an election value): printable text as is, else
// quoted.
func safeText(data []byte) string {
	if printable(data) && !strings.ContainsRune(string(data), '\n') {
		return string(data)
	}
	return strconv.Quote(string(data))
}
