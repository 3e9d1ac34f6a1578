package sshtap

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/kex"
)

// mlkem768x25519-sha256 against a real peer in both roles: OpenSSH 9.2
// lacks it, golang.org/x/crypto/ssh has it. Each side moves data through
// an echo channel the other serves, and the sshtap side's kex event names
// the method.
func TestXCryptoPeerMLKEM(t *testing.T) {
	testKeys(t)
	ctx := tctx(t)
	xc := ssh.Config{KeyExchanges: []string{ssh.KeyExchangeMLKEM768X25519}}
	tc := TransportConfig{KexAlgorithms: []string{kex.MLKEM768X25519}}

	checkKex := func(t *testing.T, sub *Subscription) {
		t.Helper()
		evs := collect(t, sub, 10*time.Second, func(e Event) bool { return e.Kind() == KindKex })
		if k := evs[len(evs)-1].(*KexEvent); k.Algorithms.Kex != kex.MLKEM768X25519 {
			t.Fatalf("negotiated %q", k.Algorithms.Kex)
		}
	}
	echo := func(t *testing.T, rw io.ReadWriter) {
		t.Helper()
		msg := "post-quantum hello"
		if _, err := io.WriteString(rw, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(rw, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
	}

	t.Run("sshtap-client", func(t *testing.T) {
		a, b := net.Pipe()
		scfg := &ssh.ServerConfig{Config: xc, NoClientAuth: true}
		scfg.AddHostKey(testEd25519)
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc, chans, reqs, err := ssh.NewServerConn(b, scfg)
			if err != nil {
				return
			}
			defer sc.Close()
			go ssh.DiscardRequests(reqs)
			for nc := range chans {
				ch, creqs, err := nc.Accept()
				if err != nil {
					return
				}
				go ssh.DiscardRequests(creqs)
				go func() { io.Copy(ch, ch); ch.Close() }()
			}
		}()
		c := ClientConn(a, &Config{TransportConfig: tc, User: "u", HostKeyCallback: insecure})
		sub := c.Subscribe(ctx, KindKex)
		if err := c.Handshake(ctx); err != nil {
			t.Fatal(err)
		}
		checkKex(t, sub)
		ch, err := c.OpenChannel(ctx, "echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		echo(t, ch)
		ch.Close()
		c.Close()
		<-done
	})

	t.Run("sshtap-server", func(t *testing.T) {
		a, b := net.Pipe()
		scfg := &ServerConfig{TransportConfig: tc, HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true}
		scfg.ChannelHandlers = map[string]func(*NewChannel){"echo": echoHandler(t)}
		s := ServerConn(b, scfg)
		defer s.Close()
		sub := s.Subscribe(ctx, KindKex)
		go s.Handshake(context.Background())
		cc, chans, reqs, err := ssh.NewClientConn(a, "pipe", &ssh.ClientConfig{Config: xc, User: "u", HostKeyCallback: insecure})
		if err != nil {
			t.Fatal(err)
		}
		client := ssh.NewClient(cc, chans, reqs)
		defer client.Close()
		checkKex(t, sub)
		ch, creqs, err := client.OpenChannel("echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		go ssh.DiscardRequests(creqs)
		echo(t, ch)
		ch.Close()
	})
}
