// Package chaos is coord's fault-injection suite, in the spirit of Jepsen's
// tests of ZooKeeper and etcd and of etcd's robustness suite: it runs real
// coordd clusters on 127.0.0.1 with every peer link behind a
// fault-injecting proxy, drives client workloads while a nemesis kills,
// pauses, partitions, degrades and breaks the disks of the servers on a
// seeded schedule, and then checks what the clients saw.
//
// # Checkers
//
//   - LIN: single-key get/set/set-with-version/create/delete/multi from
//     many clients, checked with porcupine; outcomes lost to a connection
//     loss are "maybe applied" (an endless interval).
//   - DUR: every acknowledged create is present after every fault.
//   - CONV: every server ends with the same state digest.
//   - LOCK: recipe.Mutex holders write to a fenced register and to a
//     znode through Mutex.Do; tokens strictly increase, no stale write is
//     accepted, guarded writes never interleave, also when a holder pauses
//     past its session timeout.
//   - WATCH: persistent watches deliver every change exactly once in zxid
//     order; one-shot watches fire once for the right change; across
//     reconnects to other servers.
//   - SESS: ephemerals are never deleted while their session lives, and
//     go within the session timeout + 1 s of their owner's death.
//   - BAD: a live protocol fuzzer; no panic, goroutines back to the
//     baseline, well-behaved sessions unaffected.
//   - DISK and NEMESIS: the disk faults' outcomes, and that every fault
//     fired and the cluster recovered from it.
//
// Each checker is a pure function of a recorded history, tested on its own
// with histories mutated to contain the anomaly it looks for.
//
// # Validity
//
// A run where a fault never fired, the load before the first fault was too
// low, or the final write after healing failed is INVALID, never PASS.
//
// # Goroutines and ownership
//
// Run owns everything it starts: the cluster (through testcluster, stopped
// when the test ends), the proxies, the clients and every workload
// goroutine, all joined before it returns. The nemesis runs on Run's
// goroutine. Each proxy joins its own goroutines in Close.
package chaos
