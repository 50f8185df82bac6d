package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coord-dev/coord/internal/wire"
)

func fanoutPath(cfg *Config) string { return cfg.Prefix + "/watch/fanout" }

// fanout is the state shared by the watcher readers and the round loop of
// watch-fanout.
type fanout struct {
	epoch time.Time
	path  string
	codes map[string]wire.Code
	// event is the expected event frame up to its zxid, to recognise it
	// without a JSON decode.
	event []byte

	armPending  atomic.Int64 // arming answers still to come this round
	armed       chan struct{}
	firePending atomic.Int64 // watcher connections still without the event
	last        atomic.Int64 // latest event arrival this round, ns since epoch
	fired       chan struct{}
}

func (f *fanout) now() int64 { return int64(time.Since(f.epoch)) }

// watcher is one watcher connection; its reader goroutine owns errs and
// closed until dead is closed.
type watcher struct {
	*session
	dead   chan struct{}
	errs   errTally
	closed bool
}

// runFanout measures how long one write takes to reach every watcher:
// cfg.Watchers one-shot data watches on one node over cfg.WatchConns
// connections, one writer. Each round re-arms every watch (untimed), then
// times from sending the set until the last connection has its event.
//
// A session holds at most one data watch per path (PROTOCOL.md), so the
// watchers of one connection share its one server-side watch, as ZooKeeper's
// client shares one server watch among the Watchers of a session: the
// server fans out to min(watchers, watch-conns) connections.
func runFanout(ctx context.Context, cfg *Config) (*Result, error) {
	if err := setupTree(ctx, cfg); err != nil {
		return nil, err
	}
	conns := min(cfg.WatchConns, cfg.Watchers)
	if conns == 0 {
		return nil, errors.New("watch-fanout needs watchers and watch-conns")
	}
	o := dialOptions{readBuf: 4096, writeBuf: 4096, timeoutMs: cfg.SessionTimeout.Milliseconds()}
	wr, err := dial(ctx, cfg.Servers[0], o)
	if err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	defer wr.ws.Close()
	sess, err := dialAll(ctx, cfg, conns, o)
	if err != nil {
		return nil, err
	}
	f := &fanout{path: fanoutPath(cfg), codes: codeTable(), armed: make(chan struct{}, 1), fired: make(chan struct{}, 1)}
	ev := wire.WatchEvent(wire.EventNodeDataChanged, f.path, 0)
	f.event = bytes.TrimSuffix(ev.AppendJSON(nil), []byte(`0}`))
	ws := make([]*watcher, conns)
	var readers sync.WaitGroup
	for i, s := range sess {
		ws[i] = &watcher{session: s, dead: make(chan struct{}), errs: errTally{}}
		readers.Go(func() { ws[i].run(f) })
	}

	p := strconv.Quote(f.path)
	armTail := []byte(`,"op":"get","path":` + p + `,"watch":true}`)
	setTail := []byte(`,"op":"set","path":` + p + `,"data":"` +
		base64.StdEncoding.EncodeToString(value(cfg.ValueBytes)) + `","version":-1}`)

	res := newResult(cfg)
	res.Unit = "fan-out rounds"
	res.Sessions = conns + 1
	res.Watchers, res.WatchConns = cfg.Watchers, conns
	var lat, ack histogram
	meter := newCPUMeter(cfg)
	f.epoch = time.Now()
	warmEnd := f.epoch.Add(cfg.Warmup)
	var runErr error
	var buf []byte
	measured := 0
	for round := 0; measured < cfg.Rounds; round++ {
		timed := !time.Now().Before(warmEnd) && (round > 0 || cfg.Warmup == 0)
		if timed && measured == 0 {
			meter.start()
		}
		if runErr = ctx.Err(); runErr != nil {
			break
		}
		// Arm every connection's watch (not timed).
		f.armPending.Store(int64(conns))
		for _, w := range ws {
			w.xid++
			buf = append(strconv.AppendInt(append(buf[:0], `{"xid":`...), w.xid, 10), armTail...)
			if err := w.writeFrame(buf); err != nil {
				runErr = fmt.Errorf("arming a watch: %w", err)
				break
			}
		}
		if runErr != nil {
			break
		}
		if runErr = waitSignal(ctx, f.armed, 10*time.Second, "every watch armed"); runErr != nil {
			res.addError("arm_timeout", 1, runErr.Error())
			break
		}
		// The timed part: one set, then every connection's event.
		f.last.Store(0)
		f.firePending.Store(int64(conns))
		wr.xid++
		buf = append(strconv.AppendInt(append(buf[:0], `{"xid":`...), wr.xid, 10), setTail...)
		t0 := f.now()
		if err := wr.writeFrame(buf); err != nil {
			runErr = fmt.Errorf("writer: %w", err)
			break
		}
		code, err := readAnswer(wr, f.codes)
		ackAt := f.now()
		if err != nil {
			runErr = fmt.Errorf("writer: %w", err)
			break
		}
		if code != wire.OK {
			res.addError(string(code), 1, "set of the watched node")
			// No event will come: the node did not change.
			if runErr = ctx.Err(); runErr != nil {
				break
			}
			continue
		}
		if runErr = waitSignal(ctx, f.fired, 10*time.Second, "every watcher's event"); runErr != nil {
			res.addError("watch_timeout", 1, runErr.Error())
			break
		}
		if timed {
			lat.record(f.last.Load() - t0)
			ack.record(ackAt - t0)
			measured++
		}
	}
	if measured > 0 {
		meter.stop()
		res.WindowS = round3(meter.t1.Sub(meter.t0).Seconds())
	}
	res.setMain(&lat)
	res.AckLatency = latencyOf(&ack)
	if measured > 0 {
		meter.report(res)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d watchers share %d server-side watches (one per connection, as PROTOCOL.md allows per session and path)", cfg.Watchers, conns))

	for _, w := range ws {
		_ = w.sendClose()
	}
	closeTimer := time.NewTimer(10 * time.Second)
	for _, w := range ws {
		select {
		case <-w.dead:
		case <-closeTimer.C:
		}
		w.ws.Close()
	}
	readers.Wait()
	for _, w := range ws {
		res.addErrors(w.errs)
		if !w.closed {
			res.addError("close_unanswered", 1, "")
		}
	}
	if err := wr.closeSync(5 * time.Second); err != nil {
		res.addError("close_failed", 1, err.Error())
	}
	return res, runErr
}

// waitSignal waits for one value on ch.
func waitSignal(ctx context.Context, ch <-chan struct{}, timeout time.Duration, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return fmt.Errorf("no %s within %v", what, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readAnswer reads frames of a session without a reader goroutine until the
// answer to its latest xid.
func readAnswer(s *session, codes map[string]wire.Code) (wire.Code, error) {
	for {
		b, err := s.readFrame()
		if err != nil {
			return "", err
		}
		h, ok := parseHead(b, codes)
		if !ok {
			r, err := wire.DecodeResponse(b)
			if err != nil {
				return "", err
			}
			h = head{xid: r.Xid, code: r.Err}
		}
		if h.xid == s.xid {
			return h.code, nil
		}
		if h.xid > 0 {
			return "", fmt.Errorf("answer to xid %d while waiting for %d", h.xid, s.xid)
		}
	}
}

// eventArrived records one connection's event of this round.
func (f *fanout) eventArrived(now int64) {
	for {
		old := f.last.Load()
		if now <= old || f.last.CompareAndSwap(old, now) {
			break
		}
	}
	if f.firePending.Add(-1) == 0 {
		f.fired <- struct{}{}
	}
}

func (w *watcher) run(f *fanout) {
	defer close(w.dead)
	for {
		b, err := w.readFrame()
		if err != nil {
			if !w.closing.Load() || !errClosedByPeer(err) {
				w.errs.add("conn_lost", 1, err.Error())
			}
			return
		}
		if bytes.HasPrefix(b, f.event) {
			f.eventArrived(f.now())
			continue
		}
		h, ok := parseHead(b, f.codes)
		if !ok || h.xid < 0 {
			r, err := wire.DecodeResponse(b)
			if err != nil {
				w.errs.add("bad_frame", 1, err.Error())
				continue
			}
			h = head{xid: r.Xid, code: r.Err}
			if r.Xid == wire.XidWatch {
				now := f.now()
				if r.Event != wire.EventNodeDataChanged || r.Path != f.path {
					w.errs.add("unexpected_event", 1, string(b))
					continue
				}
				f.eventArrived(now)
				continue
			}
			if r.Xid < 0 {
				w.errs.add("session_"+r.State, 1, "")
				continue
			}
		}
		if w.closing.Load() && h.xid == w.closeXid.Load() {
			w.closed = h.code == wire.OK
			if !w.closed {
				w.errs.add("close_"+string(h.code), 1, "")
			}
			return
		}
		if h.code != wire.OK {
			w.errs.add(string(h.code), 1, "arming get")
		}
		if f.armPending.Add(-1) == 0 {
			f.armed <- struct{}{}
		}
	}
}
