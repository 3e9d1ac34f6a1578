package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClientConnectTimeoutSilentServer: a server that accepts the TCP
// connection and then says nothing is given up after ConnectTimeout, with
// a message saying so and exit 255.
func TestClientConnectTimeoutSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { l.Close(); <-done }()
	go func() {
		defer close(done)
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c) // never answers
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	start := time.Now()
	r := runBin(t, 30*time.Second, []string{"HOME=" + t.TempDir()}, "", "-o", "ConnectTimeout=1", "-p", port, "127.0.0.1", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "timed out during the key exchange") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v with ConnectTimeout=1", d)
	}
}
