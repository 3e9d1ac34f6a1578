package packet

import "sshtap/cipher"

// DefaultMaxPacket is the packet_length limit a [Reader] applies when its
// MaxPacket is zero. It is OpenSSH's PACKET_MAX_SIZE (256 KiB), well above
// the 35000 bytes RFC 4253 §6.1 requires every implementation to accept.
const DefaultMaxPacket = 256 << 10

// maxPacketLimit bounds MaxPacket so that packet sizes fit an int with room
// for the length field and the tag on every platform.
const maxPacketLimit = 1 << 30

const (
	lenSize    = 4  // uint32 packet_length
	minPadding = 4  // RFC 4253 §6: "There MUST be at least four bytes of padding."
	minAlign   = 8  // RFC 4253 §6: multiple of the cipher block size "or 8, whichever is larger"
	minPacket  = 16 // RFC 4253 §6: "The minimum size of a packet is 16 (or the cipher block size, whichever is larger) bytes"
	maxPadding = 255
)

// Stats counts the traffic in one direction since the keys were last set
// (SetSealer / SetOpener). It feeds the rekey limits of RFC 4344 §3 and
// RFC 4253 §9.
type Stats struct {
	Packets uint64 // packets sealed or opened (including ones that failed authentication)
	Bytes   uint64 // bytes on the wire: length field, body and tag
	// Blocks counts cipher blocks: ceil((4+packet_length) / max(BlockSize, 8))
	// per packet, the length field included as OpenSSH counts it.
	Blocks uint64
}

func (s *Stats) add(wire, framed, align int) {
	s.Packets++
	s.Bytes += uint64(wire)
	s.Blocks += uint64((framed + align - 1) / align)
}

// alignment returns the padding unit for a cipher block size:
// max(BlockSize, 8) per RFC 4253 §6.
func alignment(blockSize int) int {
	if blockSize < minAlign {
		return minAlign
	}
	return blockSize
}

// checkBlockSize rejects block sizes for which RFC 4253 §6 padding (at most
// 255 bytes, at least 4) cannot always be found. It panics: a Sealer or
// Opener is local code, not peer input.
func checkBlockSize(bs int) {
	if bs > 128 {
		panic("sshtap: packet: cipher block size too large for SSH padding")
	}
}

// lengthCoversAlign reports whether the 4-byte length field takes part in the
// block alignment: only in classic (Encrypt-and-MAC) mode and with no
// cipher. ETM and AEAD leave it out (OpenSSH PROTOCOL §1.5,
// PROTOCOL.chacha20poly1305, RFC 5647 §7.2).
func lengthCoversAlign(m cipher.Mode) bool { return m == cipher.ModeClassic }
