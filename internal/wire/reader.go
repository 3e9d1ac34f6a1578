package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
)

// MaxMpintBits bounds the magnitude of a decoded mpint (OpenSSH's
// SSHBUF_MAX_BIGNUM is 16384 bits too). The largest value any supported
// method uses is an 8192-bit DH group.
const MaxMpintBits = 16384

// MaxNameListEntries bounds the number of names Reader.NameList accepts.
// Real lists hold a few dozen names (dropbear exits above 50).
const MaxNameListEntries = 1024

// Reader is a cursor over an SSH-encoded buffer with a sticky error: the
// first failure is recorded, every later read returns the zero value and
// consumes nothing, and Err reports the failure as a *DecodeError.
//
// Reads that return []byte (Bytes, Fixed, Rest) alias the input buffer;
// String, NameList and Mpint copy. A Reader never panics and never
// allocates for a declared length larger than the bytes present.
//
// The zero Reader is an empty buffer. Reader is a small value; pass *Reader.
type Reader struct {
	b     []byte
	err   error
	msg   byte
	field string
}

// NewReader returns a Reader over b. It does not copy b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Expect reads the message-number byte and checks that it is t. From then
// on decode errors carry t as DecodeError.Msg. It reports whether the byte
// matched (false also when an earlier read failed).
func (r *Reader) Expect(t byte) bool {
	r.msg = t
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 {
		r.Fail("message number", ErrShort)
		return false
	}
	if got := r.b[0]; got != t {
		r.Fail("message number", fmt.Errorf("%w %s", ErrMsgNumber, MsgName(got)))
		return false
	}
	r.b = r.b[1:]
	return true
}

// SetMsg sets the message number reported in later DecodeErrors without
// reading anything.
func (r *Reader) SetMsg(t byte) { r.msg = t }

// Field names the field the next read decodes, for DecodeError.Field
// (unnamed reads report the data type: "uint32", "string", ...). It applies
// to one read and returns r so calls chain:
//
//	m.Reason = r.Field("reason code").Uint32()
func (r *Reader) Field(name string) *Reader {
	r.field = name
	return r
}

// Fail records err for field unless an error is already recorded; use it
// for semantic checks on decoded values. The rest of the input is dropped.
func (r *Reader) Fail(field string, err error) {
	if r.err == nil {
		r.err = &DecodeError{Msg: r.msg, Field: field, Err: err}
	}
	r.b = nil
}

// name returns the label for the read starting now (the Field name, else
// the data type) and clears the Field name: it labels one read only.
func (r *Reader) name(typ string) string {
	if r.field != "" {
		typ = r.field
		r.field = ""
	}
	return typ
}

// Err returns the first failure as a *DecodeError, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes (0 after a failure).
func (r *Reader) Len() int { return len(r.b) }

// take returns the next n bytes (aliasing) or records ErrShort.
func (r *Reader) take(n uint64, typ string) ([]byte, bool) {
	name := r.name(typ)
	if r.err != nil {
		return nil, false
	}
	if n > uint64(len(r.b)) {
		r.Fail(name, ErrShort)
		return nil, false
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, true
}

// Byte reads one byte (RFC 4251 §5 "byte").
func (r *Reader) Byte() byte {
	v, ok := r.take(1, "byte")
	if !ok {
		return 0
	}
	return v[0]
}

// Bool reads a boolean. RFC 4251 §5: "All non-zero values MUST be
// interpreted as TRUE".
func (r *Reader) Bool() bool {
	v, ok := r.take(1, "boolean")
	return ok && v[0] != 0
}

// Uint32 reads a big-endian uint32 (RFC 4251 §5).
func (r *Reader) Uint32() uint32 {
	v, ok := r.take(4, "uint32")
	if !ok {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// Uint64 reads a big-endian uint64 (RFC 4251 §5).
func (r *Reader) Uint64() uint64 {
	v, ok := r.take(8, "uint64")
	if !ok {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// str reads an SSH string's bytes, aliasing the input.
func (r *Reader) str(name string) ([]byte, bool) {
	if r.err != nil {
		return nil, false
	}
	if len(r.b) < 4 {
		r.Fail(name, ErrShort)
		return nil, false
	}
	n := binary.BigEndian.Uint32(r.b)
	// RFC 4251 §5 string: "uint32 containing its length ... followed by
	// zero (= empty string) or more bytes". The declared length is checked
	// against the bytes present before anything is sliced or allocated.
	if uint64(n) > uint64(len(r.b)-4) {
		r.Fail(name, ErrShort)
		return nil, false
	}
	v := r.b[4 : 4+n : 4+n]
	r.b = r.b[4+n:]
	return v, true
}

// Bytes reads an SSH string (RFC 4251 §5). The result aliases the input;
// an empty string yields a non-nil empty slice, a failure nil.
func (r *Reader) Bytes() []byte {
	v, _ := r.str(r.name("string"))
	return v
}

// String reads an SSH string (RFC 4251 §5) and returns a copy.
func (r *Reader) String() string {
	v, _ := r.str(r.name("string"))
	return string(v)
}

// NameList reads an SSH name-list (RFC 4251 §5) and returns its names
// (copies; nil for the empty list). RFC 4251 §5: "A name-list is represented
// as a uint32 containing its length ... followed by a comma-separated list
// of zero or more names. A name MUST have a non-zero length, and it MUST NOT
// contain a comma". An empty name (",", "a,,b", "a,") fails with
// ErrEmptyName; a NUL byte ("Terminating null characters MUST NOT be used")
// with ErrBadName; more than MaxNameListEntries names with ErrTooMany.
// Non-ASCII bytes are accepted.
func (r *Reader) NameList() []string { return r.nameList(false) }

// NameListSkipEmpty is NameList for peers that break the rule "A name MUST
// have a non-zero length" (RFC 4251 §5) with a stray comma: empty names
// (",a", "a,,b", "a,") are dropped instead of failing, and a list of commas
// only decodes as the empty list. libssh 0.10 clients end the lists of
// their KEXINIT with a comma, and OpenSSH's sshd tolerates it. The other checks are NameList's: a NUL byte
// fails with ErrBadName, more than MaxNameListEntries names (empty ones not
// counted) with ErrTooMany.
func (r *Reader) NameListSkipEmpty() []string { return r.nameList(true) }

func (r *Reader) nameList(skipEmpty bool) []string {
	name := r.name("name-list")
	v, ok := r.str(name)
	if !ok || len(v) == 0 {
		return nil
	}
	if bytes.IndexByte(v, 0) >= 0 {
		r.Fail(name, ErrBadName)
		return nil
	}
	// Count the entries and the non-empty ones, so that the slice is
	// allocated once and never beyond the bound.
	total, n, start := 0, 0, 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ',' {
			total++
			if i > start {
				n++
			}
			start = i + 1
		}
	}
	counted := total
	if skipEmpty {
		counted = n
	}
	if counted > MaxNameListEntries {
		r.Fail(name, ErrTooMany)
		return nil
	}
	if n < total && !skipEmpty {
		r.Fail(name, ErrEmptyName)
		return nil
	}
	if n == 0 {
		return nil // commas only, all dropped
	}
	s := string(v) // one copy; the names are substrings of it
	names := make([]string, 0, n)
	start = 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				names = append(names, s[start:i])
			}
			start = i + 1
		}
	}
	return names
}

// Mpint reads an SSH mpint (RFC 4251 §5, two's complement, MSB first).
// Decoding is lenient: redundant leading 0x00/0xff bytes are accepted. The
// magnitude is bounded to MaxMpintBits (ErrTooLarge). The empty string is
// zero. On failure it returns nil.
func (r *Reader) Mpint() *big.Int {
	name := r.name("mpint")
	v, ok := r.str(name)
	if !ok {
		return nil
	}
	if len(v) == 0 {
		// RFC 4251 §5: "The value zero MUST be stored as a string with zero
		// bytes of data."
		return new(big.Int)
	}
	neg := v[0]&0x80 != 0
	// RFC 4251 §5: "Unnecessary leading bytes with the value 0 or 255 MUST
	// NOT be included" — tolerated here, stripped before the bound check.
	if neg {
		for len(v) > 1 && v[0] == 0xff && v[1]&0x80 != 0 {
			v = v[1:]
		}
	} else {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
	}
	if len(v) > MaxMpintBits/8+1 {
		r.Fail(name, ErrTooLarge)
		return nil
	}
	n := new(big.Int)
	if !neg {
		n.SetBytes(v)
	} else {
		// Negative numbers "have the value 1 as the most significant bit of
		// the first byte": value = -(^v + 1).
		inv := make([]byte, len(v))
		for i, c := range v {
			inv[i] = ^c
		}
		n.SetBytes(inv)
		n.Add(n, bigOne)
		n.Neg(n)
	}
	if n.BitLen() > MaxMpintBits {
		r.Fail(name, ErrTooLarge)
		return nil
	}
	return n
}

// Fixed reads n raw bytes, aliasing the input.
func (r *Reader) Fixed(n int) []byte {
	if n < 0 {
		r.Fail(r.name("bytes"), ErrNegative)
		return nil
	}
	v, _ := r.take(uint64(n), "bytes")
	return v
}

// Rest returns all unread bytes (aliasing the input) and consumes them. It
// returns nil after a failure.
func (r *Reader) Rest() []byte {
	r.name("")
	if r.err != nil {
		return nil
	}
	v := r.b
	r.b = r.b[len(r.b):]
	return v
}
