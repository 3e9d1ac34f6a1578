// Package wire encodes and decodes the SSH-2 data types of RFC 4251 §5,
// the transport-layer messages of RFC 4253 §7–§11, RFC 8308, RFC 4419,
// RFC 5656 and OpenSSH's PROTOCOL (ping), the user authentication and
// connection messages of RFC 4252, RFC 4256 and RFC 4254 with their
// method-, request- and channel-type-specific data, and the signature blob
// of RFC 4253 §6.6. It is the only home of sshtap's byte layouts.
//
// Encoders append to a caller-supplied slice and return the extended slice
// (AppendX(b, v) []byte); they allocate only when b lacks capacity. Decoding
// goes through Reader, a cursor with a sticky error: the first failure is
// kept, later reads return zero values, and Err reports a *DecodeError.
//
// Every message is a struct T with
//
//	func (m *T) Marshal(b []byte) []byte  // appends the whole payload, message number first
//	func (m *T) Unmarshal(p []byte) error // p is the whole payload, message number first
//
// or with the one of the two sshtap uses: the package holds only what
// sshtap calls, and a type's comment says why a half is missing.
//
// Lifetime rules: after Unmarshal, []byte fields alias p (copy them if p
// is reused, e.g. a packet reader's buffer); string fields, name-lists and
// *big.Int values are copies. Trailing bytes after the last defined field are
// ignored by every Unmarshal, so later protocol extensions still decode.
//
// The package is pure: no goroutines, no I/O, and nothing panics on peer
// input; every length taken from the input is checked against the bytes
// actually present before anything is sliced or allocated.
package wire
