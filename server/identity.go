package server

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The server owns keys starting with 's' in the shared pebble DB (raftstore
// owns 'r', znode owns 'z' and 'h').
var identityKey = []byte("s/identity")

// identity is what a data dir remembers about the member that created it.
type identity struct {
	Version     int    `json:"v"`
	ID          uint64 `json:"id"`
	Incarnation uint64 `json:"incarnation"` // random, chosen when the data dir was created
	ClusterID   uint64 `json:"cluster_id,omitempty"`
	// The addresses the member last ran with, so that a restart needs no
	// flag beyond --data-dir.
	ClientAddr          string `json:"client_addr,omitempty"`
	PeerAddr            string `json:"peer_addr,omitempty"`
	AdvertiseClientAddr string `json:"advertise_client_addr,omitempty"`
	AdvertisePeerAddr   string `json:"advertise_peer_addr,omitempty"`
}

// loadIdentity reads or creates the data dir's identity and settles s.id.
func (s *Server) loadIdentity() error {
	v, closer, err := s.db.Get(identityKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		id := s.cfg.ID
		if id == 0 {
			id = 1
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		ident := identity{Version: 1, ID: id, Incarnation: binary.LittleEndian.Uint64(b[:]) | 1}
		enc, _ := json.Marshal(ident)
		if err := s.db.Set(identityKey, enc, pebble.Sync); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		s.id = id
		s.incarnation = ident.Incarnation
		s.stored = ident
		return nil
	case err != nil:
		return fmt.Errorf("identity: %w", err)
	}
	defer closer.Close()
	var ident identity
	if err := json.Unmarshal(v, &ident); err != nil || ident.Version != 1 || ident.ID == 0 {
		return fmt.Errorf("identity: data dir %s has a corrupt identity record", s.cfg.DataDir)
	}
	if s.cfg.ID != 0 && s.cfg.ID != ident.ID {
		return fmt.Errorf("identity: data dir %s belongs to member %d, not %d", s.cfg.DataDir, ident.ID, s.cfg.ID)
	}
	s.id = ident.ID
	s.incarnation = ident.Incarnation
	s.clusterIDv.Store(ident.ClusterID)
	s.stored = ident
	return nil
}

// applyStoredAddrs uses the addresses of the last run for those not set
// explicitly (the flags given, in unset).
func (s *Server) applyStoredAddrs(unset map[string]bool) {
	st := s.stored
	if unset["client"] && st.ClientAddr != "" {
		s.cfg.ClientAddr = st.ClientAddr
	}
	if unset["peer"] && st.PeerAddr != "" {
		s.cfg.PeerAddr = st.PeerAddr
	}
	if s.cfg.AdvertiseClientAddr == "" {
		s.cfg.AdvertiseClientAddr = st.AdvertiseClientAddr
	}
	if s.cfg.AdvertisePeerAddr == "" {
		s.cfg.AdvertisePeerAddr = st.AdvertisePeerAddr
	}
}

// saveAddrs records the addresses this run uses (bound ones for port 0).
func (s *Server) saveAddrs(client, peer, advClient, advPeer string) error {
	ident := identity{Version: 1, ID: s.id, Incarnation: s.incarnation, ClusterID: s.clusterIDv.Load(),
		ClientAddr: client, PeerAddr: peer, AdvertiseClientAddr: advClient, AdvertisePeerAddr: advPeer}
	enc, _ := json.Marshal(ident)
	if err := s.db.Set(identityKey, enc, pebble.Sync); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	s.stored = ident
	return nil
}

// saveClusterID records the cluster this data dir belongs to.
func (s *Server) saveClusterID(cid uint64) error {
	ident := s.stored
	ident.Version, ident.ID, ident.Incarnation, ident.ClusterID = 1, s.id, s.incarnation, cid
	enc, _ := json.Marshal(ident)
	if err := s.db.Set(identityKey, enc, pebble.Sync); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	s.stored = ident
	s.clusterIDv.Store(cid)
	return nil
}

// clusterID returns the id of the cluster this server belongs to.
func (s *Server) clusterID() uint64 {
	if id := s.clusterIDv.Load(); id != 0 {
		return id
	}
	if m := s.members.Load(); m != nil {
		return m.ClusterID
	}
	return 0
}
