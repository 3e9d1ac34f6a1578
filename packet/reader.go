package packet

import (
	"encoding/binary"

	"sshtap/cipher"
)

// A Reader parses inbound packets out of a buffer owned by the caller,
// authenticating and decrypting them with its [cipher.Opener], checking the
// framing and keeping the sequence number and traffic counters.
//
// The caller reads from the network into its own buffer, as much as is
// available, and calls [Reader.Next] on the unconsumed part until it returns
// n == 0; [Reader.Need] says how many bytes the packet in progress needs.
// One read may thus deliver many packets, and a packet may arrive over many
// reads.
//
// The zero value is ready to use with the "none" cipher, sequence number 0
// and [DefaultMaxPacket]. A Reader is not safe for concurrent use; in sshtap
// only the transport goroutine calls it.
type Reader struct {
	// MaxPacket is the largest packet_length accepted (the length field,
	// the tag and the sequence number excluded); 0 means DefaultMaxPacket.
	// It also bounds the Reader's plaintext buffer. Values above 1 GiB are
	// treated as 1 GiB.
	MaxPacket int

	opener cipher.Opener // nil: "none"
	mode   cipher.Mode
	align  int // padding unit; 0 until configured
	head   int // bytes needed to learn packet_length
	tag    int
	seq    uint32
	stats  Stats

	// oracle is set for an Opener that is a length oracle
	// (cipher.LengthOracle): a bad length or MAC is then reported only once
	// the largest possible packet has arrived (discardErr waits for it).
	oracle     bool
	discardErr error

	haveLen bool             // packet_length of the packet in progress is known
	length  uint32           // its packet_length
	need    int              // bytes of buf the packet in progress needs
	plain   []byte           // plaintext body buffer, reused
	small   [smallPlain]byte // plain while packets are small
	err     error            // sticky framing error
}

// SetOpener installs new inbound keys, effective from the next packet
// (RFC 4253 §7.3: right after receiving NEWKEYS). nil means the "none"
// cipher. It resets [Reader.Stats] and leaves the sequence number alone.
// It must be called between packets: a partially received packet is
// forgotten.
func (r *Reader) SetOpener(o cipher.Opener) {
	r.opener = o
	r.mode, r.align, r.head, r.tag = cipher.ModeClassic, minAlign, lenSize, 0
	if o != nil {
		checkBlockSize(o.BlockSize())
		r.mode, r.align, r.head, r.tag = o.Mode(), alignment(o.BlockSize()), o.HeadSize(), o.TagSize()
		if r.head < lenSize {
			panic("sshtap: packet: Opener.HeadSize below 4")
		}
	}
	r.oracle = o != nil && cipher.LengthOracle(o)
	r.stats = Stats{}
	r.haveLen = false
	r.need = r.head
}

// LengthOracle reports whether the current Opener is a length oracle
// (cipher.LengthOracle): a MAC failure then always ends the connection.
func (r *Reader) LengthOracle() bool { return r.oracle }

// discard reports err only once the largest packet the peer could have
// sent has arrived (4 + maxPacket + tag bytes from the start of the packet;
// maxPacket is at most DefaultMaxPacket, OpenSSH's PACKET_MAX_SIZE, here),
// so that a bad length and a bad MAC look the same from the wire: both end
// the connection after that many bytes (OpenSSH packet.c,
// ssh_packet_start_discard). Until then Next asks for more.
func (r *Reader) discard(err error, have int) error {
	r.discardErr = err
	r.need = lenSize + r.maxPacket() + r.tag
	if have >= r.need {
		r.err, r.discardErr = err, nil
		return err
	}
	return nil
}

// ResetSeq sets the sequence number of the next packet to 0. Strict key
// exchange (kex-strict-*-v00@openssh.com) calls it right after receiving
// each NEWKEYS; otherwise sequence numbers are never reset (RFC 4253 §6.4).
func (r *Reader) ResetSeq() { r.seq = 0 }

// Seq returns the sequence number of the next packet.
func (r *Reader) Seq() uint32 { return r.seq }

// Stats returns the counters since the last SetOpener.
func (r *Reader) Stats() Stats { return r.stats }

// Need returns how many bytes, counted from the start of the buffer passed
// to Next, the packet in progress needs in total: the Opener's HeadSize (4
// with no cipher) while its length is unknown, then 4 + packet_length + tag.
// It is meant for sizing reads; after a complete packet it starts over.
func (r *Reader) Need() int {
	if r.align == 0 {
		r.SetOpener(nil)
	}
	return r.need
}

// maxPacket is the largest packet_length accepted. A length oracle
// (cipher.LengthOracle) accepts none longer than DefaultMaxPacket, the
// length its discard waits for: with a larger bound, how long a plausible
// length kept the reader waiting would tell it from a bad one.
func (r *Reader) maxPacket() int {
	m := r.MaxPacket
	switch {
	case m <= 0:
		m = DefaultMaxPacket
	case m > maxPacketLimit:
		m = maxPacketLimit
	}
	if r.oracle {
		m = min(m, DefaultMaxPacket)
	}
	return m
}

// Next parses the packet at the start of buf.
//
// If buf holds only part of it, Next returns (nil, 0, nil) and [Reader.Need]
// tells how many bytes the packet needs; call Next again with the same
// packet start once more bytes have arrived (buf may have moved, and may be
// longer than the packet). The packet_length is decrypted only once per
// packet, whatever the number of calls.
//
// Otherwise it returns the payload, the number n of bytes of buf the packet
// occupied, and advances the sequence number. The payload lives in the
// Reader's own buffer and is valid only until the next call to Next; buf is
// neither modified nor retained.
//
// On a MAC or AEAD tag mismatch Next returns n > 0 and an [*AuthError]: the
// packet is consumed and the sequence number and cipher state have advanced,
// so the caller may drop the packet (ignore the error), accept it (use
// err.Payload, valid until the next call) or fail the connection.
//
// A bad packet_length (below 5, above MaxPacket, or not aligned to the block
// size) returns a [*LengthError] and bad padding_length of an authentic
// packet (below 4, or leaving no room in the packet) a [*PaddingError], both
// with n == 0. Framing is then lost; the error is fatal, and Next returns
// it again on every later call.
//
// With an Opener that is a length oracle (cipher.LengthOracle: CBC in
// classic mode), packet_length is bounded by DefaultMaxPacket whatever
// MaxPacket says, and a bad packet_length and a MAC mismatch are both fatal
// and both reported the same way: with n == 0, once 4 + that bound + tag
// bytes have arrived from the start of the packet (Need says so), as
// OpenSSH does, so that when the connection ends does not tell which it
// was.
//
// In steady state (packets no larger than ones seen before) Next does not
// allocate.
func (r *Reader) Next(buf []byte) (payload []byte, n int, err error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	if r.align == 0 {
		r.SetOpener(nil)
	}
	if r.discardErr != nil {
		return nil, 0, r.discard(r.discardErr, len(buf))
	}
	if !r.haveLen {
		if len(buf) < r.head {
			r.need = r.head
			return nil, 0, nil
		}
		var length uint32
		if r.opener == nil {
			length = binary.BigEndian.Uint32(buf)
		} else {
			// Called exactly once per packet: classic mode keeps the
			// decrypted first block for Open.
			length = r.opener.DecryptLength(r.seq, buf[:r.head])
		}
		if err := r.checkLength(length, buf[:r.head]); err != nil {
			if r.oracle {
				return nil, 0, r.discard(err, len(buf))
			}
			r.err = err
			return nil, 0, err
		}
		r.haveLen = true
		r.length = length
		r.need = lenSize + int(length) + r.tag
	}
	if len(buf) < r.need {
		return nil, 0, nil
	}
	pkt := buf[:r.need]
	length := r.length

	// checkLength bounded length by maxPacket, so this never grows the
	// buffer beyond MaxPacket.
	r.grow(int(length))
	var body []byte
	ok := true
	if r.opener == nil {
		body = append(r.plain[:0], pkt[lenSize:]...)
	} else {
		body, ok = r.opener.Open(r.seq, r.plain[:0], pkt)
		if cap(body) > cap(r.plain) && cap(body) <= r.maxPacket() {
			r.plain = body[:0] // an Opener that allocated: keep its buffer
		}
	}

	seq := r.seq
	if !ok {
		// The tag did not verify, so padding_length cannot be trusted:
		// clamp it so that the payload stays inside the body.
		ae := &AuthError{Seq: seq, Length: length, Mode: r.mode}
		if r.oracle {
			// Fatal, and reported no sooner than a bad length would be.
			return nil, 0, r.discard(ae, len(buf))
		}
		ae.Payload = lenientPayload(body)
		r.advance(len(pkt), int(length))
		return nil, len(pkt), ae
	}

	// RFC 4253 §6: "padding_length: Length of 'random padding' (bytes)."
	// and "There MUST be at least four bytes of padding." The payload
	// (packet_length - padding_length - 1 bytes) cannot be negative.
	if len(body) != int(length) || body[0] < minPadding || int(body[0]) > int(length)-1 {
		var pad uint32
		if len(body) > 0 {
			pad = uint32(body[0])
		}
		r.err = &PaddingError{Seq: seq, Padding: pad, Length: length}
		return nil, 0, r.err
	}
	r.advance(len(pkt), int(length))
	return body[1 : len(body)-int(body[0])], len(pkt), nil
}

// advance finishes a consumed packet.
func (r *Reader) advance(wire, length int) {
	r.stats.add(wire, lenSize+length, r.align)
	r.seq++ // RFC 4253 §6.4: wraps around to 0 after 2^32 - 1
	r.haveLen = false
	r.need = r.head
}

// lenientPayload extracts the payload from an unauthenticated body,
// clamping padding_length to the body so that it never panics.
func lenientPayload(body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	end := len(body) - int(body[0])
	if end < 1 {
		end = 1
	}
	return body[1:end]
}

// checkLength applies the RFC 4253 §6 bounds to a decoded packet_length.
func (r *Reader) checkLength(length uint32, head []byte) error {
	aligned := uint64(length)
	if lengthCoversAlign(r.mode) {
		aligned += lenSize
	}
	limit := r.maxPacket()
	switch {
	// RFC 4253 §6: the packet holds the padding_length byte and "There
	// MUST be at least four bytes of padding", so packet_length >= 5.
	case length < 1+minPadding:
	// RFC 4253 §6.1: "implementations SHOULD check that the packet length
	// is reasonable"; our limit is MaxPacket.
	case uint64(length) > uint64(limit):
	// RFC 4253 §6: the length of packet_length || padding_length ||
	// payload || padding "MUST be a multiple of the cipher block size or
	// 8, whichever is larger"; ETM and AEAD leave packet_length out
	// (OpenSSH PROTOCOL §1.5, PROTOCOL.chacha20poly1305, RFC 5647 §7.2).
	case aligned%uint64(r.align) != 0:
	default:
		return nil
	}
	return &LengthError{
		Seq:       r.seq,
		Length:    length,
		Max:       limit,
		Mode:      r.mode,
		Encrypted: r.lengthEncrypted(length, head),
	}
}

// lengthEncrypted reports whether the length field was encrypted on the
// wire. The Opener interface does not say so for AEAD ciphers, where
// chacha20-poly1305 encrypts it and AES-GCM does not; a decoded length that
// differs from the raw bytes was encrypted (a false "clear" answer has
// probability 2^-32 for chacha20-poly1305).
func (r *Reader) lengthEncrypted(length uint32, head []byte) bool {
	switch {
	case r.opener == nil:
		return false
	case r.mode == cipher.ModeClassic:
		return true
	case r.mode == cipher.ModeAEAD:
		return length != binary.BigEndian.Uint32(head)
	default: // ETM: in clear
		return false
	}
}

// smallPlain is the size of the plaintext buffer inside the Reader, used
// for packets that fit it (an idle or interactive connection's).
const smallPlain = 512

// ReleaseBuffer gives up a plaintext buffer that grew beyond the one inside
// the Reader, for a connection that went quiet: the next large packet
// allocates a new one. It must be called between packets, when no payload
// returned by Next is still in use.
func (r *Reader) ReleaseBuffer() {
	if !r.haveLen && cap(r.plain) > smallPlain {
		r.plain = nil
	}
}

// grow makes the plaintext buffer hold at least n bytes, doubling to
// amortize growth but never beyond the Reader's MaxPacket (n itself is at
// most MaxPacket).
func (r *Reader) grow(n int) {
	if cap(r.plain) >= n {
		return
	}
	if n <= smallPlain {
		r.plain = r.small[:0]
		return
	}
	c := max(n, 2*cap(r.plain), 4096)
	c = min(c, max(n, r.maxPacket()))
	r.plain = make([]byte, 0, c)
}
