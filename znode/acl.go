package znode

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"github.com/coord-dev/coord/internal/wire"
)

// The ACL schemes coord knows, as ZooKeeper names them.
const (
	SchemeWorld  = "world"
	SchemeAuth   = "auth"
	SchemeDigest = "digest"
	SchemeIP     = "ip"
)

// DigestID returns the digest-scheme id of user with password, as
// ZooKeeper's DigestAuthenticationProvider computes it:
// "user:" + base64(sha1("user:password")).
func DigestID(user, password string) string {
	sum := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// validDigestID reports whether id has ZooKeeper's "user:hash" form: one
// colon, with something on both sides.
func validDigestID(id string) bool {
	i := strings.IndexByte(id, ':')
	return i > 0 && i < len(id)-1 && strings.IndexByte(id[i+1:], ':') < 0
}

// Allowed reports whether a caller with idents may do perm on a node with
// acl, following ZooKeeper: an empty ACL allows everything; the super digest
// (Config.SuperDigest) allows everything; world:anyone matches everyone; a
// digest entry matches an identical digest ident; an ip entry matches an ip
// ident by address or, for "addr/bits", by CIDR prefix.
func (s *Store) Allowed(acl []wire.ACL, idents []Ident, perm wire.Perms) bool {
	return allowed(s.cfg.SuperDigest, acl, idents, perm)
}

func allowed(super string, acl []wire.ACL, idents []Ident, perm wire.Perms) bool {
	if len(acl) == 0 {
		return true
	}
	if super != "" {
		for _, id := range idents {
			if id.Scheme == SchemeDigest && id.ID == super {
				return true
			}
		}
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		switch a.Scheme {
		case SchemeWorld:
			if a.ID == "anyone" {
				return true
			}
		case SchemeDigest:
			for _, id := range idents {
				if id.Scheme == SchemeDigest && id.ID == a.ID {
					return true
				}
			}
		case SchemeIP:
			for _, id := range idents {
				if id.Scheme == SchemeIP && ipMatches(a.ID, id.ID) {
					return true
				}
			}
		}
	}
	return false
}

// ipMatches reports whether the address addr (an ip ident: an address,
// optionally with a port) matches the ACL id pattern (an address or a CIDR
// prefix).
func ipMatches(pattern, addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if strings.IndexByte(pattern, '/') >= 0 {
		p, err := netip.ParsePrefix(pattern)
		if err != nil {
			return false
		}
		pa, bits := p.Addr(), p.Bits()
		if pa.Is4In6() {
			pa, bits = pa.Unmap(), max(bits-96, 0)
		}
		return netip.PrefixFrom(pa, bits).Contains(ip)
	}
	pip, err := netip.ParseAddr(pattern)
	return err == nil && pip.Unmap().WithZone("") == ip
}

// validIPID reports whether id is an address or a CIDR prefix.
func validIPID(id string) bool {
	if strings.IndexByte(id, '/') >= 0 {
		_, err := netip.ParsePrefix(id)
		return err == nil
	}
	_, err := netip.ParseAddr(id)
	return err == nil
}

// ValidateACL checks an ACL given at create or set_acl and returns the list
// to store, as ZooKeeper's fixupACL: "auth" entries are replaced by one entry
// per authenticated (digest) ident of the caller, with the same perms
// (InvalidACL if the caller has none); world must be "anyone"; digest ids
// must be "user:hash"; ip ids an address or CIDR; perms only cdrwa; other
// schemes are invalid; exact duplicates are dropped; an empty list is
// invalid. Errors wrap wire.ErrInvalidACL.
func ValidateACL(acl []wire.ACL, idents []Ident) ([]wire.ACL, error) {
	if len(acl) == 0 {
		return nil, fmt.Errorf("%w: empty ACL", wire.ErrInvalidACL)
	}
	out := make([]wire.ACL, 0, len(acl))
	add := func(a wire.ACL) {
		for _, x := range out {
			if x == a {
				return
			}
		}
		out = append(out, a)
	}
	for _, a := range acl {
		if a.Perms&^wire.PermAll != 0 {
			return nil, fmt.Errorf("%w: perms %#x", wire.ErrInvalidACL, uint8(a.Perms))
		}
		switch a.Scheme {
		case SchemeWorld:
			if a.ID != "anyone" {
				return nil, fmt.Errorf("%w: world id %q is not anyone", wire.ErrInvalidACL, a.ID)
			}
			add(a)
		case SchemeAuth:
			found := false
			for _, id := range idents {
				if id.Scheme == SchemeDigest && validDigestID(id.ID) {
					add(wire.ACL{Perms: a.Perms, Scheme: id.Scheme, ID: id.ID})
					found = true
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: auth scheme without an authenticated identity", wire.ErrInvalidACL)
			}
		case SchemeDigest:
			if !validDigestID(a.ID) {
				return nil, fmt.Errorf("%w: digest id %q is not user:hash", wire.ErrInvalidACL, a.ID)
			}
			add(a)
		case SchemeIP:
			if !validIPID(a.ID) {
				return nil, fmt.Errorf("%w: ip id %q is not an address or CIDR prefix", wire.ErrInvalidACL, a.ID)
			}
			add(a)
		default:
			return nil, fmt.Errorf("%w: unknown scheme %q", wire.ErrInvalidACL, a.Scheme)
		}
	}
	return out, nil
}
