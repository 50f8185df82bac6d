// Package session holds the semantics of coord's sessions that sit outside
// the replicated table: ids and passwords, timeout negotiation, the leader's
// expiry clock (Tracker) and a connected server's batch of liveness reports
// (Heartbeats).
//
// # Role
//
// The session table itself is replicated state in package znode: creating and
// closing a session are raft entries. Time is not replicated. Only the leader
// decides that a session expired, from its own monotonic clock, and then
// proposes a close entry; applying it deletes the session's ephemerals.
//
//   - NewID and NewPassword draw from crypto/rand; the table stores only
//     HashPassword(password), and CheckPassword compares in constant time.
//   - Negotiate clamps a requested timeout into the server's [min, max], as
//     ZooKeeper does.
//   - A connected server Marks a session in its Heartbeats on every frame
//     that session sends, and periodically Drains the batch to the leader.
//   - The leader Extends every session of each batch in its Tracker, asks it
//     for the Expired sessions, proposes their close, and Removes a session
//     once its close (or any close) is applied. A new leader, or a restarted
//     server, empties the tracker with ResetAll and Touches every session of
//     the table (or passes the table to ResetAll), so that every session
//     gets a fresh full timeout before anything expires (DESIGN.md).
//
// # Invariants
//
//   - A Tracker compares only times taken from time.Now on this process; it
//     relies on their monotonic clock reading. Wall-clock times, and times
//     carried in raft entries, never reach it.
//   - A deadline is now+timeout of the latest Touch, Extend (or ResetAll);
//     neither moves a deadline earlier, so a late or reordered report cannot
//     expire a live session. Extend, a heartbeat's path, never adds a session:
//     one whose close applied (and was Removed) stays gone.
//   - Expired reports, sorted by id, every session whose deadline is at or
//     before now, and removes nothing: the leader may re-propose a close that
//     did not commit. It costs O(k log k) for k expired sessions, not O(n):
//     deadlines sit in a binary min-heap (exact deadlines; no rounding to a
//     tick as in ZooKeeper's ExpiryQueue, which Expired does not need since
//     it never pops), and Expired visits only the heap's nodes that are due.
//     A report on a tracked session (Touch, Extend) moves only its deadline,
//     not its place in the heap: the heap is ordered by a key, an earlier
//     deadline of the session, which Expired and NextDeadline bring up to
//     the deadline when the key comes due. Heartbeats thus cost a map lookup,
//     and each session is re-placed in the heap at most once per deadline it
//     reaches, not once per heartbeat. Adding and Remove are O(log n).
//   - Heartbeats holds each marked id once; Drain returns them sorted and
//     empties the batch. It costs nothing per idle session: no timer, no
//     goroutine, only a map entry while a mark is pending.
//
// # Ownership and locking
//
// Tracker and Heartbeats are safe for concurrent use; each guards its state
// with its own sync.Mutex (mu), a leaf lock taken by no other. The package
// starts no goroutine and owns no timer: the caller decides when to look at
// the clock (e.g. a timer set to NextDeadline, or a ticker). Their zero
// values are ready to use.
package session
