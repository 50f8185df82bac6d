package server

import (
	"sync"

	"github.com/coord-dev/coord/internal/wire"
)

// outbound is one connection's queue of frames to write. Responses are
// released in request order (a slot reserved when the request was read is
// completed later, possibly out of order); pushed frames (watch events) are
// appended as they come. Because a response's slot is completed only after
// the watch events of the zxids it reflects were pushed (apply publishes
// events first, reads run only between publishes), every event precedes
// any response reflecting a later zxid.
type outbound struct {
	max    int
	signal chan struct{} // cap 1: the writer has something to do
	mu     struct {
		sync.Mutex
		ready     []wire.Response
		pending   []*slot // in request order, oldest first
		bytes     int
		overflow  bool // over max: the connection is being closed
		closeNext bool // close the websocket once ready is written
		closeCode int
		closeText string
		pongs     [][]byte // answers to the client's pings, written first
	}
}

// slot is a reserved place for one response.
type slot struct {
	resp wire.Response
	done bool
	skip bool // answered out of order instead: release without a frame
}

func (o *outbound) init(max int) {
	o.max = max
	o.signal = make(chan struct{}, 1)
}

func (o *outbound) wake() {
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

// reserve appends a slot for the next response.
func (o *outbound) reserve() *slot {
	sl := &slot{}
	o.mu.Lock()
	o.mu.pending = append(o.mu.pending, sl)
	o.mu.Unlock()
	return sl
}

// complete fills sl and releases every completed response at the head of
// the pending list. It reports true when this call overflowed the queue.
func (o *outbound) complete(sl *slot, resp wire.Response) (overflowed bool) {
	o.mu.Lock()
	sl.resp, sl.done = resp, true
	n := 0
	for _, p := range o.mu.pending {
		if !p.done {
			break
		}
		if !p.skip {
			overflowed = o.appendLocked(p.resp) || overflowed
		}
		n++
	}
	if n > 0 {
		clear(o.mu.pending[:n])
		o.mu.pending = o.mu.pending[n:]
	}
	o.mu.Unlock()
	if n > 0 {
		o.wake()
	}
	return overflowed
}

// skip releases sl without a frame: its request is answered with push.
func (o *outbound) skip(sl *slot) {
	o.mu.Lock()
	sl.skip = true
	o.mu.Unlock()
	o.complete(sl, wire.Response{})
}

// push appends a server-pushed frame. It reports true when this call
// overflowed the queue.
func (o *outbound) push(resp wire.Response) (overflowed bool) {
	o.mu.Lock()
	overflowed = o.appendLocked(resp)
	o.mu.Unlock()
	o.wake()
	return overflowed
}

func (o *outbound) appendLocked(resp wire.Response) (overflowed bool) {
	if o.mu.overflow || o.mu.closeNext {
		return false
	}
	o.mu.ready = append(o.mu.ready, resp)
	o.mu.bytes += frameSize(&resp)
	if o.mu.bytes > o.max {
		// The client does not read fast enough: drop what is queued and
		// close with an explicit code; the session lives on and the client
		// resumes and re-arms its watches.
		o.mu.overflow = true
		o.mu.ready = nil
		o.mu.bytes = 0
		o.mu.closeNext = true
		o.mu.closeCode = closeSlowConsumer
		o.mu.closeText = "slow consumer: outbound queue full; resume the session"
		return true
	}
	return false
}

// closeAfter asks the writer to close the websocket with code once what is
// queued now has been written.
func (o *outbound) closeAfter(code int, text string) {
	o.mu.Lock()
	if !o.mu.closeNext {
		o.mu.closeNext, o.mu.closeCode, o.mu.closeText = true, code, text
	}
	o.mu.Unlock()
	o.wake()
}

// pong queues the answer to a ping.
func (o *outbound) pong(data []byte) {
	o.mu.Lock()
	if len(o.mu.pongs) < 16 { // a flood of pings gets some answers, not memory
		o.mu.pongs = append(o.mu.pongs, data)
	}
	o.mu.Unlock()
	o.wake()
}

// take returns the pongs and frames to write and, when the queue is to be
// closed after them, the close code and text.
func (o *outbound) take(buf []wire.Response) (pongs [][]byte, frames []wire.Response, closeCode int, closeText string, closeNow bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pongs = o.mu.pongs
	o.mu.pongs = nil
	frames = append(buf[:0], o.mu.ready...)
	clear(o.mu.ready)
	o.mu.ready = o.mu.ready[:0]
	o.mu.bytes = 0
	return pongs, frames, o.mu.closeCode, o.mu.closeText, o.mu.closeNext
}

func (o *outbound) overflowed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.overflow
}

// frameSize estimates a response's encoded size, for the outbound cap.
func frameSize(r *wire.Response) int {
	n := 160 + len(r.Path) + len(r.Msg) + len(r.Data)*4/3
	for _, c := range r.Children {
		n += len(c) + 3
	}
	n += 64 * len(r.ACL)
	n += 200 * len(r.Results)
	return n
}

// Websocket close codes of our own (4000-4999 are the application's).
const (
	closeSlowConsumer = 4000 // the outbound queue overflowed
	closeSessionMoved = 4001 // the session resumed on another connection
	closeExpired      = 4002 // the session expired
	closeRestored     = 4003 // the server restored a snapshot: resume and re-arm
	closeNoLeader     = 4004 // the server lost its leader: connect to another
	closeServerStop   = 1001 // going away
)
