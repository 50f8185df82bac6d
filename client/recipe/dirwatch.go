package recipe

import (
	"context"
	"errors"
	"path"
	"time"

	"github.com/coord-dev/coord/client"
)

// removeTimeout bounds the removal of a persistent watch when its follower
// stops (the client may be disconnected then).
const removeTimeout = 2 * time.Second

// followDir follows the children of dir, which it creates if missing: it
// calls reset with the names of the children, then change for every later
// creation, deletion or data change of a child, in zxid order, until ctx
// ends, the session expires or the client is closed; it returns why.
//
// It sets a persistent recursive watch first, then reads the children:
// creations and deletions at zxids up to the read's pzxid are in the read
// and are skipped, later ones are passed on, so that nothing is missed or
// counted twice. The client re-arms the watch across reconnects and the
// server replays what it missed; when it cannot (Resync), or when dir
// itself is deleted or created, followDir reads the children again and
// calls reset again. Data changes are passed on whatever their zxid: the
// caller re-reads the child, which is harmless when it already saw the
// change. Events below the children are ignored.
func followDir(ctx context.Context, c *client.Client, dir string, reset func(names []string) error, change func(ev client.Event) error) error {
	if err := ensurePath(ctx, c, dir, nil); err != nil {
		return err
	}
	w, err := c.AddWatch(ctx, dir, client.WatchPersistentRecursive)
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		defer cancel()
		_ = w.Remove(rctx)
	}()
	for {
		names, st, err := c.Children(ctx, dir)
		if errors.Is(err, client.ErrNoNode) {
			if err := ensurePath(ctx, c, dir, nil); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := reset(names); err != nil {
			return err
		}
		if err := followEvents(ctx, w, dir, st.Pzxid, change); err != nil {
			return err
		}
	}
}

// followEvents passes the watch's events on to change until the children
// must be read again (it returns nil) or the watch ends (it returns why).
func followEvents(ctx context.Context, w *client.Watcher, dir string, seen int64, change func(ev client.Event) error) error {
	for {
		select {
		case ev, ok := <-w.Events():
			switch {
			case !ok:
				return client.ErrClosed
			case ev.Type == client.EventNotWatching:
				return ev.Err
			case ev.Type == client.EventResync:
				return nil
			case ev.Path == dir:
				if ev.Type != client.EventNodeDataChanged {
					return nil
				}
			case path.Dir(ev.Path) != dir:
			case ev.Type != client.EventNodeDataChanged && ev.Zxid <= seen:
			default:
				if err := change(ev); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
