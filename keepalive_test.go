package sshtap

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// kaPair is an in-process pair whose client runs keepalives.
func kaPair(t *testing.T, ka KeepAlive, crw, srw net.Conn) pair {
	t.Helper()
	p := handshakeOver(t, crw, srw, &Config{KeepAlive: ka}, nil)
	p.client.startKeepAlive() // idempotent: the handshake may have started it
	return p
}

// kaNeverGiveUp is a KeepAlive.CountMax for tests of the probes rather
// than of the timeout: on a loaded machine a few probes in a row may go
// unanswered within their short interval, which must not end the Conn.
const kaNeverGiveUp = 1 << 20

func kaContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitPings(t *testing.T, sub *Subscription, n int) {
	t.Helper()
	got := 0
	collect(t, sub, 10*time.Second, func(ev Event) bool {
		if pe, ok := ev.(*PingEvent); ok {
			if pe.RTT <= 0 {
				t.Errorf("PingEvent RTT %v", pe.RTT)
			}
			got++
		}
		if _, ok := ev.(*ClosedEvent); ok {
			t.Fatalf("subscription closed after %d pings: %v", got, ev)
		}
		return got >= n
	})
}

// TestKeepAlivePing: an sshtap server announces ping@openssh.com, so the
// probes are PINGs; every PONG is a PingEvent.
func TestKeepAlivePing(t *testing.T) {
	a, b := net.Pipe()
	p := kaPair(t, KeepAlive{Interval: 50 * time.Millisecond, CountMax: kaNeverGiveUp}, a, b)
	if !p.client.peerHasPing() {
		t.Fatal("the sshtap server did not announce ping@openssh.com")
	}
	sub := p.client.Subscribe(kaContext(t), KindPing)
	defer sub.Close()
	waitPings(t, sub, 3)
	if err := p.client.Err(); err != nil {
		t.Fatalf("client failed: %v", err)
	}
}

// TestKeepAliveGlobalRequest: without ping@openssh.com the probe is a
// keepalive@openssh.com global request; the server's REQUEST_FAILURE
// counts as an answer.
func TestKeepAliveGlobalRequest(t *testing.T) {
	a, b := net.Pipe()
	p := handshakeOver(t, a, b, &Config{KeepAlive: KeepAlive{Interval: 50 * time.Millisecond, CountMax: kaNeverGiveUp}}, nil)
	p.client.mu.Lock()
	p.client.peerPing = false // as with OpenSSH before 9.5
	p.client.mu.Unlock()
	sub := p.client.Subscribe(kaContext(t), KindPing)
	defer sub.Close()
	p.client.startKeepAlive()
	waitPings(t, sub, 3)
	if err := p.client.Err(); err != nil {
		t.Fatalf("client failed: %v", err)
	}
}

// stallConn stops delivering what the peer sends once stall is set (the
// bytes are read and thrown away, so the peer never blocks): a peer that
// went silent.
type stallConn struct {
	net.Conn
	stall atomic.Bool
}

func (s *stallConn) Read(p []byte) (int, error) {
	for {
		n, err := s.Conn.Read(p)
		if err != nil || !s.stall.Load() {
			return n, err
		}
	}
}

// TestKeepAliveTimeout: once the server's bytes stop arriving, CountMax
// unanswered probes fail the Conn with a *KeepAliveError.
func TestKeepAliveTimeout(t *testing.T) {
	for _, ping := range []bool{true, false} {
		name := "global-request"
		if ping {
			name = "ping"
		}
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			sc := &stallConn{Conn: a}
			const interval, countMax = 50 * time.Millisecond, 3
			p := handshakeOver(t, sc, b, &Config{KeepAlive: KeepAlive{Interval: interval, CountMax: countMax}}, nil)
			p.client.mu.Lock()
			p.client.peerPing = ping
			p.client.mu.Unlock()
			sub := p.client.Subscribe(kaContext(t), KindPing)
			defer sub.Close()
			p.client.startKeepAlive()
			waitPings(t, sub, 1)
			start := time.Now()
			sc.stall.Store(true)
			done := make(chan error, 1)
			go func() { done <- p.client.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the client did not give up on a silent server")
			}
			elapsed := time.Since(start)
			var ke *KeepAliveError
			if !errors.As(err, &ke) {
				t.Fatalf("client error %v (%T), want *KeepAliveError", err, err)
			}
			if ke.Missed != countMax || ke.Interval != interval {
				t.Errorf("KeepAliveError %+v", ke)
			}
			// At most one probe was in flight when the stall began; then
			// countMax probes of one interval each go unanswered.
			if elapsed < (countMax-1)*interval {
				t.Errorf("gave up after %v, before %d intervals", elapsed, countMax-1)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("KeepAliveError is not a timeout net.Error")
			}
			if p.server.Wait() == nil {
				t.Error("server still up")
			}
		})
	}
}

// TestKeepAliveDisabled: the zero KeepAlive sends nothing.
func TestKeepAliveDisabled(t *testing.T) {
	p := handshakePair(t, nil, nil)
	p.client.startKeepAlive()
	p.client.mu.Lock()
	started := p.client.keepAliveStarted
	p.client.mu.Unlock()
	if started {
		t.Error("keepalive started without an interval")
	}
}
