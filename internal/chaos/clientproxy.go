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
	conns  connSet
}

func newTCPProxy(target string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{target: target, ln: ln}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *tcpProxy) cut(on bool) { p.conns.setRefuse(on) }

func (p *tcpProxy) close() {
	p.conns.closeAll(true, false)
	p.ln.Close()
	p.wg.Wait()
}

func (p *tcpProxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.conns.track(down) {
			continue
		}
		p.wg.Go(func() {
			defer p.conns.untrack(down)
			up, err := net.DialTimeout("tcp", p.target, dialTimeout)
			if err != nil {
				return
			}
			if !p.conns.track(up) {
				return
			}
			defer p.conns.untrack(up)
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
