package sntrup761

import (
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func centred(x, m int64) int64 {
	r := ((x % m) + m) % m
	if r > m/2 {
		r -= m
	}
	return r
}

func TestFreeze(t *testing.T) {
	check := func(x int32) {
		if got, want := int64(freezeQ(x)), centred(int64(x), q); got != want {
			t.Fatalf("freezeQ(%d) = %d, want %d", x, got, want)
		}
		if got, want := int64(freeze3(x)), centred(int64(x), 3); got != want {
			t.Fatalf("freeze3(%d) = %d, want %d", x, got, want)
		}
	}
	for x := int32(-1 << 20); x <= 1<<20; x++ {
		check(x)
	}
	for _, x := range []int32{math.MinInt32, math.MinInt32 + 1, math.MaxInt32, math.MaxInt32 - 1} {
		check(x)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		check(int32(r.Uint32()))
	}
	narrow := func(x int32) {
		if got, want := int64(freezeQNarrow(x)), centred(int64(x), q); got != want {
			t.Fatalf("freezeQNarrow(%d) = %d, want %d", x, got, want)
		}
	}
	for x := int32(-1 << 22); x <= 1<<22; x++ {
		narrow(x)
	}
	for _, x := range []int32{1<<30 - 1, -(1<<30 - 1)} {
		narrow(x)
	}
	for range 1 << 20 {
		narrow(int32(r.Uint32()) >> 2)
	}
	// Around every multiple of q/2 near the top of the range, where a
	// rounding error would show first.
	for k := int32(1<<30/q*2 - 50); k <= 1<<30/q*2; k++ {
		for d := int32(-2); d <= 2; d++ {
			if x := k*q/2 + d; x < 1<<30 {
				narrow(x)
				narrow(-x)
			}
		}
	}
}

func TestRecipQ(t *testing.T) {
	for a := int16(-q12); a <= q12; a++ {
		if a == 0 {
			continue
		}
		if got := freezeQ(int32(a) * int32(recipQ(a))); got != 1 {
			t.Fatalf("%d * recipQ(%d) = %d", a, a, got)
		}
	}
}

func randomSmallPoly(r *rand.Rand) *[p]int8 {
	var g [p]int8
	for i := range g {
		g[i] = int8(r.IntN(3)) - 1
	}
	return &g
}

func one3() *[p]int8 {
	var e [p]int8
	e[0] = 1
	return &e
}

// TestRecip3 checks a * recip3(a) = 1 in R/3, and that zero is reported
// as not invertible in both rings.
func TestRecip3(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	invertible := 0
	for range 20 {
		a := randomSmallPoly(r)
		var inv, prod [p]int8
		if recip3(&inv, a) != 0 {
			continue
		}
		invertible++
		mul3(&prod, a, &inv)
		if prod != *one3() {
			t.Fatal("a * (1/a) != 1 in R/3")
		}
	}
	if invertible < 15 {
		t.Fatalf("only %d of 20 random small polynomials invertible", invertible)
	}
	var zero, inv [p]int8
	if recip3(&inv, &zero) != -1 {
		t.Fatal("zero reported invertible")
	}
	var zeroQ [p]int16
	if recipQ3(&zeroQ, &zero) != -1 {
		t.Fatal("zero reported invertible in R/q")
	}
	// The inverse of a square is the square of the inverse.
	a := randomSmallPoly(r)
	var ia, a2, ia2, want [p]int8
	for recip3(&ia, a) != 0 {
		a = randomSmallPoly(r)
	}
	mul3(&a2, a, a)
	if recip3(&ia2, &a2) != 0 {
		t.Fatal("square of an invertible element reported not invertible")
	}
	mul3(&want, &ia, &ia)
	if ia2 != want {
		t.Fatal("1/a^2 != (1/a)^2")
	}
}

// TestRecipQ3 checks 3 a recipQ3(a) = 1 in R/q for short a.
func TestRecipQ3(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 5 {
		var f [p]int8
		buf := make([]byte, 4*p)
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		if err := randomShort(&f, &sliceReader{buf}); err != nil {
			t.Fatal(err)
		}
		var inv, prod [p]int16
		if recipQ3(&inv, &f) != 0 {
			t.Fatal("short polynomial not invertible in R/q")
		}
		mulQSmall(&prod, &inv, &f)
		for i, c := range prod {
			want := int16(0)
			if i == 0 {
				want = recipQ(3)
			}
			if c != want {
				t.Fatalf("f / (3f) coefficient %d = %d, want %d", i, c, want)
			}
		}
	}
}

// TestMulMatchesSchoolbook compares the ring multiplication with a direct
// computation of the product modulo x^p - x - 1 by repeated substitution.
func TestMulMatchesSchoolbook(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var f [p]int16
	for i := range f {
		f[i] = int16(r.IntN(q)) - q12
	}
	g := randomSmallPoly(r)
	var got [p]int16
	mulQSmall(&got, &f, g)
	prod := make([]int64, 2*p-1)
	for i := range p {
		for j := range p {
			prod[i+j] += int64(f[i]) * int64(g[j])
		}
	}
	for k := len(prod) - 1; k >= p; k-- { // x^k = x^(k-p) * (x + 1)
		prod[k-p+1] += prod[k]
		prod[k-p] += prod[k]
		prod[k] = 0
	}
	for i := range p {
		if int64(got[i]) != centred(prod[i], q) {
			t.Fatalf("coefficient %d: %d, want %d", i, got[i], centred(prod[i], q))
		}
	}
}

func TestSortUint32(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for n := range 130 {
		x := make([]uint32, n)
		for i := range x {
			x[i] = r.Uint32() >> (r.IntN(3) * 14) // some duplicates
		}
		want := slices.Clone(x)
		slices.Sort(want)
		sortUint32(x)
		if !slices.Equal(x, want) {
			t.Fatalf("n=%d: not sorted", n)
		}
	}
	x := make([]uint32, p)
	for i := range x {
		x[i] = r.Uint32()
	}
	x[0], x[1] = math.MaxUint32, 0
	want := slices.Clone(x)
	slices.Sort(want)
	sortUint32(x)
	if !slices.Equal(x, want) {
		t.Fatal("n=761: not sorted")
	}
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(b []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(b, s.b)
	s.b = s.b[n:]
	return n, nil
}
