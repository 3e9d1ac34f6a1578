package packet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sshtap/cipher"
)

// fuzzMaxPacket is the Reader limit under fuzzing: RFC 4253 §6.1's 35000,
// small enough that fuzzed lengths reach it.
const fuzzMaxPacket = 35000

// fuzzSuites are the protections FuzzReaderNext picks from with its first
// argument; the real ones use fixed keys (testKey), so the seed corpus holds
// authentic packets. Without real ciphers, fakes of the same modes stand in.
func fuzzSuites() []suite {
	if !realAvailable() {
		f := fakeSuites()
		return []suite{noneSuite, f[1], f[4], f[5], f[3]}
	}
	return []suite{
		noneSuite,
		realSuite(cipher.AES128CTR, cipher.HMACSHA256),    // classic: encrypted length, MAC over plaintext
		realSuite(cipher.Chacha20Poly1305, ""),            // AEAD, encrypted length
		realSuite(cipher.AES128GCM, ""),                   // AEAD, length in clear
		realSuite(cipher.AES128CTR, cipher.HMACSHA256ETM), // ETM
	}
}

// fuzzResult is what one successful or failed Next call produced.
type fuzzResult struct {
	n       int
	payload string
	err     string
}

// FuzzReaderNext feeds arbitrary bytes to a Reader, delivered in two parts
// split at an arbitrary offset, and checks that it never panics, keeps its
// buffer within MaxPacket, honours the (payload, n, err) contract, and
// parses the same packets whatever the split.
func FuzzReaderNext(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{0, 0, 0, 12, 10, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	suites := fuzzSuites()
	f.Fuzz(func(t *testing.T, which uint8, split uint16, data []byte) {
		s := suites[int(which)%len(suites)]
		whole := readAll(t, s, data, len(data))
		if cut := int(split); cut < len(data) {
			parts := readAll(t, s, data, cut)
			if fmt.Sprint(parts) != fmt.Sprint(whole) {
				t.Fatalf("split at %d changed the result:\n%v\n%v", cut, parts, whole)
			}
		}
	})
}

// readAll parses data delivered as data[:cut] then all of it, the way a
// transport appends newly read bytes to what is still unconsumed.
func readAll(t *testing.T, s suite, data []byte, cut int) []fuzzResult {
	r := &Reader{MaxPacket: fuzzMaxPacket}
	if !s.none() {
		_, op := s.pair(t)
		r.SetOpener(op)
	}
	var out []fuzzResult
	pos, avail := 0, cut
	for {
		in := data[pos:avail]
		p, n, err := r.Next(in)
		if cap(r.plain) > fuzzMaxPacket {
			t.Fatalf("plaintext buffer of %d bytes", cap(r.plain))
		}
		if n < 0 || n > len(in) {
			t.Fatalf("n=%d of %d", n, len(in))
		}
		var ae *AuthError
		var le *LengthError
		var pe *PaddingError
		switch {
		case err == nil && n == 0:
			if p != nil || r.Need() <= len(in) {
				t.Fatalf("partial: %d payload bytes, Need %d with %d bytes", len(p), r.Need(), len(in))
			}
			if avail < len(data) {
				avail = len(data) // the rest arrives
				continue
			}
			return out
		case err == nil:
			if len(p) > n-lenSize-1-minPadding {
				t.Fatalf("payload of %d bytes from a %d-byte packet", len(p), n)
			}
			out = append(out, fuzzResult{n: n, payload: string(p)})
		case errors.As(err, &ae):
			if n == 0 || p != nil || len(ae.Payload) > n || s.none() {
				t.Fatalf("AuthError with n=%d, payload %d bytes, Payload %d bytes", n, len(p), len(ae.Payload))
			}
			out = append(out, fuzzResult{n: n, payload: string(ae.Payload), err: err.Error()})
		case errors.As(err, &le), errors.As(err, &pe):
			if n != 0 || p != nil {
				t.Fatalf("%v with n=%d", err, n)
			}
			if _, n2, err2 := r.Next(in); n2 != 0 || err2 != err {
				t.Fatalf("framing error not sticky: n=%d err=%v", n2, err2)
			}
			return append(out, fuzzResult{err: err.Error()})
		default:
			t.Fatalf("unexpected error %T %v", err, err)
		}
		pos += n
	}
}

// TestFuzzSeedsAuthentic makes sure the seed corpus still holds authentic
// packets for every fuzz suite, so that the fuzzer starts past the tag check.
func TestFuzzSeedsAuthentic(t *testing.T) {
	if !realAvailable() {
		t.Skip("seeds were generated with the real ciphers")
	}
	seen := map[int]bool{}
	for _, c := range readSeedCorpus(t) {
		suites := fuzzSuites()
		s := suites[int(c.which)%len(suites)]
		for _, res := range readAll(t, s, c.data, len(c.data)) {
			if res.err == "" && res.n > 0 {
				seen[int(c.which)%len(suites)] = true
			}
		}
	}
	for i, s := range fuzzSuites() {
		if !seen[i] {
			t.Errorf("no authentic seed packet for %s", s.name)
		}
	}
}

type seedCase struct {
	which uint8
	data  []byte
}

// readSeedCorpus parses testdata/fuzz/FuzzReaderNext (the "go test fuzz v1"
// format, restricted to the three values FuzzReaderNext takes).
func readSeedCorpus(t *testing.T) []seedCase {
	dir := filepath.Join("testdata", "fuzz", "FuzzReaderNext")
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []seedCase
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 4 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a FuzzReaderNext corpus file", f.Name())
		}
		var c seedCase
		which, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "byte("), ")"))
		data, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[3], "[]byte("), ")"))
		if err1 != nil || err2 != nil || len(which) != 1 {
			t.Fatalf("%s: cannot parse: %v %v", f.Name(), err1, err2)
		}
		c.which, c.data = which[0], []byte(data)
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("empty seed corpus")
	}
	return out
}
