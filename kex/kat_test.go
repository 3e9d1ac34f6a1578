package kex

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"os"
	"strings"
	"testing"
)

// RFC 7748 §6.1, plus the RFC 8731 §3 encoding of the result as K.
func TestX25519RFC7748(t *testing.T) {
	v := readKV(t, "testdata/x25519_rfc7748.txt")[0]
	alice, err := ecdh.X25519().NewPrivateKey(unhex(t, v["alice_private"]))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ecdh.X25519().NewPrivateKey(unhex(t, v["bob_private"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(alice.PublicKey().Bytes()); got != v["alice_public"] {
		t.Fatalf("alice public %s", got)
	}
	if got := hex.EncodeToString(bob.PublicKey().Bytes()); got != v["bob_public"] {
		t.Fatalf("bob public %s", got)
	}
	s1, err := x25519Shared(alice, bob.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := x25519Shared(bob, alice.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s1) != v["shared"] || !bytes.Equal(s1, s2) {
		t.Fatalf("shared %x / %x", s1, s2)
	}
	if got := hex.EncodeToString(x25519K(s1)); got != v["K"] {
		t.Fatalf("K = %s, want %s", got, v["K"])
	}
}

// The mpint rules of RFC 4251 §5 applied to X25519 outputs: leading zero
// bytes are stripped, a set top bit gets a 0x00 prefix, no byte reversal.
func TestX25519KEncoding(t *testing.T) {
	for _, tc := range []struct{ secret, want string }{
		{"80" + strings.Repeat("01", 31), "00000021" + "0080" + strings.Repeat("01", 31)},
		{"0000" + strings.Repeat("7f", 30), "0000001e" + strings.Repeat("7f", 30)},
		{"0080" + strings.Repeat("ff", 30), "00000020" + "0080" + strings.Repeat("ff", 30)}, // 00 stripped, then re-added for the top bit
		{strings.Repeat("00", 31) + "01", "0000000101"},
	} {
		if got := hex.EncodeToString(x25519K(unhex(t, tc.secret))); got != tc.want {
			t.Errorf("x25519K(%s) = %s, want %s", tc.secret, got, tc.want)
		}
	}
}

// NIST CAVS vectors for the SSH KDF.
func TestDeriveKeyCAVS(t *testing.T) {
	recs := readKV(t, "testdata/sshkdf_cavs.txt")
	if len(recs) == 0 {
		t.Fatal("no vectors")
	}
	hashes := map[string]crypto.Hash{"SHA1": crypto.SHA1, "SHA256": crypto.SHA256}
	for i, v := range recs {
		h := hashes[v["hash"]]
		k, hh, sid := unhex(t, v["K"]), unhex(t, v["H"]), unhex(t, v["session_id"])
		for _, letter := range "ABCDEF" {
			want := v[string(letter)]
			got := DeriveKey(h, k, hh, sid, byte(letter), len(want)/2)
			if hex.EncodeToString(got) != want {
				t.Errorf("vector %d %s %c: %x, want %s", i, v["hash"], letter, got, want)
			}
		}
	}
}

// An independent computation of the extension rule with crypto/sha256.
func TestDeriveKeyExtension(t *testing.T) {
	k := []byte{0, 0, 0, 2, 0x12, 0x34}
	h := bytes.Repeat([]byte{0xab}, 32)
	sid := bytes.Repeat([]byte{0xcd}, 32)
	k1 := sha256.Sum256(cat(k, h, []byte("C"), sid))
	k2 := sha256.Sum256(cat(k, h, k1[:]))
	k3 := sha256.Sum256(cat(k, h, k1[:], k2[:]))
	want := cat(k1[:], k2[:], k3[:])
	for _, n := range []int{0, 1, 16, 32, 33, 64, 65, 96} {
		got := DeriveKey(crypto.SHA256, k, h, sid, 'C', n)
		if !bytes.Equal(got, want[:n]) {
			t.Errorf("n=%d: %x, want %x", n, got, want[:n])
		}
	}
	// Different letters give unrelated keys.
	if bytes.Equal(DeriveKey(crypto.SHA256, k, h, sid, 'C', 32), DeriveKey(crypto.SHA256, k, h, sid, 'D', 32)) {
		t.Error("letters C and D give the same key")
	}
}

// machinPi returns floor(pi * 2^bits) using Machin's formula
// pi = 16 atan(1/5) - 4 atan(1/239) in fixed point.
func machinPi(bits uint) *big.Int {
	guard := uint(64)
	one := new(big.Int).Lsh(big.NewInt(1), bits+guard)
	atanInv := func(x int64) *big.Int {
		sum := new(big.Int)
		x2 := big.NewInt(x * x)
		term := new(big.Int).Quo(one, big.NewInt(x))
		for n, sign := int64(1), 1; term.Sign() != 0; n, sign = n+2, -sign {
			q := new(big.Int).Quo(term, big.NewInt(n))
			if sign > 0 {
				sum.Add(sum, q)
			} else {
				sum.Sub(sum, q)
			}
			term.Quo(term, x2)
		}
		return sum
	}
	pi := new(big.Int).Mul(atanInv(5), big.NewInt(16))
	pi.Sub(pi, new(big.Int).Mul(atanInv(239), big.NewInt(4)))
	return pi.Rsh(pi, guard)
}

// RFC 3526: p = 2^n - 2^(n-64) - 1 + 2^64 * ( [2^(n-130) pi] + k ).
func TestRFC3526Primes(t *testing.T) {
	pi := machinPi(8192)
	for _, tc := range []struct {
		hex  string
		n    uint
		k    int64
		name string
	}{
		{rfc2409Prime1024, 1024, 129093, "group1 (RFC 2409 §6.2)"},
		{rfc3526Prime2048, 2048, 124476, "group14"},
		{rfc3526Prime3072, 3072, 1690314, "group15"},
		{rfc3526Prime4096, 4096, 240904, "group16"},
		{rfc3526Prime6144, 6144, 929484, "group17"},
		{rfc3526Prime8192, 8192, 4743158, "group18"},
	} {
		p, _ := new(big.Int).SetString(tc.hex, 16)
		fl := new(big.Int).Rsh(pi, 8192-(tc.n-130)) // floor(2^(n-130) pi)
		want := new(big.Int).Lsh(big.NewInt(1), tc.n)
		want.Sub(want, new(big.Int).Lsh(big.NewInt(1), tc.n-64))
		want.Sub(want, big.NewInt(1))
		want.Add(want, new(big.Int).Lsh(fl.Add(fl, big.NewInt(tc.k)), 64))
		if p.Cmp(want) != 0 || p.BitLen() != int(tc.n) {
			t.Errorf("%s does not match the RFC 3526 formula", tc.name)
		}
	}
	// Safe-prime check on the smallest groups (the others are too slow here).
	if !testing.Short() {
		for _, g := range []*dhGroup{group1, group14} {
			p := g.p
			q := new(big.Int).Rsh(p, 1)
			if !p.ProbablyPrime(4) || !q.ProbablyPrime(4) {
				t.Errorf("the %d-bit group is not a safe prime", p.BitLen())
			}
		}
	}
}

func TestParseModuliTestdata(t *testing.T) {
	f, err := os.Open("testdata/moduli.rfc3526")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gs, err := ParseModuli(f)
	if err != nil {
		t.Fatal(err)
	}
	want := BuiltinGroups()
	if len(gs) != len(want) {
		t.Fatalf("%d groups, want %d", len(gs), len(want))
	}
	for i := range gs {
		if gs[i].P.Cmp(want[i].P) != 0 || gs[i].G.Cmp(want[i].G) != 0 {
			t.Errorf("group %d differs from the built-in RFC 3526 group", i)
		}
	}
}

func TestParseModuliSystem(t *testing.T) {
	f, err := os.Open("/etc/ssh/moduli")
	if err != nil {
		t.Skip("no /etc/ssh/moduli:", err)
	}
	defer f.Close()
	gs, err := ParseModuli(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) == 0 {
		t.Fatal("no groups in /etc/ssh/moduli")
	}
	sizes := map[int]int{}
	for _, g := range gs {
		sizes[g.P.BitLen()]++
		if g.P.Bit(0) == 0 || g.G.Cmp(big.NewInt(1)) <= 0 {
			t.Fatalf("bad group: %d bits g=%v", g.P.BitLen(), g.G)
		}
	}
	t.Logf("sizes: %v", sizes)
	// A server configured from it serves the client's preferred size.
	g, err := chooseGroup(gs, 2048, 4096, 8192, bytes.NewReader(make([]byte, 4)))
	if err != nil || g == nil || g.P.BitLen() < 4096 {
		t.Fatalf("chooseGroup from system moduli: %v, %v", g, err)
	}
}

func TestParseModuliLines(t *testing.T) {
	p := rfc3526Prime2048
	for _, tc := range []struct {
		name, text string
		groups     int
		err        bool
	}{
		{"comment and blank", "# x\n\n   \n", 0, false},
		{"good", "20240101000000 2 6 100 2047 2 " + p + "\n", 1, false},
		{"crlf and generator 5", "20240101000000 2 6 100 2047 5 " + p + "\r\n", 1, false},
		{"not a safe prime: skipped", "20240101000000 4 6 100 2047 2 " + p, 0, false},
		{"composite flag: skipped", "20240101000000 2 7 100 2047 2 " + p, 0, false},
		{"untested: skipped", "20240101000000 2 0 100 2047 2 " + p, 0, false},
		{"zero tries: skipped", "20240101000000 2 6 0 2047 2 " + p, 0, false},
		{"size is bits not bits-1", "20240101000000 2 6 100 2048 2 " + p, 0, true},
		{"six fields", "20240101000000 2 6 100 2047 " + p, 0, true},
		{"bad number", "20240101000000 2 x 100 2047 2 " + p, 0, true},
		{"bad hex", "20240101000000 2 6 100 2047 2 " + p[:len(p)-1] + "Z", 0, true},
		{"generator 1", "20240101000000 2 6 100 2047 1 " + p, 0, true},
		{"even modulus", "20240101000000 2 6 100 2047 2 " + p[:len(p)-1] + "E", 0, true},
		{"negative", "20240101000000 2 6 100 2047 2 -" + p, 0, true},
	} {
		gs, err := ParseModuli(strings.NewReader(tc.text))
		if (err != nil) != tc.err || len(gs) != tc.groups {
			t.Errorf("%s: %d groups, err %v", tc.name, len(gs), err)
		}
		if me, ok := err.(*ModuliError); err != nil && (!ok || me.Line != 1) {
			t.Errorf("%s: error %#v, want *ModuliError on line 1", tc.name, err)
		}
	}
}
