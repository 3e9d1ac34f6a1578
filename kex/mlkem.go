package kex

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"

	"sshtap/internal/wire"
)

// Sizes of the mlkem768x25519-sha256 messages (draft-ietf-sshm-mlkem-hybrid-kex §2).
const (
	mlkemClientInitLen  = mlkem.EncapsulationKeySize768 + 32 // 1184 + 32 = 1216
	mlkemServerReplyLen = mlkem.CiphertextSize768 + 32       // 1088 + 32 = 1120
)

// mlkemKEM implements mlkem768x25519-sha256:
//
//	C_INIT  = ML-KEM-768 encapsulation key (1184) || X25519 public key (32)
//	S_REPLY = ML-KEM-768 ciphertext (1088) || X25519 public key (32)
//	K       = string(SHA-256(K_PQ || X25519 shared secret))
type mlkemKEM struct {
	dk   *mlkem.DecapsulationKey768
	priv *ecdh.PrivateKey
}

func newMLKEMKEM() kem { return &mlkemKEM{} }

// mlkemK hashes the two secrets and encodes K as a string. The hybrid draft
// defines K = HASH(K_PQ || K_CL), K_CL being the raw X25519 output, and
// encodes it as a string (not an mpint) in H and in the key derivation.
func mlkemK(kpq, kcl []byte) []byte {
	h := sha256.New()
	h.Write(kpq)
	h.Write(kcl)
	return wire.AppendBytes(make([]byte, 0, 4+sha256.Size), h.Sum(make([]byte, 0, sha256.Size)))
}

func (m *mlkemKEM) clientInit() ([]byte, error) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, err
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	m.dk, m.priv = dk, priv
	out := make([]byte, 0, mlkemClientInitLen)
	out = append(out, dk.EncapsulationKey().Bytes()...)
	return append(out, priv.PublicKey().Bytes()...), nil
}

func (m *mlkemKEM) serverReply(qc []byte) ([]byte, []byte, error) {
	// The hybrid draft makes a C_INIT of any other length an error (OpenSSH
	// kexmlkem768x25519.c checks the exact length).
	if len(qc) != mlkemClientInitLen {
		return nil, nil, badValue("C_INIT is not 1216 bytes", nil)
	}
	// FIPS 203 §7.2 input check (encapsulation key modulus check), which
	// NewEncapsulationKey768 performs; OpenSSH does the same.
	ek, err := mlkem.NewEncapsulationKey768(qc[:mlkem.EncapsulationKeySize768])
	if err != nil {
		return nil, nil, badValue("bad ML-KEM-768 encapsulation key", err)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	kcl, err := x25519Shared(priv, qc[mlkem.EncapsulationKeySize768:])
	if err != nil {
		return nil, nil, err
	}
	kpq, ct := ek.Encapsulate()
	out := make([]byte, 0, mlkemServerReplyLen)
	out = append(out, ct...)
	out = append(out, priv.PublicKey().Bytes()...)
	return out, mlkemK(kpq, kcl), nil
}

func (m *mlkemKEM) clientFinish(qs []byte) ([]byte, error) {
	// Likewise for S_REPLY on the client.
	if len(qs) != mlkemServerReplyLen {
		return nil, badValue("S_REPLY is not 1120 bytes", nil)
	}
	kpq, err := m.dk.Decapsulate(qs[:mlkem.CiphertextSize768])
	if err != nil {
		return nil, badValue("bad ML-KEM-768 ciphertext", err)
	}
	kcl, err := x25519Shared(m.priv, qs[mlkem.CiphertextSize768:])
	if err != nil {
		return nil, err
	}
	return mlkemK(kpq, kcl), nil
}
