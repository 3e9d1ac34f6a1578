package sshtap

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestChannelOpenUndecidedTimesOut: opens whose handler never decides (and
// never returns) are rejected after ChannelOpenTimeout and give their
// pending slot back, so that opens keep working on the same Conn.
func TestChannelOpenUndecidedTimesOut(t *testing.T) {
	release := make(chan struct{})
	p := chanPair(t, map[string]func(*NewChannel){
		"stuck": func(nc *NewChannel) { <-release },
		"echo":  echoHandler(t),
	}, func(_ *Config, s *ServerConfig) {
		s.ChannelOpenTimeout = 200 * time.Millisecond
	})
	// The handlers return only once the test ends.
	t.Cleanup(func() { close(release) })

	const n = maxIncomingOpens + 44
	ctx := tctx(t)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ch, err := p.client.OpenChannel(ctx, "stuck", nil)
			if err == nil {
				ch.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	timedOut, full := 0, 0
	for err := range errs {
		var oe *OpenChannelError
		switch {
		case !errors.As(err, &oe) || oe.Reason != OpenResourceShortage:
			t.Fatalf("undecided open: %v, want OpenResourceShortage", err)
		case oe.Message == "channel open not decided in time":
			timedOut++
		default:
			full++
		}
	}
	// The first 256 are admitted, and every admitted open times out.
	if timedOut < maxIncomingOpens || timedOut+full != n {
		t.Fatalf("%d opens timed out and %d found no slot; want at least %d timeouts of %d", timedOut, full, maxIncomingOpens, n)
	}
	if got := pendingOpens(p.server); got != 0 {
		t.Fatalf("%d pending-open slots still held", got)
	}

	ch, err := p.client.OpenChannel(ctx, "echo", nil)
	if err != nil {
		t.Fatalf("open after %d undecided ones: %v", n, err)
	}
	io.WriteString(ch, "still open")
	ch.CloseWrite()
	if got, err := io.ReadAll(ch); err != nil || string(got) != "still open" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	ch.Close()
}

// TestChannelOpenHandlerReturnsUndecided: an open whose handler returns
// without Accept or Reject is rejected at once, not after the timeout.
func TestChannelOpenHandlerReturnsUndecided(t *testing.T) {
	p := chanPair(t, map[string]func(*NewChannel){"forgetful": func(*NewChannel) {}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.client.OpenChannel(ctx, "forgetful", nil)
	var oe *OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != OpenProhibited || oe.Message != "channel open not handled" {
		t.Fatalf("open left undecided by its handler: %v, want OpenProhibited", err)
	}
	if got := pendingOpens(p.server); got != 0 {
		t.Fatalf("%d pending-open slots still held", got)
	}
}

// TestChannelOpenDecidedTooLate: Accept and Reject after the timeout return
// an error and send nothing.
func TestChannelOpenDecidedTooLate(t *testing.T) {
	late := make(chan *NewChannel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"slow": func(nc *NewChannel) {
		late <- nc
		<-nc.done
	}}, func(_ *Config, s *ServerConfig) {
		s.ChannelOpenTimeout = 50 * time.Millisecond
	})
	_, err := p.client.OpenChannel(tctx(t), "slow", nil)
	var oe *OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != OpenResourceShortage {
		t.Fatalf("open decided too late: %v, want OpenResourceShortage", err)
	}
	nc := <-late
	if ch, err := nc.Accept(); ch != nil || !errors.Is(err, errDecided) {
		t.Fatalf("Accept after the timeout = %v, %v", ch, err)
	}
	if err := nc.Reject(OpenConnectFailed, "late"); !errors.Is(err, errDecided) {
		t.Fatalf("Reject after the timeout = %v", err)
	}
	// The Conn is fine: nothing was sent for the late decisions.
	if _, _, err := p.client.SendGlobalRequest(tctx(t), "nothing@sshtap", true, nil); err != nil {
		t.Fatal(err)
	}
}

// TestListenNotAcceptedTimesOut: a forwarded connection that no Accept
// takes is rejected after ChannelOpenTimeout (the server then drops the
// connection), and the listener keeps serving.
func TestListenNotAcceptedTimesOut(t *testing.T) {
	p := handshakePair(t, &Config{TransportConfig: TransportConfig{ChannelOpenTimeout: 100 * time.Millisecond}},
		&ServerConfig{ForwardPermission: (&permLog{allow: true}).check})
	l, err := p.client.Listen(tctx(t), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on a forwarded connection nobody accepted: %v, want EOF", err)
	}
	if got := pendingOpens(p.client); got != 0 {
		t.Fatalf("%d pending-open slots still held", got)
	}

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	c, ok := <-accepted
	if !ok {
		t.Fatal("Accept failed")
	}
	c.Close()
}

// TestChannelOpenEndsWithConn: an open still undecided when the Conn ends
// is decided by that end: its handler sees done closed and Accept fails.
func TestChannelOpenEndsWithConn(t *testing.T) {
	got := make(chan *NewChannel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"slow": func(nc *NewChannel) {
		got <- nc
		<-nc.done
	}}, func(_ *Config, s *ServerConfig) {
		s.ChannelOpenTimeout = -1 // no timeout: only the Conn's end decides
	})
	go p.client.OpenChannel(context.Background(), "slow", nil)
	nc := <-got
	p.client.Close()
	select {
	case <-nc.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the open stayed undecided after the Conn ended")
	}
	if ch, err := nc.Accept(); ch != nil || err == nil || errors.Is(err, errDecided) || err != p.server.Err() {
		t.Fatalf("Accept after the Conn ended = %v, %v; want the Conn's error %v", ch, err, p.server.Err())
	}
	if got := pendingOpens(p.server); got != 0 {
		t.Fatalf("%d pending-open slots still held", got)
	}
}

// pendingOpens is the number of c's pending-open slots in use.
func pendingOpens(c *Conn) int {
	c.mux.mu.Lock()
	defer c.mux.mu.Unlock()
	return len(c.mux.pending)
}
