package cipher

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
