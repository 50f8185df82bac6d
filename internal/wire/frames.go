package wire

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

	// WaitGone makes a read wait until no node exists at this path (or
	// WaitMs, capped by the server, has passed), then answers it out of
	// request order. An extension: docs/protocol.md §13.1.
	WaitGone string
	WaitMs   int64

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

// MarshalJSON encodes the request (AppendJSON); Version is sent only for
// ops that use it.
func (r *Request) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(nil), nil
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
	Gone     bool // a read with WaitGone: the node it waited for is gone

	// pushed frames
	Type  string
	Event EventType
	State string
}

// MarshalJSON encodes the response (see AppendJSON).
func (r *Response) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }
