package main

import (
	"strings"
	"testing"
)

// TestAdmin checks status and members against one server, with a second
// member that exists only in the configuration (a learner never started),
// so it is unreachable without costing the cluster its quorum.
func TestAdmin(t *testing.T) {
	e := newEnv(t)
	out := e.must("status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "REACHABLE") ||
		!strings.HasPrefix(lines[1], "1 ") || !strings.Contains(lines[1], e.servers) || !strings.Contains(lines[1], "leader") || !strings.HasSuffix(lines[1], "yes") {
		t.Fatalf("status printed:\n%s", out)
	}
	m := decode(t, e.must("-o", "json", "status"))
	checkKeys(t, "status", m, "cluster_id", "leader", "members")
	ms := m["members"].([]any)
	if len(ms) != 1 || m["leader"] != 1.0 {
		t.Fatalf("status json %v", m)
	}
	checkKeys(t, "status member", ms[0].(map[string]any), "id", "client_addr", "peer_addr", "membership", "reachable", "role", "leader", "term", "commit", "applied", "version")

	out = e.must("members", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "voter") {
		t.Fatalf("members list printed:\n%s", out)
	}
	m = decode(t, e.must("-o", "json", "members"))
	checkKeys(t, "members", m, "members")
	checkKeys(t, "member", m["members"].([]any)[0].(map[string]any), "id", "peer_addr", "client_addr", "role")

	// A learner that never runs.
	r := e.run("", "members", "add", "5", "127.0.0.1:1", "127.0.0.1:2")
	if r.code != 0 || !strings.Contains(r.out, "learner") || !strings.Contains(r.err, "--join") {
		t.Fatalf("members add: %v", r)
	}
	e.expectCode(exitNodeExists, "members", "add", "5", "127.0.0.1:1")
	r = e.run("", "status")
	if r.code != exitConnection || !strings.Contains(r.out, "127.0.0.1:2") || !strings.Contains(r.out, "no:") || !strings.Contains(r.err, "unreachable member(s): 5") {
		t.Fatalf("status with an unreachable member: %v", r)
	}
	r = e.run("", "-o", "json", "status")
	if r.code != exitConnection {
		t.Fatalf("status json: %v", r)
	}
	m = decode(t, r.out)
	if ms := m["members"].([]any); len(ms) != 2 || ms[1].(map[string]any)["reachable"] != false || ms[1].(map[string]any)["error"] == "" {
		t.Fatalf("status json: %v", m)
	}
	e.expectCode(exitNoNode, "members", "promote", "9")
	m = decode(t, e.must("-o", "json", "members", "remove", "5"))
	if len(m["members"].([]any)) != 1 {
		t.Fatalf("members remove json %v", m)
	}
	e.expectCode(exitNoNode, "members", "remove", "5")
	e.must("status")
}
