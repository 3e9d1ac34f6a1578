package sntrup761

// Encodings of the NTRU Prime specification: the mixed-radix Encode/Decode
// pair for public keys (moduli q) and ciphertexts (rounded coefficients,
// moduli (q+2)/3), and the two-bit packing of small polynomials.
//
// Encode and Decode walk public moduli only, and they only ever see public
// values (a public key, a ciphertext), so divisions by the moduli are fine.

// encode appends the encoding of values vals (vals[i] < mods[i]) to out.
// Pairs of neighbours are merged into one value of radix mods[i]*mods[i+1],
// whose low bytes are emitted while the radix is 2^14 or more; the merged
// list is encoded the same way until one value remains, whose bytes are
// emitted last. vals and mods are used as scratch.
func encode(out []byte, vals, mods []uint32) []byte {
	for len(mods) > 1 {
		n := 0
		for i := 0; i+1 < len(mods); i += 2 {
			v, m := vals[i]+vals[i+1]*mods[i], mods[i]*mods[i+1]
			for m >= 1<<14 {
				out = append(out, byte(v))
				v >>= 8
				m = (m + 255) >> 8
			}
			vals[n], mods[n] = v, m
			n++
		}
		if len(mods)%2 == 1 {
			vals[n], mods[n] = vals[len(mods)-1], mods[len(mods)-1]
			n++
		}
		vals, mods = vals[:n], mods[:n]
	}
	v, m := vals[0], mods[0]
	for m > 1 {
		out = append(out, byte(v))
		v >>= 8
		m = (m + 255) >> 8
	}
	return out
}

// encodedLen is the length of encode's output for mods.
func encodedLen(mods []uint32) int {
	vals := make([]uint32, len(mods))
	return len(encode(nil, vals, append([]uint32(nil), mods...)))
}

// decode is the inverse of encode: it fills vals (len(vals) == len(mods))
// from s, which must hold at least encodedLen(mods) bytes. Every byte string
// decodes: each value is reduced modulo its modulus, so a peer's
// non-canonical encoding yields some polynomial, never an error (as in the
// specification).
func decode(vals []uint32, s []byte, mods []uint32) {
	if len(mods) == 1 {
		switch m := mods[0]; {
		case m == 1:
			vals[0] = 0
		case m <= 256:
			vals[0] = uint32(s[0]) % m
		default:
			vals[0] = (uint32(s[0]) | uint32(s[1])<<8) % m
		}
		return
	}
	half := (len(mods) + 1) / 2
	upperMods := make([]uint32, half)
	// low[i] and scale[i] are the bytes emitted for pair i and their radix.
	low := make([]uint32, len(mods)/2)
	scale := make([]uint32, len(mods)/2)
	for i := 0; i+1 < len(mods); i += 2 {
		m, v, t := mods[i]*mods[i+1], uint32(0), uint32(1)
		for m >= 1<<14 {
			v += uint32(s[0]) * t
			t <<= 8
			s = s[1:]
			m = (m + 255) >> 8
		}
		low[i/2], scale[i/2], upperMods[i/2] = v, t, m
	}
	if len(mods)%2 == 1 {
		upperMods[half-1] = mods[len(mods)-1]
	}
	upper := make([]uint32, half)
	decode(upper, s, upperMods)
	for i := 0; i+1 < len(mods); i += 2 {
		v := low[i/2] + scale[i/2]*upper[i/2]
		vals[i] = v % mods[i]
		vals[i+1] = (v / mods[i]) % mods[i+1]
	}
	if len(mods)%2 == 1 {
		vals[len(mods)-1] = upper[half-1]
	}
}

// Moduli of the two encodings.
var (
	rqMods      = fill(q)
	roundedMods = fill((q + 2) / 3)
)

func fill(m uint32) []uint32 {
	mods := make([]uint32, p)
	for i := range mods {
		mods[i] = m
	}
	return mods
}

// encodeRq appends the encoding of a public key polynomial h.
func encodeRq(out []byte, h *[p]int16) []byte {
	var vals, mods [p]uint32
	for i, c := range h {
		vals[i] = uint32(int32(c) + q12)
	}
	copy(mods[:], rqMods)
	return encode(out, vals[:], mods[:])
}

// decodeRq decodes a public key polynomial from PublicKeySize bytes.
func decodeRq(h *[p]int16, s []byte) {
	var vals [p]uint32
	decode(vals[:], s, rqMods)
	for i, v := range vals {
		h[i] = int16(int32(v) - q12)
	}
}

// encodeRounded appends the encoding of c, whose coefficients are multiples
// of 3 in [-q12, q12].
func encodeRounded(out []byte, c *[p]int16) []byte {
	var vals, mods [p]uint32
	for i, x := range c {
		vals[i] = uint32(int32(x)+q12) / 3
	}
	copy(mods[:], roundedMods)
	return encode(out, vals[:], mods[:])
}

// decodeRounded decodes a rounded polynomial from roundedSize bytes.
func decodeRounded(c *[p]int16, s []byte) {
	var vals [p]uint32
	decode(vals[:], s, roundedMods)
	for i, v := range vals {
		c[i] = int16(3*int32(v) - q12)
	}
}

// encodeSmall appends f packed four coefficients a byte, each as f_i+1 in
// two bits, lowest first; the last byte holds the single leftover.
func encodeSmall(out []byte, f *[p]int8) []byte {
	for i := 0; i < p; i += 4 {
		var b byte
		for j := 0; j < 4 && i+j < p; j++ {
			b |= byte(f[i+j]+1) << (2 * j)
		}
		out = append(out, b)
	}
	return out
}

// decodeSmall is the inverse of encodeSmall. It only decodes our own secret
// key, so it needs no validation; a pair of bits 11 decodes to 2, which a
// well-formed key never has.
func decodeSmall(f *[p]int8, s []byte) {
	for i := range p {
		f[i] = int8(s[i/4]>>(2*(i%4))&3) - 1
	}
}
