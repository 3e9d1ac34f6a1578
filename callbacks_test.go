package sshtap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// closeFromCallback records a Close made inside a user callback: it must
// return promptly, whatever goroutine the callback runs on.
type closeFromCallback struct {
	conn   *Conn
	called chan struct{}
	done   chan error
}

func newCloseFromCallback() *closeFromCallback {
	return &closeFromCallback{called: make(chan struct{}, 1), done: make(chan error, 1)}
}

// close is what the callback does: Close its own Conn (set once known).
func (cb *closeFromCallback) close() {
	select {
	case cb.called <- struct{}{}:
	default:
		return // only the first call closes
	}
	cb.done <- cb.conn.Close()
}

// check waits for the callback's Close to return.
func (cb *closeFromCallback) check(t *testing.T) {
	t.Helper()
	select {
	case <-cb.called:
	case <-time.After(20 * time.Second):
		t.Fatal("the callback was never called")
	}
	select {
	case err := <-cb.done:
		if err != nil {
			t.Fatalf("Close from the callback: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close from inside the callback did not return (deadlock)")
	}
	if cb.conn.Err() == nil {
		t.Fatal("the Conn is still alive after Close")
	}
}

// handshakeIgnoringErrors runs both handshakes over a fresh net.Pipe and
// returns both Conns, whatever the handshakes returned.
func handshakeIgnoringErrors(t *testing.T, ccfg *Config, scfg *ServerConfig, wire func(p pair)) pair {
	t.Helper()
	testKeys(t)
	a, b := net.Pipe()
	if ccfg.HostKeyCallback == nil {
		ccfg.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	}
	if len(scfg.HostKeys) == 0 {
		scfg.HostKeys = []ssh.Signer{testEd25519}
	}
	p := pair{client: ClientConn(a, ccfg), server: ServerConn(b, scfg)}
	wire(p)
	t.Cleanup(func() {
		p.client.Close()
		p.server.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go p.server.Handshake(ctx)
	p.client.Handshake(ctx)
	return p
}

func TestCloseFromHostKeyCallback(t *testing.T) {
	cb := newCloseFromCallback()
	ccfg := &Config{NoAuth: true, HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error {
		cb.close()
		return nil
	}}
	handshakeIgnoringErrors(t, ccfg, &ServerConfig{NoClientAuth: true}, func(p pair) { cb.conn = p.client })
	cb.check(t)
}

func TestCloseFromBannerCallback(t *testing.T) {
	cb := newCloseFromCallback()
	ccfg := &Config{User: "u", Auth: []AuthMethod{Password("pw")}, BannerCallback: func(string) { cb.close() }}
	scfg := &ServerConfig{Banner: "hello\r\n", PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return nil, nil }}
	handshakeIgnoringErrors(t, ccfg, scfg, func(p pair) { cb.conn = p.client })
	cb.check(t)
}

func TestCloseFromPasswordCallback(t *testing.T) {
	cb := newCloseFromCallback()
	ccfg := &Config{User: "u", Auth: []AuthMethod{Password("pw")}}
	scfg := &ServerConfig{PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) {
		cb.close()
		return nil, errors.New("closed")
	}}
	handshakeIgnoringErrors(t, ccfg, scfg, func(p pair) { cb.conn = p.server })
	cb.check(t)
}

func TestCloseFromPublicKeyCallback(t *testing.T) {
	cb := newCloseFromCallback()
	testKeys(t)
	ccfg := &Config{User: "u", Auth: []AuthMethod{PublicKeys(testECDSA256)}}
	scfg := &ServerConfig{PublicKeyCallback: func(ConnMetadata, ssh.PublicKey) (*Permissions, error) {
		cb.close()
		return nil, errors.New("closed")
	}}
	handshakeIgnoringErrors(t, ccfg, scfg, func(p pair) { cb.conn = p.server })
	cb.check(t)
}

func TestCloseFromKeyboardInteractiveCallback(t *testing.T) {
	cb := newCloseFromCallback()
	ccfg := &Config{User: "u", Auth: []AuthMethod{KeyboardInteractive(func(_, _ string, q []string, _ []bool) ([]string, error) {
		return make([]string, len(q)), nil
	})}}
	scfg := &ServerConfig{KeyboardInteractiveCallback: func(ConnMetadata, KeyboardInteractiveChallenge) (*Permissions, error) {
		cb.close()
		return nil, errors.New("closed")
	}}
	handshakeIgnoringErrors(t, ccfg, scfg, func(p pair) { cb.conn = p.server })
	cb.check(t)
}

func TestCloseFromMACPolicy(t *testing.T) {
	cb := newCloseFromCallback()
	p, f := macPair(t, "aes128-gcm@openssh.com", "", func(MACMismatch) MACVerdict {
		cb.close()
		return MACDiscard
	})
	cb.conn = p.client
	f.arm(20, 0x01)
	ctx := tctx(t)
	p.server.SendIgnore(ctx, bytes.Repeat([]byte("A"), 64))
	cb.check(t)
}

func TestCloseFromGlobalRequestHandler(t *testing.T) {
	cb := newCloseFromCallback()
	scfg := &ServerConfig{}
	scfg.GlobalRequestHandler = func(r *Request) {
		cb.close()
		r.Reply(false, nil)
	}
	p := handshakePair(t, nil, scfg)
	cb.conn = p.server
	go p.client.SendGlobalRequest(tctx(t), "close-me@example.com", true, nil)
	cb.check(t)
}

func TestCloseFromChannelHandler(t *testing.T) {
	cb := newCloseFromCallback()
	scfg := &ServerConfig{}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"x": func(nc *NewChannel) {
		cb.close()
		nc.Reject(OpenProhibited, "closed")
	}}
	p := handshakePair(t, nil, scfg)
	cb.conn = p.server
	go p.client.OpenChannel(tctx(t), "x", nil)
	cb.check(t)
}

func TestCloseFromChannelRequestHandler(t *testing.T) {
	cb := newCloseFromCallback()
	scfg := &ServerConfig{}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"x": func(nc *NewChannel) {
		ch, err := nc.Accept()
		if err != nil {
			return
		}
		ch.HandleRequests(func(r *Request) {
			cb.close()
			r.Reply(false, nil)
		})
	}}
	p := handshakePair(t, nil, scfg)
	cb.conn = p.server
	ch, err := p.client.OpenChannel(tctx(t), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ch.SendRequest(tctx(t), "close-me", true, nil)
	cb.check(t)
}

func TestCloseFromAllowSessionRequest(t *testing.T) {
	cb := newCloseFromCallback()
	scfg := &ServerConfig{
		SessionHandler: func(s *ServerSession) { s.Exit(0) },
		AllowSessionRequest: func(ConnMetadata, string, string) bool {
			cb.close()
			return false
		},
	}
	p := handshakePair(t, nil, scfg)
	cb.conn = p.server
	go func() {
		s, err := p.client.NewSession(tctx(t))
		if err == nil {
			s.Run("true")
		}
	}()
	cb.check(t)
}

// TestBlockedGlobalHandlerDoesNotStallData: while a global request
// handler blocks, a 64 MiB transfer on a channel completes, and the
// request is answered once the handler returns.
func TestBlockedGlobalHandlerDoesNotStallData(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	got := make(chan *Channel, 1)
	scfg := &ServerConfig{}
	scfg.GlobalRequestHandler = func(r *Request) {
		close(entered)
		<-release
		r.Reply(true, nil)
	}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"push": acceptInto(got)}
	p := handshakePair(t, nil, scfg)
	ctx := tctx(t)
	reply := make(chan error, 1)
	go func() {
		ok, _, err := p.client.SendGlobalRequest(ctx, "slow@example.com", true, nil)
		if err == nil && !ok {
			err = errors.New("refused")
		}
		reply <- err
	}()
	<-entered
	cch, sch := openPair(t, p, got, "push")
	sum := make(chan [32]byte, 1)
	go func() {
		s, _, _ := sinkHash(sch)
		sum <- s
	}()
	want, err := streamSource(cch, pushVolume, 7)
	if err != nil {
		t.Fatal(err)
	}
	cch.CloseWrite()
	if got := <-sum; got != want {
		t.Fatal("data corrupted")
	}
	select {
	case err := <-reply:
		t.Fatalf("the request was answered while its handler blocked: %v", err)
	default:
	}
	close(release)
	if err := <-reply; err != nil {
		t.Fatal(err)
	}
}

// TestRequestHandlerServesItsChannel: a request handler that serves the
// channel until it ends (as an SFTP subsystem does) sees the peer's CLOSE
// at once, and the channel is freed on both sides.
func TestRequestHandlerServesItsChannel(t *testing.T) {
	done := make(chan error, 1)
	scfg := &ServerConfig{}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"x": func(nc *NewChannel) {
		ch, err := nc.Accept()
		if err != nil {
			return
		}
		ch.HandleRequests(func(r *Request) {
			r.Reply(true, nil)
			_, err := io.Copy(io.Discard, ch) // serve until the channel ends
			done <- err
		})
	}}
	p := handshakePair(t, nil, scfg)
	ctx := tctx(t)
	cch, err := p.client.OpenChannel(ctx, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cch.SendRequest(ctx, "subsystem", true, nil); !ok || err != nil {
		t.Fatal(ok, err)
	}
	cch.Close() // CLOSE without EOF
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the handler's read ended with %v, want EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's Read is still blocked after the peer's CLOSE")
	}
	for _, c := range []*Conn{p.client, p.server} {
		deadline := time.Now().Add(10 * time.Second)
		for c.mux.get(cch.LocalID()) != nil && c == p.client || c == p.server && len(channelsOf(c)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("channel not freed (client side %v)", c == p.client)
			}
			runtime.Gosched()
		}
	}
}

// channelsOf returns the open channels of c.
func channelsOf(c *Conn) []*Channel {
	c.mux.mu.Lock()
	defer c.mux.mu.Unlock()
	var out []*Channel
	for _, ch := range c.mux.chans {
		out = append(out, ch)
	}
	return out
}
