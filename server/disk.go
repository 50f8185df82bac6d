package server

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/coord-dev/coord/internal/wire"
)

// Disk faults, injected only with Config.TestHooks (POST /debug/disk).
const (
	diskOK      int32 = iota
	diskFsync         // every sync fails with EIO: the server must stop at once
	diskNoSpace       // writes fail with ENOSPC and the space guard reports full
)

// diskGuard refuses writes while the data dir's file system is almost full,
// so that a full disk gives clients an explicit error instead of a crash
// mid-write. Reads keep working.
type diskGuard struct {
	dir       string
	minFree   uint64
	lowSpace  atomic.Bool // the last reading was below minFree
	free      atomic.Uint64
	fault     atomic.Int32
	checkedAt atomic.Int64
	// writing counts the pebble writes in progress that passed the guard
	// (enter/exit); noSpaceFS turns the file-level ENOSPC of the test hook
	// on once they are done.
	writing   atomic.Int64
	noSpaceFS atomic.Bool
}

// enter admits a pebble write unless the disk is full; a true result must
// be paired with exit. A guard that turns full waits for the writes it
// admitted before the file system is made to fail (the test hook), as a
// real disk crossing --min-free-bytes still has room for the writes in
// flight: pebble treats a failed WAL write as fatal.
func (g *diskGuard) enter() bool {
	g.writing.Add(1)
	if g.isFull() {
		g.writing.Add(-1)
		return false
	}
	return true
}

func (g *diskGuard) exit() { g.writing.Add(-1) }

// waitEnter is enter for a write that cannot be skipped: it waits for space
// (or stop) instead of refusing.
func (g *diskGuard) waitEnter(stop <-chan struct{}) bool {
	for !g.enter() {
		select {
		case <-stop:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// faultFS wraps the default file system with the test hook's injector.
func (g *diskGuard) faultFS() vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch g.fault.Load() {
		case diskFsync:
			if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo {
				return fmt.Errorf("injected fsync failure: %w", syscall.EIO)
			}
		case diskNoSpace:
			if g.noSpaceFS.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite && op.Kind != errorfs.OpRemove && op.Kind != errorfs.OpRemoveAll && op.Kind != errorfs.OpFileClose {
				return fmt.Errorf("injected: %w", syscall.ENOSPC)
			}
		}
		return nil
	}))
}

// check refreshes the free-space reading (at most every 500ms).
func (g *diskGuard) check() {
	now := time.Now().UnixNano()
	if now-g.checkedAt.Load() < int64(500*time.Millisecond) {
		return
	}
	g.checkedAt.Store(now)
	if g.fault.Load() == diskNoSpace {
		g.free.Store(0)
		return
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return
	}
	free := st.Bavail * uint64(st.Bsize)
	g.free.Store(free)
	g.lowSpace.Store(free < g.minFree)
}

// isFull refreshes the reading when it is due and reports whether the disk
// is (almost) full. The injected fault counts at once, whatever a reading
// racing with it found.
func (g *diskGuard) isFull() bool {
	g.check()
	return g.fault.Load() == diskNoSpace || g.lowSpace.Load()
}

// errDiskFull is what a write gets while the disk is almost full.
func (g *diskGuard) err() error {
	return fmt.Errorf("%w: the server's disk is full (%d bytes free, %d needed); free space on it, writes resume by themselves",
		wire.ErrQuotaExceeded, g.free.Load(), g.minFree)
}

func (g *diskGuard) setFault(name string, flush func() error) error {
	switch name {
	case "", "none":
		g.noSpaceFS.Store(false)
		g.fault.Store(diskOK)
	case "fsync":
		g.noSpaceFS.Store(false)
		g.fault.Store(diskFsync)
	case "enospc":
		// The guard reports full at once; the file system fails writes
		// once the writes admitted before are done and on disk.
		g.fault.Store(diskNoSpace)
		g.checkedAt.Store(0)
		g.check()
		deadline := time.Now().Add(time.Minute)
		for g.writing.Load() > 0 {
			if time.Now().After(deadline) {
				return errors.New("writes in progress did not finish within a minute")
			}
			time.Sleep(time.Millisecond)
		}
		if err := flush(); err != nil {
			return fmt.Errorf("flush the WAL: %w", err)
		}
		g.noSpaceFS.Store(true)
	default:
		return errors.New(`fault must be "none", "fsync" or "enospc"`)
	}
	g.checkedAt.Store(0)
	g.check()
	return nil
}
