package sntrup761

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// streamRand is the deterministic randomness the known answers were made
// with: SHA-512(seed || uint64le(i)) for i = 0, 1, ..., concatenated.
type streamRand struct {
	seed  []byte
	count uint64
	buf   []byte
}

func (s *streamRand) Read(b []byte) (int, error) {
	for n := range b {
		if len(s.buf) == 0 {
			block := sha512.Sum512(binary.LittleEndian.AppendUint64(bytes.Clone(s.seed), s.count))
			s.count++
			s.buf = block[:]
		}
		b[n] = s.buf[0]
		s.buf = s.buf[1:]
	}
	return len(b), nil
}

type katVector map[string]string

func (v katVector) bytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(v[name])
	if err != nil || len(b) == 0 {
		t.Fatalf("vector %s: field %s: %v", v["count"], name, err)
	}
	return b
}

func readKAT(t *testing.T) []katVector {
	t.Helper()
	f, err := os.Open("testdata/openssh_kat.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []katVector
	var cur katVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line == "" {
			cur = nil
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		if cur == nil {
			cur = katVector{}
			out = append(out, cur)
		}
		cur[k] = v
	}
	if len(out) != 10 {
		t.Fatalf("%d vectors, want 10", len(out))
	}
	return out
}

// matches compares got with a field given either in full (name) or as a
// SHA-256 digest (name_sha256).
func matches(t *testing.T, v katVector, name string, got []byte) {
	t.Helper()
	if _, full := v[name]; full {
		if want := v.bytes(t, name); !bytes.Equal(got, want) {
			t.Errorf("vector %s: %s differs from OpenSSH's", v["count"], name)
		}
		return
	}
	sum := sha256.Sum256(got)
	if want := v.bytes(t, name+"_sha256"); !bytes.Equal(sum[:], want) {
		t.Errorf("vector %s: %s differs from OpenSSH's (SHA-256 %x)", v["count"], name, sum)
	}
}

// TestOpenSSHKnownAnswers generates keys and ciphertexts from the same
// randomness as OpenSSH's implementation did and expects the same bytes,
// then decapsulates the good and the altered ciphertexts.
func TestOpenSSHKnownAnswers(t *testing.T) {
	for _, v := range readKAT(t) {
		rnd := &streamRand{seed: []byte(v["seed"])}
		k, err := GenerateKey(rnd)
		if err != nil {
			t.Fatal(err)
		}
		matches(t, v, "pk", k.PublicKey())
		matches(t, v, "sk", k.Bytes())
		ct, ss, err := Encapsulate(rnd, k.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		matches(t, v, "ct", ct)
		if want := v.bytes(t, "ss"); !bytes.Equal(ss, want) {
			t.Errorf("vector %s: encapsulated key %x, OpenSSH's %x", v["count"], ss, want)
		}
		got, err := k.Decapsulate(ct)
		if err != nil || !bytes.Equal(got, ss) {
			t.Errorf("vector %s: decapsulated %x (%v), want %x", v["count"], got, err, ss)
		}

		pos, mask := flip(t, v["flip"])
		bad := bytes.Clone(ct)
		bad[pos] ^= mask
		got, err = k.Decapsulate(bad)
		if err != nil {
			t.Fatal(err)
		}
		if want := v.bytes(t, "ss_rejected"); !bytes.Equal(got, want) {
			t.Errorf("vector %s: altered ciphertext gave %x, OpenSSH's implicit rejection %x", v["count"], got, want)
		}
	}
}

// TestDecapsulateOpenSSHCiphertext decapsulates OpenSSH's own private key
// and ciphertext bytes, independently of GenerateKey and Encapsulate.
func TestDecapsulateOpenSSHCiphertext(t *testing.T) {
	v := readKAT(t)[0]
	k, err := NewPrivateKey(v.bytes(t, "sk"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.PublicKey(), v.bytes(t, "pk")) {
		t.Fatal("public key inside the private key differs")
	}
	ss, err := k.Decapsulate(v.bytes(t, "ct"))
	if err != nil || !bytes.Equal(ss, v.bytes(t, "ss")) {
		t.Fatalf("got %x (%v), want %s", ss, err, v["ss"])
	}
	if !bytes.Equal(k.Bytes(), v.bytes(t, "sk")) {
		t.Fatal("private key does not round-trip")
	}
}

func flip(t *testing.T, s string) (int, byte) {
	t.Helper()
	a, b, _ := strings.Cut(s, " ")
	pos, err1 := strconv.Atoi(a)
	mask, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad flip %q", s)
	}
	return pos, byte(mask)
}
