package sshtap

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/kex"
)

// TestDefaultOfferHasNoLegacy: the KEXINIT that a default client and a
// default server send names no legacy algorithm.
func TestDefaultOfferHasNoLegacy(t *testing.T) {
	// The lists are the same in both roles.
	prop, err := (&TransportConfig{}).proposal(kex.DefaultHostKeyAlgos)
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range [][]string{prop.Kex, prop.HostKey, prop.Ciphers, prop.MACs} {
		for _, n := range list {
			if kex.IsLegacy(n) || cipher.IsLegacy(n) {
				t.Errorf("default offer has legacy %s", n)
			}
		}
	}
	testKeys(t)
	c := &Conn{cfg: &TransportConfig{}, scfg: &ServerConfig{HostKeys: allHostKeys(t)}}
	hk, err := c.serverHostKeyAlgos()
	if err != nil || slices.ContainsFunc(hk, kex.IsLegacy) {
		t.Errorf("default server host key algorithms %v, %v", hk, err)
	}
}

// TestProposalModifiers: "+name" appends to the defaults, "-" removes,
// "^" puts first; an unknown name is an error naming the field and the
// name.
func TestProposalModifiers(t *testing.T) {
	tc := &TransportConfig{
		KexAlgorithms: []string{"+" + kex.DHGroup1SHA1},
		Ciphers:       []string{"^" + cipher.TripleDESCBC + "," + cipher.AES128CBC},
		MACs:          []string{"-hmac-sha2-512*"},
	}
	prop, err := tc.proposal(kex.DefaultHostKeyAlgos)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prop.Kex, append(slices.Clone(kex.DefaultKexAlgos), kex.DHGroup1SHA1)) {
		t.Errorf("kex %v", prop.Kex)
	}
	if !slices.Equal(prop.Ciphers, append([]string{cipher.TripleDESCBC, cipher.AES128CBC}, cipher.DefaultCiphers...)) {
		t.Errorf("ciphers %v", prop.Ciphers)
	}
	for _, m := range prop.MACs {
		if strings.HasPrefix(m, "hmac-sha2-512") {
			t.Errorf("macs %v kept %s", prop.MACs, m)
		}
	}
	_, err = (&TransportConfig{Ciphers: []string{"+blowfish-cbc"}}).proposal(nil)
	var ue *kex.UnknownAlgorithmError
	if !errors.As(err, &ue) || ue.Name != "blowfish-cbc" || !strings.Contains(err.Error(), "Ciphers") {
		t.Errorf("unknown cipher: %v", err)
	}
}

// TestProposalPatternsNoLegacy: a pattern in a list that is not a "-"
// list never brings in a legacy algorithm or another one offered only on
// request: "aes*" has no CBC cipher, "hmac-*" no hmac-md5, hmac-sha1-96 or
// hmac-sha1, "diffie-hellman-*" no SHA-1 key exchange. Named in full,
// they are offered.
func TestProposalPatternsNoLegacy(t *testing.T) {
	tc := &TransportConfig{
		KexAlgorithms: []string{"diffie-hellman-*"},
		Ciphers:       []string{"aes*"},
		MACs:          []string{"hmac-*"},
	}
	prop, err := tc.proposal(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range [][]string{prop.Kex, prop.Ciphers, prop.MACs} {
		if len(l) == 0 {
			t.Errorf("empty list in %+v", prop)
		}
		for _, a := range l {
			if kex.IsLegacy(a) || cipher.IsLegacy(a) || a == cipher.HMACSHA1 || a == cipher.HMACSHA1ETM {
				t.Errorf("pattern brought in %s: %q", a, l)
			}
		}
	}
	tc = &TransportConfig{Ciphers: []string{"aes*", cipher.AES128CBC}, MACs: []string{"hmac-*", cipher.HMACMD5}}
	if prop, err = tc.proposal(nil); err != nil {
		t.Fatal(err)
	}
	if prop.Ciphers[len(prop.Ciphers)-1] != cipher.AES128CBC || prop.MACs[len(prop.MACs)-1] != cipher.HMACMD5 {
		t.Errorf("named legacy algorithms left out: %q %q", prop.Ciphers, prop.MACs)
	}
	_, err = (&TransportConfig{Ciphers: []string{"*-cbc"}}).proposal(nil)
	var ue *kex.UnknownAlgorithmError
	if !errors.As(err, &ue) || !slices.Contains(ue.Literal, cipher.AES128CBC) {
		t.Errorf("a pattern matching only legacy ciphers: %v", err)
	}
}

// TestLegacyOptInPair: a client and a server that both name the legacy
// algorithms ("+name") negotiate them, report them in KexEvent.Legacy and
// move data; a server naming ssh-rsa in HostKeyAlgorithms signs with it.
// A client that did not opt in fails with a *NegotiationError.
func TestLegacyOptInPair(t *testing.T) {
	testKeys(t)
	legacy := TransportConfig{
		KexAlgorithms:     []string{"^" + kex.DHGexSHA1},
		HostKeyAlgorithms: []string{"^" + kex.HostKeyRSA},
		Ciphers:           []string{"^" + cipher.TripleDESCBC},
		MACs:              []string{"^" + cipher.HMACSHA196},
	}
	scfg := &ServerConfig{TransportConfig: legacy, HostKeys: []ssh.Signer{testRSA}, NoClientAuth: true}
	ccfg := &Config{TransportConfig: legacy, User: "u", HostKeyCallback: insecure}
	p := handshakePair(t, ccfg, scfg)
	a := p.client.Algorithms()
	want := []string{kex.DHGexSHA1, kex.HostKeyRSA, cipher.TripleDESCBC, cipher.HMACSHA196}
	if !slices.Equal(a.Legacy(), want) {
		t.Fatalf("negotiated %+v, legacy %v", a, a.Legacy())
	}
	if err := p.client.SendIgnore(context.Background(), []byte("still works")); err != nil {
		t.Fatal(err)
	}

	only := &ServerConfig{TransportConfig: TransportConfig{Ciphers: []string{cipher.AES128CBC}}, HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true}
	a2, b2 := net.Pipe()
	_, err, _ := tryHandshake(a2, b2, &Config{User: "u", HostKeyCallback: insecure}, only, 20*time.Second)
	var ne *NegotiationError
	if !errors.As(err, &ne) || !strings.HasPrefix(ne.What, "cipher") || !slices.Contains(ne.Server, cipher.AES128CBC) {
		t.Fatalf("default client against an aes128-cbc-only server: %v", err)
	}
}
