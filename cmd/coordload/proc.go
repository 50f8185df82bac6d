package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every mainstream Linux build).
const clockTicks = 100

// procCPU returns the CPU time (user+system) used so far by process pid,
// including its exited threads.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which ends with the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// selfCPU returns this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// findListener returns the pid of the process listening on addr's TCP port
// on this machine, from /proc/net/tcp{,6} and /proc/*/fd.
func findListener(addr string) (int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !isLocalIP(ip)) {
		return 0, fmt.Errorf("%s is not on this machine", addr)
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, lp, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(lp, 16, 16); ok && err == nil && p == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d here", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, _ := os.ReadDir(p + "/fd")
		for _, fd := range fds {
			if link, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && inodes[link] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("the process listening on port %d is not visible (run as its user or pass --server-pid)", port)
}

func isLocalIP(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// cpuMeter measures the servers' and this process's CPU use over a window.
type cpuMeter struct {
	pids   []int
	why    string // why the server is not measured
	t0, t1 time.Time
	s0, s1 []time.Duration
	c0, c1 time.Duration
	failed bool
}

// newCPUMeter finds the server processes: --server-pid, else the listeners
// of the --servers ports.
func newCPUMeter(cfg *Config) *cpuMeter {
	m := &cpuMeter{pids: cfg.ServerPIDs}
	if len(m.pids) == 0 {
		for _, s := range cfg.Servers {
			pid, err := findListener(s)
			if err != nil {
				m.pids, m.why = nil, fmt.Sprintf("server CPU not measured: %v", err)
				break
			}
			m.pids = append(m.pids, pid)
		}
	}
	return m
}

func (m *cpuMeter) sample() ([]time.Duration, time.Duration, time.Time) {
	s := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		d, err := procCPU(pid)
		if err != nil {
			m.failed, m.why = true, fmt.Sprintf("server CPU not measured: %v", err)
		}
		s[i] = d
	}
	return s, selfCPU(), time.Now()
}

func (m *cpuMeter) start() { m.s0, m.c0, m.t0 = m.sample() }
func (m *cpuMeter) stop()  { m.s1, m.c1, m.t1 = m.sample() }

// serverPct returns the servers' summed CPU use in % of one core.
func (m *cpuMeter) serverPct() (float64, bool) {
	wall := m.t1.Sub(m.t0)
	if len(m.pids) == 0 || m.failed || wall <= 0 {
		return 0, false
	}
	var d time.Duration
	for i := range m.pids {
		d += m.s1[i] - m.s0[i]
	}
	return 100 * float64(d) / float64(wall), true
}

// report fills the CPU fields of res.
func (m *cpuMeter) report(res *Result) {
	wall := m.t1.Sub(m.t0)
	if wall > 0 {
		res.ClientCPUPct = round1(100 * float64(m.c1-m.c0) / float64(wall))
	}
	if p, ok := m.serverPct(); ok {
		p = round1(p)
		res.ServerCPUPct, res.ServerPIDs = &p, m.pids
	} else if m.why != "" {
		res.Notes = append(res.Notes, m.why)
	}
}

// startCPUProfile profiles the load tool itself into the file at path
// until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
