package sshtap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap/internal/testpeer"
)

// fwdDialSSHD starts sshd with extra config lines and connects our client
// to it with cfg (User, Auth and HostKeyCallback are filled in), subscribing
// to kinds before the handshake.
func fwdDialSSHD(t *testing.T, cfg *Config, kinds Kind, config ...string) (*Conn, *Subscription, *testpeer.SSHD) {
	t.Helper()
	testpeer.Require(t, "sshd")
	testpeer.RequireRoot(t)
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: config})
	nc, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.Addr, cfg.User = s.Addr, s.User
	cfg.Auth = []AuthMethod{PublicKeys(s.ClientKey().Signer)}
	cfg.HostKeyCallback = insecure
	c := ClientConn(nc, cfg)
	t.Cleanup(func() { c.Close() })
	var sub *Subscription
	if kinds != 0 {
		sub = c.SubscribeBuffer(ioContext(t), kinds, 256)
	}
	if err := c.Handshake(ioContext(t)); err != nil {
		t.Fatalf("handshake with sshd: %v", err)
	}
	return c, sub, s
}

// TestInteropKeepAlive: OpenSSH 9.2 has no ping@openssh.com, so our probes
// are keepalive@openssh.com global requests; sshd answers each (with
// REQUEST_FAILURE) and we see PingEvents with the round-trip time.
func TestInteropKeepAlive(t *testing.T) {
	t.Parallel()
	// Not a test of the timeout (TestKeepAliveTimeout is): misses never
	// fail the Conn, however slow a loaded machine answers a 50 ms probe.
	c, sub, _ := fwdDialSSHD(t, &Config{KeepAlive: KeepAlive{Interval: 50 * time.Millisecond, CountMax: kaNeverGiveUp}}, KindPing)
	c.startKeepAlive()
	var rtts []time.Duration
	collect(t, sub, 10*time.Second, func(ev Event) bool {
		switch e := ev.(type) {
		case *PingEvent:
			rtts = append(rtts, e.RTT)
		case *ClosedEvent:
			t.Fatalf("connection ended: %v", e.Err)
		}
		return len(rtts) >= 3
	})
	for _, r := range rtts {
		if r <= 0 || r > 5*time.Second {
			t.Errorf("RTT %v", r)
		}
	}
	t.Logf("keepalive RTTs against sshd: %v", rtts)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestInteropDialSSHD: direct-tcpip through sshd to a local echo server
// (what ssh -L does for each connection).
func TestInteropDialSSHD(t *testing.T) {
	t.Parallel()
	echo := echoServer(t)
	c, _, _ := fwdDialSSHD(t, nil, 0, "AllowTcpForwarding yes")
	for i := range 2 {
		nc, err := c.Dial(ioContext(t), "tcp", echo)
		if err != nil {
			t.Fatalf("Dial through sshd: %v", err)
		}
		msg := bytes.Repeat([]byte("via sshd "+strconv.Itoa(i)+" "), 30000)
		if got := roundTrip(t, nc, msg); !bytes.Equal(got, msg) {
			t.Errorf("echo returned %d bytes, want %d", len(got), len(msg))
		}
		nc.Close()
	}
	// A closed port: sshd answers OPEN_FAILURE connect failed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, err = c.Dial(ioContext(t), "tcp", closed)
	var oe *OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != OpenConnectFailed {
		t.Errorf("Dial to a closed port: %v, want OpenConnectFailed", err)
	}
}

// TestInteropListenSSHD: tcpip-forward with port 0 on sshd (ssh -R 0:...):
// sshd reports the port it chose, forwards connections to it and stops on
// cancel-tcpip-forward.
func TestInteropListenSSHD(t *testing.T) {
	t.Parallel()
	c, _, _ := fwdDialSSHD(t, nil, 0, "AllowTcpForwarding yes")
	l, err := c.Listen(tctx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen on sshd: %v", err)
	}
	addr := l.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			fc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(fc, fc)
				fc.Close()
			})
		}
	})
	for i := range 2 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connect to sshd's forwarded port: %v", err)
		}
		msg := []byte("remote forward " + strconv.Itoa(i))
		if got := roundTrip(t, nc, msg); !bytes.Equal(got, msg) {
			t.Errorf("got %q", got)
		}
		nc.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if nc, err := net.Dial("tcp", addr); err == nil {
		nc.Close()
		t.Error("sshd still listens after cancel-tcpip-forward")
	}
}

// TestInteropForwardDisabledDebug is peers.md's DEBUG recipe: with
// AllowTcpForwarding no, each tcpip-forward request fails and sshd sends one
// DEBUG "Server has disabled port forwarding." per request.
func TestInteropForwardDisabledDebug(t *testing.T) {
	t.Parallel()
	c, sub, _ := fwdDialSSHD(t, nil, KindDebug, "AllowTcpForwarding no")
	const n = 3
	for i := range n {
		if _, err := c.Listen(tctx(t), "tcp", "127.0.0.1:0"); !errors.Is(err, ErrForwardProhibited) {
			t.Fatalf("Listen %d: %v, want ErrForwardProhibited", i, err)
		}
	}
	const text = "Server has disabled port forwarding."
	got := 0
	collect(t, sub, 10*time.Second, func(ev Event) bool {
		if d, ok := ev.(*DebugEvent); ok && d.Message == text {
			got++
		}
		return got >= n
	})
	// Nothing more: exactly one DEBUG per request. A keepalive-style
	// round trip makes sure any extra DEBUG would have arrived.
	if _, _, err := c.SendGlobalRequest(ioContext(t), "keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
	for _, ev := range ioDrain(sub) {
		if d, ok := ev.(*DebugEvent); ok && d.Message == text {
			t.Errorf("extra DEBUG %q", d.Message)
		}
	}
}

// fwdServe runs our server on 127.0.0.1:0 for one connection and returns
// its address and a channel that yields the server Conn once authenticated.
func fwdServe(t *testing.T, cfg *ServerConfig, key *testpeer.Key) (string, chan *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostKeys = allHostKeys(t)
	cfg.PublicKeyCallback = func(meta ConnMetadata, k ssh.PublicKey) (*Permissions, error) {
		if bytes.Equal(k.Marshal(), key.PublicKey.Marshal()) {
			return &Permissions{}, nil
		}
		return nil, errors.New("unknown key")
	}
	conns := make(chan *Conn, 1)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := ServerConn(nc, cfg)
		hctx, hcancel := context.WithTimeout(ctx, ioTimeout)
		err = c.Handshake(hctx)
		hcancel()
		if err != nil {
			c.Close()
			return
		}
		conns <- c
		select {
		case <-ctx.Done():
		case <-c.closing:
		}
		c.Close()
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
	})
	return ln.Addr().String(), conns
}

func fwdConn(t *testing.T, conns chan *Conn) *Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(ioTimeout):
		t.Fatal("ssh did not log in to our server")
		return nil
	}
}

// TestInteropSSHStdioForward: ssh -W host:port against our server opens a
// direct-tcpip channel and carries its stdin to the target and the target's
// replies back (the same channel ssh -L opens per connection).
func TestInteropSSHStdioForward(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	echo := echoServer(t)
	key := testpeer.NewKey(t, testpeer.KeyType("ed25519"))
	perm := &permLog{allow: true}
	addr, _ := fwdServe(t, &ServerConfig{ForwardPermission: perm.check}, key)
	msg := strings.Repeat("through ssh -W ", 5000)
	res := testpeer.SSHClient{
		Addr:    addr,
		Keys:    []*testpeer.Key{key},
		Flags:   []string{"-W", echo},
		Stdin:   strings.NewReader(msg),
		Timeout: ioTimeout,
	}.Run(t)
	if res.TimedOut || res.ExitCode != 0 {
		t.Fatalf("ssh -W: %s", res)
	}
	if string(res.Stdout) != msg {
		t.Errorf("ssh -W stdout: %d bytes, want %d", len(res.Stdout), len(msg))
	}
	if got := perm.got(); len(got) != 1 || got[0] != "direct-tcpip "+echo {
		t.Errorf("ForwardPermission calls %q", got)
	}
}

// sshBackground runs ssh with flags in the background until our server
// closes the connection; the returned func waits for it.
func sshBackground(t *testing.T, addr string, key *testpeer.Key, flags ...string) func() *testpeer.ClientResult {
	t.Helper()
	done := make(chan *testpeer.ClientResult, 1)
	go func() {
		done <- testpeer.SSHClient{
			Addr:    addr,
			Keys:    []*testpeer.Key{key},
			Options: []string{"ExitOnForwardFailure=yes"},
			Flags:   append([]string{"-N"}, flags...),
			Timeout: ioTimeout,
		}.Run(t)
	}()
	return func() *testpeer.ClientResult { return <-done }
}

// waitDial connects to addr, retrying until it listens or the deadline.
func waitDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			return nc
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func freeLoopbackPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestInteropSSHLocalForward: ssh -L against our server; connections to
// ssh's local port reach our echo server through direct-tcpip.
func TestInteropSSHLocalForward(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	echo := echoServer(t)
	key := testpeer.NewKey(t, testpeer.KeyType("ed25519"))
	addr, conns := fwdServe(t, &ServerConfig{ForwardPermission: (&permLog{allow: true}).check}, key)
	port := freeLoopbackPort(t)
	wait := sshBackground(t, addr, key, "-L", "127.0.0.1:"+strconv.Itoa(port)+":"+echo)
	c := fwdConn(t, conns)
	nc := waitDial(t, "127.0.0.1:"+strconv.Itoa(port))
	msg := bytes.Repeat([]byte("ssh -L "), 10000)
	if got := roundTrip(t, nc, msg); !bytes.Equal(got, msg) {
		t.Errorf("echo through ssh -L: %d bytes, want %d", len(got), len(msg))
	}
	nc.Close()
	c.Close()
	if res := wait(); res.TimedOut {
		t.Fatalf("ssh -L: %s", res)
	}
}

// TestInteropSSHRemoteForward: ssh -R 0:... against our server; we listen
// for it, and connections to our port reach ssh's target through
// forwarded-tcpip channels.
func TestInteropSSHRemoteForward(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	echo := echoServer(t)
	key := testpeer.NewKey(t, testpeer.KeyType("ed25519"))
	perm := &permLog{allow: true}
	addr, conns := fwdServe(t, &ServerConfig{ForwardPermission: perm.check}, key)
	wait := sshBackground(t, addr, key, "-R", "127.0.0.1:0:"+echo)
	c := fwdConn(t, conns)
	var fwd string
	deadline := time.Now().Add(ioTimeout)
	for fwd == "" {
		st := &c.fwd
		st.mu.Lock()
		if len(st.serverFwds) > 0 {
			fwd = st.serverFwds[0].ln.Addr().String()
		}
		st.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("ssh -R sent no tcpip-forward")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	for i := range 2 {
		nc, err := net.Dial("tcp", fwd)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("ssh -R " + strconv.Itoa(i))
		if got := roundTrip(t, nc, msg); !bytes.Equal(got, msg) {
			t.Errorf("got %q", got)
		}
		nc.Close()
	}
	if got := perm.got(); len(got) != 1 || got[0] != "tcpip-forward 127.0.0.1:0" {
		t.Errorf("ForwardPermission calls %q", got)
	}
	c.Close()
	if res := wait(); res.TimedOut {
		t.Fatalf("ssh -R: %s", res)
	}
}

// TestInteropX11SSHD is peers.md's X11 recipe: an x11-req, then a command
// that connects to $DISPLAY on the server; sshd opens an x11 channel, our
// X11OpenEvent's Accept carries the 12-byte setup header; with Reject, and
// with nobody subscribed, the command's connection is closed.
func TestInteropX11SSHD(t *testing.T) {
	t.Parallel()
	c, sub, _ := fwdDialSSHD(t, &Config{X11Timeout: 20 * time.Second}, KindX11Open,
		"X11Forwarding yes", "X11UseLocalhost yes", "X11DisplayOffset 10", "XAuthLocation /usr/bin/xauth")
	// The command connects to the display, sends the setup header and
	// reports what it reads back (EOF at once when the open was refused).
	const cmd = `d=${DISPLAY#*:}; d=${d%%.*}; exec 3<>/dev/tcp/127.0.0.1/$((6000+d)) || exit 7; ` +
		`printf 'l\0\013\0\0\0\0\0\0\0\0\0' >&3; head -c 5 <&3; echo " done"`
	setup := "l\x00\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	run := func(t *testing.T) (chan string, chan error) {
		s, err := c.NewSession(ioContext(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.RequestX11(false, "MIT-MAGIC-COOKIE-1", "00112233445566778899aabbccddeeff", 0); err != nil {
			t.Fatalf("RequestX11: %v", err)
		}
		out, errc := make(chan string, 1), make(chan error, 1)
		go func() {
			b, err := s.Output(cmd)
			out <- string(b)
			errc <- err
		}()
		return out, errc
	}
	t.Run("accept", func(t *testing.T) {
		out, errc := run(t)
		ev := nextX11(t, sub)
		if ev.OriginAddr != "127.0.0.1" || ev.OriginPort == 0 {
			t.Errorf("origin %s:%d", ev.OriginAddr, ev.OriginPort)
		}
		ch, err := ev.Accept()
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		defer ch.Close()
		buf := make([]byte, len(setup))
		ch.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := io.ReadFull(ch, buf); err != nil || string(buf) != setup {
			t.Fatalf("x11 channel carried %q, %v", buf, err)
		}
		if _, err := ch.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		ch.CloseWrite()
		if o := <-out; o != "hello done\n" {
			t.Errorf("command output %q", o)
		}
		if err := <-errc; err != nil {
			t.Errorf("command: %v", err)
		}
	})
	t.Run("reject", func(t *testing.T) {
		out, errc := run(t)
		ev := nextX11(t, sub)
		if err := ev.Reject(OpenConnectFailed, "no display here"); err != nil {
			t.Fatalf("Reject: %v", err)
		}
		if o := <-out; o != " done\n" {
			t.Errorf("command output %q", o)
		}
		<-errc
	})
	// Nobody wants KindX11Open any more: the open is refused at once.
	t.Run("unsubscribed", func(t *testing.T) {
		sub.Close()
		out, errc := run(t)
		if o := <-out; o != " done\n" {
			t.Errorf("command output %q", o)
		}
		<-errc
	})
}

// TestInteropAgentSSHD: a session requests agent forwarding on sshd and
// runs ssh-add -l there; sshd opens auth-agent@openssh.com channels to us,
// Config.AgentHandler serves them from an in-memory keyring, and ssh-add
// lists our key.
func TestInteropAgentSSHD(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh-add")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "sshtap-agent-test"}); err != nil {
		t.Fatal(err)
	}
	var served atomic.Int32
	cfg := &Config{AgentHandler: func(ch *Channel) {
		defer ch.Close()
		served.Add(1)
		agent.ServeAgent(keyring, ch)
	}}
	c, _, _ := fwdDialSSHD(t, cfg, 0, "AllowAgentForwarding yes")
	s, err := c.NewSession(ioContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestAgentForwarding(); err != nil {
		t.Fatalf("RequestAgentForwarding: %v", err)
	}
	out, err := s.CombinedOutput("ssh-add -l")
	if err != nil {
		t.Fatalf("ssh-add -l: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "sshtap-agent-test") || !strings.Contains(string(out), "ED25519") {
		t.Errorf("ssh-add -l printed %q", out)
	}
	if served.Load() == 0 {
		t.Error("AgentHandler was not called")
	}
}
