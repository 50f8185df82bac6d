package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/coord-dev/coord/internal/wire"
)

func TestNewID(t *testing.T) {
	seen := make(map[wire.SessionID]bool)
	for range 10_000 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if id == 0 {
			t.Fatal("NewID returned 0")
		}
		if seen[id] {
			t.Fatalf("NewID repeated %v", id)
		}
		seen[id] = true
		if back, err := wire.ParseSessionID(id.String()); err != nil || back != id {
			t.Fatalf("%v does not round-trip: %v, %v", id, back, err)
		}
	}
}

func TestNewPassword(t *testing.T) {
	a, err := NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != PasswordLen || len(b) != PasswordLen {
		t.Fatalf("lengths %d, %d; want %d", len(a), len(b), PasswordLen)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two passwords are equal")
	}
}

func TestHashPassword(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	want, _ := hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	if got := HashPassword([]byte("abc")); !bytes.Equal(got, want) {
		t.Fatalf("HashPassword(abc) = %x", got)
	}
	if got := len(HashPassword(nil)); got != sha256.Size {
		t.Fatalf("hash of nothing has %d bytes", got)
	}
}

func TestCheckPassword(t *testing.T) {
	pw := []byte("0123456789abcdef")
	hash := HashPassword(pw)
	tests := []struct {
		name string
		hash []byte
		pw   []byte
		want bool
	}{
		{"right", hash, pw, true},
		{"wrong", hash, []byte("0123456789abcdeF"), false},
		{"short", hash, pw[:15], false},
		{"empty password", hash, nil, false},
		{"nil hash", nil, pw, false},
		{"empty hash and password", nil, nil, false},
		{"truncated hash", hash[:16], pw, false},
		{"password given as hash", pw, pw, false},
		{"hash given as password", hash, hash, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckPassword(tt.hash, tt.pw); got != tt.want {
				t.Fatalf("CheckPassword = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		req, min, max, want int64
	}{
		{10_000, 2_000, 60_000, 10_000},
		{2_000, 2_000, 60_000, 2_000},
		{60_000, 2_000, 60_000, 60_000},
		{1, 2_000, 60_000, 2_000},
		{0, 2_000, 60_000, 2_000},
		{-5, 2_000, 60_000, 2_000},
		{60_001, 2_000, 60_000, 60_000},
		{1 << 62, 2_000, 60_000, 60_000},
		{5_000, 3_000, 3_000, 3_000},
		{5_000, 8_000, 4_000, 4_000}, // min > max: max wins, as ZooKeeper
	}
	for _, tt := range tests {
		if got := Negotiate(tt.req, tt.min, tt.max); got != tt.want {
			t.Errorf("Negotiate(%d, %d, %d) = %d, want %d", tt.req, tt.min, tt.max, got, tt.want)
		}
	}
}
