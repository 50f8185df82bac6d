package server

import (
	"net"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// transport carries raft messages between members. (The peer protocol is
// filled in by the replication work; a single-member cluster sends
// nothing.)
type transport struct {
	s  *Server
	ln net.Listener
	wg sync.WaitGroup
}

func newTransport(s *Server) *transport { return &transport{s: s} }

func (t *transport) start(ln net.Listener) {
	t.ln = ln
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
}

func (t *transport) stop() {
	if t.ln != nil {
		_ = t.ln.Close()
	}
	t.wg.Wait()
}

// send queues messages to their members without blocking.
func (t *transport) send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		if m.GetTo() == t.s.id {
			continue
		}
		t.s.log.Debug("no transport to peer yet; dropping message", "to", m.GetTo(), "type", m.GetType().String())
	}
}
