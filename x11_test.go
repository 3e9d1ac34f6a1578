package sshtap

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"sshtap/internal/wire"
)

// openX11 opens an "x11" channel from the server to the client in the
// background (as sshd does when an X client connects to its display).
func openX11(ctx context.Context, s *Conn, addr string, port uint32) chan x11Result {
	res := make(chan x11Result, 1)
	go func() {
		extra := (&wire.X11Open{OriginAddr: addr, OriginPort: port}).Append(nil)
		ch, err := s.OpenChannel(ctx, "x11", extra)
		res <- x11Result{ch, err}
	}()
	return res
}

type x11Result struct {
	ch  *Channel
	err error
}

func waitX11Open(t *testing.T, res chan x11Result) x11Result {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("the x11 open was not answered")
		return x11Result{}
	}
}

func wantRejected(t *testing.T, r x11Result, reason OpenFailureReason) {
	t.Helper()
	var oe *OpenChannelError
	if !errors.As(r.err, &oe) || oe.Reason != reason {
		t.Fatalf("x11 open: %v, want rejected with %v", r.err, reason)
	}
}

func nextX11(t *testing.T, sub *Subscription) *X11OpenEvent {
	t.Helper()
	evs := collect(t, sub, 15*time.Second, func(ev Event) bool {
		_, ok := ev.(*X11OpenEvent)
		return ok
	})
	ev := evs[len(evs)-1].(*X11OpenEvent)
	if ev.Kind() != KindX11Open || ev.When().IsZero() {
		t.Errorf("event kind %v time %v", ev.Kind(), ev.When())
	}
	return ev
}

func x11Pair(t *testing.T, timeout time.Duration) pair {
	p := handshakePair(t, &Config{X11Timeout: timeout}, nil)
	p.client.noteX11Requested(X11Request{AuthProtocol: "MIT-MAGIC-COOKIE-1", AuthCookie: "00112233445566778899aabbccddeeff"})
	return p
}

func TestX11Accept(t *testing.T) {
	p := x11Pair(t, 0)
	ctx := fwdContext(t)
	sub := p.client.Subscribe(ctx, KindX11Open)
	defer sub.Close()
	res := openX11(ctx, p.server, "127.0.0.1", 40123)
	ev := nextX11(t, sub)
	if ev.OriginAddr != "127.0.0.1" || ev.OriginPort != 40123 {
		t.Errorf("origin %s:%d", ev.OriginAddr, ev.OriginPort)
	}
	ch, err := ev.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer ch.Close()
	r := waitX11Open(t, res)
	if r.err != nil {
		t.Fatalf("server open: %v", r.err)
	}
	defer r.ch.Close()
	// The X11 connection setup a client sends first.
	setup := []byte("l\x00\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	go func() {
		r.ch.Write(setup)
		r.ch.CloseWrite()
	}()
	got, err := io.ReadAll(ch)
	if err != nil || string(got) != string(setup) {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := ev.Accept(); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("second Accept: %v", err)
	}
	if err := ev.Reject(OpenProhibited, "late"); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("Reject after Accept: %v", err)
	}
}

func TestX11Reject(t *testing.T) {
	p := x11Pair(t, 0)
	ctx := fwdContext(t)
	sub := p.client.Subscribe(ctx, KindX11Open)
	defer sub.Close()
	res := openX11(ctx, p.server, "127.0.0.1", 1)
	ev := nextX11(t, sub)
	if err := ev.Reject(OpenConnectFailed, "no X server"); err != nil {
		t.Fatalf("Reject: %v", err)
	}
	r := waitX11Open(t, res)
	wantRejected(t, r, OpenConnectFailed)
	var oe *OpenChannelError
	if errors.As(r.err, &oe) && oe.Message != "no X server" {
		t.Errorf("message %q", oe.Message)
	}
	if _, err := ev.Accept(); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("Accept after Reject: %v", err)
	}
}

// TestX11NoSubscriber: nobody wants KindX11Open, so the open is rejected at
// once (other kinds do not count).
func TestX11NoSubscriber(t *testing.T) {
	p := x11Pair(t, time.Hour)
	ctx := fwdContext(t)
	sub := p.client.Subscribe(ctx, KindPing)
	defer sub.Close()
	wantRejected(t, waitX11Open(t, openX11(ctx, p.server, "127.0.0.1", 1)), OpenProhibited)
}

// TestX11Dropped: the only subscription is full, so the event is dropped
// and the open rejected at once rather than after the timeout.
func TestX11Dropped(t *testing.T) {
	p := x11Pair(t, time.Hour)
	ctx := fwdContext(t)
	sub := p.client.SubscribeBuffer(ctx, KindX11Open, 1)
	defer sub.Close()
	first := openX11(ctx, p.server, "127.0.0.1", 1)
	// Wait until the first event sits in the subscription's buffer.
	deadline := time.Now().Add(10 * time.Second)
	for len(sub.ch) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("first event not delivered")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	wantRejected(t, waitX11Open(t, openX11(ctx, p.server, "127.0.0.1", 2)), OpenProhibited)
	if sub.Dropped() != 1 {
		t.Errorf("Dropped %d", sub.Dropped())
	}
	ev := nextX11(t, sub)
	if ev.OriginPort != 1 {
		t.Errorf("first event port %d", ev.OriginPort)
	}
	if err := ev.Reject(OpenProhibited, "test"); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, waitX11Open(t, first), OpenProhibited)
}

func TestX11Timeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	p := x11Pair(t, timeout)
	ctx := fwdContext(t)
	sub := p.client.Subscribe(ctx, KindX11Open)
	defer sub.Close()
	start := time.Now()
	res := openX11(ctx, p.server, "127.0.0.1", 1)
	ev := nextX11(t, sub)
	wantRejected(t, waitX11Open(t, res), OpenProhibited)
	if d := time.Since(start); d < timeout {
		t.Errorf("rejected after %v, before the %v timeout", d, timeout)
	}
	if _, err := ev.Accept(); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("Accept after the timeout: %v", err)
	}
}

// TestX11ConnClose: an undecided open is settled when the Conn closes; a
// later Accept fails.
func TestX11ConnClose(t *testing.T) {
	p := x11Pair(t, time.Hour)
	ctx := fwdContext(t)
	sub := p.client.Subscribe(ctx, KindX11Open)
	res := openX11(ctx, p.server, "127.0.0.1", 1)
	ev := nextX11(t, sub)
	p.client.Close()
	if r := waitX11Open(t, res); r.err == nil {
		r.ch.Close()
		t.Fatal("the open succeeded")
	}
	if ch, err := ev.Accept(); err == nil {
		ch.Close()
		t.Fatal("Accept worked on a closed Conn")
	}
}

// TestX11Unsolicited: without an x11-req the open is refused, and no event
// is published.
func TestX11Unsolicited(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx := fwdContext(t)
	sub := p.client.Subscribe(ctx, KindX11Open)
	wantRejected(t, waitX11Open(t, openX11(ctx, p.server, "127.0.0.1", 1)), OpenProhibited)
	sub.Close()
	for ev := range sub.Events() {
		if _, ok := ev.(*X11OpenEvent); ok {
			t.Error("event published for an unsolicited open")
		}
	}
}
