package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets of the decoders that face the network and of the path
// validator. Seed corpora (and any crasher found) live in
// testdata/fuzz/<target>/; `make fuzz` runs each target for a while.

// FuzzDecodeRequest: any frame decodes or fails with the codes PROTOCOL.md
// allows for a bad frame, never panics; what decodes re-encodes to a frame
// that decodes to the same request (after one round trip, the encoding is
// a fixed point).
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"xid":1,"op":"connect","timeout_ms":10000}`,
		`{"xid":1,"op":"connect","timeout_ms":10000,"session_id":"00000000000003e9","password":"cGFzc3dvcmQ=","last_zxid":57}`,
		`{"xid":2,"op":"create","path":"/a","data":"aGk=","mode":"ephemeral_sequential","acl":[{"perms":"cdrwa","scheme":"world","id":"anyone"}]}`,
		`{"xid":3,"op":"set","path":"/a","data":"","version":3}`,
		`{"xid":4,"op":"multi","ops":[{"op":"check","path":"/a","version":1},{"op":"delete","path":"/a"}]}`,
		`{"xid":5,"op":"set_watches","last_zxid":9,"data":["/a"],"exist":["/b"],"children":["/"],"persistent":["/p"],"persistent_recursive":["/r"]}`,
		`{"xid":6,"op":"children","path":"/","watch":true,"limit":10,"after":"x","local":true}`,
		`{"xid":7,"op":"create","path":"/t","mode":"persistent_ttl","ttl_ms":1000}`,
		`{"xid":8,"op":"auth","scheme":"digest","credential":"u:p"}`,
		`{"xid":9}`, `{"op":"ping"}`, `{"xid":1,"op":"get","data":5}`, `{"xid":1,"op":"set_watches","data":"x"}`,
		`{"xid":1,"op":"create","acl":[{"perms":"q"}]}`, `{"xid":1,"op":"connect","session_id":"XYZ"}`,
		`[]`, `null`, ``, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		r1, err := DecodeRequest(frame)
		if err != nil {
			switch code := CodeOf(err); code {
			case MarshallingError, BadArguments, InvalidACL:
			default:
				t.Fatalf("DecodeRequest(%q): error %v has code %s", frame, err, code)
			}
			return
		}
		b1, err := r1.MarshalJSON()
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", r1, err)
		}
		r2, err := DecodeRequest(b1)
		if err != nil {
			t.Fatalf("the re-encoding %q of %q does not decode: %v", b1, frame, err)
		}
		if r2.Xid != r1.Xid || r2.Op != r1.Op || r2.Path != r1.Path || !bytes.Equal(r2.Data, r1.Data) {
			t.Fatalf("round trip of %q: %+v became %+v", frame, r1, r2)
		}
		b2, err := r2.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b1, b2)
		}
		r3, err := DecodeRequest(b2)
		if err != nil || !reflect.DeepEqual(r2, r3) {
			t.Fatalf("second round trip of %q: %+v became %+v (%v)", frame, r2, r3, err)
		}
	})
}

// FuzzDecodeResponse: any server frame decodes or fails with
// MarshallingError; what decodes is re-encoded by the hand-written
// AppendJSON into valid JSON that decodes to the same frame.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"xid":1,"zxid":60,"err":"","session_id":"00000000000003e9","password":"cGFzcw==","timeout_ms":10000,"server_id":2,"max_data_bytes":1048576}`,
		`{"xid":2,"zxid":61,"err":"","path":"/a","stat":{"czxid":5,"mzxid":9,"pzxid":12,"ctime":1,"mtime":2,"version":2,"cversion":3,"aversion":0,"ephemeral_owner":"0000000000000000","data_length":11,"num_children":3}}`,
		`{"xid":3,"zxid":62,"err":"NoNode","msg":"get /x: node does not exist"}`,
		`{"xid":4,"zxid":63,"err":"","data":"aGVsbG8=","children":["a","b"],"acl":[{"perms":"rw","scheme":"digest","id":"u:x"}]}`,
		`{"xid":5,"zxid":64,"err":"BadVersion","results":[{"op":"check","err":"BadVersion"},{"op":"set","err":"RuntimeInconsistency"}]}`,
		`{"xid":-1,"type":"watch","event":"NodeDataChanged","path":"/app/config","zxid":61}`,
		`{"xid":-2,"type":"session","state":"expired","zxid":70}`,
		`{"xid":1,"zxid":1,"err":"","msg":"\u2028\u0001\"\\"}`, `{"xid":"1"}`, `{}`, `[`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		r1, err := DecodeResponse(frame)
		if err != nil {
			if code := CodeOf(err); code != MarshallingError && code != BadArguments && code != InvalidACL {
				t.Fatalf("DecodeResponse(%q): error %v has code %s", frame, err, code)
			}
			return
		}
		b1 := r1.AppendJSON(nil)
		if !json.Valid(b1) {
			t.Fatalf("AppendJSON of %q is not JSON: %q", frame, b1)
		}
		r2, err := DecodeResponse(b1)
		if err != nil {
			t.Fatalf("AppendJSON of %q does not decode: %q: %v", frame, b1, err)
		}
		b2 := r2.AppendJSON(nil)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b1, b2)
		}
		if r2.Xid != r1.Xid || r2.Zxid != r1.Zxid || r2.Path != r1.Path && utf8.ValidString(r1.Path) {
			t.Fatalf("round trip of %q: %+v became %+v", frame, r1, r2)
		}
	})
}

// FuzzValidatePath: ValidatePath agrees with PROTOCOL.md's rules written
// out plainly, never panics, and what it accepts behaves under Parent,
// Base, Join, Depth and IsAncestor.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/b/c", "", "a", "/a/", "//", "/a//b", "/.", "/..", "/a/./b", "/a/../b",
		"/a\x00b", "/a\x7fb", "/\u0085", "/\ud7ff", "/\uf900", "/\ufff0", "/é", "/" + strings.Repeat("x", 1023), "/" + strings.Repeat("x", 1024),
		"/\xff", "/...", "/a.b", "/-", "/a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p)
		if want := specValid(p); (err == nil) != want {
			t.Fatalf("ValidatePath(%q) = %v, the rules say valid=%v", p, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrBadPath) || !errors.Is(err, ErrBadArguments) {
				t.Fatalf("ValidatePath(%q): %v matches neither ErrBadPath nor ErrBadArguments", p, err)
			}
			return
		}
		if p == "/" {
			if Parent(p) != "" || Base(p) != "" || Depth(p) != 0 {
				t.Fatalf("root: parent %q base %q depth %d", Parent(p), Base(p), Depth(p))
			}
			return
		}
		parent, base := Parent(p), Base(p)
		if ValidatePath(parent) != nil || ValidateName(base) != nil {
			t.Fatalf("%q: parent %q or base %q invalid", p, parent, base)
		}
		if Join(parent, base) != p || !IsAncestor(parent, p) || IsAncestor(p, parent) || IsAncestor(p, p) {
			t.Fatalf("%q: parent %q, base %q do not compose", p, parent, base)
		}
		if Depth(p) != Depth(parent)+1 || Depth(p) != len(strings.Split(p, "/"))-1 {
			t.Fatalf("%q: depth %d, parent's %d", p, Depth(p), Depth(parent))
		}
	})
}

// specValid is PROTOCOL.md's path rules, written independently of
// ValidatePath: absolute, '/'-separated, no empty, "." or ".." component,
// no trailing '/' except the root, no NUL or control characters, at most
// MaxPathBytes bytes, valid UTF-8 (the C1 controls U+0080..U+009F are
// control characters too).
func specValid(p string) bool {
	if p == "" || len(p) > MaxPathBytes || p[0] != '/' || !utf8.ValidString(p) {
		return false
	}
	if p == "/" {
		return true
	}
	for _, comp := range strings.Split(p[1:], "/") {
		if comp == "" || comp == "." || comp == ".." {
			return false
		}
		for _, r := range comp {
			switch {
			case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
				return false
			}
		}
	}
	return true
}

// FuzzDecodeRequestMatchesReflect holds the hand-written request decoder
// to encoding/json's answers: for every frame both accept, the requests are
// identical, and a frame one rejects the other rejects too — except where
// the hand-written one is deliberately stricter or more helpful (keys match
// case-sensitively; a malformed session_id answers BadArguments).
func FuzzDecodeRequestMatchesReflect(f *testing.F) {
	for _, s := range []string{
		`{"xid":1,"op":"connect","timeout_ms":10000,"session_id":"00000000000003e9","password":"cA==","last_zxid":57}`,
		`{"xid":2,"op":"create","path":"/a\u00e9\ud83d\ude00","data":"aGk=","mode":"ephemeral","acl":[{"perms":"rw","scheme":"digest","id":"u:x"}],"ttl_ms":5}`,
		` { "xid" : 3 , "op" : "multi" , "ops" : [ {"op":"check","path":"/a","version":-1} , {"op":"set","path":"/b","data":null} ] } `,
		`{"xid":4,"op":"set_watches","data":["/a","/b"],"exist":[],"children":null,"unknown":{"x":[1,2,{"y":null}]}}`,
		`{"xid":5,"op":"get","path":"/x","watch":true,"local":false,"limit":0,"after":"\\\"\/\b\f\n\r\t"}`,
		`{"xid":6,"op":"x","version":2147483648}`, `{"xid":7,"op":"x","version":-2147483648}`,
		`{"xid":8.5,"op":"x"}`, `{"xid":1e3,"op":"x"}`, `{"xid":"1","op":"x"}`, `{"xid":null,"op":"x"}`,
		`{"xid":9,"op":"x"} x`, `{"xid":9,"op":"x",}`, `{"xid":10,"op":"x","data":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		// Documented differences: keys match case-sensitively (encoding/json
		// folds case, ſ and K included), and a malformed session id or perms
		// answers BadArguments or InvalidACL.
		if bytes.ContainsFunc(frame, func(r rune) bool { return r >= 'A' && r <= 'Z' || r == 0x17f || r == 0x212a }) ||
			bytes.Contains(frame, []byte("session_id")) || bytes.Contains(frame, []byte("perms")) {
			return
		}
		fast, ferr := DecodeRequest(frame)
		slow, serr := decodeRequestReflect(frame)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("%q: hand-written says %v, encoding/json says %v", frame, ferr, serr)
		}
		if ferr != nil {
			if CodeOf(ferr) != CodeOf(serr) {
				t.Fatalf("%q: codes %s vs %s (%v / %v)", frame, CodeOf(ferr), CodeOf(serr), ferr, serr)
			}
			return
		}
		if !reflect.DeepEqual(normalize(fast), normalize(slow)) {
			t.Fatalf("%q:\nhand-written %+v\nencoding/json %+v", frame, fast, slow)
		}
	})
}

// normalize makes empty and nil slices compare equal.
func normalize(r Request) Request {
	if len(r.Data) == 0 {
		r.Data = nil
	}
	if len(r.ACL) == 0 {
		r.ACL = nil
	}
	for _, p := range []*[]string{&r.DataWatches, &r.ExistWatches, &r.ChildWatches, &r.PersistentWatches, &r.RecursiveWatches} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	if len(r.Ops) == 0 {
		r.Ops = nil
	}
	for i := range r.Ops {
		r.Ops[i] = normalize(r.Ops[i])
	}
	return r
}

// FuzzDecodeResponseMatchesReflect holds the hand-written response decoder
// to encoding/json's answers: for every frame both accept, the responses
// are identical, and a frame one rejects the other rejects too. The one
// documented difference: keys match case-sensitively (encoding/json folds
// case, ſ and K included).
func FuzzDecodeResponseMatchesReflect(f *testing.F) {
	for _, s := range []string{
		`{"xid":1,"zxid":60,"err":"","session_id":"00000000000003e9","password":"cGFzcw==","timeout_ms":10000,"server_id":2,"max_data_bytes":1048576}`,
		`{"xid":2,"zxid":61,"err":"","path":"/a","stat":{"czxid":5,"mzxid":9,"pzxid":12,"ctime":1,"mtime":2,"version":2,"cversion":3,"aversion":0,"ephemeral_owner":"0000000000000000","data_length":11,"num_children":3}}`,
		`{"xid":3,"zxid":62,"err":"NoNode","msg":"get /x: node does not exist"}`,
		`{"xid":4,"zxid":63,"err":"","data":"aGVsbG8=","children":["a","b"],"acl":[{"perms":"rw","scheme":"digest","id":"u:x"}]}`,
		`{"xid":5,"zxid":64,"err":"BadVersion","results":[{"op":"check","err":"BadVersion"},{"op":"set","err":"RuntimeInconsistency","stat":{"version":1}}]}`,
		`{"xid":-1,"type":"watch","event":"NodeDataChanged","path":"/app/config","zxid":61}`,
		`{"xid":-2,"type":"session","state":"expired","zxid":70}`,
		`{"xid":6,"data":"","children":[],"acl":null,"results":[null,{"op":"x"}],"stat":null}`,
		`{"xid":7,"stat":{"czxid":1},"stat":{"mzxid":2},"results":[{"op":"a","path":"/p"},{"op":"b"}],"results":[{"err":"X"}],"results":[{},{}]}`,
		`{"xid":8,"xid":null,"msg":"a","msg":null,"session_id":"00000000000003e9","session_id":null,"data":"aGk=","data":null}`,
		`{"xid":9,"stat":{"version":2147483648}}`, `{"server_id":-1}`, `{"xid":1.0}`, `{"xid":1e2}`, `{"data":"aGk"}`,
		`{"data":"aG\nk="}`, `{"data":"a\u0047k="}`, `{"acl":[{"perms":null},{"perms":"x"}]}`, `{"unknown":{"a":[1,{"b":null}]}}`,
		` null `, `[]`, `{}`, `{"xid":1} x`, `{"xid":1,}`, `{"msg":"\ud800\u00e9\xff"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if bytes.ContainsFunc(frame, func(r rune) bool { return r >= 'A' && r <= 'Z' || r == 0x17f || r == 0x212a }) {
			return
		}
		fast, ferr := DecodeResponse(frame)
		slow, serr := decodeResponseReflect(frame)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("%q: hand-written says %v, encoding/json says %v", frame, ferr, serr)
		}
		if ferr != nil {
			if CodeOf(ferr) != MarshallingError {
				t.Fatalf("%q: code %s, want MarshallingError (%v)", frame, CodeOf(ferr), ferr)
			}
			return
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nhand-written  %#v\nencoding/json %#v", frame, fast, slow)
		}
	})
}
