package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
	"sshtap/internal/socks"
)

// openErr is a refused channel open as Conn.Dial returns it.
func openErr(reason sshtap.OpenFailureReason, msg string) error {
	return &sshtap.ForwardError{Op: "dial", Kind: "direct-tcpip", Addr: "h:1", Err: &sshtap.OpenChannelError{Reason: reason, Message: msg}}
}

func TestParseDynamicForward(t *testing.T) {
	for _, tc := range []struct{ spec, addr string }{
		{"1080", "localhost:1080"},
		{"127.0.0.1:1080", "127.0.0.1:1080"},
		{"*:1080", ":1080"},
		{":1080", ":1080"},
		{"[::1]:1080", "[::1]:1080"},
		{"0", "localhost:0"},
	} {
		fs, err := parseDynamicForward(tc.spec)
		if err != nil || fs.listenNet != "tcp" || fs.listenAddr != tc.addr || fs.dialNet != "" {
			t.Errorf("parseDynamicForward(%q) = %+v, %v; want tcp %s", tc.spec, fs, err, tc.addr)
		}
	}
	for _, bad := range []string{"", "x", "70000", "a:b:1080", "1080:h:80", "[::1:1080", "-1"} {
		if fs, err := parseDynamicForward(bad); err == nil {
			t.Errorf("parseDynamicForward(%q) = %+v, want an error", bad, fs)
		}
	}
}

// A SOCKS client that stalls, or sends more than any valid handshake, is
// cut off before anything is dialled: bounded time and memory.
func TestSOCKSHandshakeBounded(t *testing.T) {
	old := socksHandshakeTimeout
	socksHandshakeTimeout = 300 * time.Millisecond
	defer func() { socksHandshakeTimeout = old }()
	c := &client{s: &settings{}} // no connection: nothing may be dialled
	for _, tc := range []struct {
		name      string
		send      []byte
		reply     []byte // what the client reads before the close
		errSubstr string
	}{
		{name: "silent", errSubstr: "no complete SOCKS request within"},
		{name: "one-byte", send: []byte{5}, errSubstr: "no complete SOCKS request within"},
		{name: "half-request", send: []byte{5, 1, 0, 5, 1, 0, 3, 20, 'a'}, reply: []byte{5, 0}, errSubstr: "no complete SOCKS request within"},
		{name: "huge-userid", send: append([]byte{4, 1, 0, 80, 127, 0, 0, 1}, bytes.Repeat([]byte{'u'}, 4096)...),
			reply: []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}, errSubstr: "USERID longer than 255"},
		{name: "not-socks", send: []byte("GET / HTTP/1.1\r\n\r\n"), errSubstr: "not a SOCKS 4 or 5 client (first byte 0x47)"},
		{name: "no-acceptable-method", send: []byte{5, 2, 1, 2}, reply: []byte{5, 0xff}, errSubstr: "no method sshtap supports"},
		{name: "bad-address-type", send: []byte{5, 1, 0, 5, 1, 0, 9, 0, 0}, reply: []byte{5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}, errSubstr: "address type 0x09"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			type res struct {
				err error
				d   time.Duration
			}
			done := make(chan res, 1)
			start := time.Now()
			go func() {
				_, _, err := c.socksConnect(context.Background(), server)
				server.Close()
				done <- res{err, time.Since(start)}
			}()
			go client.Write(tc.send) // net.Pipe: unread bytes block the writer until the close
			got, _ := io.ReadAll(client)
			r := <-done
			if r.err == nil || !strings.Contains(r.err.Error(), tc.errSubstr) {
				t.Errorf("error %v, want one containing %q", r.err, tc.errSubstr)
			}
			if !bytes.Equal(got, tc.reply) {
				t.Errorf("client read %x, want %x", got, tc.reply)
			}
			if r.d > 10*time.Second {
				t.Errorf("handshake ended after %v", r.d)
			}
		})
	}
}

func TestSOCKSReplyFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want socks.Reply
	}{
		{openErr(1, "administratively prohibited"), socks.ReplyNotAllowed},
		{openErr(2, "Connection refused"), socks.ReplyConnectionRefused},
		{openErr(2, "dial tcp 127.0.0.1:9: connect: connection refused"), socks.ReplyConnectionRefused},
		{openErr(2, "Name or service not known"), socks.ReplyHostUnreachable},
		{openErr(2, "dial tcp: lookup nosuch.invalid: no such host"), socks.ReplyHostUnreachable},
		{openErr(2, "No route to host"), socks.ReplyHostUnreachable},
		{openErr(2, "Network is unreachable"), socks.ReplyNetworkUnreachable},
		{openErr(4, "no more channels"), socks.ReplyGeneralFailure},
		{errors.New("connection lost"), socks.ReplyGeneralFailure},
	} {
		if got := socksReplyFor(tc.err); got != tc.want {
			t.Errorf("socksReplyFor(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// slowOpenConn is an sshtap connection to an in-process server whose
// direct-tcpip opens wait for release, as sshd's wait for its connect().
func slowOpenConn(t *testing.T, release <-chan struct{}) *sshtap.Conn {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewSignerFromKey(priv)
	a, b := net.Pipe()
	scfg := &sshtap.ServerConfig{
		HostKeys:     []ssh.Signer{hk},
		NoClientAuth: true,
		ForwardPermission: func(_ sshtap.ConnMetadata, kind, addr string) bool {
			<-release
			return true
		},
	}
	srv := sshtap.ServerConn(b, scfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serr := make(chan error, 1)
	go func() { serr <- srv.Handshake(ctx) }()
	c, err := sshtap.NewClientConn(ctx, a, &sshtap.Config{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil || <-serr != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { c.Close(); srv.Close(); srv.Wait() })
	return c
}

// TestSOCKSSlowOpen: a channel open that outlasts the handshake timeout
// still gets its success reply to the client (the handshake deadline ends
// with the handshake).
func TestSOCKSSlowOpen(t *testing.T) {
	old := socksHandshakeTimeout
	socksHandshakeTimeout = 200 * time.Millisecond
	defer func() { socksHandshakeTimeout = old }()
	release := make(chan struct{})
	echo := echoServer(t)
	c := &client{s: &settings{}, conn: slowOpenConn(t, release)}
	cl, sv := net.Pipe()
	defer cl.Close()
	done := make(chan error, 1)
	go func() {
		out, _, err := c.socksConnect(context.Background(), sv)
		if out != nil {
			out.Close()
		}
		sv.Close()
		done <- err
	}()
	if _, err := cl.Write(socks5Connect(1, []byte{127, 0, 0, 1}, echo.Port)); err != nil {
		t.Fatal(err)
	}
	greeting := make([]byte, 2)
	if _, err := io.ReadFull(cl, greeting); err != nil {
		t.Fatal(err)
	}
	// The open completes well after the handshake deadline.
	time.AfterFunc(3*socksHandshakeTimeout, func() { close(release) })
	reply := make([]byte, 10)
	_, rerr := io.ReadFull(cl, reply)
	if err := <-done; err != nil || rerr != nil || reply[1] != 0 {
		t.Fatalf("reply %x (%v), socksConnect: %v; want a success reply", reply, rerr, err)
	}
}

// flakyListener fails its first Accept as a process out of descriptors
// does.
type flakyListener struct {
	net.Listener
	failed bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestForwardSurvivesAcceptError: running out of descriptors once does not
// end a forward (as ssh's channel_post_port_listener); closing it does.
func TestForwardSurvivesAcceptError(t *testing.T) {
	echo := echoServer(t)
	c := &client{s: &settings{quiet: true}} // the accept warning goes nowhere
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fw := &forward{flag: "-L", l: &flakyListener{Listener: ln}, bound: ln.Addr().String()}
	c.wg.Add(1)
	go c.serveForward(fw, func(net.Conn) (net.Conn, string, error) {
		out, err := net.Dial("tcp", echo.String())
		return out, echo.String(), err
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("ping"))
	if _, err := io.ReadFull(conn, make([]byte, 4)); err != nil {
		t.Errorf("connection after one failed accept: %v", err)
	}
	conn.Close()
	ln.Close()
	c.wg.Wait()
}

// TestListenLocalBothLoopbacks: a local forward without a bind address
// holds the port on 127.0.0.1 and ::1, as ssh's does, and serves both.
func TestListenLocalBothLoopbacks(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no ::1 on this machine")
	}
	c := &client{s: &settings{}}
	fs, err := parseDynamicForward("0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.listenLocal(fs.listenNet, fs.listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := portOf(l.Addr().String())
	if other, err := net.Listen("tcp", "[::1]:"+port); err == nil {
		other.Close()
		t.Fatalf("port %s is free on ::1: another user could take it", port)
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		done := make(chan error, 1)
		go func() {
			conn, err := l.Accept()
			if err == nil {
				conn.Close()
			}
			done <- err
		}()
		conn, err := net.Dial("tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		conn.Close()
		if err := <-done; err != nil {
			t.Fatalf("accept from %s: %v", host, err)
		}
	}
}
