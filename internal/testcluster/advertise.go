package testcluster

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// StartAdvertised is Start for fault-injection tests, with two differences:
//
//   - every member announces to the others the peer address that advertise
//     returns for it (given its id and the peer address it binds) instead of
//     the one it binds, so that a proxy listening there sees, and can
//     disturb, all the traffic towards that member;
//   - every member binds a fixed client port, kept across restarts, so that
//     clients given ClientAddrs once can reconnect to any member after it
//     was killed and restarted.
//
// advertise is called once per member, before any member starts; the
// members are started afterwards and waited for as Start does.
func StartAdvertised(t testing.TB, n int, opts Options, advertise func(id uint64, peerAddr string) string) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var cluster []string
	adv := make([]string, n)
	for i := 1; i <= n; i++ {
		nd := &Node{t: t, ID: uint64(i), DataDir: filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)), PeerAddr: freePort(t)}
		c.Nodes = append(c.Nodes, nd)
		adv[i-1] = advertise(nd.ID, nd.PeerAddr)
		cluster = append(cluster, fmt.Sprintf("%d=%s", i, adv[i-1]))
	}
	for i, nd := range c.Nodes {
		nd.args = append([]string{"--id", fmt.Sprint(nd.ID), "--data-dir", nd.DataDir,
			"--client-addr", freePort(t), "--peer-addr", nd.PeerAddr, "--advertise-peer-addr", adv[i],
			"--log-level", "debug"}, opts.Args...)
		if n > 1 {
			nd.args = append(nd.args, "--cluster", strings.Join(cluster, ","))
		}
		nd.env = opts.Env
		nd.logPath = nd.DataDir + ".log"
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Kill()
		}
		if t.Failed() {
			for _, nd := range c.Nodes {
				nd.dumpLog()
			}
		}
	})
	for _, nd := range c.Nodes {
		nd.Start()
	}
	c.WaitReady()
	return c
}

// LogPath returns the file the member's stderr and stdout go to.
func (nd *Node) LogPath() string { return nd.logPath }
