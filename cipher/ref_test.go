package cipher

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20"
	//lint:ignore SA1019 the reference chacha20-poly1305@openssh.com needs the raw one-time Poly1305 of PROTOCOL.chacha20poly1305
	"golang.org/x/crypto/poly1305"
)

// refChacha is an independent, straightforward implementation of
// chacha20-poly1305@openssh.com written from PROTOCOL.chacha20poly1305
// with x/crypto/chacha20 alone (no IETF AEAD). It cross-checks the package's
// AEAD-keystream construction and is the "generic" side of
// BenchmarkChachaConstruction. It works in place and allocates nothing.
type refChacha struct {
	k1, k2 [32]byte // K_1 length key (bytes 32..63), K_2 main key (bytes 0..31)
}

func newRefChacha(key []byte) *refChacha {
	r := new(refChacha)
	copy(r.k2[:], key[:32])
	copy(r.k1[:], key[32:])
	return r
}

func refNonce(seq uint32) [12]byte {
	// "The nonce is the packet sequence number encoded as a uint64": the
	// original ChaCha20 64-bit nonce, which in x/crypto's 12-byte layout
	// sits in bytes 4..11 behind the (zero) high word of the block counter.
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], uint64(seq))
	return n
}

// seal protects pkt (length || body) in place and appends the tag; pkt must
// have 16 bytes of spare capacity.
func (r *refChacha) seal(seq uint32, pkt []byte) []byte {
	nonce := refNonce(seq)
	n := len(pkt)
	// Length: K_1, block counter 0.
	lc, _ := chacha20.NewUnauthenticatedCipher(r.k1[:], nonce[:])
	lc.XORKeyStream(pkt[:4], pkt[:4])
	// Poly1305 key: K_2, block counter 0, first 32 bytes; payload: K_2 from
	// block counter 1.
	mc, _ := chacha20.NewUnauthenticatedCipher(r.k2[:], nonce[:])
	var polyKey [32]byte
	mc.XORKeyStream(polyKey[:], polyKey[:])
	mc.SetCounter(1)
	mc.XORKeyStream(pkt[4:n], pkt[4:n])
	pkt = pkt[:n+16]
	poly1305.Sum((*[16]byte)(pkt[n:]), pkt[:n], &polyKey)
	return pkt
}

// open authenticates pkt and decrypts its body into dst.
func (r *refChacha) open(seq uint32, dst, pkt []byte) ([]byte, uint32, bool) {
	nonce := refNonce(seq)
	n := len(pkt) - 16
	var l [4]byte
	lc, _ := chacha20.NewUnauthenticatedCipher(r.k1[:], nonce[:])
	lc.XORKeyStream(l[:], pkt[:4])
	mc, _ := chacha20.NewUnauthenticatedCipher(r.k2[:], nonce[:])
	var polyKey [32]byte
	mc.XORKeyStream(polyKey[:], polyKey[:])
	ok := poly1305.Verify((*[16]byte)(pkt[n:]), pkt[:n], &polyKey)
	mc.SetCounter(1)
	dst = dst[:n-4]
	mc.XORKeyStream(dst, pkt[4:n])
	return dst, binary.BigEndian.Uint32(l[:]), ok
}

// TestChachaMatchesReference seals with the package and with refChacha for
// many sequence numbers and lengths (including lengths that are not
// multiples of the 64-byte ChaCha block), and opens each with the other.
func TestChachaMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(21, 22))
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(rnd.Uint32())
	}
	ref := newRefChacha(key)
	s, err := NewSealer(Chacha20Poly1305, "", key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := NewOpener(Chacha20Poly1305, "", key, nil, nil)
	seqs := []uint32{0, 1, 7, 0x7fffffff, 0xffffffff}
	for i := range 400 {
		seq := seqs[i%len(seqs)] + uint32(i)
		n := 4 + rnd.IntN(300)
		if i%10 == 0 {
			n = 4 + rnd.IntN(70000)
		}
		pkt := make([]byte, n, n+16)
		for j := range pkt {
			pkt[j] = byte(rnd.Uint32())
		}
		plain := bytes.Clone(pkt)
		got := s.Seal(seq, bytes.Clone(pkt))
		want := ref.seal(seq, pkt)
		if !bytes.Equal(got, want) {
			t.Fatalf("seq %d len %d: package and reference disagree", seq, n)
		}
		body, l, ok := ref.open(seq, make([]byte, n), got)
		if !ok || l != binary.BigEndian.Uint32(plain) || !bytes.Equal(body, plain[4:]) {
			t.Fatalf("seq %d len %d: reference cannot open package output", seq, n)
		}
		if l2 := o.DecryptLength(seq, want); l2 != l {
			t.Fatalf("seq %d: DecryptLength %d, reference %d", seq, l2, l)
		}
		body2, ok := o.Open(seq, nil, want)
		if !ok || !bytes.Equal(body2, plain[4:]) {
			t.Fatalf("seq %d len %d: package cannot open reference output", seq, n)
		}
	}
}

// TestChachaWithoutFastPath forces the x/crypto/chacha20 fallback used when
// the IETF AEAD is unavailable (FIPS 140-only mode) and checks it against
// the reference.
func TestChachaWithoutFastPath(t *testing.T) {
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(3 * i)
	}
	ref := newRefChacha(key)
	s, o := newChachaSealer(key), newChachaOpener(key)
	s.c.fast, o.c.fast = nil, nil
	for n := 4; n < 600; n += 37 {
		pkt := make([]byte, n, n+16)
		for j := range pkt {
			pkt[j] = byte(j)
		}
		got := s.Seal(uint32(n), bytes.Clone(pkt))
		want := ref.seal(uint32(n), pkt)
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: fallback disagrees with reference", n)
		}
		body, ok := o.Open(uint32(n), nil, got)
		if !ok || len(body) != n-4 || (n > 4 && body[0] != 4) {
			t.Fatalf("len %d: fallback open failed", n)
		}
	}
}
