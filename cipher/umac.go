package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// UMAC (RFC 4418) with AES-128 as the block cipher, as the
// umac-64@openssh.com and umac-128@openssh.com MACs use it (OpenSSH PROTOCOL
// §1.1, draft-miller-secsh-umac-01). RFC 4418 §2: "Tag = H_K1(M) xor
// F_K2(Nonce)", where H is UHASH (three hash layers, L1 NH, L2 POLY, L3 inner
// product) run once per 4 bytes of tag, and F is the AES-based pad (PDF).
//
// The implementation is incremental (write may be called any number of
// times between begin and sum) so that a classic-mode receiver can hash the
// decrypted length field and the body from separate buffers, and it keeps
// every piece of state in the struct: hashing a packet allocates nothing.

const (
	umacKeyLen   = 16   // RFC 4418 §3: KEYLEN = 16 for AES-128
	umacL1Len    = 1024 // RFC 4418 §5.2: L1-HASH splits M into 1024-byte chunks
	umacMaxIters = 4    // RFC 4418 §5.1 (UHASH): iters = taglen / 4, taglen <= 16
	// umacL2Switch is the number of L1 outputs (8 bytes each) after which
	// L2-HASH moves from POLY-64 to POLY-128: RFC 4418 §5.3 "if
	// (bytelength(M) <= 2^17)" over the L1 output, i.e. messages of up to
	// 2^24 bytes use POLY-64 alone.
	umacL2Switch = 1 << 14

	// RFC 4418 §5.3 (L2-HASH): "Mask64 = uint2str(0x01FFFFFF01FFFFFF, 8)".
	umacMask64 = 0x01FFFFFF01FFFFFF
	// POLY-64 (RFC 4418 §5.3.1): p = prime(64) = 2^64 - 59, "maxwordrange"
	// 2^64 - 2^32, offset = 2^64 - p, marker = p - 1.
	umacP64          = 1<<64 - 59
	umacP64Offset    = 59
	umacMaxWord64    = 1<<64 - 1<<32
	umacP64MarkerVal = umacP64 - 1
	// POLY-128: p = prime(128) = 2^128 - 159, maxwordrange 2^128 - 2^96.
	umacP128Offset = 159
	// L3-HASH (RFC 4418 §5.4): prime(36) = 2^36 - 5.
	umacP36 = 1<<36 - 5
)

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

// umac computes UMAC tags of size bytes (4, 8, 12 or 16; SSH uses 8 and 16)
// with an 8-byte nonce. It is not safe for concurrent use.
type umac struct {
	size  int // tag length in bytes
	iters int // RFC 4418 §5.1 (UHASH): "iters = taglen / 4"

	// Keys derived once by the KDF (RFC 4418 §5.1 (UHASH): "L1Key = KDF(K, 1, 1024 +
	// (iters - 1) * 16)" and so on). l1Key holds big-endian 32-bit words;
	// iteration i uses l1Key[4*i:], "L1Key_i = L1Key[(i-1)*16+1 ...
	// (i-1)*16+1024]".
	l1Key  [(umacL1Len + 16*(umacMaxIters-1)) / 4]uint32
	l2k64  [umacMaxIters]uint64
	l2k128 [umacMaxIters]u128
	l3k1   [umacMaxIters][8]uint64 // already reduced mod prime(36)
	l3k2   [umacMaxIters]uint32
	pdf    stdcipher.Block // AES under K' = KDF(K, 0, 16)

	// The last pad block (RFC 4418 §3.3 (PDF): T = ENCIPHER(K', Nonce)): with
	// 8-byte tags two consecutive sequence numbers share one block.
	padIn, padOut [16]byte
	padValid      bool

	// Per-message state, reset by begin.
	nonce      [8]byte
	nh         [umacMaxIters]uint64 // NH sums of the current L1 chunk
	chunkBytes int                  // message bytes in the current L1 chunk
	chunks     uint64               // L1 chunks completed and fed to L2
	y64        [umacMaxIters]uint64 // POLY-64 state
	y128       [umacMaxIters]u128   // POLY-128 state once past umacL2Switch
	half       [umacMaxIters]uint64 // an L1 output waiting for its pair in POLY-128
	buf        [32]byte             // message bytes short of a 32-byte NH step
	nbuf       int
	sum        [16]byte
}

// newUMAC derives every subkey from the 16-byte key. size must be 4, 8, 12
// or 16; the callers check it.
func newUMAC(key []byte, size int) (*umac, error) {
	if len(key) != umacKeyLen {
		return nil, &KeySizeError{Name: "umac", What: "mac key", Got: len(key), Want: umacKeyLen}
	}
	u := &umac{size: size, iters: size / 4}
	kb, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var b [umacL1Len + 16*(umacMaxIters-1)]byte

	// RFC 4418 §3.3 (PDF): "K' = KDF(K, 0, KEYLEN)".
	umacKDF(kb, 0, b[:umacKeyLen])
	u.pdf, _ = aes.NewCipher(b[:umacKeyLen]) // 16 bytes: cannot fail

	// RFC 4418 §5.1 (UHASH): "L1Key = KDF(K, 1, 1024 + (iters - 1) * 16)".
	n := umacL1Len + 16*(u.iters-1)
	umacKDF(kb, 1, b[:n])
	for i := range n / 4 {
		u.l1Key[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	// "L2Key = KDF(K, 2, iters * 24)"; §5.3 (L2-HASH): "k64 = str2uint(K[1...8]
	// and Mask64)", "k128 = str2uint(K[9...24] and Mask128)".
	umacKDF(kb, 2, b[:24*u.iters])
	for i := range u.iters {
		k := b[24*i:]
		u.l2k64[i] = binary.BigEndian.Uint64(k) & umacMask64
		u.l2k128[i] = u128{binary.BigEndian.Uint64(k[8:]) & umacMask64, binary.BigEndian.Uint64(k[16:]) & umacMask64}
	}
	// "L3Key1 = KDF(K, 3, iters * 64)"; §5.4 (L3-HASH): "k = str2uint(K_i) mod
	// prime(36)".
	umacKDF(kb, 3, b[:64*u.iters])
	for i := range u.iters {
		for j := range 8 {
			u.l3k1[i][j] = binary.BigEndian.Uint64(b[64*i+8*j:]) % umacP36
		}
	}
	// "L3Key2 = KDF(K, 4, iters * 4)".
	umacKDF(kb, 4, b[:4*u.iters])
	for i := range u.iters {
		u.l3k2[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	clear(b[:])
	return u, nil
}

// umacKDF fills out with KDF(K, index, len(out)) (RFC 4418 §3.2): the
// AES encryptions of "uint2str(index, BLOCKLEN-8) || uint2str(i, 8)" for i =
// 1, 2, ..., concatenated and truncated.
func umacKDF(k stdcipher.Block, index byte, out []byte) {
	var in, t [16]byte
	in[7] = index
	for i := uint64(1); len(out) > 0; i++ {
		binary.BigEndian.PutUint64(in[8:], i)
		k.Encrypt(t[:], in[:])
		out = out[copy(out, t[:]):]
	}
}

// begin starts a new message with nonce.
func (u *umac) begin(nonce [8]byte) {
	u.nonce = nonce
	u.nh = [umacMaxIters]uint64{}
	u.chunkBytes, u.chunks, u.nbuf = 0, 0, 0
	// RFC 4418 §5.3.1 (POLY): "y = 1".
	u.y64 = [umacMaxIters]uint64{1, 1, 1, 1}
}

// write adds p to the message.
func (u *umac) write(p []byte) {
	if u.nbuf > 0 {
		n := copy(u.buf[u.nbuf:], p)
		u.nbuf += n
		p = p[n:]
		if u.nbuf < len(u.buf) {
			return
		}
		u.absorb(u.buf[:])
		u.nbuf = 0
	}
	whole := len(p) &^ 31
	if whole > 0 {
		u.absorb(p[:whole])
	}
	u.nbuf = copy(u.buf[:], p[whole:])
}

// absorb runs NH over p, a multiple of 32 bytes, crossing L1 chunk
// boundaries as needed. A full chunk is handed to L2 only when more data
// follows it: a message that ends with a full chunk has that chunk as its
// last, hashed with its own length (RFC 4418 §5.2 (L1-HASH)).
func (u *umac) absorb(p []byte) {
	for len(p) > 0 {
		if u.chunkBytes == umacL1Len {
			u.endChunk()
		}
		n := min(len(p), umacL1Len-u.chunkBytes)
		k := u.l1Key[u.chunkBytes/4:]
		for i := range u.iters {
			u.nh[i] = umacNH(u.nh[i], k[4*i:], p[:n])
		}
		u.chunkBytes += n
		p = p[n:]
	}
}

// endChunk feeds a full, non-final L1 chunk's hash to L2. RFC 4418 §5.2 (L1-HASH):
// "Len = uint2str(1024 * 8, 8)", "Y = Y || (NH(K, M_i) +_64 Len)".
func (u *umac) endChunk() {
	for i := range u.iters {
		u.l2(i, u.nh[i]+umacL1Len*8)
		u.nh[i] = 0
	}
	u.chunks++
	u.chunkBytes = 0
}

// l2 feeds the L1 output number u.chunks of iteration i to L2-HASH (RFC
// 4418 §5.3 (L2-HASH)): POLY-64 over the first 2^14 outputs, then POLY-128 over
// uint2str(y, 16) followed by the remaining outputs in 16-byte words.
func (u *umac) l2(i int, m uint64) {
	switch n := u.chunks; {
	case n < umacL2Switch:
		u.y64[i] = umacPoly64(u.y64[i], u.l2k64[i], m)
	case (n-umacL2Switch)%2 == 0:
		if n == umacL2Switch {
			// "y = POLY(128, 2^128 - 2^96, k128, uint2str(y, 16) ||
			// M_2)": the POLY-64 result is the first 128-bit word.
			u.y128[i] = umacPoly128(u128{0, 1}, u.l2k128[i], u128{0, u.y64[i]})
		}
		u.half[i] = m
	default:
		u.y128[i] = umacPoly128(u.y128[i], u.l2k128[i], u128{u.half[i], m})
	}
}

// sumTo writes the tag of the message to out (u.size bytes).
func (u *umac) sumTo(out []byte) {
	if u.nbuf > 0 || u.chunkBytes == 0 {
		// RFC 4418 §5.2: "M_t = zeropad(M_t, 32)"; the length added is
		// that of the unpadded M_t. zeropad of the empty message (the
		// only way to get here with chunkBytes 0) is 32 zero bytes.
		if u.chunkBytes == umacL1Len {
			u.endChunk()
		}
		clear(u.buf[u.nbuf:])
		k := u.l1Key[u.chunkBytes/4:]
		for i := range u.iters {
			u.nh[i] = umacNH(u.nh[i], k[4*i:], u.buf[:])
		}
		u.chunkBytes += u.nbuf
		u.nbuf = 0
	}
	for i := range u.iters {
		// RFC 4418 §5.2 (L1-HASH): "Len = uint2str(bitlength(M_t), 8)".
		a := u.nh[i] + uint64(u.chunkBytes)*8
		var b u128
		switch {
		case u.chunks == 0:
			// RFC 4418 §5.1 (UHASH): "if (bitlength(M) <= bitlength(L1Key_i))
			// then B = zeroes(8) || A".
			b = u128{0, a}
		case u.chunks < umacL2Switch:
			b = u128{0, umacPoly64(u.y64[i], u.l2k64[i], a)}
		default:
			u.l2(i, a)
			// "M_2 = zeropad(M_2 || uint2str(0x80, 1), 16)".
			if (u.chunks-umacL2Switch)%2 == 0 {
				b = umacPoly128(u.y128[i], u.l2k128[i], u128{u.half[i], 0x80 << 56})
			} else {
				b = umacPoly128(u.y128[i], u.l2k128[i], u128{0x80 << 56, 0})
			}
		}
		binary.BigEndian.PutUint32(out[4*i:], umacL3(&u.l3k1[i], u.l3k2[i], b))
	}
	u.xorPad(out[:u.size])
}

// xorPad XORs PDF(K, Nonce, taglen) into out (RFC 4418 §3.3).
func (u *umac) xorPad(out []byte) {
	var in [16]byte
	copy(in[:], u.nonce[:])
	// "if (taglen = 4 or taglen = 8) index = str2uint(Nonce) mod
	// (BLOCKLEN/taglen); Nonce = Nonce xor uint2str(index,
	// bytelength(Nonce))"; "Nonce = Nonce || zeroes(BLOCKLEN -
	// bytelength(Nonce))".
	index := 0
	switch u.size {
	case 4, 8:
		mask := byte(16/u.size - 1)
		index = int(in[7] & mask)
		in[7] &^= mask
	}
	if !u.padValid || in != u.padIn {
		// Encrypting from the struct's own array keeps in on the stack.
		u.padIn, u.padValid = in, true
		u.pdf.Encrypt(u.padOut[:], u.padIn[:])
	}
	// "Y = T[1 + (index*taglen) ... taglen + (index*taglen)]", or
	// "T[1...taglen]" for the longer tags.
	subtle.XORBytes(out, out, u.padOut[index*u.size:(index+1)*u.size])
}

// umacNH adds NH over m (a multiple of 32 bytes) to y. RFC 4418 §5.2.1: the
// message words are read little-endian ("ENDIAN-SWAP(M_i)"), the key words
// big-endian, and for each 32-byte step "Y = Y +_64 ((M_{i+0} +_32 K_{i+0})
// *_64 (M_{i+4} +_32 K_{i+4}))" and likewise for offsets 1/5, 2/6 and 3/7.
func umacNH(y uint64, k []uint32, m []byte) uint64 {
	for len(m) >= 32 {
		k8 := k[:8]
		m8 := m[:32]
		y += uint64(binary.LittleEndian.Uint32(m8[0:])+k8[0])*uint64(binary.LittleEndian.Uint32(m8[16:])+k8[4]) +
			uint64(binary.LittleEndian.Uint32(m8[4:])+k8[1])*uint64(binary.LittleEndian.Uint32(m8[20:])+k8[5]) +
			uint64(binary.LittleEndian.Uint32(m8[8:])+k8[2])*uint64(binary.LittleEndian.Uint32(m8[24:])+k8[6]) +
			uint64(binary.LittleEndian.Uint32(m8[12:])+k8[3])*uint64(binary.LittleEndian.Uint32(m8[28:])+k8[7])
		k = k[8:]
		m = m[32:]
	}
	return y
}

// umacPoly64 is one step of POLY(64, 2^64 - 2^32, k, M) (RFC 4418 §5.3.1)
// for the word m: "if (m >= maxwordrange) then y = (k * y + marker) mod p;
// y = (k * y + (m - offset)) mod p else y = (k * y + m) mod p".
func umacPoly64(y, k, m uint64) uint64 {
	if m >= umacMaxWord64 {
		y = umacMulAdd64(y, k, umacP64MarkerVal)
		m -= umacP64Offset
	}
	return umacMulAdd64(y, k, m)
}

// umacMulAdd64 returns (k*y + m) mod 2^64-59 for y < p, k < 2^57 (masked
// with Mask64) and any m, without data-dependent branches.
func umacMulAdd64(y, k, m uint64) uint64 {
	hi, lo := bits.Mul64(k, y) // hi < 2^57
	// 2^64 ≡ 59 (mod p): k*y ≡ hi*59 + lo, and hi*59 < 2^63.
	lo, c := bits.Add64(lo, hi*umacP64Offset, 0)
	lo += c * umacP64Offset // after a carry lo < 2^63: no second carry
	lo = umacReduce64(lo)
	lo, c = bits.Add64(lo, m, 0)
	lo += c * umacP64Offset // lo < p before adding m: after a carry lo < p - 59
	return umacReduce64(lo)
}

// umacReduce64 returns x mod p64 for any x < 2^64 (at most one subtraction).
func umacReduce64(x uint64) uint64 {
	d, b := bits.Sub64(x, umacP64, 0)
	mask := -b // all ones when x < p
	return d&^mask | x&mask
}

// umacPoly128 is one step of POLY(128, 2^128 - 2^96, k, M) (RFC 4418
// §5.3.1 (POLY)) for the word m.
func umacPoly128(y, k, m u128) u128 {
	// maxwordrange 2^128 - 2^96: the top 32 bits all ones.
	if m.hi>>32 == 0xFFFFFFFF {
		y = umacMulAdd128(y, k, u128{^uint64(0), ^uint64(0) - umacP128Offset}) // marker = p - 1
		var b uint64
		m.lo, b = bits.Sub64(m.lo, umacP128Offset, 0)
		m.hi -= b
	}
	return umacMulAdd128(y, k, m)
}

// umacMulAdd128 returns (k*y + m) mod 2^128-159 for y < p, k < 2^121
// (masked with Mask128) and any m.
func umacMulAdd128(y, k, m u128) u128 {
	// The 256-bit product as four limbs r3:r2:r1:r0.
	h00, l00 := bits.Mul64(k.lo, y.lo)
	h01, l01 := bits.Mul64(k.lo, y.hi)
	h10, l10 := bits.Mul64(k.hi, y.lo)
	h11, l11 := bits.Mul64(k.hi, y.hi)
	r0 := l00
	r1, c := bits.Add64(h00, l01, 0)
	r2, c2 := bits.Add64(h01, l11, c)
	r3 := h11 + c2
	r1, c = bits.Add64(r1, l10, 0)
	r2, c2 = bits.Add64(r2, h10, c)
	r3 += c2
	// 2^128 ≡ 159 (mod p): fold r3:r2 (< 2^122) times 159 into r1:r0.
	t0h, t0l := bits.Mul64(r2, umacP128Offset)
	t1h, t1l := bits.Mul64(r3, umacP128Offset) // r3 < 2^57: t1h is 0 or 1
	lo, c := bits.Add64(r0, t0l, 0)
	mid, c2 := bits.Add64(r1, t0h, c)
	top := c2 + t1h
	mid, c = bits.Add64(mid, t1l, 0)
	top += c
	// Add m.
	lo, c = bits.Add64(lo, m.lo, 0)
	mid, c = bits.Add64(mid, m.hi, c)
	top += c
	// Fold top (a few bits) once more, then reduce below p.
	lo, c = bits.Add64(lo, top*umacP128Offset, 0)
	mid, c = bits.Add64(mid, 0, c)
	lo += c * umacP128Offset // a carry out of mid leaves lo small
	return umacReduce128(u128{mid, lo})
}

// umacReduce128 returns x mod 2^128-159 for any x < 2^128.
func umacReduce128(x u128) u128 {
	dlo, b := bits.Sub64(x.lo, ^uint64(0)-umacP128Offset+1, 0)
	dhi, b := bits.Sub64(x.hi, ^uint64(0), b)
	mask := -b
	return u128{dhi&^mask | x.hi&mask, dlo&^mask | x.lo&mask}
}

// umacL3 is L3-HASH(K1, K2, M) (RFC 4418 §5.4): "y = y + m * k" over the
// eight 16-bit words of M and the eight key words (each already mod
// prime(36)), "y = y mod prime(36)", "Y = uint2str(y, 8)[5...8]", "Y = Y
// xor K2".
func umacL3(k1 *[8]uint64, k2 uint32, m u128) uint32 {
	var y uint64
	for j := range 4 {
		y += (m.hi >> (48 - 16*j) & 0xffff) * k1[j]
		y += (m.lo >> (48 - 16*j) & 0xffff) * k1[4+j]
	}
	// Eight products below 2^52 each: y < 2^55, no overflow.
	return uint32(y%umacP36) ^ k2
}

// umacMAC is a UMAC packet MAC (OpenSSH mac.c): the nonce is the packet
// sequence number as a 64-bit big-endian integer, and unlike the HMACs the
// sequence number is not part of the hashed message.
type umacMAC struct {
	u *umac
}

func newUMACMAC(key []byte, size int) (*umacMAC, error) {
	u, err := newUMAC(key, size)
	if err != nil {
		return nil, err
	}
	return &umacMAC{u: u}, nil
}

func (m *umacMAC) begin(seq uint32) {
	var nonce [8]byte
	binary.BigEndian.PutUint64(nonce[:], uint64(seq))
	m.u.begin(nonce)
}

func (m *umacMAC) write(p []byte) { m.u.write(p) }

func (m *umacMAC) appendSum(b []byte) []byte {
	n := len(b)
	b = grow(b, m.u.size)
	m.u.sumTo(b[n:])
	return b
}

func (m *umacMAC) verify(tag []byte) bool {
	sum := m.u.sum[:m.u.size]
	m.u.sumTo(sum)
	return subtle.ConstantTimeCompare(sum, tag) == 1
}
