package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
	//lint:ignore SA1019 benchmarks the raw one-time Poly1305 that chacha20-poly1305@openssh.com uses
	"golang.org/x/crypto/poly1305"
)

// Every packet benchmark moves 32 KiB packets (payload 32768 bytes, as
// x/crypto/ssh and OpenSSH channel data) and reports MB/s of packet bytes
// with b.SetBytes; allocations must be 0/op. The Raw benchmarks measure the
// underlying primitives over the same 32 KiB on the same run so ratios can be
// read off directly.

const benchPayload = 32 << 10

func benchPacket(b *testing.B, s Sealer) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	return buildPacket(r, make([]byte, benchPayload), s.Mode(), s.BlockSize(), s.TagSize())
}

// BenchmarkSeal seals one 32 KiB packet per op.
func BenchmarkSeal(b *testing.B) {
	for _, c := range allCombos() {
		b.Run(c.String(), func(b *testing.B) {
			s, _ := c.pair(b, 1)
			pkt := benchPacket(b, s)
			n := len(pkt)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			seq := uint32(0)
			for b.Loop() {
				// Sealing the previous ciphertext costs the same as sealing
				// plaintext and avoids a copy per op.
				s.Seal(seq, pkt[:n])
				seq++
			}
		})
	}
}

// BenchmarkOpen opens one 32 KiB packet per op (DecryptLength + Open).
// Packets are sealed in batches with the timer stopped.
func BenchmarkOpen(b *testing.B) {
	for _, c := range allCombos() {
		b.Run(c.String(), func(b *testing.B) {
			s, o := c.pair(b, 1)
			pkt := benchPacket(b, s)
			n := len(pkt)
			const batch = 16
			wires := make([][]byte, batch)
			for i := range wires {
				wires[i] = make([]byte, n, n+s.TagSize())
			}
			dst := make([]byte, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			sseq, oseq := uint32(0), uint32(0)
			i := batch
			for b.Loop() {
				if i == batch {
					b.StopTimer()
					for j := range wires {
						copy(wires[j], pkt)
						wires[j] = s.Seal(sseq, wires[j][:n])
						sseq++
					}
					i = 0
					b.StartTimer()
				}
				w := wires[i]
				o.DecryptLength(oseq, w[:o.HeadSize()])
				if _, ok := o.Open(oseq, dst, w); !ok {
					b.Fatal("tag mismatch")
				}
				oseq++
				i++
			}
		})
	}
}

// BenchmarkSealOpen seals and then opens one 32 KiB packet per op; MB/s
// counts the packet once.
func BenchmarkSealOpen(b *testing.B) {
	for _, c := range allCombos() {
		b.Run(c.String(), func(b *testing.B) {
			s, o := c.pair(b, 1)
			pkt := benchPacket(b, s)
			n := len(pkt)
			dst := make([]byte, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			seq := uint32(0)
			for b.Loop() {
				w := s.Seal(seq, pkt[:n])
				o.DecryptLength(seq, w[:o.HeadSize()])
				if _, ok := o.Open(seq, dst, w); !ok {
					b.Fatal("tag mismatch")
				}
				seq++
			}
		})
	}
}

// BenchmarkChachaConstruction compares the two ways of building
// chacha20-poly1305@openssh.com: the package's (payload keystream from the
// AVX2 IETF AEAD, OpenSSH tag from x/crypto/poly1305) and the straightforward
// one on x/crypto/chacha20 (refChacha in ref_test.go).
func BenchmarkChachaConstruction(b *testing.B) {
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i * 7)
	}
	const n = 4 + 1 + benchPayload + 11 // aligned as in benchPacket
	b.Run("aead-keystream/seal", func(b *testing.B) {
		s := newChachaSealer(key)
		pkt := make([]byte, n, n+16)
		b.SetBytes(n)
		b.ReportAllocs()
		seq := uint32(0)
		for b.Loop() {
			s.Seal(seq, pkt[:n])
			seq++
		}
	})
	b.Run("x-chacha20/seal", func(b *testing.B) {
		r := newRefChacha(key)
		pkt := make([]byte, n, n+16)
		b.SetBytes(n)
		b.ReportAllocs()
		seq := uint32(0)
		for b.Loop() {
			r.seal(seq, pkt[:n])
			seq++
		}
	})
	b.Run("aead-keystream/open", func(b *testing.B) {
		s, o := newChachaSealer(key), newChachaOpener(key)
		w := s.Seal(3, make([]byte, n, n+16))
		dst := make([]byte, n)
		b.SetBytes(n)
		b.ReportAllocs()
		for b.Loop() {
			o.DecryptLength(3, w)
			if _, ok := o.Open(3, dst, w); !ok {
				b.Fatal("tag mismatch")
			}
		}
	})
	b.Run("aead-keystream/open-tight-dst", func(b *testing.B) {
		s, o := newChachaSealer(key), newChachaOpener(key)
		w := s.Seal(3, make([]byte, n, n+16))
		dst := make([]byte, n-4)
		b.SetBytes(n)
		b.ReportAllocs()
		for b.Loop() {
			o.DecryptLength(3, w)
			if _, ok := o.Open(3, dst, w); !ok {
				b.Fatal("tag mismatch")
			}
		}
	})
	b.Run("x-chacha20/open", func(b *testing.B) {
		r := newRefChacha(key)
		w := r.seal(3, make([]byte, n, n+16))
		dst := make([]byte, n)
		b.SetBytes(n)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := r.open(3, dst, w); !ok {
				b.Fatal("tag mismatch")
			}
		}
	})
}

// BenchmarkRaw measures the primitives alone over 32 KiB.
func BenchmarkRaw(b *testing.B) {
	buf := make([]byte, benchPayload, benchPayload+64)
	gcmSeal := func(keyLen int) func(b *testing.B) {
		return func(b *testing.B) {
			blk, _ := aes.NewCipher(make([]byte, keyLen))
			g, _ := stdcipher.NewGCM(blk)
			nonce := make([]byte, 12)
			aad := make([]byte, 4)
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			for b.Loop() {
				g.Seal(buf[:0], nonce, buf[:benchPayload], aad)
			}
		}
	}
	b.Run("aes128-gcm-seal", gcmSeal(16))
	b.Run("aes256-gcm-seal", gcmSeal(32))
	ctr := func(keyLen int) func(b *testing.B) {
		return func(b *testing.B) {
			blk, _ := aes.NewCipher(make([]byte, keyLen))
			st := stdcipher.NewCTR(blk, make([]byte, 16))
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			for b.Loop() {
				st.XORKeyStream(buf[:benchPayload], buf[:benchPayload])
			}
		}
	}
	b.Run("aes128-ctr-xor", ctr(16))
	b.Run("aes256-ctr-xor", ctr(32))
	b.Run("x-chacha20-xor", func(b *testing.B) {
		key, nonce := make([]byte, 32), make([]byte, 12)
		b.SetBytes(benchPayload)
		b.ReportAllocs()
		for b.Loop() {
			c, _ := chacha20.NewUnauthenticatedCipher(key, nonce)
			c.XORKeyStream(buf[:benchPayload], buf[:benchPayload])
		}
	})
	b.Run("x-chacha20poly1305-seal", func(b *testing.B) {
		a, _ := chacha20poly1305.New(make([]byte, 32))
		nonce := make([]byte, 12)
		b.SetBytes(benchPayload)
		b.ReportAllocs()
		for b.Loop() {
			a.Seal(buf[:0], nonce, buf[:benchPayload], nil)
		}
	})
	b.Run("x-poly1305", func(b *testing.B) {
		var key [32]byte
		var tag [16]byte
		b.SetBytes(benchPayload)
		b.ReportAllocs()
		for b.Loop() {
			poly1305.Sum(&tag, buf[:benchPayload], &key)
		}
	})
	hm := func(newH func() hash.Hash, keyLen int) func(b *testing.B) {
		return func(b *testing.B) {
			h := hmac.New(newH, make([]byte, keyLen))
			sum := make([]byte, 0, 64)
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			for b.Loop() {
				h.Reset()
				h.Write(buf[:benchPayload])
				sum = h.Sum(sum[:0])
			}
		}
	}
	um := func(size int) func(b *testing.B) {
		return func(b *testing.B) {
			m, err := newUMACMAC(make([]byte, umacKeyLen), size)
			if err != nil {
				b.Fatal(err)
			}
			sum := make([]byte, 0, size)
			b.SetBytes(benchPayload)
			b.ReportAllocs()
			seq := uint32(0)
			for b.Loop() {
				m.begin(seq)
				m.write(buf[:benchPayload])
				sum = m.appendSum(sum[:0])
				seq++
			}
		}
	}
	b.Run("umac-64", um(8))
	b.Run("umac-128", um(16))
	b.Run("hmac-sha256", hm(sha256.New, 32))
	b.Run("hmac-sha512", hm(sha512.New, 64))
	b.Run("hmac-sha1", hm(sha1.New, 20))
}
