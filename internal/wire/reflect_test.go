package wire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// The encoding/json implementations of the frame codec: the references
// the hand-written encoders and decoders are tested and fuzzed against.

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
	WaitGone          string          `json:"wait_gone,omitempty"`
	WaitMs            int64           `json:"wait_ms,omitempty"`
	Ops               []requestJSON   `json:"ops,omitempty"`
	Type              string          `json:"type,omitempty"`
	Scheme            string          `json:"scheme,omitempty"`
	Credential        string          `json:"credential,omitempty"`
	Exist             []string        `json:"exist,omitempty"`
	Children          []string        `json:"children,omitempty"`
	Persistent        []string        `json:"persistent,omitempty"`
	PersistentRecurse []string        `json:"persistent_recursive,omitempty"`
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
		Limit: r.Limit, After: r.After, WaitGone: r.WaitGone, WaitMs: r.WaitMs, Type: r.Type, Scheme: r.Scheme, Credential: r.Credential,
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
	r.WaitGone, r.WaitMs = j.WaitGone, j.WaitMs
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
	Gone         bool      `json:"gone,omitempty"`
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
		Gone: j.Gone,
	}
	if j.Data != nil {
		r.Data = *j.Data
	}
	return r, nil
}
