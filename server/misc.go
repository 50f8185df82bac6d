package server

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// ctrl runs f on the raft goroutine.
func (s *Server) ctrl(f func(r *raftLoop)) {
	select {
	case s.ctrlc <- f:
	case <-s.stopc:
	}
}

// ctrlWait runs f on the raft goroutine and waits for it.
func (s *Server) ctrlWait(ctx context.Context, f func(r *raftLoop)) error {
	done := make(chan struct{})
	select {
	case s.ctrlc <- func(r *raftLoop) { f(r); close(done) }:
	case <-s.stopc:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-s.stopc:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progress returns the leader's match index per member (empty on a follower).
func (s *Server) progress() map[uint64]uint64 {
	out := map[uint64]uint64{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.ctrlWait(ctx, func(r *raftLoop) {
		if r.state != raft.StateLeader {
			return
		}
		r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			out[id] = pr.Match
		})
	})
	return out
}

// compactLog records a snapshot point at index and drops the log below it.
// The conf state recorded must be the one in force at index; it is known
// for indices at or after the last conf change.
func (r *raftLoop) compactLog(at uint64) {
	s := r.s
	m := s.members.Load()
	if m.ConfIndex > at {
		if m.ConfIndex > s.state.AppliedIndex() {
			return
		}
		at = m.ConfIndex
	}
	first, err := s.rlog.FirstIndex()
	if err != nil || at < first {
		return
	}
	term, err := s.rlog.Term(at)
	if err != nil {
		s.log.Warn("compact log", "index", at, "err", err)
		return
	}
	cs, err := m.confState()
	if err != nil {
		s.log.Warn("compact log", "err", err)
		return
	}
	if !s.disk.enter() {
		return // the next compaction will do
	}
	defer s.disk.exit()
	s.crashPoint(CrashBeforeCompact)
	if err := s.rlog.Compact(at, term, cs); err != nil {
		s.fatal(fmt.Errorf("compact raft log: %w", err))
		return
	}
	s.crashPoint(CrashAfterCompact)
}

func formatClusterID(id uint64) string { return strconv.FormatUint(id, 16) }

// raftLogger adapts slog to raft's Logger.
type raftLogger struct{ l *slog.Logger }

func newRaftLogger(l *slog.Logger) raft.Logger { return raftLogger{l} }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Info(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Info(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Fatal(v ...any) { r.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) {
	r.l.Error(fmt.Sprintf(format, v...))
	panic(fmt.Sprintf(format, v...))
}
func (r raftLogger) Panic(v ...any) { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) {
	panic(fmt.Sprintf(format, v...))
}

var _ = raftpb.MsgApp
