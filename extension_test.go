package sshtap

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSendExtensionMessage sends a local-extension message number the peer
// does not know: the peer answers UNIMPLEMENTED naming our sequence number
// (RFC 4253 §11.4) and reports the unknown type locally; the connection
// keeps working.
func TestSendExtensionMessage(t *testing.T) {
	p := handshakePair(t, &Config{}, &ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	csub := p.client.Subscribe(ctx, KindUnimplemented)
	ssub := p.server.Subscribe(ctx, KindUnimplemented)

	if err := p.client.SendExtensionMessage(ctx, 193, nil); !errors.Is(err, ErrNotExtensionType) {
		t.Fatalf("type 193: err = %v, want ErrNotExtensionType", err)
	}
	if err := p.client.SendExtensionMessage(ctx, 222, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	isUnimpl := func(ev Event) bool { _, ok := ev.(*UnimplementedEvent); return ok }
	sev := collect(t, ssub, 5*time.Second, isUnimpl)
	local := sev[len(sev)-1].(*UnimplementedEvent)
	if local.Remote || local.Type != 222 {
		t.Fatalf("server event = %+v, want local type 222", local)
	}
	cev := collect(t, csub, 5*time.Second, isUnimpl)
	remote := cev[len(cev)-1].(*UnimplementedEvent)
	if !remote.Remote || remote.Seq != local.Seq {
		t.Fatalf("client event = %+v, want remote with seq %d", remote, local.Seq)
	}
	if _, err := p.client.Ping(ctx); err != nil {
		t.Fatalf("ping after the exchange: %v", err)
	}
}
