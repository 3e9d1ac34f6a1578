package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// aes128-gcm@openssh.com and aes256-gcm@openssh.com: RFC 5647 as OpenSSH
// uses it (PROTOCOL §1.6). "The packet length is sent unencrypted" and is
// the additional authenticated data; padding_length || payload || padding
// is the GCM plaintext; the tag is 16 bytes. The 12-byte nonce is the KDF's
// IV: RFC 5647 §7.1 "a 4-octet fixed field and an 8-octet invocation
// counter field", and "the invocation counter is treated as a 64-bit
// integer and is incremented after each invocation of AES-GCM to process a
// binary packet". The counter is independent of the sequence number, so a
// strict-KEX sequence reset does not touch it.

const gcmTagSize = 16

type gcm struct {
	block stdcipher.Block
	aead  stdcipher.AEAD
	iv    [12]byte
	// scratch for the failure-path CTR decryption
	ctr, ks [aesBlock]byte
}

func newGCM(key, iv []byte) (*gcm, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := stdcipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	g := &gcm{block: b, aead: a}
	copy(g.iv[:], iv)
	return g, nil
}

// next increments the invocation counter, the last 8 bytes of the IV, as a
// big-endian uint64 (wrapping), leaving the fixed field alone.
func (g *gcm) next() {
	c := binary.BigEndian.Uint64(g.iv[4:])
	binary.BigEndian.PutUint64(g.iv[4:], c+1)
}

// ctrDecrypt decrypts src into dst (same length) with the GCM keystream for
// the current IV: per NIST SP 800-38D §7.1 with a 96-bit IV, J0 = IV ||
// 0^31 || 1 and the plaintext is encrypted with GCTR starting at inc32(J0),
// so block i uses counter IV || uint32(2+i), incremented modulo 2^32. Used
// only when the tag fails, since crypto/cipher's Open clears its output
// then.
func (g *gcm) ctrDecrypt(dst, src []byte) {
	copy(g.ctr[:12], g.iv[:])
	ctr := uint32(2)
	for len(src) > 0 {
		binary.BigEndian.PutUint32(g.ctr[12:], ctr)
		g.block.Encrypt(g.ks[:], g.ctr[:])
		k := min(len(src), aesBlock)
		subtle.XORBytes(dst[:k], src[:k], g.ks[:k])
		dst, src = dst[k:], src[k:]
		ctr++
	}
}

type gcmSealer gcm

func (s *gcmSealer) Mode() Mode     { return ModeAEAD }
func (s *gcmSealer) BlockSize() int { return aesBlock }
func (s *gcmSealer) TagSize() int   { return gcmTagSize }

func (s *gcmSealer) Seal(seq uint32, pkt []byte) []byte {
	n := len(pkt)
	if n < 4 {
		// Our own packet layer's bug, not peer input: there is no length
		// field to use as AAD, and returning the bytes unprotected would be
		// worse than failing loudly.
		panic("sshtap: cipher: Seal of a packet without a length field")
	}
	pkt = grow(pkt, gcmTagSize)
	// Encrypt in place: the AEAD appends ciphertext || tag to pkt[4:4],
	// which is exactly where the plaintext lies.
	s.aead.Seal(pkt[4:4], s.iv[:], pkt[4:n], pkt[:4])
	(*gcm)(s).next()
	return pkt
}

type gcmOpener gcm

func (o *gcmOpener) Mode() Mode     { return ModeAEAD }
func (o *gcmOpener) BlockSize() int { return aesBlock }
func (o *gcmOpener) TagSize() int   { return gcmTagSize }
func (o *gcmOpener) HeadSize() int  { return 4 }

func (o *gcmOpener) DecryptLength(seq uint32, head []byte) uint32 {
	if len(head) < 4 {
		return 0
	}
	// PROTOCOL §1.6: "the packet length is not encrypted".
	return binary.BigEndian.Uint32(head)
}

func (o *gcmOpener) Open(seq uint32, dst, pkt []byte) ([]byte, bool) {
	if len(pkt) < 4+gcmTagSize {
		return dst[:0], false
	}
	g := (*gcm)(o)
	bodyLen := len(pkt) - 4 - gcmTagSize
	body, err := g.aead.Open(dst[:0], g.iv[:], pkt[4:], pkt[:4])
	if err != nil {
		// The tag did not match (crypto/cipher compares it in constant
		// time) and Open cleared its output. Recover the unauthenticated
		// plaintext with the same keystream so the caller can inspect it.
		body = resize(dst, bodyLen)
		g.ctrDecrypt(body, pkt[4:4+bodyLen])
	}
	// The invocation counter advances whether or not the packet was
	// authentic, keeping in step with the sender.
	g.next()
	return body, err == nil
}
