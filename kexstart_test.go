package sshtap

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestKexStartRemote: a rekey the server starts is reported as started by
// the peer on the client and as local on the server, and the other way
// round.
func TestKexStartRemote(t *testing.T) {
	p := handshakePair(t, &Config{}, &ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name              string
		starter, follower *Conn
	}{{"server starts", p.server, p.client}, {"client starts", p.client, p.server}} {
		ssub := tc.starter.Subscribe(ctx, KindKexStart)
		fsub := tc.follower.Subscribe(ctx, KindKexStart)
		if err := tc.starter.Rekey(ctx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		isStart := func(ev Event) bool { _, ok := ev.(*KexStartEvent); return ok }
		s := collect(t, ssub, 5*time.Second, isStart)
		f := collect(t, fsub, 5*time.Second, isStart)
		if ev := s[len(s)-1].(*KexStartEvent); ev.Remote || ev.Initial {
			t.Errorf("%s: starter's event %+v, want local rekey", tc.name, ev)
		}
		if ev := f[len(f)-1].(*KexStartEvent); !ev.Remote || ev.Initial {
			t.Errorf("%s: follower's event %+v, want remote rekey", tc.name, ev)
		}
		ssub.Close()
		fsub.Close()
	}
}

// TestDisconnectDuringStrictInitialKex: a client that refuses the host key
// sends DISCONNECT in the middle of the (strict) initial key exchange; the
// server reports the client's reason, not a strict kex violation.
func TestDisconnectDuringStrictInitialKex(t *testing.T) {
	refuse := func(string, net.Addr, ssh.PublicKey) error { return errors.New("not this key") }
	a, b := net.Pipe()
	_, cerr, serr := tryHandshake(a, b, &Config{HostKeyCallback: refuse}, &ServerConfig{}, 10*time.Second)
	if cerr == nil {
		t.Fatal("client handshake succeeded with a refused host key")
	}
	var de *DisconnectError
	if !errors.As(serr, &de) || !de.Remote || de.Reason != DisconnectHostKeyNotVerifiable {
		t.Fatalf("server error %v, want the client's DISCONNECT HOST_KEY_NOT_VERIFIABLE", serr)
	}
}
