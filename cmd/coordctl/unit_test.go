package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    []string
		partial bool
		err     bool
	}{
		{"", nil, false, false},
		{"  ls   /a  ", []string{"ls", "/a"}, false, false},
		{"ls /a", []string{"ls", "/a"}, true, false},
		{`set /a 'two words'`, []string{"set", "/a", "two words"}, true, false},
		{`set /a "say \"hi\" \\ \n"`, []string{"set", "/a", `say "hi" \ \n`}, true, false},
		{`set /a it\'s`, []string{"set", "/a", "it's"}, true, false},
		{`set /a ''`, []string{"set", "/a", ""}, true, false},
		{"ls # a comment", []string{"ls"}, false, false},
		{"set /a b#c", []string{"set", "/a", "b#c"}, true, false},
		{"get 'open", []string{"get", "open"}, true, true},
		{`get a\`, []string{"get", "a"}, true, true},
	} {
		toks, partial, err := tokenize(tc.line)
		var words []string
		for _, tk := range toks {
			words = append(words, tk.text)
		}
		if !reflect.DeepEqual(words, tc.want) || partial != tc.partial || (err != nil) != tc.err {
			t.Errorf("tokenize(%q) = %q, %v, %v; want %q, %v, err %v", tc.line, words, partial, err, tc.want, tc.partial, tc.err)
		}
	}
}

func TestReorderArgs(t *testing.T) {
	x := &ctl{cwd: "/"}
	app := x.newApp()
	for _, tc := range []struct{ in, want string }{
		{"ls /a", "ls -- /a"},
		{"ls /a -R -s", "ls -R -s -- /a"},
		{"ls /a -Rs", "ls -Rs -- /a"},
		{"get /a -o json", "-o json get -- /a"},
		{"--servers h:1 get /a --output=json", "--servers h:1 --output=json get -- /a"},
		{"set /a -5 -v 3", "set -v 3 -- /a -5"},
		{"set /a -", "set -- /a -"},
		{"set /a -- -v", "set -- /a -v"},
		{"get -x /a", "get -x -- /a"},
		{"create /q/ -s -t 10s", "create -s -t 10s -- /q/"},
		{"lock L --wait 1s -o json sh -c 'x' -o json", "-o json lock --wait 1s -- L sh -c 'x' -o json"},
		{"lock L -- --weird", "lock -- L --weird"},
		{"members add 4 h:1 -o json", "-o json members add -- 4 h:1"},
		{"bogus -x", "bogus -x"},
		{"", ""},
		{"-o json", "-o json"},
		{"help get", "help -- get"},
	} {
		in := strings.Fields(tc.in)
		if tc.in == "lock L --wait 1s -o json sh -c 'x' -o json" {
			in = []string{"lock", "L", "--wait", "1s", "-o", "json", "sh", "-c", "'x'", "-o", "json"}
		}
		out, err := reorderArgs(app, in)
		got := strings.Join(out, " ")
		if err != nil || got != tc.want {
			t.Errorf("reorderArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"get /a -o", "-o", "set /a x -v"} {
		if _, err := reorderArgs(app, strings.Fields(in)); err == nil || !strings.Contains(err.Error(), "needs a value") {
			t.Errorf("reorderArgs(%q): %v, want a missing value", in, err)
		}
	}
}

func TestFormatData(t *testing.T) {
	for _, tc := range []struct {
		data    string
		f       dataFormat
		want    string
		escaped bool
	}{
		{"hello", dataText, "hello\n", false},
		{"a\nb\n", dataText, "a\nb\n", false},
		{"tab\there", dataText, "tab\there\n", false},
		{"", dataText, "\n", false},
		{"héllo wörld ✓", dataText, "héllo wörld ✓\n", false},
		{"\x00\xff", dataText, `"\x00\xff"` + "\n", true},
		{"\x1b[31mred", dataText, `"\x1b[31mred"` + "\n", true},
		{"cr\r", dataText, `"cr\r"` + "\n", true},
		{"bidi\u202e", dataText, `"bidi\u202e"` + "\n", true},
		{"\x00\xff", dataBase64, "AP8=\n", false},
		{"\x00\xff", dataRaw, "\x00\xff", false},
	} {
		out, esc := formatData([]byte(tc.data), tc.f)
		if string(out) != tc.want || esc != tc.escaped {
			t.Errorf("formatData(%q, %d) = %q, %v; want %q, %v", tc.data, tc.f, out, esc, tc.want, tc.escaped)
		}
	}
	if s := safeText([]byte("two\nlines")); s != `"two\nlines"` {
		t.Errorf("safeText = %s", s)
	}
}

func TestReadData(t *testing.T) {
	for _, tc := range []struct {
		arg, stdin string
		b64        bool
		want       string
		err        bool
	}{
		{"plain", "", false, "plain", false},
		{"-", "from stdin", false, "from stdin", false},
		{"@@at", "", false, "@at", false},
		{"aGk=", "", true, "hi", false},
		{"aGk", "", true, "hi", false},
		{"@/no/such/file", "", false, "", true},
		{"***", "", true, "", true},
	} {
		got, err := readData(tc.arg, strings.NewReader(tc.stdin), tc.b64)
		if string(got) != tc.want || (err != nil) != tc.err {
			t.Errorf("readData(%q) = %q, %v", tc.arg, got, err)
		}
	}
	if _, err := readData("-", nil, false); err == nil {
		t.Error(`readData("-") without stdin succeeded`)
	}
}

func TestParseACL(t *testing.T) {
	acl, err := parseACL("world:anyone:r, digest:alice:abc=:cdrwa,ip:::1:rw,auth::a")
	want := []client.ACL{
		{Perms: client.PermRead, Scheme: "world", ID: "anyone"},
		{Perms: client.PermAll, Scheme: "digest", ID: "alice:abc="},
		{Perms: client.PermRead | client.PermWrite, Scheme: "ip", ID: "::1"},
		{Perms: client.PermAdmin, Scheme: "auth", ID: ""},
	}
	if err != nil || !reflect.DeepEqual(acl, want) {
		t.Fatalf("parseACL = %v, %v", acl, err)
	}
	for _, bad := range []string{"", ",", "world", "world:anyone", ":x:r", "world:anyone:q"} {
		if _, err := parseACL(bad); err == nil {
			t.Errorf("parseACL(%q) succeeded", bad)
		}
	}
	// getacl's output reads back.
	for _, a := range want {
		back, err := parseACL(formatACL(a))
		if err != nil || !reflect.DeepEqual(back, []client.ACL{a}) {
			t.Errorf("%s does not read back: %v %v", formatACL(a), back, err)
		}
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"1500": 1500 * time.Millisecond, "30s": 30 * time.Second, "1h": time.Hour} {
		if d, err := parseTTL(in); err != nil || d != want {
			t.Errorf("parseTTL(%q) = %v, %v", in, d, err)
		}
	}
	for _, bad := range []string{"", "0", "-5", "soon", "0.1ms"} {
		if _, err := parseTTL(bad); err == nil {
			t.Errorf("parseTTL(%q) succeeded", bad)
		}
	}
}

// TestClassifyComplete maps every wire error code to an exit code with a
// name, and checks the distinct classes.
func TestClassifyComplete(t *testing.T) {
	want := map[error]int{
		client.ErrNoNode: exitNoNode, client.ErrNodeExists: exitNodeExists, client.ErrBadVersion: exitBadVersion,
		client.ErrNotEmpty: exitNotEmpty, client.ErrNoAuth: exitAuth, client.ErrAuthFailed: exitAuth,
		client.ErrInvalidACL: exitAuth, client.ErrBadArguments: exitUsage, client.ErrBadPath: exitUsage,
		client.ErrConnectionLoss: exitConnection, client.ErrOperationTimeout: exitConnection,
		client.ErrThrottled: exitConnection, client.ErrSessionMoved: exitConnection,
		client.ErrSessionExpired: exitExpired, client.ErrUnknownOutcome: exitServer,
		client.ErrRuntimeInconsistency: exitServer, client.ErrUnimplemented: exitServer,
	}
	for _, code := range wire.Codes() {
		err := code.Err()
		if err == nil {
			continue
		}
		wrapped := &client.OpError{Op: "get", Path: "/x", Err: fmt.Errorf("%w: detail", err)}
		got, _ := classify(wrapped, []string{"h:1"})
		if exitClass[got] == "" {
			t.Errorf("code %s maps to exit %d, which has no class", code, got)
		}
		if w, ok := want[err]; ok && got != w {
			t.Errorf("code %s maps to exit %d, want %d", code, got, w)
		}
	}
	// A write whose outcome is unknown because the session expired is a
	// session expiry.
	if got, _ := classify(fmt.Errorf("%w: %w", client.ErrUnknownOutcome, client.ErrSessionExpired), nil); got != exitExpired {
		t.Errorf("unknown outcome by expiry: exit %d", got)
	}
	if got, _ := classify(usagef("x"), nil); got != exitUsage {
		t.Errorf("usage: exit %d", got)
	}
	if got, _ := classify(errors.New("other"), nil); got != exitServer {
		t.Errorf("other: exit %d", got)
	}
}

func TestErrText(t *testing.T) {
	for in, want := range map[string]string{
		"get /a: node does not exist: get /a: node does not exist": "get /a: node does not exist",
		"get /a: node does not exist":                              "get /a: node does not exist",
		"a: b: c":                                                  "a: b: c",
	} {
		if got := errText(errors.New(in)); got != want {
			t.Errorf("errText(%q) = %q", in, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{Servers: []string{"127.0.0.1:7181"}, Timeout: 10 * time.Second, SessionTimeout: 10 * time.Second, Output: "text"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	c = Config{Servers: []string{" a:1, b:2 ", "c:3"}}
	if err := c.Validate(); err != nil || !reflect.DeepEqual(c.Servers, []string{"a:1", "b:2", "c:3"}) {
		t.Fatalf("servers %v, %v", c.Servers, err)
	}
	for _, bad := range []Config{{Timeout: -1}, {SessionTimeout: -1}, {Output: "yaml"}, {Auth: []string{"digest"}}, {Auth: []string{":x"}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
