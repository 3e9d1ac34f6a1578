package sshtap

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// jumpTarget is an SSH server on 127.0.0.1 whose sessions print the user's
// name. ended receives each connection's end.
func jumpTarget(t *testing.T) (addr string, ended <-chan error) {
	t.Helper()
	testKeys(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ends := make(chan error, 8)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				c := ServerConn(nc, &ServerConfig{
					HostKeys: []ssh.Signer{testECDSA256}, NoClientAuth: true,
					SessionHandler: func(s *ServerSession) {
						s.Write([]byte("user " + s.Conn().User()))
						s.Exit(0)
					},
				})
				c.Handshake(context.Background())
				ends <- c.Wait()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), ends
}

func TestDialSSH(t *testing.T) {
	target, ended := jumpTarget(t)
	perm := &permLog{allow: true}
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: perm.check})
	ctx := fwdContext(t)
	var seen []string
	cfg := &Config{User: "bob", HostKeyCallback: func(addr string, remote net.Addr, key ssh.PublicKey) error {
		seen = append(seen, addr, remote.String(), key.Type())
		return nil
	}}
	inner, err := p.client.DialSSH(ctx, target, cfg)
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	// The inner connection's host key is the target's (not the jump
	// host's), checked under the target's address.
	if want := []string{target, target, ssh.KeyAlgoECDSA256}; len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Errorf("HostKeyCallback saw %q, want %q", seen, want)
	}
	if got := perm.got(); len(got) != 1 || got[0] != "direct-tcpip "+target {
		t.Errorf("the jump host was asked %q", got)
	}
	s, err := inner.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("x")
	if err != nil || string(out) != "user bob" {
		t.Fatalf("session through the jump: %q, %v", out, err)
	}

	// Closing the inner Conn closes the channel: the target sees its
	// client go, and the jump host's connection stays up for another.
	inner.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the target did not see the inner connection end")
	}
	if err := p.client.Err(); err != nil {
		t.Fatalf("the jump connection ended with its inner one: %v", err)
	}
	inner2, err := p.client.DialSSH(ctx, target, &Config{User: "carol", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatalf("second DialSSH: %v", err)
	}

	// The jump connection's end ends the inner one.
	p.client.Close()
	done := make(chan error, 1)
	go func() { done <- inner2.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the inner Conn ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the inner Conn outlived its jump connection")
	}
	<-ended
}

func TestDialSSHRefused(t *testing.T) {
	target, _ := jumpTarget(t)
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: (&permLog{}).check})
	_, err := p.client.DialSSH(fwdContext(t), target, &Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	var oe *OpenChannelError
	var fe *ForwardError
	if !errors.As(err, &oe) || oe.Reason != OpenProhibited || !errors.As(err, &fe) || fe.Addr != target {
		t.Fatalf("DialSSH through a jump host that refuses: %v", err)
	}
}

func TestDialSSHHostKeyRefused(t *testing.T) {
	target, ended := jumpTarget(t)
	p := handshakePair(t, nil, &ServerConfig{ForwardPermission: (&permLog{allow: true}).check})
	refused := errors.New("unknown host")
	_, err := p.client.DialSSH(fwdContext(t), target, &Config{HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error { return refused }})
	if !errors.Is(err, refused) {
		t.Fatalf("DialSSH with a refused host key: %v", err)
	}
	// The channel is closed: the target sees the connection end, and the
	// jump connection is still up.
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the channel of a failed DialSSH stayed open")
	}
	if err := p.client.Err(); err != nil {
		t.Fatalf("the jump connection ended: %v", err)
	}
}
