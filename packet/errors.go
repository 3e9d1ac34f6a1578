package packet

import (
	"fmt"

	"sshtap/cipher"
)

// modeName names the protection mode for error messages. A classic-mode
// error whose length field was not encrypted can only come from the "none"
// cipher.
func modeName(m cipher.Mode, encrypted bool) string {
	if m == cipher.ModeClassic && !encrypted {
		return "none"
	}
	return m.String()
}

// AuthError reports a packet whose MAC or AEAD tag did not verify.
//
// The packet has been consumed: the sequence number and the cipher state
// have advanced exactly as for an authentic packet, so the stream is still in
// sync and the caller may discard the packet, accept it, or fail the
// connection. Payload holds the unauthenticated decryption (for ETM and AEAD
// the decryption of whatever arrived). Since nothing in a forged packet can
// be trusted, its padding_length is not checked (a failed tag is reported
// as AuthError, never as [PaddingError]) but clamped so that Payload stays
// inside the packet; it may be empty. Payload is valid only until the next
// call to [Reader.Next].
type AuthError struct {
	Seq     uint32      // sequence number of the packet
	Length  uint32      // packet_length as decoded (unauthenticated, since the tag failed)
	Mode    cipher.Mode // protection mode of the Opener
	Payload []byte      // unauthenticated payload; aliases the Reader's buffer
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("sshtap: packet: message authentication failed (seq %d, length %d, %s)",
		e.Seq, e.Length, e.Mode)
}

// LengthError reports a packet_length field that is too small, larger than
// the Reader's MaxPacket, or not aligned to the cipher block size. Framing is
// lost: the error is fatal and the Reader returns it on every later call.
type LengthError struct {
	Seq    uint32 // sequence number of the packet
	Length uint32 // the decoded packet_length
	Max    int    // the Reader's limit
	Mode   cipher.Mode
	// Encrypted reports whether the length field was encrypted on the wire
	// (classic mode and chacha20-poly1305), in which case a nonsense value
	// usually means the keys differ rather than that the peer sent it. It
	// is false for ETM, AES-GCM and the "none" cipher (which reports
	// Mode == ModeClassic).
	Encrypted bool
}

func (e *LengthError) Error() string {
	return fmt.Sprintf("sshtap: packet: bad packet length %d (seq %d, %s)",
		e.Length, e.Seq, modeName(e.Mode, e.Encrypted))
}

// PaddingError reports an authentic (or unprotected) packet whose
// padding_length is below 4 or leaves no room for the padding_length byte
// itself. The error is fatal and the Reader returns it on every later call.
type PaddingError struct {
	Seq     uint32 // sequence number of the packet
	Padding uint32 // padding_length
	Length  uint32 // packet_length
}

func (e *PaddingError) Error() string {
	return fmt.Sprintf("sshtap: packet: bad padding length %d (seq %d, packet length %d)",
		e.Padding, e.Seq, e.Length)
}
