package cipher

import (
	"bytes"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// hexBytes is a hex string in the testdata JSON files.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestChachaKAT: the worked packet of draft-ietf-sshm-chacha20-poly1305
// Appendix A through the public Sealer and Opener.
func TestChachaKAT(t *testing.T) {
	var f struct {
		Vectors []struct {
			Name                            string
			Key, Plaintext, Ciphertext, Tag hexBytes
			Seq                             uint32
		}
	}
	loadJSON(t, "chacha20poly1305-openssh.json", &f)
	for _, v := range f.Vectors {
		s, err := NewSealer(Chacha20Poly1305, "", v.Key, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := append(bytes.Clone(v.Ciphertext), v.Tag...)
		for _, capExtra := range []int{16, 0} {
			pkt := make([]byte, len(v.Plaintext), len(v.Plaintext)+capExtra)
			copy(pkt, v.Plaintext)
			if got := s.Seal(v.Seq, pkt); !bytes.Equal(got, want) {
				t.Errorf("%s: Seal =\n%x\nwant\n%x", v.Name, got, want)
			}
		}
		o, _ := NewOpener(Chacha20Poly1305, "", v.Key, nil, nil)
		if l := o.DecryptLength(v.Seq, want[:4]); l != binary.BigEndian.Uint32(v.Plaintext) {
			t.Errorf("%s: DecryptLength = %d", v.Name, l)
		}
		body, ok := o.Open(v.Seq, nil, want)
		if !ok || !bytes.Equal(body, v.Plaintext[4:]) {
			t.Errorf("%s: Open = %x, %v", v.Name, body, ok)
		}
		// A wrong sequence number is a different nonce: the tag fails.
		if _, ok := o.Open(v.Seq+1, nil, want); ok {
			t.Errorf("%s: opened with the wrong sequence number", v.Name)
		}
	}
}

// TestCTRKAT: NIST SP 800-38A F.5 CTR vectors through the public Sealer and
// Opener, in classic and ETM mode, split over two packets so the counter
// must carry across packets (RFC 4344 §4). The HMAC tag expected here is
// computed independently in the test with crypto/hmac (the public vector has
// no MAC).
func TestCTRKAT(t *testing.T) {
	var f struct {
		Vectors []struct {
			Name                                string
			Key, Counter, Plaintext, Ciphertext hexBytes
		}
	}
	loadJSON(t, "ctr-sp800-38a.json", &f)
	names := map[int]string{16: AES128CTR, 24: AES192CTR, 32: AES256CTR}
	macKey := bytes.Repeat([]byte{0x42}, 32)
	for _, v := range f.Vectors {
		name := names[len(v.Key)]
		for _, macName := range []string{HMACSHA256, HMACSHA256ETM} {
			s, err := NewSealer(name, macName, v.Key, v.Counter, macKey)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := NewOpener(name, macName, v.Key, v.Counter, macKey)
			etm := macName == HMACSHA256ETM
			for half := range 2 {
				seq := uint32(3 + half)
				pt := v.Plaintext[32*half : 32*half+32]
				ct := v.Ciphertext[32*half : 32*half+32]
				// Classic: the packet is the 32 plaintext bytes. ETM: a
				// clear 4-byte length field followed by them.
				var pkt, wantWire []byte
				if etm {
					pkt = append([]byte{0, 0, 0, 32}, pt...)
					wantWire = append([]byte{0, 0, 0, 32}, ct...)
				} else {
					pkt = bytes.Clone(pt)
					wantWire = bytes.Clone(ct)
				}
				m := hmac.New(sha256.New, macKey)
				binary.Write(m, binary.BigEndian, seq)
				if etm {
					m.Write(wantWire) // RFC: MAC over length || ciphertext
				} else {
					m.Write(pkt) // RFC 4253 §6.4: MAC over the plaintext
				}
				wantWire = m.Sum(wantWire)
				plainCopy := bytes.Clone(pkt)
				if got := s.Seal(seq, pkt); !bytes.Equal(got, wantWire) {
					t.Fatalf("%s %s half %d: Seal =\n%x\nwant\n%x", v.Name, macName, half, got, wantWire)
				}
				l := o.DecryptLength(seq, wantWire[:o.HeadSize()])
				if l != binary.BigEndian.Uint32(plainCopy) {
					t.Fatalf("%s %s: DecryptLength = %#x", v.Name, macName, l)
				}
				body, ok := o.Open(seq, nil, wantWire)
				if !ok || !bytes.Equal(body, plainCopy[4:]) {
					t.Fatalf("%s %s half %d: Open = %x, %v", v.Name, macName, half, body, ok)
				}
			}
		}
	}
}

type gcmVector struct {
	File                      string
	Key, IV, PT, AAD, CT, Tag hexBytes
}

func gcmName(t *testing.T, key []byte) string {
	switch len(key) {
	case 16:
		return AES128GCM
	case 32:
		return AES256GCM
	}
	t.Fatalf("no GCM cipher for a %d-byte key", len(key))
	return ""
}

// refGCMSeal is an independent composition of stdlib AES-GCM as RFC 5647 /
// PROTOCOL §1.6 describe it (nonce = IV, AAD = the 4-byte length field),
// used to derive expected tags for 4-byte AADs, which the NIST files do not
// contain.
func refGCMSeal(t *testing.T, key, nonce, aad, pt []byte) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stdcipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, nonce, pt, aad)
}

// TestGCMKAT runs NIST CAVP GCM vectors (96-bit IV, 128-bit tag) against the
// package:
//   - the AEAD the package builds reproduces CT || Tag with the vector's AAD
//     (it is standard GCM with a 16-byte tag);
//   - the public Sealer with the vector's IV produces the vector's CT (the
//     ciphertext does not depend on the AAD, which for SSH is the length
//     field), and a tag matching an independent stdlib composition;
//   - the public Opener given the vector's CT under a different AAD reports
//     a mismatch yet returns the vector's PT: the failure-path CTR
//     decryption starts from the right counter block.
func TestGCMKAT(t *testing.T) {
	var f struct{ Vectors []gcmVector }
	loadJSON(t, "gcm-nist.json", &f)
	for i, v := range f.Vectors {
		name := gcmName(t, v.Key)
		g, err := newGCM(v.Key, v.IV)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.aead.Seal(nil, v.IV, v.PT, v.AAD); !bytes.Equal(got, append(bytes.Clone(v.CT), v.Tag...)) {
			t.Errorf("vector %d (%s): AEAD Seal = %x", i, v.File, got)
		}

		aad := []byte{0, 0, 0, byte(len(v.PT))}
		s, _ := NewSealer(name, "", v.Key, v.IV, nil)
		wire := s.Seal(0, append(bytes.Clone(aad), v.PT...))
		if !bytes.Equal(wire[4:4+len(v.CT)], v.CT) {
			t.Errorf("vector %d (%s): Sealer ciphertext = %x, want %x", i, v.File, wire[4:4+len(v.CT)], v.CT)
		}
		if want := refGCMSeal(t, v.Key, v.IV, aad, v.PT); !bytes.Equal(wire[4:], want) {
			t.Errorf("vector %d: Sealer = %x, independent composition %x", i, wire[4:], want)
		}

		o, _ := NewOpener(name, "", v.Key, v.IV, nil)
		body, ok := o.Open(0, nil, wire)
		if !ok || !bytes.Equal(body, v.PT) {
			t.Errorf("vector %d: Open of sealed packet = %x, %v", i, body, ok)
		}
		o, _ = NewOpener(name, "", v.Key, v.IV, nil)
		nist := append(append(bytes.Clone(aad), v.CT...), v.Tag...)
		body, ok = o.Open(0, nil, nist)
		if len(v.AAD) != len(aad) && ok {
			t.Errorf("vector %d: NIST tag accepted under a different AAD", i)
		}
		if !bytes.Equal(body, v.PT) && !(len(body) == 0 && len(v.PT) == 0) {
			t.Errorf("vector %d: unauthenticated decryption = %x, want %x", i, body, v.PT)
		}
	}
}

// TestGCMInvocationCounter checks RFC 5647 §7.1: "The invocation counter is
// treated as a 64-bit integer and is incremented after each invocation of
// AES-GCM to process a binary packet", leaving the 4-byte fixed field alone,
// including across byte carries and the 2^64 wrap; and that the Opener's
// counter advances on failed packets too. Expected values come from the
// independent stdlib composition with nonces computed here.
func TestGCMInvocationCounter(t *testing.T) {
	var f struct{ Vectors []gcmVector }
	loadJSON(t, "gcm-nist.json", &f)
	for _, start := range []uint64{0, 0xff, 0xffff_ffff, 0x00ff_ffff_ffff_fffe, 0xffff_ffff_ffff_fffe} {
		for _, v := range f.Vectors {
			if len(v.PT) != 16 {
				continue
			}
			name := gcmName(t, v.Key)
			iv := bytes.Clone(v.IV)
			binary.BigEndian.PutUint64(iv[4:], start)
			s, _ := NewSealer(name, "", v.Key, iv, nil)
			o, _ := NewOpener(name, "", v.Key, iv, nil)
			for k := range uint64(4) {
				nonce := bytes.Clone(v.IV[:4])
				nonce = binary.BigEndian.AppendUint64(nonce, start+k) // wraps mod 2^64
				aad := []byte{0, 0, 0, 16}
				want := refGCMSeal(t, v.Key, nonce, aad, v.PT)
				wire := s.Seal(uint32(k), append(bytes.Clone(aad), v.PT...))
				if !bytes.Equal(wire[4:], want) {
					t.Fatalf("start %#x packet %d: sealed with the wrong nonce", start, k)
				}
				if k == 1 {
					wire[5] ^= 1 // tampered: must fail, yet advance the counter
				}
				body, ok := o.Open(uint32(k), nil, wire)
				if ok == (k == 1) {
					t.Fatalf("start %#x packet %d: ok = %v", start, k, ok)
				}
				wantBody := bytes.Clone(v.PT)
				if k == 1 {
					wantBody[1] ^= 1
				}
				if !bytes.Equal(body, wantBody) {
					t.Fatalf("start %#x packet %d: body %x, want %x", start, k, body, wantBody)
				}
			}
		}
	}
}

// TestHMACKAT runs RFC 4231 (HMAC-SHA-256/512) and RFC 2202 (HMAC-SHA-1)
// vectors through the package's per-packet MAC. The MAC input is "uint32
// sequence_number || data" (RFC 4253 §6.4), so the vector's data is split
// into its first four bytes, given as the sequence number, and the rest.
// HMAC-SHA-1 vectors with 20-byte keys also go through the public classic
// Sealer, whose tag must be the vector's.
func TestHMACKAT(t *testing.T) {
	var f struct {
		Vectors []struct {
			RFC                       string
			Key, Data, SHA256, SHA512 hexBytes
			SHA1RFC2202               hexBytes `json:"sha1_rfc2202"`
			Truncate                  int
		}
	}
	loadJSON(t, "hmac-rfc4231.json", &f)
	for _, v := range f.Vectors {
		seq := binary.BigEndian.Uint32(v.Data)
		for _, c := range []struct {
			mac  string
			want []byte
		}{{HMACSHA256, v.SHA256}, {HMACSHA512, v.SHA512}, {HMACSHA256ETM, v.SHA256}, {HMACSHA1, v.SHA1RFC2202}} {
			if len(c.want) == 0 {
				continue
			}
			m := newHMACMAC(macs[c.mac], v.Key)
			for range 2 { // twice: Reset must restore the keyed state
				m.begin(seq)
				m.write(v.Data[4:])
				got := m.appendSum(nil)
				if v.Truncate > 0 {
					got = got[:v.Truncate]
				}
				if !bytes.Equal(got, c.want) {
					t.Errorf("%s %s: %x, want %x", v.RFC, c.mac, got, c.want)
				}
				if v.Truncate == 0 {
					m.begin(seq)
					m.write(v.Data[4:])
					if !m.verify(c.want) {
						t.Errorf("%s %s: verify rejected the vector", v.RFC, c.mac)
					}
				}
			}
		}
		if len(v.SHA1RFC2202) > 0 && len(v.Key) == 20 {
			s, err := NewSealer(AES128CTR, HMACSHA1, make([]byte, 16), make([]byte, 16), v.Key)
			if err != nil {
				t.Fatal(err)
			}
			wire := s.Seal(seq, bytes.Clone(v.Data[4:]))
			if tag := wire[len(wire)-20:]; !bytes.Equal(tag, v.SHA1RFC2202) {
				t.Errorf("%s: classic hmac-sha1 Sealer tag %x, want %x", v.RFC, tag, v.SHA1RFC2202)
			}
		}
	}
}
