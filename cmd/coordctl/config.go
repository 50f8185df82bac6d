package main

import (
	"strings"
	"time"
)

// Config holds coordctl's global settings. Each field maps to the global
// flag of the same name (and its COORD_ environment variable); Validate
// turns zero values into the documented defaults.
type Config struct {
	// Servers are the client addresses (host:port) of the cluster's
	// servers. Default 127.0.0.1:7181.
	Servers []string
	// Timeout bounds opening the session and each request. Default 10s.
	Timeout time.Duration
	// SessionTimeout is the session timeout asked of the server. Default
	// 10s.
	SessionTimeout time.Duration
	// Output is the output format: "text" (default) or "json".
	Output string
	// Auth are identities SCHEME:CREDENTIAL the session authenticates
	// with, e.g. "digest:alice:secret".
	Auth []string
}

// Validate applies the defaults and checks the settings.
func (c *Config) Validate() error {
	var servers []string
	for _, s := range c.Servers {
		for _, s := range strings.Split(s, ",") {
			if s = strings.TrimSpace(s); s != "" {
				servers = append(servers, s)
			}
		}
	}
	c.Servers = servers
	if len(c.Servers) == 0 {
		c.Servers = []string{"127.0.0.1:7181"}
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = 10 * time.Second
	case c.Timeout < 0:
		return usagef("--timeout must be positive, got %v", c.Timeout)
	}
	switch {
	case c.SessionTimeout == 0:
		c.SessionTimeout = 10 * time.Second
	case c.SessionTimeout < 0:
		return usagef("--session-timeout must be positive, got %v", c.SessionTimeout)
	}
	switch c.Output {
	case "":
		c.Output = "text"
	case "text", "json":
	default:
		return usagef("-o %q: the output format is text or json", c.Output)
	}
	for _, a := range c.Auth {
		if _, _, err := splitAuth(a); err != nil {
			return err
		}
	}
	return nil
}

// splitAuth splits SCHEME:CREDENTIAL.
func splitAuth(a string) (scheme, credential string, err error) {
	scheme, credential, ok := strings.Cut(a, ":")
	if !ok || scheme == "" || credential == "" {
		return "", "", usageHint("e.g. --auth digest:alice:secret", "--auth %q is not SCHEME:CREDENTIAL", a)
	}
	return scheme, credential, nil
}
