package kex

import (
	"crypto"
	"testing"
)

// benchExchange runs full client+server exchanges in-process.
func benchExchange(b *testing.B, method string, hk hostKey) {
	cp, sp := testParams(b, method, hk)
	b.ReportAllocs()
	for b.Loop() {
		c, s := newPair(b, cp, sp)
		if _, _, cerr, serr := pump(c, s, hooks{}); cerr != nil || serr != nil {
			b.Fatal(cerr, serr)
		}
	}
}

// BenchmarkExchange: one full exchange per op, ed25519 host key. The
// 8192-bit groups are slow; use -benchtime=5x for them.
func BenchmarkExchange(b *testing.B) {
	hk := fixture(b, "ed25519")
	for _, m := range SupportedKexAlgos {
		b.Run(m, func(b *testing.B) { benchExchange(b, m, hk) })
	}
}

// BenchmarkExchangeGexSizes: group exchange by requested size.
func BenchmarkExchangeGexSizes(b *testing.B) {
	hk := fixture(b, "ed25519")
	for _, n := range []uint32{2048, 4096, 8192} {
		b.Run(string(rune('0'+n/1024))+"k", func(b *testing.B) {
			cp, sp := testParams(b, DHGexSHA256, hk)
			cp.GexN = n
			b.ReportAllocs()
			for b.Loop() {
				c, s := newPair(b, cp, sp)
				if _, _, cerr, serr := pump(c, s, hooks{}); cerr != nil || serr != nil {
					b.Fatal(cerr, serr)
				}
			}
		})
	}
}

// BenchmarkHostKey: curve25519-sha256 with each host key type.
func BenchmarkHostKey(b *testing.B) {
	for _, hk := range fixtures() {
		b.Run(hk.name, func(b *testing.B) { benchExchange(b, Curve25519SHA256, hk) })
	}
}

func BenchmarkDeriveKey(b *testing.B) {
	k := make([]byte, 36)
	h := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		DeriveKey(crypto.SHA256, k, h, h, 'C', 64)
	}
}
