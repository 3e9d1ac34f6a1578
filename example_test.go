package sshtap_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
)

// An in-process server and client: the client subscribes before the
// handshake and sees the key exchange, then the server's DEBUG message.
func Example() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(priv)
	a, b := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	go func() {
		srv, err := sshtap.NewServerConn(ctx, b, &sshtap.ServerConfig{HostKeys: []ssh.Signer{hostKey}, NoClientAuth: true})
		if err != nil {
			log.Print(err)
			return
		}
		srv.SendDebug(ctx, true, "welcome")
		srv.Wait()
	}()

	cfg := &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	cfg.Ciphers = []string{"aes128-gcm@openssh.com"}
	c := sshtap.ClientConn(a, cfg)
	sub := c.Subscribe(ctx, sshtap.KindKex|sshtap.KindDebug)
	if err := c.Handshake(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for ev := range sub.Events() {
		switch ev := ev.(type) {
		case *sshtap.KexEvent:
			fmt.Println("kex done, cipher", ev.Algorithms.ServerToClient.Cipher, "strict", ev.Strict)
		case *sshtap.DebugEvent:
			fmt.Println("server says:", ev.Message)
			return
		case *sshtap.ClosedEvent:
			log.Fatal(ev.Err)
		}
	}
	// Output:
	// kex done, cipher aes128-gcm@openssh.com strict true
	// server says: welcome
}

// A MAC policy replaces libssh2's MACERROR callback. Here packets that fail
// authentication are dropped and the connection goes on; each one is still
// reported as a *MACMismatchEvent.
func ExampleTransportConfig_macPolicy() {
	cfg := &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	cfg.MACPolicy = func(m sshtap.MACMismatch) sshtap.MACVerdict {
		if m.Mode.String() == "aead" {
			return sshtap.MACDisconnect // keep AEAD strict
		}
		return sshtap.MACDiscard
	}
	fmt.Println(cfg.MACPolicy(sshtap.MACMismatch{}))
	// Output: discard
}

// FuncReadWriter runs a Conn over libssh2-style send/recv functions; a
// would-block result means "call again".
func ExampleFuncReadWriter() {
	a, b := net.Pipe()
	defer b.Close()
	rw := &sshtap.FuncReadWriter{
		Send: func(p []byte) (int, error) { return a.Write(p) },
		Recv: func(p []byte) (int, error) {
			a.SetReadDeadline(time.Now().Add(time.Millisecond))
			n, err := a.Read(p)
			if errors.Is(err, net.ErrClosed) {
				return n, err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return n, sshtap.ErrWouldBlock // nothing yet: call again
			}
			return n, err
		},
		CloseFunc: a.Close,
	}
	go b.Write([]byte("SSH-2.0-peer\r\n"))
	buf := make([]byte, 64)
	n, _ := rw.Read(buf)
	fmt.Printf("%q\n", buf[:n])
	rw.Close()
	// Output: "SSH-2.0-peer\r\n"
}

// Subscriptions end with exactly one ClosedEvent whose Err says why.
func ExampleConn_Subscribe() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(priv)
	a, b := net.Pipe()
	ctx := context.Background()
	done := make(chan *sshtap.Conn)
	go func() {
		srv, _ := sshtap.NewServerConn(ctx, b, &sshtap.ServerConfig{HostKeys: []ssh.Signer{hostKey}, NoClientAuth: true})
		done <- srv
	}()
	c, err := sshtap.NewClientConn(ctx, a, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		log.Fatal(err)
	}
	srv := <-done
	sub := c.Subscribe(ctx, sshtap.KindDisconnect)
	srv.Disconnect(sshtap.DisconnectByApplication, "maintenance")
	for ev := range sub.Events() {
		switch ev := ev.(type) {
		case *sshtap.DisconnectEvent:
			fmt.Println("disconnect:", ev.Reason, ev.Message)
		case *sshtap.ClosedEvent:
			var de *sshtap.DisconnectError
			fmt.Println("closed, remote disconnect:", errors.As(ev.Err, &de) && de.Remote)
		}
	}
	c.Close()
	// Output:
	// disconnect: BY_APPLICATION maintenance
	// closed, remote disconnect: true
}
