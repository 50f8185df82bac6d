package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/internal/wire"
)

// Flags shared by several commands (new values each time: urfave/cli
// records state in them).
func statFlag() cli.Flag {
	return &cli.BoolFlag{Name: "stat", Aliases: []string{"s"}, Usage: "also print the node's Stat (text output; JSON always has it)"}
}

func watchFlag() cli.Flag {
	return &cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "also set a one-shot watch and print its event (in the shell: when it arrives)"}
}

func b64InFlag() cli.Flag {
	return &cli.BoolFlag{Name: "base64", Aliases: []string{"b"}, Usage: "the DATA argument (or file, or stdin) is base64"}
}

func versionFlag(what string) cli.Flag {
	return &cli.IntFlag{Name: "version", Aliases: []string{"v"}, Value: -1, Usage: "only if the " + what + " is `VERSION` (-1: any)"}
}

func (x *ctl) treeCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name: "ls", Usage: "list the children of a node", ArgsUsage: "[PATH]",
			Description: `Prints the names of PATH's children (default: the working node), one per line.
-R prints PATH and every node below it, as full paths, depth first.

JSON: {"path":P,"children":[NAME…],"stat":STAT}
  -R: {"path":P,"paths":[PATH…],"stat":STAT}
  -w, when the event comes: {"event":TYPE,"path":P,"zxid":N}`,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "recursive", Aliases: []string{"R"}, Usage: "list the whole subtree"},
				statFlag(), watchFlag(),
			},
			Action: x.action(x.ls),
		},
		{
			Name: "get", Usage: "print a node's data", ArgsUsage: "PATH",
			Description: `Prints the data of PATH. Printable text is written as is (with a newline
added); other data is written as a quoted, escaped string with a note on
stderr. --base64 and --raw write the bytes exactly.

JSON: {"path":P,"data":BASE64,"text":STRING|null,"stat":STAT}
  ("text" is the data when it is valid UTF-8, else null)
  -w, when the event comes: {"event":TYPE,"path":P,"zxid":N}`,
			Flags: []cli.Flag{statFlag(), watchFlag(),
				&cli.BoolFlag{Name: "base64", Aliases: []string{"b"}, Usage: "write the data in base64"},
				&cli.BoolFlag{Name: "raw", Usage: "write the data's bytes as they are, with no newline added"},
			},
			Action: x.action(x.get),
		},
		{
			Name: "set", Usage: "replace a node's data", ArgsUsage: "PATH DATA",
			Description: `Replaces the data of PATH. DATA is the argument, @FILE, or - for stdin.
With -v, only if the node's version is VERSION (else exit code 4).

JSON: {"path":P,"stat":STAT}`,
			Flags:  []cli.Flag{versionFlag("node's version"), statFlag(), b64InFlag()},
			Action: x.action(x.set),
		},
		{
			Name: "create", Usage: "create a node", ArgsUsage: "PATH [DATA]",
			Description: `Creates PATH with DATA (default empty) and prints the path created (with
its sequence number for -s). The parent must exist unless -p is given.

  (none)  persistent           -e     ephemeral (lives with the session:
  -s      sequential                  in one-shot mode it ends at once;
  -c      container                   use the shell)
  -t TTL  persistent with a time to live (e.g. 30s, or milliseconds)

--acl takes entries scheme:id:perms separated by commas, e.g.
world:anyone:r,digest:alice:BASE64SHA1:cdrwa (default world:anyone:cdrwa).

JSON: {"path":CREATED,"stat":STAT}`,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "ephemeral", Aliases: []string{"e"}, Usage: "ephemeral node"},
				&cli.BoolFlag{Name: "sequential", Aliases: []string{"s"}, Usage: "append a sequence number to the name"},
				&cli.BoolFlag{Name: "container", Aliases: []string{"c"}, Usage: "container node (deleted once its last child is)"},
				&cli.StringFlag{Name: "ttl", Aliases: []string{"t"}, Usage: "time to live `TTL` (30s, 5m, or milliseconds) of a persistent node"},
				&cli.StringFlag{Name: "acl", Usage: "the node's `ACL`: scheme:id:perms[,…]"},
				&cli.BoolFlag{Name: "parents", Aliases: []string{"p"}, Usage: "create missing parents (persistent, empty)"},
				b64InFlag(),
			},
			Action: x.action(x.create),
		},
		{
			Name: "delete", Aliases: []string{"rm"}, Usage: "delete a node", ArgsUsage: "PATH",
			Description: `Deletes PATH, which must have no children (else exit code 5; see deleteall).
With -v, only if its version is VERSION.

JSON: {"path":P,"deleted":[P]}`,
			Flags:  []cli.Flag{versionFlag("node's version")},
			Action: x.action(x.delete),
		},
		{
			Name: "deleteall", Aliases: []string{"rmr"}, Usage: "delete a node and everything below it", ArgsUsage: "PATH",
			Description: `Deletes every node below PATH, then PATH (not atomically: nodes created
meanwhile are deleted too, or the command fails with exit code 5).

JSON: {"path":P,"deleted":[PATH…]} (children before parents)`,
			Action: x.action(x.deleteAll),
		},
		{
			Name: "stat", Usage: "print a node's Stat", ArgsUsage: "PATH",
			Description: `Prints PATH's Stat, one "name = value" per line; exit code 2 if absent.

JSON: {"path":P,"stat":STAT}
STAT: {"czxid":N,"mzxid":N,"pzxid":N,"ctime":MS,"mtime":MS,"version":N,
       "cversion":N,"aversion":N,"ephemeral_owner":"16 hex digits",
       "data_length":N,"num_children":N}`,
			Action: x.action(x.stat),
		},
		{
			Name: "sync", Usage: "make the connected server catch up with the leader", ArgsUsage: "[PATH]",
			Description: `Waits until the server this session uses has applied every write
committed before (a quorum operation).

JSON: {"path":P}`,
			Action: x.action(x.sync),
		},
		{
			Name: "getacl", Usage: "print a node's ACL", ArgsUsage: "PATH",
			Description: `Prints PATH's ACL, one entry scheme:id:perms per line (the form setacl reads).

JSON: {"path":P,"acl":[{"perms":"cdrwa","scheme":S,"id":ID}…],"stat":STAT}`,
			Flags:  []cli.Flag{statFlag()},
			Action: x.action(x.getACL),
		},
		{
			Name: "setacl", Usage: "replace a node's ACL", ArgsUsage: "PATH ACL",
			Description: `Replaces PATH's ACL. ACL is entries scheme:id:perms separated by commas:
perms are letters of cdrwa (create, delete, read, write, admin); schemes are
world (id anyone), digest (id USER:BASE64(SHA1(USER:PASSWORD))), ip (id an
address or CIDR) and auth (id empty: the session's own identities).
With -v, only if the ACL's version (aversion) is VERSION.

JSON: {"path":P,"stat":STAT}`,
			Flags:  []cli.Flag{versionFlag("ACL's version (aversion)"), statFlag()},
			Action: x.action(x.setACL),
		},
	}
}

// pathArg resolves the optional path argument (default: working node).
func (x *ctl) pathArg(args []string) (string, error) {
	if len(args) == 0 {
		return x.cwd, nil
	}
	return x.resolve(args[0])
}

func (x *ctl) ls(c *cli.Context) error {
	args, err := nargs(c, 0, 1)
	if err != nil {
		return err
	}
	p, err := x.pathArg(args)
	if err != nil {
		return err
	}
	if c.Bool("recursive") && c.Bool("watch") {
		return usageHint(`"coordctl watch --recursive PATH" follows a whole subtree`, "ls: -R and -w cannot be combined")
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("recursive") {
		paths, st, err := x.walk(c.Context, cl, p)
		if err != nil {
			return err
		}
		return x.emit(c, lsRecJSON{Path: p, Paths: paths, Stat: st}, func(w io.Writer) {
			for _, q := range paths {
				fmt.Fprintln(w, q)
			}
			if c.Bool("stat") {
				writeStat(w, st)
			}
		})
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	var (
		kids []string
		st   *client.Stat
		ch   <-chan client.Event
	)
	if c.Bool("watch") {
		kids, st, ch, err = cl.ChildrenW(ctx, p)
	} else {
		kids, st, err = cl.Children(ctx, p)
	}
	if err != nil {
		return err
	}
	if kids == nil {
		kids = []string{}
	}
	if err := x.emit(c, lsJSON{Path: p, Children: kids, Stat: st}, func(w io.Writer) {
		for _, k := range kids {
			fmt.Fprintln(w, k)
		}
		if c.Bool("stat") {
			writeStat(w, st)
		}
	}); err != nil {
		return err
	}
	return x.awaitEvent(c, ch)
}

// walk lists root and every node below it, depth first in sorted order.
// Nodes deleted during the walk are skipped.
func (x *ctl) walk(ctx context.Context, cl *client.Client, root string) ([]string, *client.Stat, error) {
	children := func(p string) ([]string, *client.Stat, error) {
		octx, cancel := x.op(ctx)
		defer cancel()
		return cl.Children(octx, p)
	}
	kids, st, err := children(root)
	if err != nil {
		return nil, nil, err
	}
	out := []string{root}
	var rec func(p string, kids []string) error
	rec = func(p string, kids []string) error {
		for _, k := range kids {
			q := wire.Join(p, k)
			out = append(out, q)
			sub, _, err := children(q)
			if errors.Is(err, client.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			if err := rec(q, sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := rec(root, kids); err != nil {
		return nil, nil, err
	}
	return out, st, nil
}

func dataFormatOf(c *cli.Context) (dataFormat, error) {
	switch {
	case c.Bool("base64") && c.Bool("raw"):
		return 0, usagef("%s: --base64 and --raw cannot be combined", cmdName(c))
	case c.Bool("base64"):
		return dataBase64, nil
	case c.Bool("raw"):
		return dataRaw, nil
	}
	return dataText, nil
}

func (x *ctl) get(c *cli.Context) error {
	args, err := nargs(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	f, err := dataFormatOf(c)
	if err != nil {
		return err
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	var (
		data []byte
		st   *client.Stat
		ch   <-chan client.Event
	)
	if c.Bool("watch") {
		data, st, ch, err = cl.GetW(ctx, p)
	} else {
		data, st, err = cl.Get(ctx, p)
	}
	if err != nil {
		return err
	}
	b, text := dataJSON(data)
	if err := x.emit(c, getJSON{Path: p, Data: b, Text: text, Stat: st}, func(w io.Writer) {
		writeData(w, x.errw, data, f)
		if c.Bool("stat") {
			if f == dataRaw && len(data) > 0 && data[len(data)-1] != '\n' {
				fmt.Fprintln(w)
			}
			writeStat(w, st)
		}
	}); err != nil {
		return err
	}
	return x.awaitEvent(c, ch)
}

// versionOf reads a -v flag.
func versionOf(c *cli.Context) (int32, error) {
	v := c.Int("version")
	if v < -1 || v > math.MaxInt32 {
		return 0, usagef("%s: -v %d: a version is -1 (any) or 0 to %d", cmdName(c), v, math.MaxInt32)
	}
	return int32(v), nil
}

func (x *ctl) set(c *cli.Context) error {
	args, err := nargs(c, 2, 2)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	v, err := versionOf(c)
	if err != nil {
		return err
	}
	data, err := readData(args[1], x.in, c.Bool("base64"))
	if err != nil {
		return err
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	st, err := cl.Set(ctx, p, data, v)
	if err != nil {
		return err
	}
	return x.emit(c, nodeJSON{Path: p, Stat: st}, func(w io.Writer) {
		if c.Bool("stat") {
			writeStat(w, st)
		}
	})
}

// parseTTL reads a TTL: a Go duration ("30s") or milliseconds.
func parseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		d = time.Duration(ms) * time.Millisecond
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, usagef("create: -t %q: a TTL is a duration (30s, 5m) or milliseconds", s)
	}
	if d < time.Millisecond {
		return 0, usagef("create: -t %q: the TTL must be at least 1ms", s)
	}
	return d, nil
}

// parseACL reads entries scheme:id:perms separated by commas. The id may
// contain colons (digest ids do): the scheme ends at the first colon, the
// perms start after the last.
func parseACL(s string) ([]client.ACL, error) {
	var acl []client.ACL
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		i, j := strings.IndexByte(e, ':'), strings.LastIndexByte(e, ':')
		if i <= 0 || i == j {
			return nil, usageHint("an entry is scheme:id:perms, e.g. world:anyone:cdrwa, digest:alice:BASE64SHA1:rw, ip:10.0.0.0/8:r, auth::cdrwa",
				"ACL entry %q is not scheme:id:perms", e)
		}
		perms, err := wire.ParsePerms(e[j+1:])
		if err != nil {
			return nil, usageHint("perms are letters of cdrwa: create, delete, read, write, admin", "ACL entry %q: %v", e, err)
		}
		acl = append(acl, client.ACL{Perms: perms, Scheme: e[:i], ID: e[i+1 : j]})
	}
	if len(acl) == 0 {
		return nil, usagef("empty ACL: give at least one entry scheme:id:perms")
	}
	return acl, nil
}

// createMode picks the mode from create's flags.
func createMode(c *cli.Context) (client.Mode, time.Duration, error) {
	e, s, cont, ttlArg := c.Bool("ephemeral"), c.Bool("sequential"), c.Bool("container"), c.String("ttl")
	var ttl time.Duration
	if ttlArg != "" {
		var err error
		if ttl, err = parseTTL(ttlArg); err != nil {
			return "", 0, err
		}
	}
	switch {
	case cont && (e || s || ttl > 0):
		return "", 0, usagef("create: -c (container) cannot be combined with -e, -s or -t")
	case e && ttl > 0:
		return "", 0, usagef("create: -e (ephemeral) cannot be combined with -t: ephemeral nodes live with their session")
	case cont:
		return client.ModeContainer, 0, nil
	case ttl > 0 && s:
		return client.ModePersistentSequentialTTL, ttl, nil
	case ttl > 0:
		return client.ModePersistentTTL, ttl, nil
	case e && s:
		return client.ModeEphemeralSequential, 0, nil
	case e:
		return client.ModeEphemeral, 0, nil
	case s:
		return client.ModePersistentSequential, 0, nil
	}
	return client.ModePersistent, 0, nil
}

func (x *ctl) create(c *cli.Context) error {
	args, err := nargs(c, 1, 2)
	if err != nil {
		return err
	}
	mode, ttl, err := createMode(c)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	if mode.Sequential() && strings.HasSuffix(args[0], "/") && p != "/" {
		p += "/" // "/q/" asks for a name that is only the sequence number
	}
	var opts []client.CreateOption
	if ttl > 0 {
		opts = append(opts, client.WithTTL(ttl))
	}
	if s := c.String("acl"); c.IsSet("acl") {
		acl, err := parseACL(s)
		if err != nil {
			return err
		}
		opts = append(opts, client.WithACL(acl...))
	}
	var data []byte
	if len(args) == 2 {
		if data, err = readData(args[1], x.in, c.Bool("base64")); err != nil {
			return err
		}
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("parents") {
		parent := wire.Parent(p)
		if strings.HasSuffix(p, "/") {
			parent = strings.TrimSuffix(p, "/")
		}
		if err := x.createParents(c.Context, cl, parent); err != nil {
			return err
		}
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	created, st, err := cl.Create(ctx, p, data, mode, opts...)
	if err != nil {
		return err
	}
	if mode.Ephemeral() && x.sh == nil && !isJSON(c) {
		fmt.Fprintln(x.errw, "coordctl: note: an ephemeral node lives as long as its session, and this command's session ends now; create it in the shell (coordctl shell) to keep it")
	}
	return x.emit(c, nodeJSON{Path: created, Stat: st}, func(w io.Writer) { fmt.Fprintln(w, created) })
}

// createParents creates p and its missing ancestors as empty persistent
// nodes.
func (x *ctl) createParents(ctx context.Context, cl *client.Client, p string) error {
	if p == "/" || p == "" {
		return nil
	}
	octx, cancel := x.op(ctx)
	ok, _, err := cl.Exists(octx, p)
	cancel()
	if err != nil || ok {
		return err
	}
	if err := x.createParents(ctx, cl, wire.Parent(p)); err != nil {
		return err
	}
	octx, cancel = x.op(ctx)
	defer cancel()
	_, _, err = cl.Create(octx, p, nil, client.ModePersistent)
	if errors.Is(err, client.ErrNodeExists) {
		return nil
	}
	return err
}

func (x *ctl) delete(c *cli.Context) error {
	args, err := nargs(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	v, err := versionOf(c)
	if err != nil {
		return err
	}
	if p == "/" {
		return usagef("delete: the root cannot be deleted")
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	if err := cl.Delete(ctx, p, v); err != nil {
		return err
	}
	return x.emit(c, deleteJSON{Path: p, Deleted: []string{p}}, nil)
}

func (x *ctl) deleteAll(c *cli.Context) error {
	args, err := nargs(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	if p == "/" {
		return usageHint(`delete the root's children one by one ("coordctl ls /")`, "deleteall: refusing to delete the whole tree")
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	deleted := []string{}
	err = x.deleteTree(c.Context, cl, p, true, &deleted)
	if err != nil {
		return err
	}
	return x.emit(c, deleteJSON{Path: p, Deleted: deleted}, nil)
}

// deleteTree deletes p's subtree, children first, and appends what it
// deleted. A node gone meanwhile is fine, except the top one (top).
func (x *ctl) deleteTree(ctx context.Context, cl *client.Client, p string, top bool, deleted *[]string) error {
	for attempt := 0; ; attempt++ {
		octx, cancel := x.op(ctx)
		kids, _, err := cl.Children(octx, p)
		cancel()
		if errors.Is(err, client.ErrNoNode) && !top {
			return nil
		}
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := x.deleteTree(ctx, cl, wire.Join(p, k), false, deleted); err != nil {
				return err
			}
		}
		octx, cancel = x.op(ctx)
		err = cl.Delete(octx, p, client.AnyVersion)
		cancel()
		switch {
		case err == nil:
			*deleted = append(*deleted, p)
			return nil
		case errors.Is(err, client.ErrNoNode) && !top:
			return nil
		case errors.Is(err, client.ErrNotEmpty) && attempt < 5:
			continue // children were created meanwhile
		}
		return err
	}
}

func (x *ctl) stat(c *cli.Context) error {
	args, err := nargs(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	ok, st, err := cl.Exists(ctx, p)
	if err != nil {
		return err
	}
	if !ok {
		return &client.OpError{Op: "stat", Path: p, Err: client.ErrNoNode}
	}
	return x.emit(c, nodeJSON{Path: p, Stat: st}, func(w io.Writer) { writeStat(w, st) })
}

func (x *ctl) sync(c *cli.Context) error {
	args, err := nargs(c, 0, 1)
	if err != nil {
		return err
	}
	p, err := x.pathArg(args)
	if err != nil {
		return err
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	if err := cl.Sync(ctx, p); err != nil {
		return err
	}
	return x.emit(c, pathJSON{Path: p}, nil)
}

func (x *ctl) getACL(c *cli.Context) error {
	args, err := nargs(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	acl, st, err := cl.GetACL(ctx, p)
	if err != nil {
		return err
	}
	if acl == nil {
		acl = []client.ACL{}
	}
	return x.emit(c, aclJSON{Path: p, ACL: acl, Stat: st}, func(w io.Writer) {
		for _, a := range acl {
			fmt.Fprintln(w, formatACL(a))
		}
		if c.Bool("stat") {
			writeStat(w, st)
		}
	})
}

func (x *ctl) setACL(c *cli.Context) error {
	args, err := nargs(c, 2, 2)
	if err != nil {
		return err
	}
	p, err := x.resolve(args[0])
	if err != nil {
		return err
	}
	v, err := versionOf(c)
	if err != nil {
		return err
	}
	acl, err := parseACL(args[1])
	if err != nil {
		return err
	}
	cl, err := x.conn(c.Context)
	if err != nil {
		return err
	}
	ctx, cancel := x.op(c.Context)
	defer cancel()
	st, err := cl.SetACL(ctx, p, acl, v)
	if err != nil {
		return err
	}
	return x.emit(c, nodeJSON{Path: p, Stat: st}, func(w io.Writer) {
		if c.Bool("stat") {
			writeStat(w, st)
		}
	})
}
