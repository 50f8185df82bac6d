// Package testcluster runs real coordd processes on 127.0.0.1 for tests:
// it builds the binary once per test process, starts one or more members
// with their own data dirs, finds their bound addresses, kills (-9),
// stops (SIGTERM) and restarts them, and dumps their logs when a test
// fails. RawConn speaks PROTOCOL.md frame by frame for protocol tests.
//
// Nothing here is a fake: every server is a separate process talking over
// real sockets.
package testcluster
