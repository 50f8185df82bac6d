package server

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Member is one server of the cluster as the replicated configuration
// records it.
type Member struct {
	ID         uint64 `json:"id"`
	PeerAddr   string `json:"peer_addr"`
	ClientAddr string `json:"client_addr"`
	Learner    bool   `json:"learner,omitempty"`
	// Incarnation identifies the member's data dir; a member whose data
	// dir was wiped comes back with another and is refused.
	Incarnation uint64 `json:"incarnation,omitempty"`
}

// membership is the replicated cluster configuration, stored by the state
// machine atomically with the index of the conf change that produced it
// (znode.Committed.Conf) and included in its snapshots.
type membership struct {
	Version   int      `json:"v"`
	ClusterID uint64   `json:"cluster_id"`
	ConfIndex uint64   `json:"conf_index"` // index of the last conf change applied
	ConfState []byte   `json:"conf_state"` // proto-encoded raftpb.ConfState
	Members   []Member `json:"members"`
}

const membershipVersion = 1

func (m *membership) encode() []byte {
	m.Version = membershipVersion
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("encode membership: %v", err)) // only plain fields: cannot fail
	}
	return b
}

func decodeMembership(b []byte) (*membership, error) {
	var m membership
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode membership: %w", err)
	}
	if m.Version != membershipVersion {
		return nil, fmt.Errorf("decode membership: unknown version %d", m.Version)
	}
	return &m, nil
}

func (m *membership) confState() (*raftpb.ConfState, error) {
	cs := &raftpb.ConfState{}
	if err := proto.Unmarshal(m.ConfState, cs); err != nil {
		return nil, fmt.Errorf("decode conf state: %w", err)
	}
	return cs, nil
}

func (m *membership) setConfState(cs *raftpb.ConfState) {
	b, err := proto.Marshal(cs)
	if err != nil {
		panic(fmt.Sprintf("encode conf state: %v", err))
	}
	m.ConfState = b
}

func (m *membership) member(id uint64) (Member, bool) {
	for _, x := range m.Members {
		if x.ID == id {
			return x, true
		}
	}
	return Member{}, false
}

// upsert adds or replaces a member, keeping the list sorted by id.
func (m *membership) upsert(x Member) {
	for i := range m.Members {
		if m.Members[i].ID == x.ID {
			m.Members[i] = x
			return
		}
	}
	m.Members = append(m.Members, x)
	sort.Slice(m.Members, func(i, j int) bool { return m.Members[i].ID < m.Members[j].ID })
}

func (m *membership) remove(id uint64) {
	m.Members = slices.DeleteFunc(m.Members, func(x Member) bool { return x.ID == id })
}

func (m *membership) clone() *membership {
	c := *m
	c.Members = slices.Clone(m.Members)
	c.ConfState = slices.Clone(m.ConfState)
	return &c
}

// parseCluster parses "1=host:port,2=host:port".
func parseCluster(s string) ([]Member, error) {
	var out []Member
	seen := map[uint64]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("cluster member %q: want id=host:port", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("cluster member %q: id must be a positive integer", part)
		}
		if seen[id] {
			return nil, fmt.Errorf("cluster member id %d given twice", id)
		}
		seen[id] = true
		out = append(out, Member{ID: id, PeerAddr: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %q names no member", s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// clusterID derives the cluster id from the initial member list, so that
// every member bootstrapped with the same --cluster agrees on it (as etcd
// derives its cluster id from the initial members).
func clusterID(members []Member) uint64 {
	h := fnv.New64a()
	for _, m := range members {
		fmt.Fprintf(h, "%d=%s;", m.ID, m.PeerAddr)
	}
	id := h.Sum64()
	if id == 0 {
		id = 1
	}
	return id
}
