package sntrup761

// sortUint32 sorts x in place in constant time: the comparisons form a fixed
// network (Batcher's merge exchange, Knuth TAOCP vol. 3, 5.2.2 Algorithm M)
// that depends on len(x) only, and each compare-exchange is branch-free.
func sortUint32(x []uint32) {
	n := len(x)
	if n < 2 {
		return
	}
	t := 0
	for 1<<t < n {
		t++
	}
	// Knuth's p, q, r and d are stride, top, phase and dist.
	for stride := 1 << (t - 1); stride > 0; stride >>= 1 {
		top, phase, dist := 1<<(t-1), 0, stride
		for {
			for i := 0; i+dist < n; i++ {
				if i&stride == phase {
					minmax(&x[i], &x[i+dist])
				}
			}
			if top == stride {
				break
			}
			dist, top, phase = top-stride, top>>1, stride
		}
	}
}

// minmax orders *a <= *b without branching on their values.
func minmax(a, b *uint32) {
	x, y := *a, *b
	// The borrow of y-x, computed in 64 bits, is set exactly when y < x.
	mask := uint32(0 - ((uint64(y) - uint64(x)) >> 63))
	t := mask & (x ^ y)
	*a, *b = x^t, y^t
}
