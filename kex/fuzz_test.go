package kex

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sshtap/internal/wire"
)

func fuzzMethod(i byte) string { return SupportedKexAlgos[int(i)%len(SupportedKexAlgos)] }

func methodIndex(m string) byte {
	for i, n := range SupportedKexAlgos {
		if n == m {
			return byte(i)
		}
	}
	panic(m)
}

// checkHandle asserts the Handle contract: nothing is returned with an error.
func checkHandle(t *testing.T, out []byte, res *Result, err error) {
	if err != nil && (out != nil || res != nil) {
		t.Fatalf("Handle returned output with error %v", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "sshtap: kex: ") {
		t.Fatalf("error without prefix: %v", err)
	}
}

// FuzzClientHandle feeds arbitrary method messages to a started client of
// every method. A result is impossible without a valid signature, and
// nothing may panic.
func FuzzClientHandle(f *testing.F) {
	f.Add(methodIndex(Curve25519SHA256), []byte{31}, []byte(nil))
	f.Fuzz(func(t *testing.T, mi byte, m1, m2 []byte) {
		cp, _ := testParams(t, fuzzMethod(mi), fixtures()[0])
		c, err := NewExchange(cp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		out, res, err := c.Handle(m1)
		checkHandle(t, out, res, err)
		if err == nil && res == nil {
			out, res, err = c.Handle(m2)
			checkHandle(t, out, res, err)
		}
		if res != nil {
			t.Fatal("client finished on fuzzed input")
		}
	})
}

// FuzzServerHandle feeds arbitrary method messages to a server of every
// method; two messages reach the second step of group exchange.
func FuzzServerHandle(f *testing.F) {
	f.Add(methodIndex(Curve25519SHA256), []byte{30, 0, 0, 0, 32}, []byte(nil))
	f.Fuzz(func(t *testing.T, mi byte, m1, m2 []byte) {
		_, sp := testParams(t, fuzzMethod(mi), fixtures()[0])
		s, err := NewExchange(sp)
		if err != nil {
			t.Fatal(err)
		}
		out, res, err := s.Handle(m1)
		checkHandle(t, out, res, err)
		if err == nil && res == nil {
			out, res, err = s.Handle(m2)
			checkHandle(t, out, res, err)
		}
		if err == nil && out == nil {
			t.Fatal("server accepted a message without answering")
		}
	})
}

// FuzzNegotiate negotiates between two fuzzed KEXINIT payloads.
func FuzzNegotiate(f *testing.F) {
	p := &Proposal{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	c, _ := p.KexInit(Client, true, nil)
	s, _ := p.KexInit(Server, true, nil)
	f.Add(c.Marshal(nil), s.Marshal(nil))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ci, si wire.KexInit
		if ci.Unmarshal(a) != nil || si.Unmarshal(b) != nil {
			return
		}
		GuessWrong(&ci, &si)
		alg, err := Negotiate(&ci, &si)
		if err != nil {
			if _, ok := err.(*NegotiationError); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		both := func(name string, c, s []string) {
			if IsPseudo(name) || !Has(c, name) || !Has(s, name) {
				t.Fatalf("chose %q not offered by both sides (%v / %v)", name, c, s)
			}
		}
		both(alg.Kex, ci.KexAlgos, si.KexAlgos)
		both(alg.HostKey, ci.HostKeyAlgos, si.HostKeyAlgos)
		both(alg.CipherCS, ci.CiphersClientServer, si.CiphersClientServer)
		both(alg.CipherSC, ci.CiphersServerClient, si.CiphersServerClient)
		both(alg.CompressionCS, ci.CompressionClientServer, si.CompressionClientServer)
		both(alg.CompressionSC, ci.CompressionServerClient, si.CompressionServerClient)
		if IsAEAD(alg.CipherCS) != (alg.MACCS == "") || IsAEAD(alg.CipherSC) != (alg.MACSC == "") {
			t.Fatalf("MAC/AEAD mismatch: %+v", alg)
		}
		if alg.MACCS != "" {
			both(alg.MACCS, ci.MACsClientServer, si.MACsClientServer)
		}
		if alg.MACSC != "" {
			both(alg.MACSC, ci.MACsServerClient, si.MACsServerClient)
		}
	})
}

// FuzzParseModuli: arbitrary moduli files never panic, and every group
// returned is sane.
func FuzzParseModuli(f *testing.F) {
	f.Add("20240101000000 2 6 100 2047 2 " + rfc3526Prime2048 + "\n")
	f.Fuzz(func(t *testing.T, text string) {
		gs, err := ParseModuli(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, g := range gs {
			if g.P.Bit(0) == 0 || g.G.Sign() <= 0 || g.G.Cmp(g.P) >= 0 {
				t.Fatalf("bad group %v %v", g.P, g.G)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz from real exchanges when
// KEX_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KEX_WRITE_SEEDS") != "1" {
		t.Skip("set KEX_WRITE_SEEDS=1 to regenerate the seed corpora")
	}
	write := func(target, name string, vals ...any) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case byte:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&b, "string(%q)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hk := fixtures()[0]
	for _, m := range SupportedKexAlgos {
		var toServer, toClient [][]byte
		cp, sp := testParams(t, m, hk)
		c, s := newPair(t, cp, sp)
		rec := hooks{
			toServer: func(b []byte) []byte { toServer = append(toServer, bytes.Clone(b)); return b },
			toClient: func(b []byte) []byte { toClient = append(toClient, bytes.Clone(b)); return b },
		}
		if _, _, cerr, serr := pump(c, s, rec); cerr != nil || serr != nil {
			t.Fatal(cerr, serr)
		}
		mi := methodIndex(m)
		name := strings.ReplaceAll(m, "@", "_")
		pad := func(l [][]byte) [][]byte { return append(l, nil) }
		ts, tc := pad(toServer), pad(toClient)
		write("FuzzServerHandle", name, mi, ts[0], ts[1])
		write("FuzzClientHandle", name, mi, tc[0], tc[1])
		// Truncated and bit-flipped variants.
		write("FuzzServerHandle", name+"-trunc", mi, ts[0][:len(ts[0])/2], []byte(nil))
		write("FuzzClientHandle", name+"-trunc", mi, tc[0][:len(tc[0])/2], []byte(nil))
	}
	p := &Proposal{Ciphers: []string{"chacha20-poly1305@openssh.com", "aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	c, _ := p.KexInit(Client, true, nil)
	s, _ := p.KexInit(Server, true, nil)
	write("FuzzNegotiate", "defaults", c.Marshal(nil), s.Marshal(nil))
	dropbear := &wire.KexInit{
		KexAlgos:     []string{"curve25519-sha256", "diffie-hellman-group14-sha256", "kexguess2@matt.ucc.asn.au"},
		HostKeyAlgos: []string{"ssh-ed25519", "rsa-sha2-256", "ssh-rsa"}, CiphersClientServer: []string{"aes128-ctr"},
		CiphersServerClient: []string{"aes128-ctr"}, MACsClientServer: []string{"hmac-sha2-256", "hmac-sha1"},
		MACsServerClient: []string{"hmac-sha2-256"}, CompressionClientServer: []string{"zlib@openssh.com", "none"},
		CompressionServerClient: []string{"none"}, FirstKexFollows: true,
	}
	write("FuzzNegotiate", "dropbear-guess", dropbear.Marshal(nil), s.Marshal(nil))
	mod, err := os.ReadFile("testdata/moduli.rfc3526")
	if err != nil {
		t.Fatal(err)
	}
	write("FuzzParseModuli", "rfc3526", string(mod))
	write("FuzzParseModuli", "bad-size", "20240101000000 2 6 100 2048 2 "+rfc3526Prime2048+"\n")
}
