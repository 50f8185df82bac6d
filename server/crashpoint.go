package server

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// Crash points, a test hook (POST /debug/crash, only with --test-hooks):
// the server kills itself with SIGKILL the Nth time it reaches the armed
// point, so that a test can check that no acknowledged write is lost and
// the restart is clean wherever the process dies, not only where a
// kill -9 from outside happens to land.
const (
	CrashBeforeLogSave       = "before-log-save"       // raft entries not yet persisted here
	CrashAfterLogSave        = "after-log-save"        // persisted, messages not sent, not advanced
	CrashBeforeApply         = "before-apply"          // committed entries handed over, not applied
	CrashAfterApply          = "after-apply"           // a batch committed to pebble, nothing published or answered
	CrashBeforeCompact       = "before-compact"        // the raft log about to be compacted
	CrashAfterCompact        = "after-compact"         // compacted, nothing after
	CrashSnapshotSendMid     = "snapshot-send-mid"     // the leader, half way through streaming a snapshot
	CrashSnapshotReceived    = "snapshot-received"     // a follower staged a snapshot, not restored
	CrashRestoreBeforeCommit = "restore-before-commit" // the snapshot read into a batch, not committed
	CrashAfterRestore        = "after-restore"         // the state restored, raft not told
)

// CrashPoints lists every crash point.
var CrashPoints = []string{CrashBeforeLogSave, CrashAfterLogSave, CrashBeforeApply, CrashAfterApply,
	CrashBeforeCompact, CrashAfterCompact, CrashSnapshotSendMid, CrashSnapshotReceived,
	CrashRestoreBeforeCommit, CrashAfterRestore}

type crashHook struct {
	point atomic.Pointer[string]
	left  atomic.Int64
}

func (h *crashHook) arm(point string, after int64) error {
	if point == "" || point == "none" {
		h.point.Store(nil)
		return nil
	}
	if !slices.Contains(CrashPoints, point) {
		return fmt.Errorf("unknown crash point %q (one of %s)", point, strings.Join(CrashPoints, ", "))
	}
	if after < 1 {
		after = 1
	}
	h.left.Store(after)
	h.point.Store(&point)
	return nil
}

// crashPoint kills the process when point is armed and its count is
// reached. Disarmed, it costs one atomic load.
func (s *Server) crashPoint(point string) {
	p := s.crash.point.Load()
	if p == nil || *p != point || s.crash.left.Add(-1) != 0 {
		return
	}
	s.log.Warn("test hook: crash point reached, killing myself", "point", point)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught: nothing runs after it
}
