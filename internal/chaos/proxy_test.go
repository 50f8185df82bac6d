package chaos

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// frame encodes a peer frame.
func frame(typ byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)+1))
	b = append(b, typ)
	return append(b, payload...)
}

func helloFrame(t *testing.T, from, to uint64) []byte {
	b, err := json.Marshal(map[string]any{"magic": "coord-peer/1", "from": from, "to": to})
	if err != nil {
		t.Fatal(err)
	}
	return frame(frameHello, b)
}

// fakePeer accepts one stream at a time and hands its frames to a channel.
type fakePeer struct {
	ln     net.Listener
	frames chan []byte
	done   chan struct{}
}

func newFakePeer(t *testing.T) *fakePeer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePeer{ln: ln, frames: make(chan []byte, 10000), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(c)
			for {
				b, err := readFrame(r)
				if err != nil {
					break
				}
				if b[4] == frameHello {
					_, _ = c.Write(frame(2, []byte(`{"ok":true}`))) // the ack
				}
				p.frames <- b
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-p.done })
	return p
}

func (p *fakePeer) next(t *testing.T, timeout time.Duration) []byte {
	t.Helper()
	select {
	case b := <-p.frames:
		return b
	case <-time.After(timeout):
		return nil
	}
}

func dialProxy(t *testing.T, px *PeerProxy, from uint64) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(helloFrame(t, from, 2)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPeerProxy(t *testing.T) {
	peer := newFakePeer(t)
	n := NewNet(1)
	px, err := NewPeerProxy(n, 2, peer.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	link := Link{1, 2}

	c := dialProxy(t, px, 1)
	if b := peer.next(t, 5*time.Second); b == nil || b[4] != frameHello {
		t.Fatalf("hello not forwarded: %q", b)
	}
	// The ack comes back untouched.
	ack, err := readFrame(c)
	if err != nil || ack[4] != 2 {
		t.Fatalf("ack: %q %v", ack, err)
	}

	send := func(typ byte, i int) {
		t.Helper()
		if _, err := c.Write(frame(typ, []byte(fmt.Sprintf("m%05d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	// No fault: every frame, in order, intact.
	for i := 0; i < 100; i++ {
		send(frameRaft, i)
	}
	for i := 0; i < 100; i++ {
		if b := peer.next(t, 5*time.Second); string(b) != string(frame(frameRaft, []byte(fmt.Sprintf("m%05d", i)))) {
			t.Fatalf("frame %d: %q", i, b)
		}
	}

	// Drop: about half the raft frames, never another kind, in order.
	n.Set(LinkFault{Drop: 0.5}, link)
	for i := 0; i < 1000; i++ {
		send(frameRaft, i)
		send(4, i)
	}
	send(4, 9999) // a marker: everything before it has been handled
	raft, other, last := 0, 0, -1
	for {
		b := peer.next(t, 5*time.Second)
		if b == nil {
			t.Fatal("frames stopped")
		}
		var i int
		if _, err := fmt.Sscanf(string(b[5:]), "m%05d", &i); err != nil {
			t.Fatalf("damaged frame %q", b)
		}
		if i == 9999 {
			break
		}
		if b[4] == frameRaft {
			raft++
			if i <= last {
				t.Fatalf("raft frame %d after %d", i, last)
			}
			last = i
		} else {
			other++
		}
	}
	if other != 1000 || raft < 400 || raft > 600 {
		t.Fatalf("with 50%% drop: %d raft frames of 1000, %d others of 1000", raft, other)
	}
	if st := n.Stats(link); st.Dropped != int64(1000-raft) {
		t.Fatalf("stats %+v", st)
	}

	// Delay: 75±50 ms, in order.
	n.Set(LinkFault{Delay: 75 * time.Millisecond, Jitter: 50 * time.Millisecond}, link)
	start := time.Now()
	for i := 0; i < 50; i++ {
		send(frameRaft, i)
	}
	for i := 0; i < 50; i++ {
		b := peer.next(t, 5*time.Second)
		if string(b[5:]) != fmt.Sprintf("m%05d", i) {
			t.Fatalf("delayed frame %d: %q", i, b)
		}
		if i == 0 && time.Since(start) < 25*time.Millisecond {
			t.Fatalf("first frame after %v, want at least 25ms", time.Since(start))
		}
	}

	// Blackhole: nothing passes, the stream stays open; healing resumes it.
	n.Set(LinkFault{Blackhole: true}, link)
	for i := 0; i < 10; i++ {
		send(frameRaft, i)
	}
	if b := peer.next(t, 300*time.Millisecond); b != nil {
		t.Fatalf("a frame passed the blackhole: %q", b)
	}
	n.Set(LinkFault{}, link)
	send(frameRaft, 77)
	if b := peer.next(t, 5*time.Second); string(b[5:]) != "m00077" {
		t.Fatalf("after healing: %q", b)
	}

	// Cut: the stream closes and new ones are refused, on this link only.
	n.Set(LinkFault{Cut: true}, link)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("cut stream: %v", err)
	}
	c2 := dialProxy(t, px, 1)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readFrame(c2); err == nil {
		t.Fatal("a cut link accepted a new stream")
	}
	c3 := dialProxy(t, px, 3) // 3->2 is not cut
	if _, err := readFrame(c3); err != nil {
		t.Fatalf("another link: %v", err)
	}
	if st := n.Stats(link); st.Refused == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClientLink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var echoes sync.WaitGroup
	echoes.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			echoes.Go(func() { defer c.Close(); _, _ = io.Copy(c, c) })
		}
	})
	defer echoes.Wait() // after the link is closed, which closes the echoes' connections
	defer ln.Close()
	l, err := NewClientLink([]string{ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(s string) (string, error) {
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Write([]byte(s)); err != nil {
			return "", err
		}
		b := make([]byte, len(s))
		_, err := io.ReadFull(c, b)
		return string(b), err
	}
	if got, err := echo("ping"); err != nil || got != "ping" {
		t.Fatalf("echo: %q %v", got, err)
	}
	l.Silence(true)
	if got, err := echo("lost"); err == nil {
		t.Fatalf("silenced link passed %q", got)
	}
	l.Silence(false)
	l.Cut(true)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("cut: %v", err)
	}
	c2, err := net.Dial("tcp", l.Addrs()[0])
	if err == nil {
		_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Fatal("a cut link accepted a connection")
		}
		c2.Close()
	}
}
