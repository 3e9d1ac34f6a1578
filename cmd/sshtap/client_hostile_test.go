package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
)

// TestClientHostileDisconnectMessage: a server's DISCONNECT message with
// terminal escapes reaches neither the event stream nor the final error
// line raw.
func TestClientHostileDisconnectMessage(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const evil = "bye \x1b[31mRED\x1b]0;pwned\a\r\nFAKE: sshtap: all good"
	served := make(chan error, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// The server disconnects when the client asks to run its command
		// (from inside the session request callback), so the DISCONNECT
		// is the first thing the client hears about its session.
		disconnected := make(chan error, 1)
		cfg := &sshtap.ServerConfig{
			HostKeys:       []ssh.Signer{signer},
			NoClientAuth:   true,
			SessionHandler: func(s *sshtap.ServerSession) { s.Exit(0) },
			AllowSessionRequest: func(meta sshtap.ConnMetadata, typ, _ string) bool {
				if typ == "exec" {
					disconnected <- meta.(*sshtap.Conn).Disconnect(sshtap.DisconnectByApplication, evil)
				}
				return false
			},
		}
		c, err := sshtap.NewServerConn(ctx, nc, cfg)
		if err != nil {
			nc.Close()
			served <- err
			return
		}
		select {
		case err = <-disconnected:
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.Close()
		served <- err
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	r := runBin(t, 30*time.Second, []string{"HOME=" + t.TempDir()}, "", "-o", "StrictHostKeyChecking=no", "-p", port, "127.0.0.1", "true")
	// Disconnect reports nil, or (when a second request raced it) the
	// Conn's error, which is this very disconnect.
	var de *sshtap.DisconnectError
	if err := <-served; err != nil && !(errors.As(err, &de) && !de.Remote && de.Message == evil) {
		t.Fatalf("server: %v", err)
	}
	if r.code != 255 {
		t.Fatalf("exit %d, want 255\nstderr:\n%q", r.code, r.stderr)
	}
	if strings.ContainsAny(r.stderr, "\x1b\a\r") {
		t.Errorf("raw terminal controls on stderr:\n%q", r.stderr)
	}
	if !strings.Contains(r.stderr, "disconnected by the server: bye \\x1b[31mRED") {
		t.Errorf("no disconnect error line:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "\nFAKE: ") {
		t.Errorf("a peer-supplied line break started a fake line:\n%s", r.stderr)
	}
}
