package sshtap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testServer serves s on a loopback listener until the test ends and
// returns its address.
func testServer(t *testing.T, s *Server) string {
	t.Helper()
	testKeys(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// passwordServerConfig lets in user "u" with password "pw" and serves
// testSessionHandler.
func passwordServerConfig(t testing.TB) *ServerConfig {
	testKeys(t)
	return &ServerConfig{
		HostKeys: []ssh.Signer{testEd25519},
		PasswordCallback: func(m ConnMetadata, pw []byte) (*Permissions, error) {
			if m.User() == "u" && string(pw) == "pw" {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		SessionHandler: testSessionHandler,
	}
}

func dialTest(ctx context.Context, addr string) (*Conn, error) {
	return Dial(ctx, "tcp", addr, &Config{User: "u", Auth: []AuthMethod{Password("pw")}, HostKeyCallback: insecure})
}

// stalledSocket connects and sends prefix, then nothing.
func stalledSocket(t *testing.T, addr string, prefix []byte) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if len(prefix) > 0 {
		if _, err := nc.Write(prefix); err != nil {
			t.Fatal(err)
		}
	}
	return nc
}

func TestParseMaxStartups(t *testing.T) {
	for in, want := range map[string]MaxStartups{
		"10:30:100": {10, 30, 100},
		"5":         {5, 100, 5},
		"0:100:1":   {0, 100, 1},
	} {
		got, err := ParseMaxStartups(in)
		if err != nil || got != want {
			t.Errorf("ParseMaxStartups(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10:30", "1:2:3:4", "20:30:10", "1:101:5", "-1", "0", "a:b:c"} {
		if _, err := ParseMaxStartups(in); err == nil {
			t.Errorf("ParseMaxStartups(%q) succeeded", in)
		}
	}
}

// The drop probability follows OpenSSH's: Rate percent at Start, rising
// linearly to 100 percent at Full.
func TestMaxStartupsDrop(t *testing.T) {
	if (&Server{}).maxStartups() != DefaultMaxStartups {
		t.Fatal("a Server's zero MaxStartups is not DefaultMaxStartups")
	}
	m := DefaultMaxStartups // 10:30:100
	rate := func(n int) float64 {
		drops := 0
		for range 20000 {
			if m.drop(n) {
				drops++
			}
		}
		return float64(drops) / 20000
	}
	for _, c := range []struct {
		n      int
		lo, hi float64
	}{{0, 0, 0}, {9, 0, 0}, {10, 0.27, 0.33}, {55, 0.62, 0.68}, {99, 0.96, 1}, {100, 1, 1}, {500, 1, 1}} {
		if r := rate(c.n); r < c.lo || r > c.hi {
			t.Errorf("with %d unauthenticated: dropped %.3f, want %.2f..%.2f", c.n, r, c.lo, c.hi)
		}
	}
	m = MaxStartups{Full: -1}
	if rate(1e6) != 0 {
		t.Error("Full < 0 dropped")
	}
}

// Past MaxStartups a connection gets sshd's line and is closed, and stalled
// sockets are dropped after the grace time, after which honest clients get
// in again.
func TestServerMaxStartups(t *testing.T) {
	cfg := passwordServerConfig(t)
	cfg.LoginGraceTime = time.Second
	s := &Server{Config: cfg, MaxStartups: MaxStartups{Start: 3, Rate: 100, Full: 3}}
	addr := testServer(t, s)
	var stalled []net.Conn
	for range 3 {
		stalled = append(stalled, stalledSocket(t, addr, nil))
	}
	// The three were accepted before the fourth (one accept loop, in
	// order), so it is dropped.
	extra := stalledSocket(t, addr, nil)
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(extra)
	if string(got) != "Exceeded MaxStartups\r\n" || err != nil {
		t.Fatalf("fourth connection read %q, %v", got, err)
	}
	// The stalled ones end at the grace time; then a client gets in.
	for _, nc := range stalled {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(nc); err != nil {
			t.Fatalf("stalled socket: %v (not closed by the server)", err)
		}
	}
	ctx := tctx(t)
	c, err := dialTest(ctx, addr)
	if err != nil {
		t.Fatalf("honest client after the stalled ones ended: %v", err)
	}
	c.Close()
}

// MaxConns counts authenticated connections only: unauthenticated sockets
// never lock an honest user out, and one client past the limit is told
// TOO_MANY_CONNECTIONS.
func TestServerMaxConns(t *testing.T) {
	s := &Server{Config: passwordServerConfig(t), MaxConns: 1}
	addr := testServer(t, s)
	for range 5 {
		stalledSocket(t, addr, nil)
	}
	ctx := tctx(t)
	a, err := dialTest(ctx, addr)
	if err != nil {
		t.Fatalf("first client beside 5 stalled sockets: %v", err)
	}
	_, err = dialTest(ctx, addr)
	var de *DisconnectError
	if !errors.As(err, &de) || !de.Remote || de.Reason != DisconnectTooManyConnections {
		t.Fatalf("second client: %v, want TOO_MANY_CONNECTIONS", err)
	}
	a.Close()
	// The place is free once the server saw a's end; retry until then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := dialTest(ctx, addr)
		if err == nil {
			b.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client after the first left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown closes the listener and unauthenticated connections at once,
// ends idle authenticated ones, and waits for a running session; ConnState
// sees every connection through new, active and closed.
func TestServerShutdown(t *testing.T) {
	testKeys(t)
	var mu sync.Mutex
	states := map[*Conn][]ConnState{}
	s := &Server{Config: passwordServerConfig(t), ConnState: func(c *Conn, st ConnState) {
		mu.Lock()
		states[c] = append(states[c], st)
		mu.Unlock()
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	ctx := tctx(t)
	busy, err := dialTest(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	idle, err := dialTest(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	stalled := stalledSocket(t, addr, []byte("SSH-2.0-half"))
	sess, err := busy.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("cat"); err != nil {
		t.Fatal(err)
	}

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	// A socket accepted after Shutdown began is closed with its bytes
	// unread, which resets it.
	if _, err := io.ReadAll(stalled); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("stalled socket not closed: %v", err)
	}
	var de *DisconnectError
	if err := idle.Wait(); !errors.As(err, &de) || de.Message != serverShutdownMsg {
		t.Fatalf("idle client ended with %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("listener still accepts")
	}
	// No new channel on a connection during Shutdown.
	var oe *OpenChannelError
	if _, err := busy.NewSession(ctx); !errors.As(err, &oe) || oe.Reason != OpenProhibited || oe.Message != "server shutting down" {
		t.Fatalf("a session opened during Shutdown: %v", err)
	}
	// The session still works while Shutdown waits for it.
	io.WriteString(stdin, "still here\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "still here\n" {
		t.Fatalf("session during Shutdown: %q, %v", line, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a session running", err)
	default:
	}
	stdin.Close()
	if err := sess.Wait(); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	full := 0
	for c, st := range states {
		want := "new active closed"
		if !c.Authenticated() {
			want = "new closed"
		} else {
			full++
		}
		if got := stateNames(st); got != want {
			t.Errorf("states %q, want %q", got, want)
		}
	}
	if len(states) != 3 || full != 2 {
		t.Errorf("ConnState saw %d connections (%d authenticated), want 3 (2)", len(states), full)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func stateNames(st []ConnState) string {
	var names []string
	for _, s := range st {
		names = append(names, s.String())
	}
	return strings.Join(names, " ")
}

// serverCounts returns a Server's unauthenticated and authenticated counts.
func serverCounts(s *Server) (startups, active, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startups, s.active, len(s.conns)
}

// waitServerIdle polls until the Server holds no connection.
func waitServerIdle(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, act, n := serverCounts(s)
		if st == 0 && act == 0 && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still counts %d unauthenticated, %d authenticated, %d connections", st, act, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Whatever NewConn does (drop the socket, return a Conn it closed, take
// longer than the grace time), the Server's counts come back to zero, so
// MaxStartups never fills up with ghosts.
func TestServerNewConnCounts(t *testing.T) {
	cfg := passwordServerConfig(t)
	cfg.LoginGraceTime = 5 * time.Millisecond
	var mode atomicString
	s := &Server{
		MaxStartups: MaxStartups{Start: 1, Rate: 100, Full: 1},
		NewConn: func(nc net.Conn) *Conn {
			switch mode.Load() {
			case "nil":
				return nil
			case "closed":
				c := ServerConn(nc, cfg)
				c.Close()
				return c
			default: // slow: the grace time ends before NewConn returns
				c := ServerConn(nc, cfg)
				<-c.closing
				return c
			}
		},
	}
	addr := testServer(t, s)
	for _, m := range []string{"nil", "closed", "slow"} {
		mode.Store(m)
		nc := stalledSocket(t, addr, nil)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.ReadAll(nc)
		waitServerIdle(t, s)
	}
}

// An authenticated connection outlives the login grace time.
func TestServerGraceEndsAtAuth(t *testing.T) {
	cfg := passwordServerConfig(t)
	cfg.LoginGraceTime = 200 * time.Millisecond
	addr := testServer(t, &Server{Config: cfg})
	ctx := tctx(t)
	c, err := dialTest(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-time.After(400 * time.Millisecond) // what is tested: time passing
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("authenticated connection after the grace time: %v", err)
	}
}

type atomicString struct {
	mu sync.Mutex
	s  string
}

func (a *atomicString) Store(s string) { a.mu.Lock(); a.s = s; a.mu.Unlock() }
func (a *atomicString) Load() string   { a.mu.Lock(); defer a.mu.Unlock(); return a.s }

// Server.Stats counts what happened to every connection.
func TestServerStats(t *testing.T) {
	cfg := passwordServerConfig(t)
	cfg.LoginGraceTime = 300 * time.Millisecond
	s := &Server{Config: cfg, MaxConns: 1}
	addr := testServer(t, s)
	ctx := tctx(t)
	good, err := dialTest(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if c, err := Dial(ctx, "tcp", addr, &Config{User: "u", Auth: []AuthMethod{Password("nope")}, HostKeyCallback: insecure}); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}
	if c, err := dialTest(ctx, addr); err == nil {
		c.Close()
		t.Fatal("MaxConns 1 let a second client in")
	}
	stalled := stalledSocket(t, addr, nil)
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(stalled)
	deadline := time.Now().Add(10 * time.Second)
	var st ServerStats
	for {
		st = s.Stats()
		if st.Unauthenticated == 0 && st.LoginGraceExpired == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := ServerStats{Accepted: 4, RefusedConns: 1, LoginGraceExpired: 1, AuthFailures: 1, Authenticated: 1}
	got := st
	got.BytesRead, got.BytesWritten, got.PacketsRead, got.PacketsWritten = 0, 0, 0, 0
	if got != want || st.BytesRead == 0 || st.PacketsWritten == 0 {
		t.Errorf("Stats = %+v\nwant %+v and traffic", st, want)
	}
}

// acceptKey is a PublicKeyCallback that lets in key only.
func acceptKey(key ssh.PublicKey) func(ConnMetadata, ssh.PublicKey) (*Permissions, error) {
	return func(_ ConnMetadata, k ssh.PublicKey) (*Permissions, error) {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}
}

// serveAndDial serves s until the test ends and logs in to it as dialTest
// does.
func serveAndDial(t *testing.T, s *Server) (string, *Conn) {
	t.Helper()
	addr := testServer(t, s)
	c, err := dialTest(tctx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return addr, c
}
