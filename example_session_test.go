package sshtap_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
)

// exampleServe runs an in-process server with scfg on one end of a
// net.Pipe and returns a handshaken client on the other end, and a func that
// closes the client and waits for the server to end.
func exampleServe(ctx context.Context, scfg *sshtap.ServerConfig, ccfg *sshtap.Config) (*sshtap.Conn, func()) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(priv)
	scfg.HostKeys = []ssh.Signer{hostKey}
	scfg.NoClientAuth = true
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv, err := sshtap.NewServerConn(ctx, b, scfg)
		if err != nil {
			return
		}
		srv.Wait()
		srv.Close()
	}()
	c, err := sshtap.NewClientConn(ctx, a, ccfg)
	if err != nil {
		log.Fatal(err)
	}
	return c, func() { c.Close(); <-done }
}

// A server's SessionHandler gets each session once the client asked for a
// command; the client runs one with Output and gets the exit status as an
// *ExitError.
func ExampleConn_NewSession() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scfg := &sshtap.ServerConfig{
		SessionHandler: func(s *sshtap.ServerSession) {
			fmt.Fprintf(s, "you ran %q\n", s.Command())
			s.Exit(3)
		},
	}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer stop()

	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output("make coffee")
	fmt.Printf("output: %s", out)
	var ee *sshtap.ExitError
	if errors.As(err, &ee) {
		fmt.Println("exit status:", ee.Status)
	}
	// Output:
	// output: you ran "make coffee"
	// exit status: 3
}

// Dial opens a direct-tcpip channel: the server connects to the target
// (if ServerConfig.ForwardPermission allows it) and the returned net.Conn
// carries the connection. Here the target is a local echo server.
func ExampleConn_Dial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		io.Copy(conn, conn)
	}()

	scfg := &sshtap.ServerConfig{
		ForwardPermission: func(meta sshtap.ConnMetadata, kind, addr string) bool {
			host, _, _ := net.SplitHostPort(addr)
			return kind == "direct-tcpip" && host == "127.0.0.1"
		},
	}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer stop()

	conn, err := c.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "hello through the tunnel")
	conn.(interface{ CloseWrite() error }).CloseWrite() // EOF to the echo server
	reply, _ := io.ReadAll(conn)
	fmt.Printf("echo: %s\n", reply)
	<-echoed

	_, err = c.Dial(ctx, "tcp", "192.0.2.1:80")
	var fe *sshtap.ForwardError
	fmt.Println("elsewhere refused:", errors.As(err, &fe))
	// Output:
	// echo: hello through the tunnel
	// elsewhere refused: true
}

// A client that requested X11 forwarding decides each "x11" channel the
// server opens through an *X11OpenEvent; Accept returns the channel, which
// the application would connect to its X server.
func ExampleX11OpenEvent() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scfg := &sshtap.ServerConfig{
		SessionHandler: func(s *sshtap.ServerSession) {
			// An X client connected to the server's proxy display.
			ch, err := s.OpenX11Channel(s.Context(), "127.0.0.1", 40000)
			if err != nil {
				s.Exit(1)
				return
			}
			io.WriteString(ch, "X11 setup")
			ch.CloseWrite()
			io.Copy(io.Discard, ch) // until the client closes
			ch.Close()
		},
	}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer stop()
	sub := c.Subscribe(ctx, sshtap.KindX11Open)
	defer sub.Close()

	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestX11(false, "MIT-MAGIC-COOKIE-1", "0123456789abcdef0123456789abcdef", 0); err != nil {
		log.Fatal(err)
	}
	if err := s.Start("xclock"); err != nil {
		log.Fatal(err)
	}
	ev := (<-sub.Events()).(*sshtap.X11OpenEvent)
	fmt.Println("x11 open from", ev.OriginAddr, ev.OriginPort)
	ch, err := ev.Accept()
	if err != nil {
		log.Fatal(err)
	}
	data, _ := io.ReadAll(ch)
	fmt.Printf("X client sent %q\n", data)
	ch.Close()
	fmt.Println("session:", s.Wait())
	// Output:
	// x11 open from 127.0.0.1 40000
	// X client sent "X11 setup"
	// session: <nil>
}

// Session methods are cancelled by Session.Close, which any goroutine may
// call; context.AfterFunc ties a session to a context. The Conn goes on.
func ExampleSession_Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scfg := &sshtap.ServerConfig{
		SessionHandler: func(s *sshtap.ServerSession) {
			<-s.Context().Done() // a command that never ends by itself
		},
	}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer stop()

	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	runCtx, giveUp := context.WithCancel(ctx)
	defer context.AfterFunc(runCtx, func() { s.Close() })()
	time.AfterFunc(10*time.Millisecond, giveUp) // the caller loses patience
	_, err = s.Output("sleep forever")
	fmt.Println("closed:", errors.Is(err, sshtap.ErrChannelClosed))
	fmt.Println("conn still up:", c.Err() == nil)
	// Output:
	// closed: true
	// conn still up: true
}
