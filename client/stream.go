package client

import "sync"

// streamBuffer is the capacity of a stream's channel.
const streamBuffer = 64

// stream delivers values in order to a channel without ever blocking the
// producer: values wait in an unbounded queue until a pump goroutine can hand
// them to the channel. It is what keeps a slow consumer of a persistent watch
// or of the state events from stalling the connection's reader goroutine.
//
// The price is memory: a consumer that stops reading makes the queue grow
// without bound until it reads again or the stream is stopped.
//
// push and finish may be called with Client.mu held; stream.mu is a leaf lock.
type stream[T any] struct {
	out   chan T
	wake  chan struct{} // capacity 1: "the queue or done changed"
	abort chan struct{} // closed by stop

	mu struct {
		sync.Mutex
		queue    []T
		head     int  // queue[head:] is pending
		finished bool // no more pushes; close out once drained
		stopped  bool
	}
}

func newStream[T any]() *stream[T] {
	return &stream[T]{
		out:   make(chan T, streamBuffer),
		wake:  make(chan struct{}, 1),
		abort: make(chan struct{}),
	}
}

// push queues v; it never blocks. Pushes after finish or stop are dropped.
func (s *stream[T]) push(v T) {
	s.mu.Lock()
	if s.mu.finished || s.mu.stopped {
		s.mu.Unlock()
		return
	}
	s.mu.queue = append(s.mu.queue, v)
	s.mu.Unlock()
	s.signal()
}

// finish makes the pump close the channel once every queued value has been
// delivered.
func (s *stream[T]) finish() {
	s.mu.Lock()
	s.mu.finished = true
	s.mu.Unlock()
	s.signal()
}

// stop makes the pump close the channel at once, dropping what is queued.
func (s *stream[T]) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.stopped {
		s.mu.stopped = true
		s.mu.queue = nil
		close(s.abort)
	}
}

func (s *stream[T]) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next returns the next queued value, or ok false with closeNow true when the
// channel must be closed.
func (s *stream[T]) next() (v T, ok, closeNow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.stopped {
		return v, false, true
	}
	if s.mu.head < len(s.mu.queue) {
		v = s.mu.queue[s.mu.head]
		var zero T
		s.mu.queue[s.mu.head] = zero
		s.mu.head++
		if s.mu.head == len(s.mu.queue) {
			// Drained: let the backing array go, so a burst does not pin
			// its memory for the stream's lifetime.
			s.mu.queue, s.mu.head = nil, 0
		}
		return v, true, false
	}
	return v, false, s.mu.finished
}

// run is the pump. It returns, closing the channel, after finish once the
// queue is drained, after stop, or when cancel is closed.
func (s *stream[T]) run(cancel <-chan struct{}) {
	defer close(s.out)
	for {
		v, ok, closeNow := s.next()
		if closeNow {
			return
		}
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.abort:
				return
			case <-cancel:
				return
			}
		}
		select {
		case s.out <- v:
		case <-s.abort:
			return
		case <-cancel:
			return
		}
	}
}
