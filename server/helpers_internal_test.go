package server

import (
	"context"
	"testing"
	"time"

	"github.com/coord-dev/coord/internal/testcluster"
)

// startAlone starts a single-member server in this process, with its data
// in a temporary dir, waits until it is ready (it leads), and closes it
// when the test ends.
func startAlone(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	testcluster.WaitFor(t, 30*time.Second, "the server to be ready", func() bool {
		code, _ := testcluster.Get(s.ClientAddr(), "/readyz")
		return code == 200
	})
	return s
}
