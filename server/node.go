package server

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/coord-dev/coord/internal/raftstore"
	"github.com/coord-dev/coord/internal/wire"
	"github.com/coord-dev/coord/znode"
)

// proposal is one entry waiting to be committed and applied. done is called
// exactly once: by the apply goroutine with the outcome, or with an error
// when the proposal is abandoned. It must not block.
type proposal struct {
	id    uint64
	data  []byte
	term  uint64    // term in which it was last handed to raft; 0 = not yet
	since time.Time // when it was last handed to raft
	done  func(o *znode.Outcome, err error)
	// abandoned reports that nobody waits for the outcome any more (the
	// connection closed, the context ended); nil: never.
	abandoned func() bool
}

// readRequest asks for a linearizable read index; done runs on the raft
// goroutine and must not block.
type readRequest struct {
	done func(index uint64, err error)
}

type raftMessage = *raftpb.Message

// applyItem is one committed entry on its way to the state machine.
type applyItem = znode.Committed

// storage is raft's view of the log: the pebble log store, with the
// ConfState taken from the state machine (which stores it atomically with
// the applied index) when it has one.
type storage struct {
	*raftstore.Store
	conf *raftpb.ConfState
}

func (st *storage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	hs, cs, err := st.Store.InitialState()
	if err != nil || st.conf == nil {
		return hs, cs, err
	}
	return hs, st.conf, nil
}

// newRaftNode restores or bootstraps the raft node.
func (s *Server) newRaftNode() (*raft.RawNode, error) {
	st := &storage{Store: s.rlog}
	var mem *membership
	if b := s.state.Conf(); b != nil {
		m, err := decodeMembership(b)
		if err != nil {
			return nil, err
		}
		cs, err := m.confState()
		if err != nil {
			return nil, err
		}
		st.conf = cs
		mem = m
	}
	hs, _, err := st.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	applied := s.state.AppliedIndex()
	if c := hs.GetCommit(); applied > c {
		// The state machine may be ahead of the log's commit index after a
		// snapshot restore; raft redelivers (commit, applied] and apply
		// skips what it has.
		applied = c
	}
	rc := &raft.Config{
		ID:                        s.id,
		ElectionTick:              s.cfg.ElectionTicks,
		HeartbeatTick:             s.cfg.HeartbeatTicks,
		Storage:                   st,
		Applied:                   applied,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  8 << 20,
		MaxUncommittedEntriesSize: 256 << 20,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    newRaftLogger(s.log.With("component", "raft")),
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	if s.rlog.Bootstrapped() {
		if mem == nil {
			return nil, errors.New("raft log exists but the state has no membership record")
		}
		s.members.Store(mem)
		return rn, nil
	}
	if s.cfg.Join != "" {
		// A joining member starts empty; the leader sends it the log or a
		// snapshot once it is in the configuration.
		cid, err := s.joinCluster()
		if err != nil {
			return nil, err
		}
		s.members.Store(&membership{ClusterID: cid})
		return rn, nil
	}
	var members []Member
	if s.cfg.Cluster == "" {
		members = []Member{{ID: s.id, PeerAddr: s.cfg.AdvertisePeerAddr}}
	} else if members, err = parseCluster(s.cfg.Cluster); err != nil {
		return nil, err
	}
	// The bootstrap entries must be identical on every member (they are
	// log entries 1..n everywhere), so they carry only what --cluster says;
	// each member publishes its client address and incarnation afterwards.
	found := false
	for i := range members {
		if members[i].ID == s.id {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("member id %d is not in --cluster %q", s.id, s.cfg.Cluster)
	}
	cid := clusterID(members)
	if s.cfg.Cluster == "" {
		cid = s.incarnation // a single server's own cluster
	}
	if err := s.saveClusterID(cid); err != nil {
		return nil, err
	}
	s.members.Store(&membership{ClusterID: cid})
	peers := make([]raft.Peer, len(members))
	for i, m := range members {
		ctx, _ := json.Marshal(confContext{Member: m, ClusterID: cid})
		peers[i] = raft.Peer{ID: m.ID, Context: ctx}
	}
	if err := rn.Bootstrap(peers); err != nil {
		return nil, fmt.Errorf("raft bootstrap: %w", err)
	}
	return rn, nil
}

// confContext travels in every conf change entry.
type confContext struct {
	Member    Member `json:"member"`
	ClusterID uint64 `json:"cluster_id,omitempty"`
}

// runRaft is the raft goroutine: the only one touching the RawNode.
func (s *Server) runRaft(rn *raft.RawNode) {
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	r := &raftLoop{s: s, rn: rn, reads: map[uint64][]*readRequest{}}
	r.prevHS = &raftpb.HardState{}
	if hs := rn.BasicStatus().HardState; hs != nil {
		r.prevHS = proto.Clone(hs).(*raftpb.HardState)
	}
	s.term.Store(r.prevHS.GetTerm())
	s.commit.Store(r.prevHS.GetCommit())
	defer r.abandonAll(errStopped)
	for {
		select {
		case <-s.stopc:
			return
		case <-ticker.C:
			rn.Tick()
			r.onTick()
			s.soleVoter.Store(r.soleVoter())
			if r.lead == raft.None && r.soleVoter() {
				// Nobody to wait for: do not sit out an election timeout.
				_ = rn.Campaign()
			}
		case p := <-s.propc:
			r.propose(p)
		case rq := <-s.readc:
			r.readIndex(rq)
		case m := <-s.recvc:
			r.step(m)
		case f := <-s.ctrlc:
			f(r)
		case id := <-s.peers.unreachable:
			rn.ReportUnreachable(id)
		case st := <-s.peers.snapStatus:
			rn.ReportSnapshot(st.to, st.status)
		}
		// While the disk is (almost) full nothing can be persisted: leave
		// raft's Ready unhandled (raft waits, the leader's flow control
		// bounds what piles up in memory) instead of failing on ENOSPC.
		// Local reads go on; writes are refused at propose.
		for rn.HasReady() && !r.diskFull() {
			if !r.handleReady() {
				return
			}
			// A leader in a new term: what was proposed in older terms may
			// be lost; propose it again before anything newer.
			if r.lead != raft.None {
				if term := rn.BasicStatus().GetTerm(); term != r.flushedTerm {
					r.flushedTerm = term
					r.reproposeBacklog()
				}
			}
		}
	}
}

var errStopped = fmt.Errorf("%w: server stopping", wire.ErrConnectionLoss)

type raftLoop struct {
	s           *Server
	rn          *raft.RawNode
	prevHS      *raftpb.HardState
	lead        uint64
	state       raft.StateType
	readSeq     uint64
	reads       map[uint64][]*readRequest // read index requests in flight by context
	readSince   map[uint64]time.Time
	waiting     []*readRequest // reads not yet handed to raft (no leader)
	dropped     []*proposal    // proposals raft refused (no leader yet), in order
	flushedTerm uint64         // the term whose leader got the backlog
	group       groupCommit    // whether a lone write waits for company
	stalled     bool           // Ready handling stopped: the disk is full
}

// diskFull reports whether the data dir's disk is (almost) full.
func (r *raftLoop) diskFull() bool {
	g := r.s.disk
	if g.isFull() {
		if !r.stalled {
			r.stalled = true
			r.s.log.Error("disk full: not persisting raft entries until space is freed", "free_bytes", g.free.Load())
		}
		return true
	}
	if r.stalled {
		r.stalled = false
		r.s.log.Info("disk space available again: resuming")
	}
	return false
}

// soleVoter reports whether this server is the only voter.
func (r *raftLoop) soleVoter() bool {
	ids := r.rn.Status().Config.Voters.IDs()
	_, me := ids[r.s.id]
	return me && len(ids) == 1
}

// propose hands p and every other queued proposal to raft in one message.
func (r *raftLoop) propose(first *proposal) {
	batch := r.drainProposals([]*proposal{first})
	if r.state == raft.StateLeader && !r.s.cfg.NoGroupCommitWait && len(r.dropped) == 0 {
		batch = r.awaitCompany(batch)
	}
	if len(r.dropped) > 0 {
		// Older proposals wait for a leader: keep the order.
		r.dropped = append(r.dropped, batch...)
		if r.lead != raft.None {
			r.reproposeBacklog()
		}
		return
	}
	r.proposeBatch(batch)
}

// drainProposals appends to batch what is queued, up to 1,024 in all.
func (r *raftLoop) drainProposals(batch []*proposal) []*proposal {
	for len(batch) < 1024 {
		select {
		case p := <-r.s.propc:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// awaitCompany lets a lone write wait up to an fsync time for the next,
// when writes have lately been coming in such pairs (see groupCommit), and
// returns the batch to propose.
func (r *raftLoop) awaitCompany(batch []*proposal) []*proposal {
	wait := r.group.arrived(len(batch), batch[0].since)
	if wait == 0 {
		return batch
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case p := <-r.s.propc:
		r.group.record(true)
		r.s.metrics.groupJoined.Inc()
		batch = r.drainProposals(append(batch, p))
	case <-t.C:
		r.group.record(false)
		r.s.metrics.groupAlone.Inc()
	case <-r.s.stopc:
	}
	return batch
}

// reproposeBacklog hands raft, in proposal order, every proposal that may
// have been lost: those raft refused for want of a leader and those handed
// over in an older term. Run as soon as a new leader is known and before any
// new proposal, so that a connection's writes reach the log in the order
// they were made (apply refuses a session's write that arrives after a later
// one).
func (r *raftLoop) reproposeBacklog() {
	term := r.rn.BasicStatus().GetTerm()
	batch := append(r.dropped, r.s.waiters.olderTerm(term)...)
	r.dropped = nil
	sortProposals(batch)
	r.proposeBatch(r.live(batch))
}

func (r *raftLoop) proposeBatch(batch []*proposal) {
	if len(batch) == 0 {
		return
	}
	term := r.rn.BasicStatus().GetTerm()
	now := time.Now()
	ents := make([]*raftpb.Entry, len(batch))
	for i, p := range batch {
		ents[i] = &raftpb.Entry{Data: p.data}
		p.term, p.since = term, now
		r.s.waiters.add(p)
	}
	r.s.metrics.proposalBatch.Observe(float64(len(batch)))
	err := r.rn.Step(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: new(r.s.id), Entries: ents})
	if err != nil {
		// No leader (or a transfer in progress): keep them and retry on
		// the next tick until their deadline.
		for _, p := range batch {
			p.term = 0
		}
		r.dropped = append(r.dropped, batch...)
	}
}

func (r *raftLoop) readIndex(first *readRequest) {
	batch := []*readRequest{first}
	for {
		select {
		case rq := <-r.s.readc:
			batch = append(batch, rq)
			continue
		default:
		}
		break
	}
	r.issueRead(batch)
}

func (r *raftLoop) issueRead(batch []*readRequest) {
	if r.lead == raft.None {
		r.waiting = append(r.waiting, batch...)
		return
	}
	r.readSeq++
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], r.readSeq)
	r.reads[r.readSeq] = batch
	if r.readSince == nil {
		r.readSince = map[uint64]time.Time{}
	}
	r.readSince[r.readSeq] = time.Now()
	r.rn.ReadIndex(ctx[:])
}

func (r *raftLoop) step(m raftMessage) {
	for {
		if err := r.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			r.s.log.Debug("raft step", "err", err, "type", m.GetType().String(), "from", m.GetFrom())
		}
		select {
		case m = <-r.s.recvc:
			continue
		default:
		}
		return
	}
}

// onTick retries what raft dropped and gives up on what waited too long.
func (r *raftLoop) onTick() {
	now := time.Now()
	timeout := r.s.cfg.RequestTimeout
	// Reads raft lost (a leader change drops pending read index requests)
	// are asked again after an election timeout.
	retryAfter := r.s.cfg.TickInterval * time.Duration(r.s.cfg.ElectionTicks)
	var retry []*readRequest
	for seq, since := range r.readSince {
		if now.Sub(since) > retryAfter {
			retry = append(retry, r.reads[seq]...)
			delete(r.reads, seq)
			delete(r.readSince, seq)
		}
	}
	if r.lead != raft.None {
		retry = append(retry, r.waiting...)
		r.waiting = nil
	}
	if len(retry) > 0 {
		r.issueRead(retry)
	}
	// Proposals raft refused (no leader yet) are retried once one is known.
	if len(r.dropped) > 0 && r.lead != raft.None {
		r.reproposeBacklog()
	}
	if r.lead == raft.None {
		return
	}
	// Proposals handed to raft in an older term may have been lost with the
	// old leader, and any proposal can be lost in transit: propose them
	// again, in order. Apply answers a resent client write with its first
	// result and system entries are idempotent, so a copy that was not lost
	// after all does no harm. Proposals whose requester is gone are dropped.
	term := r.rn.BasicStatus().GetTerm()
	again := r.live(r.s.waiters.due(now, timeout, term))
	if len(again) > 0 {
		r.proposeBatch(again)
	}
}

// live filters out (and answers) the proposals whose requester gave up.
func (r *raftLoop) live(ps []*proposal) []*proposal {
	out := ps[:0]
	for _, p := range ps {
		if p.abandoned != nil && p.abandoned() {
			r.s.waiters.remove(p.id)
			p.done(nil, errAbandoned)
			continue
		}
		out = append(out, p)
	}
	return out
}

var errAbandoned = fmt.Errorf("%w: the request was abandoned before it was applied", wire.ErrConnectionLoss)

// handleReady processes one Ready in the order raft's doc.go requires. It
// returns false after a fatal storage error.
func (r *raftLoop) handleReady() bool {
	s := r.s
	rd := r.rn.Ready()
	if rd.SoftState != nil {
		r.onSoftState(rd.SoftState)
	}
	isLeader := r.state == raft.StateLeader
	if isLeader {
		// The leader may send its appends while it persists them (raft
		// thesis 10.2.1).
		s.peers.send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if !s.disk.waitEnter(s.stopc) {
			return false
		}
		err := s.installSnapshot(rd.Snapshot)
		s.disk.exit()
		if err != nil {
			s.fatal(fmt.Errorf("install snapshot: %w", err))
			return false
		}
	}
	// Committed entries are durable on a quorum already: hand them to the
	// apply goroutine before persisting this Ready's new entries, so that a
	// write is answered one fsync sooner (etcd does the same).
	if len(rd.CommittedEntries) > 0 {
		items := r.committed(rd.CommittedEntries)
		select {
		case s.applyc <- items:
		case <-s.stopc:
			return false
		}
	}
	hs := rd.HardState
	var hsToSave *raftpb.HardState
	if hs != nil && !raft.IsEmptyHardState(hs) {
		hsToSave = hs
	}
	if hsToSave != nil || len(rd.Entries) > 0 {
		sync := len(rd.Entries) > 0 || raft.MustSync(hsToSave, r.prevHS, 0)
		if !s.disk.waitEnter(s.stopc) {
			return false
		}
		if len(rd.Entries) > 0 {
			s.crashPoint(CrashBeforeLogSave)
		}
		start := time.Now()
		err := s.rlog.Save(hsToSave, rd.Entries, sync)
		s.disk.exit()
		if err == nil && len(rd.Entries) > 0 {
			s.crashPoint(CrashAfterLogSave)
		}
		if err != nil {
			// A failed fsync is never retried: the process stops.
			s.fatal(fmt.Errorf("persist raft log: %w", err))
			return false
		}
		if sync {
			end := time.Now()
			s.metrics.fsync.Observe(end.Sub(start).Seconds())
			r.group.observeFsync(start, end)
		}
		if hsToSave != nil {
			r.prevHS = hsToSave
			s.term.Store(hsToSave.GetTerm())
			s.commit.Store(hsToSave.GetCommit())
		}
	}
	if !isLeader {
		s.peers.send(rd.Messages)
	}
	for _, rs := range rd.ReadStates {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(rs.RequestCtx)
		for _, rq := range r.reads[seq] {
			rq.done(rs.Index, nil)
		}
		delete(r.reads, seq)
		delete(r.readSince, seq)
	}
	r.rn.Advance(rd)
	return true
}

func (r *raftLoop) onSoftState(ss *raft.SoftState) {
	s := r.s
	prevLead := r.lead
	r.lead, r.state = ss.Lead, ss.RaftState
	s.leader.Store(ss.Lead)
	role := "follower" // PROTOCOL.md's roles: candidates count as followers
	if ss.RaftState == raft.StateLeader {
		role = "leader"
	}
	if m := s.members.Load(); m != nil {
		if me, ok := m.member(s.id); ok && me.Learner {
			role = "learner"
		}
	}
	s.role.Store(role)
	if prevLead != ss.Lead {
		s.log.Info("leader changed", "leader", ss.Lead, "role", role, "term", r.rn.BasicStatus().GetTerm())
		s.metrics.leaderChanges.Inc()
		s.onLeaderChange(ss.RaftState == raft.StateLeader)
	}
}

// committed turns committed raft entries into apply items, applying conf
// changes to raft on the way (raft requires it before the next Ready).
func (r *raftLoop) committed(ents []*raftpb.Entry) []applyItem {
	items := make([]applyItem, 0, len(ents))
	for _, e := range ents {
		item := applyItem{Index: e.GetIndex()}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				item.Data = e.Data
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.Data, &cc); err != nil {
				r.s.fatal(fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err))
				return nil
			}
			item.Conf = r.applyConfChange(e.GetIndex(), &cc)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.Data, &cc); err != nil {
				r.s.fatal(fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err))
				return nil
			}
			item.Conf = r.applyConfChangeV2(e.GetIndex(), &cc)
		}
		items = append(items, item)
	}
	return items
}

func (r *raftLoop) applyConfChange(index uint64, cc *raftpb.ConfChange) []byte {
	m := r.s.members.Load().clone()
	var ctx confContext
	if len(cc.GetContext()) > 0 {
		if err := json.Unmarshal(cc.GetContext(), &ctx); err != nil {
			r.s.log.Warn("conf change with unreadable context", "index", index, "err", err)
		}
	}
	if ctx.ClusterID != 0 && m.ClusterID == 0 {
		m.ClusterID = ctx.ClusterID
	}
	id := cc.GetNodeId()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		ctx.Member.ID = id
		ctx.Member.Learner = false
		if old, ok := m.member(id); ok && ctx.Member.PeerAddr == "" {
			ctx.Member = old
			ctx.Member.Learner = false
		}
		m.upsert(ctx.Member)
	case raftpb.ConfChangeAddLearnerNode:
		ctx.Member.ID = id
		ctx.Member.Learner = true
		m.upsert(ctx.Member)
	case raftpb.ConfChangeRemoveNode:
		m.remove(id)
	case raftpb.ConfChangeUpdateNode:
		if old, ok := m.member(id); ok {
			if ctx.Member.PeerAddr != "" {
				old.PeerAddr = ctx.Member.PeerAddr
			}
			if ctx.Member.ClientAddr != "" {
				old.ClientAddr = ctx.Member.ClientAddr
			}
			if ctx.Member.Incarnation != 0 {
				old.Incarnation = ctx.Member.Incarnation
			}
			m.upsert(old)
		}
	}
	cs := r.rn.ApplyConfChange(cc)
	m.setConfState(cs)
	m.ConfIndex = index
	r.s.members.Store(m)
	r.s.onMembershipChange(m, cc.GetType() == raftpb.ConfChangeRemoveNode && id == r.s.id)
	return m.encode()
}

func (r *raftLoop) applyConfChangeV2(index uint64, cc *raftpb.ConfChangeV2) []byte {
	m := r.s.members.Load().clone()
	cs := r.rn.ApplyConfChange(cc)
	m.setConfState(cs)
	m.ConfIndex = index
	r.s.members.Store(m)
	return m.encode()
}

// abandonAll fails every request still waiting on raft.
func (r *raftLoop) abandonAll(err error) {
	for _, batch := range r.reads {
		for _, rq := range batch {
			rq.done(0, err)
		}
	}
	for _, rq := range r.waiting {
		rq.done(0, err)
	}
	for _, p := range r.dropped {
		p.done(nil, err)
	}
	for _, p := range r.s.waiters.drain() {
		p.done(nil, err)
	}
	// Drain what is queued in the channels, so no caller waits forever.
	for {
		select {
		case p := <-r.s.propc:
			p.done(nil, err)
		case rq := <-r.s.readc:
			rq.done(0, err)
		default:
			return
		}
	}
}
