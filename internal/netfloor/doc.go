//go:build linux

// Command netfloor measures the floor under coordd's idle-session cost: the
// CPU that a server spends, on this machine, only to be woken by and read
// many idle connections' heartbeats, with none of coord's work. It compares
// a goroutine per connection (as coordd, and any net/http or gorilla server)
// with a hand-written epoll loop, with and without an answer to every
// heartbeat, and with wake-ups coalesced.
//
//	go build -o /tmp/netfloor ./internal/netfloor
//	/tmp/netfloor -mode goroutines &          # or -mode epoll [-coalesce 20ms]
//	/tmp/netfloor -mode client -pid $!        # add -reply to both for answered heartbeats
//
// The client opens -conns connections and sends a 6-byte frame (a masked
// websocket control frame without payload, the size of coord's Go client's
// heartbeat) on each every -interval, spread as coordload idle-sessions
// spreads its heartbeats (a share every 20 ms), then prints the server's CPU
// use, from /proc, over -duration. See docs/benchmarks.md. Linux only
// (epoll, /proc).
package main
