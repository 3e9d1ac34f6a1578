package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/des"
	"encoding/binary"
)

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

// newAESBlock and new3DESBlock build the block cipher of a CBC cipher name.
func newAESBlock(key []byte) (stdcipher.Block, error) { return aes.NewCipher(key) }

// new3DESBlock: RFC 4253 §6.3 "3des-cbc ... three-key 3DES
// (encrypt-decrypt-encrypt), where the first 8 bytes of the key are used
// for the first encryption, the next 8 bytes for the decryption, and the
// following 8 bytes for the final encryption", which is crypto/des's
// TripleDES key layout.
func new3DESBlock(key []byte) (stdcipher.Block, error) { return des.NewTripleDESCipher(key) }

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

// cbcOpener is the receiving side of a CBC macSealer.
type cbcOpener struct {
	dec     stdcipher.BlockMode
	bs      int
	mac     packetMAC
	tagSize int
	etm     bool
	// Classic mode: DecryptLength decrypts the first block here and Open
	// consumes it.
	first    [maxCBCBlock]byte
	haveHead bool
}

func newCBCOpener(ci cipherInfo, key, iv []byte, mi macInfo, macKey []byte) (*cbcOpener, error) {
	b, err := ci.newBlock(key)
	if err != nil {
		return nil, err
	}
	mac, err := newPacketMAC(mi, macKey)
	if err != nil {
		return nil, err
	}
	return &cbcOpener{dec: stdcipher.NewCBCDecrypter(b, iv), bs: b.BlockSize(), mac: mac, tagSize: mi.size, etm: mi.etm}, nil
}

func (o *cbcOpener) Mode() Mode {
	if o.etm {
		return ModeETM
	}
	return ModeClassic
}
func (o *cbcOpener) BlockSize() int { return o.bs }
func (o *cbcOpener) TagSize() int   { return o.tagSize }

func (o *cbcOpener) HeadSize() int {
	if o.etm {
		return 4
	}
	return o.bs
}

func (o *cbcOpener) DecryptLength(seq uint32, head []byte) uint32 {
	if o.etm {
		// PROTOCOL §1.5: packet_length is sent in clear.
		if len(head) < 4 {
			return 0
		}
		return binary.BigEndian.Uint32(head)
	}
	// RFC 4253 §6.3: "implementations SHOULD decrypt the length after
	// receiving the first 8 (or cipher block size, whichever is larger)
	// bytes of a packet." Decrypting the block moves the chain on to it,
	// so it is kept for Open and decrypted exactly once.
	if len(head) < o.bs {
		return 0
	}
	o.dec.CryptBlocks(o.first[:o.bs], head[:o.bs])
	o.haveHead = true
	return binary.BigEndian.Uint32(o.first[:4])
}

// decryptBlocks decrypts src into dst (same length) as far as whole blocks
// go. A misaligned length breaks RFC 4253 §6 and the packet layer refuses
// it before Open; here it only must not panic, so a partial last block is
// zeroed instead of decrypted. It reports whether src was aligned.
func (o *cbcOpener) decryptBlocks(dst, src []byte) bool {
	whole := len(src) - len(src)%o.bs
	o.dec.CryptBlocks(dst[:whole], src[:whole])
	clear(dst[whole:])
	return whole == len(src)
}

func (o *cbcOpener) Open(seq uint32, dst, pkt []byte) ([]byte, bool) {
	n := len(pkt) - o.tagSize // end of the packet proper
	if o.etm {
		if n < 4 {
			return dst[:0], false
		}
		// PROTOCOL §1.5: verify the MAC over the bytes as received, then
		// decrypt. The body is decrypted even when the tag is wrong, which
		// moves the chain on exactly as an authentic packet would.
		o.mac.begin(seq)
		o.mac.write(pkt[:n])
		ok := o.mac.verify(pkt[n:])
		body := resize(dst, n-4)
		aligned := o.decryptBlocks(body, pkt[4:n])
		return body, ok && aligned
	}
	if n < o.bs {
		o.haveHead = false
		return dst[:0], false
	}
	if !o.haveHead {
		// The caller skipped DecryptLength; decrypt the first block now.
		o.DecryptLength(seq, pkt)
	}
	o.haveHead = false
	body := resize(dst, n-4)
	copy(body, o.first[4:o.bs])
	aligned := o.decryptBlocks(body[o.bs-4:], pkt[o.bs:n])
	// RFC 4253 §6.4: the MAC is over the unencrypted packet, which is the
	// decrypted length field followed by body.
	o.mac.begin(seq)
	o.mac.write(o.first[:4])
	o.mac.write(body)
	return body, o.mac.verify(pkt[n:]) && aligned
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
	c, ok := o.(*cbcOpener)
	return ok && !c.etm
}
