package kex

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"testing"

	"sshtap/internal/wire"
)

func wantSigErr(t *testing.T, err error, reason string) {
	t.Helper()
	var se *SignatureError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *SignatureError", err, err)
	}
	if !strings.Contains(se.Reason, reason) || !strings.HasPrefix(err.Error(), "sshtap: kex: ") {
		t.Fatalf("reason %q, want it to mention %q", se.Reason, reason)
	}
}

func wantProtoErr(t *testing.T, err error, reason string) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *ProtocolError", err, err)
	}
	if !strings.Contains(pe.Reason, reason) || pe.Method == "" || !strings.HasPrefix(err.Error(), "sshtap: kex: ") {
		t.Fatalf("error %q, want it to mention %q", err, reason)
	}
}

// flipLast flips a bit in the last byte of the message that is the reply
// (the end of the signature blob).
func flipLast(typ byte) func([]byte) []byte {
	return func(m []byte) []byte {
		if m[0] == typ {
			m = bytes.Clone(m)
			m[len(m)-1] ^= 1
		}
		return m
	}
}

func TestTamperedSignature(t *testing.T) {
	for _, method := range []string{Curve25519SHA256, ECDHP384, DHGroup14SHA256, DHGexSHA256, MLKEM768X25519, Sntrup761X25519OpenSSH} {
		for _, hk := range fixtures() {
			t.Run(method+"/"+hk.name, func(t *testing.T) {
				t.Parallel()
				replyType := byte(wire.MsgKexECDHReply)
				if method == DHGexSHA256 {
					replyType = wire.MsgKexDHGexReply
				}
				cp, sp := testParams(t, method, hk)
				c, s := newPair(t, cp, sp)
				_, _, cerr, serr := pump(c, s, hooks{toClient: flipLast(replyType)})
				if serr != nil {
					t.Fatal(serr)
				}
				wantSigErr(t, cerr, "invalid signature")
			})
		}
	}
}

// Tampering with K_S or Q_S changes H (or the key), so the signature fails.
func TestTamperedReplyFields(t *testing.T) {
	hk := fixture(t, "ed25519")
	for name, h := range map[string]func([]byte) []byte{
		"K_S": func(m []byte) []byte { // last byte of the ed25519 public key
			m = bytes.Clone(m)
			ksLen := int(m[4])
			m[5+ksLen-1] ^= 1
			return m
		},
		"Q_S": func(m []byte) []byte { // a valid but different server point
			var r wire.KexECDHReply
			if err := r.Unmarshal(m); err != nil {
				panic(err)
			}
			other, _ := ecdh.X25519().GenerateKey(rand.Reader)
			r.ServerPub = other.PublicKey().Bytes()
			return r.Marshal(nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			cp, sp := testParams(t, Curve25519SHA256, hk)
			c, s := newPair(t, cp, sp)
			_, _, cerr, _ := pump(c, s, hooks{toClient: h})
			wantSigErr(t, cerr, "")
		})
	}
}

// The client verifies with the negotiated algorithm: a server that signs
// with another one (a downgrade from rsa-sha2-512 to rsa-sha2-256 or ssh-rsa)
// or presents another key type is refused.
func TestWrongSignatureAlgorithm(t *testing.T) {
	rs := fixture(t, "rsa-sha2-512").signer
	rsCert := fixture(t, "rsa-sha2-512-cert").signer
	ed := fixture(t, "ed25519").signer
	edCert := fixture(t, "ed25519-cert").signer
	for _, tc := range []struct {
		name, clientAlgo, serverAlgo string
		hk                           hostKey
		reason                       string
	}{
		{"512 negotiated, 256 signed", HostKeyRSASHA512, HostKeyRSASHA256, hostKey{signer: rs}, "signature algorithm rsa-sha2-256, want rsa-sha2-512"},
		{"256 negotiated, ssh-rsa signed", HostKeyRSASHA256, HostKeyRSA, hostKey{signer: rs}, "signature algorithm ssh-rsa, want rsa-sha2-256"},
		{"cert 512 negotiated, cert 256 signed", HostKeyRSASHA512Cert, HostKeyRSASHA256Cert, hostKey{signer: rsCert}, "signature algorithm rsa-sha2-256, want rsa-sha2-512"},
		{"ecdsa negotiated, ed25519 key", HostKeyECDSA256, HostKeyED25519, hostKey{signer: ed}, "host key type ssh-ed25519"},
		{"plain negotiated, cert presented", HostKeyED25519, HostKeyED25519Cert, hostKey{signer: edCert}, "host key type ssh-ed25519-cert-v01@openssh.com"},
		{"cert negotiated, plain key presented", HostKeyED25519Cert, HostKeyED25519, hostKey{signer: ed}, "host key type ssh-ed25519 "},
		{"rsa negotiated, rsa cert presented", HostKeyRSASHA512, HostKeyRSASHA512Cert, hostKey{signer: rsCert}, "host key type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.hk.algo = tc.clientAlgo
			cp, sp := testParams(t, Curve25519SHA256, tc.hk)
			sp.HostKeyAlgo = tc.serverAlgo
			c, s := newPair(t, cp, sp)
			_, _, cerr, serr := pump(c, s, hooks{})
			if serr != nil {
				t.Fatal(serr)
			}
			wantSigErr(t, cerr, tc.reason)
		})
	}
}

func TestMalformedSignatureBlob(t *testing.T) {
	hk := fixture(t, "ed25519")
	for name, sig := range map[string][]byte{
		"empty":    {},
		"short":    {0, 0, 0, 11, 's', 's', 'h'},
		"trailing": nil, // filled below
	} {
		t.Run(name, func(t *testing.T) {
			cp, sp := testParams(t, Curve25519SHA256, hk)
			c, s := newPair(t, cp, sp)
			_, _, cerr, _ := pump(c, s, hooks{toClient: func(m []byte) []byte {
				var r wire.KexECDHReply
				if err := r.Unmarshal(m); err != nil {
					panic(err)
				}
				if sig == nil {
					r.Signature = append(bytes.Clone(r.Signature), 0)
				} else {
					r.Signature = sig
				}
				return r.Marshal(nil)
			}})
			wantSigErr(t, cerr, "")
		})
	}
}

// serverWith runs a fresh server of method on msg.
func serverWith(t *testing.T, method string, msg []byte) error {
	t.Helper()
	_, sp := testParams(t, method, fixture(t, "ed25519"))
	s, err := NewExchange(sp)
	if err != nil {
		t.Fatal(err)
	}
	out, res, err := s.Handle(msg)
	if err != nil && (out != nil || res != nil) {
		t.Fatal("output together with an error")
	}
	return err
}

// clientWith starts a fresh client of method and hands it msg (after an
// optional first exchange step for GEX).
func clientWith(t *testing.T, method string, msg []byte) error {
	t.Helper()
	cp, _ := testParams(t, method, fixture(t, "ed25519"))
	c, err := NewExchange(cp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out, res, err := c.Handle(msg)
	if err != nil && (out != nil || res != nil) {
		t.Fatal("output together with an error")
	}
	return err
}

func ecdhInit(pub []byte) []byte { return (&wire.KexECDHInit{ClientPub: pub}).Marshal(nil) }
func ecdhReply(pub []byte) []byte {
	ks := fixtures()[0].signer.PublicKey().Marshal()
	return (&wire.KexECDHReply{HostKey: ks, ServerPub: pub, Signature: []byte{0, 0, 0, 0}}).Marshal(nil)
}

func TestBadPoints(t *testing.T) {
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	good := p256.PublicKey().Bytes()
	offCurve := bytes.Clone(good)
	offCurve[len(offCurve)-1] ^= 1
	compressed := append([]byte{2 + good[64]&1}, good[1:33]...)
	p384, _ := ecdh.P384().GenerateKey(rand.Reader)
	lowOrder := make([]byte, 32)
	lowOrder[0] = 1 // u = 1 is a low-order point: the X25519 output is all zero

	for _, tc := range []struct {
		method string
		pub    []byte
		reason string
	}{
		{Curve25519SHA256, make([]byte, 31), "not 32 bytes"},
		{Curve25519SHA256, make([]byte, 33), "not 32 bytes"},
		{Curve25519SHA256, nil, "not 32 bytes"},
		{Curve25519SHA256, make([]byte, 32), "all zero"},
		{Curve25519SHA256LibSSH, lowOrder, "all zero"},
		{ECDHP256, offCurve, "bad ECDH public key"},
		{ECDHP256, compressed, "not an uncompressed point"},
		{ECDHP256, []byte{0}, "not an uncompressed point"},
		{ECDHP256, nil, "not an uncompressed point"},
		{ECDHP256, p384.PublicKey().Bytes(), "bad ECDH public key"},
		{ECDHP384, good, "bad ECDH public key"},
		{ECDHP521, append([]byte{4}, make([]byte, 132)...), "bad ECDH public key"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			wantProtoErr(t, serverWith(t, tc.method, ecdhInit(tc.pub)), tc.reason)
			wantProtoErr(t, clientWith(t, tc.method, ecdhReply(tc.pub)), tc.reason)
		})
	}
}

func TestMLKEMBadMessages(t *testing.T) {
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	// An encapsulation key whose coefficients are not reduced mod q fails
	// the FIPS 203 modulus check.
	badEK := append(bytes.Repeat([]byte{0xff}, 1184), x.PublicKey().Bytes()...)
	for _, tc := range []struct {
		name   string
		msg    []byte
		reason string
	}{
		{"C_INIT 1215", make([]byte, 1215), "not 1216 bytes"},
		{"C_INIT 1217", make([]byte, 1217), "not 1216 bytes"},
		{"C_INIT empty", nil, "not 1216 bytes"},
		{"C_INIT x25519 only", x.PublicKey().Bytes(), "not 1216 bytes"},
		{"bad encapsulation key", badEK, "encapsulation key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProtoErr(t, serverWith(t, MLKEM768X25519, ecdhInit(tc.msg)), tc.reason)
		})
	}
	for _, n := range []int{0, 32, 1088, 1119, 1121} {
		wantProtoErr(t, clientWith(t, MLKEM768X25519, ecdhReply(make([]byte, n))), "not 1120 bytes")
	}
	// Right length, all-zero X25519 part.
	wantProtoErr(t, clientWith(t, MLKEM768X25519, ecdhReply(make([]byte, 1120))), "all zero")
}

func TestSntrupBadMessages(t *testing.T) {
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name   string
		msg    []byte
		reason string
	}{
		{"C_INIT 1189", make([]byte, 1189), "not 1190 bytes"},
		{"C_INIT 1191", make([]byte, 1191), "not 1190 bytes"},
		{"C_INIT empty", nil, "not 1190 bytes"},
		{"C_INIT x25519 only", x.PublicKey().Bytes(), "not 1190 bytes"},
		{"C_INIT all-zero X25519", make([]byte, 1190), "all zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProtoErr(t, serverWith(t, Sntrup761X25519, ecdhInit(tc.msg)), tc.reason)
		})
	}
	for _, n := range []int{0, 32, 1039, 1070, 1072} {
		wantProtoErr(t, clientWith(t, Sntrup761X25519, ecdhReply(make([]byte, n))), "not 1071 bytes")
	}
	wantProtoErr(t, clientWith(t, Sntrup761X25519, ecdhReply(make([]byte, 1071))), "all zero")
}

// A forged sntrup761 ciphertext is not an error by itself (implicit
// rejection gives the client an unrelated key), so the client's K differs
// from the server's and the host key signature on H fails.
func TestSntrupForgedCiphertext(t *testing.T) {
	cp, sp := testParams(t, Sntrup761X25519OpenSSH, fixture(t, "ed25519"))
	c, s := newPair(t, cp, sp)
	_, _, cerr, serr := pump(c, s, hooks{toClient: func(m []byte) []byte {
		var r wire.KexECDHReply
		if err := r.Unmarshal(m); err != nil {
			panic(err)
		}
		r.ServerPub = bytes.Clone(r.ServerPub)
		r.ServerPub[100] ^= 0x20
		return r.Marshal(nil)
	}})
	if serr != nil {
		t.Fatal(serr)
	}
	wantSigErr(t, cerr, "invalid signature")
}

func TestDHOutOfRange(t *testing.T) {
	p := group14.p
	ks := fixture(t, "ed25519").signer.PublicKey().Marshal()
	for _, v := range []*big.Int{
		big.NewInt(0), big.NewInt(1), new(big.Int).Sub(p, big.NewInt(1)), p,
		new(big.Int).Add(p, big.NewInt(2)), big.NewInt(-5),
	} {
		for _, method := range []string{DHGroup14SHA256, DHGroup14SHA1} {
			wantProtoErr(t, serverWith(t, method, (&wire.KexDHInit{E: v}).Marshal(nil)), "out of range")
			wantProtoErr(t, clientWith(t, method, (&wire.KexDHReply{HostKey: ks, F: v, Signature: []byte{}}).Marshal(nil)), "out of range")
		}
	}
	// e = 2 is in range and accepted.
	if err := serverWith(t, DHGroup14SHA256, (&wire.KexDHInit{E: big.NewInt(2)}).Marshal(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestGexBadValues(t *testing.T) {
	hk := fixture(t, "ed25519")
	p := group14.p
	small, _ := new(big.Int).SetString(strings.Repeat("F", 256), 16) // 1024 bits, odd
	// Client side: bad GROUP messages.
	for name, g := range map[string]*wire.KexDHGexGroup{
		"1024-bit group":  {P: small, G: big.NewInt(2)},
		"too large group": {P: new(big.Int).Lsh(p, 8192), G: big.NewInt(2)},
		"even p":          {P: new(big.Int).Add(p, big.NewInt(1)), G: big.NewInt(2)},
		"g = 1":           {P: p, G: big.NewInt(1)},
		"g = p-1":         {P: p, G: new(big.Int).Sub(p, big.NewInt(1))},
		"g = 0":           {P: p, G: big.NewInt(0)},
		"zero p":          {P: big.NewInt(0), G: big.NewInt(2)},
	} {
		t.Run("client "+name, func(t *testing.T) {
			wantProtoErr(t, clientWith(t, DHGexSHA256, g.Marshal(nil)), "")
		})
	}
	// Client side: out-of-range f after a good group.
	cp, _ := testParams(t, DHGexSHA256, hk)
	c, _ := NewExchange(cp)
	c.Start()
	if _, _, err := c.Handle((&wire.KexDHGexGroup{P: p, G: big.NewInt(2)}).Marshal(nil)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Handle((&wire.KexDHGexReply{HostKey: []byte{}, F: big.NewInt(1), Signature: []byte{}}).Marshal(nil))
	wantProtoErr(t, err, "out of range")

	// Server side: bad requests, then a bad e.
	for name, req := range map[string][]byte{
		"min > n":        (&wire.KexDHGexRequest{Min: 4096, N: 2048, Max: 8192}).Marshal(nil),
		"n > max":        (&wire.KexDHGexRequest{Min: 2048, N: 8192, Max: 4096}).Marshal(nil),
		"max below 2048": (&wire.KexDHGexRequest{Min: 512, N: 1024, Max: 1024}).Marshal(nil),
		"min above 8192": (&wire.KexDHGexRequest{Min: 9000, N: 9000, Max: 10000}).Marshal(nil),
		"truncated":      {wire.MsgKexDHGexRequest, 0, 0},
	} {
		t.Run("server "+name, func(t *testing.T) {
			wantProtoErr(t, serverWith(t, DHGexSHA256, req), "")
		})
	}
	_, sp := testParams(t, DHGexSHA256, hk)
	s, _ := NewExchange(sp)
	// RFC 4419 §5: "byte SSH_MSG_KEX_DH_GEX_REQUEST_OLD, uint32 n". wire
	// has only the decoder: sshtap's client never sends it.
	old := wire.AppendUint32([]byte{wire.MsgKexDHGexRequestOld}, 100000)
	if _, _, err := s.Handle(old); err != nil {
		t.Fatal(err) // n is clamped to 8192
	}
	_, _, err = s.Handle((&wire.KexDHGexInit{E: big.NewInt(0)}).Marshal(nil))
	wantProtoErr(t, err, "out of range")
}

func TestMalformedMessages(t *testing.T) {
	for _, method := range []string{Curve25519SHA256, DHGroup14SHA256, MLKEM768X25519} {
		// Type byte only, then a string length that overruns.
		for _, msg := range [][]byte{{30}, {30, 0, 0, 1, 0, 1}} {
			err := serverWith(t, method, msg)
			wantProtoErr(t, err, "malformed")
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%s: %v does not wrap a *wire.DecodeError", method, err)
			}
		}
		for _, msg := range [][]byte{{31}, {31, 0, 0, 0, 0, 0, 0, 9}} {
			wantProtoErr(t, clientWith(t, method, msg), "malformed")
		}
	}
}

// Messages out of sequence are refused, errors stick, and a finished
// exchange refuses further use.
func TestStateMachine(t *testing.T) {
	hk := fixture(t, "ed25519")
	for _, method := range []string{Curve25519SHA256, DHGroup16SHA512, DHGexSHA256, MLKEM768X25519} {
		t.Run(method, func(t *testing.T) {
			// Client before Start.
			cp, sp := testParams(t, method, hk)
			c, _ := NewExchange(cp)
			_, _, err := c.Handle([]byte{31})
			wantProtoErr(t, err, "unexpected")
			// Sticky: Start now fails with the same error.
			if _, err2 := c.Start(); err2 != err {
				t.Fatalf("error not sticky: %v", err2)
			}
			// Wrong message types.
			for _, typ := range []byte{0, 20, 21, 30, 32, 34, 49, 50} {
				c, _ := NewExchange(cp)
				c.Start()
				if _, _, err := c.Handle([]byte{typ}); err == nil {
					t.Fatalf("client accepted type %d", typ)
				}
				s, _ := NewExchange(sp)
				if typ == 30 || (method == DHGexSHA256 && typ == 34) {
					continue
				}
				_, _, err := s.Handle([]byte{typ})
				wantProtoErr(t, err, "unexpected")
			}
			_, _, err = c.Handle(nil)
			if err == nil {
				t.Fatal("nil message accepted")
			}
			// A server's Start is optional and harmless, any number of times.
			s, _ := NewExchange(sp)
			for range 2 {
				if out, err := s.Start(); out != nil || err != nil {
					t.Fatalf("server Start = %x, %v", out, err)
				}
			}
			// Start twice.
			c, _ = NewExchange(cp)
			c.Start()
			if _, err := c.Start(); err == nil {
				t.Fatal("second Start accepted")
			}
			// After completion.
			c, s = newPair(t, cp, sp)
			if _, _, cerr, serr := pump(c, s, hooks{}); cerr != nil || serr != nil {
				t.Fatal(cerr, serr)
			}
			if _, _, err := c.Handle([]byte{31}); err == nil {
				t.Fatal("client used after completion")
			}
			if _, _, err := s.Handle([]byte{30}); err == nil {
				t.Fatal("server used after completion")
			}
		})
	}
}
