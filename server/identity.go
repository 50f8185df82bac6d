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
	return nil
}

// saveClusterID records the cluster this data dir belongs to.
func (s *Server) saveClusterID(cid uint64) error {
	ident := identity{Version: 1, ID: s.id, Incarnation: s.incarnation, ClusterID: cid}
	enc, _ := json.Marshal(ident)
	if err := s.db.Set(identityKey, enc, pebble.Sync); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
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
