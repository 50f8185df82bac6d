package server

import (
	"bytes"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// A batch written long after the last one re-arms the write deadline
// before its first frame: a frame larger than the buffer goes to the
// socket at once, before any flush.
func TestFrameWriterArmsBeforeEachBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, cli := net.Pipe()
		defer srv.Close()
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(cli)
			got <- b
		}()
		const timeout = 10 * time.Second
		fw := newFrameWriter(srv)
		fw.arm(timeout)
		if err := fw.frame(opText, []byte("first")); err != nil {
			t.Fatal(err)
		}
		if err := fw.flush(timeout); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * timeout) // the deadline set for the first batch has passed
		big := bytes.Repeat([]byte("x"), 64<<10)
		fw.arm(timeout)
		if err := fw.frame(opText, big); err != nil {
			t.Fatalf("a large frame after an idle spell: %v", err)
		}
		if err := fw.flush(timeout); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if b := <-got; len(b) != 2+len("first")+10+len(big) {
			t.Fatalf("read %d bytes", len(b))
		}
	})
}
