package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/client/recipe"
)

func (x *ctl) electCommand() *cli.Command {
	return &cli.Command{
		Name: "elect", Usage: "campaign for leadership and print the leader as it changes", ArgsUsage: "NAME VALUE | --listen NAME",
		Description: `Joins the election NAME as a candidate with VALUE (argument, @FILE or -),
then prints the leader's value each time leadership changes, until
interrupted (Ctrl-C; exit code 0), when it resigns. The first candidate
leads; when the leader's session ends the next one takes over. With
--listen it only observes. NAME is a name (the election is then
` + electionRoot + `/NAME) or, when it starts with '/', the election's path
itself. The election is client/recipe's Election: a Go program's
recipe.NewElection on the same path campaigns in the same election.

Text: "leader: VALUE", with " (this process)" when it is this candidate,
or "no leader".
JSON, one object per change: {"name":NAME,"leader":NODE,"data":BASE64,
"text":STRING|null,"self":BOOL,"token":CZXID} ("leader" is "" when none).
If this candidate's session expires, or its node is deleted, exit code 9.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "listen", Aliases: []string{"l"}, Usage: "observe only, do not campaign"},
		},
		Action: x.action(x.elect),
	}
}

func (x *ctl) elect(c *cli.Context) error {
	listen := c.Bool("listen")
	n := 2
	if listen {
		n = 1
	}
	args, err := nargs(c, n, n)
	if err != nil {
		return err
	}
	name := args[0]
	dir, err := recipeDir(electionRoot, name)
	if err != nil {
		return err
	}
	var value []byte
	if !listen {
		if value, err = readData(args[1], x.in, false); err != nil {
			return err
		}
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx := c.Context
	octx, stopObserving := context.WithCancel(ctx)
	leaders := recipe.NewElection(cl, dir).Observe(octx)
	defer func() {
		stopObserving()
		for range leaders { // joins the stream's goroutine
		}
	}()
	var cand *candidacy
	if !listen {
		cand = campaign(ctx, cl, dir, value)
		defer cand.stop(x, name)
	}
	asJSON := isJSON(c)
	for {
		var campaigned <-chan error
		var lost <-chan struct{}
		if cand != nil {
			campaigned, lost = cand.result, cand.lost
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-campaigned:
			if err := cand.campaigned(err); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, recipe.ErrLockLost) {
					return lostErr("campaigning in election "+name, err)
				}
				return err
			}
			if cand.nodeGone() {
				return lostErr("leading election "+name, nil)
			}
		case <-lost:
			return lostErr("leading election "+name, nil)
		case l, ok := <-leaders:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return observeEnded(cl, dir, name, cand != nil, x.Timeout)
			}
			self := false
			if cand != nil {
				self = cand.saw(l)
				if cand.nodeGone() {
					return lostErr("leading election "+name, nil)
				}
				if l.Key == "" {
					// Before this candidate's node was created: it is in
					// the race, so there is a leader.
					continue
				}
			}
			if asJSON {
				b, text := dataJSON(l.Value)
				if err := writeJSON(x.out, leaderJSON{Name: name, Leader: l.Key, Data: b, Text: text, Self: self, Token: l.Token}); err != nil {
					return err
				}
				continue
			}
			switch {
			case l.Key == "":
				fmt.Fprintln(x.out, "no leader")
			case self:
				fmt.Fprintf(x.out, "leader: %s (this process)\n", safeText(l.Value))
			default:
				fmt.Fprintf(x.out, "leader: %s\n", safeText(l.Value))
			}
		}
	}
}

// candidacy is elect's candidate: client/recipe's Election, whose Campaign
// (which returns only once it leads) runs on a goroutine of its own while
// elect prints the leaders; stop joins it.
//
// The leaders come from a separate Observe stream, in order and without
// gaps but possibly behind Campaign. The candidate's node is named
// "<kind>-<session id>-<sequence>" (client/recipe's node names), so a
// leader whose node carries this session's id is this candidate, even
// before Campaign has returned. Once the stream has shown this candidate's
// node leading after Campaign returned, any other leader means that its
// node is gone: nothing can get before the lowest node.
type candidacy struct {
	e      *recipe.Election
	sid    client.SessionID
	cancel context.CancelFunc
	done   chan error // Campaign's outcome
	result chan error // done until it was received, then nil

	lost <-chan struct{} // the hold's Lost once leading, else nil
	key  string          // this candidate's node once leading
	seen string          // the last node of this session the stream showed leading
	last string          // the node the stream showed leading last
}

// campaign starts the candidacy.
func campaign(ctx context.Context, cl *client.Client, dir string, value []byte) *candidacy {
	ctx, cancel := context.WithCancel(ctx)
	c := &candidacy{e: recipe.NewElection(cl, dir), sid: cl.SessionID(), cancel: cancel, done: make(chan error, 1)}
	c.result = c.done
	go func() { c.done <- c.e.Campaign(ctx, value) }()
	return c
}

// campaigned records Campaign's outcome.
func (c *candidacy) campaigned(err error) error {
	c.result = nil
	if err != nil {
		return err
	}
	c.key, c.lost = c.e.Key(), c.e.Lost()
	return nil
}

// saw records a leader reported by the stream and says whether it is this
// candidate.
func (c *candidacy) saw(l recipe.Leader) bool {
	c.last = l.Key
	if !ownNode(l.Key, c.sid) {
		return false
	}
	c.seen = l.Key
	return true
}

// nodeGone reports whether this candidate led, as Campaign and the stream
// agree, and the stream has since shown another leader (or none).
func (c *candidacy) nodeGone() bool {
	return c.key != "" && c.seen == c.key && c.last != c.key
}

// stop ends the campaign, joins it and resigns.
func (c *candidacy) stop(x *ctl, name string) {
	c.cancel()
	if c.result != nil {
		_ = c.campaigned(<-c.result)
	}
	rctx, cancel := context.WithTimeout(context.Background(), x.Timeout)
	defer cancel()
	// Not leading: Campaign deleted the node when it failed. Lost: the
	// node is gone, and that was reported.
	err := c.e.Resign(rctx)
	if err != nil && !errors.Is(err, recipe.ErrNotHeld) && !errors.Is(err, recipe.ErrLockLost) {
		fmt.Fprintf(x.errw, "coordctl: resigning from %s: %v (the server removes the candidate when the session ends)\n", name, err)
	}
}

// ownNode reports whether key names a node of session sid: client/recipe
// names them "<kind>-<session id>-<sequence>".
func ownNode(key string, sid client.SessionID) bool {
	if key == "" {
		return false
	}
	name := path.Base(key)
	i := strings.LastIndexByte(name, '-')
	return i > 0 && strings.HasSuffix(name[:i], "-"+sid.String())
}

// observeEnded returns the error for an Observe stream that ended before
// elect did: the session's end (exit 9), or whatever a read of the
// election says (an ACL, say).
func observeEnded(cl *client.Client, dir, name string, candidate bool, timeout time.Duration) error {
	var err error
	switch cl.State() {
	case client.StateExpired:
		err = client.ErrSessionExpired
	case client.StateClosed:
		err = client.ErrClosed
	default:
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err = recipe.NewElection(cl, dir).Leader(ctx); err == nil || errors.Is(err, recipe.ErrNoLeader) {
			err = errors.New("the election's watch ended")
		}
	}
	if candidate && (errors.Is(err, client.ErrSessionExpired) || errors.Is(err, client.ErrClosed)) {
		return lostErr("campaigning in election "+name, fmt.Errorf("%w: %w", recipe.ErrLockLost, err))
	}
	return fmt.Errorf("elect %s: %w", name, err)
}
