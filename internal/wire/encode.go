package wire

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the response's JSON form to b. It is hand-written
// because responses are the hottest output of the server; golden tests pin
// it to what encoding/json would accept.
func (r *Response) AppendJSON(b []byte) []byte {
	b = append(b, `{"xid":`...)
	b = strconv.AppendInt(b, r.Xid, 10)
	if r.Type != "" {
		// A pushed frame.
		b = append(b, `,"type":`...)
		b = appendString(b, r.Type)
		if r.Event != "" {
			b = append(b, `,"event":`...)
			b = appendString(b, string(r.Event))
		}
		if r.State != "" {
			b = append(b, `,"state":`...)
			b = appendString(b, r.State)
		}
		if r.Path != "" {
			b = append(b, `,"path":`...)
			b = appendString(b, r.Path)
		}
		b = append(b, `,"zxid":`...)
		b = strconv.AppendInt(b, r.Zxid, 10)
		return append(b, '}')
	}
	b = append(b, `,"zxid":`...)
	b = strconv.AppendInt(b, r.Zxid, 10)
	b = append(b, `,"err":`...)
	b = appendString(b, string(r.Err))
	if r.Msg != "" {
		b = append(b, `,"msg":`...)
		b = appendString(b, r.Msg)
	}
	if r.SessionID != 0 {
		b = append(b, `,"session_id":"`...)
		b = append(b, r.SessionID.String()...)
		b = append(b, '"')
	}
	if r.Password != "" {
		b = append(b, `,"password":`...)
		b = appendString(b, r.Password)
	}
	if r.TimeoutMs != 0 {
		b = append(b, `,"timeout_ms":`...)
		b = strconv.AppendInt(b, r.TimeoutMs, 10)
	}
	if r.ServerID != 0 {
		b = append(b, `,"server_id":`...)
		b = strconv.AppendUint(b, r.ServerID, 10)
	}
	if r.MaxDataBytes != 0 {
		b = append(b, `,"max_data_bytes":`...)
		b = strconv.AppendInt(b, int64(r.MaxDataBytes), 10)
	}
	if r.Path != "" {
		b = append(b, `,"path":`...)
		b = appendString(b, r.Path)
	}
	if r.Data != nil {
		b = append(b, `,"data":`...)
		b = appendBase64String(b, r.Data)
	}
	if r.Stat != nil {
		b = append(b, `,"stat":`...)
		b = r.Stat.AppendJSON(b)
	}
	if r.Children != nil {
		b = append(b, `,"children":[`...)
		for i, c := range r.Children {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	if r.ACL != nil {
		b = append(b, `,"acl":`...)
		b = AppendACL(b, r.ACL)
	}
	if r.Results != nil {
		b = append(b, `,"results":[`...)
		for i := range r.Results {
			if i > 0 {
				b = append(b, ',')
			}
			res := &r.Results[i]
			b = append(b, `{"op":`...)
			b = appendString(b, res.Op)
			b = append(b, `,"err":`...)
			b = appendString(b, string(res.Err))
			if res.Path != "" {
				b = append(b, `,"path":`...)
				b = appendString(b, res.Path)
			}
			if res.Stat != nil {
				b = append(b, `,"stat":`...)
				b = res.Stat.AppendJSON(b)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.Gone {
		b = append(b, `,"gone":true`...)
	}
	return append(b, '}')
}

// AppendJSON appends the stat's JSON form to b.
func (s *Stat) AppendJSON(b []byte) []byte {
	b = append(b, `{"czxid":`...)
	b = strconv.AppendInt(b, s.Czxid, 10)
	b = append(b, `,"mzxid":`...)
	b = strconv.AppendInt(b, s.Mzxid, 10)
	b = append(b, `,"pzxid":`...)
	b = strconv.AppendInt(b, s.Pzxid, 10)
	b = append(b, `,"ctime":`...)
	b = strconv.AppendInt(b, s.Ctime, 10)
	b = append(b, `,"mtime":`...)
	b = strconv.AppendInt(b, s.Mtime, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = append(b, `,"cversion":`...)
	b = strconv.AppendInt(b, int64(s.Cversion), 10)
	b = append(b, `,"aversion":`...)
	b = strconv.AppendInt(b, int64(s.Aversion), 10)
	b = append(b, `,"ephemeral_owner":"`...)
	b = append(b, s.EphemeralOwner.String()...)
	b = append(b, `","data_length":`...)
	b = strconv.AppendInt(b, int64(s.DataLength), 10)
	b = append(b, `,"num_children":`...)
	b = strconv.AppendInt(b, int64(s.NumChildren), 10)
	return append(b, '}')
}

// AppendACL appends an ACL list's JSON form to b.
func AppendACL(b []byte, acl []ACL) []byte {
	b = append(b, '[')
	for i, a := range acl {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"perms":"`...)
		b = append(b, a.Perms.String()...)
		b = append(b, `","scheme":`...)
		b = appendString(b, a.Scheme)
		b = append(b, `,"id":`...)
		b = appendString(b, a.ID)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendBase64String(b, data []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, data)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// (without HTML escaping); invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// WatchEvent builds the pushed frame of a watch event.
func WatchEvent(ev EventType, path string, zxid int64) Response {
	return Response{Xid: XidWatch, Type: "watch", Event: ev, Path: path, Zxid: zxid}
}

// SessionEvent builds the pushed frame of a session state change.
func SessionEvent(state string, zxid int64) Response {
	return Response{Xid: XidSession, Type: "session", State: state, Zxid: zxid}
}

// AppendJSON appends the request's JSON form to b: the fields encoding/json
// would write for it (MarshalJSON's shape, in its key order, the same
// omissions), without encoding/json's reflection and without its HTML
// escaping of <, > and &. The Go client encodes every request with it.
func (r *Request) AppendJSON(b []byte) []byte {
	return r.appendJSON(b, true)
}

func (r *Request) appendJSON(b []byte, top bool) []byte {
	b = append(b, '{')
	if top {
		b = append(b, `"xid":`...)
		b = strconv.AppendInt(b, r.Xid, 10)
		b = append(b, ',')
	}
	b = append(b, `"op":`...)
	b = appendString(b, r.Op)
	if r.TimeoutMs != 0 {
		b = append(b, `,"timeout_ms":`...)
		b = strconv.AppendInt(b, r.TimeoutMs, 10)
	}
	if r.SessionID != 0 {
		b = append(b, `,"session_id":"`...)
		b = append(b, r.SessionID.String()...)
		b = append(b, '"')
	}
	if r.Password != "" {
		b = append(b, `,"password":`...)
		b = appendString(b, r.Password)
	}
	if r.LastZxid != 0 {
		b = append(b, `,"last_zxid":`...)
		b = strconv.AppendInt(b, r.LastZxid, 10)
	}
	if r.Path != "" {
		b = append(b, `,"path":`...)
		b = appendString(b, r.Path)
	}
	if r.Op == OpSetWatches {
		if r.DataWatches != nil {
			b = append(b, `,"data":`...)
			b = appendStrings(b, r.DataWatches)
		}
	} else if len(r.Data) > 0 {
		b = append(b, `,"data":`...)
		b = appendBase64String(b, r.Data)
	}
	if r.Mode != "" {
		b = append(b, `,"mode":`...)
		b = appendString(b, r.Mode)
	}
	if r.TTLMs != 0 {
		b = append(b, `,"ttl_ms":`...)
		b = strconv.AppendInt(b, r.TTLMs, 10)
	}
	if len(r.ACL) > 0 {
		b = append(b, `,"acl":`...)
		b = AppendACL(b, r.ACL)
	}
	switch r.Op {
	case OpDelete, OpSet, OpSetACL, OpCheck:
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(r.Version), 10)
	}
	if r.Watch {
		b = append(b, `,"watch":true`...)
	}
	if r.Local {
		b = append(b, `,"local":true`...)
	}
	if r.Limit != 0 {
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, int64(r.Limit), 10)
	}
	if r.After != "" {
		b = append(b, `,"after":`...)
		b = appendString(b, r.After)
	}
	if r.WaitGone != "" {
		b = append(b, `,"wait_gone":`...)
		b = appendString(b, r.WaitGone)
	}
	if r.WaitMs != 0 {
		b = append(b, `,"wait_ms":`...)
		b = strconv.AppendInt(b, r.WaitMs, 10)
	}
	if len(r.Ops) > 0 {
		b = append(b, `,"ops":[`...)
		for i := range r.Ops {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Ops[i].appendJSON(b, false)
		}
		b = append(b, ']')
	}
	for _, f := range []struct {
		key string
		val string
	}{{`,"type":`, r.Type}, {`,"scheme":`, r.Scheme}, {`,"credential":`, r.Credential}} {
		if f.val != "" {
			b = append(b, f.key...)
			b = appendString(b, f.val)
		}
	}
	for _, f := range []struct {
		key  string
		list []string
	}{{`,"exist":`, r.ExistWatches}, {`,"children":`, r.ChildWatches}, {`,"persistent":`, r.PersistentWatches},
		{`,"persistent_recursive":`, r.RecursiveWatches}} {
		if len(f.list) > 0 {
			b = append(b, f.key...)
			b = appendStrings(b, f.list)
		}
	}
	return append(b, '}')
}

// appendStrings appends a list of strings as a JSON array; nil as [].
func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}
