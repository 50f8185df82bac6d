package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/coord-dev/coord/client"
)

// The JSON shapes of -o json, one object per line. They are part of
// coordctl's interface (docs/coordctl.md): fields may be added, never
// renamed or removed. Stat and ACL entries use PROTOCOL.md's field names.

// lsJSON is ls's output.
type lsJSON struct {
	Path     string       `json:"path"`
	Children []string     `json:"children"`
	Stat     *client.Stat `json:"stat"`
}

// lsRecJSON is ls -R's output: the path and every node below it,
// depth first, in sorted order.
type lsRecJSON struct {
	Path  string       `json:"path"`
	Paths []string     `json:"paths"`
	Stat  *client.Stat `json:"stat"`
}

// getJSON is get's output: data always in base64; text when the data is
// valid UTF-8, else null.
type getJSON struct {
	Path string       `json:"path"`
	Data string       `json:"data"`
	Text *string      `json:"text"`
	Stat *client.Stat `json:"stat"`
}

// nodeJSON is the output of create, set, stat and setacl.
type nodeJSON struct {
	Path string       `json:"path"`
	Stat *client.Stat `json:"stat"`
}

// deleteJSON is the output of delete and deleteall.
type deleteJSON struct {
	Path    string   `json:"path"`
	Deleted []string `json:"deleted"`
}

// pathJSON is sync's output.
type pathJSON struct {
	Path string `json:"path"`
}

// aclJSON is getacl's output.
type aclJSON struct {
	Path string       `json:"path"`
	ACL  []client.ACL `json:"acl"`
	Stat *client.Stat `json:"stat"`
}

// eventJSON is one watch event (watch, get -w, ls -w).
type eventJSON struct {
	Event string `json:"event"`
	Path  string `json:"path"`
	Zxid  int64  `json:"zxid"`
}

// lockJSON is printed by lock without a command, once the lock is held.
type lockJSON struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Token int64  `json:"token"`
}

// leaderJSON is one leadership change printed by elect.
type leaderJSON struct {
	Name   string  `json:"name"`
	Leader string  `json:"leader"` // the leader's node; "" when there is none
	Data   string  `json:"data"`
	Text   *string `json:"text"`
	Self   bool    `json:"self"`
	Token  int64   `json:"token"` // the leader node's czxid
}

// dataJSON returns the base64 and (when valid UTF-8) text forms of data.
func dataJSON(data []byte) (string, *string) {
	b := base64.StdEncoding.EncodeToString(data)
	if !utf8.Valid(data) {
		return b, nil
	}
	s := string(data)
	return b, &s
}

// writeStat writes a Stat as "name = value" lines.
func writeStat(w io.Writer, st *client.Stat) {
	if st == nil {
		return
	}
	ms := func(t int64) string {
		return fmt.Sprintf("%d (%s)", t, time.UnixMilli(t).UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	fmt.Fprintf(w, "czxid = %d\n", st.Czxid)
	fmt.Fprintf(w, "mzxid = %d\n", st.Mzxid)
	fmt.Fprintf(w, "pzxid = %d\n", st.Pzxid)
	fmt.Fprintf(w, "ctime = %s\n", ms(st.Ctime))
	fmt.Fprintf(w, "mtime = %s\n", ms(st.Mtime))
	fmt.Fprintf(w, "version = %d\n", st.Version)
	fmt.Fprintf(w, "cversion = %d\n", st.Cversion)
	fmt.Fprintf(w, "aversion = %d\n", st.Aversion)
	fmt.Fprintf(w, "ephemeral_owner = %s\n", st.EphemeralOwner)
	fmt.Fprintf(w, "data_length = %d\n", st.DataLength)
	fmt.Fprintf(w, "num_children = %d\n", st.NumChildren)
}

// eventText is an event's text line.
func eventText(ev client.Event) string {
	return fmt.Sprintf("%s %s zxid=%d", ev.Type, ev.Path, ev.Zxid)
}

// formatACL writes an ACL entry as scheme:id:perms, the form setacl reads.
func formatACL(a client.ACL) string {
	return fmt.Sprintf("%s:%s:%s", a.Scheme, a.ID, a.Perms)
}
