package sntrup761

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestEncodedSizes(t *testing.T) {
	if n := encodedLen(rqMods); n != PublicKeySize {
		t.Errorf("R/q encoding is %d bytes, want %d", n, PublicKeySize)
	}
	if n := encodedLen(roundedMods); n != roundedSize {
		t.Errorf("rounded encoding is %d bytes, want %d", n, roundedSize)
	}
}

// TestEncodeRoundTrip encodes random values under several radix lists,
// including tiny and odd lengths, and decodes them back.
func TestEncodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		n int
		m uint32
	}{{1, 2}, {1, 300}, {1, 1}, {2, 5}, {3, 4591}, {7, 1531}, {64, 256}, {100, 16384}, {p, q}, {p, (q + 2) / 3}} {
		mods := make([]uint32, tc.n)
		vals := make([]uint32, tc.n)
		for i := range mods {
			mods[i] = tc.m
			if tc.m > 3 && i%5 == 0 {
				mods[i] = tc.m - uint32(i%3) // mixed radices
			}
			vals[i] = r.Uint32N(mods[i])
		}
		enc := encode(nil, append([]uint32(nil), vals...), append([]uint32(nil), mods...))
		if len(enc) != encodedLen(mods) {
			t.Fatalf("%v: encodedLen disagrees", tc)
		}
		got := make([]uint32, tc.n)
		decode(got, enc, mods)
		for i := range vals {
			if got[i] != vals[i] {
				t.Fatalf("%v: value %d decoded as %d, want %d", tc, i, got[i], vals[i])
			}
		}
	}
}

// TestDecodeAnyBytes: every byte string of the right length decodes to
// coefficients in range, and re-encoding a decoded public key is stable.
func TestDecodeAnyBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, fill := range []func() byte{func() byte { return 0xff }, func() byte { return 0 }, func() byte { return byte(r.Uint32()) }} {
		pk := make([]byte, PublicKeySize)
		for i := range pk {
			pk[i] = fill()
		}
		var h [p]int16
		decodeRq(&h, pk)
		for i, c := range h {
			if c < -q12 || c > q12 {
				t.Fatalf("coefficient %d = %d out of range", i, c)
			}
		}
		enc := encodeRq(nil, &h)
		var h2 [p]int16
		decodeRq(&h2, enc)
		if h != h2 {
			t.Fatal("decode(encode(decode(x))) != decode(x)")
		}
		var c [p]int16
		decodeRounded(&c, pk[:roundedSize])
		for i, x := range c {
			if x < -q12 || x > q12 || (x+q12)%3 != 0 {
				t.Fatalf("rounded coefficient %d = %d not a multiple of 3 in range", i, x)
			}
		}
	}
}

func TestSmallRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	f := randomSmallPoly(r)
	enc := encodeSmall(nil, f)
	if len(enc) != smallSize {
		t.Fatalf("small encoding is %d bytes, want %d", len(enc), smallSize)
	}
	var g [p]int8
	decodeSmall(&g, enc)
	if g != *f {
		t.Fatal("small polynomial does not round-trip")
	}
	if !bytes.Equal(encodeSmall(nil, &g), enc) {
		t.Fatal("re-encoding differs")
	}
}
