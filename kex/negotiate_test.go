package kex

import (
	"bytes"
	"crypto"
	"errors"
	"slices"
	"strings"
	"testing"

	"sshtap/internal/wire"
)

func ki(kex, hk, ciph, mac, comp string) *wire.KexInit {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	return &wire.KexInit{
		KexAlgos: split(kex), HostKeyAlgos: split(hk),
		CiphersClientServer: split(ciph), CiphersServerClient: split(ciph),
		MACsClientServer: split(mac), MACsServerClient: split(mac),
		CompressionClientServer: split(comp), CompressionServerClient: split(comp),
	}
}

func TestNegotiate(t *testing.T) {
	const (
		ctr    = "aes128-ctr"
		ctr2   = "aes256-ctr"
		chacha = "chacha20-poly1305@openssh.com"
		gcm    = "aes256-gcm@openssh.com"
		h256   = "hmac-sha2-256"
		h512   = "hmac-sha2-512"
	)
	type want struct{ kex, hk, ccs, csc, mcs, msc, zcs, zsc string }
	for _, tc := range []struct {
		name           string
		client, server *wire.KexInit
		tweak          func(c, s *wire.KexInit)
		want           want
		errWhat        string
	}{
		{
			name:   "client order wins",
			client: ki("curve25519-sha256,ecdh-sha2-nistp256", "ssh-ed25519,rsa-sha2-512", ctr2+","+ctr, h512+","+h256, "none,zlib"),
			server: ki("ecdh-sha2-nistp256,curve25519-sha256", "rsa-sha2-512,ssh-ed25519", ctr+","+ctr2, h256+","+h512, "zlib,none"),
			want:   want{"curve25519-sha256", "ssh-ed25519", ctr2, ctr2, h512, h512, "none", "none"},
		},
		{
			name:   "first client entry the server has, skipping unknown ones",
			client: ki("sntrup761x25519-sha512@openssh.com,diffie-hellman-group14-sha256", "ssh-dss,ecdsa-sha2-nistp256", "3des-cbc,"+ctr, "hmac-md5,"+h256, "zlib@openssh.com,none"),
			server: ki("diffie-hellman-group14-sha256", "ecdsa-sha2-nistp256", ctr, h256, "none"),
			want:   want{"diffie-hellman-group14-sha256", "ecdsa-sha2-nistp256", ctr, ctr, h256, h256, "none", "none"},
		},
		{
			name:   "per direction",
			client: ki("curve25519-sha256", "ssh-ed25519", ctr+","+ctr2, h256+","+h512, "none,zlib"),
			server: ki("curve25519-sha256", "ssh-ed25519", ctr+","+ctr2, h256+","+h512, "none,zlib"),
			tweak: func(c, s *wire.KexInit) {
				s.CiphersClientServer = []string{ctr2}
				s.MACsServerClient = []string{h512}
				s.CompressionServerClient = []string{"zlib"}
			},
			want: want{"curve25519-sha256", "ssh-ed25519", ctr2, ctr, h256, h512, "none", "zlib"},
		},
		{
			name:   "AEAD skips MAC negotiation",
			client: ki("curve25519-sha256", "ssh-ed25519", chacha+","+ctr, "hmac-sha1", "none"),
			server: ki("curve25519-sha256", "ssh-ed25519", chacha+","+ctr, h256, "none"),
			want:   want{"curve25519-sha256", "ssh-ed25519", chacha, chacha, "", "", "none", "none"},
		},
		{
			name:   "AEAD one direction only",
			client: ki("curve25519-sha256", "ssh-ed25519", gcm+","+ctr, h256, "none"),
			server: ki("curve25519-sha256", "ssh-ed25519", gcm+","+ctr, h256, "none"),
			tweak:  func(c, s *wire.KexInit) { s.CiphersServerClient = []string{ctr} },
			want:   want{"curve25519-sha256", "ssh-ed25519", gcm, ctr, "", h256, "none", "none"},
		},
		{
			name:   "AEAD with empty MAC lists",
			client: ki("curve25519-sha256", "ssh-ed25519", gcm, "", "none"),
			server: ki("curve25519-sha256", "ssh-ed25519", gcm, "", "none"),
			want:   want{"curve25519-sha256", "ssh-ed25519", gcm, gcm, "", "", "none", "none"},
		},
		{
			name:   "pseudo names ignored",
			client: ki("ext-info-c,kex-strict-c-v00@openssh.com,kex-strict-s-v00@openssh.com,curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			server: ki("kex-strict-s-v00@openssh.com,ext-info-c,kex-strict-c-v00@openssh.com,curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			want:   want{"curve25519-sha256", "ssh-ed25519", ctr, ctr, h256, h256, "none", "none"},
		},
		{
			name:    "only pseudo names in common",
			client:  ki("ext-info-c,kex-strict-c-v00@openssh.com,kexguess2@matt.ucc.asn.au,curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			server:  ki("ext-info-c,kex-strict-c-v00@openssh.com,kexguess2@matt.ucc.asn.au,ecdh-sha2-nistp256", "ssh-ed25519", ctr, h256, "none"),
			errWhat: "kex",
		},
		{
			name:    "no common host key",
			client:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			server:  ki("curve25519-sha256", "rsa-sha2-512", ctr, h256, "none"),
			errWhat: "host key",
		},
		{
			name:    "no common cipher",
			client:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			server:  ki("curve25519-sha256", "ssh-ed25519", ctr2, h256, "none"),
			errWhat: "cipher c2s",
		},
		{
			name:    "no common cipher s2c",
			client:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			server:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			tweak:   func(c, s *wire.KexInit) { s.CiphersServerClient = []string{ctr2} },
			errWhat: "cipher s2c",
		},
		{
			name:    "no common MAC for a non-AEAD cipher",
			client:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			server:  ki("curve25519-sha256", "ssh-ed25519", ctr, h512, "none"),
			errWhat: "mac c2s",
		},
		{
			name:    "none only if listed",
			client:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "zlib"),
			server:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			errWhat: "compression c2s",
		},
		{
			name:    "empty lists",
			client:  ki("", "", "", "", ""),
			server:  ki("curve25519-sha256", "ssh-ed25519", ctr, h256, "none"),
			errWhat: "kex",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tweak != nil {
				tc.tweak(tc.client, tc.server)
			}
			a, err := Negotiate(tc.client, tc.server)
			if tc.errWhat != "" {
				var ne *NegotiationError
				if !errors.As(err, &ne) || ne.What != tc.errWhat {
					t.Fatalf("err = %v, want *NegotiationError for %q", err, tc.errWhat)
				}
				// The error names both lists.
				msg := err.Error()
				if !strings.HasPrefix(msg, "sshtap: kex: ") ||
					!strings.Contains(msg, strings.Join(ne.Client, ",")) || !strings.Contains(msg, strings.Join(ne.Server, ",")) {
					t.Fatalf("error text %q does not name both lists", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{a.Kex, a.HostKey, a.CipherCS, a.CipherSC, a.MACCS, a.MACSC, a.CompressionCS, a.CompressionSC}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Negotiation is not symmetric: swapping roles swaps whose order wins.
func TestNegotiateRolesMatter(t *testing.T) {
	a := ki("curve25519-sha256,ecdh-sha2-nistp256", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256", "none")
	b := ki("ecdh-sha2-nistp256,curve25519-sha256", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256", "none")
	x, _ := Negotiate(a, b)
	y, _ := Negotiate(b, a)
	if x.Kex != "curve25519-sha256" || y.Kex != "ecdh-sha2-nistp256" {
		t.Fatalf("%s / %s", x.Kex, y.Kex)
	}
}

func TestGuessWrong(t *testing.T) {
	for _, tc := range []struct {
		name           string
		c, s           *wire.KexInit
		cGuess, sGuess bool
		want           bool
	}{
		{"no guess", ki("a,b", "x", "", "", ""), ki("b,a", "x", "", "", ""), false, false, false},
		{"same first entries", ki("a,b", "x,y", "", "", ""), ki("a,c", "x,z", "", "", ""), true, false, false},
		{"kex differs", ki("a,b", "x", "", "", ""), ki("b,a", "x", "", "", ""), true, false, true},
		{"host key differs", ki("a", "x,y", "", "", ""), ki("a", "y,x", "", "", ""), true, false, true},
		{"server guessed wrong", ki("a,b", "x", "", "", ""), ki("b,a", "x", "", "", ""), false, true, true},
		{"both differ", ki("a,b", "x,y", "", "", ""), ki("b,a", "y,x", "", "", ""), true, false, true},
		// Only the first entries count, even if negotiation picks the same
		// algorithm anyway (OpenSSH proposals_match).
		{"first entries differ but same result", ki("a,b", "x", "", "", ""), ki("c,a", "x", "", "", ""), true, false, true},
		{"empty list", ki("", "x", "", "", ""), ki("a", "x", "", "", ""), true, false, true},
	} {
		tc.c.FirstKexFollows, tc.s.FirstKexFollows = tc.cGuess, tc.sGuess
		if got := GuessWrong(tc.c, tc.s); got != tc.want {
			t.Errorf("%s: GuessWrong = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHasAndPseudo(t *testing.T) {
	if !Has([]string{"a", "b"}, "b") || Has([]string{"a"}, "A") || Has(nil, "") {
		t.Fatal("Has")
	}
	for _, n := range []string{ExtInfoC, ExtInfoS, StrictC, StrictS, KexGuess2} {
		if !IsPseudo(n) || Has(SupportedKexAlgos, n) {
			t.Fatalf("%s", n)
		}
	}
	if IsPseudo(Curve25519SHA256) {
		t.Fatal("curve25519 is not pseudo")
	}
	for _, m := range SupportedKexAlgos {
		if _, ok := MethodHash(m); !ok {
			t.Fatalf("no method %s", m)
		}
	}
	if Has(DefaultKexAlgos, DHGroup14SHA1) || Has(DefaultHostKeyAlgos, HostKeyRSA) || Has(DefaultHostKeyAlgos, HostKeyRSACert) {
		t.Fatal("SHA-1 algorithms must not be default")
	}
	if DefaultKexAlgos[0] != MLKEM768X25519 || DefaultKexAlgos[len(DefaultKexAlgos)-1] != DHGroup14SHA256 {
		t.Fatal("default kex order")
	}
}

// TestLegacyNames: every legacy name is supported, none is a default, and
// IsLegacy reports exactly them.
func TestLegacyNames(t *testing.T) {
	legacy := []string{DHGroup1SHA1, DHGroup14SHA1, DHGexSHA1, HostKeyRSA, HostKeyRSACert}
	for _, n := range legacy {
		if !IsLegacy(n) {
			t.Errorf("IsLegacy(%s) = false", n)
		}
		if Has(DefaultKexAlgos, n) || Has(DefaultHostKeyAlgos, n) {
			t.Errorf("%s is in a default list", n)
		}
		if !Has(SupportedKexAlgos, n) && !Has(SupportedHostKeyAlgos, n) {
			t.Errorf("%s is not supported", n)
		}
	}
	for _, n := range append(slices.Clone(DefaultKexAlgos), DefaultHostKeyAlgos...) {
		if IsLegacy(n) {
			t.Errorf("default %s reported legacy", n)
		}
	}
	for _, m := range []string{DHGroup1SHA1, DHGexSHA1} {
		if h, ok := MethodHash(m); !ok || h != crypto.SHA1 {
			t.Errorf("MethodHash(%s) = %v, %v; want SHA-1", m, h, ok)
		}
	}
	if group1.p.BitLen() != 1024 {
		t.Errorf("group1 is %d bits, want 1024 (RFC 4253 §8.1)", group1.p.BitLen())
	}
}

func TestKexInit(t *testing.T) {
	p := &Proposal{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	cookie := bytes.Repeat([]byte{7}, 16)
	for _, tc := range []struct {
		role    Role
		initial bool
		extS    bool
		tail    []string
	}{
		{Client, true, false, []string{ExtInfoC, StrictC}},
		{Server, true, false, []string{StrictS}},
		{Server, true, true, []string{ExtInfoS, StrictS}},
		{Client, false, false, nil},
		{Server, false, true, nil},
	} {
		p.ExtInfoS = tc.extS
		m, err := p.KexInit(tc.role, tc.initial, bytes.NewReader(cookie))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Cookie[:], cookie) {
			t.Fatal("cookie not read from rand")
		}
		want := append(slices.Clone(DefaultKexAlgos), tc.tail...)
		if !slices.Equal(m.KexAlgos, want) {
			t.Errorf("%v initial=%v: kex %v", tc.role, tc.initial, m.KexAlgos)
		}
		if !slices.Equal(m.HostKeyAlgos, DefaultHostKeyAlgos) || !slices.Equal(m.CompressionClientServer, []string{"none"}) ||
			!slices.Equal(m.CiphersServerClient, p.Ciphers) || !slices.Equal(m.MACsClientServer, p.MACs) || m.FirstKexFollows {
			t.Errorf("lists %+v", m)
		}
		// The payload round-trips through the wire codec.
		var back wire.KexInit
		if err := back.Unmarshal(m.Marshal(nil)); err != nil || !slices.Equal(back.KexAlgos, m.KexAlgos) {
			t.Fatal(err)
		}
	}
	// Caller-supplied pseudo names are not duplicated or carried into rekeys,
	// and the Proposal is not modified.
	p2 := &Proposal{Kex: []string{Curve25519SHA256, StrictC}, Ciphers: []string{"aes128-ctr"}}
	m, _ := p2.KexInit(Client, false, nil)
	if !slices.Equal(m.KexAlgos, []string{Curve25519SHA256}) || len(p2.Kex) != 2 {
		t.Fatalf("kex %v, proposal %v", m.KexAlgos, p2.Kex)
	}
	// Two cookies from crypto/rand differ.
	a, _ := p.KexInit(Client, true, nil)
	b, _ := p.KexInit(Client, true, nil)
	if a.Cookie == b.Cookie {
		t.Fatal("same cookie twice")
	}
	if _, err := (&Proposal{}).KexInit(Client, true, nil); err == nil {
		t.Fatal("proposal without ciphers accepted")
	}
	if _, err := p.KexInit(Client, true, bytes.NewReader(nil)); err == nil {
		t.Fatal("failing rand accepted")
	}
}

// KEXINITs from two Proposals negotiate end to end, and the guess rule
// holds for our own KEXINITs (we never guess).
func TestKexInitNegotiate(t *testing.T) {
	cp := &Proposal{Ciphers: []string{"chacha20-poly1305@openssh.com", "aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	sp := &Proposal{Kex: []string{Curve25519SHA256, DHGroup14SHA256}, HostKey: []string{HostKeyRSASHA256, HostKeyED25519},
		Ciphers: []string{"aes128-ctr", "chacha20-poly1305@openssh.com"}, MACs: []string{"hmac-sha2-512", "hmac-sha2-256"}}
	c, _ := cp.KexInit(Client, true, nil)
	s, _ := sp.KexInit(Server, true, nil)
	a, err := Negotiate(c, s)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kex != Curve25519SHA256 || a.HostKey != HostKeyED25519 || a.CipherCS != "chacha20-poly1305@openssh.com" || a.MACCS != "" {
		t.Fatalf("%+v", a)
	}
	if GuessWrong(c, s) {
		t.Fatal("no side guessed")
	}
}
