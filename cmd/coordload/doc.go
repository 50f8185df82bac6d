// Command coordload is coord's load generator. It speaks PROTOCOL.md over
// raw websockets (gorilla/websocket and internal/wire, not the client
// package) so that its own cost per request stays small next to the server's
// on a shared machine:
//
//   - one reader and one writer goroutine per session; the writer holds
//     --pipeline credits (1 = closed loop) and coalesces the frames of credits
//     that are ready together into one write;
//   - requests are pre-encoded per key, only `{"xid":N` is written per
//     request, and answers are matched to an xid→send-time ring without a
//     full JSON decode (wire.DecodeResponse is the fallback);
//   - latencies go into per-session log-bucketed histograms (hist.go),
//     merged at the end; only answers received inside the window
//     (after --warmup, for --duration) are counted, while errors are counted
//     over the whole run, by code, and never dropped.
//
// Workloads: write, read, read-local, mixed, ephemeral-seq (load.go),
// watch-fanout (fanout.go), idle-sessions (idle.go); mutex is a stub until
// the client recipes exist. Each run prints a table and one
// `RESULT key=value …` line, or with -o json one JSON object; docs/benchmarks.md
// records the figures and how they were produced.
package main
