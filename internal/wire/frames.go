package wire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// The ops of PROTOCOL.md.
const (
	OpConnect       = "connect"
	OpPing          = "ping"
	OpCreate        = "create"
	OpDelete        = "delete"
	OpExists        = "exists"
	OpGet           = "get"
	OpSet           = "set"
	OpChildren      = "children"
	OpGetACL        = "get_acl"
	OpSetACL        = "set_acl"
	OpSync          = "sync"
	OpMulti         = "multi"
	OpCheck         = "check"
	OpAddWatch      = "add_watch"
	OpRemoveWatches = "remove_watches"
	OpSetWatches    = "set_watches"
	OpAuth          = "auth"
	OpClose         = "close"
)

// Reserved xids of server-pushed frames.
const (
	XidWatch   int64 = -1
	XidSession int64 = -2
)

// DefaultMaxDataBytes is the default largest data a node may hold.
const DefaultMaxDataBytes = 1 << 20

// Request is one client frame. Which fields matter depends on Op; absent
// fields take PROTOCOL.md's defaults (Version -1, Mode persistent, ACL open).
type Request struct {
	Xid int64
	Op  string

	// connect
	TimeoutMs int64
	SessionID SessionID
	Password  string
	LastZxid  int64

	Path    string
	Data    []byte
	Mode    string
	TTLMs   int64
	ACL     []ACL // nil: absent
	Version int32
	Watch   bool
	Local   bool
	Limit   int
	After   string
	Ops     []Request // multi
	Type    string    // remove_watches

	// auth
	Scheme     string
	Credential string

	// set_watches
	DataWatches       []string
	ExistWatches      []string
	ChildWatches      []string
	PersistentWatches []string
	RecursiveWatches  []string

	rawData []byte // the undecoded "data" value while decoding
	hasOp   bool   // a multi op named its op, while decoding
}

// requestJSON is Request's JSON shape. The key "data" carries bytes for most
// ops but a list of paths for set_watches, so it is decoded late.
type requestJSON struct {
	Xid               *int64          `json:"xid,omitempty"`
	Op                *string         `json:"op,omitempty"`
	TimeoutMs         int64           `json:"timeout_ms,omitempty"`
	SessionID         SessionID       `json:"session_id,omitempty"`
	Password          string          `json:"password,omitempty"`
	LastZxid          int64           `json:"last_zxid,omitempty"`
	Path              string          `json:"path,omitempty"`
	Data              json.RawMessage `json:"data,omitempty"`
	Mode              string          `json:"mode,omitempty"`
	TTLMs             int64           `json:"ttl_ms,omitempty"`
	ACL               []ACL           `json:"acl,omitempty"`
	Version           *int32          `json:"version,omitempty"`
	Watch             bool            `json:"watch,omitempty"`
	Local             bool            `json:"local,omitempty"`
	Limit             int             `json:"limit,omitempty"`
	After             string          `json:"after,omitempty"`
	Ops               []requestJSON   `json:"ops,omitempty"`
	Type              string          `json:"type,omitempty"`
	Scheme            string          `json:"scheme,omitempty"`
	Credential        string          `json:"credential,omitempty"`
	Exist             []string        `json:"exist,omitempty"`
	Children          []string        `json:"children,omitempty"`
	Persistent        []string        `json:"persistent,omitempty"`
	PersistentRecurse []string        `json:"persistent_recursive,omitempty"`
}

// MarshalJSON encodes the request (AppendJSON); Version is sent only for
// ops that use it.
func (r *Request) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(nil), nil
}

// marshalRequestReflect is MarshalJSON done with encoding/json: the
// reference AppendJSON is tested against.
func marshalRequestReflect(r *Request) ([]byte, error) {
	j, err := r.toJSON(true)
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

func (r *Request) toJSON(top bool) (*requestJSON, error) {
	j := &requestJSON{
		TimeoutMs: r.TimeoutMs, SessionID: r.SessionID, Password: r.Password, LastZxid: r.LastZxid,
		Path: r.Path, Mode: r.Mode, TTLMs: r.TTLMs, ACL: r.ACL, Watch: r.Watch, Local: r.Local,
		Limit: r.Limit, After: r.After, Type: r.Type, Scheme: r.Scheme, Credential: r.Credential,
		Exist: r.ExistWatches, Children: r.ChildWatches, Persistent: r.PersistentWatches,
		PersistentRecurse: r.RecursiveWatches,
	}
	op := r.Op
	j.Op = &op
	if top {
		xid := r.Xid
		j.Xid = &xid
	}
	switch r.Op {
	case OpDelete, OpSet, OpSetACL, OpCheck:
		v := r.Version
		j.Version = &v
	}
	if r.Op == OpSetWatches {
		if r.DataWatches != nil {
			b, err := json.Marshal(r.DataWatches)
			if err != nil {
				return nil, err
			}
			j.Data = b
		}
	} else if len(r.Data) > 0 {
		j.Data = appendBase64String(nil, r.Data)
	}
	for i := range r.Ops {
		sub, err := r.Ops[i].toJSON(false)
		if err != nil {
			return nil, err
		}
		j.Ops = append(j.Ops, *sub)
	}
	return j, nil
}

// decodeRequestReflect is DecodeRequest done with encoding/json: the
// reference the hand-written decoder is fuzzed against.
func decodeRequestReflect(frame []byte) (Request, error) {
	var j requestJSON
	if err := json.Unmarshal(frame, &j); err != nil {
		// Try to recover the xid alone, so the error can carry it.
		var x struct {
			Xid int64 `json:"xid"`
		}
		_ = json.Unmarshal(frame, &x)
		return Request{Xid: x.Xid}, fmt.Errorf("%w: %v", ErrMarshallingError, err)
	}
	var r Request
	if j.Xid != nil {
		r.Xid = *j.Xid
	}
	if j.Xid == nil || j.Op == nil {
		return r, fmt.Errorf("%w: a request needs xid and op", ErrMarshallingError)
	}
	if err := j.fill(&r); err != nil {
		return r, err
	}
	return r, nil
}

func (j *requestJSON) fill(r *Request) error {
	if j.Op != nil {
		r.Op = *j.Op
	}
	r.TimeoutMs, r.SessionID, r.Password, r.LastZxid = j.TimeoutMs, j.SessionID, j.Password, j.LastZxid
	r.Path, r.Mode, r.TTLMs, r.ACL, r.Watch, r.Local = j.Path, j.Mode, j.TTLMs, j.ACL, j.Watch, j.Local
	r.Limit, r.After, r.Type, r.Scheme, r.Credential = j.Limit, j.After, j.Type, j.Scheme, j.Credential
	r.ExistWatches, r.ChildWatches, r.PersistentWatches, r.RecursiveWatches = j.Exist, j.Children, j.Persistent, j.PersistentRecurse
	r.Version = -1
	if j.Version != nil {
		r.Version = *j.Version
	}
	if len(j.Data) > 0 && string(j.Data) != "null" {
		if r.Op == OpSetWatches {
			if err := json.Unmarshal(j.Data, &r.DataWatches); err != nil {
				return fmt.Errorf("%w: set_watches data must be a list of paths: %v", ErrBadArguments, err)
			}
		} else {
			var s string
			if err := json.Unmarshal(j.Data, &s); err != nil {
				return fmt.Errorf("%w: data must be a base64 string: %v", ErrBadArguments, err)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return fmt.Errorf("%w: data is not standard base64: %v", ErrBadArguments, err)
			}
			r.Data = b
		}
	}
	if len(j.Ops) > 0 {
		r.Ops = make([]Request, len(j.Ops))
		for i := range j.Ops {
			if j.Ops[i].Op == nil {
				return fmt.Errorf("%w: multi op %d has no op", ErrBadArguments, i)
			}
			if err := j.Ops[i].fill(&r.Ops[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Result is one op's outcome inside a multi response.
type Result struct {
	Op   string `json:"op"`
	Err  Code   `json:"err"`
	Path string `json:"path,omitempty"`
	Stat *Stat  `json:"stat,omitempty"`
}

// Response is one server frame answering a request (Xid > 0), or, with a
// reserved Xid, a pushed frame. Data, Children and ACL are sent when non-nil.
type Response struct {
	Xid  int64
	Zxid int64
	Err  Code
	Msg  string

	// connect
	SessionID    SessionID
	Password     string
	TimeoutMs    int64
	ServerID     uint64
	MaxDataBytes int

	Path     string
	Data     []byte
	Stat     *Stat
	Children []string
	ACL      []ACL
	Results  []Result

	// pushed frames
	Type  string
	Event EventType
	State string
}

type responseJSON struct {
	Xid          int64     `json:"xid"`
	Zxid         int64     `json:"zxid"`
	Err          Code      `json:"err"`
	Msg          string    `json:"msg,omitempty"`
	SessionID    SessionID `json:"session_id,omitempty"`
	Password     string    `json:"password,omitempty"`
	TimeoutMs    int64     `json:"timeout_ms,omitempty"`
	ServerID     uint64    `json:"server_id,omitempty"`
	MaxDataBytes int       `json:"max_data_bytes,omitempty"`
	Path         string    `json:"path,omitempty"`
	Data         *[]byte   `json:"data,omitempty"`
	Stat         *Stat     `json:"stat,omitempty"`
	Children     []string  `json:"children"`
	ACL          []ACL     `json:"acl"`
	Results      []Result  `json:"results,omitempty"`
	Type         string    `json:"type,omitempty"`
	Event        EventType `json:"event,omitempty"`
	State        string    `json:"state,omitempty"`
}

// decodeResponseReflect is DecodeResponse done with encoding/json: the
// reference the hand-written decoder is fuzzed against.
func decodeResponseReflect(frame []byte) (Response, error) {
	var j responseJSON
	if err := json.Unmarshal(frame, &j); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrMarshallingError, err)
	}
	r := Response{
		Xid: j.Xid, Zxid: j.Zxid, Err: j.Err, Msg: j.Msg, SessionID: j.SessionID, Password: j.Password,
		TimeoutMs: j.TimeoutMs, ServerID: j.ServerID, MaxDataBytes: j.MaxDataBytes, Path: j.Path,
		Stat: j.Stat, Children: j.Children, ACL: j.ACL, Results: j.Results, Type: j.Type, Event: j.Event, State: j.State,
	}
	if j.Data != nil {
		r.Data = *j.Data
	}
	return r, nil
}

// MarshalJSON encodes the response (see AppendJSON).
func (r *Response) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }
