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

// freeze3 returns the centred representative of x mod 3, in {-1, 0, 1}.
func freeze3(x int32) int8 {
	t := int32((int64(x)*threeMul + 1<<(threeShift-1)) >> threeShift)
	r := x - 3*t
	r += 3 & ((r + 1) >> 31) // r < -1
	r -= 3 & ((1 - r) >> 31) // r > 1
	return int8(r)
}

// freeze3Small is freeze3 for x in [-2, 2], without the multiplication.
func freeze3Small(x int32) int8 {
	x += 3 & ((x + 1) >> 31) // -2 -> 1
	x -= 3 & ((1 - x) >> 31) // 2 -> -1
	return int8(x)
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
func mulQSmall(h *[p]int16, f *[p]int16, g *[p]int8) {
	// |f_i g_j| <= q12, so a coefficient of the product is below p*q12 in
	// magnitude and at most three of them are summed by the reduction:
	// well inside int32.
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
		h[i] = freezeQ(prod[i])
	}
}

// mul3 sets h = f*g in R/3.
func mul3(h *[p]int8, f *[p]int8, g *[p]int8) {
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
		h[i] = freeze3(prod[i])
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

// The reciprocals below follow the constant-time polynomial GCD of the NTRU
// Prime specification (Bernstein and Yang's "divsteps"). Polynomials are
// held reversed, f starts as the reversed modulus x^p - x - 1 and g as the
// reversed input; each of the 2p-1 steps swaps f and g when delta > 0 and
// g(0) != 0, cancels g's constant term against f's, and divides g by x,
// while v and r track the Bezout coefficient. The input is invertible
// exactly when delta ends at 0, and then 1/input is v reversed, scaled by
// 1/f(0).

// recip3 sets out = 1/a in R/3 and returns 0 if a is invertible, -1 if not.
func recip3(out *[p]int8, a *[p]int8) int32 {
	var f, g, v, r [p + 1]int8
	f[0], f[p-1], f[p] = 1, -1, -1
	for i := range p {
		g[p-1-i] = a[i]
	}
	r[0] = 1
	delta := int32(1)
	for step := range 2*p - 1 {
		// v and r have no terms above degree step+1 in this step.
		n := min(step+2, p+1)
		copy(v[1:n], v[:n-1])
		v[0] = 0

		swap := negativeMask(-delta) & nonzeroMask(int32(g[0]))
		delta ^= swap & (delta ^ -delta)
		delta++
		condSwap8(f[:], g[:], int8(swap))
		condSwap8(v[:n], r[:n], int8(swap))

		// f(0) is ±1, its own inverse: g - (g0/f0) f = g - g0 f0 f.
		c := -int32(g[0]) * int32(f[0])
		for i := range g {
			g[i] = freeze3Small(int32(g[i]) + c*int32(f[i]))
		}
		for i := range n {
			r[i] = freeze3Small(int32(r[i]) + c*int32(v[i]))
		}
		copy(g[:p], g[1:])
		g[p] = 0
	}
	scale := f[0]
	for i := range p {
		out[i] = scale * v[p-1-i]
	}
	return nonzeroMask(delta)
}

// recipQ3 sets out = 1/(3a) in R/q and returns 0 if 3a is invertible (R/q
// is a field, so whenever a != 0), -1 if not.
func recipQ3(out *[p]int16, a *[p]int8) int32 {
	var f, g, v, r [p + 1]int16
	f[0], f[p-1], f[p] = 1, -1, -1
	for i := range p {
		g[p-1-i] = int16(a[i])
	}
	r[0] = recipQ(3)
	delta := int32(1)
	for step := range 2*p - 1 {
		n := min(step+2, p+1)
		copy(v[1:n], v[:n-1])
		v[0] = 0

		swap := negativeMask(-delta) & nonzeroMask(int32(g[0]))
		delta ^= swap & (delta ^ -delta)
		delta++
		condSwap16(f[:], g[:], int16(swap))
		condSwap16(v[:n], r[:n], int16(swap))

		// Cancel g's constant term without dividing: g = f0 g - g0 f.
		f0, g0 := int32(f[0]), int32(g[0])
		for i := range g {
			g[i] = freezeQ(f0*int32(g[i]) - g0*int32(f[i]))
		}
		for i := range n {
			r[i] = freezeQ(f0*int32(r[i]) - g0*int32(v[i]))
		}
		copy(g[:p], g[1:])
		g[p] = 0
	}
	scale := int32(recipQ(f[0]))
	for i := range p {
		out[i] = freezeQ(scale * int32(v[p-1-i]))
	}
	return nonzeroMask(delta)
}

// condSwap8 swaps a and b (equal lengths) when mask is -1 and leaves them
// when it is 0.
func condSwap8(a, b []int8, mask int8) {
	b = b[:len(a)]
	for i := range a {
		t := mask & (a[i] ^ b[i])
		a[i] ^= t
		b[i] ^= t
	}
}

// condSwap16 is condSwap8 for int16 coefficients.
func condSwap16(a, b []int16, mask int16) {
	b = b[:len(a)]
	for i := range a {
		t := mask & (a[i] ^ b[i])
		a[i] ^= t
		b[i] ^= t
	}
}
