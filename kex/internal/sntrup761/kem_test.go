package sntrup761

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 3 {
		ct, ss, err := Encapsulate(rand.Reader, k.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != CiphertextSize || len(ss) != SharedKeySize {
			t.Fatalf("sizes %d, %d", len(ct), len(ss))
		}
		got, err := k.Decapsulate(ct)
		if err != nil || !bytes.Equal(got, ss) {
			t.Fatalf("decapsulated %x (%v), want %x", got, err, ss)
		}
		if seen[string(ss)] {
			t.Fatal("repeated shared key")
		}
		seen[string(ss)] = true
	}
}

// TestImplicitRejection: a ciphertext altered anywhere decapsulates to a
// key other than the sender's, deterministically (the same altered
// ciphertext gives the same key), and without an error.
func TestImplicitRejection(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ct, ss, err := Encapsulate(rand.Reader, k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []int{0, roundedSize / 2, roundedSize - 1, roundedSize, CiphertextSize - 1} {
		bad := bytes.Clone(ct)
		bad[pos] ^= 0x10
		k1, err1 := k.Decapsulate(bad)
		k2, err2 := k.Decapsulate(bad)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if bytes.Equal(k1, ss) || !bytes.Equal(k1, k2) {
			t.Fatalf("byte %d altered: key %x (sender's %x, again %x)", pos, k1, ss, k2)
		}
	}
}

func TestSizesRefused(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Encapsulate(rand.Reader, k.PublicKey()[1:]); !errors.Is(err, ErrPublicKeySize) {
		t.Errorf("short public key: %v", err)
	}
	if _, err := k.Decapsulate(make([]byte, CiphertextSize+1)); !errors.Is(err, ErrCiphertextSize) {
		t.Errorf("long ciphertext: %v", err)
	}
	if _, err := NewPrivateKey(make([]byte, 10)); err == nil {
		t.Error("short private key accepted")
	}
}

func TestRandomnessFailure(t *testing.T) {
	if _, err := GenerateKey(&sliceReader{make([]byte, 100)}); err == nil {
		t.Error("GenerateKey succeeded with 100 bytes of randomness")
	}
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Encapsulate(&sliceReader{make([]byte, 100)}, k.PublicKey()); err == nil {
		t.Error("Encapsulate succeeded with 100 bytes of randomness")
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := GenerateKey(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncapsulate(b *testing.B) {
	k, _ := GenerateKey(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Encapsulate(rand.Reader, k.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecapsulate(b *testing.B) {
	k, _ := GenerateKey(rand.Reader)
	ct, _, _ := Encapsulate(rand.Reader, k.PublicKey())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decapsulate(ct); err != nil {
			b.Fatal(err)
		}
	}
}
