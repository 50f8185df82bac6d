package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/coord-dev/coord/client"
)

// terminal drives a process through a pseudo-terminal.
type terminal struct {
	t    *testing.T
	f    *os.File
	mu   sync.Mutex
	raw  bytes.Buffer
	mark int // expect looks after this offset of the cleaned output
	done chan struct{}
}

func newTerminal(t *testing.T, f *os.File) *terminal {
	tm := &terminal{t: t, f: f, done: make(chan struct{})}
	go tm.read() // ends when the process closes the terminal
	return tm
}

func (tm *terminal) read() {
	defer close(tm.done)
	b := make([]byte, 4096)
	for {
		n, err := tm.f.Read(b)
		tm.mu.Lock()
		tm.raw.Write(b[:n])
		tm.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// ansi matches the terminal control sequences readline writes.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\r`)

// text is the output so far, without control sequences and carriage
// returns.
func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return ansi.ReplaceAllString(tm.raw.String(), "")
}

// expect waits for s to appear after the previous match.
func (tm *terminal) expect(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		txt := tm.text()
		if i := strings.Index(txt[tm.mark:], s); i >= 0 {
			tm.mark += i + len(s)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tm.t.Fatalf("terminal: %q did not appear; output after the last match:\n%s", s, tm.text()[tm.mark:])
}

func (tm *terminal) send(s string) {
	tm.t.Helper()
	if _, err := tm.f.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// TestShellTerminal drives the interactive shell through a pseudo-terminal:
// typing, path completion, history recall, a watch event arriving while a
// line is being typed, cd, help, and an ephemeral node that lives exactly
// as long as the shell.
func TestShellTerminal(t *testing.T) {
	e := newEnv(t)
	bin := buildCoordctl(t)
	e.create("/pty", "")
	e.create("/pty/alpha-node", "")
	e.create("/pty/alpha-node/child-one", "")
	e.create("/pty/beta", "beta-1")
	hist := filepath.Join(t.TempDir(), "history")

	cmd := exec.Command(bin, "--servers", e.servers)
	cmd.Env = append(os.Environ(), "COORD_HISTORY="+hist, "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends with the process, received below
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	tm := newTerminal(t, f)
	tm.expect("coord:/> ")

	// Typing a command: an ephemeral node, owned by the shell's session.
	tm.send("create -e /pty/eph hello\r")
	tm.expect("\n/pty/eph\n")
	tm.expect("coord:/> ")
	ok, st, err := e.c.Exists(e.ctx(), "/pty/eph")
	if err != nil || !ok || st.EphemeralOwner == 0 {
		t.Fatalf("/pty/eph: exists %v, stat %+v, %v", ok, st, err)
	}

	// Tab completes a path from the tree: "al" becomes "alpha-node/"
	// (it has children), so ls lists child-one.
	tm.send("ls /pty/al\t")
	tm.expect("alpha-node/")
	tm.send("\r")
	tm.expect("\nchild-one\n")
	tm.expect("coord:/> ")

	// History: the up arrow recalls the last command.
	tm.send("get /pty/beta\r")
	tm.expect("\nbeta-1\n")
	tm.expect("coord:/> ")
	if _, err := e.c.Set(e.ctx(), "/pty/beta", []byte("beta-2"), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	tm.send("\x1b[A")
	tm.expect("get /pty/beta")
	tm.send("\r")
	tm.expect("\nbeta-2\n")
	tm.expect("coord:/> ")

	// A watch event arrives while a line is half typed: it is printed on
	// its own line, then the prompt and the half line come back.
	tm.send("get -w /pty/beta\r")
	tm.expect("\nbeta-2\n")
	tm.expect("coord:/> ")
	tm.send("pw")
	tm.expect("pw")
	if _, err := e.c.Set(e.ctx(), "/pty/beta", []byte("beta-3"), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	tm.expect("[watch] NodeDataChanged /pty/beta zxid=")
	tm.expect("coord:/> pw")
	tm.send("d\r")
	tm.expect("\n/\n")

	// cd and relative paths; Tab completes relative paths too.
	tm.send("cd pty\r")
	tm.expect("coord:/pty> ")
	tm.send("ls\r")
	tm.expect("\nalpha-node\nbeta\neph\n")
	tm.send("get be\t")
	tm.expect("beta ")
	tm.send("\r")
	tm.expect("\nbeta-3\n")
	tm.expect("coord:/pty> ")

	// A background watch prints until unwatch stops it.
	tm.send("watch beta\r")
	tm.expect("watching /pty/beta in the background")
	tm.expect("coord:/pty> ")
	if _, err := e.c.Set(e.ctx(), "/pty/beta", []byte("beta-4"), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	tm.expect("[watch] NodeDataChanged /pty/beta zxid=")
	tm.send("unwatch beta\r")
	tm.expect("coord:/pty> ")
	tm.send("unwatch beta\r")
	tm.expect("no background watch on /pty/beta")
	tm.expect("coord:/pty> ")

	// Ctrl-C stops the running command, not the shell: here a lock held
	// until interrupted, released at once.
	tm.send("lock ptylock\r")
	tm.expect("token=")
	tm.send("\x03")
	tm.expect("coord:/pty> ")
	kids, _, err := e.c.Children(e.ctx(), lockRoot+"/ptylock")
	if err != nil && !isNoNode(err) || len(kids) != 0 {
		t.Fatalf("lock nodes after Ctrl-C: %v %v", kids, err)
	}

	// Errors are reported and the shell goes on.
	tm.send("get nothing-here\r")
	tm.expect("node does not exist")
	tm.expect("coord:/pty> ")

	// help for a shell command.
	tm.send("help cd\r")
	tm.expect("change the working node")
	tm.expect("coord:/pty> ")

	// Ctrl-D leaves; the session ends and its ephemeral with it.
	tm.send("\x04")
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("shell exited with %v; output:\n%s", err, tm.text())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the shell did not exit on Ctrl-D; output:\n%s", tm.text())
	}
	waitFor(t, "the shell's ephemeral node to go", func() bool {
		ok, _, err := e.c.Exists(e.ctx(), "/pty/eph")
		return err == nil && !ok
	})
	if testing.Verbose() {
		tm.mu.Lock()
		t.Logf("terminal output:\n%q", tm.raw.String())
		tm.mu.Unlock()
	}
	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"create -e /pty/eph hello", "ls /pty/alpha-node/", "get /pty/beta", "cd pty"} {
		if !strings.Contains(string(b), want+"\n") {
			t.Fatalf("history file lacks %q:\n%s", want, b)
		}
	}
}
