// Package znode is coord's replicated state machine: the znode tree with
// ZooKeeper's Stat, node kinds (persistent, ephemeral, sequential,
// container, TTL), ACLs, multi, the session table with its exactly-once
// result caches, and snapshots. Every server applies the same committed
// entries in the same order and reaches the same state.
//
// # Role and ownership
//
// The server owns the pebble DB, the raft log inside it (keys starting with
// 'r') and the raft loop; it opens a Store on the DB, hands it committed
// entries in order (Apply) and reads through it. The Store owns every key
// starting with 'z' (the replicated state: included in Snapshot and Digest)
// and 'h' (the local change history: neither snapshotted nor digested). It
// knows nothing of raft, sessions' liveness (the leader's expiry tracker
// decides and proposes OpCloseSession), watches or the network.
//
// # Invariants
//
//   - Apply is deterministic: no clocks (time is max(Entry.TimeMs, the last
//     applied time)), no randomness, no dependence on map order. Servers
//     that applied the same entries have the same Digest, whatever batches
//     the entries came in and whether or not the node cache was warm.
//   - One Apply call is one pebble batch holding its entries' effects and
//     the new applied index, so after a crash the state is exactly the state
//     at some applied index; the raft log replays the rest.
//   - Restore replaces the whole state in one batch: a crash leaves the old
//     state or the new one.
//   - Readers never see a state whose outcomes were not yet published:
//     Apply holds mu in write mode across its commit and the publish
//     callback; every read method holds mu.RLock.
//   - Each op checks everything before it writes anything; a multi writes
//     into its own overlay, merged only when every op succeeded.
//   - Derived keys (ephemeral, TTL and container indexes) are recomputed
//     from each node's old and new value on every write (txn.put), so they
//     always match the tree.
//
// # Key layout
//
//	zn<parent>\x00<name>    node (the root is zn\x00): children of P form one
//	                        contiguous, bytewise-sorted range
//	zs<id>                  session: timeout, password hash
//	ze<owner><path>         ephemeral index
//	zr<id><xid>             cached result of a session's write (exactly-once)
//	zt<expiry><path>        TTL nodes without children, by mtime + ttl
//	zc<path>                containers without children that had some
//	zma, zmt, zmc, zmv      applied index, last applied time, Conf, layout
//	                        version
//	h                       history floor: the lowest index history may hold
//	h<index>                the Changes of one entry
//
// Integers in keys are 8-byte big-endian. Values are compact binary
// encodings, each starting with a version byte; testdata/encodings.golden
// pins them, and the entry encoding raft carries.
//
// # Concurrency
//
// Writers (Apply, Restore, TrimHistory, Close) serialise on applyMu, taken
// before mu. Apply builds its batch without mu, reading the committed state
// (nothing else commits meanwhile) through an overlay of its own writes,
// then commits and publishes with mu held in write mode. The in-memory
// session table is loaded at Open and Restore; fields written by the
// applier are written with both locks held. A bounded cache of decoded
// nodes (Config.NodeCacheBytes) holds committed nodes only (see nodeCache).
// docs/locking.md records the lock order: applyMu, then mu, then the node
// cache's own mutex.
package znode
