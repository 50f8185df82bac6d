package server

import (
	"bufio"
	"encoding/binary"
	"net"
	"time"
)

// frameWriter writes websocket frames for the server side of a connection
// straight to the socket through one buffer, so that every frame queued at
// once leaves in one write(2) (gorilla's writer flushes each message on its
// own). It is used only by the connection's writer goroutine; gorilla still
// reads, and the server never lets gorilla write (the ping and close
// handlers queue their answers here instead, and the read limit is enforced
// by the reader).
type frameWriter struct {
	conn     net.Conn
	w        *bufio.Writer
	hdr      [10]byte
	deadline time.Time // the write deadline last set on conn
}

// Websocket opcodes (RFC 6455 §5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPong  = 0xA
)

func newFrameWriter(c net.Conn) *frameWriter {
	return &frameWriter{conn: c, w: bufio.NewWriterSize(c, 32<<10)}
}

// frame buffers one unmasked, final frame.
func (f *frameWriter) frame(opcode byte, payload []byte) error {
	h := f.hdr[:0]
	h = append(h, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		h = append(h, byte(n))
	case n <= 0xffff:
		h = append(h, 126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	if _, err := f.w.Write(h); err != nil {
		return err
	}
	_, err := f.w.Write(payload)
	return err
}

// arm makes sure at least half of timeout is left before the socket's
// write deadline. The writer arms before each batch (a frame larger than
// the buffer goes to the socket at once, not at the flush) and each flush:
// the deadline, a runtime timer, moves once per half timeout rather than
// at every write.
func (f *frameWriter) arm(timeout time.Duration) {
	if now := time.Now(); f.deadline.Sub(now) < timeout/2 {
		f.deadline = now.Add(timeout)
		_ = f.conn.SetWriteDeadline(f.deadline)
	}
}

// flush writes what is buffered, with at least half of timeout to do it.
func (f *frameWriter) flush(timeout time.Duration) error {
	if f.w.Buffered() == 0 {
		return nil
	}
	f.arm(timeout)
	return f.w.Flush()
}

// closeFrame returns a close frame's payload: the code and a reason cut to
// fit a control frame (125 bytes).
func closeFrame(code int, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append(b, reason...)
}
