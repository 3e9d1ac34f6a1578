package sshtap

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// TestInteropSSHClientRekeyLimitCount uploads 16 MiB with
// `ssh -o RekeyLimit=1M` to our server and counts the key exchanges.
//
// OpenSSH decides to rekey before sending a packet when the blocks sent
// plus the packet's size exceed the limit in blocks, counting that size in
// bytes, not blocks. With chacha20-poly1305 (8-byte blocks) and 32 KiB
// packets it thus rekeys after about 1 MiB - 8*32 KiB = 768 KiB, about 22
// times for 16 MiB, as against sshd; with the 128 KiB packets we allow
// other peers the early start is the whole 1 MiB, and ssh rekeyed after
// every packet (about 128 times).
func TestInteropSSHClientRekeyLimitCount(t *testing.T) {
	testpeer.Require(t, "ssh")
	testKeys(t)
	const size = 16 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		got int64
		kex int
		err error
	}
	served := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- result{err: err}
			return
		}
		got := make(chan int64, 1)
		c := ServerConn(nc, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true,
			SessionHandler: func(s *ServerSession) {
				n, _ := io.Copy(io.Discard, s)
				got <- n
				s.Exit(0)
			}})

		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		sub := c.SubscribeBuffer(ctx, KindKex, 1024)
		defer sub.Close()
		if err := c.Handshake(ctx); err != nil {
			served <- result{err: err}
			return
		}
		c.Wait()
		r := result{got: -1}
		select {
		case r.got = <-got:
		default: // no session ran
		}
		for ev := range sub.Events() { // until the Conn's end closes it
			if e, ok := ev.(*KexEvent); ok && !e.Initial {
				r.kex++
			}
		}
		served <- r
	}()
	res := testpeer.SSHClient{
		Addr:    ln.Addr().String(),
		Options: []string{"RekeyLimit=1M", "Ciphers=chacha20-poly1305@openssh.com", "ConnectTimeout=10"},
		Flags:   []string{"-T"},
		Command: []string{"discard"},
		Stdin:   bytes.NewReader(make([]byte, size)),
		Timeout: ioTimeout,
	}.Run(t)
	if res.ExitCode != 0 {
		t.Fatalf("ssh:\n%s", res)
	}
	r := <-served
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.got != size {
		t.Fatalf("server read %d bytes, want %d", r.got, size)
	}
	// At least one exchange per MiB; at most one per 768 KiB, plus the
	// exchanges that happen to start and end around the last packets.
	if lo, hi := size>>20, size/(768<<10)+3; r.kex < lo || r.kex > hi {
		t.Fatalf("%d key exchanges for %d MiB with RekeyLimit=1M, want %d to %d", r.kex, size>>20, lo, hi)
	}
	t.Logf("%d key exchanges", r.kex)
}
