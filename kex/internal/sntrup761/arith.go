package sntrup761

// Arithmetic in Z/q, Z/3 and the rings R/q = (Z/q)[x]/(x^p - x - 1) and
// R/3 = (Z/3)[x]/(x^p - x - 1). Every function here runs in constant time:
// loops have fixed bounds (or bounds that depend on loop counters only), and
// values derived from secrets never choose a branch or a table index.

// Polynomials are arrays of p coefficients, lowest degree first. Elements of
// Z/q are kept centred in [-(q-1)/2, (q-1)/2] as int16, elements of Z/3 in
// {-1, 0, 1} as int8 ("small" values).

// Barrett constants: (x*mul + 2^(shift-1)) >> shift is round(x/m) for every
// int32 x, up to an error of one that the freeze functions correct. The
// products stay below 2^63.
const (
	qShift     = 43
	qMul       = (1<<qShift + q/2) / q
	threeShift = 32
	threeMul   = (1<<threeShift + 1) / 3
)

// freezeQ returns the centred representative of x mod q.
func freezeQ(x int32) int16 {
	t := int32((int64(x)*qMul + 1<<(qShift-1)) >> qShift)
	r := x - t*q
	// r is within one q of the centred range; fold it in with masks.
	r += q & ((r + q12) >> 31) // r < -q12
	r -= q & ((q12 - r) >> 31) // r > q12
	return int16(r)
}

// freezeQNarrow is freezeQ for |x| < 2^30, without the corrections: there
// round(x/q) comes out exact. (The estimate is off by at most
// |x|/2 * 2^-43 from x/q, less than the distance 1/(2q) from any x/q to the
// nearest half-integer whenever |x| < 2^43/q, about 2^30.8.) The
// reciprocal's inner loop, whose values stay below 2 q12^2 in magnitude,
// uses it.
func freezeQNarrow(x int32) int16 {
	t := int32((int64(x)*qMul + 1<<(qShift-1)) >> qShift)
	return int16(x - t*q)
}

// freeze3 returns the centred representative of x mod 3, in {-1, 0, 1}.
func freeze3(x int32) int8 {
	t := int32((int64(x)*threeMul + 1<<(threeShift-1)) >> threeShift)
	r := x - 3*t
	r += 3 & ((r + 1) >> 31) // r < -1
	r -= 3 & ((1 - r) >> 31) // r > 1
	return int8(r)
}

// recipQ returns 1/a mod q as a^(q-2) (Fermat), for a != 0 mod q. The
// exponent is public, so square-and-multiply over its bits is constant time.
func recipQ(a int16) int16 {
	result, base := int32(1), int32(a)
	for e := q - 2; e > 0; e >>= 1 {
		if e&1 == 1 {
			result = int32(freezeQ(result * base))
		}
		base = int32(freezeQ(base * base))
	}
	return int16(result)
}

// negativeMask is -1 when x < 0 and 0 otherwise.
func negativeMask(x int32) int32 { return x >> 31 }

// nonzeroMask is -1 when x != 0 and 0 otherwise.
func nonzeroMask(x int32) int32 { return (x | -x) >> 31 }

// mulQSmall sets h = f*g in R/q, g small.
func mulQSmall(h *[p]int16, f *[p]int16, g *[p]int8) { mulSmall(h, f, g, freezeQNarrow) }

// mul3 sets h = f*g in R/3.
func mul3(h *[p]int8, f *[p]int8, g *[p]int8) { mulSmall(h, f, g, freeze3) }

// mulSmall sets h = f*g reduced by freeze, g small. |f_i g_j| <= q12, so a
// coefficient of the product is below p*q12 in magnitude and at most three
// of them are summed by the reduction: well inside int32 (and inside
// freezeQNarrow's range).
func mulSmall[T int8 | int16](h *[p]T, f *[p]T, g *[p]int8, freeze func(int32) T) {
	var prod [2*p - 1]int32
	for i := range p {
		fi := int32(f[i])
		row := prod[i : i+p]
		for j, gj := range g {
			row[j] += fi * int32(gj)
		}
	}
	reduce(&prod)
	for i := range h {
		h[i] = freeze(prod[i])
	}
}

// reduce folds the coefficients of degree p..2p-2 into the low p using
// x^p = x + 1: x^k = x^(k-p+1) + x^(k-p). The highest target, k-p+1, stays
// below p, so one pass suffices.
func reduce(prod *[2*p - 1]int32) {
	for k := 2*p - 2; k >= p; k-- {
		prod[k-p] += prod[k]
		prod[k-p+1] += prod[k]
	}
}

// The reciprocals follow the constant-time polynomial GCD of the NTRU
// Prime specification (Bernstein and Yang's "divsteps"). Polynomials are
// held reversed: f starts as the reversed modulus x^p - x - 1 and g as the
// reversed input; each of the 2p-1 steps swaps f and g when delta > 0 and
// g(0) != 0, cancels g's constant term against f's, and divides g by x,
// while v and r track the Bezout coefficient. The input is invertible
// exactly when delta ends at 0, and then 1/input is v reversed, scaled by
// 1/f(0). Each step's swap, update and division by x run as one pass over
// f and g and one over v and r.

// recipQ3 sets out = 1/(3a) in R/q and returns 0 if 3a is invertible (R/q
// is a field, so whenever a != 0), -1 if not. The cancellation is done
// without a division: g = f0 g - g0 f. (recip3, for R/3, is bitsliced in
// recip3.go.)
func recipQ3(out *[p]int16, a *[p]int8) int32 {
	var f, g, v, r [p + 1]int16
	f[0], f[p-1], f[p] = 1, -1, -1
	for i := range p {
		g[p-1-i] = int16(a[i])
	}
	r[0] = recipQ(3)
	delta := int32(1)
	for step := range 2*p - 1 {
		swap := negativeMask(-delta) & nonzeroMask(int32(g[0]))
		delta ^= swap & (delta ^ -delta)
		delta++
		m := int16(swap)
		t := m & (f[0] ^ g[0])
		f0, g0 := int32(f[0]^t), int32(g[0]^t)
		f[0] = int16(f0)
		for i := 1; i <= p; i++ {
			fi, gi := f[i], g[i]
			t := m & (fi ^ gi)
			fi, gi = fi^t, gi^t
			f[i] = fi
			g[i-1] = freezeQNarrow(f0*int32(gi) - g0*int32(fi))
		}
		g[p] = 0
		for i := min(step+1, p); i >= 0; i-- {
			var vi int16
			if i > 0 {
				vi = v[i-1]
			}
			ri := r[i]
			t := m & (vi ^ ri)
			vi, ri = vi^t, ri^t
			v[i] = vi
			r[i] = freezeQNarrow(f0*int32(ri) - g0*int32(vi))
		}
	}
	scale := int32(recipQ(f[0]))
	for i := range p {
		out[i] = freezeQ(scale * int32(v[p-1-i]))
	}
	return nonzeroMask(delta)
}
