// Package sntrup761 implements Streamlined NTRU Prime 761, the key
// encapsulation mechanism of the NTRU Prime specification with parameters
// p = 761, q = 4591, w = 286, as OpenSSH uses it in the
// sntrup761x25519-sha512 key exchange.
//
// Byte layouts (public key 1158 bytes, ciphertext 1039, shared key 32,
// private key 1763) and every hash input follow the specification, so
// values interoperate with OpenSSH and the reference implementation.
//
// Key generation, encapsulation and decapsulation run in constant time with
// respect to secrets: no secret-dependent branch or memory index, including
// the sort that picks random short polynomials. Decapsulation uses implicit
// rejection: a ciphertext that does not re-encrypt to itself yields a
// pseudo-random key derived from the private key's rho, never an error.
//
// Nothing in this package starts goroutines or keeps global state; values
// are safe for concurrent use once built.
package sntrup761

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"
)

// Parameters of sntrup761.
const (
	p   = 761
	q   = 4591
	w   = 286
	q12 = (q - 1) / 2
)

// Sizes in bytes.
const (
	PublicKeySize  = 1158
	CiphertextSize = roundedSize + hashSize // 1039
	SharedKeySize  = hashSize
	PrivateKeySize = 2*smallSize + PublicKeySize + smallSize + hashSize // 1763

	smallSize   = (p + 3) / 4 // 191
	roundedSize = 1007
	hashSize    = 32
)

// ErrPublicKeySize and ErrCiphertextSize report a peer value of the wrong
// length; the specification defines no other malformed encoding.
var (
	ErrPublicKeySize  = errors.New("sntrup761: public key is not 1158 bytes")
	ErrCiphertextSize = errors.New("sntrup761: ciphertext is not 1039 bytes")
)

// PrivateKey is a decapsulation key. It holds the secret polynomials, the
// public key and the implicit-rejection secret rho.
type PrivateKey struct {
	f    [p]int8 // short, weight w
	ginv [p]int8 // 1/g in R/3
	pk   [PublicKeySize]byte
	rho  [smallSize]byte
	pkh  [hashSize]byte // Hash4(pk), the specification's "cache"
}

// GenerateKey makes a key pair, reading randomness from rand (in the
// specification's order: the small g, retried until invertible in R/3, then
// the short f, then rho).
func GenerateKey(rand io.Reader) (*PrivateKey, error) {
	k := new(PrivateKey)
	var g [p]int8
	for {
		if err := randomSmall(&g, rand); err != nil {
			return nil, err
		}
		// Whether g is invertible is not secret once it is discarded: the
		// retry reveals nothing about the g that is kept.
		if recip3(&k.ginv, &g) == 0 {
			break
		}
	}
	if err := randomShort(&k.f, rand); err != nil {
		return nil, err
	}
	// h = g / (3f) in R/q.
	var finv3, h [p]int16
	recipQ3(&finv3, &k.f)
	mulQSmall(&h, &finv3, &g)
	encodeRq(k.pk[:0], &h)
	if _, err := io.ReadFull(rand, k.rho[:]); err != nil {
		return nil, err
	}
	k.pkh = hashPrefix(4, k.pk[:])
	return k, nil
}

// PublicKey returns the encoded public key. The caller must not modify it.
func (k *PrivateKey) PublicKey() []byte { return k.pk[:] }

// Bytes returns the private key in the specification's (and OpenSSH's)
// layout: Small(f) || Small(1/g) || public key || rho || Hash4(public key).
func (k *PrivateKey) Bytes() []byte {
	out := make([]byte, 0, PrivateKeySize)
	out = encodeSmall(out, &k.f)
	out = encodeSmall(out, &k.ginv)
	out = append(out, k.pk[:]...)
	out = append(out, k.rho[:]...)
	return append(out, k.pkh[:]...)
}

// NewPrivateKey parses a private key in the layout Bytes returns. It trusts
// its input as a key of this package's own making; it only checks the
// length.
func NewPrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != PrivateKeySize {
		return nil, errors.New("sntrup761: private key is not 1763 bytes")
	}
	k := new(PrivateKey)
	decodeSmall(&k.f, b)
	decodeSmall(&k.ginv, b[smallSize:])
	b = b[2*smallSize:]
	copy(k.pk[:], b)
	copy(k.rho[:], b[PublicKeySize:])
	copy(k.pkh[:], b[PublicKeySize+smallSize:])
	return k, nil
}

// Encapsulate makes a fresh shared key for the holder of publicKey and the
// ciphertext that carries it, reading randomness from rand. Any 1158-byte
// string is a valid public key.
func Encapsulate(rand io.Reader, publicKey []byte) (ciphertext, sharedKey []byte, err error) {
	if len(publicKey) != PublicKeySize {
		return nil, nil, ErrPublicKeySize
	}
	var r [p]int8
	if err := randomShort(&r, rand); err != nil {
		return nil, nil, err
	}
	var h [p]int16
	decodeRq(&h, publicKey)
	pkh := hashPrefix(4, publicKey)
	ct, rEnc := hide(make([]byte, 0, CiphertextSize), &r, &h, &pkh)
	k := hashSession(1, rEnc[:], ct)
	return ct, k[:], nil
}

// Decapsulate returns the shared key carried by ciphertext. A ciphertext of
// the right length never fails: one that was not made for this key yields
// an unrelated pseudo-random key (implicit rejection), and the key exchange
// fails later, when the two sides' keys disagree.
func (k *PrivateKey) Decapsulate(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) != CiphertextSize {
		return nil, ErrCiphertextSize
	}
	// Decrypt: e = 3fc in R/3, r = e/g, forced to weight w.
	var c, cf [p]int16
	decodeRounded(&c, ciphertext)
	mulQSmall(&cf, &c, &k.f)
	var e, r [p]int8
	for i, x := range cf {
		e[i] = freeze3(int32(freezeQ(3 * int32(x))))
	}
	mul3(&r, &e, &k.ginv)
	// A result of the wrong weight becomes the fixed vector of w ones
	// followed by zeros, which then fails the re-encryption check below.
	weight := int32(0)
	for _, x := range r {
		weight += int32(x) & 1
	}
	bad := int8(nonzeroMask(weight - w))
	for i := range r {
		if i < w {
			r[i] = ((r[i] ^ 1) &^ bad) ^ 1
		} else {
			r[i] &^= bad
		}
	}
	// Re-encrypt and compare; on a mismatch hash rho instead of r.
	var h [p]int16
	decodeRq(&h, k.pk[:])
	var buf [CiphertextSize]byte
	ct, rEnc := hide(buf[:0], &r, &h, &k.pkh)
	same := subtle.ConstantTimeCompare(ct, ciphertext)
	subtle.ConstantTimeCopy(1-same, rEnc[:], k.rho[:])
	key := hashSession(byte(same), rEnc[:], ciphertext)
	return key[:], nil
}

// hide appends the ciphertext for r, Rounded(h r) || HashConfirm, to out and
// returns it with Small(r).
func hide(out []byte, r *[p]int8, h *[p]int16, pkh *[hashSize]byte) ([]byte, [smallSize]byte) {
	var hr [p]int16
	mulQSmall(&hr, h, r)
	// Round each coefficient to the nearest multiple of 3.
	for i, x := range hr {
		hr[i] = x - int16(freeze3(int32(x)))
	}
	out = encodeRounded(out, &hr)
	var rEnc [smallSize]byte
	encodeSmall(rEnc[:0], r)
	confirm := hashConfirm(&rEnc, pkh)
	return append(out, confirm[:]...), rEnc
}

// hashPrefix is the specification's Hash_b: the first 32 bytes of
// SHA-512(b || in...).
func hashPrefix(b byte, in ...[]byte) [hashSize]byte {
	d := sha512.New()
	d.Write([]byte{b})
	for _, x := range in {
		d.Write(x)
	}
	var sum [sha512.Size]byte
	d.Sum(sum[:0])
	return [hashSize]byte(sum[:hashSize])
}

// hashConfirm is Hash2(Hash3(Small(r)) || Hash4(pk)).
func hashConfirm(rEnc *[smallSize]byte, pkh *[hashSize]byte) [hashSize]byte {
	h3 := hashPrefix(3, rEnc[:])
	return hashPrefix(2, h3[:], pkh[:])
}

// hashSession is Hash_b(Hash3(y) || z), b = 1 for an accepted ciphertext and
// 0 for a rejected one (y is then rho).
func hashSession(b byte, y, z []byte) [hashSize]byte {
	h3 := hashPrefix(3, y)
	return hashPrefix(b, h3[:], z)
}

// randomWords fills words with little-endian 32-bit values read from rand.
func randomWords(words *[p]uint32, rand io.Reader) error {
	var buf [4 * p]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return err
	}
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	return nil
}

// randomSmall draws a uniformly random small polynomial: each coefficient is
// floor(3 u / 2^30) - 1 for a 30-bit random u.
func randomSmall(g *[p]int8, rand io.Reader) error {
	var words [p]uint32
	if err := randomWords(&words, rand); err != nil {
		return err
	}
	for i, u := range words {
		g[i] = int8(((u&0x3fffffff)*3)>>30) - 1
	}
	return nil
}

// randomShort draws a random short polynomial, w coefficients ±1 and the
// rest 0, by sorting random words whose two low bits carry the coefficient
// (0 or 2 for the first w, 1 for the rest): the sort shuffles the positions.
func randomShort(f *[p]int8, rand io.Reader) error {
	var words [p]uint32
	if err := randomWords(&words, rand); err != nil {
		return err
	}
	for i := range words {
		if i < w {
			words[i] &^= 1
		} else {
			words[i] = words[i]&^2 | 1
		}
	}
	sortUint32(words[:])
	for i, u := range words {
		f[i] = int8(u&3) - 1
	}
	return nil
}
