package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// serverStatus is what a server's GET /v1/status answers.
type serverStatus struct {
	ID        uint64       `json:"id"`
	Version   string       `json:"version"`
	Role      string       `json:"role"`
	Leader    uint64       `json:"leader"`
	Term      uint64       `json:"term"`
	Commit    uint64       `json:"commit"`
	Applied   uint64       `json:"applied"`
	ClusterID string       `json:"cluster_id"`
	Members   []memberInfo `json:"members"`
}

// memberInfo is one member as the server lists it; it is also the JSON
// shape of members list.
type memberInfo struct {
	ID         uint64 `json:"id"`
	PeerAddr   string `json:"peer_addr"`
	ClientAddr string `json:"client_addr"`
	Role       string `json:"role"` // voter or learner
}

// statusJSON is status's output.
type statusJSON struct {
	ClusterID string             `json:"cluster_id"`
	Leader    uint64             `json:"leader"`
	Members   []memberStatusJSON `json:"members"`
}

// memberStatusJSON is one member in status's output. The fields after
// reachable are the member's own answer, zero when it is unreachable.
type memberStatusJSON struct {
	ID         uint64 `json:"id"`
	ClientAddr string `json:"client_addr"`
	PeerAddr   string `json:"peer_addr"`
	Membership string `json:"membership"` // voter or learner
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error,omitempty"`
	Role       string `json:"role"` // leader, follower, learner, … ("" when unreachable)
	Leader     uint64 `json:"leader"`
	Term       uint64 `json:"term"`
	Commit     uint64 `json:"commit"`
	Applied    uint64 `json:"applied"`
	Version    string `json:"version"`
}

// membersJSON is the output of members list, add, remove and promote.
type membersJSON struct {
	Members []memberInfo `json:"members"`
}

func (x *ctl) adminCommands() []*cli.Command {
	idArg := func(c *cli.Context, s string) (uint64, error) {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil || id == 0 {
			return 0, usagef("%s: member id %q is not a positive integer", cmdName(c), s)
		}
		return id, nil
	}
	return []*cli.Command{
		{
			Name: "status", Usage: "show every member's state", ArgsUsage: " ",
			Description: `Asks one of --servers for the member list, then every member for its own
/v1/status: id, address, role, leader, term, commit and applied index,
and whether it answered. Exit code 7 if any member is unreachable.

JSON: {"cluster_id":S,"leader":ID,"members":[{"id":N,"client_addr":A,
"peer_addr":A,"membership":"voter"|"learner","reachable":BOOL,"error":S,
"role":R,"leader":ID,"term":N,"commit":N,"applied":N,"version":V}…]}`,
			Action: x.action(x.status),
		},
		{
			Name: "members", Usage: "list, add, remove and promote members", ArgsUsage: "list | add | remove | promote | move-leader",
			Description: `Changes go through raft, one at a time. A new member joins as a learner
(not voting) and is promoted to voter once it has caught up.

JSON: {"members":[{"id":N,"peer_addr":A,"client_addr":A,"role":"voter"|"learner"}…]}`,
			Action: func(c *cli.Context) error {
				if c.Args().Present() {
					return usageHint(`the subcommands are list, add, remove, promote and move-leader`, "members: unknown subcommand %q", c.Args().First())
				}
				return x.action(x.membersList)(c)
			},
			Subcommands: []*cli.Command{
				{
					Name: "list", Aliases: []string{"ls"}, Usage: "list the members", ArgsUsage: " ",
					Description: `JSON: {"members":[{"id":N,"peer_addr":A,"client_addr":A,"role":"voter"|"learner"}…]}`,
					Action:      x.action(x.membersList),
				},
				{
					Name: "add", Usage: "add a member (as a learner)", ArgsUsage: "ID PEER_ADDR [CLIENT_ADDR]",
					Description: `Adds member ID with its advertised peer address (and client address).
Then start it with: coordd --id ID --peer-addr PEER_ADDR --join HOST:PORT
(HOST:PORT a running member's client address). Exit code 3 if ID exists.

JSON: the member list after the change (see members list).`,
					Action: x.action(func(c *cli.Context) error {
						args, err := nargs(c, 2, 3)
						if err != nil {
							return err
						}
						id, err := idArg(c, args[0])
						if err != nil {
							return err
						}
						body := map[string]any{"id": id, "peer_addr": args[1]}
						if len(args) == 3 {
							body["client_addr"] = args[2]
						}
						if err := x.memberChange(c, http.MethodPost, "/v1/members", body); err != nil {
							return err
						}
						if !isJSON(c) {
							fmt.Fprintf(x.errw, "coordctl: member %d added as a learner; start it with --id %d --peer-addr %s --join <a member's client address>\n", id, id, args[1])
						}
						return nil
					}),
				},
				{
					Name: "remove", Aliases: []string{"rm"}, Usage: "remove a member", ArgsUsage: "ID",
					Description: `Removes member ID (leadership moves first if it leads). Exit code 2 if
there is no such member.

JSON: the member list after the change (see members list).`,
					Action: x.action(func(c *cli.Context) error {
						args, err := nargs(c, 1, 1)
						if err != nil {
							return err
						}
						id, err := idArg(c, args[0])
						if err != nil {
							return err
						}
						return x.memberChange(c, http.MethodDelete, fmt.Sprintf("/v1/members/%d", id), nil)
					}),
				},
				{
					Name: "promote", Usage: "make a learner a voter now", ArgsUsage: "ID",
					Description: `JSON: the member list after the change (see members list).`,
					Action: x.action(func(c *cli.Context) error {
						args, err := nargs(c, 1, 1)
						if err != nil {
							return err
						}
						id, err := idArg(c, args[0])
						if err != nil {
							return err
						}
						return x.memberChange(c, http.MethodPost, fmt.Sprintf("/v1/members/%d/promote", id), nil)
					}),
				},
				{
					Name: "move-leader", Usage: "transfer leadership", ArgsUsage: "[ID]",
					Description: `Moves leadership to member ID (default: the best voter).

JSON: {"leader":ID}`,
					Action: x.action(func(c *cli.Context) error {
						args, err := nargs(c, 0, 1)
						if err != nil {
							return err
						}
						var to uint64
						if len(args) == 1 {
							if to, err = idArg(c, args[0]); err != nil {
								return err
							}
						}
						return x.moveLeader(c, to)
					}),
				},
			},
		},
	}
}

// httpError is a non-2xx answer of an admin endpoint.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// adminErr maps an admin endpoint's failure to an exit code.
func adminErr(err error) error {
	var he *httpError
	if !errors.As(err, &he) {
		return err
	}
	code, hint := exitServer, ""
	switch he.status {
	case http.StatusBadRequest:
		code = exitUsage
	case http.StatusNotFound:
		code, hint = exitNoNode, `"coordctl members list" shows the members`
	case http.StatusConflict:
		code, hint = exitNodeExists, `"coordctl members list" shows the members`
	case http.StatusServiceUnavailable:
		code, hint = exitConnection, "the cluster may have no quorum, or another membership change is in progress; retry"
	}
	return &cmdError{code: code, err: err, hint: hint}
}

// httpJSON sends one admin request to addr and decodes the answer into out.
func (x *ctl) httpJSON(ctx context.Context, method, addr, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := x.op(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return usagef("bad server address %q: %v", addr, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Close = true // admin calls are rare: keep no idle connection behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, addr+path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, addr+path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &httpError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s (HTTP %d)", method, addr+path, msg, resp.StatusCode)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: bad answer: %w", method, addr+path, err)
		}
	}
	return nil
}

// anyStatus returns the status of the first of --servers that answers,
// and its address.
func (x *ctl) anyStatus(ctx context.Context) (*serverStatus, string, error) {
	var errs []error
	for _, addr := range x.Servers {
		var st serverStatus
		if err := x.httpJSON(ctx, http.MethodGet, addr, "/v1/status", nil, &st); err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		return &st, addr, nil
	}
	return nil, "", &cmdError{code: exitConnection, err: fmt.Errorf("no server answered: %w", errors.Join(errs...)),
		hint: fmt.Sprintf("is coordd running and reachable at %s? Set --servers (or COORD_SERVERS)", strings.Join(x.Servers, ","))}
}

// leaderAddr returns the client address of the leader when known, else
// addr (the server that answered).
func leaderAddr(st *serverStatus, addr string) string {
	for _, m := range st.Members {
		if m.ID == st.Leader && m.ClientAddr != "" {
			return m.ClientAddr
		}
	}
	return addr
}

func (x *ctl) status(c *cli.Context) error {
	if _, err := nargs(c, 0, 0); err != nil {
		return err
	}
	st, _, err := x.anyStatus(c.Context)
	if err != nil {
		return err
	}
	members := append([]memberInfo(nil), st.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	out := statusJSON{ClusterID: st.ClusterID, Leader: st.Leader, Members: []memberStatusJSON{}}
	rows := make([]memberStatusJSON, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			r := memberStatusJSON{ID: m.ID, ClientAddr: m.ClientAddr, PeerAddr: m.PeerAddr, Membership: m.Role}
			var ms serverStatus
			if m.ClientAddr == "" {
				r.Error = "no client address known"
			} else if err := x.httpJSON(c.Context, http.MethodGet, m.ClientAddr, "/v1/status", nil, &ms); err != nil {
				r.Error = err.Error()
			} else {
				r.Reachable = true
				r.Role, r.Leader, r.Term, r.Commit, r.Applied, r.Version = ms.Role, ms.Leader, ms.Term, ms.Commit, ms.Applied, ms.Version
			}
			rows[i] = r
		})
	}
	wg.Wait()
	out.Members = append(out.Members, rows...)
	var unreachable []string
	for _, r := range rows {
		if !r.Reachable {
			unreachable = append(unreachable, fmt.Sprintf("%d (%s)", r.ID, r.ClientAddr))
		}
	}
	if err := x.emit(c, out, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tLEADER\tTERM\tCOMMIT\tAPPLIED\tREACHABLE")
		for _, r := range rows {
			if !r.Reachable {
				fmt.Fprintf(tw, "%d\t%s\t%s\t-\t-\t-\t-\tno: %s\n", r.ID, r.ClientAddr, r.Membership, r.Error)
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\tyes\n", r.ID, r.ClientAddr, r.Role, r.Leader, r.Term, r.Commit, r.Applied)
		}
		_ = tw.Flush()
	}); err != nil {
		return err
	}
	if len(unreachable) > 0 {
		return &cmdError{code: exitConnection, err: fmt.Errorf("unreachable member(s): %s", strings.Join(unreachable, ", ")),
			hint: "check that those coordd processes run and that their advertised client addresses are reachable from here"}
	}
	return nil
}

func (x *ctl) printMembers(c *cli.Context, ms []memberInfo) error {
	ms = append([]memberInfo{}, ms...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return x.emit(c, membersJSON{Members: ms}, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROLE\tPEER_ADDR\tCLIENT_ADDR")
		for _, m := range ms {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.ID, m.Role, m.PeerAddr, m.ClientAddr)
		}
		_ = tw.Flush()
	})
}

func (x *ctl) membersList(c *cli.Context) error {
	if _, err := nargs(c, 0, 0); err != nil {
		return err
	}
	st, _, err := x.anyStatus(c.Context)
	if err != nil {
		return err
	}
	return x.printMembers(c, st.Members)
}

// memberChange sends a membership change to the leader (or, when it is
// not known, to the server that answered) and prints the new list.
func (x *ctl) memberChange(c *cli.Context, method, path string, body any) error {
	st, addr, err := x.anyStatus(c.Context)
	if err != nil {
		return err
	}
	var ms []memberInfo
	if err := x.httpJSON(c.Context, method, leaderAddr(st, addr), path, body, &ms); err != nil {
		return adminErr(err)
	}
	return x.printMembers(c, ms)
}

func (x *ctl) moveLeader(c *cli.Context, to uint64) error {
	st, addr, err := x.anyStatus(c.Context)
	if err != nil {
		return err
	}
	var out struct {
		Leader uint64 `json:"leader"`
	}
	if err := x.httpJSON(c.Context, http.MethodPost, leaderAddr(st, addr), "/v1/leader", map[string]uint64{"to": to}, &out); err != nil {
		return adminErr(err)
	}
	return x.emit(c, out, func(w io.Writer) { fmt.Fprintf(w, "leader: %d\n", out.Leader) })
}
