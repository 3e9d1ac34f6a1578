package cipher

import (
	"bytes"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"hash"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLegacyNames: the legacy names are supported, never default, and
// IsLegacy knows exactly them.
func TestLegacyNames(t *testing.T) {
	for _, n := range []string{AES128CBC, AES192CBC, AES256CBC, TripleDESCBC} {
		if !IsLegacy(n) || !slices.Contains(SupportedCiphers, n) || slices.Contains(DefaultCiphers, n) {
			t.Errorf("%s: IsLegacy=%v supported=%v default=%v", n, IsLegacy(n),
				slices.Contains(SupportedCiphers, n), slices.Contains(DefaultCiphers, n))
		}
	}
	for _, n := range []string{HMACSHA196, HMACMD5} {
		if !IsLegacy(n) || !slices.Contains(SupportedMACs, n) || slices.Contains(DefaultMACs, n) {
			t.Errorf("%s: IsLegacy=%v supported=%v default=%v", n, IsLegacy(n),
				slices.Contains(SupportedMACs, n), slices.Contains(DefaultMACs, n))
		}
	}
	for _, n := range append(slices.Clone(DefaultCiphers), DefaultMACs...) {
		if IsLegacy(n) {
			t.Errorf("default %s reported legacy", n)
		}
	}
}

// TestCBCKAT runs the SP 800-38A CBC vectors through the Sealer and Opener
// as two 32-byte packets: the second packet's ciphertext matches the
// vector's blocks 3 and 4 only if its IV is the last ciphertext block of
// the first packet (RFC 4253 §6.3).
func TestCBCKAT(t *testing.T) {
	var f struct {
		Vectors []struct {
			Name                           string
			Key, IV, Plaintext, Ciphertext hexBytes
		}
	}
	loadJSON(t, "cbc-sp800-38a.json", &f)
	names := map[int]string{16: AES128CBC, 24: AES192CBC, 32: AES256CBC}
	macKey := bytes.Repeat([]byte{0x24}, 16)
	for _, v := range f.Vectors {
		name := names[len(v.Key)]
		s, err := NewSealer(name, HMACMD5, v.Key, v.IV, macKey)
		if err != nil {
			t.Fatal(err)
		}
		o, err := NewOpener(name, HMACMD5, v.Key, v.IV, macKey)
		if err != nil {
			t.Fatal(err)
		}
		for half := range 2 {
			seq := uint32(7 + half)
			pt := bytes.Clone(v.Plaintext[32*half : 32*half+32])
			ct := v.Ciphertext[32*half : 32*half+32]
			m := hmac.New(md5.New, macKey)
			binary.Write(m, binary.BigEndian, seq)
			m.Write(pt) // RFC 4253 §6.4: the MAC is over the plaintext
			want := m.Sum(bytes.Clone(ct))
			got := s.Seal(seq, bytes.Clone(pt))
			if !bytes.Equal(got, want) {
				t.Fatalf("%s half %d: Seal =\n%x\nwant\n%x", v.Name, half, got, want)
			}
			if l := o.DecryptLength(seq, got[:o.HeadSize()]); l != binary.BigEndian.Uint32(pt) {
				t.Fatalf("%s half %d: DecryptLength = %#x", v.Name, half, l)
			}
			if body, ok := o.Open(seq, nil, got); !ok || !bytes.Equal(body, pt[4:]) {
				t.Fatalf("%s half %d: Open = %x, %v", v.Name, half, body, ok)
			}
		}
	}
}

// cbcReference returns a crypto/cipher CBC encrypter for a CBC cipher name.
func cbcReference(t *testing.T, name string, key, iv []byte) stdcipher.BlockMode {
	t.Helper()
	var b stdcipher.Block
	var err error
	if name == TripleDESCBC {
		b, err = des.NewTripleDESCipher(key)
	} else {
		b, err = aes.NewCipher(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return stdcipher.NewCBCEncrypter(b, iv)
}

// TestCBCMatchesReference: a run of packets of assorted sizes sealed by
// every CBC cipher, in both MAC orders, equals crypto/cipher's CBC over the
// concatenated encrypted regions, one chain from the KDF's IV on (RFC 4253
// §6.3), with the MAC of RFC 4253 §6.4 (classic) or PROTOCOL §1.5 (etm).
func TestCBCMatchesReference(t *testing.T) {
	for _, c := range allCombos() {
		if !slices.Contains(legacyCiphers, c.cipher) {
			continue
		}
		t.Run(c.String(), func(t *testing.T) {
			key, iv, macKey := c.keys(t, 21)
			s, err := NewSealer(c.cipher, c.mac, key, iv, macKey)
			if err != nil {
				t.Fatal(err)
			}
			ref := cbcReference(t, c.cipher, key, iv)
			mi := macs[c.mac]
			r := rand.New(rand.NewPCG(3, 4))
			for i := range 12 {
				seq := uint32(1000 + i)
				pkt := buildPacket(r, randPayload(r, i), s.Mode(), s.BlockSize(), s.TagSize())
				want := bytes.Clone(pkt)
				from := 0
				if mi.etm {
					from = 4
				}
				ref.CryptBlocks(want[from:], want[from:])
				macInput := pkt
				if mi.etm {
					macInput = want
				}
				want = append(want, referenceTag(t, mi, macKey, seq, macInput)...)
				if got := s.Seal(seq, pkt); !bytes.Equal(got, want) {
					t.Fatalf("packet %d: Seal differs from the crypto/cipher reference", i)
				}
			}
		})
	}
}

// TestLegacyMACKAT runs the RFC 2202 HMAC-MD5 vectors and the truncated
// HMAC-SHA-1-96 vector through the per-packet MAC (the vector's first four
// data bytes as the sequence number, as TestHMACKAT does), and the ones
// with keys of the right length through a classic Sealer's tag.
func TestLegacyMACKAT(t *testing.T) {
	var f struct {
		Vectors []struct {
			RFC            string
			Key, Data, MD5 hexBytes
			SHA196         hexBytes `json:"sha1_96"`
		}
	}
	loadJSON(t, "hmac-rfc2202.json", &f)
	for _, v := range f.Vectors {
		seq := binary.BigEndian.Uint32(v.Data)
		name, want := HMACMD5, []byte(v.MD5)
		if len(v.SHA196) > 0 {
			name, want = HMACSHA196, v.SHA196
		}
		m, err := newPacketMAC(macs[name], v.Key)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // twice: Reset must restore the keyed state
			m.begin(seq)
			m.write(v.Data[4:])
			if got := m.appendSum(nil); !bytes.Equal(got, want) {
				t.Errorf("%s %s: %x, want %x", v.RFC, name, got, want)
			}
			m.begin(seq)
			m.write(v.Data[4:])
			if !m.verify(want) {
				t.Errorf("%s %s: verify rejected the vector", v.RFC, name)
			}
			m.begin(seq)
			m.write(v.Data[4:])
			bad := bytes.Clone(want)
			bad[len(bad)-1] ^= 1
			if m.verify(bad) {
				t.Errorf("%s %s: verify accepted a wrong tag", v.RFC, name)
			}
		}
		if len(v.Key) != macs[name].keyLen {
			continue
		}
		s, err := NewSealer(AES128CTR, name, make([]byte, 16), make([]byte, 16), v.Key)
		if err != nil {
			t.Fatal(err)
		}
		if s.TagSize() != len(want) {
			t.Fatalf("%s: TagSize %d, want %d", name, s.TagSize(), len(want))
		}
		pkt := make([]byte, len(v.Data)-4, len(v.Data)-4+s.TagSize())
		copy(pkt, v.Data[4:])
		wire := s.Seal(seq, pkt)
		if tag := wire[len(wire)-len(want):]; !bytes.Equal(tag, want) {
			t.Errorf("%s: classic %s Sealer tag %x, want %x", v.RFC, name, tag, want)
		}
		if &wire[0] != &pkt[0] {
			t.Errorf("%s: Seal did not reuse pkt's capacity", name)
		}
	}
}

// TestMACTruncation: hmac-sha1-96 is the first 12 bytes of hmac-sha1
// (RFC 4253 §6.4) for any input.
func TestMACTruncation(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 20)
	full, err1 := newPacketMAC(macs[HMACSHA1], key)
	short, err2 := newPacketMAC(macs[HMACSHA196], key)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	var h hash.Hash = hmac.New(sha1.New, key)
	for n := range 40 {
		data := bytes.Repeat([]byte{byte(n)}, n*7)
		full.begin(uint32(n))
		full.write(data)
		short.begin(uint32(n))
		short.write(data)
		f, s := full.appendSum(nil), short.appendSum(nil)
		h.Reset()
		binary.Write(h, binary.BigEndian, uint32(n))
		h.Write(data)
		if !bytes.Equal(f, h.Sum(nil)) || !bytes.Equal(s, f[:12]) {
			t.Fatalf("n=%d: hmac-sha1 %x, hmac-sha1-96 %x", n, f, s)
		}
	}
}

// TestCBCMisalignedOpen: a body that is not whole blocks, which the packet
// layer refuses first, neither panics nor opens.
func TestCBCMisalignedOpen(t *testing.T) {
	for _, c := range []combo{{AES128CBC, HMACSHA1}, {AES128CBC, HMACSHA1ETM}, {TripleDESCBC, HMACMD5}} {
		s, o := c.pair(t, 5)
		r := rand.New(rand.NewPCG(1, 2))
		w := s.Seal(0, buildPacket(r, []byte("hello"), s.Mode(), s.BlockSize(), s.TagSize()))
		bad := slices.Insert(slices.Clone(w), o.HeadSize()+1, 0xAA)
		o.DecryptLength(0, bad[:o.HeadSize()])
		body, ok := o.Open(0, nil, bad)
		if ok || len(body) != len(bad)-4-o.TagSize() {
			t.Errorf("%v: misaligned packet: ok=%v, body %d bytes", c, ok, len(body))
		}
	}
}

// cbcReferenceOpen decrypts the packet w that follows prev (both sealed
// with c's keys of seed 6, as TestTamper makes them) with crypto/cipher's
// CBC decrypter: its IV is prev's last ciphertext block. It returns
// padding_length || payload || padding.
func cbcReferenceOpen(t *testing.T, c combo, prev, w []byte, mode Mode) []byte {
	t.Helper()
	key, _, _ := c.keys(t, 6)
	tag := macs[c.mac].size
	var b stdcipher.Block
	var err error
	if c.cipher == TripleDESCBC {
		b, err = des.NewTripleDESCipher(key)
	} else {
		b, err = aes.NewCipher(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	bs := b.BlockSize()
	pe := len(prev) - tag
	dec := stdcipher.NewCBCDecrypter(b, prev[pe-bs:pe])
	ct := w[:len(w)-tag]
	if mode == ModeETM {
		out := make([]byte, len(ct)-4)
		dec.CryptBlocks(out, ct[4:])
		return out
	}
	out := make([]byte, len(ct))
	dec.CryptBlocks(out, ct)
	return out[4:]
}

// referenceTag is the MAC of one packet computed without package cipher's
// MAC state: HMAC over "sequence_number || data" (RFC 4253 §6.4), or UMAC
// over data with the sequence number as its 8-byte nonce (OpenSSH
// PROTOCOL).
func referenceTag(t *testing.T, mi macInfo, key []byte, seq uint32, data []byte) []byte {
	if mi.umac {
		return umacTag(t, key, binary.BigEndian.AppendUint64(nil, uint64(seq)), data, mi.size)
	}
	m := hmac.New(mi.newH, key)
	binary.Write(m, binary.BigEndian, seq)
	m.Write(data)
	return m.Sum(nil)[:mi.size]
}
