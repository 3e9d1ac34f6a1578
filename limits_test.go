package sshtap

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sshtap/internal/wire"
	"sshtap/kex"
)

// peerChannels returns the peer's channels a Conn counts against
// MaxChannels and MaxSessions.
func peerChannels(c *Conn) (chans, sessions int) {
	c.mux.mu.Lock()
	defer c.mux.mu.Unlock()
	return c.mux.peerChans, c.mux.peerSessions
}

// waitPeerChannels polls until c counts want of the peer's channels.
func waitPeerChannels(t *testing.T, c *Conn, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := peerChannels(c)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server counts %d of the client's channels, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantShortage(t *testing.T, err error, msg string) {
	t.Helper()
	var oe *OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != OpenResourceShortage || !strings.Contains(oe.Message, msg) {
		t.Fatalf("open: %v, want OpenResourceShortage %q", err, msg)
	}
}

// MaxChannels bounds the peer's open channels; refused and closed channels
// give their place back.
func TestMaxChannels(t *testing.T) {
	p := chanPair(t, map[string]func(*NewChannel){
		"echo": echoHandler(t),
		"no":   func(nc *NewChannel) { nc.Reject(OpenProhibited, "no") },
		"gone": func(*NewChannel) {},
	}, func(_ *Config, s *ServerConfig) { s.MaxChannels = 5 })
	ctx := tctx(t)
	for range 20 {
		if _, err := p.client.OpenChannel(ctx, "no", nil); err == nil {
			t.Fatal("rejected open succeeded")
		}
		if _, err := p.client.OpenChannel(ctx, "gone", nil); err == nil {
			t.Fatal("unhandled open succeeded")
		}
	}
	var chans []*Channel
	for range 5 {
		ch, err := p.client.OpenChannel(ctx, "echo", nil)
		if err != nil {
			t.Fatalf("open %d of 5: %v", len(chans)+1, err)
		}
		chans = append(chans, ch)
	}
	_, err := p.client.OpenChannel(ctx, "echo", nil)
	wantShortage(t, err, "too many channels (at most 5)")
	chans[0].Close()
	waitPeerChannels(t, p.server, 4)
	ch, err := p.client.OpenChannel(ctx, "echo", nil)
	if err != nil {
		t.Fatalf("open after a close: %v", err)
	}
	ch.Close()
}

// MaxSessions (default 10, OpenSSH's) bounds session channels; other
// channel types still open.
func TestMaxSessions(t *testing.T) {
	scfg := &ServerConfig{SessionHandler: func(s *ServerSession) { <-s.Context().Done() }}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"echo": echoHandler(t)}
	p := handshakePair(t, nil, scfg)
	ctx := tctx(t)
	var sessions []*Session
	for range DefaultMaxSessions {
		s, err := p.client.NewSession(ctx)
		if err != nil {
			t.Fatalf("session %d: %v", len(sessions)+1, err)
		}
		sessions = append(sessions, s)
	}
	_, err := p.client.NewSession(ctx)
	wantShortage(t, err, "too many sessions (at most 10)")
	ch, err := p.client.OpenChannel(ctx, "echo", nil)
	if err != nil {
		t.Fatalf("echo channel beside 10 sessions: %v", err)
	}
	ch.Close()
	sessions[3].Close()
	waitPeerChannels(t, p.server, DefaultMaxSessions-1)
	s, err := p.client.NewSession(ctx)
	if err != nil {
		t.Fatalf("session after a close: %v", err)
	}
	s.Close()
	for _, s := range sessions {
		s.Close()
	}
}

// stallRW is a stream whose reads block, once stall is called, until it
// is closed: a peer that stops reading.
type stallRW struct {
	net.Conn
	stalled atomic.Bool
	closed  chan struct{}
	once    sync.Once
}

func newStallRW(c net.Conn) *stallRW { return &stallRW{Conn: c, closed: make(chan struct{})} }

func (s *stallRW) stall() { s.stalled.Store(true) }

func (s *stallRW) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	if s.stalled.Load() {
		// What a read in progress got when stall was called is never
		// seen either.
		<-s.closed
		return 0, net.ErrClosed
	}
	return n, err
}

func (s *stallRW) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.Conn.Close()
}

// A peer that sends requests and never reads the replies cannot make the
// Conn queue them without bound: past maxQueuedBytes it is disconnected.
func TestQueueBoundedPeerNotReading(t *testing.T) {
	a, b := net.Pipe()
	crw := newStallRW(a)
	p := handshakeOver(t, crw, b, nil, nil)
	crw.stall()
	// Each REQUEST_FAILURE costs the server 1 byte of payload plus
	// queueOverhead.
	n := 2 * maxQueuedBytes / queueOverhead
	req := (&wire.GlobalRequest{Name: "flood@test", WantReply: true}).Marshal(nil)
	ctx := tctx(t)
	for range n {
		if err := p.client.writePacket(ctx, req); err != nil {
			break
		}
	}
	err := waitEnd(t, p.server, 20*time.Second)
	var pv *ProtocolViolation
	if !errors.As(err, &pv) || !strings.Contains(pv.Msg, "does not read our replies") {
		t.Fatalf("server ended with %v, want the queue bound", err)
	}
}

// Global requests answered more slowly than they arrive: the handler's
// queue is bounded (later ones are refused) and so are the places held in
// the reply order; past maxUnansweredRequests the peer is disconnected.
func TestUnansweredGlobalRequestsBounded(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	scfg := &ServerConfig{}
	scfg.GlobalRequestHandler = func(r *Request) {
		<-release
		r.Reply(true, nil)
	}
	p := handshakePair(t, nil, scfg)
	req := (&wire.GlobalRequest{Name: "slow@test", WantReply: true, Data: make([]byte, 1000)}).Marshal(nil)
	ctx := tctx(t)
	for range 2 * maxUnansweredRequests {
		if err := p.client.writePacket(ctx, req); err != nil {
			break
		}
	}
	err := waitEnd(t, p.server, 20*time.Second)
	var pv *ProtocolViolation
	if !errors.As(err, &pv) || !strings.Contains(pv.Msg, "global requests waiting for their replies") {
		t.Fatalf("server ended with %v, want the reply-order bound", err)
	}
}

// waitEnd waits up to d for c to end and returns its error.
func waitEnd(t *testing.T, c *Conn, d time.Duration) error {
	t.Helper()
	select {
	case <-c.closing:
		return c.Wait()
	case <-time.After(d):
		t.Fatalf("the Conn did not end within %v", d)
		return nil
	}
}

// A server answers at most PeerKexLimit key exchanges a minute that follow
// little traffic, then disconnects; exchanges after real traffic (as
// OpenSSH's RekeyLimit starts them) are not counted. The default applies to
// servers only.
func TestPeerKexLimitDefaults(t *testing.T) {
	var tc TransportConfig
	if tc.peerKexLimit(false) != DefaultPeerKexLimit || tc.peerKexLimit(true) != 0 {
		t.Errorf("default PeerKexLimit: server %d, client %d", tc.peerKexLimit(false), tc.peerKexLimit(true))
	}
	if tc.maxChannels(false) != DefaultMaxChannels || tc.maxChannels(true) < 1<<30 {
		t.Errorf("default MaxChannels: server %d, client %d", tc.maxChannels(false), tc.maxChannels(true))
	}
}

func TestPeerKexLimit(t *testing.T) {
	t.Run("after-traffic", func(t *testing.T) {
		p := handshakePair(t, &Config{NoAuth: true}, &ServerConfig{TransportConfig: TransportConfig{PeerKexLimit: 2}})
		ctx := tctx(t)
		pad := make([]byte, 64<<10)
		for i := range 10 {
			for range freeKexTraffic / len(pad) {
				if err := p.client.SendIgnore(ctx, pad); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.client.Rekey(ctx); err != nil {
				t.Fatalf("rekey %d after traffic: %v", i+1, err)
			}
		}
	})
	t.Run("finite-field", func(t *testing.T) {
		// With a finite-field group, traffic does not buy exchanges.
		tc := TransportConfig{KexAlgorithms: []string{kex.DHGroup14SHA256}, PeerKexLimit: 2}
		p := handshakePair(t, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
		ctx := tctx(t)
		pad := make([]byte, 64<<10)
		n := 0
		for ; n < 5; n++ {
			for range freeKexTraffic / len(pad) {
				if err := p.client.SendIgnore(ctx, pad); err != nil {
					t.Fatal(err)
				}
			}
			if p.client.Rekey(ctx) != nil {
				break
			}
		}
		if n != 2 {
			t.Fatalf("%d key exchanges with diffie-hellman-group14-sha256 answered, want 2", n)
		}
	})
	t.Run("idle", func(t *testing.T) {
		// A limit of 3 refills one every 20 s: the test is not a race
		// against the refill.
		p := handshakePair(t, &Config{NoAuth: true}, &ServerConfig{TransportConfig: TransportConfig{PeerKexLimit: 3}})
		ctx := tctx(t)
		for i := range 3 {
			if err := p.client.Rekey(ctx); err != nil {
				t.Fatalf("rekey %d of 3: %v", i+1, err)
			}
		}
		if err := p.client.Rekey(ctx); err == nil {
			t.Fatal("rekey past the limit succeeded")
		}
		err := waitEnd(t, p.server, 10*time.Second)
		var pv *ProtocolViolation
		if !errors.As(err, &pv) || !strings.Contains(pv.Msg, "too many key exchanges") {
			t.Fatalf("server ended with %v, want the key exchange limit", err)
		}
		var de *DisconnectError
		if err := p.client.Wait(); !errors.As(err, &de) || !de.Remote || de.Reason != DisconnectProtocolError {
			t.Fatalf("client ended with %v, want the server's PROTOCOL_ERROR", err)
		}
	})
}

// Stats counts both ends alike: after a Ping round trip, what the client
// wrote is what the server read; failed authentication requests, the last
// ping's round trip and the open channels are there too.
func TestConnStats(t *testing.T) {
	testKeys(t)
	scfg := &ServerConfig{
		PasswordCallback: func(m ConnMetadata, pw []byte) (*Permissions, error) {
			if string(pw) == "right" {
				return nil, nil
			}
			return nil, errors.New("wrong")
		},
	}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"echo": echoHandler(t)}
	ccfg := &Config{User: "u", Auth: []AuthMethod{Password("wrong"), Password("again wrong"), Password("right")}}
	p := handshakePair(t, ccfg, scfg)
	ctx := tctx(t)
	ch, err := p.client.OpenChannel(ctx, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	rtt, err := p.client.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, ss := p.client.Stats(), p.server.Stats()
	if cs.BytesWritten != ss.BytesRead || cs.PacketsWritten != ss.PacketsRead || cs.PacketsWritten == 0 {
		t.Errorf("client wrote %d bytes in %d packets, server read %d in %d", cs.BytesWritten, cs.PacketsWritten, ss.BytesRead, ss.PacketsRead)
	}
	if cs.AuthFailures != 2 || ss.AuthFailures != 2 {
		t.Errorf("auth failures: client %d, server %d, want 2", cs.AuthFailures, ss.AuthFailures)
	}
	if cs.LastPingRTT != rtt || ss.LastPingRTT != 0 {
		t.Errorf("last ping RTT: client %v (Ping said %v), server %v", cs.LastPingRTT, rtt, ss.LastPingRTT)
	}
	if cs.OpenChannels != 1 || ss.OpenChannels != 1 {
		t.Errorf("open channels: client %d, server %d", cs.OpenChannels, ss.OpenChannels)
	}
}
