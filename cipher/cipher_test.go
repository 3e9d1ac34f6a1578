package cipher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// combo is one negotiable cipher/MAC pair.
type combo struct{ cipher, mac string }

func (c combo) String() string {
	if IsAEAD(c.cipher) {
		return c.cipher
	}
	return c.cipher + "+" + c.mac
}

// allCombos is every supported cipher with every supported MAC, AEAD ciphers
// once (their MAC is ignored).
func allCombos() []combo {
	var cs []combo
	for _, c := range SupportedCiphers {
		if IsAEAD(c) {
			cs = append(cs, combo{c, ""})
			continue
		}
		for _, m := range SupportedMACs {
			cs = append(cs, combo{c, m})
		}
	}
	return cs
}

// keys returns deterministic key material of the sizes Sizes reports.
func (c combo) keys(t testing.TB, seed uint64) (key, iv, macKey []byte) {
	t.Helper()
	kl, il, ml, err := Sizes(c.cipher, c.mac)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 0x55))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	return fill(kl), fill(il), fill(ml)
}

func (c combo) pair(t testing.TB, seed uint64) (Sealer, Opener) {
	t.Helper()
	key, iv, macKey := c.keys(t, seed)
	s, err := NewSealer(c.cipher, c.mac, key, iv, macKey)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpener(c.cipher, c.mac, key, iv, macKey)
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

// buildPacket returns a plaintext packet carrying payload, aligned for mode
// and block size as RFC 4253 §6 and PROTOCOL §1.5 require, with room for a
// tag of tagSize after it.
func buildPacket(r *rand.Rand, payload []byte, mode Mode, bs, tagSize int) []byte {
	// RFC 4253 §6: "the length of the concatenation of 'packet_length',
	// 'padding_length', 'payload', and 'random padding' MUST be a multiple
	// of the cipher block size or 8, whichever is larger"; ETM and AEAD
	// leave the length field out.
	align := max(bs, 8)
	base := 5 + len(payload)
	if mode != ModeClassic {
		base -= 4
	}
	pad := align - base%align
	if pad < 4 {
		pad += align
	}
	pad += align * r.IntN(3)
	plen := 1 + len(payload) + pad
	pkt := make([]byte, 4+plen, 4+plen+tagSize)
	binary.BigEndian.PutUint32(pkt, uint32(plen))
	pkt[4] = byte(pad)
	copy(pkt[5:], payload)
	for i := 5 + len(payload); i < len(pkt); i++ {
		pkt[i] = byte(r.Uint32())
	}
	return pkt
}

func randPayload(r *rand.Rand, i int) []byte {
	var n int
	switch i % 5 {
	case 0:
		n = 0
	case 1:
		n = r.IntN(16)
	case 2:
		n = r.IntN(300)
	case 3:
		n = r.IntN(5000)
	default:
		n = 32<<10 + r.IntN(64)
	}
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(r.Uint32())
	}
	return p
}

// openPacket runs the receive side the way the packet layer will.
func openPacket(t testing.TB, o Opener, seq uint32, wire, dst []byte) (uint32, []byte, bool) {
	t.Helper()
	l := o.DecryptLength(seq, wire[:o.HeadSize()])
	body, ok := o.Open(seq, dst, wire)
	return l, body, ok
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeClassic: "classic", ModeETM: "etm", ModeAEAD: "aead", 7: "Mode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", m, got, want)
		}
	}
}

func TestLists(t *testing.T) {
	for _, m := range DefaultMACs {
		if m == HMACSHA1 || m == HMACSHA1ETM {
			t.Errorf("DefaultMACs contains %s", m)
		}
	}
	for _, m := range []string{HMACSHA1, HMACSHA1ETM} {
		found := false
		for _, s := range SupportedMACs {
			found = found || s == m
		}
		if !found {
			t.Errorf("SupportedMACs lacks %s", m)
		}
	}
	want := []string{Chacha20Poly1305, AES128GCM, AES256GCM, AES128CTR, AES192CTR, AES256CTR}
	if fmt.Sprint(DefaultCiphers) != fmt.Sprint(want) {
		t.Errorf("DefaultCiphers = %v", DefaultCiphers)
	}
	for _, c := range SupportedCiphers {
		if _, _, _, err := Sizes(c, HMACSHA256); err != nil {
			t.Errorf("Sizes(%s): %v", c, err)
		}
	}
	for _, c := range []string{Chacha20Poly1305, AES128GCM, AES256GCM} {
		if !IsAEAD(c) {
			t.Errorf("IsAEAD(%s) = false", c)
		}
	}
	for _, c := range []string{AES128CTR, AES192CTR, AES256CTR, "none", ""} {
		if IsAEAD(c) {
			t.Errorf("IsAEAD(%s) = true", c)
		}
	}
}

func TestSizes(t *testing.T) {
	type sz struct{ key, iv, mac int }
	cipherSz := map[string]sz{
		Chacha20Poly1305: {64, 0, 0}, AES128GCM: {16, 12, 0}, AES256GCM: {32, 12, 0},
		AES128CTR: {16, 16, 0}, AES192CTR: {24, 16, 0}, AES256CTR: {32, 16, 0},
		AES128CBC: {16, 16, 0}, AES192CBC: {24, 16, 0}, AES256CBC: {32, 16, 0}, TripleDESCBC: {24, 8, 0},
	}
	macSz := map[string]int{
		HMACSHA256: 32, HMACSHA512: 64, HMACSHA1: 20,
		HMACSHA256ETM: 32, HMACSHA512ETM: 64, HMACSHA1ETM: 20,
		// OpenSSH mac.c: "umac-64@openssh.com ... 128 (key bits), 64 (tag bits)".
		UMAC64: 16, UMAC128: 16, UMAC64ETM: 16, UMAC128ETM: 16,
		HMACSHA196: 20, HMACMD5: 16,
	}
	macsPlusJunk := append(append([]string{}, SupportedMACs...), "hmac-ripemd160", "")
	for _, c := range SupportedCiphers {
		for _, m := range macsPlusJunk {
			k, iv, mk, err := Sizes(c, m)
			want := cipherSz[c]
			if !IsAEAD(c) {
				ml, known := macSz[m]
				if !known {
					var ue *UnsupportedError
					if !errors.As(err, &ue) || ue.Kind != "mac" || ue.Name != m {
						t.Errorf("Sizes(%s, %q) err = %v, want mac UnsupportedError", c, m, err)
					}
					continue
				}
				want.mac = ml
			}
			if err != nil || k != want.key || iv != want.iv || mk != want.mac {
				t.Errorf("Sizes(%s, %q) = %d, %d, %d, %v; want %d, %d, %d", c, m, k, iv, mk, err, want.key, want.iv, want.mac)
			}
		}
	}
}

func TestUnsupported(t *testing.T) {
	check := func(err error, kind, name string) {
		t.Helper()
		var ue *UnsupportedError
		if !errors.As(err, &ue) || ue.Kind != kind || ue.Name != name {
			t.Fatalf("err = %v, want UnsupportedError{%s, %s}", err, kind, name)
		}
		if want := fmt.Sprintf("sshtap: cipher: unsupported %s %q", kind, name); err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	}
	k16 := make([]byte, 16)
	_, _, _, err := Sizes("blowfish-cbc", HMACSHA256)
	check(err, "cipher", "blowfish-cbc")
	_, err = NewSealer("arcfour", HMACSHA256, k16, k16, make([]byte, 32))
	check(err, "cipher", "arcfour")
	_, err = NewOpener("none", HMACSHA256, nil, nil, nil)
	check(err, "cipher", "none")
	_, err = NewSealer(AES128CTR, "umac-32@openssh.com", k16, k16, nil)
	check(err, "mac", "umac-32@openssh.com")
	_, err = NewOpener(AES128CTR, "hmac-ripemd160", k16, k16, nil)
	check(err, "mac", "hmac-ripemd160")

	// The MAC is ignored for AEAD ciphers, whatever its name.
	if _, err := NewSealer(AES128GCM, "hmac-md5", k16, make([]byte, 12), nil); err != nil {
		t.Errorf("AES-GCM with an unknown MAC: %v", err)
	}
	if _, err := NewOpener(Chacha20Poly1305, "", make([]byte, 64), nil, nil); err != nil {
		t.Errorf("chacha20-poly1305 without a MAC: %v", err)
	}
}

func TestKeySizeErrors(t *testing.T) {
	cases := []struct {
		c, m            string
		key, iv, macKey int
		what            string
	}{
		{Chacha20Poly1305, "", 32, 0, 0, "key"},
		{AES128GCM, "", 16, 16, 0, "iv"},
		{AES256GCM, "", 16, 12, 0, "key"},
		{AES192CTR, HMACSHA256, 24, 12, 32, "iv"},
		{AES256CTR, HMACSHA512ETM, 32, 16, 32, "mac key"},
		{AES128CTR, UMAC64ETM, 16, 16, 32, "mac key"},
		{AES128CTR, UMAC128, 16, 16, 0, "mac key"},
	}
	for _, tc := range cases {
		for _, newf := range []func() error{
			func() error {
				_, err := NewSealer(tc.c, tc.m, make([]byte, tc.key), make([]byte, tc.iv), make([]byte, tc.macKey))
				return err
			},
			func() error {
				_, err := NewOpener(tc.c, tc.m, make([]byte, tc.key), make([]byte, tc.iv), make([]byte, tc.macKey))
				return err
			},
		} {
			var ke *KeySizeError
			if err := newf(); !errors.As(err, &ke) || ke.What != tc.what {
				t.Errorf("%s/%s: err = %v, want KeySizeError for %s", tc.c, tc.m, err, tc.what)
			}
		}
	}
}

func TestShape(t *testing.T) {
	for _, c := range allCombos() {
		s, o := c.pair(t, 1)
		wantMode := ModeClassic
		switch {
		case IsAEAD(c.cipher):
			wantMode = ModeAEAD
		case macs[c.mac].etm:
			wantMode = ModeETM
		}
		wantBS := 16
		if c.cipher == Chacha20Poly1305 || c.cipher == TripleDESCBC {
			wantBS = 8
		}
		wantTag := 16
		if !IsAEAD(c.cipher) {
			wantTag = macs[c.mac].size
		}
		wantHead := 4
		if wantMode == ModeClassic {
			wantHead = wantBS
		}
		if s.Mode() != wantMode || o.Mode() != wantMode || s.BlockSize() != wantBS || o.BlockSize() != wantBS ||
			s.TagSize() != wantTag || o.TagSize() != wantTag || o.HeadSize() != wantHead {
			t.Errorf("%v: mode %v/%v bs %d/%d tag %d/%d head %d; want %v %d %d %d", c,
				s.Mode(), o.Mode(), s.BlockSize(), o.BlockSize(), s.TagSize(), o.TagSize(), o.HeadSize(),
				wantMode, wantBS, wantTag, wantHead)
		}
	}
}

// TestRoundTrip seals and opens many packets of changing lengths for every
// cipher and MAC; any drift in the CTR position, GCM counter or sequence
// number handling breaks a later packet.
func TestRoundTrip(t *testing.T) {
	for _, c := range allCombos() {
		t.Run(c.String(), func(t *testing.T) {
			s, o := c.pair(t, 2)
			r := rand.New(rand.NewPCG(3, 4))
			seq := uint32(0xfffffff0) // cross the 2^32 sequence wrap (RFC 4253 §6.4)
			var dst []byte
			for i := range 60 {
				payload := randPayload(r, i)
				pkt := buildPacket(r, payload, s.Mode(), s.BlockSize(), s.TagSize())
				want := bytes.Clone(pkt)
				wire := s.Seal(seq, pkt)
				if len(wire) != len(want)+s.TagSize() {
					t.Fatalf("packet %d: sealed %d bytes, want %d", i, len(wire), len(want)+s.TagSize())
				}
				if &wire[0] != &pkt[0] {
					t.Fatalf("packet %d: Seal did not reuse pkt's capacity", i)
				}
				if bytes.Equal(wire[4:len(want)], want[4:]) && len(want) > 4 {
					t.Fatalf("packet %d: body not encrypted", i)
				}
				if i%7 == 3 {
					dst = nil // exercise growing dst
				}
				l, body, ok := openPacket(t, o, seq, wire, dst)
				if !ok {
					t.Fatalf("packet %d (seq %d, %d bytes): tag mismatch", i, seq, len(want))
				}
				if l != binary.BigEndian.Uint32(want) {
					t.Fatalf("packet %d: DecryptLength = %d, want %d", i, l, binary.BigEndian.Uint32(want))
				}
				if !bytes.Equal(body, want[4:]) {
					t.Fatalf("packet %d: body differs", i)
				}
				dst = body
				seq++
			}
		})
	}
}

// TestSealGrows checks Seal when pkt has no spare capacity.
func TestSealGrows(t *testing.T) {
	for _, c := range allCombos() {
		s, o := c.pair(t, 5)
		r := rand.New(rand.NewPCG(1, 1))
		pkt := buildPacket(r, []byte("hello"), s.Mode(), s.BlockSize(), 0)
		want := bytes.Clone(pkt)
		wire := s.Seal(9, pkt[:len(pkt):len(pkt)])
		if len(wire) != len(want)+s.TagSize() {
			t.Fatalf("%v: sealed %d bytes", c, len(wire))
		}
		_, body, ok := openPacket(t, o, 9, wire, nil)
		if !ok || !bytes.Equal(body, want[4:]) {
			t.Errorf("%v: round trip through a grown buffer failed", c)
		}
	}
}

// TestTamper flips one byte in each region of a packet and checks that Open
// reports a mismatch, still returns the unauthenticated decryption, and that
// the next authentic packet opens (the stream stays in sync).
func TestTamper(t *testing.T) {
	for _, c := range allCombos() {
		for _, region := range []string{"length", "first-block", "body", "last-body-byte", "tag"} {
			t.Run(c.String()+"/"+region, func(t *testing.T) {
				s, o := c.pair(t, 6)
				r := rand.New(rand.NewPCG(7, 8))
				var plain, wires [][]byte
				for i := range 3 {
					pkt := buildPacket(r, randPayload(r, 3), s.Mode(), s.BlockSize(), s.TagSize())
					plain = append(plain, bytes.Clone(pkt))
					wires = append(wires, s.Seal(uint32(100+i), pkt))
				}
				w := wires[1]
				n := len(w) - s.TagSize()
				var at int
				switch region {
				case "length":
					at = 2
				case "first-block":
					at = 6
				case "body":
					at = 4 + r.IntN(n-4)
				case "last-body-byte":
					at = n - 1
				case "tag":
					at = n + r.IntN(s.TagSize())
				}
				const flip = 0x40
				w[at] ^= flip
				orig := bytes.Clone(w)

				if _, body, ok := openPacket(t, o, 100, wires[0], nil); !ok || !bytes.Equal(body, plain[0][4:]) {
					t.Fatal("packet 0 did not open")
				}
				_, body, ok := openPacket(t, o, 101, w, nil)
				if ok {
					t.Fatalf("flipped byte %d (%s) went unnoticed", at, region)
				}
				if !bytes.Equal(w, orig) {
					t.Fatal("Open modified pkt")
				}
				// The unauthenticated decryption: the CTR and AEAD
				// ciphers are stream ciphers over the body, so a flipped
				// ciphertext byte flips exactly that plaintext byte; a
				// flipped length or tag leaves the body intact. CBC
				// garbles the flipped block and flips the byte one block
				// later: its expected body is the reference decryption.
				want := bytes.Clone(plain[1][4:])
				if slices.Contains(legacyCiphers, c.cipher) {
					want = cbcReferenceOpen(t, c, wires[0], w, s.Mode())
				} else if at >= 4 && at < n {
					want[at-4] ^= flip
				}
				if !bytes.Equal(body, want) {
					t.Fatalf("unauthenticated body differs from expected decryption")
				}
				if slices.Contains(legacyCiphers, c.cipher) {
					// RFC 4253 §6.3: the next packet's IV is the last
					// ciphertext block as received, so a flip there
					// garbles the next packet's first block (its length
					// in classic mode, which then fails the MAC over the
					// plaintext); elsewhere the chain is intact.
					_, body, ok := openPacket(t, o, 102, wires[2], nil)
					inLast := at >= n-s.BlockSize() && at < n
					if want := cbcReferenceOpen(t, c, w, wires[2], s.Mode()); !bytes.Equal(body, want) {
						t.Fatal("packet after the tampered one: body differs from the CBC chain")
					}
					if wantOK := !inLast || s.Mode() != ModeClassic; ok != wantOK {
						t.Fatalf("packet after the tampered one: ok = %v, want %v", ok, wantOK)
					}
					return
				}
				if _, body, ok := openPacket(t, o, 102, wires[2], nil); !ok || !bytes.Equal(body, plain[2][4:]) {
					t.Fatal("packet after the tampered one did not open: stream out of sync")
				}
			})
		}
	}
}

// TestWrongSeq checks that the sequence number is authenticated. AES-GCM
// does not use it: RFC 5647 §7.1 puts its own invocation counter in the
// nonce, so there a replayed packet (same seq) must fail instead.
func TestWrongSeq(t *testing.T) {
	for _, c := range allCombos() {
		s, o := c.pair(t, 9)
		r := rand.New(rand.NewPCG(1, 2))
		pkt := buildPacket(r, []byte("payload"), s.Mode(), s.BlockSize(), s.TagSize())
		wire := s.Seal(41, pkt)
		if c.cipher == AES128GCM || c.cipher == AES256GCM {
			if _, _, ok := openPacket(t, o, 41, wire, nil); !ok {
				t.Errorf("%v: packet did not open", c)
			}
			if _, _, ok := openPacket(t, o, 42, wire, nil); ok {
				t.Errorf("%v: replayed packet opened", c)
			}
			continue
		}
		if _, _, ok := openPacket(t, o, 42, wire, nil); ok {
			t.Errorf("%v: packet sealed with seq 41 opened as seq 42", c)
		}
	}
}

// TestShortPackets feeds Open inputs too short to be packets: no panic, no
// success.
func TestShortPackets(t *testing.T) {
	for _, c := range allCombos() {
		_, o := c.pair(t, 10)
		for n := 0; n < o.HeadSize()+o.TagSize(); n++ {
			b := make([]byte, n)
			if n >= o.HeadSize() {
				o.DecryptLength(1, b)
			} else if l := o.DecryptLength(1, b); l != 0 {
				t.Errorf("%v: DecryptLength of %d bytes = %d", c, n, l)
			}
			if body, ok := o.Open(1, nil, b); ok || len(body) != 0 {
				t.Errorf("%v: Open of %d bytes = %d bytes, %v", c, n, len(body), ok)
			}
		}
	}
}

// TestDecryptLengthDoesNotModifyHead is the Opener contract.
func TestDecryptLengthDoesNotModifyHead(t *testing.T) {
	for _, c := range allCombos() {
		s, o := c.pair(t, 11)
		r := rand.New(rand.NewPCG(1, 3))
		pkt := buildPacket(r, []byte("abc"), s.Mode(), s.BlockSize(), s.TagSize())
		wire := s.Seal(5, pkt)
		orig := bytes.Clone(wire)
		o.DecryptLength(5, wire[:o.HeadSize()])
		if !bytes.Equal(wire, orig) {
			t.Errorf("%v: DecryptLength modified head", c)
		}
	}
}

// TestChachaTightDst opens chacha20-poly1305 packets into dst buffers with no
// capacity beyond the body, which takes the prefix-plus-tail path.
func TestChachaTightDst(t *testing.T) {
	c := combo{Chacha20Poly1305, ""}
	s, o := c.pair(t, 12)
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 700; n++ {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		pkt := buildPacket(r, payload, ModeAEAD, 8, 16)
		want := bytes.Clone(pkt[4:])
		wire := s.Seal(uint32(n), pkt)
		o.DecryptLength(uint32(n), wire)
		dst := make([]byte, len(want))
		body, ok := o.Open(uint32(n), dst, wire)
		if !ok || !bytes.Equal(body, want) {
			t.Fatalf("payload %d: ok=%v, body equal=%v", n, ok, bytes.Equal(body, want))
		}
		if &body[0] != &dst[0] {
			t.Fatalf("payload %d: dst not reused", n)
		}
	}
}

// TestZeroAllocs: 0 allocs per packet for Seal and DecryptLength+Open, on
// authentic and on tampered packets.
func TestZeroAllocs(t *testing.T) {
	for _, c := range allCombos() {
		t.Run(c.String(), func(t *testing.T) {
			s, o := c.pair(t, 13)
			r := rand.New(rand.NewPCG(9, 9))
			payload := make([]byte, 1000)
			pkt := buildPacket(r, payload, s.Mode(), s.BlockSize(), s.TagSize())
			plen := len(pkt)
			buf := pkt[: plen : plen+s.TagSize()]
			dst := make([]byte, 0, plen)
			tight := make([]byte, plen-4)
			seq := uint32(0)
			allocs := testing.AllocsPerRun(50, func() {
				w := s.Seal(seq, buf[:plen])
				o.DecryptLength(seq, w[:o.HeadSize()])
				if _, ok := o.Open(seq, dst, w); !ok {
					panic("open failed")
				}
				seq++
				// Tampered packet: the failure path must not allocate either.
				w = s.Seal(seq, buf[:plen])
				w[len(w)-1] ^= 1
				o.DecryptLength(seq, w[:o.HeadSize()])
				if _, ok := o.Open(seq, tight, w); ok {
					panic("tampered packet opened")
				}
				seq++
			})
			if allocs != 0 {
				t.Errorf("%v allocs per seal+open, want 0", allocs)
			}
		})
	}
}

// TestSealShortPanics: an AEAD Sealer refuses a packet without a length
// field instead of emitting it unprotected.
func TestSealShortPanics(t *testing.T) {
	for _, c := range []combo{{Chacha20Poly1305, ""}, {AES128GCM, ""}} {
		s, _ := c.pair(t, 1)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v: Seal of 3 bytes did not panic", c)
				}
			}()
			s.Seal(0, make([]byte, 3, 64))
		}()
	}
}
