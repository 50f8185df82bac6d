//go:build linux

package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "goroutines", "goroutines or epoll (a server), or client")
	addr := flag.String("addr", "127.0.0.1:7499", "the server's address")
	reply := flag.Bool("reply", false, "the server answers every frame with 2 bytes (a pong)")
	coalesce := flag.Duration("coalesce", 0, "epoll: sleep this long after each wake-up, so that one wake-up serves many connections")
	conns := flag.Int("conns", 10000, "client: connections")
	interval := flag.Duration("interval", 10*time.Second/3, "client: time between one connection's frames")
	warmup := flag.Duration("warmup", 5*time.Second, "client: time before measuring")
	duration := flag.Duration("duration", 15*time.Second, "client: time measured")
	pid := flag.Int("pid", 0, "client: the server's process id")
	flag.Parse()
	var err error
	switch *mode {
	case "goroutines":
		err = serveGoroutines(*addr, *reply)
	case "epoll":
		err = serveEpoll(*addr, *reply, *coalesce)
	case "client":
		err = client(*addr, *pid, *conns, *interval, *warmup, *duration, *reply)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netfloor:", err)
		os.Exit(1)
	}
}

// serveGoroutines reads each connection in its own goroutine, blocked in
// the runtime's netpoller between frames.
func serveGoroutines(addr string, reply bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				if reply {
					if _, err := c.Write(buf[:2]); err != nil {
						return
					}
				}
			}
		}()
	}
}

// serveEpoll serves every connection from one loop over epoll_wait, with no
// goroutine per connection; with coalesce > 0 it sleeps after each wake-up.
func serveEpoll(addr string, reply bool, coalesce time.Duration) error {
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return err
	}
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	if err := syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return err
	}
	sa := &syscall.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := syscall.Bind(lfd, sa); err != nil {
		return err
	}
	if err := syscall.Listen(lfd, 4096); err != nil {
		return err
	}
	ep, err := syscall.EpollCreate1(0)
	if err != nil {
		return err
	}
	watch := func(fd int) error {
		return syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
	}
	if err := watch(lfd); err != nil {
		return err
	}
	evs := make([]syscall.EpollEvent, 1024)
	buf := make([]byte, 512)
	for {
		n, err := syscall.EpollWait(ep, evs, -1)
		if err == syscall.EINTR {
			continue
		} else if err != nil {
			return err
		}
		for _, ev := range evs[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				for {
					cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK)
					if err != nil {
						break
					}
					if err := watch(cfd); err != nil {
						return err
					}
				}
				continue
			}
			k, err := syscall.Read(fd, buf)
			switch {
			case k == 0 && err == nil:
				syscall.Close(fd)
			case k > 0 && reply:
				_, _ = syscall.Write(fd, buf[:2])
			}
		}
		if coalesce > 0 {
			time.Sleep(coalesce)
		}
	}
}

// client keeps conns connections sending heartbeats and reports the CPU
// that process pid used meanwhile.
func client(addr string, pid, conns int, interval, warmup, duration time.Duration, reply bool) error {
	if pid == 0 {
		return fmt.Errorf("-pid is required")
	}
	cs := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		cs = append(cs, c)
		if reply {
			go func() {
				b := make([]byte, 64)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
				}
			}()
		}
	}
	frame := []byte{0x8a, 0x80, 1, 2, 3, 4} // FIN+pong, masked, no payload
	const tick = 20 * time.Millisecond
	go func() {
		t := time.NewTicker(tick)
		perTick := float64(conns) * float64(tick) / float64(interval)
		due, next := 0.0, 0
		for range t.C {
			for due += perTick; due >= 1; due-- {
				_, _ = cs[next].Write(frame)
				next = (next + 1) % conns
			}
		}
	}()
	time.Sleep(warmup)
	c0, t0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	time.Sleep(duration)
	c1, t1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	fmt.Printf("conns=%d frames_per_s=%.0f reply=%v server_cpu_pct=%.2f\n", conns,
		float64(conns)*float64(time.Second)/float64(interval), reply, 100*float64(c1-c0)/float64(t1.Sub(t0)))
	return nil
}

// cpuTime returns the user+system CPU time process pid has used, and when.
func cpuTime(pid int) (time.Duration, time.Time, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	now := time.Now()
	if err != nil {
		return 0, now, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, now, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, now, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	// Clock ticks of 10 ms: USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, now, nil
}
