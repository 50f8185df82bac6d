// Package recipe builds coordination recipes on the coord client: Mutex,
// RWMutex, Election, Semaphore, Barrier, DoubleBarrier, Queue and Group
// (membership and service discovery). docs/recipes.md states each one's
// guarantees and failure modes.
//
// # Nodes
//
// Each recipe owns the directory at the path it is given (created, with its
// missing ancestors, as persistent nodes on first use); one directory
// serves one recipe. Lock-like recipes (Mutex, RWMutex, Election,
// Semaphore, DoubleBarrier) make one ephemeral sequential node per
// participant, named "<kind>-<session id>-<sequence>": the sequence orders
// the participants, the session id says who made it. Being ephemeral, a
// participant's node goes with its session, so a participant that dies
// leaves without help. Queue items are persistent sequential nodes, Group
// members ephemeral nodes named by the member.
//
// # Safety
//
// A participant goes ahead (holds the lock, leads, has a permit) only once
// a read on its own live session shows its node with nothing before it
// that blocks it; every wait is such a read, so a waiter whose session
// expired while it waited fails rather than proceeds. Each lock waiter
// waits for one node (no herd effect), with a read the server answers
// right after that node's deletion (client.WaitGone; against a server
// without it, a watch and a read); the Semaphore's waiters, Queue takers
// and DoubleBarrier leavers watch the whole directory. The read that lets
// a participant go ahead is linearizable, so that a server cut off from
// the others cannot grant a hold on a session they already expired.
// Creates and deletes are never abandoned half-way: they run detached from
// the caller's context, so the client resends them after a reconnect and
// the server's exactly-once answer says what happened; a participant that
// gives up deletes its node even when its create was still in flight.
//
// No lock service can stop a holder that does not know it lost its lock
// (a paused process, a partitioned client): the session expires, the next
// contender proceeds, and the old holder hears of it only later. So holds
// report their end on a Lost channel, expose a fencing token (the czxid of
// their node, increasing with each successive holder) for the services
// they write to, and offer Guard and Do, which make a write to coord
// itself conditional on the hold (a multi with a check of the node).
//
// # Goroutines
//
// Each hold (a held lock, leadership, permit or membership) has one
// monitor goroutine, which follows the client's session states and closes
// Lost when the session ends; Unlock (Resign, Release, Leave) stops and
// joins it. Observe and Watch streams have one goroutine each, which
// exits, closing the stream, when its context ends, the session expires or
// the client is closed. An operation whose context ends while its create
// or delete is in flight leaves one goroutine to finish it: it exits when
// the client answers, which the session's expiry or the client's Close
// bounds (creates and deletes run in a short-lived goroutine for that
// reason). Nothing else runs in the background; a recipe value holds no
// goroutine while idle.
//
// # Concurrency
//
// A Mutex, RWMutex, Election, Semaphore or DoubleBarrier is one
// participant, used by one goroutine at a time (a second Lock while one is
// in progress fails with ErrAlreadyHeld). Goroutines that contend make one
// each; they may share a client. Barrier, Queue and Group values are safe
// for concurrent use.
package recipe
