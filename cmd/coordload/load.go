package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/coord-dev/coord/internal/wire"
)

// kind is what a load request does.
type kind uint8

const (
	kindAuto   kind = iota // chosen by the workload's mix (get or set)
	kindGet                // get of a pool node
	kindSet                // set of a pool node
	kindCreate             // create of an ephemeral_sequential node
	kindDelete             // delete of the node just created
	numKinds
)

var kindOps = [numKinds]string{"", "get", "set", "create", "delete"}

// item is a credit to send one request; the reader hands it back with
// what the next request of the session must be.
type item struct {
	kind  kind
	path  string // delete: the node to delete
	start int64  // delete: when its create was sent
}

// slot is the xid→send-time table entry of one request in flight. The writer
// fills it before sending and the reader reads it on the answer; the network
// orders the two, so the fields are atomics to keep the race detector (which
// cannot see that order) informed.
type slot struct {
	xid, sent, pairStart atomic.Int64
	kind                 atomic.Uint32
}

// loadRun is the state shared (read-only once started) by the sessions of
// one closed-loop or pipelined run.
type loadRun struct {
	cfg      *Config
	epoch    time.Time
	winStart int64 // ns since epoch
	winEnd   int64
	codes    map[string]wire.Code

	getTpl, setTpl [][]byte // per key: the frame after `{"xid":N`
	createTpl      []byte
	writePct       int // share of sets among auto requests
}

func (r *loadRun) now() int64 { return int64(time.Since(r.epoch)) }

// loadSession is one session of a load run with its writer and reader.
type loadSession struct {
	*session
	r       *loadRun
	credits chan item
	ring    []slot
	mask    int64
	rng     *rand.Rand
	wbuf    []byte // the frame being written
	tbuf    []byte // a delete's tail
	sent    atomic.Int64
	recv    atomic.Int64
	dead    chan struct{} // closed when the reader returns

	// Owned by the reader until dead is closed.
	hist   [numKinds]histogram
	ops    [numKinds]uint64
	pairs  histogram
	errs   errTally
	closed bool // the close request was answered
}

func kvPath(prefix string, k int) string { return fmt.Sprintf("%s/kv/k%06d", prefix, k) }

func newLoadRun(cfg *Config) *loadRun {
	r := &loadRun{cfg: cfg, codes: codeTable()}
	switch cfg.Workload {
	case "write":
		r.writePct = 100
	case "mixed":
		r.writePct = cfg.WritePct
	}
	data := base64.StdEncoding.EncodeToString(value(cfg.ValueBytes))
	local := ""
	if cfg.Workload == "read-local" {
		local = `,"local":true`
	}
	for k := range cfg.Keys {
		p := strconv.Quote(kvPath(cfg.Prefix, k))
		r.getTpl = append(r.getTpl, []byte(`,"op":"get","path":`+p+local+`}`))
		r.setTpl = append(r.setTpl, []byte(`,"op":"set","path":`+p+`,"data":"`+data+`","version":-1}`))
	}
	r.createTpl = []byte(`,"op":"create","path":` + strconv.Quote(cfg.Prefix+"/eseq/n-") + `,"mode":"ephemeral_sequential"}`)
	return r
}

// value returns n bytes of pseudo-random data (the same in every run).
func value(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// setupTree creates the nodes a workload needs (existing ones are reused).
func setupTree(ctx context.Context, cfg *Config) error {
	s, err := dial(ctx, cfg.Servers[0], dialOptions{readBuf: 64 << 10, writeBuf: 64 << 10, timeoutMs: cfg.SessionTimeout.Milliseconds()})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer s.closeSync(5 * time.Second)
	reqs := []wire.Request{{Op: wire.OpCreate, Path: cfg.Prefix}}
	switch cfg.Workload {
	case "write", "read", "read-local", "mixed":
		reqs = append(reqs, wire.Request{Op: wire.OpCreate, Path: cfg.Prefix + "/kv"})
		v := value(cfg.ValueBytes)
		for k := range cfg.Keys {
			reqs = append(reqs, wire.Request{Op: wire.OpCreate, Path: kvPath(cfg.Prefix, k), Data: v})
		}
	case "ephemeral-seq":
		reqs = append(reqs, wire.Request{Op: wire.OpCreate, Path: cfg.Prefix + "/eseq"})
	case "watch-fanout":
		reqs = append(reqs, wire.Request{Op: wire.OpCreate, Path: cfg.Prefix + "/watch"},
			wire.Request{Op: wire.OpCreate, Path: fanoutPath(cfg), Data: value(cfg.ValueBytes)})
	}
	_ = s.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	rs, err := s.call(reqs)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	for i, r := range rs {
		if r.Err != wire.OK && r.Err != wire.NodeExists {
			return fmt.Errorf("setup: create %s: %s %s", reqs[i].Path, r.Err, r.Msg)
		}
	}
	return nil
}

// dialAll opens n sessions spread round-robin over the servers, a few at a
// time; on failure it closes those it opened.
func dialAll(ctx context.Context, cfg *Config, n int, o dialOptions) ([]*session, error) {
	out := make([]*session, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			out[i], errs[i] = dial(dctx, cfg.Servers[i%len(cfg.Servers)], o)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, s := range out {
				if s != nil {
					s.ws.Close()
				}
			}
			return nil, fmt.Errorf("session %d of %d: %w", i+1, n, err)
		}
	}
	return out, nil
}

// runLoad runs write, read, read-local, mixed and ephemeral-seq: every
// session keeps cfg.Pipeline requests in flight for warmup+duration.
func runLoad(ctx context.Context, cfg *Config) (*Result, error) {
	if err := setupTree(ctx, cfg); err != nil {
		return nil, err
	}
	r := newLoadRun(cfg)
	ringSize := 1
	for ringSize < cfg.Pipeline {
		ringSize <<= 1
	}
	sess, err := dialAll(ctx, cfg, cfg.Sessions, dialOptions{readBuf: 64 << 10, writeBuf: 16 << 10, timeoutMs: cfg.SessionTimeout.Milliseconds()})
	if err != nil {
		return nil, err
	}
	// A sync first, so that a session on a lagging follower sees the setup
	// (a local read there could otherwise answer NoNode).
	for _, s := range sess {
		_ = s.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		rs, err := s.call([]wire.Request{{Op: wire.OpSync, Path: cfg.Prefix}})
		if err == nil && rs[0].Err != wire.OK {
			err = fmt.Errorf("sync: %s %s", rs[0].Err, rs[0].Msg)
		}
		_ = s.ws.SetReadDeadline(time.Time{})
		if err != nil {
			for _, s := range sess {
				s.ws.Close()
			}
			return nil, fmt.Errorf("session on %s: %w", s.addr, err)
		}
	}
	ls := make([]*loadSession, len(sess))
	for i, s := range sess {
		ls[i] = &loadSession{
			session: s, r: r,
			credits: make(chan item, cfg.Pipeline),
			ring:    make([]slot, ringSize),
			mask:    int64(ringSize - 1),
			rng:     rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			dead:    make(chan struct{}),
			errs:    errTally{},
		}
	}

	r.epoch = time.Now()
	r.winStart = int64(cfg.Warmup)
	r.winEnd = int64(cfg.Warmup + cfg.Duration)
	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	first := item{}
	if cfg.Workload == "ephemeral-seq" {
		first = item{kind: kindCreate}
	}
	for _, l := range ls {
		for range cfg.Pipeline {
			l.credits <- first
		}
		readers.Go(l.runReader)
		writers.Go(func() { l.runWriter(stop) })
	}

	meter := newCPUMeter(cfg)
	var runErr error
	if runErr = sleepUntil(ctx, r.epoch.Add(cfg.Warmup)); runErr == nil {
		meter.start()
		runErr = sleepUntil(ctx, r.epoch.Add(cfg.Warmup+cfg.Duration))
		meter.stop()
	}
	close(stop)
	writers.Wait()

	// Drain: every request sent gets its answer (or its session died).
	deadline := time.Now().Add(10 * time.Second)
	for _, l := range ls {
		for l.recv.Load() < l.sent.Load() && time.Now().Before(deadline) {
			select {
			case <-l.dead:
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
	}
	for _, l := range ls {
		_ = l.sendClose()
	}
	closeTimer := time.NewTimer(5 * time.Second)
	for _, l := range ls {
		select {
		case <-l.dead:
		case <-closeTimer.C:
		}
		l.ws.Close()
	}
	readers.Wait()

	res := newResult(cfg)
	res.Pipeline = cfg.Pipeline
	res.WindowS = cfg.Duration.Seconds()
	var total, pairs histogram
	var byKind [numKinds]histogram
	for _, l := range ls {
		for k := range numKinds {
			byKind[k].merge(&l.hist[k])
			total.merge(&l.hist[k])
		}
		pairs.merge(&l.pairs)
		res.addErrors(l.errs)
		if n := l.sent.Load() - l.recv.Load(); n > 0 {
			res.addError("unanswered", uint64(n), "no answer within 10s of the end")
		}
		if !l.closed {
			res.addError("close_unanswered", 1, "the close request got no answer")
		}
	}
	for k := kindGet; k < numKinds; k++ {
		if byKind[k].n > 0 {
			res.ByOp = append(res.ByOp, opStats(kindOps[k], &byKind[k], res.WindowS))
		}
	}
	if cfg.Workload == "ephemeral-seq" {
		res.Unit = "create+delete pairs"
		res.setMain(&pairs)
	} else {
		res.setMain(&total)
	}
	meter.report(res)
	return res, runErr
}

// sleepUntil waits until t or ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter sends a request for every credit until stop, coalescing the
// frames of credits that are ready together into one write. It pings the
// server if it has sent nothing for a third of the session timeout.
func (l *loadSession) runWriter(stop <-chan struct{}) {
	ping := time.NewTicker(max(l.timeout/3, 100*time.Millisecond))
	defer ping.Stop()
	wrote := false
	for {
		var it item
		select {
		case <-stop:
			return
		case <-l.dead:
			return
		case <-ping.C:
			if !wrote {
				_ = l.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			}
			wrote = false
			continue
		case it = <-l.credits:
		}
		l.bc.hold()
		for {
			if err := l.send(it); err != nil {
				_ = l.bc.flush()
				return // the reader sees the socket fail and records it
			}
			select {
			case it = <-l.credits:
				continue
			default:
			}
			break
		}
		if err := l.bc.flush(); err != nil {
			return
		}
		wrote = true
	}
}

// send encodes and writes one request: `{"xid":N` and a pre-encoded tail.
func (l *loadSession) send(it item) error {
	r := l.r
	k := it.kind
	var tail []byte
	switch k {
	case kindAuto:
		key := l.rng.IntN(len(r.getTpl))
		if r.writePct > 0 && l.rng.IntN(100) < r.writePct {
			k, tail = kindSet, r.setTpl[key]
		} else {
			k, tail = kindGet, r.getTpl[key]
		}
	case kindCreate:
		tail = r.createTpl
	case kindDelete:
		l.tbuf = append(append(append(l.tbuf[:0], `,"op":"delete","path":"`...), it.path...), `","version":-1}`...)
		tail = l.tbuf
	}
	l.xid++
	b := append(l.wbuf[:0], `{"xid":`...)
	b = strconv.AppendInt(b, l.xid, 10)
	b = append(b, tail...)
	l.wbuf = b
	sl := &l.ring[l.xid&l.mask]
	now := r.now()
	sl.xid.Store(l.xid)
	sl.kind.Store(uint32(k))
	sl.sent.Store(now)
	if k == kindDelete {
		sl.pairStart.Store(it.start)
	} else {
		sl.pairStart.Store(now)
	}
	l.sent.Add(1)
	return l.writeFrame(b)
}

// runReader matches answers to the slots, records latencies inside the
// window and errors always, and hands back a credit per answer.
func (l *loadSession) runReader() {
	defer close(l.dead)
	r := l.r
	for {
		b, err := l.readFrame()
		if err != nil {
			if !l.closing.Load() || !errClosedByPeer(err) {
				l.errs.add("conn_lost", 1, err.Error())
			}
			return
		}
		h, ok := parseHead(b, r.codes)
		if !ok {
			full, err := wire.DecodeResponse(b)
			if err != nil {
				l.errs.add("bad_frame", 1, err.Error())
				continue
			}
			h = head{xid: full.Xid, code: full.Err}
		}
		if h.xid < 0 {
			ev, _ := wire.DecodeResponse(b)
			if ev.Type == "session" {
				l.errs.add("session_"+ev.State, 1, "")
				continue
			}
			l.errs.add("unexpected_event", 1, string(b))
			continue
		}
		if l.closing.Load() && h.xid == l.closeXid.Load() {
			if h.code != wire.OK {
				l.errs.add("close_"+string(h.code), 1, "")
			}
			l.closed = true
			return
		}
		sl := &l.ring[h.xid&l.mask]
		if sl.xid.Load() != h.xid {
			l.errs.add("xid_mismatch", 1, fmt.Sprintf("answer to xid %d, expected %d", h.xid, sl.xid.Load()))
			return
		}
		now := r.now()
		k := kind(sl.kind.Load())
		inWin := now >= r.winStart && now < r.winEnd
		var next item
		if h.code != wire.OK {
			msg := ""
			if full, err := wire.DecodeResponse(b); err == nil {
				msg = kindOps[k] + ": " + full.Msg
			}
			l.errs.add(string(h.code), 1, msg)
			if k == kindCreate || k == kindDelete {
				next = item{kind: kindCreate}
			}
		} else {
			if inWin {
				l.hist[k].record(now - sl.sent.Load())
				l.ops[k]++
			}
			switch k {
			case kindCreate:
				p, ok := stringField(b, "path")
				if !ok {
					full, _ := wire.DecodeResponse(b)
					p = full.Path
				}
				next = item{kind: kindDelete, path: p, start: sl.pairStart.Load()}
			case kindDelete:
				if inWin {
					l.pairs.record(now - sl.pairStart.Load())
				}
				next = item{kind: kindCreate}
			}
		}
		l.recv.Add(1)
		l.credits <- next
	}
}
