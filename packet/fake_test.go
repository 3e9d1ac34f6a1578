package packet

import (
	"encoding/binary"

	"sshtap/cipher"
)

// fakeCipher is a toy Sealer/Opener that behaves like the real ones where
// framing is concerned: a keystream that continues across packets (like
// AES-CTR), the length encrypted in classic mode, in clear in ETM mode and
// under a per-sequence-number mask in AEAD mode (like chacha20-poly1305),
// and an 8-byte tag over the sequence number and the packet. It has no
// security whatsoever.
type fakeCipher struct {
	mode  cipher.Mode
	bs    int
	key   uint64
	pos   uint64 // keystream position
	first []byte // classic: decrypted first block
}

func newFakePair(mode cipher.Mode, bs int) (cipher.Sealer, cipher.Opener) {
	return &fakeCipher{mode: mode, bs: bs, key: 42}, &fakeCipher{mode: mode, bs: bs, key: 42}
}

const fakeTag = 8

func (f *fakeCipher) Mode() cipher.Mode { return f.mode }
func (f *fakeCipher) BlockSize() int    { return f.bs }
func (f *fakeCipher) TagSize() int      { return fakeTag }
func (f *fakeCipher) HeadSize() int {
	if f.mode == cipher.ModeClassic {
		return f.bs
	}
	return 4
}

// xor applies the continuing keystream to dst = src ^ ks.
func (f *fakeCipher) xor(dst, src []byte) {
	for i := range src {
		x := (f.pos + f.key) * 0x9E3779B97F4A7C15
		dst[i] = src[i] ^ byte(x>>56)
		f.pos++
	}
}

func (f *fakeCipher) lenMask(seq uint32) uint32 { return uint32(f.key) * (seq*2 + 1) * 0x01000193 }

// mac is FNV-1a over key, seq and the parts; it does not allocate.
func (f *fakeCipher) mac(seq uint32, parts ...[]byte) [fakeTag]byte {
	h := uint64(14695981039346656037)
	add := func(p []byte) {
		for _, c := range p {
			h ^= uint64(c)
			h *= 1099511628211
		}
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:], f.key)
	binary.BigEndian.PutUint32(b[8:], seq)
	add(b[:])
	for _, p := range parts {
		add(p)
	}
	var sum [fakeTag]byte
	binary.BigEndian.PutUint64(sum[:], h)
	return sum
}

func (f *fakeCipher) Seal(seq uint32, pkt []byte) []byte {
	var tag [fakeTag]byte
	switch f.mode {
	case cipher.ModeClassic:
		tag = f.mac(seq, pkt)
		f.xor(pkt, pkt)
	case cipher.ModeETM:
		f.xor(pkt[4:], pkt[4:])
		tag = f.mac(seq, pkt)
	case cipher.ModeAEAD:
		binary.BigEndian.PutUint32(pkt, binary.BigEndian.Uint32(pkt)^f.lenMask(seq))
		f.xor(pkt[4:], pkt[4:])
		tag = f.mac(seq, pkt)
	}
	return append(pkt, tag[:]...)
}

func (f *fakeCipher) DecryptLength(seq uint32, head []byte) uint32 {
	switch f.mode {
	case cipher.ModeClassic:
		f.first = append(f.first[:0], head[:f.bs]...)
		f.xor(f.first, f.first)
		return binary.BigEndian.Uint32(f.first)
	case cipher.ModeAEAD:
		return binary.BigEndian.Uint32(head) ^ f.lenMask(seq)
	default:
		return binary.BigEndian.Uint32(head)
	}
}

func (f *fakeCipher) Open(seq uint32, dst, pkt []byte) ([]byte, bool) {
	data, tag := pkt[:len(pkt)-fakeTag], pkt[len(pkt)-fakeTag:]
	var want [fakeTag]byte
	switch f.mode {
	case cipher.ModeClassic:
		dst = append(dst[:0], f.first[4:]...)
		rest := data[f.bs:]
		n := len(dst)
		dst = append(dst, rest...)
		f.xor(dst[n:], rest)
		want = f.mac(seq, f.first[:4], dst)
	default:
		want = f.mac(seq, data)
		dst = append(dst[:0], data[4:]...)
		f.xor(dst, dst)
	}
	return dst, string(want[:]) == string(tag)
}
