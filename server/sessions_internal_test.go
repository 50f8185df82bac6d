package server

import (
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/testcluster"
	"github.com/coord-dev/coord/internal/wire"
)

// A tracker entry for a session the table does not hold (a heartbeat that
// raced with the session's close brought it back) expires, its close
// fails with SessionExpired, and the leader forgets it instead of
// proposing that close again every request timeout.
func TestLeaderForgetsASessionItCannotClose(t *testing.T) {
	s := startAlone(t)
	testcluster.WaitFor(t, 30*time.Second, "the server to lead", s.sessions.isLeader)
	const phantom = wire.SessionID(0x5eed)
	if _, ok := s.state.Session(phantom); ok {
		t.Fatal("the phantom session exists")
	}
	s.sessions.tracker.Touch(phantom, 100*time.Millisecond, time.Now())
	testcluster.WaitFor(t, 5*time.Second, "the leader to forget the phantom", func() bool {
		_, tracked := s.sessions.tracker.Deadline(phantom)
		return !tracked
	})
	s.sessions.mu.Lock()
	_, closing := s.sessions.mu.closing[phantom]
	s.sessions.mu.Unlock()
	if closing {
		t.Fatal("the phantom's close is still marked as proposed")
	}
}
