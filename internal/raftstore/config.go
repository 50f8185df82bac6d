package raftstore

import (
	"fmt"
	"log/slog"
)

// Defaults applied to zero Config fields.
const (
	// DefaultCacheEntries is the number of recent entries kept in memory.
	DefaultCacheEntries = 4096
	// DefaultCacheBytes bounds the encoded size of the cached entries, so
	// that a run of large entries (znode data may be up to a megabyte) cannot
	// pin gigabytes of memory.
	DefaultCacheBytes = 64 << 20
)

// Config tunes a Store. The zero value is valid: every field documents its
// default.
type Config struct {
	// CacheEntries is how many of the most recent log entries are kept in
	// memory to serve Entries and Term without reading pebble. 0 means
	// DefaultCacheEntries.
	CacheEntries int
	// CacheBytes bounds the total encoded size of the cached entries; the
	// oldest are evicted first. An entry larger than CacheBytes is never
	// cached. 0 means DefaultCacheBytes.
	CacheBytes int
	// Logger receives the store's few log lines (open, failed writes). nil
	// discards them.
	Logger *slog.Logger
}

// Validate reports whether c is usable. Open calls it.
func (c Config) Validate() error {
	if c.CacheEntries < 0 {
		return fmt.Errorf("raftstore: CacheEntries %d < 0", c.CacheEntries)
	}
	if c.CacheBytes < 0 {
		return fmt.Errorf("raftstore: CacheBytes %d < 0", c.CacheBytes)
	}
	return nil
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
