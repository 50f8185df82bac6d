package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coord-dev/coord/client"
	"github.com/coord-dev/coord/client/recipe"
	"github.com/coord-dev/coord/internal/wire"
)

// runMutex runs --sessions contenders, each with its own client, looping
// Lock/Unlock on one recipe.Mutex; a unit is one acquisition, its latency
// from calling Lock until it returned.
func runMutex(ctx context.Context, cfg *Config) (*Result, error) {
	res := newResult(cfg)
	res.Unit = "acquisitions"
	path := cfg.Prefix + "/mutex"
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < cfg.Sessions; i++ {
		c, err := connectClient(ctx, []string{cfg.Servers[i%len(cfg.Servers)]}, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		clients = append(clients, c)
	}
	meter := newCPUMeter(cfg)
	warmEnd := time.Now().Add(max(cfg.Warmup, 0))
	end := warmEnd.Add(cfg.Duration)
	hists := make([]*histogram, len(clients))
	var mu sync.Mutex
	var errs errTally = map[string]*errCount{}
	var wg sync.WaitGroup
	started := false
	var startOnce sync.Once
	for i, c := range clients {
		hists[i] = &histogram{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := recipe.NewMutex(c, path)
			var last int64
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := m.Lock(lctx)
				cancel()
				if err != nil {
					mu.Lock()
					errs.add(string(wire.CodeOf(err)), 1, err.Error())
					mu.Unlock()
					continue
				}
				if tok := m.Token(); tok <= last {
					mu.Lock()
					errs.add("FencingTokenNotIncreasing", 1, fmt.Sprintf("token %d after %d", tok, last))
					mu.Unlock()
				} else {
					last = tok
				}
				if t0.After(warmEnd) {
					startOnce.Do(func() { meter.start(); started = true })
					hists[i].record(int64(time.Since(t0)))
				}
				if err := m.Unlock(ctx); err != nil {
					mu.Lock()
					errs.add(string(wire.CodeOf(err)), 1, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if started {
		meter.stop()
	}
	h := &histogram{}
	for _, x := range hists {
		h.merge(x)
	}
	res.WindowS = round3(cfg.Duration.Seconds())
	res.setMain(h)
	for code, e := range errs {
		res.addError(code, e.n, e.sample)
	}
	if started {
		meter.report(res)
	}
	return res, ctx.Err()
}

// connectTimeout bounds opening a client's session: the client retries
// unreachable servers for as long as its context lasts, and a load run
// against a server that is not there must fail, not wait forever.
const connectTimeout = 30 * time.Second

// connectClient opens a client session on servers with cfg's session
// timeout, giving up after connectTimeout.
func connectClient(ctx context.Context, servers []string, cfg *Config) (*client.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return client.Connect(cctx, servers, client.WithSessionTimeout(cfg.SessionTimeout))
}
