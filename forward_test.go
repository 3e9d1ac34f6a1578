package sshtap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"sshtap/internal/wire"
)

// echoServer listens on 127.0.0.1:0 and echoes every connection until EOF.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// permLog records ForwardPermission calls.
type permLog struct {
	mu    sync.Mutex
	calls []string
	allow bool
}

func (l *permLog) check(meta ConnMetadata, kind, addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, kind+" "+addr)
	return l.allow
}

func (l *permLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func fwdContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip writes msg, half-closes and reads everything back.
func roundTrip(t testing.TB, c net.Conn, msg []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

func TestDialDirectTCPIP(t *testing.T) {
	echo := echoServer(t)
	perm := &permLog{allow: true}
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: perm.check})
	ctx := fwdContext(t)
	c, err := p.client.Dial(ctx, "tcp", echo)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != echo || c.RemoteAddr().Network() != "tcp" {
		t.Errorf("RemoteAddr %v", c.RemoteAddr())
	}
	if c.LocalAddr() == nil {
		t.Error("no LocalAddr")
	}
	msg := bytes.Repeat([]byte("sshtap direct-tcpip "), 20000) // several windows' worth of packets
	if got := roundTrip(t, c, msg); !bytes.Equal(got, msg) {
		t.Fatalf("echo returned %d bytes, want %d", len(got), len(msg))
	}
	if got := perm.got(); len(got) != 1 || got[0] != "direct-tcpip "+echo {
		t.Errorf("ForwardPermission calls %q", got)
	}
}

func TestDialDeadline(t *testing.T) {
	echo := echoServer(t)
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: (&permLog{allow: true}).check})
	c, err := p.client.Dial(fwdContext(t), "tcp", echo)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
}

func TestDialRefused(t *testing.T) {
	echo := echoServer(t)
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name   string
		perm   func(ConnMetadata, string, string) bool
		addr   string
		reason OpenFailureReason
	}{
		{"default-deny", nil, echo, OpenProhibited},
		{"denied", (&permLog{}).check, echo, OpenProhibited},
		{"connect-failed", (&permLog{allow: true}).check, closed, OpenConnectFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := handshakePair(t, nil, &ServerConfig{ForwardPermission: tc.perm})
			_, err := p.client.Dial(fwdContext(t), "tcp", tc.addr)
			var oe *OpenChannelError
			if !errors.As(err, &oe) || oe.Reason != tc.reason {
				t.Fatalf("Dial: %v, want an OpenChannelError with %v", err, tc.reason)
			}
			var fe *ForwardError
			if !errors.As(err, &fe) || fe.Kind != "direct-tcpip" || fe.Op != "dial" {
				t.Errorf("Dial error %v is not a dial ForwardError", err)
			}
		})
	}
	p := handshakePair(t, nil, nil)
	if _, err := p.client.Dial(fwdContext(t), "udp", echo); err == nil {
		t.Error("Dial udp worked")
	}
	if _, err := p.client.Dial(fwdContext(t), "tcp", "no-port"); err == nil {
		t.Error("Dial without a port worked")
	}
}

func TestListenForward(t *testing.T) {
	perm := &permLog{allow: true}
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: perm.check})
	l, err := p.client.Listen(tctx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	addr := l.Addr().(*net.TCPAddr)
	if addr.Port == 0 || !addr.IP.IsLoopback() {
		t.Fatalf("Addr %v", addr)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if c.LocalAddr().String() != addr.String() {
				t.Errorf("accepted LocalAddr %v", c.LocalAddr())
			}
			if ra, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ra.IP.IsLoopback() {
				t.Errorf("accepted RemoteAddr %v", c.RemoteAddr())
			}
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	for i := range 3 {
		nc, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("forwarded " + strconv.Itoa(i))
		if got := roundTrip(t, nc, msg); !bytes.Equal(got, msg) {
			t.Errorf("got %q", got)
		}
		nc.Close()
	}
	if got := perm.got(); len(got) != 1 || got[0] != "tcpip-forward 127.0.0.1:0" {
		t.Errorf("ForwardPermission calls %q", got)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	// cancel-tcpip-forward was answered, so the server no longer listens.
	if nc, err := net.Dial("tcp", addr.String()); err == nil {
		nc.Close()
		t.Error("the server still listens after Close")
	}
	if st := &p.server.fwd; len(st.serverFwds) != 0 {
		t.Errorf("server keeps %d forwards", len(st.serverFwds))
	}
}

// TestListenConnClose: a listener's Accept returns when the Conn ends, and
// the server stops listening.
func TestListenConnClose(t *testing.T) {
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: (&permLog{allow: true}).check})
	l, err := p.client.Listen(tctx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	p.client.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Accept returned a connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	// The server's teardown closes its listeners before Wait returns.
	p.server.Wait()
	if nc, err := net.Dial("tcp", l.Addr().String()); err == nil {
		nc.Close()
		t.Error("the server still listens after the connection ended")
	}
	l.Close()
}

func TestListenDenied(t *testing.T) {
	p := handshakePair(t, nil, nil)
	_, err := p.client.Listen(tctx(t), "tcp", "127.0.0.1:0")
	if !errors.Is(err, ErrForwardProhibited) {
		t.Fatalf("Listen: %v, want ErrForwardProhibited", err)
	}
}

// TestForwardedUnsolicited: a forwarded-tcpip open for an address we never
// asked for is refused (RFC 4254 §7.2).
func TestForwardedUnsolicited(t *testing.T) {
	p := handshakePair(t, nil, nil)
	extra := (&wire.ForwardedTCPIP{Addr: "127.0.0.1", Port: 4242, OriginAddr: "127.0.0.1", OriginPort: 5555}).Append(nil)
	_, err := p.server.OpenChannel(fwdContext(t), "forwarded-tcpip", extra)
	var oe *OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != OpenProhibited {
		t.Fatalf("OpenChannel forwarded-tcpip: %v, want OpenProhibited", err)
	}
}

// TestStreamLocal: direct-streamlocal@openssh.com and
// streamlocal-forward@openssh.com (OpenSSH PROTOCOL §2.4) in-process.
func TestStreamLocal(t *testing.T) {
	dir := t.TempDir()
	target := dir + "/target.sock"
	ln, err := net.Listen("unix", target)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	perm := &permLog{allow: true}
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: perm.check})
	c, err := p.client.Dial(fwdContext(t), "unix", target)
	if err != nil {
		t.Fatalf("Dial unix: %v", err)
	}
	if got := roundTrip(t, c, []byte("over a unix socket")); string(got) != "over a unix socket" {
		t.Errorf("got %q", got)
	}
	c.Close()

	fwd := dir + "/fwd.sock"
	l, err := p.client.Listen(tctx(t), "unix", fwd)
	if err != nil {
		t.Fatalf("Listen unix: %v", err)
	}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	nc, err := net.Dial("unix", fwd)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, nc, []byte("forwarded unix")); string(got) != "forwarded unix" {
		t.Errorf("got %q", got)
	}
	nc.Close()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if nc, err := net.Dial("unix", fwd); err == nil {
		nc.Close()
		t.Error("the server still listens after Close")
	}
	want := []string{"direct-streamlocal " + target, "streamlocal-forward " + fwd}
	if got := perm.got(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ForwardPermission calls %q, want %q", got, want)
	}
}

// TestListenAndCloseBoundedByContext: Listen waits for the server's answer
// as long as its ctx allows and no longer, and so does CloseContext; the
// listener is closed either way, and late answers leave the Conn intact.
func TestListenAndCloseBoundedByContext(t *testing.T) {
	// The server keeps the first "hold@sshtap" request unanswered: the
	// answers to the requests after it wait behind it (RFC 4254 §4:
	// replies go in request order).
	held := make(chan *Request, 1)
	p := handshakePair(t, nil, &ServerConfig{
		ForwardPermission: (&permLog{allow: true}).check,
		TransportConfig: TransportConfig{GlobalRequestHandler: func(r *Request) {
			if r.Type == "hold@sshtap" {
				held <- r
				return
			}
			r.Reply(true, nil)
		}},
	})
	hold := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, _, err := p.client.SendGlobalRequest(tctx(t), "hold@sshtap", true, nil)
			done <- err
		}()
		return done
	}

	// Listen: ctx ends before the answer. The server grants it late; the
	// cancel request that followed withdraws it.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().String()
	free.Close()
	holding := hold()
	r := <-held
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = p.client.Listen(ctx, "tcp", port)
	cancel()
	var fe *ForwardError
	if !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Listen past its ctx = %v, want a ForwardError with DeadlineExceeded", err)
	}
	r.Reply(true, nil)
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
	// Requests are handled in order: once this one is answered, the late
	// grant and its cancel were handled.
	if ok, _, err := p.client.SendGlobalRequest(tctx(t), "sync@sshtap", true, nil); err != nil || !ok {
		t.Fatalf("sync request: %v, %v", ok, err)
	}
	if c, err := net.Dial("tcp", port); err == nil {
		c.Close()
		t.Fatalf("the server still listens on %s after a Listen given up on", port)
	}

	// CloseContext: ctx ends before the answer.
	l, err := p.client.Listen(tctx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	holding = hold()
	r = <-held
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = l.CloseContext(ctx)
	cancel()
	if !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CloseContext past its ctx = %v, want a ForwardError with DeadlineExceeded", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after CloseContext = %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	r.Reply(true, nil)
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
	// The late answers were taken for what they are: the next request
	// gets its own.
	if ok, _, err := p.client.SendGlobalRequest(tctx(t), "other@sshtap", true, nil); err != nil || !ok {
		t.Fatalf("next global request: %v, %v", ok, err)
	}
}
