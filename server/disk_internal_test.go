package server

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// A failed flush or compaction stops the server as a failed WAL sync does;
// a full disk does not.
func TestPebbleBackgroundErrors(t *testing.T) {
	s := startAlone(t)
	s.pebbleBackgroundError(fmt.Errorf("flush: %w", syscall.ENOSPC))
	select {
	case err := <-s.Done():
		t.Fatalf("a full disk stopped the server: %v", err)
	default:
	}
	s.pebbleBackgroundError(fmt.Errorf("injected fsync failure: %w", syscall.EIO))
	select {
	case err := <-s.Done():
		if err == nil {
			t.Fatal("stopped without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an I/O error in pebble's background work did not stop the server")
	}
}
