package chaos

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The peer protocol as the proxy sees it (server/transport.go): every
// stream starts with a hello frame naming the sender and the receiver;
// frames are a 4-byte big-endian length (of type byte and payload), a type
// byte and a payload.
const (
	frameHello = 1
	frameRaft  = 3

	maxProxyFrame = 256 << 20
	helloTimeout  = 10 * time.Second
	dialTimeout   = 2 * time.Second
	delayQueueLen = 4096
)

// Link is one direction of the traffic between two members: what From
// sends to To.
type Link struct{ From, To uint64 }

func (l Link) String() string { return fmt.Sprintf("%d->%d", l.From, l.To) }

// LinkFault is what the proxy does to a link. The zero value forwards
// everything untouched.
type LinkFault struct {
	// Drop is the probability of dropping each raft message frame (whole
	// frames only: raft tolerates message loss, and the stream stays
	// well-formed). Other frames are never dropped.
	Drop float64
	// Delay and Jitter delay every frame by Delay ± Jitter (uniform), in
	// order: a frame never overtakes the one before it.
	Delay, Jitter time.Duration
	// Blackhole forwards nothing and keeps the stream open: a silent
	// network. A snapshot stream is closed instead (its chunks cannot be
	// dropped one by one).
	Blackhole bool
	// Cut closes the link's streams and refuses new ones.
	Cut bool
}

func (f LinkFault) zero() bool { return f == LinkFault{} }

// LinkStats count what the proxy did on a link.
type LinkStats struct {
	Streams, Forwarded, Dropped, Delayed, Blackholed, Refused int64
}

type linkCounters struct {
	streams, forwarded, dropped, delayed, blackholed, refused atomic.Int64
}

// Net is the fault table of a cluster's peer links, shared by the proxies
// in front of its members.
type Net struct {
	mu struct {
		sync.Mutex
		faults  map[Link]LinkFault
		streams map[Link]map[*proxyStream]struct{}
		rng     *rand.Rand
	}
	counters sync.Map // Link -> *linkCounters
}

// NewNet returns a fault table with no faults; seed drives its random
// drops and delays.
func NewNet(seed uint64) *Net {
	n := &Net{}
	n.mu.faults = map[Link]LinkFault{}
	n.mu.streams = map[Link]map[*proxyStream]struct{}{}
	n.mu.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	return n
}

// Set sets the fault of each link given (the zero fault heals it). Cut
// closes the link's open streams at once.
func (n *Net) Set(f LinkFault, links ...Link) {
	n.mu.Lock()
	var victims []*proxyStream
	for _, l := range links {
		if f.zero() {
			delete(n.mu.faults, l)
		} else {
			n.mu.faults[l] = f
		}
		if f.Cut || f.Blackhole {
			for s := range n.mu.streams[l] {
				if f.Cut || s.snapshot {
					victims = append(victims, s)
				}
			}
		}
	}
	n.mu.Unlock()
	for _, s := range victims {
		s.close()
	}
}

// HealAll removes every fault.
func (n *Net) HealAll() {
	n.mu.Lock()
	n.mu.faults = map[Link]LinkFault{}
	n.mu.Unlock()
}

func (n *Net) fault(l Link) LinkFault {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.faults[l]
}

// chance draws from the shared generator.
func (n *Net) chance(p float64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.rng.Float64() < p
}

func (n *Net) jitter(d, j time.Duration) time.Duration {
	if j <= 0 {
		return d
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return d - j + time.Duration(n.mu.rng.Int64N(int64(2*j)+1))
}

func (n *Net) ctr(l Link) *linkCounters {
	if c, ok := n.counters.Load(l); ok {
		return c.(*linkCounters)
	}
	c, _ := n.counters.LoadOrStore(l, &linkCounters{})
	return c.(*linkCounters)
}

// Stats returns the counters of a link.
func (n *Net) Stats(l Link) LinkStats {
	c := n.ctr(l)
	return LinkStats{Streams: c.streams.Load(), Forwarded: c.forwarded.Load(), Dropped: c.dropped.Load(),
		Delayed: c.delayed.Load(), Blackholed: c.blackholed.Load(), Refused: c.refused.Load()}
}

// Total sums the counters of the given links.
func (n *Net) Total(links ...Link) LinkStats {
	var t LinkStats
	for _, l := range links {
		s := n.Stats(l)
		t.Streams += s.Streams
		t.Forwarded += s.Forwarded
		t.Dropped += s.Dropped
		t.Delayed += s.Delayed
		t.Blackholed += s.Blackholed
		t.Refused += s.Refused
	}
	return t
}

func (n *Net) register(l Link, s *proxyStream) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.faults[l].Cut {
		return false
	}
	if n.mu.streams[l] == nil {
		n.mu.streams[l] = map[*proxyStream]struct{}{}
	}
	n.mu.streams[l][s] = struct{}{}
	return true
}

func (n *Net) unregister(l Link, s *proxyStream) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.mu.streams[l], s)
}

// PeerProxy listens on the peer address a member advertises and forwards
// every stream to the member's real peer address, applying the faults of
// the stream's link. It learns the link from the stream's hello frame.
type PeerProxy struct {
	net    *Net
	to     uint64
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	conns connSet
}

// connSet tracks a proxy's open connections, so that closing (or
// cutting) the proxy closes them all.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	refuse bool // new connections are closed at once (a cut link)
	closed bool // the proxy is closed
}

// track registers c, or closes it when the set is closed or refusing.
func (s *connSet) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.refuse {
		c.Close()
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack forgets and closes c.
func (s *connSet) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// closeAll closes every connection; with final the set refuses new ones
// for good, else as long as refuse is set.
func (s *connSet) closeAll(final, refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = s.closed || final
	s.refuse = refuse
	for c := range s.conns {
		c.Close()
	}
}

// setRefuse refuses new connections (on) and closes the open ones, or
// accepts again.
func (s *connSet) setRefuse(on bool) {
	if on {
		s.closeAll(false, true)
		return
	}
	s.mu.Lock()
	s.refuse = false
	s.mu.Unlock()
}

// NewPeerProxy listens on 127.0.0.1 (a free port) in front of member to,
// whose real peer address is target.
func NewPeerProxy(n *Net, to uint64, target string) (*PeerProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &PeerProxy{net: n, to: to, target: target, ln: ln}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address to advertise.
func (p *PeerProxy) Addr() string { return p.ln.Addr().String() }

// Close stops listening, closes every stream and waits for its goroutines.
func (p *PeerProxy) Close() {
	p.conns.closeAll(true, false)
	p.ln.Close()
	p.wg.Wait()
}

func (p *PeerProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.conns.track(c) {
			return
		}
		p.wg.Go(func() {
			defer p.conns.untrack(c)
			p.serve(c)
		})
	}
}

// readFrame reads one whole frame (header included).
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxProxyFrame {
		return nil, fmt.Errorf("peer frame of %d bytes", n)
	}
	b := make([]byte, 4+n)
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return nil, err
	}
	return b, nil
}

type hello struct {
	Magic    string `json:"magic"`
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	Snapshot bool   `json:"snapshot"`
}

// proxyStream is one proxied peer stream.
type proxyStream struct {
	down, up net.Conn
	snapshot bool
	once     sync.Once
}

func (s *proxyStream) close() {
	s.once.Do(func() {
		s.down.Close()
		s.up.Close()
	})
}

type delayed struct {
	b  []byte
	at time.Time
}

func (p *PeerProxy) serve(down net.Conn) {
	_ = down.SetReadDeadline(time.Now().Add(helloTimeout))
	r := bufio.NewReaderSize(down, 64<<10)
	hb, err := readFrame(r)
	if err != nil || hb[4] != frameHello {
		return
	}
	var h hello
	if err := json.Unmarshal(hb[5:], &h); err != nil {
		return
	}
	_ = down.SetReadDeadline(time.Time{})
	l := Link{From: h.From, To: p.to}
	ctr := p.net.ctr(l)
	if p.net.fault(l).Cut {
		ctr.refused.Add(1)
		return
	}
	up, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		return
	}
	s := &proxyStream{down: down, up: up, snapshot: h.Snapshot}
	defer s.close()
	if !p.net.register(l, s) {
		ctr.refused.Add(1)
		return
	}
	defer p.net.unregister(l, s)
	ctr.streams.Add(1)
	if _, err := up.Write(hb); err != nil {
		return
	}
	var wg sync.WaitGroup
	q := make(chan delayed, delayQueueLen)
	defer func() {
		close(q)
		s.close()
		wg.Wait()
	}()
	// Answers (acks) flow back untouched; the faults of the link are on
	// the sender's frames.
	wg.Go(func() {
		_, _ = io.Copy(down, up)
		s.close()
	})
	wg.Go(func() {
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		for d := range q {
			if w := time.Until(d.at); w > 0 {
				t.Reset(w)
				<-t.C
			}
			if _, err := up.Write(d.b); err != nil {
				// Closing the stream ends the reader, which closes q;
				// drain it so that the reader never blocks on it.
				s.close()
				for range q {
				}
				return
			}
		}
	})
	var last time.Time
	for {
		b, err := readFrame(r)
		if err != nil {
			return
		}
		f := p.net.fault(l)
		switch {
		case f.Cut:
			ctr.refused.Add(1)
			return
		case f.Blackhole:
			ctr.blackholed.Add(1)
			if s.snapshot {
				return
			}
			continue
		case f.Drop > 0 && b[4] == frameRaft && !s.snapshot && p.net.chance(f.Drop):
			ctr.dropped.Add(1)
			continue
		}
		at := time.Now()
		if f.Delay > 0 {
			at = at.Add(p.net.jitter(f.Delay, f.Jitter))
			ctr.delayed.Add(1)
		}
		if at.Before(last) {
			at = last
		}
		last = at
		ctr.forwarded.Add(1)
		q <- delayed{b: b, at: at}
	}
}
