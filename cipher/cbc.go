package cipher

import stdcipher "crypto/cipher"

// aes*-cbc and 3des-cbc (RFC 4253 §6.3), legacy ciphers offered only when
// configured. "When encrypting, the IV of each packet is the last ciphertext
// block of the previous packet" is what crypto/cipher's CBC modes do across
// CryptBlocks calls, so one encrypter or decrypter per direction is created
// with the keys and never reset: the chain runs from packet to packet for
// the life of the keys.
//
// RFC 4253 §6.3 defines CBC with the Encrypt-and-MAC order of §6.4; OpenSSH
// also pairs CBC with its -etm@openssh.com MACs (PROTOCOL §1.5), and a peer
// may negotiate that combination, so both orders are implemented.

// maxCBCBlock is the largest block size of the CBC ciphers (AES).
const maxCBCBlock = aesBlock

// newCBCSealer encrypts with a CBC encrypter, whose chain crypto/cipher
// carries from one CryptBlocks call to the next. The packet layer aligns
// packets to the block size (RFC 4253 §6); a misaligned one, which only a
// bug of the local packet layer can produce, panics in crypto/cipher rather
// than go out half-encrypted.
func newCBCSealer(ci cipherInfo, key, iv []byte, mi macInfo, macKey []byte) (*macSealer, error) {
	b, err := ci.newBlock(key)
	if err != nil {
		return nil, err
	}
	enc := stdcipher.NewCBCEncrypter(b, iv)
	return newMACSealer(enc.CryptBlocks, enc.BlockSize(), mi, macKey)
}

// newCBCOpener is the receiving side of newCBCSealer. A misaligned length
// breaks RFC 4253 §6 and the packet layer refuses it before Open; here it
// only must not panic, so a partial last block is zeroed instead of
// decrypted and the packet reported as not authentic.
func newCBCOpener(ci cipherInfo, key, iv []byte, mi macInfo, macKey []byte) (*macOpener, error) {
	b, err := ci.newBlock(key)
	if err != nil {
		return nil, err
	}
	dec := stdcipher.NewCBCDecrypter(b, iv)
	bs := dec.BlockSize()
	decrypt := func(dst, src []byte) bool {
		whole := len(src) - len(src)%bs
		dec.CryptBlocks(dst[:whole], src[:whole])
		clear(dst[whole:])
		return whole == len(src)
	}
	return newMACOpener(decrypt, bs, true, mi, macKey)
}

// LengthOracle reports whether o decrypts packet_length with CBC in classic
// (Encrypt-and-MAC) mode. There a peer can splice a block of an earlier
// packet into a new packet's first block, and how the receiver reacts to
// the length it decrypts (at once for a length out of bounds, or after the
// length's worth of bytes for a MAC failure) reveals bits of that earlier
// plaintext (Albrecht, Paterson and Watson, CVE-2008-5161). A receiver of
// such packets must treat a bad length and a bad MAC alike, as OpenSSH's
// packet.c does: keep reading up to the largest packet before it gives up.
func LengthOracle(o Opener) bool {
	m, ok := o.(*macOpener)
	return ok && m.chained && !m.etm
}
