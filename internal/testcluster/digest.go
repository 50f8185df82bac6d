package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Digest returns the member's applied index and state digest.
func (nd *Node) Digest() (uint64, string, error) {
	var d struct {
		Applied uint64 `json:"applied"`
		Digest  string `json:"digest"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.ClientAddr()+"/v1/digest", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("digest: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	return d.Applied, d.Digest, err
}

// AssertConverged waits until every running member has applied the same
// index and then checks that their state digests are identical.
func (c *Cluster) AssertConverged() {
	c.t.Helper()
	var last string
	WaitFor(c.t, 60*time.Second, "every member to apply the same index with the same state", func() bool {
		var applied uint64
		var digest string
		first := true
		for _, nd := range c.Nodes {
			if !nd.Running() {
				continue
			}
			a, d, err := nd.Digest()
			if err != nil {
				last = err.Error()
				return false
			}
			if first {
				applied, digest, first = a, d, false
				continue
			}
			if a != applied {
				last = fmt.Sprintf("node %d applied %d, another %d", nd.ID, a, applied)
				return false
			}
			if d != digest {
				c.t.Fatalf("members applied index %d with different states: %s vs %s", a, d, digest)
			}
		}
		return true
	})
	_ = last
}

// DropPeers makes the member drop all traffic to and from the given
// members (coordd must run with --test-hooks); no ids heals.
func (nd *Node) DropPeers(ids ...uint64) {
	nd.t.Helper()
	if ids == nil {
		ids = []uint64{}
	}
	b, _ := json.Marshal(map[string][]uint64{"peers": ids})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+nd.ClientAddr()+"/debug/drop-peers", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		nd.t.Fatalf("drop peers on %d: %v", nd.ID, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		nd.t.Fatalf("drop peers on %d: %s (is --test-hooks on?)", nd.ID, resp.Status)
	}
}

// Post sends a JSON body to a member's HTTP path and decodes the answer
// into out (if non-nil); it returns the status code.
func (nd *Node) Post(method, path string, body, out any) (int, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+nd.ClientAddr()+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}
