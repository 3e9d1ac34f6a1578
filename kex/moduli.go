package kex

import (
	"bufio"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// moduli(5) field values (OpenSSH dh.h).
const (
	moduliTypeSafe       = 2    // MODULI_TYPE_SAFE: p = 2q + 1 with q prime
	moduliTestsComposite = 0x01 // MODULI_TESTS_COMPOSITE
)

// ParseModuli reads groups in the /etc/ssh/moduli format (moduli(5)): one
// group per line with the fields
//
//	timestamp type tests tries size generator modulus
//
// where size is the modulus bit length minus one and generator and modulus
// are hexadecimal. '#' starts a comment line; blank lines are skipped.
//
// Entries OpenSSH (dh.c parse_prime) would not use for policy reasons are
// skipped silently: a type other than 2 (safe prime), a tests field marking
// the number composite or untested, or zero tries. A line that is not well
// formed (field count, numbers, hex, a size that disagrees with the modulus,
// an even modulus, a generator outside 1 < g < p-1) is a *ModuliError.
// Primality is not re-checked.
func ParseModuli(r io.Reader) ([]GexGroup, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var groups []GexGroup
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 7 {
			return nil, &ModuliError{Line: line, Reason: "want 7 fields, have " + strconv.Itoa(len(f))}
		}
		var nums [4]uint64 // type, tests, tries, size
		for i := range nums {
			v, err := strconv.ParseUint(f[1+i], 10, 32)
			if err != nil {
				return nil, &ModuliError{Line: line, Reason: "bad number " + strconv.Quote(f[1+i])}
			}
			nums[i] = v
		}
		typ, tests, tries, size := nums[0], nums[1], nums[2], nums[3]
		g, ok1 := new(big.Int).SetString(f[5], 16)
		p, ok2 := new(big.Int).SetString(f[6], 16)
		if !ok1 || !ok2 || g.Sign() < 0 || p.Sign() < 0 {
			return nil, &ModuliError{Line: line, Reason: "bad hexadecimal generator or modulus"}
		}
		if typ != moduliTypeSafe || tests&moduliTestsComposite != 0 ||
			tests&^moduliTestsComposite == 0 || tries == 0 {
			continue
		}
		// moduli(5): "Size: the size of the prime in bits" counted as
		// OpenSSH writes it, one less than the bit length of the modulus.
		if uint64(p.BitLen()) != size+1 {
			return nil, &ModuliError{Line: line, Reason: "modulus has " + strconv.Itoa(p.BitLen()) +
				" bits, size field says " + strconv.FormatUint(size+1, 10)}
		}
		if p.Bit(0) == 0 {
			return nil, &ModuliError{Line: line, Reason: "even modulus"}
		}
		if g.Cmp(bigOne) <= 0 || g.Cmp(new(big.Int).Sub(p, bigOne)) >= 0 {
			return nil, &ModuliError{Line: line, Reason: "generator out of range"}
		}
		groups = append(groups, GexGroup{P: p, G: g})
	}
	if err := sc.Err(); err != nil {
		return nil, &ModuliError{Line: line + 1, Reason: err.Error()}
	}
	return groups, nil
}
