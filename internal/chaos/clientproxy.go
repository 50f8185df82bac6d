package chaos

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ClientLink is the network between one client and the servers: one TCP
// forwarder per server, so that the harness can silence the client (its
// process "paused": nothing passes, connections stay open) or kill it (its
// connections are cut and new ones refused) without touching the servers.
type ClientLink struct {
	proxies []*tcpProxy
}

// NewClientLink starts a forwarder in front of each of the servers' client
// addresses.
func NewClientLink(targets []string) (*ClientLink, error) {
	l := &ClientLink{}
	for _, t := range targets {
		p, err := newTCPProxy(t)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.proxies = append(l.proxies, p)
	}
	return l, nil
}

// Addrs are the addresses the client connects to instead of the servers'.
func (l *ClientLink) Addrs() []string {
	out := make([]string, len(l.proxies))
	for i, p := range l.proxies {
		out[i] = p.ln.Addr().String()
	}
	return out
}

// Silence stops forwarding in both directions (on) or resumes (off).
func (l *ClientLink) Silence(on bool) {
	for _, p := range l.proxies {
		p.silent.Store(on)
	}
}

// Cut closes every connection and refuses new ones (on), or accepts
// again (off).
func (l *ClientLink) Cut(on bool) {
	for _, p := range l.proxies {
		p.cut(on)
	}
}

// Close stops the forwarders and waits for their goroutines.
func (l *ClientLink) Close() {
	for _, p := range l.proxies {
		p.close()
	}
}

type tcpProxy struct {
	target string
	ln     net.Listener
	silent atomic.Bool
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		conns  map[net.Conn]struct{}
		refuse bool
		closed bool
	}
}

func newTCPProxy(target string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{target: target, ln: ln}
	p.mu.conns = map[net.Conn]struct{}{}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *tcpProxy) cut(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.refuse = on
	if on {
		for c := range p.mu.conns {
			c.Close()
		}
	}
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.mu.closed = true
	for c := range p.mu.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// track registers c, or closes it when refusing.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed || p.mu.refuse {
		c.Close()
		return false
	}
	p.mu.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.mu.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *tcpProxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(down) {
			continue
		}
		p.wg.Go(func() {
			defer p.untrack(down)
			up, err := net.DialTimeout("tcp", p.target, dialTimeout)
			if err != nil {
				return
			}
			if !p.track(up) {
				return
			}
			defer p.untrack(up)
			var wg sync.WaitGroup
			wg.Go(func() { p.pipe(up, down); down.Close() })
			p.pipe(down, up)
			up.Close()
			wg.Wait()
		})
	}
}

// pipe copies src to dst, discarding while silenced.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.silent.Load() {
			_ = dst.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
