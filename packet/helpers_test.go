package packet

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"sshtap/cipher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// suite describes one way of protecting packets.
type suite struct {
	name   string
	cipher string // real cipher name, "" for none and fakes
	mac    string
	// pair returns fresh, matching Sealer and Opener (nil, nil for none).
	// Fresh pairs from one suite use the same keys.
	pair func(tb testing.TB) (cipher.Sealer, cipher.Opener)
}

func (s suite) none() bool { return s.pair == nil }

// seqInMAC reports whether a sequence number mismatch breaks authentication.
func (s suite) seqInMAC() bool {
	return !s.none() && s.cipher != cipher.AES128GCM && s.cipher != cipher.AES256GCM
}

// seqInLength reports whether the length field is encrypted under a key
// that depends on the sequence number (chacha20-poly1305), so that a
// sequence number mismatch garbles the length.
func (s suite) seqInLength() bool {
	return s.cipher == cipher.Chacha20Poly1305 || (s.cipher == "" && !s.none() && s.name[:9] == "fake-aead")
}

func (s suite) newPair(tb testing.TB) (*Writer, *Reader) {
	w, r := &Writer{}, &Reader{}
	if s.none() {
		w.SetSealer(nil) // so that tests may inspect the cached mode
		r.SetOpener(nil)
		return w, r
	}
	se, op := s.pair(tb)
	w.SetSealer(se)
	r.SetOpener(op)
	return w, r
}

var noneSuite = suite{name: "none"}

func fakeSuites() []suite {
	var out []suite
	for _, c := range []struct {
		mode cipher.Mode
		bs   int
	}{{cipher.ModeClassic, 8}, {cipher.ModeClassic, 16}, {cipher.ModeETM, 8}, {cipher.ModeETM, 16}, {cipher.ModeAEAD, 8}, {cipher.ModeAEAD, 16}} {
		out = append(out, suite{
			name: fmt.Sprintf("fake-%v-%d", c.mode, c.bs),
			pair: func(testing.TB) (cipher.Sealer, cipher.Opener) { return newFakePair(c.mode, c.bs) },
		})
	}
	return out
}

// testKey returns n deterministic bytes.
func testKey(n int, salt byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)*7 + salt
	}
	return b
}

// realAvailable reports whether package cipher implements the ciphers yet.
func realAvailable() bool {
	_, _, _, err := cipher.Sizes(cipher.AES128CTR, cipher.HMACSHA256)
	return err == nil
}

func realSuite(c, m string) suite {
	name := c
	if m != "" {
		name += "+" + m
	}
	return suite{
		name: name, cipher: c, mac: m,
		pair: func(tb testing.TB) (cipher.Sealer, cipher.Opener) {
			tb.Helper()
			kl, il, ml, err := cipher.Sizes(c, m)
			if err != nil {
				tb.Fatalf("Sizes(%q, %q): %v", c, m, err)
			}
			key, iv, mk := testKey(kl, 1), testKey(il, 2), testKey(ml, 3)
			se, err := cipher.NewSealer(c, m, key, iv, mk)
			if err != nil {
				tb.Fatalf("NewSealer(%q, %q): %v", c, m, err)
			}
			op, err := cipher.NewOpener(c, m, key, iv, mk)
			if err != nil {
				tb.Fatalf("NewOpener(%q, %q): %v", c, m, err)
			}
			return se, op
		},
	}
}

// realSuites lists every supported cipher×MAC combination (MAC "" for AEAD).
func realSuites() []suite {
	if !realAvailable() {
		return nil
	}
	var out []suite
	for _, c := range cipher.SupportedCiphers {
		if cipher.IsAEAD(c) {
			out = append(out, realSuite(c, ""))
			continue
		}
		for _, m := range cipher.SupportedMACs {
			out = append(out, realSuite(c, m))
		}
	}
	return out
}

func allSuites() []suite {
	out := []suite{noneSuite}
	out = append(out, fakeSuites()...)
	return append(out, realSuites()...)
}

func TestRealCiphersAvailable(t *testing.T) {
	if !realAvailable() {
		t.Skip("package cipher does not implement the ciphers yet; tested with fakes only")
	}
	if n := len(realSuites()); n < 6 {
		t.Fatalf("only %d real suites", n)
	}
}

func payloadOf(n int, salt byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*13) ^ salt
	}
	return p
}

// countingOpener counts DecryptLength calls.
type countingOpener struct {
	cipher.Opener
	decrypts int
}

func (c *countingOpener) DecryptLength(seq uint32, head []byte) uint32 {
	c.decrypts++
	return c.Opener.DecryptLength(seq, head)
}
