package cipher

import "encoding/binary"

// The non-AEAD ciphers (aes*-ctr, the CBC ciphers) with a MAC: one sealer
// and one opener, given the cipher's encryption or decryption.

// macSealer is a non-AEAD cipher (aes*-ctr, the CBC ciphers) with an HMAC or
// UMAC, in classic (Encrypt-and-MAC) or ETM order. crypt encrypts in place
// and carries the cipher's state (CTR counter, CBC chain) from packet to
// packet for the life of the keys.
type macSealer struct {
	crypt     func(dst, src []byte)
	blockSize int
	mac       packetMAC
	tagSize   int
	etm       bool
}

func newMACSealer(crypt func(dst, src []byte), blockSize int, mi macInfo, macKey []byte) (*macSealer, error) {
	mac, err := newPacketMAC(mi, macKey)
	if err != nil {
		return nil, err
	}
	return &macSealer{crypt: crypt, blockSize: blockSize, mac: mac, tagSize: mi.size, etm: mi.etm}, nil
}

func (s *macSealer) Mode() Mode {
	if s.etm {
		return ModeETM
	}
	return ModeClassic
}
func (s *macSealer) BlockSize() int { return s.blockSize }
func (s *macSealer) TagSize() int   { return s.tagSize }

func (s *macSealer) Seal(seq uint32, pkt []byte) []byte {
	n := len(pkt)
	pkt = grow(pkt, s.tagSize)
	if s.etm {
		// PROTOCOL §1.5: "the packet length is not encrypted"; the rest is
		// encrypted and then "mac = MAC(key, sequence_number ||
		// packet_length || encrypted_packet)".
		if n > 4 {
			s.crypt(pkt[4:n], pkt[4:n])
		}
		s.mac.begin(seq)
		s.mac.write(pkt[:n])
		return s.mac.appendSum(pkt[:n])
	}
	// RFC 4253 §6.4: "mac = MAC(key, sequence_number || unencrypted_packet)"
	// and §6.3: "the packet length, padding length, payload, and padding
	// fields of each packet MUST be encrypted".
	s.mac.begin(seq)
	s.mac.write(pkt[:n])
	pkt = s.mac.appendSum(pkt[:n])
	s.crypt(pkt[:n], pkt[:n])
	return pkt
}

// macOpener is the receiving side of a macSealer. decrypt decrypts in place
// or into dst and carries the cipher's state from packet to packet; it
// reports false for input that is not a whole number of blocks. chained
// marks CBC, whose classic mode is a length oracle (LengthOracle).
type macOpener struct {
	decrypt   func(dst, src []byte) bool
	blockSize int
	chained   bool
	mac       packetMAC
	tagSize   int
	etm       bool
	// Classic mode: DecryptLength decrypts the first block here and Open
	// consumes it.
	first    [maxCBCBlock]byte
	haveHead bool
}

func newMACOpener(decrypt func(dst, src []byte) bool, blockSize int, chained bool, mi macInfo, macKey []byte) (*macOpener, error) {
	mac, err := newPacketMAC(mi, macKey)
	if err != nil {
		return nil, err
	}
	return &macOpener{decrypt: decrypt, blockSize: blockSize, chained: chained, mac: mac, tagSize: mi.size, etm: mi.etm}, nil
}

func (o *macOpener) Mode() Mode {
	if o.etm {
		return ModeETM
	}
	return ModeClassic
}
func (o *macOpener) BlockSize() int { return o.blockSize }
func (o *macOpener) TagSize() int   { return o.tagSize }

func (o *macOpener) HeadSize() int {
	if o.etm {
		return 4
	}
	return o.blockSize
}

func (o *macOpener) DecryptLength(seq uint32, head []byte) uint32 {
	if o.etm {
		// PROTOCOL §1.5: packet_length is sent in clear.
		if len(head) < 4 {
			return 0
		}
		return binary.BigEndian.Uint32(head)
	}
	// RFC 4253 §6.3: "implementations SHOULD decrypt the length after
	// receiving the first 8 (or cipher block size, whichever is larger)
	// bytes of a packet." The decrypted block is kept for Open, so that
	// the cipher's state (keystream, CBC chain) moves on exactly once.
	if len(head) < o.blockSize {
		return 0
	}
	o.decrypt(o.first[:o.blockSize], head[:o.blockSize])
	o.haveHead = true
	return binary.BigEndian.Uint32(o.first[:4])
}

func (o *macOpener) Open(seq uint32, dst, pkt []byte) ([]byte, bool) {
	n := len(pkt) - o.tagSize // end of the packet proper
	if o.etm {
		if n < 4 {
			return dst[:0], false
		}
		// PROTOCOL §1.5: verify "MAC(key, sequence_number || packet_length
		// || encrypted_packet)" over the bytes as received, then decrypt.
		// The body is decrypted even when the tag is wrong, so the cipher's
		// state stays in step with the sender.
		o.mac.begin(seq)
		o.mac.write(pkt[:n])
		ok := o.mac.verify(pkt[n:])
		body := resize(dst, n-4)
		aligned := o.decrypt(body, pkt[4:n])
		return body, ok && aligned
	}
	if n < o.blockSize {
		o.haveHead = false
		return dst[:0], false
	}
	if !o.haveHead {
		// The caller skipped DecryptLength; decrypt the first block now.
		o.DecryptLength(seq, pkt)
	}
	o.haveHead = false
	body := resize(dst, n-4)
	copy(body, o.first[4:o.blockSize])
	aligned := o.decrypt(body[o.blockSize-4:], pkt[o.blockSize:n])
	// RFC 4253 §6.4: the MAC is over the unencrypted packet, which is the
	// decrypted length field followed by body.
	o.mac.begin(seq)
	o.mac.write(o.first[:4])
	o.mac.write(body)
	return body, o.mac.verify(pkt[n:]) && aligned
}
