package cipher

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// umacTag computes the UMAC tag of msg with the package's implementation,
// writing msg in pieces of the given sizes (cycled) when pieces is not
// empty.
func umacTag(t testing.TB, key, nonce, msg []byte, size int, pieces ...int) []byte {
	t.Helper()
	u, err := newUMAC(key, size)
	if err != nil {
		t.Fatal(err)
	}
	u.begin([8]byte(nonce))
	for i := 0; len(msg) > 0; i++ {
		n := len(msg)
		if len(pieces) > 0 {
			n = min(n, pieces[i%len(pieces)])
		}
		u.write(msg[:n])
		msg = msg[n:]
	}
	out := make([]byte, size)
	u.sumTo(out)
	return out
}

// TestUMACRFC4418 runs the RFC 4418 Appendix test vectors (with erratum
// 3507 for 'a' * 2^25, the only one long enough for POLY-128) for every tag
// length, the message written at once and in odd-sized pieces (the 32 MiB
// message in pieces for UMAC-64 only), and checks the reference
// transcription against the vectors up to 1 MiB.
func TestUMACRFC4418(t *testing.T) {
	var f struct {
		Key, Nonce string
		Vectors    []struct {
			Message, Part            string
			Repeat                   int
			Tag4, Tag8, Tag12, Tag16 string
		}
	}
	loadJSON(t, "umac-rfc4418.json", &f)
	key, nonce := []byte(f.Key), []byte(f.Nonce)
	for _, v := range f.Vectors {
		msg := []byte(strings.Repeat(v.Part, v.Repeat))
		long := len(msg) > 1<<20
		for _, c := range []struct {
			size int
			want string
		}{{4, v.Tag4}, {8, v.Tag8}, {12, v.Tag12}, {16, v.Tag16}} {
			want, err := hex.DecodeString(c.want)
			if err != nil || len(want) != c.size {
				t.Fatalf("%s: bad %d-byte tag %q in the vector file", v.Message, c.size, c.want)
			}
			if long && testing.Short() && c.size != 8 {
				continue
			}
			if got := umacTag(t, key, nonce, msg, c.size); !bytes.Equal(got, want) {
				t.Errorf("%s: UMAC-%d = %X, want %X", v.Message, 8*c.size, got, want)
			}
			if long && c.size != 8 {
				continue // 32 MiB once more per tag length is slow under -race
			}
			if got := umacTag(t, key, nonce, msg, c.size, 1, 31, 33, 1000, 5, 4099); !bytes.Equal(got, want) {
				t.Errorf("%s: UMAC-%d written in pieces = %X, want %X", v.Message, 8*c.size, got, want)
			}
			if !long {
				if got := refUMAC(key, nonce, msg, c.size); !bytes.Equal(got, want) {
					t.Errorf("%s: reference UMAC-%d = %X, want %X", v.Message, 8*c.size, got, want)
				}
			}
		}
	}
}

// TestUMACReference compares the implementation with the big.Int
// transcription of RFC 4418 over random keys, nonces and message lengths
// around the 32-byte NH step and the 1024-byte L1 chunk, for every tag
// length, with the message written in random pieces.
func TestUMACReference(t *testing.T) {
	r := rand.New(rand.NewPCG(4418, 1))
	lengths := []int{0, 1, 31, 32, 33, 1023, 1024, 1025, 2047, 2048, 2049, 3000, 4096, 32768 + 13}
	for range 40 {
		lengths = append(lengths, r.IntN(9000))
	}
	for i, n := range lengths {
		key := make([]byte, 16)
		nonce := make([]byte, 8)
		msg := make([]byte, n)
		for _, b := range [][]byte{key, nonce, msg} {
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		}
		if i%3 == 0 {
			// Messages of 0xff bytes give NH sums near 2^64, which
			// exercises POLY's marker path less rarely.
			for j := range msg {
				msg[j] = 0xff
			}
		}
		size := 4 * (1 + i%4)
		want := refUMAC(key, nonce, msg, size)
		pieces := []int{1 + r.IntN(40), 1 + r.IntN(2000), 1 + r.IntN(7)}
		if got := umacTag(t, key, nonce, msg, size, pieces...); !bytes.Equal(got, want) {
			t.Errorf("%d bytes, UMAC-%d: %X, reference %X", n, 8*size, got, want)
		}
	}
}

// TestUMACReferenceLong crosses 2^24 bytes, where L2-HASH moves to
// POLY-128 (RFC 4418 §5.3), with random keys: one message whose POLY-128
// part has an odd and one with an even number of L1 outputs.
func TestUMACReferenceLong(t *testing.T) {
	if testing.Short() {
		t.Skip("32 MiB of reference hashing")
	}
	r := rand.New(rand.NewPCG(4418, 2))
	for i, n := range []int{1<<24 + 1, 1<<24 + 2048 + 100} {
		key := make([]byte, 16)
		msg := make([]byte, n)
		for _, b := range [][]byte{key, msg} {
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		}
		nonce := []byte("sshtap!!")
		size := []int{8, 16}[i]
		want := refUMAC(key, nonce, msg, size)
		if got := umacTag(t, key, nonce, msg, size, 1<<20+3); !bytes.Equal(got, want) {
			t.Errorf("%d bytes, UMAC-%d: %X, reference %X", n, 8*size, got, want)
		}
	}
}

// TestUMACPoly checks the two POLY steps and L3-HASH against math/big on
// random and edge values: y and m at 0, p-1, just below and at
// maxwordrange, 2^64-1 / 2^128-1, and the largest keys the masks allow.
func TestUMACPoly(t *testing.T) {
	r := rand.New(rand.NewPCG(4418, 3))
	p128 := refPrime(128)
	max64 := refPow2Diff(64, 32)
	max128 := refPow2Diff(128, 96)
	poly := func(bits uint, maxword, k, y, m *big.Int) *big.Int {
		// One word of refPOLY from state y.
		p := refPrime(bits)
		if m.Cmp(maxword) >= 0 {
			y = new(big.Int).Mul(y, k)
			y.Add(y, new(big.Int).Sub(p, big.NewInt(1))).Mod(y, p)
			m = new(big.Int).Sub(m, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits), p))
		}
		y = new(big.Int).Mul(y, k)
		return y.Add(y, m).Mod(y, p)
	}
	u64 := func(x *big.Int) uint64 { return x.Uint64() }
	b128 := func(x u128) *big.Int {
		return new(big.Int).SetBytes(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, x.hi), x.lo))
	}
	to128 := func(x *big.Int) u128 {
		b := x.FillBytes(make([]byte, 16))
		return u128{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
	}
	edges64 := []uint64{0, 1, umacP64 - 1, umacP64 - 2, umacMaxWord64 - 1, umacMaxWord64, ^uint64(0), 1 << 63}
	for i := range 3000 {
		k := r.Uint64() & umacMask64
		if i%5 == 0 {
			k = umacMask64
		}
		y, m := r.Uint64()%umacP64, r.Uint64()
		if i < len(edges64)*len(edges64) {
			y, m = edges64[i/len(edges64)]%umacP64, edges64[i%len(edges64)]
		}
		want := poly(64, max64, new(big.Int).SetUint64(k), new(big.Int).SetUint64(y), new(big.Int).SetUint64(m))
		if got := umacPoly64(y, k, m); got != u64(want) {
			t.Fatalf("POLY-64 k=%#x y=%#x m=%#x: %#x, want %#x", k, y, m, got, want)
		}

		kk := u128{r.Uint64() & umacMask64, r.Uint64() & umacMask64}
		if i%5 == 0 {
			kk = u128{umacMask64, umacMask64}
		}
		yy := to128(new(big.Int).Mod(b128(u128{r.Uint64(), r.Uint64()}), p128))
		mm := u128{r.Uint64(), r.Uint64()}
		switch i % 7 {
		case 1:
			mm.hi |= 0xFFFFFFFF << 32 // at or above maxwordrange
		case 2:
			yy = to128(new(big.Int).Sub(p128, big.NewInt(1)))
			mm = u128{^uint64(0), ^uint64(0)}
		case 3:
			mm = to128(new(big.Int).Sub(max128, big.NewInt(1)))
		case 4:
			mm = to128(max128)
		}
		want = poly(128, max128, b128(kk), b128(yy), b128(mm))
		if got := umacPoly128(yy, kk, mm); b128(got).Cmp(want) != 0 {
			t.Fatalf("POLY-128 k=%x y=%x m=%x: %x, want %x", b128(kk), b128(yy), b128(mm), b128(got), want)
		}

		var k1 [8]uint64
		var k1b []byte
		for j := range k1 {
			w := r.Uint64()
			if i%3 == 0 {
				w = ^uint64(0)
			}
			k1b = binary.BigEndian.AppendUint64(k1b, w)
			k1[j] = w % umacP36
		}
		k2 := r.Uint32()
		b := u128{r.Uint64(), r.Uint64()}
		if i%3 == 0 {
			b = u128{^uint64(0), ^uint64(0)}
		}
		wantL3 := refL3(k1b, binary.BigEndian.AppendUint32(nil, k2), b128(b).FillBytes(make([]byte, 16)))
		if got := umacL3(&k1, k2, b); got != binary.BigEndian.Uint32(wantL3) {
			t.Fatalf("L3-HASH: %#x, want %x", got, wantL3)
		}
	}
}

// TestUMACPacketMAC checks the SSH use (OpenSSH mac.c): the nonce is the
// sequence number as a 64-bit big-endian integer, the tag covers exactly
// the packet (classic: the plaintext packet; etm: packet_length ||
// ciphertext) without the sequence number, and the public Sealer's tag is
// the reference UMAC of that input. Consecutive sequence numbers (which
// share one AES block in UMAC-64's pad) and a wrap of the 32-bit counter are
// covered.
func TestUMACPacketMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(4418, 4))
	for _, mac := range []string{UMAC64, UMAC128, UMAC64ETM, UMAC128ETM} {
		mi := macs[mac]
		c := combo{AES128CTR, mac}
		key, iv, macKey := c.keys(t, 7)
		s, err := NewSealer(AES128CTR, mac, key, iv, macKey)
		if err != nil {
			t.Fatal(err)
		}
		for i, seq := range []uint32{0, 1, 2, 3, 0xfffffffe, 0xffffffff, 0, 7, 6} {
			pkt := buildPacket(r, randPayload(r, i), s.Mode(), s.BlockSize(), s.TagSize())
			plain := bytes.Clone(pkt)
			wire := s.Seal(seq, pkt)
			n := len(wire) - mi.size
			input := plain // classic: MAC over the unencrypted packet
			if mi.etm {
				input = wire[:n] // etm: MAC over length || ciphertext as sent
			}
			nonce := binary.BigEndian.AppendUint64(nil, uint64(seq))
			if want := refUMAC(macKey, nonce, input, mi.size); !bytes.Equal(wire[n:], want) {
				t.Fatalf("%s seq %d: tag %x, reference %x", mac, seq, wire[n:], want)
			}
		}
	}
}
