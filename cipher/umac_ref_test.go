package cipher

import (
	"crypto/aes"
	"encoding/binary"
	"math/big"
)

// refUMAC is a slow, direct transcription of RFC 4418's pseudocode, for
// differential tests against umac: whole-message (not incremental), one
// function per layer as the RFC names them, math/big for POLY and L3-HASH,
// and no state carried between calls.
func refUMAC(key, nonce, msg []byte, taglen int) []byte {
	y := refUHASH(key, msg, taglen)
	pad := refPDF(key, nonce, taglen)
	for i := range y {
		y[i] ^= pad[i]
	}
	return y
}

// refKDF is RFC 4418 §3.2 KDF(K, index, numbytes).
func refKDF(key []byte, index uint64, numbytes int) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	var y []byte
	for i := uint64(1); len(y) < numbytes; i++ {
		t := make([]byte, 16)
		binary.BigEndian.PutUint64(t[0:8], index)
		binary.BigEndian.PutUint64(t[8:16], i)
		b.Encrypt(t, t)
		y = append(y, t...)
	}
	return y[:numbytes]
}

// refPDF is RFC 4418 §3.3 PDF(K, Nonce, taglen).
func refPDF(key, nonce []byte, taglen int) []byte {
	n := new(big.Int).SetBytes(nonce)
	index := 0
	if taglen == 4 || taglen == 8 {
		index = int(new(big.Int).Mod(n, big.NewInt(int64(16/taglen))).Int64())
		n.Xor(n, big.NewInt(int64(index)))
	}
	nb := make([]byte, 16)
	n.FillBytes(nb[:len(nonce)])
	kp := refKDF(key, 0, 16)
	b, _ := aes.NewCipher(kp)
	t := make([]byte, 16)
	b.Encrypt(t, nb)
	if taglen == 4 || taglen == 8 {
		return t[index*taglen : (index+1)*taglen]
	}
	return t[:taglen]
}

// refUHASH is RFC 4418 §5.1 UHASH(K, M, taglen).
func refUHASH(key, msg []byte, taglen int) []byte {
	iters := taglen / 4
	l1Key := refKDF(key, 1, 1024+(iters-1)*16)
	l2Key := refKDF(key, 2, iters*24)
	l3Key1 := refKDF(key, 3, iters*64)
	l3Key2 := refKDF(key, 4, iters*4)
	var y []byte
	for i := range iters {
		a := refL1(l1Key[i*16:i*16+1024], msg)
		var b []byte
		if len(msg) <= 1024 {
			b = append(make([]byte, 8), a...)
		} else {
			b = refL2(l2Key[i*24:(i+1)*24], a)
		}
		y = append(y, refL3(l3Key1[i*64:(i+1)*64], l3Key2[i*4:(i+1)*4], b)...)
	}
	return y
}

// refL1 is RFC 4418 §5.2 L1-HASH(K, M).
func refL1(k, m []byte) []byte {
	t := max((len(m)+1023)/1024, 1)
	var y []byte
	for i := range t {
		chunk := m[min(i*1024, len(m)):min((i+1)*1024, len(m))]
		length := uint64(len(chunk)) * 8
		padded := append([]byte(nil), chunk...)
		// zeropad(S, 32) of the empty string is 32 zero bytes, not
		// nothing.
		for len(padded) == 0 || len(padded)%32 != 0 {
			padded = append(padded, 0)
		}
		y = binary.BigEndian.AppendUint64(y, refNH(k, padded)+length)
	}
	return y
}

// refNH is RFC 4418 §5.2.1 NH(K, M) with ENDIAN-SWAP applied to M.
func refNH(k, m []byte) uint64 {
	word := func(b []byte, i int, little bool) uint32 {
		if little {
			return binary.LittleEndian.Uint32(b[4*i:])
		}
		return binary.BigEndian.Uint32(b[4*i:])
	}
	var y uint64
	for i := 0; i < len(m)/4; i += 8 {
		for j := range 4 {
			a := word(m, i+j, true) + word(k, i+j, false)
			b := word(m, i+j+4, true) + word(k, i+j+4, false)
			y += uint64(a) * uint64(b)
		}
	}
	return y
}

// refL2 is RFC 4418 §5.3 L2-HASH(K, M).
func refL2(k, m []byte) []byte {
	mask64 := new(big.Int).SetUint64(0x01FFFFFF01FFFFFF)
	mask128 := new(big.Int).Lsh(mask64, 64)
	mask128.Or(mask128, mask64)
	k64 := new(big.Int).And(new(big.Int).SetBytes(k[:8]), mask64)
	k128 := new(big.Int).And(new(big.Int).SetBytes(k[8:24]), mask128)
	var y *big.Int
	if len(m) <= 1<<17 {
		y = refPOLY(64, refPow2Diff(64, 32), k64, m)
	} else {
		m1, m2 := m[:1<<17], append([]byte(nil), m[1<<17:]...)
		m2 = append(m2, 0x80)
		for len(m2)%16 != 0 {
			m2 = append(m2, 0)
		}
		y = refPOLY(64, refPow2Diff(64, 32), k64, m1)
		y = refPOLY(128, refPow2Diff(128, 96), k128, append(y.FillBytes(make([]byte, 16)), m2...))
	}
	return y.FillBytes(make([]byte, 16))
}

// refPow2Diff returns 2^a - 2^b.
func refPow2Diff(a, b uint) *big.Int {
	x := new(big.Int).Lsh(big.NewInt(1), a)
	return x.Sub(x, new(big.Int).Lsh(big.NewInt(1), b))
}

// refPow2Minus returns 2^n - d.
func refPow2Minus(n uint, d uint64) *big.Int {
	x := new(big.Int).Lsh(big.NewInt(1), n)
	return x.Sub(x, new(big.Int).SetUint64(d))
}

// refPrime is RFC 4418 §2.2 prime(n): 2^36-5, 2^64-59, 2^128-159.
func refPrime(n uint) *big.Int {
	return refPow2Minus(n, map[uint]uint64{36: 5, 64: 59, 128: 159}[n])
}

// refPOLY is RFC 4418 §5.3.1 POLY(wordbits, maxwordrange, k, M).
func refPOLY(wordbits uint, maxwordrange, k *big.Int, m []byte) *big.Int {
	wordbytes := int(wordbits / 8)
	p := refPrime(wordbits)
	offset := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), wordbits), p)
	marker := new(big.Int).Sub(p, big.NewInt(1))
	y := big.NewInt(1)
	for i := 0; i < len(m)/wordbytes; i++ {
		w := new(big.Int).SetBytes(m[i*wordbytes : (i+1)*wordbytes])
		if w.Cmp(maxwordrange) >= 0 {
			y.Mul(y, k).Add(y, marker).Mod(y, p)
			y.Mul(y, k).Add(y, new(big.Int).Sub(w, offset)).Mod(y, p)
		} else {
			y.Mul(y, k).Add(y, w).Mod(y, p)
		}
	}
	return y
}

// refL3 is RFC 4418 §5.4 L3-HASH(K1, K2, M).
func refL3(k1, k2, m []byte) []byte {
	p := refPrime(36)
	y := new(big.Int)
	for i := range 8 {
		w := new(big.Int).SetBytes(m[2*i : 2*i+2])
		k := new(big.Int).SetBytes(k1[8*i : 8*i+8])
		k.Mod(k, p)
		y.Add(y, w.Mul(w, k))
	}
	y.Mod(y, p)
	out := y.FillBytes(make([]byte, 8))[4:8]
	for i := range out {
		out[i] ^= k2[i]
	}
	return out
}
