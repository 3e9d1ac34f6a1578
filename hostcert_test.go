package sshtap

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/kex"
)

// hostCert certifies a server host key with ca for the given principals,
// valid from an hour ago for an hour.
func hostCert(t testing.TB, ca ssh.Signer, key ssh.Signer, principals ...string) ssh.Signer {
	t.Helper()
	cert := &ssh.Certificate{
		Key:             key.PublicKey(),
		Serial:          7,
		CertType:        ssh.HostCert,
		KeyId:           "test host",
		ValidPrincipals: principals,
		ValidAfter:      uint64(time.Now().Add(-time.Hour).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func testCA(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// A server whose HostKeys hold plain keys and certificates of the same
// keys (as sshd with HostKey and HostCertificate) offers the certificate
// algorithms first and the plain ones too; the client gets what it asks
// for, an RSA certificate with rsa-sha2-256 or -512 signatures on H
// (PROTOCOL.certkeys: "signatures made with a certified key are plain
// signatures"), and a certificate its ssh.CertChecker accepts.
func TestHostCertificateAlgorithms(t *testing.T) {
	testKeys(t)
	ca := testCA(t)
	edCert := hostCert(t, ca, testEd25519, "host.example")
	rsaCert := hostCert(t, ca, testRSA, "host.example")
	scfg := func() *ServerConfig {
		return &ServerConfig{HostKeys: []ssh.Signer{testEd25519, testRSA, edCert, rsaCert}}
	}

	// What the server offers, in its KEXINIT order.
	s := ServerConn(nil, scfg())
	want := []string{kex.HostKeyED25519Cert, kex.HostKeyRSASHA512Cert, kex.HostKeyRSASHA256Cert,
		kex.HostKeyED25519, kex.HostKeyRSASHA512, kex.HostKeyRSASHA256}
	if got, err := s.serverHostKeyAlgos(); err != nil || !slices.Equal(got, want) {
		t.Errorf("server host key algorithms %q (%v), want %q", got, err, want)
	}

	checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, addr string) bool {
		return bytes.Equal(auth.Marshal(), ca.PublicKey().Marshal()) && addr == "host.example:22"
	}}
	for _, tc := range []struct {
		offer   []string // nil: the default list
		want    string
		plain   ssh.Signer
		isCert  bool
		sigAlgo string
	}{
		{nil, kex.HostKeyED25519Cert, testEd25519, true, ssh.KeyAlgoED25519},
		{[]string{kex.HostKeyRSASHA256Cert}, kex.HostKeyRSASHA256Cert, testRSA, true, ssh.KeyAlgoRSASHA256},
		{[]string{kex.HostKeyRSASHA512Cert}, kex.HostKeyRSASHA512Cert, testRSA, true, ssh.KeyAlgoRSASHA512},
		{[]string{kex.HostKeyED25519}, kex.HostKeyED25519, testEd25519, false, ssh.KeyAlgoED25519},
		{[]string{kex.HostKeyRSASHA256}, kex.HostKeyRSASHA256, testRSA, false, ssh.KeyAlgoRSASHA256},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var mu sync.Mutex
			var seen ssh.PublicKey
			ccfg := &Config{
				TransportConfig: TransportConfig{HostKeyAlgorithms: tc.offer},
				Addr:            "host.example:22",
				HostKeyCallback: func(addr string, remote net.Addr, key ssh.PublicKey) error {
					mu.Lock()
					seen = key
					mu.Unlock()
					if _, ok := key.(*ssh.Certificate); ok {
						return checker.CheckHostKey(addr, remote, key)
					}
					return ssh.FixedHostKey(tc.plain.PublicKey())(addr, remote, key)
				},
			}
			p := handshakePair(t, ccfg, scfg())
			if got := p.client.Algorithms().HostKey; got != tc.want {
				t.Errorf("negotiated %s, want %s", got, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			cert, isCert := seen.(*ssh.Certificate)
			if isCert != tc.isCert {
				t.Fatalf("host key %s: certificate %v, want %v", seen.Type(), isCert, tc.isCert)
			}
			if isCert && !bytes.Equal(cert.Key.Marshal(), tc.plain.PublicKey().Marshal()) {
				t.Errorf("the certificate certifies %s, want the %s host key", ssh.FingerprintSHA256(cert.Key), tc.plain.PublicKey().Type())
			}
			if sig, _ := kex.SignatureAlgorithm(p.client.Algorithms().HostKey); sig != tc.sigAlgo {
				t.Errorf("signature algorithm on H %s, want %s", sig, tc.sigAlgo)
			}
		})
	}

	// A certificate for another host name is refused by the checker, and
	// the handshake fails with the callback's error.
	ccfg := &Config{Addr: "other.example:22", HostKeyCallback: checker.CheckHostKey}
	a, b := net.Pipe()
	_, cerr, _ := tryHandshake(a, b, ccfg, scfg(), 20*time.Second)
	var he *HostKeyError
	if !errors.As(cerr, &he) || !strings.Contains(he.Err.Error(), "no authorities for hostname") {
		t.Fatalf("certificate for another host: %v, want a *HostKeyError from the checker", cerr)
	}
}

// hostkeys-00@openssh.com announces the plain keys only, each once, as
// sshd does (it skips certificates): a server with a certificate for each
// of its two keys announces two keys, and proves them on request.
func TestHostCertificateAnnouncement(t *testing.T) {
	testKeys(t)
	ca := testCA(t)
	scfg := &ServerConfig{HostKeys: []ssh.Signer{
		hostCert(t, ca, testEd25519, "h"), testEd25519, testECDSA256, hostCert(t, ca, testECDSA256, "h"),
	}}
	ctx := tctx(t)
	a, b := net.Pipe()
	client := ClientConn(a, &Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer client.Close()
	sub := client.Subscribe(ctx, KindHostKeys)
	defer sub.Close()
	scfg.NoClientAuth = true
	server := ServerConn(b, scfg)
	defer server.Close()
	serr := make(chan error, 1)
	go func() { serr <- server.Handshake(ctx) }()
	if err := client.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-serr; err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 10*time.Second, func(ev Event) bool { _, ok := ev.(*HostKeysEvent); return ok })
	hk, ok := evs[len(evs)-1].(*HostKeysEvent)
	if !ok {
		t.Fatalf("no host keys announced: %v", evs)
	}
	want := [][]byte{testEd25519.PublicKey().Marshal(), testECDSA256.PublicKey().Marshal()}
	if !slices.EqualFunc(hk.Keys, want, bytes.Equal) {
		var got []string
		for _, k := range hk.Keys {
			if pk, err := ssh.ParsePublicKey(k); err == nil {
				got = append(got, pk.Type())
			}
		}
		t.Fatalf("announced %d keys %v, want the plain ed25519 and ecdsa keys", len(hk.Keys), got)
	}
	if err := client.ProveHostKeys(ctx, []ssh.PublicKey{testECDSA256.PublicKey(), testEd25519.PublicKey()}); err != nil {
		t.Fatalf("proving the plain keys of certified host keys: %v", err)
	}
}
