package wire

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeRequest parses one request frame. On error it returns the xid it
// could read (0 if none) and an error matching ErrMarshallingError (bad
// JSON, a missing xid or op, a field of the wrong JSON type) or
// ErrBadArguments (data that is not base64, set_watches data that is not a
// list of paths).
//
// It is a hand-written scanner for the one object shape requests have,
// because decoding requests is the hottest input of the server; a fuzz test
// holds it to the same answers as encoding/json (decodeRequestReflect).
func DecodeRequest(frame []byte) (Request, error) {
	d := reqDecoder{b: frame}
	var r Request
	var hasXid, hasOp bool
	err := d.request(&r, true, &hasXid, &hasOp)
	if err == nil {
		d.ws()
		if d.i != len(d.b) {
			err = d.errorf("data after the object")
		}
	}
	if err != nil {
		if !hasXid {
			r.Xid = 0
		}
		if errors.Is(err, ErrBadArguments) {
			return Request{Xid: r.Xid}, err
		}
		return Request{Xid: r.Xid}, fmt.Errorf("%w: %v", ErrMarshallingError, err)
	}
	if !hasXid || !hasOp {
		return Request{Xid: r.Xid}, fmt.Errorf("%w: a request needs xid and op", ErrMarshallingError)
	}
	if err := r.finish(); err != nil {
		return Request{Xid: r.Xid}, err
	}
	return r, nil
}

// finish interprets the raw "data" values once the ops are known, in the
// order encoding/json's decoder reported errors: the request's own, then
// each multi op's.
func (r *Request) finish() error {
	if r.rawData != nil {
		raw := r.rawData
		r.rawData = nil
		if err := r.setData(raw); err != nil {
			return err
		}
	}
	for i := range r.Ops {
		if !r.Ops[i].hasOp {
			return fmt.Errorf("%w: multi op %d has no op", ErrBadArguments, i)
		}
		r.Ops[i].hasOp = false
		if err := r.Ops[i].finish(); err != nil {
			return err
		}
	}
	return nil
}

type reqDecoder struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid JSON")

func (d *reqDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: "+format, append([]any{d.i}, args...)...)
}

func (d *reqDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *reqDecoder) expect(c byte) error {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != c {
		return d.errorf("expected %q: %w", c, errSyntax)
	}
	d.i++
	return nil
}

// peek returns the next non-space byte, 0 at the end.
func (d *reqDecoder) peek() byte {
	d.ws()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

// object calls field for each key of an object; field must consume the
// value.
func (d *reqDecoder) object(field func(key []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	var key []byte
	for {
		var err error
		if key, err = d.stringBytes(key[:0]); err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.errorf("expected ',' or '}': %w", errSyntax)
		}
	}
}

// objectIter walks an object's keys without a closure (request decoding is
// hot): begin, then next until it reports no more keys; the caller consumes
// each value.
type objectIter struct {
	d     *reqDecoder
	first bool
	key   []byte
}

func (d *reqDecoder) beginObject(it *objectIter) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	it.d, it.first = d, true
	return nil
}

// next reads the next key; false at the object's end.
func (it *objectIter) next() (bool, error) {
	d := it.d
	if it.first {
		it.first = false
		if d.peek() == '}' {
			d.i++
			return false, nil
		}
	} else {
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return false, nil
		default:
			return false, d.errorf("expected ',' or '}': %w", errSyntax)
		}
	}
	var err error
	if it.key, err = d.stringBytes(it.key[:0]); err != nil {
		return false, err
	}
	return true, d.expect(':')
}

// request decodes a request object (top is false for a multi's ops).
func (d *reqDecoder) request(r *Request, top bool, hasXid, hasOp *bool) error {
	r.Version = -1
	var version int64
	var it objectIter
	if err := d.beginObject(&it); err != nil {
		return err
	}
	for {
		more, err := it.next()
		if err != nil || !more {
			return err
		}
		switch string(it.key) {
		case "xid":
			if d.peek() == 'n' {
				err = d.null()
				r.Xid, *hasXid = 0, false
				break
			}
			if r.Xid, err = d.int(); err == nil {
				*hasXid = true
			}
		case "op":
			if d.peek() == 'n' {
				err = d.null()
				r.Op = ""
				break
			}
			if r.Op, err = d.string(); err == nil {
				*hasOp = true
			}
		case "timeout_ms":
			r.TimeoutMs, err = d.int()
		case "session_id":
			err = d.sessionID(&r.SessionID)
		case "password":
			r.Password, err = d.string()
		case "last_zxid":
			r.LastZxid, err = d.int()
		case "path":
			r.Path, err = d.string()
		case "data":
			d.ws()
			start := d.i
			if err = d.skip(); err == nil {
				r.rawData = d.b[start:d.i] // decoded by finish, once the op is known
			}
		case "mode":
			r.Mode, err = d.string()
		case "ttl_ms":
			r.TTLMs, err = d.int()
		case "acl":
			r.ACL, err = d.acls()
		case "version":
			if d.peek() == 'n' {
				err = d.null()
				r.Version = -1
				break
			}
			if version, err = d.int(); err == nil {
				if version < -1<<31 || version > 1<<31-1 {
					return d.errorf("version %d out of range", version)
				}
				r.Version = int32(version)
			}
		case "watch":
			r.Watch, err = d.bool()
		case "local":
			r.Local, err = d.bool()
		case "limit":
			var n int64
			n, err = d.int()
			r.Limit = int(n)
		case "after":
			r.After, err = d.string()
		case "wait_gone":
			r.WaitGone, err = d.string()
		case "wait_ms":
			r.WaitMs, err = d.int()
		case "ops":
			r.Ops, err = d.ops()
		case "type":
			r.Type, err = d.string()
		case "scheme":
			r.Scheme, err = d.string()
		case "credential":
			r.Credential, err = d.string()
		case "exist":
			r.ExistWatches, err = d.strings()
		case "children":
			r.ChildWatches, err = d.strings()
		case "persistent":
			r.PersistentWatches, err = d.strings()
		case "persistent_recursive":
			r.RecursiveWatches, err = d.strings()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

// setData interprets the raw "data" value once the op is known.
func (r *Request) setData(raw []byte) error {
	d := reqDecoder{b: raw}
	if d.peek() == 'n' {
		return d.null()
	}
	if r.Op == OpSetWatches {
		paths, err := d.strings()
		if err != nil {
			return fmt.Errorf("%w: set_watches data must be a list of paths: %v", ErrBadArguments, err)
		}
		r.DataWatches = paths
		return nil
	}
	if d.peek() != '"' {
		return fmt.Errorf("%w: data must be a base64 string", ErrBadArguments)
	}
	s, escaped, err := d.rawString()
	if err == nil && escaped {
		d.i = 0
		s, err = d.stringBytes(nil)
	}
	if err != nil {
		return fmt.Errorf("%w: data: %v", ErrBadArguments, err)
	}
	b, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(s))), s)
	if err != nil {
		return fmt.Errorf("%w: data is not standard base64: %v", ErrBadArguments, err)
	}
	if b == nil {
		b = []byte{}
	}
	r.Data = b
	return nil
}

func (d *reqDecoder) ops() ([]Request, error) {
	if d.peek() == 'n' {
		return nil, d.null()
	}
	if err := d.expect('['); err != nil {
		return nil, err
	}
	var out []Request
	if d.peek() == ']' {
		d.i++
		return out, nil
	}
	for {
		var r Request
		var hasXid, hasOp bool
		if err := d.request(&r, false, &hasXid, &hasOp); err != nil {
			return nil, err
		}
		r.Xid = 0
		r.hasOp = hasOp
		out = append(out, r)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, d.errorf("expected ',' or ']': %w", errSyntax)
		}
	}
}

func (d *reqDecoder) acls() ([]ACL, error) {
	if d.peek() == 'n' {
		return nil, d.null()
	}
	if err := d.expect('['); err != nil {
		return nil, err
	}
	out := []ACL{}
	if d.peek() == ']' {
		d.i++
		return out, nil
	}
	for {
		var a ACL
		err := d.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "perms":
				if d.peek() == 'n' {
					return d.null()
				}
				var s []byte
				if s, err = d.stringBytes(nil); err == nil {
					a.Perms, err = ParsePerms(string(s))
				}
			case "scheme":
				a.Scheme, err = d.string()
			case "id":
				a.ID, err = d.string()
			default:
				err = d.skip()
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, d.errorf("expected ',' or ']': %w", errSyntax)
		}
	}
}

func (d *reqDecoder) strings() ([]string, error) {
	if d.peek() == 'n' {
		return nil, d.null()
	}
	if err := d.expect('['); err != nil {
		return nil, err
	}
	out := []string{}
	if d.peek() == ']' {
		d.i++
		return out, nil
	}
	for {
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, d.errorf("expected ',' or ']': %w", errSyntax)
		}
	}
}

func (d *reqDecoder) sessionID(id *SessionID) error {
	if d.peek() == 'n' {
		return d.null()
	}
	s, err := d.string()
	if err != nil {
		return err
	}
	if s == "" {
		*id = 0
		return nil
	}
	v, err := ParseSessionID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

func (d *reqDecoder) null() error {
	d.ws()
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return nil
	}
	return d.errorf("expected null: %w", errSyntax)
}

func (d *reqDecoder) bool() (bool, error) {
	switch d.peek() {
	case 't':
		if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true" {
			d.i += 4
			return true, nil
		}
	case 'f':
		if len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false" {
			d.i += 5
			return false, nil
		}
	case 'n':
		return false, d.null()
	}
	return false, d.errorf("expected a boolean")
}

// int reads an integer that fits in int64; a fraction or an exponent is a
// type error, as encoding/json reports into an integer; null leaves 0.
func (d *reqDecoder) int() (int64, error) {
	if d.peek() == 'n' {
		return 0, d.null()
	}
	start := d.i
	if err := d.number(); err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return 0, d.errorf("number %s is not an integer in range", d.b[start:d.i])
	}
	return v, nil
}

// number scans a JSON number.
func (d *reqDecoder) number() error {
	d.ws()
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return d.errorf("expected a number: %w", errSyntax)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return d.errorf("bad number: %w", errSyntax)
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return d.errorf("bad number: %w", errSyntax)
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return nil
}

// string reads a JSON string; null reads as "".
func (d *reqDecoder) string() (string, error) {
	if d.peek() == 'n' {
		return "", d.null()
	}
	d.ws()
	// Fast path: no escapes, valid UTF-8.
	if d.i < len(d.b) && d.b[d.i] == '"' {
		for j := d.i + 1; j < len(d.b); j++ {
			c := d.b[j]
			if c == '"' {
				s := d.b[d.i+1 : j]
				if utf8.Valid(s) {
					d.i = j + 1
					return string(s), nil
				}
				break
			}
			if c == '\\' || c < 0x20 {
				break
			}
		}
	}
	b, err := d.stringBytes(nil)
	return string(b), err
}

// rawString scans a JSON string and returns its undecoded contents and
// whether it holds escapes or bytes that decoding would change (invalid
// UTF-8).
func (d *reqDecoder) rawString() (raw []byte, escaped bool, err error) {
	if err := d.expect('"'); err != nil {
		return nil, false, err
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			raw = d.b[start:d.i]
			d.i++
			return raw, escaped, nil
		case c < 0x20:
			return nil, false, d.errorf("control character in string: %w", errSyntax)
		case c == '\\':
			escaped = true
			if d.i+1 >= len(d.b) {
				return nil, false, d.errorf("unterminated escape: %w", errSyntax)
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				d.i += 2
				if _, ok := d.hex4(); !ok {
					return nil, false, d.errorf("bad \\u escape: %w", errSyntax)
				}
			default:
				return nil, false, d.errorf("bad escape: %w", errSyntax)
			}
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				escaped = true
			}
			d.i += size
		}
	}
	return nil, false, d.errorf("unterminated string: %w", errSyntax)
}

// stringBytes appends a JSON string's decoded bytes to buf, replacing
// invalid UTF-8 with U+FFFD as encoding/json does.
func (d *reqDecoder) stringBytes(buf []byte) ([]byte, error) {
	if err := d.expect('"'); err != nil {
		return nil, err
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return buf, nil
		case c < 0x20:
			return nil, d.errorf("control character in string: %w", errSyntax)
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return nil, d.errorf("unterminated escape: %w", errSyntax)
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return nil, d.errorf("bad \\u escape: %w", errSyntax)
				}
				if utf16.IsSurrogate(r) {
					// A pair, or U+FFFD for a lone half (as encoding/json).
					save := d.i
					if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						d.i += 2
						r2, ok := d.hex4()
						if ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								buf = utf8.AppendRune(buf, dec)
								continue
							}
						}
						d.i = save
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return nil, d.errorf("bad escape \\%c: %w", e, errSyntax)
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				buf = utf8.AppendRune(buf, utf8.RuneError)
			} else {
				buf = append(buf, d.b[d.i:d.i+size]...)
			}
			d.i += size
		}
	}
	return nil, d.errorf("unterminated string: %w", errSyntax)
}

func (d *reqDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// skip consumes any JSON value, checking its syntax.
func (d *reqDecoder) skip() error {
	return d.skipDepth(0)
}

func (d *reqDecoder) skipDepth(depth int) error {
	if depth > 1000 {
		return d.errorf("nesting too deep: %w", errSyntax)
	}
	switch d.peek() {
	case '{':
		return d.object(func([]byte) error { return d.skipDepth(depth + 1) })
	case '[':
		d.i++
		if d.peek() == ']' {
			d.i++
			return nil
		}
		for {
			if err := d.skipDepth(depth + 1); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return nil
			default:
				return d.errorf("expected ',' or ']': %w", errSyntax)
			}
		}
	case '"':
		_, _, err := d.rawString()
		return err
	case 't', 'f':
		_, err := d.bool()
		return err
	case 'n':
		return d.null()
	default:
		return d.number()
	}
}
