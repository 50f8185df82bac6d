package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/coord-dev/coord/internal/wire"
)

// The peer protocol. A member opens one long-lived TCP stream to each other
// member for the messages it sends them (so a pair of members shares two
// streams, one per direction, as etcd's). A stream starts with a hello
// frame naming the cluster, both members and the sender's data-dir
// incarnation; the receiver answers with an ack frame or refuses and closes.
// Frames are a 4-byte big-endian length, a type byte and a payload.
// Snapshots travel on a separate, short-lived stream of their own, so a
// large state transfer never delays heartbeats and appends.
const (
	peerMagic = "coord-peer/1"

	frameHello      byte = 1 // JSON peerHello
	frameAck        byte = 2 // JSON peerAck
	frameRaft       byte = 3 // proto raftpb.Message
	frameHeartbeats byte = 4 // session liveness: 8-byte session ids
	frameSnapData   byte = 5 // a chunk of the state snapshot stream
	frameSnapEnd    byte = 6 // end of the snapshot stream

	maxPeerFrame   = 256 << 20
	peerQueueLen   = 4096
	peerDialTO     = 2 * time.Second
	peerHelloTO    = 5 * time.Second
	snapChunkBytes = 1 << 20
)

type peerHello struct {
	Magic       string `json:"magic"`
	ClusterID   uint64 `json:"cluster_id"`
	From        uint64 `json:"from"`
	To          uint64 `json:"to"`
	Incarnation uint64 `json:"incarnation"`
	// ToIncarnation is the receiver's data-dir incarnation as the sender's
	// configuration records it (0: unknown).
	ToIncarnation uint64 `json:"to_incarnation,omitempty"`
	Snapshot      bool   `json:"snapshot,omitempty"`
}

type peerAck struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Fatal means the sender must not keep trying: its data dir or cluster
	// is not the one the receiver knows.
	Fatal bool `json:"fatal,omitempty"`
}

// transport carries raft messages and session liveness between members.
type transport struct {
	s     *Server
	ln    net.Listener
	wg    sync.WaitGroup
	stopc chan struct{}

	unreachable chan uint64       // drained by the raft goroutine
	snapStatus  chan snapshotDone // drained by the raft goroutine

	// dropped is a test hook: traffic to and from these members is dropped.
	dropped atomic.Pointer[map[uint64]bool]

	mu struct {
		sync.Mutex
		peers   map[uint64]*peer
		inbound map[net.Conn]struct{}
		stopped bool
	}
}

type snapshotDone struct {
	to     uint64
	status raft.SnapshotStatus
}

func newTransport(s *Server) *transport {
	t := &transport{
		s:           s,
		stopc:       make(chan struct{}),
		unreachable: make(chan uint64, 1024),
		snapStatus:  make(chan snapshotDone, 64),
	}
	t.mu.peers = map[uint64]*peer{}
	t.mu.inbound = map[net.Conn]struct{}{}
	return t
}

func (t *transport) start(ln net.Listener) {
	t.ln = ln
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.mu.Lock()
			if t.mu.stopped {
				t.mu.Unlock()
				c.Close()
				return
			}
			t.mu.inbound[c] = struct{}{}
			t.mu.Unlock()
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				defer func() {
					t.mu.Lock()
					delete(t.mu.inbound, c)
					t.mu.Unlock()
					c.Close()
				}()
				t.serveInbound(c)
			}()
		}
	}()
}

func (t *transport) stop() {
	t.mu.Lock()
	if t.mu.stopped {
		t.mu.Unlock()
		return
	}
	t.mu.stopped = true
	close(t.stopc)
	for c := range t.mu.inbound {
		c.Close()
	}
	for _, p := range t.mu.peers {
		p.close()
	}
	t.mu.Unlock()
	if t.ln != nil {
		_ = t.ln.Close()
	}
	t.wg.Wait()
}

func (t *transport) isDropped(id uint64) bool {
	d := t.dropped.Load()
	return d != nil && (*d)[id]
}

// send queues raft messages to their members without ever blocking the
// raft goroutine: a full queue drops the message (raft retries) and reports
// the peer unreachable.
func (t *transport) send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		if to == t.s.id || to == 0 {
			continue
		}
		p := t.peer(to)
		if p == nil || t.isDropped(to) {
			t.reportUnreachable(to)
			if m.GetType() == raftpb.MsgSnap {
				t.reportSnapshot(to, raft.SnapshotFailure)
			}
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			p.sendSnapshot(m)
			continue
		}
		select {
		case p.q <- outFrame{typ: frameRaft, msg: m}:
		default:
			t.reportUnreachable(to)
		}
	}
}

// sendHeartbeats sends session liveness to a member (the leader).
func (t *transport) sendHeartbeats(to uint64, ids []wire.SessionID) {
	p := t.peer(to)
	if p == nil || len(ids) == 0 || t.isDropped(to) {
		return
	}
	buf := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(buf[8*i:], uint64(id))
	}
	select {
	case p.q <- outFrame{typ: frameHeartbeats, payload: buf}:
	default:
	}
}

func (t *transport) reportUnreachable(id uint64) {
	select {
	case t.unreachable <- id:
	default:
	}
}

func (t *transport) reportSnapshot(id uint64, st raft.SnapshotStatus) {
	select {
	case t.snapStatus <- snapshotDone{id, st}:
	default:
	}
}

// peer returns the sender to member id, starting it on first use, or nil
// when id is not a member with a known address.
func (t *transport) peer(id uint64) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.stopped {
		return nil
	}
	p := t.mu.peers[id]
	addr := t.s.peerAddr(id)
	if addr == "" {
		return p
	}
	if p != nil {
		p.setAddr(addr)
		return p
	}
	p = &peer{t: t, id: id, q: make(chan outFrame, peerQueueLen), snapc: make(chan *raftpb.Message, 1), stopc: make(chan struct{})}
	p.setAddr(addr)
	t.mu.peers[id] = p
	t.wg.Add(2)
	go func() { defer t.wg.Done(); p.run() }()
	go func() { defer t.wg.Done(); p.runSnapshots() }()
	return p
}

// removePeer stops the sender to a removed member.
func (t *transport) removePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.mu.peers[id]; p != nil {
		p.close()
		delete(t.mu.peers, id)
	}
}

type outFrame struct {
	typ     byte
	msg     *raftpb.Message
	payload []byte
}

// peer is the sending side of the stream to one member.
type peer struct {
	t     *transport
	id    uint64
	q     chan outFrame
	snapc chan *raftpb.Message
	stopc chan struct{}
	once  sync.Once
	addr  atomic.Value // string
}

func (p *peer) setAddr(a string) { p.addr.Store(a) }
func (p *peer) getAddr() string  { a, _ := p.addr.Load().(string); return a }
func (p *peer) close()           { p.once.Do(func() { close(p.stopc) }) }

// run keeps a stream to the member open and writes queued frames to it,
// redialling with backoff and jitter.
func (p *peer) run() {
	backoff := 50 * time.Millisecond
	for {
		conn, err := p.t.dial(p.getAddr(), p.id, false)
		if err != nil {
			if errors.Is(err, errFatalPeer) {
				p.t.s.fatal(err)
				return
			}
			p.t.s.log.Debug("peer dial failed", "peer", p.id, "addr", p.getAddr(), "err", err)
			p.t.reportUnreachable(p.id)
			select {
			case <-p.stopc:
				return
			case <-time.After(backoff/2 + rand.N(backoff)):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		p.t.s.log.Debug("peer stream up", "peer", p.id, "addr", p.getAddr())
		err = p.write(conn)
		conn.Close()
		if err == nil {
			return // stopped
		}
		p.t.s.log.Debug("peer stream down", "peer", p.id, "err", err)
		p.t.reportUnreachable(p.id)
	}
}

func (p *peer) write(conn net.Conn) error {
	w := bufio.NewWriterSize(conn, 64<<10)
	// A reader on the other side never writes after the ack; notice a
	// closed connection promptly by reading.
	broken := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(broken)
	}()
	var buf []byte
	for {
		var f outFrame
		select {
		case f = <-p.q:
		case <-p.stopc:
			return nil
		case <-broken:
			return errors.New("stream closed by peer")
		}
		for {
			if p.t.isDropped(p.id) {
				// The test hook drops the frame as a cut link would.
			} else {
				var err error
				if buf, err = encodeFrame(buf[:0], f); err != nil {
					return err
				}
				_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := w.Write(buf); err != nil {
					return err
				}
			}
			select {
			case f = <-p.q:
				continue
			default:
			}
			break
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

func encodeFrame(buf []byte, f outFrame) ([]byte, error) {
	payload := f.payload
	if f.msg != nil {
		var err error
		payload, err = proto.Marshal(f.msg)
		if err != nil {
			return nil, err
		}
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)+1))
	buf = append(buf, f.typ)
	return append(buf, payload...), nil
}

func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	return readFrameMax(r, buf, maxPeerFrame)
}

// maxControlFrame bounds hellos and acks: what an unauthenticated
// connection may make the server read.
const maxControlFrame = 64 << 10

// readFrameMax reads one frame of at most max bytes. Memory grows with the
// bytes that arrive, not with the length the header claims, so a peer
// that announces a large frame and stalls costs little.
func readFrameMax(r io.Reader, buf []byte, max uint32) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > max {
		return 0, nil, fmt.Errorf("peer frame of %d bytes (at most %d)", n, max)
	}
	const step = 1 << 20
	buf = buf[:0]
	for len(buf) < int(n) {
		k := min(int(n)-len(buf), step)
		if cap(buf)-len(buf) < k {
			buf = slices.Grow(buf, k)
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+k]); err != nil {
			return 0, nil, err
		}
		buf = buf[:len(buf)+k]
	}
	return buf[0], buf[1:], nil
}

func writeJSONFrame(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf, _ := encodeFrame(nil, outFrame{typ: typ, payload: b})
	_, err = w.Write(buf)
	return err
}

var errFatalPeer = errors.New("refused by the cluster")

// dial opens a stream to a member and completes the hello exchange.
func (t *transport) dial(addr string, to uint64, snapshot bool) (net.Conn, error) {
	if addr == "" {
		return nil, fmt.Errorf("no address for member %d", to)
	}
	d := net.Dialer{Timeout: peerDialTO}
	ctx, cancel := context.WithTimeout(context.Background(), peerDialTO)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(peerHelloTO))
	hello := peerHello{Magic: peerMagic, ClusterID: t.s.clusterID(), From: t.s.id, To: to,
		Incarnation: t.s.incarnation, Snapshot: snapshot}
	if m := t.s.members.Load(); m != nil {
		if x, ok := m.member(to); ok {
			hello.ToIncarnation = x.Incarnation
		}
	}
	if err := writeJSONFrame(conn, frameHello, hello); err != nil {
		conn.Close()
		return nil, err
	}
	typ, payload, err := readFrameMax(conn, nil, maxControlFrame)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	var ack peerAck
	if typ != frameAck || json.Unmarshal(payload, &ack) != nil {
		conn.Close()
		return nil, errors.New("hello: bad answer")
	}
	if !ack.OK {
		conn.Close()
		if ack.Fatal {
			return nil, fmt.Errorf("%w: member %d at %s: %s", errFatalPeer, to, addr, ack.Error)
		}
		return nil, fmt.Errorf("member %d refused the stream: %s", to, ack.Error)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// serveInbound validates a stream's hello and then delivers what it carries.
func (t *transport) serveInbound(conn net.Conn) {
	s := t.s
	_ = conn.SetReadDeadline(time.Now().Add(peerHelloTO))
	typ, payload, err := readFrameMax(conn, nil, maxControlFrame)
	if err != nil || typ != frameHello {
		return
	}
	var h peerHello
	if err := json.Unmarshal(payload, &h); err != nil || h.Magic != peerMagic {
		_ = writeJSONFrame(conn, frameAck, peerAck{Error: "not a coord peer", Fatal: true})
		return
	}
	if h.ToIncarnation != 0 && h.ToIncarnation != s.incarnation && h.ClusterID == s.clusterID() && h.To == s.id {
		// The cluster knows this member id with another data dir: this one
		// was wiped or replaced and would forget its votes.
		err := fmt.Errorf("%w: member %d's data dir was wiped or replaced: the cluster knows it with incarnation %x, this data dir is %x; "+
			"remove member %d from the cluster and add this server back as a new member", errFatalPeer, s.id, h.ToIncarnation, s.incarnation, s.id)
		_ = writeJSONFrame(conn, frameAck, peerAck{Error: "receiver's data dir was wiped", Fatal: false})
		s.fatal(err)
		return
	}
	if reason, fatal := s.checkPeer(&h); reason != "" {
		s.log.Warn("refusing a peer stream", "from", h.From, "remote", conn.RemoteAddr().String(), "reason", reason)
		_ = writeJSONFrame(conn, frameAck, peerAck{Error: reason, Fatal: fatal})
		return
	}
	if err := writeJSONFrame(conn, frameAck, peerAck{OK: true}); err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if h.Snapshot {
		t.receiveSnapshot(conn, h.From)
		return
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	var buf []byte
	for {
		typ, payload, err := readFrame(r, buf)
		if err != nil {
			return
		}
		buf = payload[:0:cap(payload)]
		if t.isDropped(h.From) {
			continue
		}
		switch typ {
		case frameRaft:
			m := &raftpb.Message{}
			if err := proto.Unmarshal(payload, m); err != nil {
				s.log.Warn("bad raft message from peer", "from", h.From, "err", err)
				return
			}
			select {
			case s.recvc <- m:
			case <-t.stopc:
				return
			}
		case frameHeartbeats:
			ids := make([]wire.SessionID, 0, len(payload)/8)
			for i := 0; i+8 <= len(payload); i += 8 {
				ids = append(ids, wire.SessionID(binary.BigEndian.Uint64(payload[i:])))
			}
			s.peerHeartbeats(ids)
		}
	}
}

// sendSnapshot hands a MsgSnap to the member's snapshot sender; one
// snapshot at a time per member, raft retries the rest.
func (p *peer) sendSnapshot(m *raftpb.Message) {
	select {
	case p.snapc <- m:
	default:
		p.t.reportSnapshot(p.id, raft.SnapshotFailure)
	}
}

func (p *peer) runSnapshots() {
	for {
		select {
		case <-p.stopc:
			return
		case m := <-p.snapc:
			err := p.streamSnapshot(m)
			st := raft.SnapshotFinish
			if err != nil {
				p.t.s.log.Warn("sending snapshot failed", "peer", p.id, "err", err)
				st = raft.SnapshotFailure
			} else {
				p.t.s.log.Info("snapshot sent", "peer", p.id, "index", m.GetSnapshot().GetMetadata().GetIndex())
			}
			p.t.reportSnapshot(p.id, st)
		}
	}
}

// streamSnapshot sends the MsgSnap and then the state machine's snapshot,
// taken now (so at an index at or after the message's), in chunks.
func (p *peer) streamSnapshot(m *raftpb.Message) error {
	conn, err := p.t.dial(p.getAddr(), p.id, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 256<<10)
	buf, err := encodeFrame(nil, outFrame{typ: frameRaft, msg: m})
	if err != nil {
		return err
	}
	if _, err := w.Write(buf); err != nil {
		return err
	}
	cw := &chunkWriter{w: w, conn: conn, midway: func() { p.t.s.crashPoint(CrashSnapshotSendMid) }}
	if _, err := p.t.s.state.Snapshot(cw); err != nil {
		return err
	}
	if err := cw.flush(); err != nil {
		return err
	}
	buf, _ = encodeFrame(buf[:0], outFrame{typ: frameSnapEnd})
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	// Wait for the receiver to have restored it.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
	typ, payload, err := readFrameMax(conn, nil, maxControlFrame)
	if err != nil {
		return err
	}
	var ack peerAck
	if typ != frameAck || json.Unmarshal(payload, &ack) != nil || !ack.OK {
		return fmt.Errorf("snapshot refused: %s", ack.Error)
	}
	return nil
}

// chunkWriter frames the snapshot stream into frameSnapData chunks.
type chunkWriter struct {
	w      *bufio.Writer
	conn   net.Conn
	buf    []byte
	chunks int
	midway func() // called after the first chunk went out (a crash point)
}

func (c *chunkWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), snapChunkBytes-len(c.buf))
		c.buf = append(c.buf, b[:k]...)
		b = b[k:]
		if len(c.buf) == snapChunkBytes {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	hdr := binary.BigEndian.AppendUint32(nil, uint32(len(c.buf)+1))
	hdr = append(hdr, frameSnapData)
	if _, err := c.w.Write(hdr); err != nil {
		return err
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return err
	}
	c.buf = c.buf[:0]
	if c.chunks++; c.chunks == 1 && c.midway != nil {
		if err := c.w.Flush(); err != nil {
			return err
		}
		c.midway()
	}
	return nil
}

// receiveSnapshot reads a MsgSnap and the state stream into a file,
// restores the state machine from it, then hands the MsgSnap to raft.
func (t *transport) receiveSnapshot(conn net.Conn, from uint64) {
	s := t.s
	r := bufio.NewReaderSize(conn, 256<<10)
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	typ, payload, err := readFrame(r, nil)
	if err != nil || typ != frameRaft {
		return
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(payload, m); err != nil || m.GetType() != raftpb.MsgSnap {
		return
	}
	f, err := os.CreateTemp(s.cfg.DataDir, stagedSnapshots)
	if err != nil {
		s.log.Error("snapshot temp file", "err", err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var buf []byte
	for {
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
		typ, payload, err := readFrame(r, buf)
		if err != nil {
			s.log.Warn("snapshot stream broken", "from", from, "err", err)
			return
		}
		buf = payload[:0:cap(payload)]
		if typ == frameSnapEnd {
			break
		}
		if typ != frameSnapData {
			return
		}
		if _, err := w.Write(payload); err != nil {
			s.log.Error("snapshot temp file", "err", err)
			return
		}
	}
	if err := w.Flush(); err != nil {
		s.log.Error("snapshot temp file", "err", err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return
	}
	s.crashPoint(CrashSnapshotReceived)
	switch err := s.restoreState(f); {
	case errors.Is(err, errSnapshotBehind):
		// The state is already past the snapshot (it includes everything
		// up to the snapshot's raft index): keep it, and let raft's log
		// take the snapshot's place.
		s.log.Info("snapshot not newer than the state: kept the state", "from", from, "err", err,
			"raft_index", m.GetSnapshot().GetMetadata().GetIndex())
	case err != nil:
		s.log.Error("restoring a snapshot failed", "from", from, "err", err)
		_ = writeJSONFrame(conn, frameAck, peerAck{Error: err.Error()})
		return
	default:
		s.log.Info("state restored from a snapshot", "from", from, "applied", s.state.AppliedIndex(),
			"raft_index", m.GetSnapshot().GetMetadata().GetIndex())
	}
	s.crashPoint(CrashAfterRestore)
	select {
	case s.recvc <- m:
	case <-t.stopc:
		return
	}
	_ = writeJSONFrame(conn, frameAck, peerAck{OK: true})
}

// stagedSnapshots names the files received snapshots are staged in, in the
// data dir (a pattern for os.CreateTemp and filepath.Glob).
const stagedSnapshots = "snapshot-*.tmp"
