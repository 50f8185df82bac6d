package wire

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
)

// DecodeResponse parses one server frame; any error matches
// ErrMarshallingError.
//
// Like DecodeRequest it is a hand-written scanner: the Go client decodes
// every answer and event with it, and encoding/json was its largest single
// cost (15% of the client's CPU in the mutex benchmark). A fuzz test holds
// it to encoding/json's answers (decodeResponseReflect), down to what a
// repeated key or a null does to a field; it differs only in matching keys
// case-sensitively.
func DecodeResponse(frame []byte) (Response, error) {
	d := reqDecoder{b: frame}
	var r Response
	var err error
	if d.peek() == 'n' {
		err = d.null() // encoding/json leaves the response empty
	} else {
		err = d.response(&r)
	}
	if err == nil {
		d.ws()
		if d.i != len(d.b) {
			err = d.errorf("data after the object")
		}
	}
	if err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrMarshallingError, err)
	}
	return r, nil
}

// The helpers below decode into a field that may hold a value already (a
// repeated key): a null leaves it as it is, as encoding/json does.

func (d *reqDecoder) intInto(p *int64) error {
	if d.peek() == 'n' {
		return d.null()
	}
	v, err := d.int()
	if err == nil {
		*p = v
	}
	return err
}

func (d *reqDecoder) int32Into(p *int32) error {
	var v int64
	if d.peek() == 'n' {
		return d.null()
	}
	if err := d.intInto(&v); err != nil {
		return err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return d.errorf("number %d overflows int32", v)
	}
	*p = int32(v)
	return nil
}

func (d *reqDecoder) uintInto(p *uint64) error {
	if d.peek() == 'n' {
		return d.null()
	}
	start := d.i
	if err := d.number(); err != nil {
		return err
	}
	v, err := strconv.ParseUint(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return d.errorf("number %s is not an unsigned integer in range", d.b[start:d.i])
	}
	*p = v
	return nil
}

func (d *reqDecoder) stringInto(p *string) error {
	if d.peek() == 'n' {
		return d.null()
	}
	s, err := d.string()
	if err == nil {
		*p = s
	}
	return err
}

// sessionIDInto decodes a session id; null sets 0, since SessionID's
// UnmarshalJSON (which encoding/json calls for null too) does.
func (d *reqDecoder) sessionIDInto(p *SessionID) error {
	if d.peek() == 'n' {
		*p = 0
		return d.null()
	}
	return d.sessionID(p)
}

// elements calls elem for each element of an array: with the index and
// whether null is the whole value (then elem is not called).
func (d *reqDecoder) elements(elem func(i int) error) (n int, null bool, err error) {
	if d.peek() == 'n' {
		return 0, true, d.null()
	}
	if err := d.expect('['); err != nil {
		return 0, false, err
	}
	if d.peek() == ']' {
		d.i++
		return 0, false, nil
	}
	for {
		if err := elem(n); err != nil {
			return n, false, err
		}
		n++
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return n, false, nil
		default:
			return n, false, d.errorf("expected ',' or ']': %w", errSyntax)
		}
	}
}

// sliceInto decodes an array into *s as encoding/json does: element i goes
// into the existing element i when there is one (a repeated key merges),
// the slice then ends at the array's length; [] leaves an empty non-nil
// slice; null leaves nil.
func sliceInto[T any](d *reqDecoder, s *[]T, decode func(*T) error) error {
	cur := *s
	n, null, err := d.elements(func(i int) error {
		if i >= len(cur) {
			if i < cap(cur) {
				cur = cur[:i+1] // what a longer earlier value left there
			} else {
				var zero T
				cur = append(cur, zero)
			}
		}
		return decode(&cur[i])
	})
	switch {
	case null:
		*s = nil
	case err == nil && n == 0 && cur == nil:
		*s = []T{}
	case err == nil:
		*s = cur[:n]
	}
	return err
}

func (d *reqDecoder) response(r *Response) error {
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
			err = d.intInto(&r.Xid)
		case "zxid":
			err = d.intInto(&r.Zxid)
		case "err":
			err = d.stringInto((*string)(&r.Err))
		case "msg":
			err = d.stringInto(&r.Msg)
		case "session_id":
			err = d.sessionIDInto(&r.SessionID)
		case "password":
			err = d.stringInto(&r.Password)
		case "timeout_ms":
			err = d.intInto(&r.TimeoutMs)
		case "server_id":
			err = d.uintInto(&r.ServerID)
		case "max_data_bytes":
			v := int64(r.MaxDataBytes)
			if err = d.intInto(&v); err == nil {
				r.MaxDataBytes = int(v)
			}
		case "path":
			err = d.stringInto(&r.Path)
		case "data":
			err = d.base64Into(&r.Data)
		case "stat":
			err = d.statPtr(&r.Stat)
		case "children":
			err = sliceInto(d, &r.Children, d.stringInto)
		case "acl":
			err = sliceInto(d, &r.ACL, d.aclInto)
		case "results":
			err = sliceInto(d, &r.Results, d.resultInto)
		case "type":
			err = d.stringInto(&r.Type)
		case "event":
			err = d.stringInto((*string)(&r.Event))
		case "state":
			err = d.stringInto(&r.State)
		case "gone":
			var v bool
			if v, err = d.bool(); err == nil {
				r.Gone = v
			}
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

// base64Into decodes data as encoding/json decodes []byte behind a
// pointer: standard base64 (line breaks ignored), "" an empty non-nil
// slice, null nil.
func (d *reqDecoder) base64Into(p *[]byte) error {
	if d.peek() == 'n' {
		*p = nil
		return d.null()
	}
	raw, escaped, err := d.rawString()
	if err != nil {
		return err
	}
	if escaped {
		d2 := reqDecoder{b: d.b[d.i-len(raw)-2 : d.i]}
		if raw, err = d2.stringBytes(nil); err != nil {
			return err
		}
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(b, raw)
	if err != nil {
		return d.errorf("data is not base64: %v", err)
	}
	*p = b[:n]
	return nil
}

// statPtr decodes a stat behind a pointer: null sets nil, an object
// decodes into the stat already there, if any.
func (d *reqDecoder) statPtr(p **Stat) error {
	if d.peek() == 'n' {
		*p = nil
		return d.null()
	}
	if *p == nil {
		*p = new(Stat)
	}
	return d.statInto(*p)
}

func (d *reqDecoder) statInto(s *Stat) error {
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
		case "czxid":
			err = d.intInto(&s.Czxid)
		case "mzxid":
			err = d.intInto(&s.Mzxid)
		case "pzxid":
			err = d.intInto(&s.Pzxid)
		case "ctime":
			err = d.intInto(&s.Ctime)
		case "mtime":
			err = d.intInto(&s.Mtime)
		case "version":
			err = d.int32Into(&s.Version)
		case "cversion":
			err = d.int32Into(&s.Cversion)
		case "aversion":
			err = d.int32Into(&s.Aversion)
		case "ephemeral_owner":
			err = d.sessionIDInto(&s.EphemeralOwner)
		case "data_length":
			err = d.int32Into(&s.DataLength)
		case "num_children":
			err = d.int32Into(&s.NumChildren)
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

// objectInto decodes an object element; a null element leaves it as it is.
func (d *reqDecoder) objectInto(field func(key []byte) error) error {
	if d.peek() == 'n' {
		return d.null()
	}
	return d.object(field)
}

func (d *reqDecoder) aclInto(a *ACL) error {
	return d.objectInto(func(key []byte) error {
		switch string(key) {
		case "perms":
			// Perms' UnmarshalJSON reads null as "": no permissions.
			var s string
			if d.peek() == 'n' {
				if err := d.null(); err != nil {
					return err
				}
			} else {
				b, err := d.stringBytes(nil)
				if err != nil {
					return err
				}
				s = string(b)
			}
			p, err := ParsePerms(s)
			if err != nil {
				return err
			}
			a.Perms = p
			return nil
		case "scheme":
			return d.stringInto(&a.Scheme)
		case "id":
			return d.stringInto(&a.ID)
		}
		return d.skip()
	})
}

func (d *reqDecoder) resultInto(r *Result) error {
	return d.objectInto(func(key []byte) error {
		switch string(key) {
		case "op":
			return d.stringInto(&r.Op)
		case "err":
			return d.stringInto((*string)(&r.Err))
		case "path":
			return d.stringInto(&r.Path)
		case "stat":
			return d.statPtr(&r.Stat)
		}
		return d.skip()
	})
}
