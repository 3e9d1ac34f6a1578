package wire

import (
	"encoding/binary"
	"math/big"
)

// AppendBool appends an SSH boolean (RFC 4251 §5): "A boolean value is
// stored as a single byte. The value 0 represents FALSE, and the value 1
// represents TRUE."
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendUint32 appends v in network byte order (RFC 4251 §5 "uint32").
func AppendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// AppendUint64 appends v in network byte order (RFC 4251 §5 "uint64").
func AppendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// AppendString appends s as an SSH string (RFC 4251 §5): "uint32 containing
// its length (not including the uint32 itself), followed by zero (= empty
// string) or more bytes that are the value of the string".
func AppendString(b []byte, s string) []byte {
	b = AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendBytes appends s as an SSH string (RFC 4251 §5).
func AppendBytes(b []byte, s []byte) []byte {
	b = AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendNameList appends names as an SSH name-list (RFC 4251 §5): "a string
// containing a comma-separated list of names". The caller is responsible for
// the names being non-empty US-ASCII without commas; they are not checked
// here (Reader.NameList checks what peers send).
func AppendNameList(b []byte, names []string) []byte {
	n := 0
	for i, s := range names {
		if i > 0 {
			n++
		}
		n += len(s)
	}
	b = AppendUint32(b, uint32(n))
	for i, s := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return b
}

// AppendMpint appends n as an SSH mpint (RFC 4251 §5): "two's complement
// format, stored as a string, 8 bits per byte, MSB first. Negative numbers
// have the value 1 as the most significant bit of the first byte of the
// data partition. If the most significant bit would be set for a positive
// number, the number MUST be preceded by a zero byte. Unnecessary leading
// bytes with the value 0 or 255 MUST NOT be included. The value zero MUST be
// stored as a string with zero bytes of data."
//
// A nil n encodes as zero. Non-negative values do not allocate when b has
// room; negative values allocate a temporary.
func AppendMpint(b []byte, n *big.Int) []byte {
	if n == nil || n.Sign() == 0 {
		return AppendUint32(b, 0)
	}
	if n.Sign() > 0 {
		bits := n.BitLen()
		l := (bits + 7) / 8
		pad := bits%8 == 0 // top bit set: needs a leading 0x00
		if pad {
			l++
		}
		b = AppendUint32(b, uint32(l))
		b = grow(b, l)
		dst := b[len(b)-l:]
		n.FillBytes(dst) // writes leading zeros into the pad byte
		return b
	}
	// Negative: the two's complement of -n in the fewest bytes is the
	// bitwise inverse of (-n - 1), sign-extended with 0xff when needed.
	x := new(big.Int).Neg(n)
	x.Sub(x, bigOne)
	mag := x.Bytes()
	pad := len(mag) == 0 || mag[0]&0x80 != 0
	l := len(mag)
	if pad {
		l++
	}
	b = AppendUint32(b, uint32(l))
	if pad {
		b = append(b, 0xff)
	}
	for _, c := range mag {
		b = append(b, ^c)
	}
	return b
}

// AppendMpintBytes appends the unsigned big-endian magnitude mag as an SSH
// mpint (RFC 4251 §5): leading zero bytes are stripped and a 0x00 byte is
// added when the top bit of the first remaining byte is set. It never
// allocates when b has room.
func AppendMpintBytes(b []byte, mag []byte) []byte {
	for len(mag) > 0 && mag[0] == 0 {
		mag = mag[1:]
	}
	if len(mag) > 0 && mag[0]&0x80 != 0 {
		b = AppendUint32(b, uint32(len(mag)+1))
		b = append(b, 0)
		return append(b, mag...)
	}
	return AppendBytes(b, mag)
}

var bigOne = big.NewInt(1)

// grow extends b by n bytes (contents unspecified) reusing capacity.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	return append(b, make([]byte, n)...)
}
