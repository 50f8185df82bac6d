// Package faultproxy is a fault-injecting TCP proxy between a client and
// one coordd, for tests: it can partition a client from the cluster (its
// session then really expires on the servers) or cut its connection.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards every TCP connection accepted on Addr to target.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		partitioned bool
		closed      bool
		pairs       map[*proxyPair]struct{}
		held        map[net.Conn]struct{} // accepted while partitioned
	}
}

// proxyPair is one forwarded connection.
type proxyPair struct {
	down, up net.Conn
	// silenced is set (under Proxy.mu) when a partition cut the
	// upstream side: the client's side stays open but hears nothing.
	silenced bool
}

// New starts a proxy to target; it is closed when the test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.mu.pairs = make(map[*proxyPair]struct{})
	p.mu.held = make(map[net.Conn]struct{})
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		switch {
		case p.mu.closed:
			down.Close()
		case p.mu.partitioned:
			// Accept, then say nothing: the client's handshake hangs
			// until its dial timeout, as across a real partition.
			p.mu.held[down] = struct{}{}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(io.Discard, down)
				down.Close()
				p.mu.Lock()
				delete(p.mu.held, down)
				p.mu.Unlock()
			}()
		default:
			p.wg.Add(1)
			go p.forward(down)
		}
		p.mu.Unlock()
	}
}

// forward dials the target and copies both ways until either side ends.
func (p *Proxy) forward(down net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		down.Close()
		return
	}
	pr := &proxyPair{down: down, up: up}
	p.mu.Lock()
	if p.mu.closed || p.mu.partitioned {
		p.mu.Unlock()
		up.Close()
		down.Close()
		return
	}
	p.mu.pairs[pr] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(down, up) // server to client
	}()
	_, _ = io.Copy(up, down) // client to server
	up.Close()
	<-done
	p.mu.Lock()
	silenced := pr.silenced && !p.mu.closed
	p.mu.Unlock()
	if silenced {
		// Partitioned: keep the client's side open and unanswered until
		// the client gives up on it or the proxy closes.
		_, _ = io.Copy(io.Discard, down)
	}
	down.Close()
	p.mu.Lock()
	delete(p.mu.pairs, pr)
	p.mu.Unlock()
}

// Partition cuts the client off the server: established connections lose
// their server side (the server sees them close) while the client's side
// stays open but silent, and new connections are accepted but never
// forwarded. Nothing the client sends reaches the server until Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.partitioned = true
	for pr := range p.mu.pairs {
		pr.silenced = true
		pr.up.Close()
	}
}

// Heal ends a partition: the connections held silent are closed, so the
// client reconnects at once, and new connections are forwarded again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.partitioned = false
	for c := range p.mu.held {
		c.Close()
	}
	for pr := range p.mu.pairs {
		if pr.silenced {
			pr.down.Close()
		}
	}
}

// Cut closes every established connection on both sides, as a reset does;
// new connections are forwarded as usual.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pr := range p.mu.pairs {
		pr.up.Close()
		pr.down.Close()
	}
}

// close stops the proxy and waits for its goroutines.
func (p *Proxy) close() {
	p.mu.Lock()
	p.mu.closed = true
	p.ln.Close()
	for pr := range p.mu.pairs {
		pr.up.Close()
		pr.down.Close()
	}
	for c := range p.mu.held {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
