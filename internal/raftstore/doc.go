// Package raftstore is the raft log and hard state of one coord server,
// kept in the server's pebble DB. Store implements raft.Storage for
// go.etcd.io/raft/v3 with MemoryStorage's semantics, and adds the writes
// the server's raft loop makes: Save (entries and hard state of a Ready),
// ApplySnapshot (a snapshot received from the leader) and Compact (log
// truncation once the state machine has applied a prefix).
//
// # Ownership
//
// The pebble DB is shared: raftstore owns every key whose first byte is
// 'r' and touches no other ('z' and 'h' keys belong to the state machine).
// The Store does not own the *pebble.DB; the server opens and closes it.
// Writes come only from raft's goroutine; reads (raft.Storage) are safe
// from any goroutine, e.g. a watch replay reading history.
//
// # Use from the raft loop
//
// For each Ready, in this order: if it carries a snapshot,
// ApplySnapshot(rd.Snapshot.Metadata) (after restoring the state machine
// from the streamed data); then Save(rd.HardState, rd.Entries,
// rd.MustSync); then send, apply and Advance. ApplySnapshot must come
// first: the Ready's entries and commit index lie past the snapshot, and
// Save refuses a gap or a commit index beyond the last entry (ErrInvalid).
// Once the state machine's batch for index i is committed (synced or not:
// it shares the WAL), Compact(i, term of i, conf state at i) may drop the
// log up to i.
//
// # Key layout
//
//	"rh"                      HardState
//	"rs"                      SnapshotMetadata of the last snapshot
//	"re" + index (8 bytes BE) Entry at index; byte order is log order
//
// Every value is one version byte (1) followed by the deterministic
// protobuf encoding of the raftpb message. Other versions are refused with
// ErrCorrupt. testdata/encoding-v1.golden pins the bytes; a layout change adds
// a version and keeps decoding the old ones.
//
// # Invariants
//
// With S the stored snapshot metadata (index 0 if none), F = S.Index+1 the
// first index and L the last index:
//   - the stored entries are exactly F..L, consecutive (L = S.Index if none);
//   - Term(S.Index) = S.Term, so raft can match the entry before F;
//   - a non-empty stored HardState has S.Index <= Commit <= L;
//   - each write is one pebble batch, so a crash leaves the state of some
//     prefix of the writes; every write up to the last synced one is in it
//     (pebble replays its WAL as a prefix);
//   - the in-memory view (mu) matches the committed batches: writers hold
//     mu from before building a batch until after mu is updated;
//   - the entry cache holds a suffix [lo, L] of the log or nothing, bounded
//     by Config.CacheEntries and Config.CacheBytes.
//
// Open checks that the entries start at F and the commit bound, and
// refuses a store that breaks them with ErrCorrupt; a hole inside the log
// is reported as ErrCorrupt when read.
//
// # Durability
//
// Save syncs when asked (raft's Ready.MustSync: new entries, term or vote).
// ApplySnapshot always syncs. Compact never does: a compaction is
// re-derivable, and one that survives a crash implies every earlier write
// to the same DB survives too. A failed write is fatal: the Store refuses
// every later write with ErrBroken, and the server must stop. Note that
// pebble itself reports a failed WAL write or fsync through its
// Options.Logger.Fatalf and then returns success from Commit: the server
// must give pebble a Logger whose Fatalf does not return (pebble's
// default exits), or a lost fsync goes unnoticed.
//
// # Locking
//
// Store.mu guards the in-memory view and the cache. It is a leaf lock:
// nothing else is acquired while it is held, except pebble's internal
// locks. Writers hold it across their batch commit (including fsync);
// readers hold it only to check bounds, copy from the cache or open a
// pebble iterator, and read pebble after releasing it.
package raftstore
