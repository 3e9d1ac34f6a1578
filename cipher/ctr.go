package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"encoding/binary"
)

// aes*-ctr (RFC 4344 §4): "the IV is ... the initial value of the counter
// X", a 128-bit big-endian integer incremented once per block; the keystream
// continues across packets for the life of the keys. crypto/cipher's CTR
// stream keeps exactly that state, so one stream per direction is created
// with the keys and never reset.

const aesBlock = aes.BlockSize

func newCTRStream(key, iv []byte) (stdcipher.Stream, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return stdcipher.NewCTR(b, iv), nil
}

func newCTRSealer(key, iv []byte, mi macInfo, macKey []byte) (*macSealer, error) {
	st, err := newCTRStream(key, iv)
	if err != nil {
		return nil, err
	}
	return newMACSealer(st.XORKeyStream, aesBlock, mi, macKey)
}

// ctrOpener is the receiving side of an aes*-ctr macSealer.
type ctrOpener struct {
	stream  stdcipher.Stream
	mac     packetMAC
	tagSize int
	etm     bool
	// Classic mode: DecryptLength decrypts the first block here and Open
	// consumes it.
	first    [aesBlock]byte
	haveHead bool
}

func newCTROpener(key, iv []byte, mi macInfo, macKey []byte) (*ctrOpener, error) {
	st, err := newCTRStream(key, iv)
	if err != nil {
		return nil, err
	}
	mac, err := newPacketMAC(mi, macKey)
	if err != nil {
		return nil, err
	}
	return &ctrOpener{stream: st, mac: mac, tagSize: mi.size, etm: mi.etm}, nil
}

func (o *ctrOpener) Mode() Mode {
	if o.etm {
		return ModeETM
	}
	return ModeClassic
}
func (o *ctrOpener) BlockSize() int { return aesBlock }
func (o *ctrOpener) TagSize() int   { return o.tagSize }

func (o *ctrOpener) HeadSize() int {
	if o.etm {
		return 4
	}
	return aesBlock
}

func (o *ctrOpener) DecryptLength(seq uint32, head []byte) uint32 {
	if o.etm {
		// PROTOCOL §1.5: packet_length is sent in clear.
		if len(head) < 4 {
			return 0
		}
		return binary.BigEndian.Uint32(head)
	}
	// RFC 4253 §6.3: "implementations SHOULD decrypt the length after
	// receiving the first 8 (or cipher block size, whichever is larger)
	// bytes of a packet." The decrypted block is kept for Open so the
	// keystream is consumed exactly once.
	if len(head) < aesBlock {
		return 0
	}
	o.stream.XORKeyStream(o.first[:], head[:aesBlock])
	o.haveHead = true
	return binary.BigEndian.Uint32(o.first[:4])
}

func (o *ctrOpener) Open(seq uint32, dst, pkt []byte) ([]byte, bool) {
	n := len(pkt) - o.tagSize // end of the packet proper
	if o.etm {
		if n < 4 {
			return dst[:0], false
		}
		// PROTOCOL §1.5: verify "MAC(key, sequence_number || packet_length
		// || encrypted_packet)" over the bytes as received, then decrypt.
		// The body is decrypted even when the tag is wrong so the keystream
		// stays in step with the sender.
		o.mac.begin(seq)
		o.mac.write(pkt[:n])
		ok := o.mac.verify(pkt[n:])
		body := resize(dst, n-4)
		o.stream.XORKeyStream(body, pkt[4:n])
		return body, ok
	}
	if n < aesBlock {
		o.haveHead = false
		return dst[:0], false
	}
	if !o.haveHead {
		// The caller skipped DecryptLength; decrypt the first block now.
		o.DecryptLength(seq, pkt)
	}
	o.haveHead = false
	body := resize(dst, n-4)
	copy(body, o.first[4:])
	o.stream.XORKeyStream(body[aesBlock-4:], pkt[aesBlock:n])
	// RFC 4253 §6.4: the MAC is over the unencrypted packet, which is the
	// decrypted length field followed by body.
	o.mac.begin(seq)
	o.mac.write(o.first[:4])
	o.mac.write(body)
	return body, o.mac.verify(pkt[n:])
}
