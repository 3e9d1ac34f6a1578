package sntrup761

// The R/3 reciprocal, bitsliced: a polynomial with coefficients in
// {-1, 0, 1} is two bit vectors, one marking the coefficients equal to 1
// and one marking those equal to -1, so each step of the divstep loop
// (recipQ3 explains it) works on 64 coefficients per machine word and
// costs a few hundred word operations instead of a pass over 762 bytes.

const (
	ternWords = (p + 1 + 63) / 64                       // 12 words hold p+1 coefficients
	ternTop   = uint64(1)<<((p+1)-64*(ternWords-1)) - 1 // valid bits of the last word
)

// tern is a polynomial of degree at most p over Z/3, bitsliced.
type tern struct {
	pos, neg [ternWords]uint64
}

// set sets coefficient i, which must be 0, to c in {-1, 0, 1}, without
// branching on c: 1 is 0x01 and -1 is 0xff as a byte, so the sign bit marks
// -1 and the low bit without the sign bit marks 1.
func (t *tern) set(i int, c int8) {
	b := uint8(c)
	t.pos[i/64] |= uint64(b&1&^(b>>7)) << (i % 64)
	t.neg[i/64] |= uint64(b>>7) << (i % 64)
}

func (t *tern) get(i int) int8 {
	bit := uint(i % 64)
	return int8((t.pos[i/64]>>bit)&1) - int8((t.neg[i/64]>>bit)&1)
}

// condSwapTern swaps a and b when mask is all ones and leaves them when it
// is zero.
func condSwapTern(a, b *tern, mask uint64) {
	for i := range ternWords {
		t := mask & (a.pos[i] ^ b.pos[i])
		a.pos[i] ^= t
		b.pos[i] ^= t
		t = mask & (a.neg[i] ^ b.neg[i])
		a.neg[i] ^= t
		b.neg[i] ^= t
	}
}

// addScaled sets a = a + c b in Z/3 coefficient-wise, where c is given by
// two masks: cPos all ones for c = 1, cNeg all ones for c = -1 (both zero
// for c = 0).
func addScaled(a, b *tern, cPos, cNeg uint64) {
	for i := range ternWords {
		bp := b.pos[i]&cPos | b.neg[i]&cNeg // c b
		bn := b.neg[i]&cPos | b.pos[i]&cNeg
		ap, an := a.pos[i], a.neg[i]
		az, bz := ^(ap | an), ^(bp | bn)
		// 1+0, 0+1 and -1-1 give 1; -1+0, 0-1 and 1+1 give -1.
		a.pos[i] = ap&bz | bp&az | an&bn
		a.neg[i] = an&bz | bn&az | ap&bp
	}
}

// shiftDown divides by x (drops coefficient 0).
func (t *tern) shiftDown() {
	for i := range ternWords - 1 {
		t.pos[i] = t.pos[i]>>1 | t.pos[i+1]<<63
		t.neg[i] = t.neg[i]>>1 | t.neg[i+1]<<63
	}
	t.pos[ternWords-1] >>= 1
	t.neg[ternWords-1] >>= 1
}

// shiftUp multiplies by x, dropping the term of degree p+1.
func (t *tern) shiftUp() {
	for i := ternWords - 1; i > 0; i-- {
		t.pos[i] = t.pos[i]<<1 | t.pos[i-1]>>63
		t.neg[i] = t.neg[i]<<1 | t.neg[i-1]>>63
	}
	t.pos[0] <<= 1
	t.neg[0] <<= 1
	t.pos[ternWords-1] &= ternTop
	t.neg[ternWords-1] &= ternTop
}

// recip3 sets out = 1/a in R/3 and returns 0 if a is invertible, -1 if not.
func recip3(out *[p]int8, a *[p]int8) int32 {
	var f, g, v, r tern
	f.set(0, 1)
	f.set(p-1, -1)
	f.set(p, -1)
	for i := range p {
		g.set(p-1-i, a[i])
	}
	r.set(0, 1)
	delta := int32(1)
	for range 2*p - 1 {
		v.shiftUp()
		g0 := int32((g.pos[0] | g.neg[0]) & 1)
		swap := negativeMask(-delta) & nonzeroMask(g0)
		delta ^= swap & (delta ^ -delta)
		delta++
		mask := uint64(int64(swap))
		condSwapTern(&f, &g, mask)
		condSwapTern(&v, &r, mask)
		// f(0) is ±1, its own inverse: g - (g0/f0) f = g + c f with
		// c = -g0 f0, which is 1 when g0 = -f0 and -1 when g0 = f0.
		f0p, f0n := f.pos[0]&1, f.neg[0]&1
		g0p, g0n := g.pos[0]&1, g.neg[0]&1
		cPos := -(g0p&f0n | g0n&f0p)
		cNeg := -(g0p&f0p | g0n&f0n)
		addScaled(&g, &f, cPos, cNeg)
		addScaled(&r, &v, cPos, cNeg)
		g.shiftDown()
	}
	scale := f.get(0)
	for i := range p {
		out[i] = scale * v.get(p-1-i)
	}
	return nonzeroMask(delta)
}
