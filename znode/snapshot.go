package znode

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cockroachdb/pebble/v2"

	"github.com/coord-dev/coord/internal/wire"
)

// The snapshot stream, version 1:
//
//	magic "coord-znode-snapshot\n", uvarint version
//	records, in key order: uvarint key length (> 0), uvarint value length,
//	    key, value — every key of the replicated state ('z')
//	uvarint 0
//	sha256 of every byte before it (32 bytes)
//
// Keys and values are the store's own encodings, which carry their versions
// (keyVersion, and a version byte in each value).
const (
	snapMagic   = "coord-znode-snapshot\n"
	snapVersion = 1
	maxSnapKey  = 64 << 10
	maxSnapVal  = 256 << 20
)

// ErrBadSnapshot is wrapped by Restore's errors about the stream itself.
var ErrBadSnapshot = errors.New("znode: bad snapshot")

// Snapshot writes a consistent point-in-time copy of the whole replicated
// state (tree, sessions, result caches, applied index, last applied time,
// Conf) to w and returns its applied index. It reads a pebble snapshot, so
// Apply continues meanwhile. The local history is not included.
func (s *Store) Snapshot(w io.Writer) (index uint64, err error) {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return 0, ErrClosed
	}
	snap := s.db.NewSnapshot()
	s.mu.RUnlock()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: stateEnd})
	if err != nil {
		return 0, fmt.Errorf("znode: snapshot: %w", err)
	}
	defer it.Close()

	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	var hdr []byte
	hdr = append(hdr, snapMagic...)
	hdr = binary.AppendUvarint(hdr, snapVersion)
	bw.Write(hdr)
	found := false
	var lens [2 * binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("znode: snapshot: %w", err)
		}
		if string(k) == keyApplied && len(v) == 8 {
			index, found = getU64(v), true
		}
		l := binary.PutUvarint(lens[:], uint64(len(k)))
		l += binary.PutUvarint(lens[l:], uint64(len(v)))
		bw.Write(lens[:l])
		bw.Write(k)
		if _, err := bw.Write(v); err != nil {
			return 0, fmt.Errorf("znode: snapshot: %w", err)
		}
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("znode: snapshot: %w", err)
	}
	if !found {
		return 0, fmt.Errorf("znode: snapshot: applied index missing")
	}
	bw.WriteByte(0)
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("znode: snapshot: %w", err)
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return 0, fmt.Errorf("znode: snapshot: %w", err)
	}
	return index, nil
}

// Restore replaces all replicated state with the snapshot stream's, in one
// pebble batch committed with fsync: a crash leaves either the old state or
// the new, never a mix. The local history is cleared (History then reports
// incomplete before the snapshot's index). A malformed or corrupt stream
// (checksum, order, missing meta) returns an error wrapping ErrBadSnapshot
// and changes nothing. The whole state passes through memory once, and must
// stay below pebble's 4 GiB batch limit.
func (s *Store) Restore(r io.Reader) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(stateStart, stateEnd, nil)
	_ = b.DeleteRange(historyStart, historyEnd, nil)
	index, err := readSnapshot(r, b)
	if err != nil {
		return err
	}
	_ = b.Set([]byte(keyHistFloor), be64(nil, index+1), nil)
	if gate := s.cfg.RestoreGate; gate != nil {
		if err := gate(index); err != nil {
			return err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.Commit(pebble.Sync); err != nil {
		s.broken = fmt.Errorf("znode: restore: commit: %w", err)
		return s.broken
	}
	s.cache.clear()
	s.kids.clear()
	if err := s.loadLocked(); err != nil {
		s.broken = err
		return err
	}
	s.broken = nil
	s.log.Info("znode state restored from snapshot", "applied", index, "sessions", len(s.mu.sessions))
	return nil
}

// snapReader reads a snapshot stream, hashing what it consumes.
type snapReader struct {
	br *bufio.Reader
	h  hash.Hash
}

func (r *snapReader) ReadByte() (byte, error) {
	c, err := r.br.ReadByte()
	if err == nil {
		r.h.Write([]byte{c})
	}
	return c, err
}

func (r *snapReader) readFull(p []byte) error {
	if _, err := io.ReadFull(r.br, p); err != nil {
		return err
	}
	r.h.Write(p)
	return nil
}

func (r *snapReader) uvarint() (uint64, error) { return binary.ReadUvarint(r) }

// readSnapshot checks the stream and adds its records to b; it returns the
// snapshot's applied index.
func readSnapshot(r io.Reader, b *pebble.Batch) (uint64, error) {
	bad := func(format string, args ...any) (uint64, error) {
		return 0, fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
	}
	sr := &snapReader{br: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	magic := make([]byte, len(snapMagic))
	if err := sr.readFull(magic); err != nil || string(magic) != snapMagic {
		return bad("not a coord snapshot (%v)", err)
	}
	if v, err := sr.uvarint(); err != nil || v != snapVersion {
		return bad("version %d, want %d (%v)", v, snapVersion, err)
	}
	var (
		prev              []byte
		index             uint64
		haveIndex, haveT  bool
		haveVer, haveRoot bool
		sessions          = make(map[uint64]bool)
		owners            = make(map[uint64]bool)
	)
	rootKey := nodeKey("/")
	for {
		klen, err := sr.uvarint()
		if err != nil {
			return bad("record: %v", err)
		}
		if klen == 0 {
			break
		}
		vlen, err := sr.uvarint()
		if err != nil {
			return bad("record: %v", err)
		}
		if klen > maxSnapKey || vlen > maxSnapVal {
			return bad("record of %d+%d bytes", klen, vlen)
		}
		op := b.SetDeferred(int(klen), int(vlen))
		if err := sr.readFull(op.Key); err != nil {
			return bad("record: %v", err)
		}
		if err := sr.readFull(op.Value); err != nil {
			return bad("record: %v", err)
		}
		k, v := op.Key, op.Value
		if k[0] != prefixState[0] || (prev != nil && bytes.Compare(k, prev) <= 0) {
			return bad("key %q out of place", k)
		}
		prev = append(prev[:0], k...)
		switch {
		case string(k) == keyVersion:
			if len(v) != 1 || v[0] != stateVersion {
				return bad("state version %v, want %d", v, stateVersion)
			}
			haveVer = true
		case string(k) == keyApplied:
			if len(v) != 8 {
				return bad("applied index of %d bytes", len(v))
			}
			index, haveIndex = getU64(v), true
		case string(k) == keyTime:
			if len(v) != 8 {
				return bad("time of %d bytes", len(v))
			}
			haveT = true
		case bytes.Equal(k, rootKey):
			haveRoot = true
		case bytes.HasPrefix(k, []byte(prefixSession)):
			if len(k) != len(prefixSession)+8 {
				return bad("session key %q", k)
			}
			sessions[getU64(k[len(prefixSession):])] = true
		case bytes.HasPrefix(k, []byte(prefixEph)), bytes.HasPrefix(k, []byte(prefixResult)):
			if len(k) < 2+8 {
				return bad("key %q", k)
			}
			owners[getU64(k[2:])] = true
		}
		if err := op.Finish(); err != nil {
			return 0, err
		}
	}
	sum := sr.h.Sum(nil)
	trailer := make([]byte, len(sum))
	if _, err := io.ReadFull(sr.br, trailer); err != nil {
		return bad("checksum: %v", err)
	}
	if !bytes.Equal(sum, trailer) {
		return bad("checksum mismatch")
	}
	if !haveVer || !haveIndex || !haveT || !haveRoot {
		return bad("state version, applied index, time or root missing")
	}
	for id := range owners {
		if !sessions[id] {
			return bad("ephemerals or results of unknown session %v", wire.SessionID(id))
		}
	}
	return index, nil
}

// Digest returns a hex SHA-256 of all replicated state: every node with its
// Stat, ACL and data, sessions, result caches, indexes, the applied index,
// the last applied time and Conf. Servers that applied the same entries have
// the same digest.
func (s *Store) Digest() (string, error) {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return "", ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: stateStart, UpperBound: stateEnd})
	s.mu.RUnlock()
	return digest(it, err)
}

// digest hashes the state an iterator opened under the read lock sees.
func digest(it *pebble.Iterator, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("znode: digest: %w", err)
	}
	defer it.Close()
	h := sha256.New()
	var lens [2 * binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return "", fmt.Errorf("znode: digest: %w", err)
		}
		l := binary.PutUvarint(lens[:], uint64(len(k)))
		l += binary.PutUvarint(lens[l:], uint64(len(v)))
		h.Write(lens[:l])
		h.Write(k)
		h.Write(v)
	}
	if err := it.Error(); err != nil {
		return "", fmt.Errorf("znode: digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
