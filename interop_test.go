package sshtap

// Interop tests against real peers on 127.0.0.1: OpenSSH 9.2p1 (sshd, also in
// inetd mode, and ssh) and dropbear 2022.83 (dropbear and dbclient), started
// by internal/testpeer. They skip when a peer is missing and fail instead
// with SSHTAP_INTEROP=1.
//
// These are the transport tests: our client connects with Config.NoAuth, so
// each connection goes as far as the "ssh-userauth" SERVICE_ACCEPT; our
// server has no auth method configured, so real clients reach user
// authentication, are refused and end. User authentication itself is tested
// in interop_auth_test.go, sessions in interop_session_test.go.
//
// The algorithm matrices are economical: every cipher × MAC with one kex and
// host key algorithm, every kex with one cipher, every host key algorithm with
// one kex, each against one peer instance.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sshtap/cipher"
	"sshtap/internal/testpeer"
	"sshtap/internal/wire"
	"sshtap/kex"
)

// ioTimeout bounds one connection's handshake, rekeys and checks.
const ioTimeout = 30 * time.Second

// ioContext returns a context that ends with the test or after ioTimeout.
func ioContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ioIntersect returns the names of ours that the peer supports, in our
// order, leaving out certificate algorithms (no peer here has host
// certificates).
func ioIntersect(ours, theirs []string) []string {
	var out []string
	for _, n := range ours {
		if slices.Contains(theirs, n) && !strings.Contains(n, "-cert-v01@") {
			out = append(out, n)
		}
	}
	return out
}

// ioAlgos are the algorithms both sides of an interop pairing support.
type ioAlgos struct {
	kex, hostKey, cipher, mac []string
}

// ioPeerAlgos intersects our supported lists with a peer's
// (testpeer.Supported); hostKeyQuery is the query that lists host key
// signature algorithms ("HostKeyAlgorithms" for OpenSSH, whose "ssh -Q key"
// lists key types only and so lacks rsa-sha2-256/512; "key" for dropbear).
func ioPeerAlgos(t testing.TB, peer, hostKeyQuery string) ioAlgos {
	t.Helper()
	a := ioAlgos{
		kex:     ioIntersect(kex.SupportedKexAlgos, testpeer.Supported(t, peer, "kex")),
		hostKey: ioIntersect(kex.SupportedHostKeyAlgos, testpeer.Supported(t, peer, hostKeyQuery)),
		cipher:  ioIntersect(cipher.SupportedCiphers, testpeer.Supported(t, peer, "cipher")),
		mac:     ioIntersect(cipher.SupportedMACs, testpeer.Supported(t, peer, "mac")),
	}
	t.Logf("%s ∩ sshtap: kex %v; host key %v; cipher %v; mac %v", peer, a.kex, a.hostKey, a.cipher, a.mac)
	return a
}

// ioCase is one algorithm combination.
type ioCase struct {
	kex, hostKey, cipher, mac string
}

func (c ioCase) name() string {
	n := c.kex + "/" + c.hostKey + "/" + c.cipher
	if !cipher.IsAEAD(c.cipher) {
		n += "+" + c.mac
	}
	return n
}

// want is what Conn.Algorithms and KexEvent must report for c.
func (c ioCase) want() Algorithms {
	mac := c.mac
	if cipher.IsAEAD(c.cipher) {
		mac = ""
	}
	d := DirectionAlgorithms{Cipher: c.cipher, MAC: mac, Compression: "none"}
	return Algorithms{Kex: c.kex, HostKey: c.hostKey, ClientToServer: d, ServerToClient: d}
}

// opensshWant is what an OpenSSH -vvv or DEBUG3 log must show for c.
func (c ioCase) opensshWant() testpeer.Negotiation {
	mac := c.mac
	if cipher.IsAEAD(c.cipher) {
		mac = "<implicit>"
	}
	return testpeer.Negotiation{
		Kex: c.kex, HostKey: c.hostKey,
		CipherCtoS: c.cipher, MACCtoS: mac, CompressionCtoS: "none",
		CipherStoC: c.cipher, MACStoC: mac, CompressionStoC: "none",
	}
}

// transport restricts every algorithm list to c's (hmac-sha1 is enabled
// this way too: it is supported but not a default).
func (c ioCase) transport() TransportConfig {
	return TransportConfig{
		KexAlgorithms:     []string{c.kex},
		HostKeyAlgorithms: []string{c.hostKey},
		Ciphers:           []string{c.cipher},
		MACs:              []string{c.mac},
		// dbclient asks for zlib@openssh.com first, which a server
		// offers by default; these cases are about the other lists.
		Compression:   []string{CompressionNone},
		RekeyInterval: -1,
	}
}

// ioMatrix lists every cipher × MAC with base's kex and host key (AEAD
// ciphers once: their MAC is not negotiated), every kex with base's
// cipher and host key, and every host key algorithm with base's kex, without
// duplicates. base must be in a.
func ioMatrix(t testing.TB, a ioAlgos, base ioCase) []ioCase {
	t.Helper()
	for _, chk := range []struct {
		name string
		list []string
	}{{base.kex, a.kex}, {base.hostKey, a.hostKey}, {base.cipher, a.cipher}, {base.mac, a.mac}} {
		if !slices.Contains(chk.list, chk.name) {
			t.Fatalf("base algorithm %s is not supported by both sides (%v)", chk.name, chk.list)
		}
	}
	var out []ioCase
	seen := map[ioCase]bool{}
	add := func(c ioCase) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, ci := range a.cipher {
		if cipher.IsAEAD(ci) {
			add(ioCase{base.kex, base.hostKey, ci, base.mac})
			continue
		}
		for _, m := range a.mac {
			add(ioCase{base.kex, base.hostKey, ci, m})
		}
	}
	for _, k := range a.kex {
		add(ioCase{k, base.hostKey, base.cipher, base.mac})
	}
	for _, hk := range a.hostKey {
		add(ioCase{base.kex, hk, base.cipher, base.mac})
	}
	return out
}

// ioKeyType is the public key type (key blob name) behind a host key
// signature algorithm.
func ioKeyType(algo string) string {
	switch algo {
	case kex.HostKeyRSASHA256, kex.HostKeyRSASHA512:
		return ssh.KeyAlgoRSA
	}
	return algo
}

// ioSigner returns the helpers' test host key that serves algo.
func ioSigner(t testing.TB, algo string) ssh.Signer {
	t.Helper()
	for _, s := range allHostKeys(t) {
		if s.PublicKey().Type() == ioKeyType(algo) {
			return s
		}
	}
	t.Fatalf("no test host key for %s", algo)
	return nil
}

// ioMarker returns a unique token for DEBUG messages that peers log.
func ioMarker(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "sshtap-interop-" + hex.EncodeToString(b[:])
}

// ioDrain returns the events already queued on sub without waiting.
func ioDrain(sub *Subscription) []Event {
	var evs []Event
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// ioCheckConn checks what every client connection must show after Dial.
func ioCheckConn(t testing.TB, conn *Conn, want Algorithms, serverVersionPrefix string) {
	t.Helper()
	if got := conn.Algorithms(); got != want {
		t.Errorf("Algorithms() = %+v, want %+v", got, want)
	}
	if !conn.Strict() {
		t.Error("strict kex not in force (the peer has the kex-strict backport)")
	}
	if v := conn.ServerVersion(); !strings.HasPrefix(v, serverVersionPrefix) {
		t.Errorf("ServerVersion() = %q, want prefix %q", v, serverVersionPrefix)
	}
	pub, err := ssh.ParsePublicKey(conn.HostKey())
	if err != nil {
		t.Errorf("HostKey(): %v", err)
	} else if pub.Type() != ioKeyType(want.HostKey) {
		t.Errorf("host key type %s for algorithm %s", pub.Type(), want.HostKey)
	}
	if conn.Err() != nil {
		t.Errorf("Err() = %v right after Dial", conn.Err())
	}
}

// ioRefusedRekey runs Conn.Rekey against a peer that answers our KEXINIT
// with UNIMPLEMENTED (OpenSSH before user authentication) and checks that
// the rekey was abandoned cleanly: ErrRekeyRefused, the Conn alive with the
// old algorithms, no completed key exchange.
func ioRefusedRekey(t testing.TB, ctx context.Context, conn *Conn) {
	t.Helper()
	want := conn.Algorithms()
	sub := conn.Subscribe(ctx, KindKexStart|KindKex|KindUnimplemented)
	defer sub.Close()
	if err := conn.Rekey(ctx); !errors.Is(err, ErrRekeyRefused) {
		t.Fatalf("Rekey() = %v, want ErrRekeyRefused", err)
	}
	if err := conn.Err(); err != nil {
		t.Fatalf("Err() = %v after a refused rekey", err)
	}
	if got := conn.Algorithms(); got != want {
		t.Errorf("Algorithms() = %+v after a refused rekey, want %+v", got, want)
	}
	if n := conn.Stats().Rekeys; n != 0 {
		t.Errorf("Stats().Rekeys = %d after a refused rekey", n)
	}
	// Both events are published before Rekey returns.
	var starts, unimpl, done int
	for _, ev := range ioDrain(sub) {
		switch e := ev.(type) {
		case *KexStartEvent:
			if e.Initial || e.Remote {
				t.Errorf("KexStartEvent %+v, want a local rekey", e)
			}
			starts++
		case *UnimplementedEvent:
			if !e.Remote {
				t.Errorf("UnimplementedEvent %+v, want one from the peer", e)
			}
			unimpl++
		case *KexEvent:
			done++
		}
	}
	if starts != 1 || unimpl != 1 || done != 0 {
		t.Errorf("events: %d KexStart, %d Unimplemented, %d Kex; want 1, 1, 0", starts, unimpl, done)
	}
}

// ioAcceptedRekey runs Conn.Rekey against a peer that performs it and
// checks the completed non-initial strict key exchange.
func ioAcceptedRekey(t testing.TB, ctx context.Context, conn *Conn, n uint64) {
	t.Helper()
	want := conn.Algorithms()
	sid := slices.Clone(conn.SessionID())
	sub := conn.Subscribe(ctx, KindKex)
	defer sub.Close()
	if err := conn.Rekey(ctx); err != nil {
		t.Fatalf("Rekey #%d: %v", n, err)
	}
	evs := collect(t, sub, ioTimeout, func(e Event) bool { _, ok := e.(*KexEvent); return ok })
	ke, ok := evs[len(evs)-1].(*KexEvent)
	if !ok {
		t.Fatalf("rekey #%d: no KexEvent: %v", n, evs)
	}
	if ke.Initial || !ke.Strict || ke.Algorithms != want || !slices.Equal(ke.HostKey, conn.HostKey()) {
		t.Errorf("rekey #%d KexEvent {Initial:%v Strict:%v Algorithms:%+v}, want a strict rekey with %+v",
			n, ke.Initial, ke.Strict, ke.Algorithms, want)
	}
	if got := conn.Stats().Rekeys; got != n {
		t.Errorf("Stats().Rekeys = %d, want %d", got, n)
	}
	if !slices.Equal(conn.SessionID(), sid) {
		t.Error("session ID changed by a rekey")
	}
}

// --- our client against OpenSSH sshd ---------------------------------------

// ioStartSSHD starts sshd with a host key of every type and nothing
// restricted. The legacy algorithms sshtap supports but sshd 9.2 leaves out
// by default are added ("+"), so that the whole intersection is reachable.
func ioStartSSHD(t testing.TB) *testpeer.SSHD {
	t.Helper()
	return testpeer.StartSSHD(t, testpeer.SSHDOptions{
		AuthorizedKeys: []*testpeer.Key{},
		Config: []string{
			"KexAlgorithms +" + kex.DHGroup14SHA1 + "," + kex.DHGroup1SHA1 + "," + kex.DHGexSHA1,
			"HostKeyAlgorithms +" + kex.HostKeyRSA,
			"Ciphers +" + strings.Join([]string{cipher.AES128CBC, cipher.AES192CBC, cipher.AES256CBC, cipher.TripleDESCBC}, ","),
			"MACs +" + cipher.HMACSHA196 + "," + cipher.HMACMD5,
		},
	})
}

// TestInteropClientSSHD connects our client to one sshd for every
// algorithm of the matrix: Dial up to SERVICE_ACCEPT, the algorithms are
// the restricted ones, a pre-auth rekey is refused (sshd answers KEXINIT
// with UNIMPLEMENTED) and the connection goes on: sshd logs the DEBUG
// message we send afterwards.
func TestInteropClientSSHD(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "sshd", "ssh")
	testpeer.RequireRoot(t)
	algos := ioPeerAlgos(t, "sshd", "HostKeyAlgorithms")
	s := ioStartSSHD(t)
	cb, err := knownhosts.New(s.KnownHostsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := ioMatrix(t, algos, ioCase{kex.Curve25519SHA256, kex.HostKeyED25519, cipher.AES128CTR, cipher.HMACSHA256})
	t.Logf("%d combinations", len(cases))
	// Sequential: each case reads its own part of sshd's log.
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			ctx := ioContext(t)
			start := len(s.Log())
			conn, err := Dial(ctx, "tcp", s.Addr, &Config{NoAuth: true, TransportConfig: c.transport(), HostKeyCallback: cb})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			ioCheckConn(t, conn, c.want(), "SSH-2.0-OpenSSH_9.2")
			ioRefusedRekey(t, ctx, conn)

			marker := ioMarker(t)
			if err := conn.SendIgnore(ctx, []byte(marker)); err != nil {
				t.Fatalf("SendIgnore after the refused rekey: %v", err)
			}
			if err := conn.SendDebug(ctx, false, marker); err != nil {
				t.Fatalf("SendDebug after the refused rekey: %v", err)
			}
			log := s.WaitLog(t, "Remote: "+marker)[start:]
			// From our connection on: the previous one's end may be
			// logged after start.
			from := fmt.Sprintf("Connection from 127.0.0.1 port %d ", conn.LocalAddr().(*net.TCPAddr).Port)
			i := strings.Index(log, from)
			if i < 0 {
				t.Fatalf("sshd's log has no %q:\n%s", from, log)
			}
			ioCheckSSHDLog(t, log[i:], marker, c.opensshWant())
			if err := conn.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if err := conn.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			// sshd logs a connection's end asynchronously to our Close:
			// wait for it, or it lands among the next case's lines
			// (after its "Connection from") and looks like that
			// connection's premature end.
			s.WaitLog(t, fmt.Sprintf("Disconnected from 127.0.0.1 port %d ", conn.LocalAddr().(*net.TCPAddr).Port))
		})
	}
}

// ioCheckSSHDLog checks sshd's log of one connection (log starts with
// it and has no other connection's lines before the marker): it negotiated want,
// refused our KEXINIT as a protocol error (answered with UNIMPLEMENTED) and
// then still decrypted and logged our DEBUG message.
func ioCheckSSHDLog(t testing.TB, log, marker string, want testpeer.Negotiation) {
	t.Helper()
	if got := testpeer.ParseSSHLog(log).FirstKex(); got != want {
		t.Errorf("sshd negotiated %+v, want %+v", got, want)
	}
	refused := strings.Index(log, "dispatch_protocol_error: type 20 ")
	debug := strings.Index(log, "Remote: "+marker)
	if refused < 0 || refused > debug {
		t.Errorf("sshd's log has no refused KEXINIT before our DEBUG message:\n%s", log)
	}
	for _, bad := range []string{"fatal", "Connection closed", "Disconnected from"} {
		if i := strings.Index(log, bad); i >= 0 && i < debug {
			t.Errorf("sshd's log has %q before our DEBUG message:\n%s", bad, log)
		}
	}
}

// TestInteropClientSSHDInetd runs our client over the io.ReadWriter seam:
// sshd -i on pipes, no listening socket, default algorithms on both sides.
func TestInteropClientSSHDInetd(t *testing.T) {
	t.Parallel()
	pc := testpeer.SSHDInetd(t, testpeer.SSHDOptions{AuthorizedKeys: []*testpeer.Key{}})
	ctx := ioContext(t)
	var seen ssh.PublicKey
	cfg := &Config{NoAuth: true,
		Addr: "sshd-inetd",
		HostKeyCallback: func(addr string, _ net.Addr, key ssh.PublicKey) error {
			seen = key
			if addr != "sshd-inetd" {
				return fmt.Errorf("callback got address %q", addr)
			}
			for _, k := range pc.HostKeys {
				if k.Is(key) {
					return nil
				}
			}
			return fmt.Errorf("unknown host key %s", ssh.FingerprintSHA256(key))
		},
	}
	conn, err := NewClientConn(ctx, pc, cfg)
	if err != nil {
		t.Fatalf("NewClientConn over sshd -i: %v", err)
	}
	defer conn.Close()
	// Our defaults against sshd 9.2's: mlkem768x25519 is not in 9.2, so
	// sntrup761x25519 is the first method in common; the host has no
	// certificates, chacha20-poly1305 is first on both sides.
	want := ioCase{kex.Sntrup761X25519, kex.HostKeyED25519, cipher.Chacha20Poly1305, ""}
	ioCheckConn(t, conn, want.want(), "SSH-2.0-OpenSSH_9.2")
	if seen == nil || !slices.Equal(seen.Marshal(), conn.HostKey()) {
		t.Errorf("HostKeyCallback saw %v", seen)
	}
	if conn.RemoteAddr() != nil {
		t.Errorf("RemoteAddr() = %v over pipes", conn.RemoteAddr())
	}
	ioRefusedRekey(t, ctx, conn)
	marker := ioMarker(t)
	if err := conn.SendDebug(ctx, false, marker); err != nil {
		t.Fatalf("SendDebug: %v", err)
	}
	log := pc.WaitLog(t, "Remote: "+marker)
	ioCheckSSHDLog(t, log, marker, want.opensshWant())
	if err := conn.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestInteropClientSSHDNegotiationError: sshd offers only a kex method we
// do not offer by default (a legacy one); Dial fails with a
// *NegotiationError naming both lists.
func TestInteropClientSSHDNegotiationError(t *testing.T) {
	t.Parallel()
	const only = kex.DHGroup1SHA1
	if slices.Contains(kex.DefaultKexAlgos, only) {
		t.Fatalf("%s is offered by default now; pick another kex for this test", only)
	}
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{
		HostKeys:       testpeer.HostKeys(t, testpeer.KeyEd25519),
		AuthorizedKeys: []*testpeer.Key{},
		Config:         []string{"KexAlgorithms " + only},
	})
	ctx := ioContext(t)
	conn, err := Dial(ctx, "tcp", s.Addr, &Config{NoAuth: true, HostKeyCallback: insecure})
	if err == nil {
		conn.Close()
		t.Fatalf("Dial succeeded with %+v", conn.Algorithms())
	}
	var ne *NegotiationError
	if !errors.As(err, &ne) {
		t.Fatalf("Dial: %v (%T), want a *NegotiationError", err, err)
	}
	if ne.What != "kex" {
		t.Errorf("What = %q, want kex", ne.What)
	}
	for _, k := range kex.DefaultKexAlgos {
		if !slices.Contains(ne.Client, k) {
			t.Errorf("Client list %v lacks our %s", ne.Client, k)
		}
	}
	if !slices.Contains(ne.Server, only) || slices.Contains(ne.Server, kex.Curve25519SHA256) {
		t.Errorf("Server list %v, want sshd's [%s ...]", ne.Server, only)
	}
	if msg := err.Error(); !strings.Contains(msg, only) || !strings.Contains(msg, kex.Curve25519SHA256) {
		t.Errorf("error %q does not name both lists", msg)
	}
	// sshd saw the same failure from its side, with our offer.
	log := s.WaitLog(t, "no matching key exchange method found")
	if !strings.Contains(log, "Their offer: "+strings.Join(kex.DefaultKexAlgos, ",")) {
		t.Errorf("sshd's log does not quote our kex offer:\n%s", log)
	}
}

// TestInteropClientSSHDHostKeyCallback: knownhosts.New with sshd's host
// keys accepts; a known_hosts with another key for the address rejects
// with a *HostKeyError wrapping knownhosts' *KeyError.
func TestInteropClientSSHDHostKeyCallback(t *testing.T) {
	t.Parallel()
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: []*testpeer.Key{}})
	edKey := s.HostKeys[slices.IndexFunc(s.HostKeys, func(k *testpeer.Key) bool { return k.Type == testpeer.KeyEd25519 })]

	t.Run("accept", func(t *testing.T) {
		cb, err := knownhosts.New(s.KnownHostsFile(t))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := Dial(ioContext(t), "tcp", s.Addr, &Config{NoAuth: true, HostKeyCallback: cb})
		if err != nil {
			t.Fatalf("Dial with sshd's known_hosts: %v", err)
		}
		defer conn.Close()
		if !slices.Equal(conn.HostKey(), edKey.PublicKey.Marshal()) {
			t.Errorf("HostKey() is not sshd's Ed25519 key")
		}
	})

	reject := func(t *testing.T, knownHostsLine string, wantMismatch bool) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(p, []byte(knownHostsLine+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cb, err := knownhosts.New(p)
		if err != nil {
			t.Fatal(err)
		}
		// NewClientConn on our own net.Conn (Config.Addr names the host
		// for the callback), to know the local port sshd logs.
		nc, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		port := nc.LocalAddr().(*net.TCPAddr).Port
		conn, err := NewClientConn(ioContext(t), nc, &Config{NoAuth: true, Addr: s.Addr, HostKeyCallback: cb})
		if err == nil {
			conn.Close()
			t.Fatal("the handshake accepted a host key known_hosts does not list")
		}
		var he *HostKeyError
		var ke *knownhosts.KeyError
		if !errors.As(err, &he) || !errors.As(err, &ke) {
			t.Fatalf("NewClientConn: %v (%T), want a *HostKeyError wrapping a *knownhosts.KeyError", err, err)
		}
		if mismatch := len(ke.Want) > 0; mismatch != wantMismatch {
			t.Errorf("KeyError.Want = %v; want a mismatch: %v", ke.Want, wantMismatch)
		}
		// Our DISCONNECT reached sshd (allowed during strict kex).
		s.WaitLog(t, fmt.Sprintf("Received disconnect from 127.0.0.1 port %d:9: host key not verifiable", port))
	}
	t.Run("reject-other-key", func(t *testing.T) {
		other := testpeer.NewKey(t, testpeer.KeyEd25519)
		reject(t, other.KnownHostsLine(s.Addr), true)
	})
	t.Run("reject-unknown-host", func(t *testing.T) {
		reject(t, edKey.KnownHostsLine("127.0.0.1:1"), false)
	})
}

// --- our client against dropbear ------------------------------------------

// TestInteropClientDropbear connects our client to dropbear for every
// algorithm of the matrix. Dropbear performs a key exchange whenever it
// gets a KEXINIT, before authentication too: Rekey completes (twice, the
// second proving that both sides are in step after the first) with a strict
// non-initial KexEvent.
func TestInteropClientDropbear(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "dropbear")
	testpeer.RequireRoot(t)
	algos := ioPeerAlgos(t, "dropbear", "key")
	// dropbear takes at most four -r keys, so two instances cover the five
	// key types; both have an RSA key (dropbear offers rsa-sha2-256 and
	// ssh-rsa in any case and dies if one is picked without one).
	none := []*testpeer.Key{}
	dA := testpeer.StartDropbear(t, testpeer.DropbearOptions{AuthorizedKeys: none,
		HostKeys: testpeer.HostKeys(t, testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyECDSA384, testpeer.KeyRSA3072)})
	dB := testpeer.StartDropbear(t, testpeer.DropbearOptions{AuthorizedKeys: none,
		HostKeys: testpeer.HostKeys(t, testpeer.KeyECDSA521, testpeer.KeyRSA3072)})
	cbA, err := knownhosts.New(dA.KnownHostsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cbB, err := knownhosts.New(dB.KnownHostsFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := ioMatrix(t, algos, ioCase{kex.Curve25519SHA256, kex.HostKeyED25519, cipher.AES128CTR, cipher.HMACSHA256})
	t.Logf("%d combinations", len(cases))
	for _, c := range cases {
		d, cb := dA, cbA
		if c.hostKey == kex.HostKeyECDSA521 {
			d, cb = dB, cbB
		}
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			ctx := ioContext(t)
			conn, err := Dial(ctx, "tcp", d.Addr, &Config{NoAuth: true, TransportConfig: c.transport(), HostKeyCallback: cb})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			ioCheckConn(t, conn, c.want(), "SSH-2.0-dropbear_2022.83")
			ioAcceptedRekey(t, ctx, conn, 1)
			if err := conn.SendIgnore(ctx, []byte("after rekey")); err != nil {
				t.Fatalf("SendIgnore: %v", err)
			}
			ioAcceptedRekey(t, ctx, conn, 2)
			if err := conn.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if err := conn.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// --- real clients against our server ---------------------------------------

// ioServed is what our server saw on one connection.
type ioServed struct {
	hsErr    error
	rekeyErr error // from Conn.Rekey when the server was asked to rekey
	strict   bool
	kexStart []*KexStartEvent
	kex      []*KexEvent
	unimpl   []*UnimplementedEvent
	userAuth bool   // the client's USERAUTH_REQUEST arrived
	closed   error  // the Conn's error if it ended before that
	received []byte // the first bytes the client sent (ioServer.tap)
}

func (r *ioServed) String() string {
	return fmt.Sprintf("handshake=%v rekey=%v strict=%v kexStart=%d kex=%d unimplemented=%d userauth=%v closed=%v",
		r.hsErr, r.rekeyErr, r.strict, len(r.kexStart), len(r.kex), len(r.unimpl), r.userAuth, r.closed)
}

// ioServer is our server on 127.0.0.1: NewServerConn-style handshakes on
// accepted connections, one result per connection on results.
type ioServer struct {
	addr    string
	cfg     *ServerConfig
	rekey   bool
	tap     bool // record what clients send (ioServed.received)
	results chan *ioServed
}

// ioTapConn records the first bytes read from a connection.
type ioTapConn struct {
	net.Conn
	mu  sync.Mutex
	got []byte
}

func (c *ioTapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if len(c.got) < 64<<10 {
		c.got = append(c.got, b[:n]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *ioTapConn) received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// ioStartServer listens on 127.0.0.1:0 and serves connections until the
// test ends. With rekey the server calls Conn.Rekey right after the
// handshake; with tap it records what clients send.
func ioStartServer(t testing.TB, cfg *ServerConfig, rekey, tap bool) *ioServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &ioServer{addr: ln.Addr().String(), cfg: cfg, rekey: rekey, tap: tap, results: make(chan *ioServed, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { srv.serve(ctx, nc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
	})
	return srv
}

// serve runs one connection: the transport handshake, an optional rekey
// (forced: sshtap servers do not rekey before authentication, but these
// tests show what real clients do with one), then user authentication,
// which fails (no methods are configured) and ends the connection.
func (s *ioServer) serve(ctx context.Context, nc net.Conn) {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	r := &ioServed{}
	var tap *ioTapConn
	if s.tap {
		tap = &ioTapConn{Conn: nc}
		nc = tap
	}
	c := ServerConn(nc, s.cfg)
	sub := c.Subscribe(ctx, KindKexStart|KindKex|KindUnimplemented|KindUserAuth)
	if s.rekey {
		// Before the auth runner starts, so a client's early
		// USERAUTH_REQUEST (dbclient) waits in the queue meanwhile.
		r.rekeyErr = c.forceRekeyForTest(ctx)
	}
	hs := make(chan error, 1)
	go func() { hs <- c.Handshake(ctx) }()
events:
	for ev := range sub.Events() {
		switch e := ev.(type) {
		case *KexStartEvent:
			r.kexStart = append(r.kexStart, e)
		case *KexEvent:
			r.kex = append(r.kex, e)
		case *UnimplementedEvent:
			r.unimpl = append(r.unimpl, e)
		case *UserAuthEvent:
			r.userAuth = true
			break events
		case *ClosedEvent:
			r.closed = e.Err
			if len(r.kex) == 0 {
				r.hsErr = e.Err // the transport handshake failed
			}
		}
	}
	r.strict = c.Strict()
	c.Close()
	sub.Close()
	<-hs
	if tap != nil {
		r.received = tap.received()
	}
	select {
	case s.results <- r:
	case <-ctx.Done():
	}
}

// result returns what the server saw on the connection the client just
// made.
func (s *ioServer) result(t testing.TB) *ioServed {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(ioTimeout):
		t.Fatal("our server reported no connection")
		return nil
	}
}

// ioCheckServed checks our server's side of a connection that reached user
// authentication with c's algorithms.
func ioCheckServed(t testing.TB, r *ioServed, c ioCase) {
	t.Helper()
	if r.hsErr != nil {
		t.Fatalf("server handshake: %v", r.hsErr)
	}
	if !r.userAuth {
		t.Errorf("server never got the client's USERAUTH_REQUEST: %v", r)
	}
	if !r.strict {
		t.Error("server: strict kex not in force")
	}
	if len(r.kex) == 0 {
		t.Fatalf("server: no KexEvent: %v", r)
	}
	ke := r.kex[0]
	if !ke.Initial || !ke.Strict || ke.Algorithms != c.want() {
		t.Errorf("server KexEvent {Initial:%v Strict:%v Algorithms:%+v}, want %+v", ke.Initial, ke.Strict, ke.Algorithms, c.want())
	}
	if !slices.Equal(ke.HostKey, ioSigner(t, c.hostKey).PublicKey().Marshal()) {
		t.Errorf("server KexEvent.HostKey is not the %s test key", c.hostKey)
	}
}

// ioServerConfig offers everything sshtap supports (hmac-sha1 and the
// legacy algorithms included) with a host key of every type; the client's
// restriction decides.
func ioServerConfig(t testing.TB) *ServerConfig {
	return &ServerConfig{
		TransportConfig: TransportConfig{
			KexAlgorithms: kex.SupportedKexAlgos,
			Ciphers:       cipher.SupportedCiphers,
			MACs:          cipher.SupportedMACs,
			RekeyInterval: -1,
		},
		HostKeys:     allHostKeys(t),
		AllowSHA1RSA: true,
	}
}

// ioRunSSH runs the OpenSSH client with -vvv against srv, without a
// remote command, and returns its result and our server's.
func ioRunSSH(t testing.TB, srv *ioServer, options ...string) (*testpeer.ClientResult, *ioServed) {
	t.Helper()
	res := testpeer.SSHClient{
		Addr:    srv.addr,
		Options: append(options, "ConnectTimeout=10"),
		Flags:   []string{"-N"},
		Timeout: ioTimeout,
	}.Run(t)
	if res.TimedOut {
		t.Fatalf("ssh timed out:\n%s", res)
	}
	return res, srv.result(t)
}

// TestInteropSSHClient runs ssh -vvv against our server for every
// algorithm of the matrix, restricting ssh with -o to one combination.
func TestInteropSSHClient(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	algos := ioPeerAlgos(t, "ssh", "HostKeyAlgorithms")
	srv := ioStartServer(t, ioServerConfig(t), false, false)
	cases := ioMatrix(t, algos, ioCase{kex.Curve25519SHA256, kex.HostKeyED25519, cipher.AES128CTR, cipher.HMACSHA256})
	t.Logf("%d combinations", len(cases))
	// Sequential: one server, one result per connection in order.
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			res, served := ioRunSSH(t, srv,
				"KexAlgorithms="+c.kex, "HostKeyAlgorithms="+c.hostKey,
				"Ciphers="+c.cipher, "MACs="+c.mac)
			l := res.SSHLog()
			if got := l.FirstKex(); got != c.opensshWant() || len(l.Kex) != 1 {
				t.Errorf("ssh negotiated %+v (%d kex), want %+v", got, len(l.Kex), c.opensshWant())
			}
			if !l.ServiceAccepted || !l.ReachedUserAuth() {
				t.Errorf("ssh did not reach user auth:\n%s", res)
			}
			if l.RemoteVersion != "sshtap_0.1" {
				t.Errorf("ssh saw remote version %q", l.RemoteVersion)
			}
			fp := ssh.FingerprintSHA256(ioSigner(t, c.hostKey).PublicKey())
			if !strings.HasSuffix(l.ServerHostKey, " "+fp) {
				t.Errorf("ssh saw host key %q, want %s", l.ServerHostKey, fp)
			}
			// No auth method is configured: ssh gives up ("Permission
			// denied") or reads the DISCONNECT we send after its attempt.
			if res.ExitCode != 255 || (!strings.Contains(res.Stderr, "Permission denied") &&
				(l.Disconnect == nil || l.Disconnect.Reason != int(DisconnectByApplication))) {
				t.Errorf("ssh exit %d, disconnect %+v; want 255 after a refused auth", res.ExitCode, l.Disconnect)
			}
			ioCheckServed(t, served, c)
			if t.Failed() {
				t.Logf("server: %v\nssh:\n%s", served, res)
			}
		})
	}
	// ssh's own defaults: OpenSSH 9.x puts sntrup761x25519-sha512 first,
	// and a plain ssh to sshtap negotiates it.
	t.Run("defaults", func(t *testing.T) {
		res, _ := ioRunSSH(t, srv)
		if got := res.SSHLog().FirstKex().Kex; got != kex.Sntrup761X25519 && got != kex.Sntrup761X25519OpenSSH {
			t.Errorf("plain ssh negotiated kex %q, want sntrup761x25519-sha512\n%s", got, res)
		}
	})
}

// TestInteropSSHClientServerRekey makes our server start a rekey right
// after the first key exchange, while OpenSSH's client is about to
// authenticate. OpenSSH 9.2's client does not accept that: between its
// NEWKEYS and the end of user authentication it dispatches only user auth
// messages (sshconnect2.c, input_userauth_error), so our KEXINIT is fatal
// to it: it logs "bad message during authentication: type 20" and closes
// without a DISCONNECT, and our Rekey ends with the connection. (That is
// also why OpenSSH itself never rekeys before authentication: packet.c,
// "client can't cope with rekeying pre-auth". ssh cannot be made to start a
// rekey from its side here either: RekeyLimit is ignored before auth.)
func TestInteropSSHClientServerRekey(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	srv := ioStartServer(t, ioServerConfig(t), true, false)
	res, served := ioRunSSH(t, srv, "KexAlgorithms=curve25519-sha256", "HostKeyAlgorithms=ssh-ed25519")
	l := res.SSHLog()
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "bad message during authentication: type 20") {
		t.Errorf("ssh did not die on our pre-auth KEXINIT:\n%s", res)
	}
	if len(l.Kex) != 1 || l.Authenticated {
		t.Errorf("ssh did %d key exchanges, authenticated %v", len(l.Kex), l.Authenticated)
	}
	if served.hsErr != nil {
		t.Fatalf("server handshake: %v", served.hsErr)
	}
	if err := served.rekeyErr; !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server Rekey() = %v, want the connection closed by ssh", err)
	}
	if len(served.kexStart) != 2 || served.kexStart[1].Initial || served.kexStart[1].Remote ||
		len(served.kex) != 1 || !served.kex[0].Initial || served.userAuth {
		t.Errorf("server: %v; want the initial kex, a local rekey start and nothing else", served)
	}
	if t.Failed() {
		t.Logf("server: %v\nssh:\n%s", served, res)
	}
}

// --- dbclient against our server ---------------------------------------------

// ioRunDBClient runs dbclient against srv without a remote command.
func ioRunDBClient(t testing.TB, srv *ioServer, args ...string) (*testpeer.ClientResult, *ioServed) {
	t.Helper()
	res := testpeer.DBClient{Addr: srv.addr, Args: append(args, "-N", "-T"), Timeout: ioTimeout}.Run(t)
	if res.TimedOut {
		t.Fatalf("dbclient timed out:\n%s", res)
	}
	return res, srv.result(t)
}

// TestInteropDBClient runs dropbear's client against our server. dbclient
// has no option for kex or host key algorithms, so the server is restricted
// to each case's algorithms, and dbclient's -c/-m to its cipher and MAC.
//
// dbclient always sends a guessed first kex packet (for curve25519-sha256
// and ssh-ed25519, its first entries); we do not offer
// kexguess2@matt.ucc.asn.au, so by RFC 4253 §7 the guess is wrong whenever
// our first kex or host key algorithm differs, and the guessed packet must
// be dropped. Every case but curve25519-sha256/ssh-ed25519 is such a wrong
// guess (e.g. the server restricted to ecdh-sha2-nistp256): had we
// processed the curve25519 ECDH_INIT as a nistp256 one, the kex would fail.
func TestInteropDBClient(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "dbclient")
	algos := ioPeerAlgos(t, "dbclient", "key")
	cases := ioMatrix(t, algos, ioCase{kex.Curve25519SHA256, kex.HostKeyED25519, cipher.AES128CTR, cipher.HMACSHA256})
	t.Logf("%d combinations", len(cases))
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			cfg := &ServerConfig{TransportConfig: c.transport(), HostKeys: allHostKeys(t), AllowSHA1RSA: true}
			srv := ioStartServer(t, cfg, false, false)
			res, served := ioRunDBClient(t, srv, "-c", c.cipher, "-m", c.mac)
			ioCheckServed(t, served, c)
			// dbclient ends on our DISCONNECT or, when our empty method
			// list arrives first, on its own.
			if !strings.Contains(res.Stderr, "exited: Disconnect received") && !strings.Contains(res.Stderr, "No auth methods could be used") {
				t.Errorf("dbclient did not end on our DISCONNECT or on its auth failure:\n%s", res)
			}
			if t.Failed() {
				t.Logf("server: %v\ndbclient:\n%s", served, res)
			}
		})
	}
}

// TestInteropDBClientServerRekey makes our server start a rekey right after
// the first key exchange with dbclient. Unlike OpenSSH's client, dbclient
// accepts a key exchange at any time: the rekey completes (strict, same
// algorithms), dbclient goes on to user authentication, and it decrypts the
// DISCONNECT we send under the new keys.
func TestInteropDBClientServerRekey(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "dbclient")
	srv := ioStartServer(t, ioServerConfig(t), true, false)
	res, served := ioRunDBClient(t, srv)
	if served.hsErr != nil || served.rekeyErr != nil {
		t.Fatalf("server: handshake %v, rekey %v\n%s", served.hsErr, served.rekeyErr, res)
	}
	if len(served.kex) != 2 || !served.kex[0].Initial || served.kex[1].Initial || !served.kex[1].Strict ||
		served.kex[1].Algorithms != served.kex[0].Algorithms || !served.userAuth {
		t.Errorf("server: %v; want the initial kex, a completed strict rekey and user auth", served)
	}
	if !strings.Contains(res.Stderr, "exited: Disconnect received") && !strings.Contains(res.Stderr, "No auth methods could be used") {
		t.Errorf("dbclient did not read our messages after the rekey:\n%s", res)
	}
	if t.Failed() {
		t.Logf("server: %v\ndbclient:\n%s", served, res)
	}
}

// ioPlainPackets splits what a client sent into the payloads of its
// unencrypted packets: those after its identification line, up to and
// including its first NEWKEYS.
func ioPlainPackets(t testing.TB, b []byte) [][]byte {
	t.Helper()
	for {
		i := slices.Index(b, '\n')
		if i < 0 {
			t.Fatalf("no identification line in %q", b)
		}
		line := b[:i]
		b = b[i+1:]
		if strings.HasPrefix(string(line), "SSH-") {
			break
		}
	}
	var out [][]byte
	for len(b) >= 5 {
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		pad := int(b[4])
		if n < pad+2 || len(b) < 4+n {
			t.Fatalf("bad plaintext packet (length %d, padding %d, %d bytes left)", n, pad, len(b))
		}
		p := b[5 : 4+n-pad]
		out = append(out, p)
		b = b[4+n:]
		if p[0] == wire.MsgNewKeys {
			return out
		}
	}
	t.Fatalf("no NEWKEYS among the client's packets")
	return nil
}

// TestInteropDBClientGuess checks, from the bytes dbclient sent, that it
// really guessed (KEXINIT with first_kex_packet_follows and a curve25519
// ECDH_INIT right behind it) and that our server handled both outcomes:
// with the server restricted to ecdh-sha2-nistp256 the guess is wrong, we
// drop it and dbclient sends a second, nistp256 ECDH_INIT; with
// curve25519-sha256 and ssh-ed25519 first on both sides the guess is used.
func TestInteropDBClientGuess(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "dbclient")
	for _, tc := range []struct {
		name      string
		kexAlgos  []string
		want      ioCase
		initSizes []int // Q_C lengths of the client's ECDH_INITs
	}{
		{"wrong", []string{kex.ECDHP256},
			ioCase{kex.ECDHP256, kex.HostKeyED25519, cipher.AES128CTR, cipher.HMACSHA256}, []int{32, 65}},
		{"right", []string{kex.Curve25519SHA256, kex.ECDHP256},
			ioCase{kex.Curve25519SHA256, kex.HostKeyED25519, cipher.AES128CTR, cipher.HMACSHA256}, []int{32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &ServerConfig{
				TransportConfig: TransportConfig{KexAlgorithms: tc.kexAlgos, Compression: []string{CompressionNone}, RekeyInterval: -1},
				HostKeys:        allHostKeys(t), // ssh-ed25519 first, like dbclient
			}
			srv := ioStartServer(t, cfg, false, true)
			res, served := ioRunDBClient(t, srv, "-c", tc.want.cipher, "-m", tc.want.mac)
			ioCheckServed(t, served, tc.want)
			if !strings.Contains(res.Stderr, "exited: Disconnect received") && !strings.Contains(res.Stderr, "No auth methods could be used") {
				t.Errorf("dbclient did not end on our DISCONNECT or its auth failure:\n%s", res)
			}
			pkts := ioPlainPackets(t, served.received)
			var ki wire.KexInit
			if err := ki.Unmarshal(pkts[0]); err != nil {
				t.Fatalf("dbclient's first packet: %v", err)
			}
			if !ki.FirstKexFollows || ki.KexAlgos[0] != kex.Curve25519SHA256 || ki.HostKeyAlgos[0] != kex.HostKeyED25519 {
				t.Fatalf("dbclient's KEXINIT: first_kex_packet_follows %v, kex %v, host keys %v",
					ki.FirstKexFollows, ki.KexAlgos, ki.HostKeyAlgos)
			}
			var sizes []int
			for _, p := range pkts[1:] {
				switch p[0] {
				case wire.MsgKexECDHInit:
					var m wire.KexECDHInit
					if err := m.Unmarshal(p); err != nil {
						t.Errorf("dbclient's ECDH_INIT: %v", err)
					}
					sizes = append(sizes, len(m.ClientPub))
				case wire.MsgNewKeys:
				default:
					t.Errorf("dbclient sent %s during the initial kex", wire.MsgName(p[0]))
				}
			}
			if !slices.Equal(sizes, tc.initSizes) {
				t.Errorf("dbclient's ECDH_INIT public keys are %v bytes long, want %v", sizes, tc.initSizes)
			}
			if t.Failed() {
				t.Logf("server: %v\ndbclient:\n%s", served, res)
			}
		})
	}
}

// forceRekeyForTest starts a server rekey before authentication, which
// sshtap servers otherwise refuse (ErrRekeyBeforeAuth), to show what real
// clients do with one.
func (c *Conn) forceRekeyForTest(ctx context.Context) error {
	c.omu.Lock()
	c.preAuthRekey = true
	c.omu.Unlock()
	return c.Rekey(ctx)
}
