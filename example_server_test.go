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

// A Server owns the accept loop and the limits of a server facing the
// internet: the login grace time counts from the accept, MaxStartups drops
// floods of unauthenticated connections, MaxConns bounds authenticated
// ones. ConnState sees each connection come and go; Shutdown stops
// gracefully.
func ExampleServer() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(priv)
	gone := make(chan struct{})
	srv := &sshtap.Server{
		Config: &sshtap.ServerConfig{
			HostKeys:       []ssh.Signer{hostKey},
			LoginGraceTime: 30 * time.Second,
			PasswordCallback: func(m sshtap.ConnMetadata, pw []byte) (*sshtap.Permissions, error) {
				if m.User() == "demo" && string(pw) == "secret" {
					return nil, nil
				}
				return nil, errors.New("no")
			},
			SessionHandler: func(s *sshtap.ServerSession) {
				fmt.Fprintf(s, "hello %s, you ran %q\n", s.Conn().User(), s.Command())
				s.Exit(0)
			},
		},
		MaxStartups: sshtap.MaxStartups{Start: 10, Rate: 30, Full: 100},
		MaxConns:    50,
		ConnState: func(c *sshtap.Conn, st sshtap.ConnState) {
			if st == sshtap.StateClosed {
				fmt.Println("connection closed:", c.Err())
				close(gone)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sshtap.Dial(ctx, "tcp", ln.Addr().String(), &sshtap.Config{
		User: "demo", Auth: []sshtap.AuthMethod{sshtap.Password("secret")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	out, err := s.Output("uptime")
	if err != nil && !errors.Is(err, io.EOF) {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	c.Close()
	<-gone

	// The client is gone, so Shutdown has nothing to wait for.
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Serve:", <-served)
	// Output:
	// hello demo, you ran "uptime"
	// connection closed: sshtap: remote disconnect: BY_APPLICATION (11): "closed by application"
	// Serve: sshtap: Server closed
}
