package sshtap

import (
	"context"
	"errors"
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
