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
		// Each round waits for both sides' KexEvent: a Rekey called while
		// the previous exchange is still finishing on that side joins it.
		ssub := tc.starter.Subscribe(ctx, KindKexStart|KindKex)
		fsub := tc.follower.Subscribe(ctx, KindKexStart|KindKex)
		if err := tc.starter.Rekey(ctx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		isKex := func(ev Event) bool { _, ok := ev.(*KexEvent); return ok }
		for _, side := range []struct {
			who    string
			sub    *Subscription
			remote bool
		}{{"starter", ssub, false}, {"follower", fsub, true}} {
			evs := collect(t, side.sub, 5*time.Second, isKex)
			start, ok := evs[0].(*KexStartEvent)
			if !ok || len(evs) != 2 {
				t.Fatalf("%s: %s events %v, want KexStart then Kex", tc.name, side.who, evs)
			}
			if start.Remote != side.remote || start.Initial {
				t.Errorf("%s: %s's KexStartEvent %+v, want Remote=%v rekey", tc.name, side.who, start, side.remote)
			}
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
	// Loopback TCP, not net.Pipe: with a synchronous pipe the server's
	// next write can fail on the closed pipe before it reads the
	// DISCONNECT, which a buffered socket does not do.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_, cerr, serr := tryHandshake(a, b, &Config{HostKeyCallback: refuse}, &ServerConfig{}, 10*time.Second)
	if cerr == nil {
		t.Fatal("client handshake succeeded with a refused host key")
	}
	var de *DisconnectError
	if !errors.As(serr, &de) || !de.Remote || de.Reason != DisconnectHostKeyNotVerifiable {
		t.Fatalf("server error %v, want the client's DISCONNECT HOST_KEY_NOT_VERIFIABLE", serr)
	}
}

// TestServerAnswersPreAuthRekey: a server never starts a rekey before user
// authentication, but one the client starts then is carried out, not
// treated as an error.
func TestServerAnswersPreAuthRekey(t *testing.T) {
	testKeys(t)
	a, b := net.Pipe()
	cl := ClientConn(a, &Config{NoAuth: true, HostKeyCallback: insecure})
	sv := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519},
		PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return nil, nil }})

	defer cl.Close()
	defer sv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := make(chan error, 1)
	go func() { serr <- sv.Handshake(ctx) }()
	if err := cl.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sv.Rekey(ctx); !errors.Is(err, ErrRekeyBeforeAuth) {
		t.Errorf("server Rekey before auth: %v, want ErrRekeyBeforeAuth", err)
	}
	if err := cl.Rekey(ctx); err != nil {
		t.Fatalf("client Rekey before auth: %v", err)
	}
	if n := cl.Stats().Rekeys; n != 1 {
		t.Errorf("client rekeys %d, want 1", n)
	}
	if err := sv.Err(); err != nil {
		t.Errorf("server failed: %v", err)
	}
	cl.Close()
	<-serr
}
