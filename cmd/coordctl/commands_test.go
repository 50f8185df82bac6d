package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coord-dev/coord/client"
)

// decode parses one JSON line of output into a generic value, and checks
// that it is exactly one line.
func decode(t *testing.T, out string) map[string]any {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("want one JSON line, got %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("bad JSON %q: %v", out, err)
	}
	return m
}

// keys returns m's keys, sorted.
func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// statKeys are the fields of a Stat in JSON output.
var statKeys = []string{"aversion", "ctime", "cversion", "czxid", "data_length", "ephemeral_owner", "mtime", "mzxid", "num_children", "pzxid", "version"}

func checkKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: JSON keys %v, want %v", what, got, want)
	}
	if st, ok := m["stat"].(map[string]any); ok {
		if got := keys(st); !reflect.DeepEqual(got, statKeys) {
			t.Fatalf("%s: stat keys %v, want %v", what, got, statKeys)
		}
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t)

	t.Run("create", func(t *testing.T) {
		e.t = t
		if out := e.must("create", "/c", "hello"); out != "/c\n" {
			t.Fatalf("create printed %q", out)
		}
		m := decode(t, e.must("-o", "json", "create", "/c/j", "x"))
		checkKeys(t, "create", m, "path", "stat")
		if m["path"] != "/c/j" {
			t.Fatalf("create json path %v", m["path"])
		}
		// Sequential, with the flag after the arguments.
		out := e.must("create", "/c/seq-", "-s")
		if !strings.HasPrefix(out, "/c/seq-") || len(strings.TrimSpace(out)) != len("/c/seq-")+10 {
			t.Fatalf("sequential create printed %q", out)
		}
		// Parents, data from a file, from stdin, "@@" and base64.
		file := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(file, []byte("from file"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.must("create", "-p", "/c/deep/er/node", "@"+file)
		if r := e.run("piped\x00bytes", "create", "/c/stdin", "-"); r.code != 0 {
			t.Fatal(r)
		}
		e.must("create", "/c/at", "@@literal")
		e.must("create", "--base64", "/c/b64", base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}))
		for p, want := range map[string]string{"/c/deep/er/node": "from file", "/c/stdin": "piped\x00bytes", "/c/at": "@literal", "/c/b64": "\x00\x01\x02\xff"} {
			data, _, err := e.c.Get(e.ctx(), p)
			if err != nil || string(data) != want {
				t.Fatalf("%s holds %q, %v; want %q", p, data, err, want)
			}
		}
		// Ephemeral in one-shot mode: a note, and the node is gone with
		// the session.
		r := e.run("", "create", "-e", "/c/eph")
		if r.code != 0 || r.out != "/c/eph\n" || !strings.Contains(r.err, "ephemeral") {
			t.Fatalf("create -e: %v", r)
		}
		waitFor(t, "the one-shot ephemeral to go", func() bool {
			ok, _, err := e.c.Exists(e.ctx(), "/c/eph")
			return err == nil && !ok
		})
		// Container and TTL nodes, and an ACL.
		e.must("create", "-c", "/c/container")
		e.must("create", "-t", "1h", "/c/ttl")
		e.must("create", "--acl", "world:anyone:r", "/c/readonly", "ro")
		acl, _, err := e.c.GetACL(e.ctx(), "/c/readonly")
		if err != nil || len(acl) != 1 || acl[0].Perms != client.PermRead || acl[0].Scheme != "world" {
			t.Fatalf("ACL %v %v", acl, err)
		}
		e.expectCode(exitNodeExists, "create", "/c", "again")
		e.expectCode(exitNoNode, "create", "/nope/child")
		e.expectCode(exitAuth, "create", "/c/readonly/child")
	})

	t.Run("get", func(t *testing.T) {
		e.t = t
		e.create("/g", "text data")
		e.create("/g/bin", "\x00\x01\xffz")
		e.create("/g/nl", "line1\nline2\n")
		if out := e.must("get", "/g"); out != "text data\n" {
			t.Fatalf("get printed %q", out)
		}
		if out := e.must("get", "/g/nl"); out != "line1\nline2\n" {
			t.Fatalf("get printed %q", out)
		}
		r := e.run("", "get", "/g/bin")
		if r.code != 0 || r.out != `"\x00\x01\xffz"`+"\n" || !strings.Contains(r.err, "escaped") {
			t.Fatalf("binary get: %v", r)
		}
		if out := e.must("get", "-b", "/g/bin"); out != base64.StdEncoding.EncodeToString([]byte("\x00\x01\xffz"))+"\n" {
			t.Fatalf("get --base64 printed %q", out)
		}
		if out := e.must("get", "--raw", "/g/bin"); out != "\x00\x01\xffz" {
			t.Fatalf("get --raw printed %q", out)
		}
		// Terminal escapes are never written raw by default.
		e.create("/g/esc", "\x1b[2Jboom")
		if out := e.must("get", "/g/esc"); strings.Contains(out, "\x1b") {
			t.Fatalf("escape sequence written to the terminal: %q", out)
		}
		out := e.must("get", "-s", "/g")
		if !strings.HasPrefix(out, "text data\nczxid = ") || !strings.Contains(out, "\nversion = 0\n") || !strings.Contains(out, "\nephemeral_owner = 0000000000000000\n") {
			t.Fatalf("get -s printed %q", out)
		}
		m := decode(t, e.must("-o", "json", "get", "/g"))
		checkKeys(t, "get", m, "path", "data", "text", "stat")
		if m["data"] != base64.StdEncoding.EncodeToString([]byte("text data")) || m["text"] != "text data" {
			t.Fatalf("get json %v", m)
		}
		m = decode(t, e.must("get", "/g/bin", "-o", "json"))
		if m["text"] != nil {
			t.Fatalf("get json text of binary data = %v, want null", m["text"])
		}
		e.expectCode(exitNoNode, "get", "/g/none")
	})

	t.Run("set", func(t *testing.T) {
		e.t = t
		e.create("/s", "v0")
		if out := e.must("set", "/s", "v1"); out != "" {
			t.Fatalf("set printed %q", out)
		}
		m := decode(t, e.must("-o", "json", "set", "/s", "v2", "-v", "1"))
		checkKeys(t, "set", m, "path", "stat")
		if st := m["stat"].(map[string]any); st["version"] != 2.0 {
			t.Fatalf("set json stat %v", st)
		}
		if out := e.must("set", "-s", "/s", "-5"); !strings.Contains(out, "version = 3") {
			t.Fatalf("set -s printed %q", out)
		}
		if data, _, _ := e.c.Get(e.ctx(), "/s"); string(data) != "-5" {
			t.Fatalf("data %q, want -5", data)
		}
		e.must("set", "/s", "--", "-dash")
		if data, _, _ := e.c.Get(e.ctx(), "/s"); string(data) != "-dash" {
			t.Fatalf("data %q, want -dash", data)
		}
		e.expectCode(exitBadVersion, "set", "-v", "1", "/s", "v")
		e.expectCode(exitNoNode, "set", "/s/none", "v")
	})

	t.Run("ls", func(t *testing.T) {
		e.t = t
		e.create("/l", "")
		e.create("/l/b", "")
		e.create("/l/a", "")
		e.create("/l/a/x", "")
		if out := e.must("ls", "/l"); out != "a\nb\n" {
			t.Fatalf("ls printed %q", out)
		}
		if out := e.must("ls", "-R", "/l"); out != "/l\n/l/a\n/l/a/x\n/l/b\n" {
			t.Fatalf("ls -R printed %q", out)
		}
		if out := e.must("ls", "-s", "/l"); !strings.HasPrefix(out, "a\nb\nczxid = ") || !strings.Contains(out, "num_children = 2") {
			t.Fatalf("ls -s printed %q", out)
		}
		m := decode(t, e.must("-o", "json", "ls", "/l"))
		checkKeys(t, "ls", m, "path", "children", "stat")
		if !reflect.DeepEqual(m["children"], []any{"a", "b"}) {
			t.Fatalf("ls json %v", m)
		}
		m = decode(t, e.must("-o", "json", "ls", "/l/a/x"))
		if !reflect.DeepEqual(m["children"], []any{}) {
			t.Fatalf("ls json of a leaf: children %v, want []", m["children"])
		}
		m = decode(t, e.must("-o", "json", "ls", "-R", "/l"))
		checkKeys(t, "ls -R", m, "path", "paths", "stat")
		if !reflect.DeepEqual(m["paths"], []any{"/l", "/l/a", "/l/a/x", "/l/b"}) {
			t.Fatalf("ls -R json %v", m)
		}
		// Relative paths start at / outside the shell.
		if out := e.must("ls", "l/a"); out != "x\n" {
			t.Fatalf("ls l/a printed %q", out)
		}
		e.expectCode(exitNoNode, "ls", "/l/none")
	})

	t.Run("delete", func(t *testing.T) {
		e.t = t
		e.create("/d", "")
		e.create("/d/a", "")
		e.create("/d/a/x", "")
		e.create("/d/b", "")
		e.expectCode(exitNotEmpty, "delete", "/d/a")
		e.expectCode(exitBadVersion, "delete", "-v", "7", "/d/b")
		if out := e.must("delete", "/d/b"); out != "" {
			t.Fatalf("delete printed %q", out)
		}
		e.create("/d/c", "")
		m := decode(t, e.must("-o", "json", "delete", "-v", "0", "/d/c"))
		checkKeys(t, "delete", m, "path", "deleted")
		e.expectCode(exitNoNode, "delete", "/d/c")
		m = decode(t, e.must("-o", "json", "deleteall", "/d"))
		checkKeys(t, "deleteall", m, "path", "deleted")
		if !reflect.DeepEqual(m["deleted"], []any{"/d/a/x", "/d/a", "/d"}) {
			t.Fatalf("deleteall json %v", m)
		}
		e.expectCode(exitNoNode, "deleteall", "/d")
		e.expectCode(exitUsage, "deleteall", "/")
	})

	t.Run("stat", func(t *testing.T) {
		e.t = t
		e.create("/st", "12345")
		out := e.must("stat", "/st")
		for _, want := range []string{"czxid = ", "mzxid = ", "pzxid = ", "ctime = ", "mtime = ", "version = 0\n", "cversion = 0\n", "aversion = 0\n", "ephemeral_owner = 0000000000000000\n", "data_length = 5\n", "num_children = 0\n"} {
			if !strings.Contains(out, want) {
				t.Fatalf("stat printed %q, lacking %q", out, want)
			}
		}
		m := decode(t, e.must("-o", "json", "stat", "/st"))
		checkKeys(t, "stat", m, "path", "stat")
		e.expectCode(exitNoNode, "stat", "/st/none")
	})

	t.Run("sync", func(t *testing.T) {
		e.t = t
		if out := e.must("sync", "/"); out != "" {
			t.Fatalf("sync printed %q", out)
		}
		m := decode(t, e.must("-o", "json", "sync"))
		checkKeys(t, "sync", m, "path")
	})

	t.Run("acl", func(t *testing.T) {
		e.t = t
		e.create("/acl", "secret")
		if out := e.must("getacl", "/acl"); out != "world:anyone:cdrwa\n" {
			t.Fatalf("getacl printed %q", out)
		}
		digest := client.DigestACL(client.PermAll, "alice", "pw")
		e.must("setacl", "/acl", "digest:"+digest.ID+":cdrwa,world:anyone:r")
		m := decode(t, e.must("--auth", "digest:alice:pw", "-o", "json", "getacl", "/acl"))
		checkKeys(t, "getacl", m, "path", "acl", "stat")
		want := []any{
			map[string]any{"perms": "cdrwa", "scheme": "digest", "id": digest.ID},
			map[string]any{"perms": "r", "scheme": "world", "id": "anyone"},
		}
		if !reflect.DeepEqual(m["acl"], want) {
			t.Fatalf("getacl json %v, want %v", m["acl"], want)
		}
		// Without ADMIN permission the server hides the digest.
		if out := e.must("getacl", "/acl"); out != "digest:alice:x:cdrwa\nworld:anyone:r\n" {
			t.Fatalf("getacl printed %q", out)
		}
		// Reading is open, writing needs alice.
		e.must("get", "/acl")
		r := e.expectCode(exitAuth, "set", "/acl", "x")
		if !strings.Contains(r.err, "--auth") {
			t.Fatalf("NoAuth should tell how to authenticate: %v", r)
		}
		e.must("--auth", "digest:alice:pw", "set", "/acl", "x")
		m = decode(t, e.must("--auth", "digest:alice:pw", "-o", "json", "setacl", "-v", "1", "/acl", "world:anyone:cdrwa"))
		checkKeys(t, "setacl", m, "path", "stat")
		e.expectCode(exitBadVersion, "setacl", "-v", "0", "/acl", "world:anyone:cdrwa")
	})

	t.Run("exit codes and errors", func(t *testing.T) {
		e.t = t
		// Connection: nothing listens on port 1.
		var errb bytes.Buffer
		code := run(context.Background(), []string{"--servers", "127.0.0.1:1", "--timeout", "500ms", "get", "/"},
			stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &errb})
		if code != exitConnection || !strings.Contains(errb.String(), "--servers") {
			t.Fatalf("unreachable server: exit %d, stderr %q", code, errb.String())
		}
		// -o json errors are JSON objects on stderr.
		r := e.run("", "-o", "json", "get", "/none")
		var je errorJSON
		if r.code != exitNoNode || r.out != "" || json.Unmarshal([]byte(r.err), &je) != nil ||
			je.Class != "no_node" || je.ExitCode != exitNoNode || je.Hint == "" || !strings.Contains(je.Error, "/none") {
			t.Fatalf("json error: %v (%+v)", r, je)
		}
		// Messages are not repeated.
		r = e.expectCode(exitNoNode, "get", "/none")
		if strings.Count(r.err, "does not exist") != 1 || !strings.Contains(r.err, "hint:") {
			t.Fatalf("error message %q", r.err)
		}
		// help for every command.
		for _, cmd := range []string{"ls", "get", "set", "create", "delete", "deleteall", "stat", "sync", "getacl", "setacl", "watch", "lock", "elect", "status", "members", "shell"} {
			r := e.run("", "help", cmd)
			if r.code != 0 || !strings.Contains(r.out, "coordctl "+cmd) || !strings.Contains(r.out, "DESCRIPTION") {
				t.Fatalf("help %s: %v", cmd, r)
			}
		}
		if r := e.run("", "help"); r.code != 0 || !strings.Contains(r.out, "EXIT CODES") {
			t.Fatalf("help: %v", r)
		}
	})
}

// TestBadArguments checks that every malformed command line fails with
// exit code 1, a message on stderr naming the problem, and no change.
func TestBadArguments(t *testing.T) {
	e := newEnv(t)
	e.create("/bad", "keep")
	e.create("/bad/child", "keep too")
	before := e.snapshot("/")
	cases := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"get"}, "expected 1 argument"},
		{[]string{"get", "/bad", "/extra"}, "expected 1 argument"},
		{[]string{"set", "/bad"}, "expected 2 argument"},
		{[]string{"create"}, "argument"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"get", "-x", "/bad"}, "flag provided but not defined"},
		{[]string{"set", "/bad", "x", "-v", "notanumber"}, "invalid value"},
		{[]string{"set", "-v", "-7", "/bad", "x"}, "version"},
		{[]string{"-o", "yaml", "ls", "/"}, "text or json"},
		{[]string{"--timeout", "0s", "ls", "/"}, "--timeout"},
		{[]string{"--auth", "nocolon", "ls", "/"}, "SCHEME:CREDENTIAL"},
		{[]string{"get", "/bad\x01"}, "control character"},
		{[]string{"set", "/bad", "@/no/such/file"}, "cannot read data file"},
		{[]string{"set", "--base64", "/bad", "!!!"}, "not base64"},
		{[]string{"create", "-e", "-c", "/bad/x"}, "cannot be combined"},
		{[]string{"create", "-e", "-t", "10s", "/bad/x"}, "cannot be combined"},
		{[]string{"create", "-t", "soon", "/bad/x"}, "TTL"},
		{[]string{"create", "--acl", "world:anyone", "/bad/x"}, "scheme:id:perms"},
		{[]string{"create", "--acl", "world:anyone:xyz", "/bad/x"}, "ACL entry"},
		{[]string{"setacl", "/bad", ""}, "empty ACL"},
		{[]string{"get", "--base64", "--raw", "/bad"}, "cannot be combined"},
		{[]string{"ls", "-R", "-w", "/bad"}, "cannot be combined"},
		{[]string{"delete", "/"}, "root"},
		{[]string{"deleteall", "/"}, "whole tree"},
		{[]string{"lock"}, "argument"},
		{[]string{"lock", "a/b", "true"}, "not a valid lock"},
		{[]string{"lock", "--wait", "-1s", "l", "true"}, "--wait"},
		{[]string{"elect", "onlyname"}, "expected 2 argument"},
		{[]string{"members", "add", "0", "h:1"}, "positive integer"},
		{[]string{"members", "frob"}, "unknown subcommand"},
		{[]string{"status", "extra"}, "argument"},
		{[]string{"shell", "/no/such/script"}, "cannot read script"},
	}
	for _, tc := range cases {
		r := e.run("", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.err, tc.want) || !strings.Contains(r.err, "hint:") || r.out != "" {
			t.Errorf("coordctl %q: want exit 1 with %q and a hint on stderr, got %v", tc.args, tc.want, r)
		}
	}
	if after := e.snapshot("/"); after != before {
		t.Fatalf("bad arguments changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestWatch follows a node and a subtree with watch, and one change with
// get -w.
func TestWatch(t *testing.T) {
	e := newEnv(t)
	e.create("/w", "0")

	for _, tc := range []struct {
		name  string
		args  []string
		steps []struct{ do, want string }
	}{
		{
			name: "one-shot re-armed",
			args: []string{"watch", "/w"},
			steps: []struct{ do, want string }{
				{"set", "NodeDataChanged /w zxid="},
				{"create-child", "NodeChildrenChanged /w zxid="},
				{"delete-child", "NodeChildrenChanged /w zxid="},
				{"delete", "NodeDeleted /w zxid="},
				{"create", "NodeCreated /w zxid="},
				{"set", "NodeDataChanged /w zxid="},
			},
		},
		{
			name: "recursive json",
			args: []string{"-o", "json", "watch", "--recursive", "/w"},
			steps: []struct{ do, want string }{
				{"set", `{"event":"NodeDataChanged","path":"/w","zxid":`},
				{"create-child", `{"event":"NodeCreated","path":"/w/k","zxid":`},
				{"delete-child", `{"event":"NodeDeleted","path":"/w/k","zxid":`},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &lockedBuffer{}
			done := make(chan result, 1)
			go func() { done <- e.runCtx(ctx, "", out, tc.args...) }()
			do := func(step string) {
				var err error
				switch step {
				case "set":
					_, err = e.c.Set(e.ctx(), "/w", []byte("x"), client.AnyVersion)
				case "create-child":
					_, _, err = e.c.Create(e.ctx(), "/w/k", nil, client.ModePersistent)
				case "delete-child":
					err = e.c.Delete(e.ctx(), "/w/k", client.AnyVersion)
				case "delete":
					err = e.c.Delete(e.ctx(), "/w", client.AnyVersion)
				case "create":
					_, _, err = e.c.Create(e.ctx(), "/w", nil, client.ModePersistent)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// The first change is repeated until the watch is set.
			waitFor(t, "the first event", func() bool {
				do(tc.steps[0].do)
				time.Sleep(50 * time.Millisecond)
				return strings.Contains(out.String(), tc.steps[0].want)
			})
			lines := len(strings.Split(strings.TrimSpace(out.String()), "\n"))
			for _, s := range tc.steps[1:] {
				do(s.do)
				waitFor(t, s.want, func() bool {
					ls := strings.Split(strings.TrimSpace(out.String()), "\n")
					return len(ls) > lines && strings.HasPrefix(ls[len(ls)-1], s.want)
				})
				lines++
			}
			cancel()
			select {
			case r := <-done:
				if r.code != 0 || r.err != "" {
					t.Fatalf("interrupted watch: %v", r)
				}
				if n := len(strings.Split(strings.TrimSpace(r.out), "\n")); n != lines {
					t.Fatalf("%d event lines, want %d (no duplicates):\n%s", n, lines, r.out)
				}
				if strings.HasPrefix(tc.args[0], "-o") {
					for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
						checkKeys(t, "watch event", decode(t, l+"\n"), "event", "path", "zxid")
					}
				}
			case <-time.After(10 * time.Second):
				t.Fatal("watch did not stop when interrupted")
			}
		})
	}

	t.Run("ls -w json", func(t *testing.T) {
		e.t = t
		out := &lockedBuffer{}
		done := make(chan result, 1)
		go func() { done <- e.runCtx(context.Background(), "", out, "-o", "json", "ls", "-w", "/w") }()
		waitFor(t, "ls to print", func() bool { return out.String() != "" })
		if _, _, err := e.c.Create(e.ctx(), "/w/new", nil, client.ModePersistent); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			lines := strings.SplitAfter(r.out, "\n")
			if r.code != 0 || len(lines) != 3 || lines[2] != "" {
				t.Fatalf("ls -w: %v", r)
			}
			checkKeys(t, "ls -w", decode(t, lines[0]), "path", "children", "stat")
			ev := decode(t, lines[1])
			if ev["event"] != "NodeChildrenChanged" || ev["path"] != "/w" {
				t.Fatalf("ls -w event %v", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ls -w did not print the event")
		}
	})

	t.Run("get -w", func(t *testing.T) {
		e.t = t
		out := &lockedBuffer{}
		done := make(chan result, 1)
		go func() { done <- e.runCtx(context.Background(), "", out, "get", "-w", "/w") }()
		waitFor(t, "get to print", func() bool { return out.String() != "" })
		if _, err := e.c.Set(e.ctx(), "/w", []byte("changed"), client.AnyVersion); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.code != 0 || !strings.Contains(r.out, "\nNodeDataChanged /w zxid=") {
				t.Fatalf("get -w: %v", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("get -w did not print the event")
		}
	})
}

// TestScript runs commands from stdin and from a file as scripts.
func TestScript(t *testing.T) {
	e := newEnv(t)
	script := `# set up
create /sc top
cd /sc
create -e eph "ephemeral data"
create 'sub dir' 'two words'
ls
get "sub dir"
stat eph -o json
pwd
get missing
create never
`
	r := e.run(script)
	if r.code != exitNoNode {
		t.Fatalf("script: want exit 2 (the first failure), got %v", r)
	}
	if !strings.Contains(r.err, "line 10: get missing") {
		t.Fatalf("the failing line is not named: %v", r)
	}
	lines := strings.Split(r.out, "\n")
	if lines[0] != "/sc" || lines[1] != "/sc/eph" || lines[2] != "/sc/sub dir" || lines[3] != "eph" || lines[4] != "sub dir" || lines[5] != "two words" {
		t.Fatalf("script output:\n%s", r.out)
	}
	// The ephemeral lived through the script's session.
	m := decode(t, lines[6]+"\n")
	if owner := m["stat"].(map[string]any)["ephemeral_owner"]; owner == "0000000000000000" {
		t.Fatalf("eph is not ephemeral: %v", m)
	}
	if lines[7] != "/sc" {
		t.Fatalf("pwd printed %q", lines[7])
	}
	if ok, _, _ := e.c.Exists(e.ctx(), "/sc/never"); ok {
		t.Fatal("the script went on after a failure")
	}
	waitFor(t, "the script's ephemeral to go", func() bool {
		ok, _, err := e.c.Exists(e.ctx(), "/sc/eph")
		return err == nil && !ok
	})

	// --keep-going runs every line; the exit code is the first failure's.
	file := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(file, []byte("get /sc/missing\ncreate /sc /dup\ncreate /sc/after\nexit\ncreate /sc/notreached\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("", "shell", "--keep-going", file)
	if r.code != exitNoNode || strings.Count(r.err, "coordctl: line") != 2 {
		t.Fatalf("keep-going: %v", r)
	}
	if ok, _, _ := e.c.Exists(e.ctx(), "/sc/after"); !ok {
		t.Fatal("--keep-going stopped")
	}
	if ok, _, _ := e.c.Exists(e.ctx(), "/sc/notreached"); ok {
		t.Fatal("exit did not end the script")
	}
	// In a script read from stdin, "-" data cannot read stdin.
	r = e.run("set /sc -\n")
	if r.code != exitUsage || !strings.Contains(r.err, "stdin") {
		t.Fatalf(`"-" in a stdin script: %v`, r)
	}
	// The global -o is the lines' default.
	if r = e.run("pwd\npwd -o text\n", "-o", "json"); r.code != 0 || r.out != "{\"path\":\"/\"}\n/\n" {
		t.Fatalf("-o json script: %v", r)
	}
	// Unterminated quotes are a usage error.
	if r = e.run("get '/sc\n"); r.code != exitUsage || !strings.Contains(r.err, "unterminated") {
		t.Fatalf("unterminated quote: %v", r)
	}
}
