package sshtap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The idle-connection scale benchmark: how much one idle, authenticated
// connection costs, for sshtap and x/crypto/ssh, in each role.
//
// The role under measurement runs in the benchmark process; its peers run
// in a child process (this test binary again, as TestIdlePeerProcess), so
// that the figures hold one side only. Per connection it reports heap-B
// (HeapInuse), stack-B (StackInuse), goroutines and rss-B (VmRSS), each the
// difference between before the connections and once all of them are
// authenticated and idle, divided by their number.
//
//	go test -run '^$' -bench IdleConns -benchtime 1x .
//	SSHTAP_IDLE_CONNS=10000 go test -run '^$' -bench IdleConns -benchtime 1x .
//
// SSHTAP_IDLE_CONNS sets the number of connections (default 1000). Each
// takes a file descriptor in each process: the benchmark skips, saying so,
// when RLIMIT_NOFILE cannot be raised far enough (100,000 connections need
// a hard limit above 100,256). Clients bind 127.0.0.x source addresses, so
// that large runs do not run out of ephemeral ports.

// idleEnv names the child's instructions: "ROLE IMPL N ADDR SESSION", ROLE
// being the child's own role and SESSION "idle" or "session".
const idleEnv = "SSHTAP_IDLE_PEER"

func idleConnCount(b *testing.B) int {
	s := os.Getenv("SSHTAP_IDLE_CONNS")
	if s == "" {
		return 1000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("SSHTAP_IDLE_CONNS=%q: want a positive number", s)
	}
	return n
}

// raiseNoFile raises the soft descriptor limit to at least n, up to the
// hard limit, and reports whether n fit.
func raiseNoFile(n uint64) (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	if rl.Cur < n && rl.Max > rl.Cur {
		rl.Cur = min(n, rl.Max)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur, rl.Cur >= n
}

func BenchmarkIdleConns(b *testing.B) {
	if benchRaceEnabled() {
		b.Skip("memory figures mean nothing under -race")
	}
	n := idleConnCount(b)
	if limit, ok := raiseNoFile(uint64(n) + 256); !ok {
		b.Skipf("%d idle connections need %d file descriptors per process; RLIMIT_NOFILE allows %d (raise the hard limit, e.g. ulimit -Hn)", n, n+256, limit)
	}
	for _, mode := range []string{"idle", "session"} {
		for _, impl := range []string{"sshtap", "xcrypto"} {
			for _, role := range []string{"server", "client"} {
				b.Run(impl+"/"+role+"-"+mode, func(b *testing.B) {
					for range b.N {
						idleMeasure(b, impl, role, mode, n)
					}
				})
			}
		}
	}
}

// idleMeasure opens n idle connections in role (the child plays the other)
// and reports the cost per connection. In mode "session" each connection
// has one session open, its command running: on the client, with Stdin,
// Stdout and Stderr set (the standard streams of a remote shell); on the
// server, a handler waiting for the session's end.
func idleMeasure(b *testing.B, impl, role, mode string, n int) {
	var ln net.Listener
	peerAddr := "-"
	if role == "server" {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		peerAddr = ln.Addr().String()
	}
	peerRole := map[string]string{"server": "client", "client": "server"}[role]
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdlePeerProcess$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %s %s", idleEnv, peerRole, impl, n, peerAddr, mode))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the child exits at EOF
		cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	next := func() string {
		for lines.Scan() {
			if l, ok := strings.CutPrefix(lines.Text(), "idle-peer: "); ok {
				return l
			}
		}
		b.Fatalf("peer process ended: %v", lines.Err())
		return ""
	}

	before := idleSnapshot()
	var conns []io.Closer
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	session := mode == "session"
	if role == "server" {
		conns = idleServe(b, impl, ln, n, session)
		next() // "ready": every client of the child is authenticated (with its session running)
	} else {
		addr := next() // the child listens
		conns = idleDial(b, impl, addr, n, session)
	}
	after := idleSnapshot()
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	b.ReportMetric(per(after.heap, before.heap), "heap-B/conn")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/conn")
	b.ReportMetric(per(after.rss, before.rss), "rss-B/conn")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/conn")
}

type idleFigures struct {
	heap, stack, rss uint64
	goroutines       int
}

// idleSnapshot collects garbage and reads the process's figures. Stacks
// shrink during collections, so two run first.
func idleSnapshot() idleFigures {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return idleFigures{heap: ms.HeapInuse, stack: ms.StackInuse, rss: vmRSS(), goroutines: runtime.NumGoroutine()}
}

// vmRSS returns the process's resident set size in bytes (0 where
// /proc/self/status does not say).
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// idleServe accepts n connections and runs each server handshake to its
// end (the client authenticated), handshakes running on two goroutines.
func idleServe(tb testing.TB, impl string, ln net.Listener, n int, session bool) []io.Closer {
	testKeys(nil)
	scfg := &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true}
	if session {
		scfg.SessionHandler = func(s *ServerSession) { <-s.Context().Done() }
	}
	xcfg := &ssh.ServerConfig{NoClientAuth: true}
	xcfg.AddHostKey(testEd25519)
	out := make([]io.Closer, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	ncs := make(chan net.Conn)
	errc := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			for nc := range ncs {
				var c io.Closer
				switch impl {
				case "sshtap":
					sc := ServerConn(nc, scfg)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					err := sc.Handshake(ctx)
					cancel()
					if err != nil {
						errc <- err
						nc.Close()
						continue
					}
					c = sc
				default:
					sc, chans, reqs, err := ssh.NewServerConn(nc, xcfg)
					if err != nil {
						errc <- err
						nc.Close()
						continue
					}
					// As an x/crypto server must: serve the request
					// and channel streams.
					go ssh.DiscardRequests(reqs)
					go func() {
						for nch := range chans {
							if !session || nch.ChannelType() != "session" {
								nch.Reject(ssh.Prohibited, "idle")
								continue
							}
							// A session whose command runs until the
							// client closes it.
							ch, chReqs, err := nch.Accept()
							if err != nil {
								continue
							}
							go func() {
								for r := range chReqs {
									r.Reply(r.Type == "exec", nil)
								}
								ch.Close()
							}()
							go io.Copy(io.Discard, ch)
						}
					}()
					c = sc
				}
				mu.Lock()
				out = append(out, c)
				mu.Unlock()
			}
		})
	}
	for range n {
		nc, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		ncs <- nc
	}
	close(ncs)
	wg.Wait()
	select {
	case err := <-errc:
		tb.Fatalf("server handshake: %v", err)
	default:
	}
	return out
}

// idleDial makes n client connections to addr, each authenticated with
// "none", two handshakes at a time.
func idleDial(tb testing.TB, impl, addr string, n int, session bool) []io.Closer {
	ccfg := &Config{HostKeyCallback: insecure}
	xcfg := &ssh.ClientConfig{HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	out := make([]io.Closer, n, n+1)
	quiet := make(idleStdin)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	idx := make(chan int)
	for range 2 {
		wg.Go(func() {
			for i := range idx {
				// One source address has the ephemeral port range
				// (about 28,000 ports) towards one listener: spread
				// large runs over 127.0.0.0/8.
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/20000), 1)}}
				nc, err := d.Dial("tcp", addr)
				if err != nil {
					errc <- err
					continue
				}
				switch impl {
				case "sshtap":
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					c, err := NewClientConn(ctx, nc, ccfg)
					cancel()
					if err != nil {
						errc <- err
						continue
					}
					out[i] = c
					if session {
						s, err := c.NewSession(context.Background())
						if err == nil {
							err = idleStart(quiet, &s.Stdin, &s.Stdout, &s.Stderr, s.Start)
						}
						if err != nil {
							errc <- err
						}
					}
				default:
					cc, chans, reqs, err := ssh.NewClientConn(nc, addr, xcfg)
					if err != nil {
						nc.Close()
						errc <- err
						continue
					}
					c := ssh.NewClient(cc, chans, reqs)
					out[i] = c
					if session {
						s, err := c.NewSession()
						if err == nil {
							err = idleStart(quiet, &s.Stdin, &s.Stdout, &s.Stderr, s.Start)
						}
						if err != nil {
							errc <- err
						}
					}
				}
			}
		})
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	close(errc)
	if err := errors.Join(drainErrors(errc)...); err != nil {
		tb.Fatalf("client handshakes: %v", err)
	}
	return append(out, quiet)
}

// idleStart starts a command with the standard streams a remote shell has:
// Stdin a terminal nobody types on (its reads return once quiet is
// closed), Stdout and Stderr writers.
func idleStart(quiet idleStdin, stdin *io.Reader, stdout, stderr *io.Writer, start func(string) error) error {
	*stdin = quiet
	*stdout, *stderr = io.Discard, io.Discard
	return start("hold")
}

// idleStdin is a reader whose reads wait until it is closed.
type idleStdin chan struct{}

func (q idleStdin) Read([]byte) (int, error) {
	<-q
	return 0, io.EOF
}

func (q idleStdin) Close() error {
	close(q)
	return nil
}

// drainErrors collects what a closed error channel holds.
func drainErrors(c <-chan error) []error {
	var out []error
	for err := range c {
		out = append(out, err)
	}
	return out
}

// TestIdlePeerProcess is BenchmarkIdleConns's child process; it skips
// unless started by it.
func TestIdlePeerProcess(t *testing.T) {
	spec := os.Getenv(idleEnv)
	if spec == "" {
		t.Skip("the peer process of BenchmarkIdleConns")
	}
	var role, impl, addr, mode string
	var n int
	if _, err := fmt.Sscanf(spec, "%s %s %d %s %s", &role, &impl, &n, &addr, &mode); err != nil {
		t.Fatalf("%s=%q: %v", idleEnv, spec, err)
	}
	raiseNoFile(uint64(n) + 256)
	var conns []io.Closer
	switch role {
	case "client":
		conns = idleDial(t, impl, addr, n, mode == "session")
		fmt.Println("idle-peer: ready")
	case "server":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fmt.Println("idle-peer: " + ln.Addr().String())
		conns = idleServe(t, impl, ln, n, mode == "session")
	}
	io.Copy(io.Discard, os.Stdin) // until the benchmark is done
	for _, c := range conns {
		c.Close()
	}
}
