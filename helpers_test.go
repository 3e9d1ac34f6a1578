package sshtap

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

// Test host keys, generated once per test binary.
var (
	keysOnce                                sync.Once
	testEd25519, testECDSA256, testECDSA384 ssh.Signer
	testECDSA521, testRSA                   ssh.Signer
)

func testKeys(t testing.TB) {
	if t != nil {
		t.Helper()
	}
	keysOnce.Do(func() {
		must := func(s ssh.Signer, err error) ssh.Signer {
			if err != nil {
				panic(err)
			}
			return s
		}
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		testEd25519 = must(ssh.NewSignerFromKey(ed))
		for _, c := range []struct {
			curve elliptic.Curve
			dst   *ssh.Signer
		}{{elliptic.P256(), &testECDSA256}, {elliptic.P384(), &testECDSA384}, {elliptic.P521(), &testECDSA521}} {
			k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
			if err != nil {
				panic(err)
			}
			*c.dst = must(ssh.NewSignerFromKey(k))
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testRSA = must(ssh.NewSignerFromKey(rk))
	})
}

// allHostKeys returns one signer of each type.
func allHostKeys(t testing.TB) []ssh.Signer {
	testKeys(t)
	return []ssh.Signer{testEd25519, testECDSA256, testECDSA384, testECDSA521, testRSA}
}

// pair is a connected client and server.
type pair struct {
	client, server *Conn
}

// handshakePair runs both handshakes over the given streams (net.Pipe ends
// by default) and fails the test on error. Both Conns are closed at cleanup.
func handshakePair(t testing.TB, ccfg *Config, scfg *ServerConfig) pair {
	t.Helper()
	a, b := net.Pipe()
	return handshakeOver(t, a, b, ccfg, scfg)
}

func handshakeOver(t testing.TB, crw, srw io.ReadWriter, ccfg *Config, scfg *ServerConfig) pair {
	t.Helper()
	p, cerr, serr := tryHandshake(crw, srw, ccfg, scfg, 20*time.Second)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client: %v; server: %v", cerr, serr)
	}
	t.Cleanup(func() {
		p.client.Close()
		p.server.Close()
	})
	return p
}

// tryHandshake runs both handshakes concurrently and returns both errors.
// The Conns are returned even on error (already failed), never nil.
func tryHandshake(crw, srw io.ReadWriter, ccfg *Config, scfg *ServerConfig, timeout time.Duration) (pair, error, error) {
	testKeys(nil)
	if ccfg == nil {
		ccfg = &Config{NoAuth: true}
	}
	if ccfg.HostKeyCallback == nil {
		ccfg.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	}
	// In-process pairs run the whole handshake: the client authenticates
	// with "none", which the server lets in unless the test configured
	// auth callbacks.
	ccfg.NoAuth = false
	if scfg == nil {
		scfg = &ServerConfig{}
	}
	if scfg.PasswordCallback == nil && scfg.PublicKeyCallback == nil && scfg.KeyboardInteractiveCallback == nil {
		scfg.NoClientAuth = true
	}
	if len(scfg.HostKeys) == 0 {
		scfg.HostKeys = []ssh.Signer{testEd25519}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p := pair{client: ClientConn(crw, ccfg), server: ServerConn(srw, scfg)}
	serr := make(chan error, 1)
	go func() { serr <- p.server.Handshake(ctx) }()
	cerr := p.client.Handshake(ctx)
	if cerr != nil {
		p.client.Close()
	}
	se := <-serr
	if se != nil || cerr != nil {
		p.server.Close()
		p.client.Close()
	}
	return p, cerr, se
}

// collect reads events from sub until pred returns true or the deadline
// passes, returning everything read.
func collect(t testing.TB, sub *Subscription, d time.Duration, pred func(Event) bool) []Event {
	t.Helper()
	var got []Event
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return got
			}
			got = append(got, ev)
			if pred(ev) {
				return got
			}
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for an event; got %d: %v", d, len(got), got)
			return got
		}
	}
}

var insecure = ssh.InsecureIgnoreHostKey()

// serverKeyed waits for a server's transport handshake (version exchange and
// first key exchange) without user authentication, for tests whose client
// stops there. Like Handshake, a done ctx fails the Conn.
func serverKeyed(ctx context.Context, s *Conn) error {
	err := s.waitKeyed(ctx)
	if err != nil && ctx.Err() != nil {
		s.abort(fmt.Errorf("sshtap: handshake: %w", context.Cause(ctx)), 0, "")
		s.waitEnded()
		return s.Err()
	}
	return err
}

// writeChannelData writes a CHANNEL_DATA (code 0) or CHANNEL_EXTENDED_DATA
// message for recipient as it is, bypassing Channel.Write's flow control,
// for tests of a peer that breaks it.
func (c *Conn) writeChannelData(ctx context.Context, recipient, code uint32, data []byte) error {
	var p []byte
	if code == 0 {
		p = wire.AppendChannelDataHeader(nil, recipient, len(data))
	} else {
		p = wire.AppendChannelExtendedDataHeader(nil, recipient, code, len(data))
	}
	return c.writePacket(ctx, append(p, data...))
}

// kexSettled waits until neither Conn of p has a key exchange in flight
// and both have counted the same number of rekeys, and returns that number.
// The state is final only when nothing left in flight can start another
// exchange (no Rekey calls, no timer, no traffic that could cross a
// RekeyBytes budget), so call it after a round trip (a Ping) that follows
// the last traffic: an exchange started by either side is then in flight
// on at least one of them, and is waited for here.
func kexSettled(t testing.TB, p pair, d time.Duration) uint64 {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		busy := false
		for _, c := range []*Conn{p.client, p.server} {
			c.omu.Lock()
			r := c.kex
			c.omu.Unlock()
			if r == nil {
				continue
			}
			busy = true
			select {
			case <-r.finished:
			case <-timer.C:
				t.Fatalf("a key exchange still in flight after %v (rekeys: client %d, server %d)", d, p.client.Stats().Rekeys, p.server.Stats().Rekeys)
			}
		}
		if busy {
			continue
		}
		// Both idle one after the other. If one side finished an exchange
		// that the other has not (it has sent its NEWKEYS, the peer's is
		// still in flight), the counts differ and the next round waits.
		cn, sn := p.client.Stats().Rekeys, p.server.Stats().Rekeys
		if cn == sn {
			return cn
		}
		select {
		case <-timer.C:
			t.Fatalf("rekey counts differ after %v: client %d, server %d", d, cn, sn)
		case <-time.After(time.Millisecond): // polling interval, bounded by the deadline
		}
	}
}
