package kex

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

var (
	testVC = []byte("SSH-2.0-sshtap_test")
	testVS = []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10")
)

// testKexInits returns client and server KEXINIT payloads offering exactly
// method and hostAlgo.
func testKexInits(t testing.TB, method, hostAlgo string) (ic, is []byte) {
	t.Helper()
	p := &Proposal{Kex: []string{method}, HostKey: []string{hostAlgo},
		Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	ci, err := p.KexInit(Client, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	si, err := p.KexInit(Server, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ci.Marshal(nil), si.Marshal(nil)
}

// testParams returns matching client and server Params.
func testParams(t testing.TB, method string, hk hostKey) (cp, sp *Params) {
	t.Helper()
	ic, is := testKexInits(t, method, hk.algo)
	cp = &Params{Role: Client, Method: method, HostKeyAlgo: hk.algo,
		ClientVersion: testVC, ServerVersion: testVS, ClientKexInit: ic, ServerKexInit: is}
	spv := *cp
	sp = &spv
	sp.Role, sp.HostKey = Server, hk.signer
	return cp, sp
}

func newPair(t testing.TB, cp, sp *Params) (c, s Exchange) {
	t.Helper()
	c, err := NewExchange(cp)
	if err != nil {
		t.Fatalf("client NewExchange: %v", err)
	}
	s, err = NewExchange(sp)
	if err != nil {
		t.Fatalf("server NewExchange: %v", err)
	}
	return c, s
}

// hooks may rewrite messages in flight.
type hooks struct {
	toServer, toClient func(msg []byte) []byte
}

// pump runs a client and a server Exchange against each other in-process.
// clientErr/serverErr tell which side failed.
func pump(c, s Exchange, h hooks) (cr, sr *Result, clientErr, serverErr error) {
	msg, err := c.Start()
	if err != nil {
		return nil, nil, err, nil
	}
	if out, err := s.Start(); err != nil || out != nil {
		return nil, nil, nil, fmt.Errorf("server Start = %x, %v", out, err)
	}
	for range 4 {
		if msg == nil {
			return nil, nil, errors.New("client sent nothing"), nil
		}
		if h.toServer != nil {
			msg = h.toServer(msg)
		}
		reply, res, err := s.Handle(msg)
		if err != nil {
			return nil, nil, nil, err
		}
		if res != nil {
			sr = res
		}
		if reply == nil {
			return nil, nil, nil, errors.New("server sent nothing")
		}
		if h.toClient != nil {
			reply = h.toClient(reply)
		}
		next, res, err := c.Handle(reply)
		if err != nil {
			return nil, sr, err, nil
		}
		if res != nil {
			if next != nil {
				return nil, nil, fmt.Errorf("client sent %x after finishing", next), nil
			}
			if sr == nil {
				return nil, nil, nil, errors.New("client finished before the server")
			}
			return res, sr, nil, nil
		}
		msg = next
	}
	return nil, nil, errors.New("exchange did not finish"), nil
}

func run(t testing.TB, method string, hk hostKey, tweak func(cp, sp *Params)) (cr, sr *Result) {
	t.Helper()
	cp, sp := testParams(t, method, hk)
	if tweak != nil {
		tweak(cp, sp)
	}
	c, s := newPair(t, cp, sp)
	cr, sr, cerr, serr := pump(c, s, hooks{})
	if cerr != nil || serr != nil {
		t.Fatalf("client error %v, server error %v", cerr, serr)
	}
	return cr, sr
}

// checkMpintK checks that K is a minimal, positive mpint with length prefix.
func checkMpintK(t testing.TB, k []byte) {
	t.Helper()
	r := wire.NewReader(k)
	mag := r.Bytes()
	if r.Err() != nil || r.Len() != 0 {
		t.Fatalf("K %x is not one SSH string", k)
	}
	if len(mag) == 0 || mag[0]&0x80 != 0 {
		t.Fatalf("K %x is zero or negative", k)
	}
	if mag[0] == 0 && (len(mag) == 1 || mag[1]&0x80 == 0) {
		t.Fatalf("K %x is not minimal", k)
	}
}

func TestExchangeAllMethodsAllHostKeys(t *testing.T) {
	for _, method := range SupportedKexAlgos {
		for _, hk := range fixtures() {
			t.Run(method+"/"+hk.name, func(t *testing.T) {
				t.Parallel()
				cr, sr := run(t, method, hk, nil)
				if !bytes.Equal(cr.H, sr.H) || !bytes.Equal(cr.K, sr.K) {
					t.Fatalf("client and server disagree:\nH %x\n  %x\nK %x\n  %x", cr.H, sr.H, cr.K, sr.K)
				}
				wantHash, _ := MethodHash(method)
				if cr.Hash != wantHash || sr.Hash != wantHash || len(cr.H) != wantHash.Size() {
					t.Fatalf("hash %v/%v, len(H) %d, want %v", cr.Hash, sr.Hash, len(cr.H), wantHash)
				}
				blob := hk.signer.PublicKey().Marshal()
				if !bytes.Equal(cr.HostKeyBlob, blob) || !bytes.Equal(sr.HostKeyBlob, blob) ||
					!bytes.Equal(cr.HostKey.Marshal(), blob) || !bytes.Equal(sr.HostKey.Marshal(), blob) {
					t.Fatal("host key blob mismatch")
				}
				if _, isCert := hk.signer.PublicKey().(*ssh.Certificate); isCert {
					if _, ok := cr.HostKey.(*ssh.Certificate); !ok {
						t.Fatalf("client HostKey is %T, want *ssh.Certificate", cr.HostKey)
					}
				}
				switch method {
				case MLKEM768X25519:
					if len(cr.K) != 36 || !bytes.Equal(cr.K[:4], []byte{0, 0, 0, 32}) {
						t.Fatalf("mlkem K %x is not a 32-byte string", cr.K)
					}
				case Sntrup761X25519, Sntrup761X25519OpenSSH:
					if len(cr.K) != 68 || !bytes.Equal(cr.K[:4], []byte{0, 0, 0, 64}) {
						t.Fatalf("sntrup K %x is not a 64-byte string", cr.K)
					}
				default:
					checkMpintK(t, cr.K)
				}
			})
		}
	}
}

// Two runs must not produce the same H or K (fresh ephemeral keys).
func TestExchangeFresh(t *testing.T) {
	hk := fixture(t, "ed25519")
	for _, method := range []string{Curve25519SHA256, ECDHP256, MLKEM768X25519, DHGroup14SHA256} {
		a, _ := run(t, method, hk, nil)
		b, _ := run(t, method, hk, nil)
		if bytes.Equal(a.H, b.H) || bytes.Equal(a.K, b.K) {
			t.Errorf("%s: repeated H or K", method)
		}
	}
}

func TestGexGroupSizes(t *testing.T) {
	hk := fixture(t, "ed25519")
	for _, tc := range []struct {
		min, n, max uint32
		want        int
	}{
		{0, 0, 0, 3072},
		{2048, 2048, 8192, 2048},
		{2048, 4096, 8192, 4096},
		{2048, 5000, 8192, 6144},
		{4096, 4096, 4096, 4096},
		{1024, 1024, 1024 * 16, 2048}, // server raises to 2048 (RFC 8270); client accepts 2048 <= 16384
		{2048, 7680, 8192, 8192},      // OpenSSH's request for 192-bit ciphers
	} {
		t.Run(fmt.Sprint(tc.min, tc.n, tc.max), func(t *testing.T) {
			var bits int
			c := func(msg []byte) []byte {
				if msg[0] == wire.MsgKexDHGexGroup {
					var g wire.KexDHGexGroup
					if err := g.Unmarshal(msg); err != nil {
						t.Fatal(err)
					}
					bits = g.P.BitLen()
				}
				return msg
			}
			cp, sp := testParams(t, DHGexSHA256, hk)
			cp.GexMin, cp.GexN, cp.GexMax = tc.min, tc.n, tc.max
			cl, sv := newPair(t, cp, sp)
			cr, sr, cerr, serr := pump(cl, sv, hooks{toClient: c})
			if cerr != nil || serr != nil {
				t.Fatal(cerr, serr)
			}
			if !bytes.Equal(cr.H, sr.H) || bits != tc.want {
				t.Fatalf("group %d bits, want %d (H equal: %v)", bits, tc.want, bytes.Equal(cr.H, sr.H))
			}
		})
	}
}

func TestGexServerGroupsFromModuli(t *testing.T) {
	hk := fixture(t, "ed25519")
	g14 := GexGroup{group14.p, big.NewInt(5)} // a distinct generator marks "ours"
	cr, sr := run(t, DHGexSHA256, hk, func(cp, sp *Params) {
		cp.GexN = 2048
		sp.Groups = []GexGroup{g14}
	})
	if !bytes.Equal(cr.H, sr.H) {
		t.Fatal("H differs")
	}
	// No configured group fits 4096..8192: fall back to the built-in groups.
	cr, sr = run(t, DHGexSHA256, hk, func(cp, sp *Params) {
		cp.GexMin, cp.GexN = 4096, 4096
		sp.Groups = []GexGroup{g14}
	})
	if !bytes.Equal(cr.H, sr.H) {
		t.Fatal("H differs")
	}
}

func TestChooseGroup(t *testing.T) {
	gs := BuiltinGroups()
	sizes := func(g *GexGroup) int {
		if g == nil {
			return 0
		}
		return g.P.BitLen()
	}
	for _, tc := range []struct {
		lo, want, hi uint32
		bits         int
	}{
		{2048, 2048, 8192, 2048},
		{2048, 3000, 8192, 3072},
		{2048, 3072, 8192, 3072},
		{2048, 8000, 8192, 8192},
		{2048, 8192, 4096, 4096}, // nothing >= want within hi: the largest that fits
		{3000, 3000, 3000, 0},
		{2049, 2049, 3071, 0},
		{6144, 2048, 8192, 6144},
	} {
		g, err := chooseGroup(gs, tc.lo, tc.want, tc.hi, bytes.NewReader(make([]byte, 4)))
		if err != nil || sizes(g) != tc.bits {
			t.Errorf("chooseGroup(%d, %d, %d) = %d bits, %v; want %d", tc.lo, tc.want, tc.hi, sizes(g), err, tc.bits)
		}
	}
	// Ties: both candidates are picked depending on the random draw.
	two := []GexGroup{{group14.p, big.NewInt(2)}, {group14.p, big.NewInt(5)}}
	seen := map[int64]bool{}
	for i := range 4 {
		g, err := chooseGroup(two, 2048, 2048, 8192, bytes.NewReader([]byte{0, 0, 0, byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		seen[g.G.Int64()] = true
	}
	if len(seen) != 2 {
		t.Errorf("tie-break picked only %v", seen)
	}
}

func TestNewExchangeConfigErrors(t *testing.T) {
	ed := fixture(t, "ed25519")
	for name, tweak := range map[string]func(cp, sp *Params){
		"unknown method":    func(cp, sp *Params) { cp.Method, sp.Method = "foo", "foo" },
		"pseudo method":     func(cp, sp *Params) { cp.Method, sp.Method = StrictC, StrictC },
		"unknown host algo": func(cp, sp *Params) { cp.HostKeyAlgo, sp.HostKeyAlgo = "ssh-dss", "ssh-dss" },
		"no host key":       func(cp, sp *Params) { sp.HostKey = nil },
		"key cannot serve":  func(cp, sp *Params) { cp.HostKeyAlgo, sp.HostKeyAlgo = HostKeyRSASHA256, HostKeyRSASHA256 },
		"bad kexinit":       func(cp, sp *Params) { cp.ClientKexInit, sp.ClientKexInit = []byte{21}, []byte{21} },
		"empty kexinit":     func(cp, sp *Params) { cp.ServerKexInit, sp.ServerKexInit = nil, nil },
		"bad role":          func(cp, sp *Params) { cp.Role, sp.Role = 7, 7 },
		"gex min > n":       func(cp, sp *Params) { cp.Method, cp.GexMin, cp.GexN = DHGexSHA256, 4096, 3072; sp.Method = DHGexSHA256 },
		"gex n > max":       func(cp, sp *Params) { cp.Method, cp.GexN, cp.GexMax = DHGexSHA256, 8192, 4096; sp.Method = DHGexSHA256 },
		"gex even group": func(cp, sp *Params) {
			sp.Method, sp.Groups = DHGexSHA256, []GexGroup{{big.NewInt(1 << 20), big.NewInt(2)}}
		},
		"gex generator 1":      func(cp, sp *Params) { sp.Method, sp.Groups = DHGexSHA256, []GexGroup{{group14.p, big.NewInt(1)}} },
		"gex nil group member": func(cp, sp *Params) { sp.Method, sp.Groups = DHGexSHA256, []GexGroup{{}} },
	} {
		t.Run(name, func(t *testing.T) {
			cp, sp := testParams(t, Curve25519SHA256, ed)
			tweak(cp, sp)
			_, cerr := NewExchange(cp)
			_, serr := NewExchange(sp)
			var ce *ConfigError
			if !errors.As(cerr, &ce) && !errors.As(serr, &ce) {
				t.Fatalf("want a *ConfigError, got client %v, server %v", cerr, serr)
			}
		})
	}
	if _, err := NewExchange(nil); err == nil {
		t.Fatal("NewExchange(nil) succeeded")
	}
}

// Params slices are copied: overwriting the caller's buffers after
// NewExchange must not change H.
func TestParamsCopied(t *testing.T) {
	hk := fixture(t, "ed25519")
	cp, sp := testParams(t, Curve25519SHA256, hk)
	c, s := newPair(t, cp, sp)
	for _, b := range [][]byte{cp.ClientKexInit, cp.ServerKexInit} {
		for i := 1; i < len(b); i++ {
			b[i] = 0xAA
		}
	}
	cr, sr, cerr, serr := pump(c, s, hooks{})
	if cerr != nil || serr != nil || !bytes.Equal(cr.H, sr.H) {
		t.Fatal(cerr, serr)
	}
}

func TestGexPreferredBits(t *testing.T) {
	for in, want := range map[int]uint32{0: 2048, 112: 2048, 113: 3072, 128: 3072, 192: 7680, 256: 8192, 512: 8192} {
		if got := GexPreferredBits(in); got != want {
			t.Errorf("GexPreferredBits(%d) = %d, want %d", in, got, want)
		}
	}
}

// Error messages name method-specific messages after the method.
func TestProtocolErrorNames(t *testing.T) {
	for _, tc := range []struct {
		method string
		msg    byte
		want   string
	}{
		{DHGexSHA256, 30, "SSH_MSG_KEX_DH_GEX_REQUEST_OLD"},
		{DHGexSHA256, 31, "SSH_MSG_KEX_DH_GEX_GROUP"},
		{DHGexSHA256, 33, "SSH_MSG_KEX_DH_GEX_REPLY"},
		{Curve25519SHA256, 31, "SSH_MSG_KEX_ECDH_REPLY"},
		{DHGroup14SHA256, 30, "SSH_MSG_KEXDH_INIT"},
	} {
		err := &ProtocolError{Method: tc.method, Msg: tc.msg, Reason: "x"}
		if want := "sshtap: kex: " + tc.method + ": " + tc.want + ": x"; err.Error() != want {
			t.Errorf("%q, want %q", err.Error(), want)
		}
	}
}
