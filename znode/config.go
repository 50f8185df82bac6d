package znode

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/coord-dev/coord/internal/wire"
)

// ResultsPerSession is how many results of its most recent writes (by xid)
// each session keeps for exactly-once retries. Older ones are evicted lowest
// xid first.
const ResultsPerSession = 1024

// Config configures a Store. Every server of a cluster must use the same
// MaxDataBytes and SuperDigest: they decide outcomes of apply.
type Config struct {
	// MaxDataBytes is the largest data a node may hold; a create or set with
	// more answers BadArguments. 0 means wire.DefaultMaxDataBytes (1 MiB).
	MaxDataBytes int
	// SuperDigest is ZooKeeper's super digest id,
	// "super:base64(sha1(super:password))" (see DigestID): a caller holding a
	// digest ident equal to it passes every ACL check. "" means none.
	SuperDigest string
	// NodeCacheBytes bounds the memory of the cache of decoded nodes that
	// serves Get, Children's parent and apply's reads before pebble. 0 means
	// DefaultNodeCacheBytes; negative disables the cache.
	NodeCacheBytes int
	// Logger receives the store's rare messages. nil discards them.
	Logger *slog.Logger
	// RestoreGate, when set, is called by Restore with the snapshot's
	// applied index after it has read the whole snapshot and before it
	// commits it: an error aborts the restore and changes nothing. A server
	// uses it to refuse a snapshot that is not newer than its state (which
	// would take the state back) or one that came in while its disk filled
	// up.
	RestoreGate func(index uint64) error
}

// DefaultNodeCacheBytes is the node cache's size when Config leaves it 0.
const DefaultNodeCacheBytes = 64 << 20

// Validate reports whether the configuration is usable.
func (c *Config) Validate() error {
	if c.MaxDataBytes < 0 {
		return fmt.Errorf("znode: MaxDataBytes %d is negative", c.MaxDataBytes)
	}
	if c.SuperDigest != "" && !validDigestID(c.SuperDigest) {
		return fmt.Errorf("znode: SuperDigest %q is not of the form user:base64(sha1(user:password))", c.SuperDigest)
	}
	return nil
}

func (c *Config) maxDataBytes() int {
	if c.MaxDataBytes == 0 {
		return wire.DefaultMaxDataBytes
	}
	return c.MaxDataBytes
}

func (c *Config) nodeCacheBytes() int {
	if c.NodeCacheBytes == 0 {
		return DefaultNodeCacheBytes
	}
	return c.NodeCacheBytes
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// TunePebble adjusts pebble options, before pebble.Open, for the store's
// access pattern, changing only what the caller left unset:
//
//   - a 10-bit bloom filter on every level: every create looks up a path
//     that is usually absent, and without filters such a miss reads an
//     index block of every overlapping sstable;
//   - a 64 MiB block cache when neither Cache nor CacheSize is set: pebble
//     reserves the memory of its memtables from the block cache, so under a
//     steady write load its 8 MiB default leaves no room for blocks at all
//     and every read goes to the file system;
//   - L0 compactions from 8 sublevels (pebble's default is 4), writes
//     stopped at 24 (12): most of what a server writes (raft log entries,
//     the change history, exactly-once results, rewritten nodes) is deleted
//     or overwritten soon after, and letting more of it meet its deletion
//     inside L0 saves rewriting it into the levels below. Measured with
//     coordload: lower p99 write latency on one and on three servers and
//     about 10% more pipelined writes (docs/benchmarks.md). Reads pay a
//     little (more L0 files to consult, behind bloom filters and the node
//     cache);
//   - no block compression on any level whose Compression is unset (pebble
//     compresses with Snappy): a coordination store is small, and most of
//     what it writes is soon deleted, so compressing it in every flush and
//     compaction costs CPU for no lasting saving. ephemeral_sequential
//     create+delete, alternating runs: 13,400–14,600 pairs/s with Snappy,
//     14,400–15,700 without, at 3% less server CPU (docs/benchmarks.md).
//     ZooKeeper's snapshots and etcd's bbolt file are uncompressed too.
//
// MemTableSize and larger caches remain the server's memory policy; the
// store's own node cache (Config.NodeCacheBytes) serves hot nodes.
func TunePebble(o *pebble.Options) {
	for i := range o.Levels {
		if o.Levels[i].FilterPolicy == nil {
			o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		}
		if o.Levels[i].Compression == nil {
			o.Levels[i].Compression = noCompression
		}
	}
	if o.Cache == nil && o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.L0CompactionThreshold == 0 {
		o.L0CompactionThreshold = 8
	}
	if o.L0StopWritesThreshold == 0 {
		o.L0StopWritesThreshold = 24
	}
}

func noCompression() *sstable.CompressionProfile { return sstable.NoCompression }
