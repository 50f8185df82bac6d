// Package client is the Go client of coord: it keeps a session with a coord
// cluster over one websocket at a time (PROTOCOL.md), fails over between
// servers, resumes the session, re-arms watches, and turns the server's
// error codes into typed errors.
//
// # Use
//
//	c, err := client.Connect(ctx, []string{"10.0.0.1:7181", "10.0.0.2:7181", "10.0.0.3:7181"})
//	...
//	defer c.Close()
//	data, stat, changed, err := c.GetW(ctx, "/app/config")
//	...
//	ev := <-changed // the next NodeDataChanged or NodeDeleted of /app/config
//
// Every operation takes a context first. Its cancellation stops the wait,
// never the connection: the request stays in flight and its late answer is
// dropped. Errors are *OpError values wrapping the sentinels of this package
// (ErrNoNode, ErrBadVersion, ErrSessionExpired, …): match them with
// errors.Is.
//
// # Connections and sessions
//
// Connect tries the servers in a random order, with exponential backoff and
// jitter between attempts, until one establishes a session. Whenever the
// connection drops, or has been silent for two thirds of the session
// timeout (as with ZooKeeper's client, that leaves a third of it to resume
// elsewhere before the leader, no longer told the session is alive, expires
// it; each attempt to resume then gets a share of that third), the client
// reconnects to the next server and resumes the
// session (id, password and the largest zxid it has seen, so that it never
// reads older state than it already saw). Meanwhile requests wait, as long as
// their contexts allow. The client never declares a session expired on its
// own: only the server knows, and a new leader gives every session a fresh
// timeout.
//
// The session's states (connected, with the server; disconnected; expired)
// are reported by StateEvents. After expiry every operation fails with
// ErrSessionExpired until the program calls NewSession, having dealt with
// the loss of its ephemeral nodes and watches.
//
// # Exactly-once writes
//
// The server applies a write identified by (session, xid) at most once and
// answers a resent one with its first result. So after a reconnect that
// resumes the session, the client resends every request still in flight
// with its original xid, in the original order, and the caller gets the one
// true outcome: a Create never reports ErrNodeExists for its own node, a Set
// is not applied twice. Only when the session itself is lost is the outcome
// of a sent write unknown: it then fails with an error matching both
// ErrSessionExpired and ErrUnknownOutcome. A read, or a write never sent,
// fails with ErrSessionExpired alone.
//
// # Watches
//
// GetW, ExistsW and ChildrenW set one-shot watches: each returns a channel
// that receives exactly one Event, then is closed. AddWatch sets a persistent
// (optionally recursive) watch whose Watcher streams events until removed.
// The client keeps its own registry of watches and hands each event the
// server pushes (one per change and connection) to every local watcher it
// matches; on reconnect it re-arms them all with set_watches and the last
// zxid it saw, so the server fires, or replays, what changed meanwhile.
// Events are delivered without reordering. A watch that ends without a
// change (session expiry, RemoveWatches, and for one-shot watches Close)
// receives a last EventNotWatching whose Err says why; Close closes
// persistent watch channels at once.
//
// # Goroutines and their owners
//
//   - The manager goroutine (Client.run), started by Connect and joined by
//     Close, owns the connection life cycle: dial, handshake (connect, auth
//     replay, set_watches), serve, backoff, expiry, final shutdown.
//   - Each connection has one reader and one writer goroutine, started and
//     joined by the manager in serve. The reader answers pending requests
//     and dispatches events; the writer writes queued requests in xid order
//     and sends a heartbeat after a third of the session timeout without a
//     write: a ping, or an unsolicited pong (not answered) when the server
//     was heard from in the last sixth of it.
//   - Each persistent Watcher and each StateEvents stream has a pump
//     goroutine that moves values from an unbounded queue to its channel, so
//     a slow consumer never blocks the reader. It exits when the stream ends
//     (removal, expiry, context, Close); Close joins it.
//
// Callers' goroutines marshal their requests, wait for a free in-flight
// slot (WithMaxInFlight), then take Client.mu to get an xid and queue the
// request, and wait for its answer on a channel closed by the reader.
//
// # Locking
//
// Client.mu guards the session, the pending requests, the watch registry and
// the state subscribers. Xids are assigned and requests queued under it, in
// one step, so requests go out in xid order. The reader handles each frame
// under it, so a watch registered by a read's answer is in place before the
// next frame, and an event cannot overtake an answer. Nothing blocks while
// holding it: the send queue has room for every request that holds a slot,
// one-shot channels have room for their one event, and streams queue without
// bound. The lock order is Client.mu, then a stream's own mutex (a leaf).
package client
