package sshtap

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"sshtap/internal/wire"
)

// A peer's CLOSE that arrives after the channel already failed (the Conn is
// ending) must not close the peerClosed signal a second time.
func TestChannelCloseAfterFail(t *testing.T) {
	scfg := &ServerConfig{}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"test": func(nc *NewChannel) { nc.Accept() }}
	p := handshakePair(t, nil, scfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := p.client.OpenChannel(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.mu.Lock()
	ch.failLocked(errors.New("conn ending"))
	ch.mu.Unlock()
	// Deliver the peer's CLOSE as the transport goroutine would.
	closeMsg := (&wire.ChannelClose{Recipient: ch.LocalID()}).Marshal(nil)
	if err := p.client.handleConnection(closeMsg); err != nil {
		t.Logf("handleConnection: %v", err)
	}
	select {
	case <-ch.closedByPeer():
	default:
		t.Fatal("peerClosed not signalled")
	}
}

// TestRequestsBeforeCloseReachLateHandler: requests the peer sent before
// its CLOSE, while no handler was set yet, reach a handler set after the
// close (HandleRequests: "Requests that came before the peer's CLOSE are
// still delivered", in order).
func TestRequestsBeforeCloseReachLateHandler(t *testing.T) {
	p := chanPair(t, map[string]func(*NewChannel){"fast": func(nc *NewChannel) {
		ch, err := nc.Accept()
		if err != nil {
			return
		}
		ctx := context.Background()
		ch.SendRequest(ctx, "exit-status", false, []byte{0, 0, 0, 7})
		ch.SendRequest(ctx, "eow@openssh.com", false, nil)
		ch.Close()
	}}, nil)
	ch, err := p.client.OpenChannel(tctx(t), "fast", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The peer's CLOSE has arrived (reads end) before any handler is set.
	if _, err := io.ReadAll(ch); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		ch.mu.Lock()
		closed := ch.remoteClosed
		ch.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer's CLOSE did not arrive")
		}
	}
	var got []string
	ch.HandleRequests(func(r *Request) {
		got = append(got, r.Type)
		r.Reply(true, nil)
	})
	if want := []string{"exit-status", "eow@openssh.com"}; !slices.Equal(got, want) {
		t.Fatalf("late handler got %q, want %q", got, want)
	}
}
