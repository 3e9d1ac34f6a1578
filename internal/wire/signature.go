package wire

// Signature is a public key signature blob, the "signature" string of a
// publickey USERAUTH_REQUEST (RFC 4252 §7) and the "signature of H" of the
// key exchange replies (RFC 4253 §8, RFC 5656 §4). RFC 4253 §6.6:
// "Signatures are encoded as follows:
//
//	string    signature format identifier (as specified by the
//	          public key/certificate format)
//	byte[n]   signature blob in format specific encoding."
//
// Every format in use encodes the blob as a string ("string "ssh-rsa",
// string rsa_signature_blob", RFC 4253 §6.6; RFC 5656 §3.1.2; RFC 8709 §6),
// and the FIDO formats append fields of their own (OpenSSH PROTOCOL.u2f:
// "byte flags, uint32 counter"), which Rest keeps undecoded.
type Signature struct {
	Format string
	Blob   []byte // aliases the input after ParseSignature
	Rest   []byte // bytes after Blob; aliases the input; nil when there are none
}

// AppendSignature appends s (Format, Blob as a string, then Rest verbatim)
// to b.
func AppendSignature(b []byte, s Signature) []byte {
	b = AppendString(b, s.Format)
	b = AppendBytes(b, s.Blob)
	return append(b, s.Rest...)
}

// ParseSignature decodes a signature blob. Whatever follows the blob string
// is returned in Rest (nil when nothing does); whether trailing fields are
// acceptable depends on the format, so that check is the caller's. Errors
// are *DecodeError with Msg 0: the same encoding appears in
// USERAUTH_REQUEST and in the key exchange replies.
func ParseSignature(p []byte) (Signature, error) {
	r := NewReader(p)
	format := r.Field("signature format identifier").String()
	blob := r.Field("signature blob").Bytes()
	rest := r.Rest()
	if err := r.Err(); err != nil {
		return Signature{}, err
	}
	if len(rest) == 0 {
		rest = nil
	}
	return Signature{Format: format, Blob: blob, Rest: rest}, nil
}
