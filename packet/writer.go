package packet

import (
	crand "crypto/rand"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"

	"sshtap/cipher"
)

// A Writer frames and protects outbound packets: it adds the length field
// and random padding, hands the packet to its [cipher.Sealer] and keeps the
// sequence number and traffic counters.
//
// The zero value is ready to use with the "none" cipher and sequence number
// 0. A Writer is not safe for concurrent use; in sshtap the root package
// serializes all writes to a connection.
type Writer struct {
	sealer cipher.Sealer // nil: "none"
	mode   cipher.Mode
	align  int // padding unit; 0 until configured
	tag    int
	seq    uint32
	stats  Stats

	seeded bool
	rng    rand.ChaCha8 // padding bytes; seeded from crypto/rand on first use
}

// SetSealer installs new outbound keys, effective from the next packet
// (RFC 4253 §7.3: right after sending NEWKEYS). nil means the "none" cipher.
// It resets [Writer.Stats] and leaves the sequence number alone.
func (w *Writer) SetSealer(s cipher.Sealer) {
	w.sealer = s
	w.mode, w.align, w.tag = cipher.ModeClassic, minAlign, 0
	if s != nil {
		checkBlockSize(s.BlockSize())
		w.mode, w.align, w.tag = s.Mode(), alignment(s.BlockSize()), s.TagSize()
	}
	w.stats = Stats{}
}

// ResetSeq sets the sequence number of the next packet to 0. Strict key
// exchange (kex-strict-*-v00@openssh.com) calls it right after sending each
// NEWKEYS; otherwise sequence numbers are never reset (RFC 4253 §6.4).
func (w *Writer) ResetSeq() { w.seq = 0 }

// Seq returns the sequence number the next packet will be sealed with.
func (w *Writer) Seq() uint32 { return w.seq }

// Stats returns the counters since the last SetSealer.
func (w *Writer) Stats() Stats { return w.stats }

// MaxOverhead returns the most bytes AppendPacket adds to a payload with the
// current keys: length field, padding_length, padding and tag.
func (w *Writer) MaxOverhead() int {
	if w.align == 0 {
		w.SetSealer(nil)
	}
	return lenSize + 1 + w.align + minPadding - 1 + w.tag
}

// maxPayload keeps packet_length within a uint32 with room for padding.
const maxPayload = math.MaxUint32 - 2*maxPadding

// AppendPacket appends the protected packet carrying payload to dst, returns
// the extended slice and advances the sequence number (mod 2^32, RFC 4253
// §6.4).
//
// The packet is uint32 packet_length || byte padding_length || payload ||
// random padding || tag (RFC 4253 §6). The padding is the smallest of at
// least 4 bytes that aligns the packet to max(BlockSize, 8) — the whole
// packet in classic mode and with no cipher, everything but the length field
// in ETM and AEAD modes — so it is at most max(BlockSize, 8)+3 bytes. Its
// bytes come from a per-Writer ChaCha8 generator seeded from crypto/rand.
//
// AppendPacket does not allocate when cap(dst)-len(dst) is at least
// len(payload) + [Writer.MaxOverhead]. payload may overlap dst, including its spare capacity
// (so a caller may build the payload at dst[len(dst)+5:] and frame it in
// place); it is copied before anything else is written. AppendPacket panics
// if payload is longer than about 4 GiB.
func (w *Writer) AppendPacket(dst, payload []byte) []byte {
	if w.align == 0 {
		w.SetSealer(nil)
	}
	if !w.seeded {
		var seed [32]byte
		crand.Read(seed[:]) // never fails (Go ≥ 1.24)
		w.rng.Seed(seed)
		w.seeded = true
	}
	n := len(payload)
	if uint64(n) > maxPayload {
		panic("sshtap: packet: payload too large")
	}

	// RFC 4253 §6: "Note that the length of the concatenation of
	// 'packet_length', 'padding_length', 'payload', and 'random padding'
	// MUST be a multiple of the cipher block size or 8, whichever is
	// larger." ETM and AEAD exclude packet_length.
	covered := 1 + n
	if lengthCoversAlign(w.mode) {
		covered += lenSize
	}
	pad := w.align - covered%w.align
	// RFC 4253 §6: "There MUST be at least four bytes of padding."
	if pad < minPadding {
		pad += w.align
	}
	// RFC 4253 §6: "The minimum size of a packet is 16 (or the cipher block
	// size, whichever is larger) bytes (plus 'mac')." Only classic mode
	// aligns the whole packet; there, alignment to ≥ 8 with ≥ 9 bytes
	// already gives ≥ 16. ETM and AEAD accept shorter packets (12 bytes
	// with chacha20-poly1305), as OpenSSH does.
	for lengthCoversAlign(w.mode) && lenSize+1+n+pad < minPacket {
		pad += w.align
	}

	plen := 1 + n + pad
	total := lenSize + plen
	start := len(dst)
	dst = slices.Grow(dst, total+w.tag)
	pkt := dst[start : start+total]
	copy(pkt[lenSize+1:], payload) // first: payload may overlap pkt
	binary.BigEndian.PutUint32(pkt, uint32(plen))
	pkt[lenSize] = byte(pad)
	w.rng.Read(pkt[lenSize+1+n:]) // RFC 4253 §6: "Arbitrary-length padding ... SHOULD be random"

	if w.sealer == nil {
		dst = dst[:start+total]
	} else {
		sealed := w.sealer.Seal(w.seq, pkt)
		if len(sealed) > 0 && &sealed[0] == &pkt[0] {
			dst = dst[:start+len(sealed)]
		} else { // a Sealer that did not reuse the capacity
			dst = append(dst[:start], sealed...)
		}
	}
	w.stats.add(len(dst)-start, total, w.align)
	w.seq++
	return dst
}
