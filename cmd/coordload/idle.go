package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// idleSession is one session of idle-sessions; its reader goroutine owns
// errs and closed until dead is closed.
type idleSession struct {
	*session
	dead   chan struct{}
	errs   errTally
	closed bool
	beats  int // heartbeats sent (by the pinger goroutine only)
}

// runIdle opens cfg.Sessions sessions that only keep alive with websocket
// control frames at a third of their timeout (with --heartbeat client or
// ping, as coord's Go client and ZooKeeper's on an idle connection: always a
// ping, whose pong shows the server is there; with --heartbeat alternate, an
// unsolicited pong, which the server does not answer, every other time),
// and reports the server's
// CPU use over cfg.Duration (after cfg.Warmup to settle), next to its use
// before the sessions were opened (cfg.Baseline).
func runIdle(ctx context.Context, cfg *Config) (*Result, error) {
	meter := newCPUMeter(cfg)
	if len(meter.pids) == 0 {
		return nil, fmt.Errorf("idle-sessions measures the server's CPU: pass --server-pid (%s)", meter.why)
	}
	res := newResult(cfg)
	res.Unit = "heartbeats"
	if cfg.Baseline > 0 {
		meter.start()
		if err := sleepUntil(ctx, time.Now().Add(cfg.Baseline)); err != nil {
			return nil, err
		}
		meter.stop()
		if p, ok := meter.serverPct(); ok {
			p = round1(p)
			res.BaselineCPUPct = &p
		}
	}

	sess, err := dialAll(ctx, cfg, cfg.Sessions, dialOptions{readBuf: 1024, writeBuf: 1024, timeoutMs: cfg.SessionTimeout.Milliseconds()})
	if err != nil {
		return nil, err
	}
	var pongs, pings atomic.Int64
	is := make([]*idleSession, len(sess))
	var readers sync.WaitGroup
	for i, s := range sess {
		is[i] = &idleSession{session: s, dead: make(chan struct{}), errs: errTally{}}
		s.ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
		readers.Go(is[i].run)
	}

	// One pinger for all: every 20ms it pings the next share of the
	// sessions, so each is pinged once per timeout/3, evenly spread.
	interval := sess[0].timeout / 3
	const tick = 20 * time.Millisecond
	perNs := float64(len(is)) / float64(interval) // pings due per nanosecond
	stop := make(chan struct{})
	pingErrs := errTally{}
	var pinger sync.WaitGroup
	pinger.Go(func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		next, due, last := 0, 0.0, time.Now()
		for {
			var now time.Time
			select {
			case <-stop:
				return
			case now = <-t.C:
			}
			// From the time elapsed, not the ticks: a late tick is not lost.
			due += perNs * float64(now.Sub(last))
			last = now
			for ; due >= 1; due-- {
				s := is[next]
				next = (next + 1) % len(is)
				kind := websocket.PingMessage
				if s.beats++; cfg.Heartbeat == "alternate" && s.beats%2 == 0 {
					kind = websocket.PongMessage
				}
				if err := s.ws.WriteControl(kind, nil, time.Now().Add(5*time.Second)); err != nil {
					pingErrs.add("ping_failed", 1, err.Error())
					continue
				}
				pings.Add(1)
			}
		}
	})

	var runErr error
	if runErr = sleepUntil(ctx, time.Now().Add(cfg.Warmup)); runErr == nil {
		p0 := pings.Load()
		meter.start()
		runErr = sleepUntil(ctx, time.Now().Add(cfg.Duration))
		meter.stop()
		res.Ops = uint64(pings.Load() - p0)
		res.WindowS = round3(meter.t1.Sub(meter.t0).Seconds())
		res.OpsPerS = round1(float64(res.Ops) / res.WindowS)
		meter.report(res)
	}
	close(stop)
	pinger.Wait()
	res.Notes = append(res.Notes, fmt.Sprintf("negotiated session timeout %v, a heartbeat (%s) every %v per session; %d pongs received",
		sess[0].timeout, cfg.Heartbeat, interval, pongs.Load()))

	for _, s := range is {
		if err := s.sendClose(); err != nil {
			res.addError("close_failed", 1, err.Error())
		}
	}
	closeTimer := time.NewTimer(60 * time.Second)
	for _, s := range is {
		select {
		case <-s.dead:
		case <-closeTimer.C:
		}
		s.ws.Close()
	}
	readers.Wait()
	res.addErrors(pingErrs)
	for _, s := range is {
		res.addErrors(s.errs)
		if !s.closed {
			res.addError("close_unanswered", 1, "")
		}
	}
	return res, runErr
}

func (s *idleSession) run() {
	defer close(s.dead)
	for {
		b, err := s.readFrame()
		if err != nil {
			if !s.closing.Load() || !errClosedByPeer(err) {
				s.errs.add("conn_lost", 1, err.Error())
			}
			return
		}
		h, ok := parseHead(b, nil)
		switch {
		case !ok:
			s.errs.add("bad_frame", 1, string(b))
		case h.xid < 0:
			s.errs.add("unexpected_push", 1, string(b))
		case s.closing.Load() && h.xid == s.closeXid.Load():
			s.closed = h.code == ""
			if !s.closed {
				s.errs.add("close_"+string(h.code), 1, "")
			}
			return
		default:
			s.errs.add("unexpected_answer", 1, string(b))
		}
	}
}
