// Package watch is the per-server watch registry: which watcher (one client
// connection on this server) watches which path, and which watches a change
// fires.
//
// # Role
//
// Watches live only in the memory of the server a client is connected to; they
// are never replicated. The server registers a watch when it answers a read
// with watch=true, an add_watch or a set_watches (Add), removes them on
// remove_watches (Remove) and when the connection closes (RemoveWatcher), and
// calls Trigger for every znode.Change its apply produced, in apply order. The
// registry decides who is told; sending the events is the server's business.
//
// # Firing rules
//
// They are ZooKeeper's (WatchManager with the persistent watches of 3.6). A
// server-side watch has one of four kinds: Data (set by get and by exists, as
// ZooKeeper's server keeps one table for both; Exist is accepted as an alias),
// Child, Persistent and PersistentRecursive. For a change of path P:
//
//	NodeCreated, NodeDataChanged  Data, Persistent and PersistentRecursive on P;
//	                              PersistentRecursive on every ancestor of P
//	NodeDeleted                   Data, Child, Persistent and PersistentRecursive
//	                              on P; PersistentRecursive on every ancestor
//	NodeChildrenChanged           Child and Persistent on P only
//
// One-shot watches (Data, Child) are removed when they fire; persistent ones
// stay until removed. A watcher gets at most one Fired per change, whatever
// number of its watches matched, with the changed path as the event path.
// Trigger's result is sorted by WatcherID, so it is deterministic.
//
// Trigger does not check ACLs: like ZooKeeper (since the fix of
// CVE-2024-23944) the server must drop an event for a watcher whose
// connection lacks READ permission on Change.ACL. The one-shot watches behind
// a dropped event are consumed all the same, as in ZooKeeper.
//
// ResumeEvent is ZooKeeper's DataTree.setWatches rule for the one-shot
// watches of set_watches. Persistent watches are resumed by replaying the
// raft log (DESIGN.md), which is not this package's business.
//
// # Invariants
//
//   - Memory is proportional to the distinct (path, watcher) pairs: a path
//     entry holds its watchers with a bit set of their kinds (a short slice,
//     a map once a path has many watchers), and each watcher has a reverse
//     index of the path entries it is in. A path entry exists only while it
//     has a watcher and a watcher's index only while it has a watch.
//   - (w, P) is in the path table exactly when P's entry is in w's index,
//     with a non-empty kind set; Count(w) is the number of kind bits w holds.
//   - Trigger looks at the watchers of P and, only when some recursive watch
//     exists at all, at the watchers of P's ancestors that hold a recursive
//     watch: O(depth) map lookups, never a scan of unrelated watches.
//
// Paths must be valid (wire.ValidatePath); the registry does not check them.
// It keeps its own copy of a path string, never the caller's.
//
// # Ownership and locking
//
// A Registry is safe for concurrent use. One sync.Mutex (Registry.mu) guards
// all of its state; it is a leaf lock: no method calls out or takes another
// lock while holding it, so callers may hold their own locks when calling in.
// The zero Registry is empty and ready to use.
//
// The server owns the WatcherIDs: it must not reuse one while the registry
// may hold it (a counter will do), and must call RemoveWatcher only once no
// Add for that connection can follow (after its request goroutines exited);
// an Add after RemoveWatcher would register watches nobody removes. ZooKeeper
// guards the same race with its isDeadWatcher check.
//
// The registry cannot order a read against apply by itself: to keep
// ZooKeeper's guarantee that no change between a read and its watch is missed,
// the server must Add a read's watch before it applies (and Triggers) any
// later entry, e.g. by reading and registering under the same lock that apply
// holds while it changes the tree and calls Trigger.
package watch
