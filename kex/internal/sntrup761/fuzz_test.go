package sntrup761

import (
	"bytes"
	"crypto/rand"
	"sync"
	"testing"
)

var fuzzKey = sync.OnceValue(func() *PrivateKey {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// FuzzEncapsulate feeds peer public keys (what a server decodes from a
// client's C_INIT) to Encapsulate: any input either fails with the size
// error or gives a well-formed ciphertext.
func FuzzEncapsulate(f *testing.F) {
	f.Add(fuzzKey().PublicKey())
	f.Add(bytes.Repeat([]byte{0xff}, PublicKeySize))
	f.Fuzz(func(t *testing.T, pk []byte) {
		ct, ss, err := Encapsulate(rand.Reader, pk)
		if len(pk) != PublicKeySize {
			if err != ErrPublicKeySize {
				t.Fatalf("%d-byte key: %v", len(pk), err)
			}
			return
		}
		if err != nil || len(ct) != CiphertextSize || len(ss) != SharedKeySize {
			t.Fatalf("ct %d ss %d err %v", len(ct), len(ss), err)
		}
	})
}

// FuzzDecapsulate feeds peer ciphertexts (what a client decodes from a
// server's S_REPLY) to Decapsulate: no input panics, each one of the right
// size gives a key, and only the untouched ciphertext gives the sender's.
func FuzzDecapsulate(f *testing.F) {
	ct, _, err := Encapsulate(rand.Reader, fuzzKey().PublicKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
	f.Add(make([]byte, CiphertextSize))
	f.Fuzz(func(t *testing.T, c []byte) {
		ss, err := fuzzKey().Decapsulate(c)
		if len(c) != CiphertextSize {
			if err != ErrCiphertextSize {
				t.Fatalf("%d-byte ciphertext: %v", len(c), err)
			}
			return
		}
		if err != nil || len(ss) != SharedKeySize {
			t.Fatalf("ss %d err %v", len(ss), err)
		}
	})
}
