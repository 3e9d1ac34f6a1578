package kex

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"testing"

	"golang.org/x/crypto/ssh"
)

// This file recomputes exchange hashes by hand, straight from the table in
// the protocol digest (RFC 4253 §8, RFC 5656 §4, RFC 4419 §3, RFC 8731 §3,
// the mlkem hybrid draft), with its own encoders instead of internal/wire.

func hStr(b []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

func hU32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// hMpint encodes a non-negative magnitude per RFC 4251 §5.
func hMpint(mag []byte) []byte {
	for len(mag) > 0 && mag[0] == 0 {
		mag = mag[1:]
	}
	if len(mag) > 0 && mag[0]&0x80 != 0 {
		mag = append([]byte{0}, mag...)
	}
	return hStr(mag)
}

func hBig(n *big.Int) []byte { return hMpint(n.Bytes()) }

// hFields splits a message body (after the type byte) into SSH strings.
func hFields(t *testing.T, msg []byte, typ byte, n int) [][]byte {
	t.Helper()
	if len(msg) == 0 || msg[0] != typ {
		t.Fatalf("message type %x, want %d", msg[:min(1, len(msg))], typ)
	}
	b := msg[1:]
	var out [][]byte
	for range n {
		if len(b) < 4 {
			t.Fatal("short message")
		}
		l := binary.BigEndian.Uint32(b)
		if uint32(len(b)-4) < l {
			t.Fatal("short string")
		}
		out = append(out, b[4:4+l])
		b = b[4+l:]
	}
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// handSigner is an ed25519 host key whose raw private key the test holds.
type handSigner struct {
	priv   ed25519.PrivateKey
	signer ssh.Signer
}

func newHandSigner(t *testing.T) handSigner {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return handSigner{priv, s}
}

// sign returns the RFC 8709 §6 signature blob on h.
func (h handSigner) sign(data []byte) []byte {
	return cat(hStr([]byte("ssh-ed25519")), hStr(ed25519.Sign(h.priv, data)))
}

func (h handSigner) verify(t *testing.T, sigBlob, data []byte) {
	t.Helper()
	want := h.sign(data) // Ed25519 is deterministic
	if !bytes.Equal(sigBlob, want) {
		t.Fatal("server signature on H is not ed25519(H)")
	}
}

func handParams(t *testing.T, method string, hs handSigner) (cp, sp *Params) {
	return testParams(t, method, hostKey{"hand", HostKeyED25519, hs.signer})
}

func prefix(p *Params, ks []byte) []byte {
	return cat(hStr(p.ClientVersion), hStr(p.ServerVersion), hStr(p.ClientKexInit), hStr(p.ServerKexInit), hStr(ks))
}

// The test is the client: the server's H and K must equal the hand
// computation, and its signature must be ed25519 over that H.
func TestCurve25519HashByHandServer(t *testing.T) {
	hs := newHandSigner(t)
	_, sp := handParams(t, Curve25519SHA256, hs)
	s, err := NewExchange(sp)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	qc := priv.PublicKey().Bytes()
	reply, res, err := s.Handle(cat([]byte{30}, hStr(qc)))
	if err != nil || res == nil {
		t.Fatal(err)
	}
	f := hFields(t, reply, 31, 3)
	ks, qs, sig := f[0], f[1], f[2]
	peer, err := ecdh.X25519().NewPublicKey(qs)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := priv.ECDH(peer)
	k := hMpint(secret) // RFC 8731 §3: big-endian, no byte reversal
	h := sha256.Sum256(cat(prefix(sp, ks), hStr(qc), hStr(qs), k))
	if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
		t.Fatalf("server K/H differ from the hand computation\nK %x\n  %x\nH %x\n  %x", res.K, k, res.H, h)
	}
	if !bytes.Equal(ks, hs.signer.PublicKey().Marshal()) {
		t.Fatal("K_S is not the host key blob")
	}
	hs.verify(t, sig, h[:])
}

// The test is the server: the client must accept a hand-made reply and
// report the hand-computed H and K.
func TestCurve25519HashByHandClient(t *testing.T) {
	hs := newHandSigner(t)
	cp, _ := handParams(t, Curve25519SHA256LibSSH, hs)
	c, err := NewExchange(cp)
	if err != nil {
		t.Fatal(err)
	}
	init, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	qc := hFields(t, init, 30, 1)[0]
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	peer, err := ecdh.X25519().NewPublicKey(qc)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := priv.ECDH(peer)
	qs := priv.PublicKey().Bytes()
	ks := hs.signer.PublicKey().Marshal()
	k := hMpint(secret)
	h := sha256.Sum256(cat(prefix(cp, ks), hStr(qc), hStr(qs), k))
	out, res, err := c.Handle(cat([]byte{31}, hStr(ks), hStr(qs), hStr(hs.sign(h[:]))))
	if err != nil || out != nil || res == nil {
		t.Fatalf("Handle = %x, %v, %v", out, res, err)
	}
	if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
		t.Fatal("client K/H differ from the hand computation")
	}
}

func TestMLKEMHashByHand(t *testing.T) {
	hs := newHandSigner(t)
	t.Run("server", func(t *testing.T) {
		_, sp := handParams(t, MLKEM768X25519, hs)
		s, err := NewExchange(sp)
		if err != nil {
			t.Fatal(err)
		}
		dk, _ := mlkem.GenerateKey768()
		xpriv, _ := ecdh.X25519().GenerateKey(rand.Reader)
		cinit := cat(dk.EncapsulationKey().Bytes(), xpriv.PublicKey().Bytes())
		reply, res, err := s.Handle(cat([]byte{30}, hStr(cinit)))
		if err != nil {
			t.Fatal(err)
		}
		f := hFields(t, reply, 31, 3)
		ks, sreply, sig := f[0], f[1], f[2]
		if len(sreply) != 1088+32 {
			t.Fatalf("S_REPLY is %d bytes", len(sreply))
		}
		kpq, err := dk.Decapsulate(sreply[:1088])
		if err != nil {
			t.Fatal(err)
		}
		peer, _ := ecdh.X25519().NewPublicKey(sreply[1088:])
		kcl, _ := xpriv.ECDH(peer)
		sum := sha256.Sum256(cat(kpq, kcl))
		k := hStr(sum[:]) // a string, not an mpint
		h := sha256.Sum256(cat(prefix(sp, ks), hStr(cinit), hStr(sreply), k))
		if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
			t.Fatal("server K/H differ from the hand computation")
		}
		hs.verify(t, sig, h[:])
	})
	t.Run("client", func(t *testing.T) {
		cp, _ := handParams(t, MLKEM768X25519, hs)
		c, err := NewExchange(cp)
		if err != nil {
			t.Fatal(err)
		}
		init, _ := c.Start()
		cinit := hFields(t, init, 30, 1)[0]
		if len(cinit) != 1184+32 {
			t.Fatalf("C_INIT is %d bytes", len(cinit))
		}
		ek, err := mlkem.NewEncapsulationKey768(cinit[:1184])
		if err != nil {
			t.Fatal(err)
		}
		kpq, ct := ek.Encapsulate()
		xpriv, _ := ecdh.X25519().GenerateKey(rand.Reader)
		peer, _ := ecdh.X25519().NewPublicKey(cinit[1184:])
		kcl, _ := xpriv.ECDH(peer)
		sreply := cat(ct, xpriv.PublicKey().Bytes())
		sum := sha256.Sum256(cat(kpq, kcl))
		k := hStr(sum[:])
		ks := hs.signer.PublicKey().Marshal()
		h := sha256.Sum256(cat(prefix(cp, ks), hStr(cinit), hStr(sreply), k))
		_, res, err := c.Handle(cat([]byte{31}, hStr(ks), hStr(sreply), hStr(hs.sign(h[:]))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
			t.Fatal("client K/H differ from the hand computation")
		}
	})
}

func TestECDHP256HashByHand(t *testing.T) {
	hs := newHandSigner(t)
	_, sp := handParams(t, ECDHP256, hs)
	s, err := NewExchange(sp)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	qc := priv.PublicKey().Bytes()
	reply, res, err := s.Handle(cat([]byte{30}, hStr(qc)))
	if err != nil {
		t.Fatal(err)
	}
	f := hFields(t, reply, 31, 3)
	peer, err := ecdh.P256().NewPublicKey(f[1])
	if err != nil {
		t.Fatal(err)
	}
	x, _ := priv.ECDH(peer)
	k := hMpint(x) // RFC 5656 §4: K is the x-coordinate, as an mpint
	h := sha256.Sum256(cat(prefix(sp, f[0]), hStr(qc), hStr(f[1]), k))
	if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
		t.Fatal("server K/H differ from the hand computation")
	}
	hs.verify(t, f[2], h[:])
}

// handDH returns a private exponent and g^x mod p.
func handDH(p, g *big.Int) (x, e *big.Int) {
	x, _ = rand.Int(rand.Reader, new(big.Int).Rsh(p, 1))
	x.Add(x, big.NewInt(2))
	return x, new(big.Int).Exp(g, x, p)
}

func TestDHGroup14HashByHand(t *testing.T) {
	hs := newHandSigner(t)
	_, sp := handParams(t, DHGroup14SHA256, hs)
	s, err := NewExchange(sp)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := new(big.Int).SetString(rfc3526Prime2048, 16)
	x, e := handDH(p, big.NewInt(2))
	reply, res, err := s.Handle(cat([]byte{30}, hBig(e)))
	if err != nil {
		t.Fatal(err)
	}
	// KEXDH_REPLY: string K_S, mpint f, string signature.
	f := hFields(t, reply, 31, 3)
	fv := new(big.Int).SetBytes(f[1])
	k := hBig(new(big.Int).Exp(fv, x, p))
	h := sha256.Sum256(cat(prefix(sp, f[0]), hBig(e), hBig(fv), k))
	if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
		t.Fatal("server K/H differ from the hand computation")
	}
	hs.verify(t, f[2], h[:])
}

func TestGexHashByHand(t *testing.T) {
	hs := newHandSigner(t)
	for _, old := range []bool{false, true} {
		name := map[bool]string{false: "REQUEST", true: "REQUEST_OLD"}[old]
		t.Run(name, func(t *testing.T) {
			_, sp := handParams(t, DHGexSHA256, hs)
			s, err := NewExchange(sp)
			if err != nil {
				t.Fatal(err)
			}
			var req, hashedReq []byte
			if old {
				req = cat([]byte{30}, hU32(2048))
				hashedReq = hU32(2048) // RFC 4419 §5: only n
			} else {
				req = cat([]byte{34}, hU32(2048), hU32(3072), hU32(8192))
				hashedReq = req[1:]
			}
			group, res, err := s.Handle(req)
			if err != nil || res != nil {
				t.Fatal(err)
			}
			f := hFields(t, group, 31, 2)
			p, g := new(big.Int).SetBytes(f[0]), new(big.Int).SetBytes(f[1])
			wantBits := map[bool]int{false: 3072, true: 2048}[old]
			if p.BitLen() != wantBits || g.Int64() != 2 {
				t.Fatalf("group of %d bits, g=%v", p.BitLen(), g)
			}
			x, e := handDH(p, g)
			reply, res, err := s.Handle(cat([]byte{32}, hBig(e)))
			if err != nil || res == nil {
				t.Fatal(err)
			}
			r := hFields(t, reply, 33, 3)
			fv := new(big.Int).SetBytes(r[1])
			k := hBig(new(big.Int).Exp(fv, x, p))
			h := sha256.Sum256(cat(prefix(sp, r[0]), hashedReq, hBig(p), hBig(g), hBig(e), hBig(fv), k))
			if !bytes.Equal(res.K, k) || !bytes.Equal(res.H, h[:]) {
				t.Fatal("server K/H differ from the hand computation")
			}
			hs.verify(t, r[2], h[:])
		})
	}
}
