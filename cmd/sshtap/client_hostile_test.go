package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
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
	// The session, if the client gets that far before the DISCONNECT,
	// runs until the server disconnected: without a session handler the
	// client would give up on its command and hang up first (now and then
	// it did, before the server's Disconnect call).
	hold := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		defer close(hold)
		nc, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := sshtap.NewServerConn(ctx, nc, &sshtap.ServerConfig{HostKeys: []ssh.Signer{signer}, NoClientAuth: true,
			SessionHandler: func(*sshtap.ServerSession) { <-hold }})
		if err != nil {
			nc.Close()
			served <- err
			return
		}
		served <- c.Disconnect(sshtap.DisconnectByApplication, evil)
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	r := runBin(t, 30*time.Second, []string{"HOME=" + t.TempDir()}, "", "-o", "StrictHostKeyChecking=no", "-p", port, "127.0.0.1", "true")
	if err := <-served; err != nil {
		t.Fatalf("server: %v", err)
	}
	if r.code != 255 {
		t.Fatalf("exit %d, want 255\nstderr:\n%q", r.code, r.stderr)
	}
	if strings.ContainsAny(r.stderr, "\x1b\a\r") {
		t.Errorf("raw terminal controls on stderr:\n%q", r.stderr)
	}
	// The disconnect may end the handshake or the session that follows.
	if !strings.Contains(r.stderr, "disconnected by the server: bye \\x1b[31mRED") {
		t.Errorf("no disconnect error line:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "\nFAKE: ") {
		t.Errorf("a peer-supplied line break started a fake line:\n%s", r.stderr)
	}
}
