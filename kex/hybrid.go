package kex

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strconv"

	"sshtap/internal/wire"
	"sshtap/kex/internal/sntrup761"
)

// hybridKEM is a post-quantum KEM combined with X25519, the shape shared by
// mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex §2) and
// sntrup761x25519-sha512 (OpenSSH kexsntrup761x25519.c):
//
//	C_INIT  = PQ encapsulation key || X25519 public key (32)
//	S_REPLY = PQ ciphertext || X25519 public key (32)
//	K       = string(HASH(K_PQ || X25519 shared secret))
//
// K is the raw X25519 output hashed with the PQ key and encoded as a string,
// not an mpint, in H and in the key derivation. Both drafts (and OpenSSH)
// refuse a C_INIT or S_REPLY of any other length.
type hybridKEM struct {
	pq   pqKEM
	hash func() hash.Hash
	priv *ecdh.PrivateKey
}

// pqKEM is the post-quantum half of a hybridKEM.
type pqKEM interface {
	name() string
	encapsulationKeySize() int
	ciphertextSize() int
	// generate makes the client's key pair and returns the encapsulation
	// key.
	generate() ([]byte, error)
	// encapsulate checks the client's encapsulation key as the method
	// requires and returns the ciphertext and the shared key.
	encapsulate(ek []byte) (ct, k []byte, err error)
	// decapsulate returns the shared key carried by ct.
	decapsulate(ct []byte) ([]byte, error)
}

func newMLKEMKEM() kem  { return &hybridKEM{pq: &mlkemHalf{}, hash: sha256.New} }
func newSntrupKEM() kem { return &hybridKEM{pq: &sntrupHalf{}, hash: sha512.New} }

func (m *hybridKEM) k(kpq, kcl []byte) []byte {
	h := m.hash()
	h.Write(kpq)
	h.Write(kcl)
	return wire.AppendBytes(make([]byte, 0, 4+h.Size()), h.Sum(make([]byte, 0, h.Size())))
}

func (m *hybridKEM) clientInit() ([]byte, error) {
	ek, err := m.pq.generate()
	if err != nil {
		return nil, err
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	m.priv = priv
	return append(ek, priv.PublicKey().Bytes()...), nil
}

func (m *hybridKEM) serverReply(qc []byte) ([]byte, []byte, error) {
	n := m.pq.encapsulationKeySize()
	if len(qc) != n+32 {
		return nil, nil, badValue("C_INIT is not "+strconv.Itoa(n+32)+" bytes", nil)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	kcl, err := x25519Shared(priv, qc[n:])
	if err != nil {
		return nil, nil, err
	}
	ct, kpq, err := m.pq.encapsulate(qc[:n])
	if err != nil {
		return nil, nil, err
	}
	return append(ct, priv.PublicKey().Bytes()...), m.k(kpq, kcl), nil
}

func (m *hybridKEM) clientFinish(qs []byte) ([]byte, error) {
	n := m.pq.ciphertextSize()
	if len(qs) != n+32 {
		return nil, badValue("S_REPLY is not "+strconv.Itoa(n+32)+" bytes", nil)
	}
	kpq, err := m.pq.decapsulate(qs[:n])
	if err != nil {
		return nil, badValue("bad "+m.pq.name()+" ciphertext", err)
	}
	kcl, err := x25519Shared(m.priv, qs[n:])
	if err != nil {
		return nil, err
	}
	return m.k(kpq, kcl), nil
}

// mlkemHalf is ML-KEM-768 (FIPS 203) from crypto/mlkem.
type mlkemHalf struct{ dk *mlkem.DecapsulationKey768 }

func (*mlkemHalf) name() string                            { return "ML-KEM-768" }
func (*mlkemHalf) encapsulationKeySize() int               { return mlkem.EncapsulationKeySize768 } // 1184
func (*mlkemHalf) ciphertextSize() int                     { return mlkem.CiphertextSize768 }       // 1088
func (h *mlkemHalf) decapsulate(ct []byte) ([]byte, error) { return h.dk.Decapsulate(ct) }

func (h *mlkemHalf) generate() ([]byte, error) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, err
	}
	h.dk = dk
	return dk.EncapsulationKey().Bytes(), nil
}

func (*mlkemHalf) encapsulate(ek []byte) ([]byte, []byte, error) {
	// FIPS 203 §7.2 input check (encapsulation key modulus check), which
	// NewEncapsulationKey768 performs; OpenSSH does the same.
	key, err := mlkem.NewEncapsulationKey768(ek)
	if err != nil {
		return nil, nil, badValue("bad ML-KEM-768 encapsulation key", err)
	}
	k, ct := key.Encapsulate()
	return ct, k, nil
}

// sntrupHalf is Streamlined NTRU Prime 761 (kex/internal/sntrup761). Every
// 1158-byte string is a valid public key, and decapsulation never fails on
// a ciphertext of the right length (implicit rejection): a forged one
// yields an unrelated key, and the host key signature on H fails instead.
type sntrupHalf struct{ dk *sntrup761.PrivateKey }

func (*sntrupHalf) name() string                            { return "sntrup761" }
func (*sntrupHalf) encapsulationKeySize() int               { return sntrup761.PublicKeySize }  // 1158
func (*sntrupHalf) ciphertextSize() int                     { return sntrup761.CiphertextSize } // 1039
func (h *sntrupHalf) decapsulate(ct []byte) ([]byte, error) { return h.dk.Decapsulate(ct) }

func (h *sntrupHalf) generate() ([]byte, error) {
	dk, err := sntrup761.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	h.dk = dk
	return append([]byte(nil), dk.PublicKey()...), nil
}

func (*sntrupHalf) encapsulate(ek []byte) ([]byte, []byte, error) {
	ct, k, err := sntrup761.Encapsulate(rand.Reader, ek)
	if err != nil {
		return nil, nil, badValue("bad sntrup761 public key", err)
	}
	return ct, k, nil
}
