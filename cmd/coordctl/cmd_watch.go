package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/client"
)

func (x *ctl) watchCommand() *cli.Command {
	return &cli.Command{
		Name: "watch", Usage: "print a node's changes as they happen", ArgsUsage: "PATH",
		Description: `Prints one line per change of PATH until interrupted (Ctrl-C; exit code 0):
"TYPE PATH zxid=N", TYPE one of NodeCreated, NodeDeleted, NodeDataChanged,
NodeChildrenChanged, Resync. PATH need not exist yet.

By default it sets ZooKeeper's one-shot data and child watches and re-arms
each after it fires (a change made in between is not reported separately).
--persistent uses one persistent watch instead, which misses nothing, and
--recursive a persistent recursive watch: creations, deletions and data
changes of PATH and every node below it (no NodeChildrenChanged).

In the shell the watch runs in the background, its events printed as they
arrive; "unwatch PATH" (or "unwatch" for all) stops it.

JSON, one object per event: {"event":TYPE,"path":P,"zxid":N}`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"R"}, Usage: "watch the whole subtree (persistent recursive watch)"},
			&cli.BoolFlag{Name: "persistent", Aliases: []string{"p"}, Usage: "use a persistent watch instead of re-armed one-shot watches"},
		},
		Action: x.action(x.watch),
	}
}

// watchKind is how watch follows a path.
type watchKind int

const (
	watchOneShot watchKind = iota
	watchPersistent
	watchRecursive
)

func (x *ctl) watch(c *cli.Context) error {
	args, err := nargs(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	kind := watchOneShot
	switch {
	case c.Bool("recursive"):
		kind = watchRecursive
	case c.Bool("persistent"):
		kind = watchPersistent
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	asJSON := isJSON(c)
	if x.sh != nil {
		return x.sh.startWatch(c.Context, p, kind, asJSON)
	}
	err = x.watchLoop(c.Context, cl, p, kind, nil, func(ev client.Event) { x.printEvent(x.out, ev, asJSON, "") })
	if errors.Is(err, context.Canceled) && c.Context.Err() != nil {
		return nil // interrupted: the normal end of a watch
	}
	return err
}

// printEvent writes one event line.
func (x *ctl) printEvent(w io.Writer, ev client.Event, asJSON bool, prefix string) {
	if asJSON {
		_ = writeJSON(w, eventJSON{Event: string(ev.Type), Path: ev.Path, Zxid: ev.Zxid})
		return
	}
	fmt.Fprintf(w, "%s%s\n", prefix, eventText(ev))
}

// watchLoop follows p until ctx is done (then it returns ctx's error) or
// the watch ends (session expired, client closed), calling emit for every
// event. armed, when not nil, is called once the first watch is set.
func (x *ctl) watchLoop(ctx context.Context, cl *client.Client, p string, kind watchKind, armed func(error), emit func(client.Event)) error {
	if armed == nil {
		armed = func(error) {}
	}
	if kind != watchOneShot {
		mode := client.WatchPersistent
		if kind == watchRecursive {
			mode = client.WatchPersistentRecursive
		}
		octx, cancel := x.op(ctx)
		w, err := cl.AddWatch(octx, p, mode)
		cancel()
		armed(err)
		if err != nil {
			return err
		}
		defer func() {
			rctx, cancel := x.op(context.Background())
			defer cancel()
			_ = w.Remove(rctx)
		}()
		for {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					return client.ErrClosed
				}
				if ev.Type == client.EventNotWatching {
					return fmt.Errorf("watch %s ended: %w", p, ev.Err)
				}
				emit(ev)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	// One-shot watches: a data (exists) watch always, a child watch while
	// the node exists; each re-armed after it fires, before its event is
	// printed (so that a printed event means the watch is set again).
	// NodeDeleted fires both: it is printed once.
	var (
		dataCh, childCh <-chan client.Event
		armData         = true
		armChild        = true
		exists          bool
		last            client.Event
	)
	// arm sets the watches that are due. The first arming is bounded by
	// --timeout so that a dead server is reported; later ones wait for the
	// client to reconnect.
	arm := func(bounded bool) error {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			actx, cancel = x.op(ctx)
		}
		defer cancel()
		if armData {
			var err error
			if exists, _, dataCh, err = cl.ExistsW(actx, p); err != nil {
				return err
			}
			armData = false
		}
		if armChild && exists {
			_, _, ch, err := cl.ChildrenW(actx, p)
			switch {
			case errors.Is(err, client.ErrNoNode):
				// Deleted meanwhile: the data watch tells.
			case err != nil:
				return err
			default:
				childCh, armChild = ch, false
			}
		}
		return nil
	}
	err := arm(true)
	armed(err)
	if err != nil {
		return err
	}
	for {
		var ev client.Event
		select {
		case ev = <-dataCh:
			dataCh, armData = nil, true
			if ev.Type == client.EventNodeCreated && childCh == nil {
				armChild = true
			}
		case ev = <-childCh:
			childCh, armChild = nil, true
		case <-ctx.Done():
			return ctx.Err()
		}
		if ev.Type == client.EventNotWatching || ev.Type == "" {
			if ev.Err == nil {
				ev.Err = client.ErrClosed
			}
			return fmt.Errorf("watch %s ended: %w", p, ev.Err)
		}
		if err := arm(false); err != nil {
			return err
		}
		if ev.Type == last.Type && ev.Zxid == last.Zxid && ev.Path == last.Path {
			continue
		}
		last = ev
		emit(ev)
	}
}

// awaitEvent handles the channel of get -w and ls -w: in one-shot mode it
// waits for the event and prints it; in the shell the event is printed
// when it arrives, in the background.
func (x *ctl) awaitEvent(c *cli.Context, ch <-chan client.Event) error {
	if ch == nil {
		return nil
	}
	asJSON := isJSON(c)
	if x.sh != nil {
		x.sh.awaitEvent(ch, asJSON)
		return nil
	}
	select {
	case ev, ok := <-ch:
		if !ok {
			return client.ErrClosed
		}
		if ev.Type == client.EventNotWatching {
			return fmt.Errorf("watch ended: %w", ev.Err)
		}
		x.printEvent(x.out, ev, asJSON, "")
		return nil
	case <-c.Context.Done():
		return c.Context.Err()
	}
}
