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
	full      atomic.Bool
	free      atomic.Uint64
	fault     atomic.Int32
	checkedAt atomic.Int64
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
			if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && op.Kind != errorfs.OpRemove && op.Kind != errorfs.OpRemoveAll && op.Kind != errorfs.OpFileClose {
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
		g.full.Store(true)
		return
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return
	}
	free := st.Bavail * uint64(st.Bsize)
	g.free.Store(free)
	g.full.Store(free < g.minFree)
}

// errDiskFull is what a write gets while the disk is almost full.
func (g *diskGuard) err() error {
	return fmt.Errorf("%w: the server's disk is full (%d bytes free, %d needed); free space on it, writes resume by themselves",
		wire.ErrQuotaExceeded, g.free.Load(), g.minFree)
}

func (g *diskGuard) setFault(name string) error {
	switch name {
	case "", "none":
		g.fault.Store(diskOK)
	case "fsync":
		g.fault.Store(diskFsync)
	case "enospc":
		g.fault.Store(diskNoSpace)
	default:
		return errors.New(`fault must be "none", "fsync" or "enospc"`)
	}
	g.checkedAt.Store(0)
	g.check()
	return nil
}
