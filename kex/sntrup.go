package kex

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha512"

	"sshtap/internal/wire"
	"sshtap/kex/internal/sntrup761"
)

// Sizes of the sntrup761x25519-sha512 messages (OpenSSH PROTOCOL,
// kexsntrup761x25519.c).
const (
	sntrupClientInitLen  = sntrup761.PublicKeySize + 32  // 1158 + 32 = 1190
	sntrupServerReplyLen = sntrup761.CiphertextSize + 32 // 1039 + 32 = 1071
)

// sntrupKEM implements sntrup761x25519-sha512 (both names), the hybrid of
// Streamlined NTRU Prime 761 and X25519 that OpenSSH 9 prefers:
//
//	C_INIT  = sntrup761 public key (1158) || X25519 public key (32)
//	S_REPLY = sntrup761 ciphertext (1039) || X25519 public key (32)
//	K       = string(SHA-512(sntrup761 shared key || X25519 shared secret))
//
// Like mlkem768x25519-sha256, K is hashed with the method's hash and
// encoded as a string, not an mpint.
type sntrupKEM struct {
	dk   *sntrup761.PrivateKey
	priv *ecdh.PrivateKey
}

func newSntrupKEM() kem { return &sntrupKEM{} }

func sntrupK(kpq, kcl []byte) []byte {
	h := sha512.New()
	h.Write(kpq)
	h.Write(kcl)
	return wire.AppendBytes(make([]byte, 0, 4+sha512.Size), h.Sum(make([]byte, 0, sha512.Size)))
}

func (m *sntrupKEM) clientInit() ([]byte, error) {
	dk, err := sntrup761.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	m.dk, m.priv = dk, priv
	out := make([]byte, 0, sntrupClientInitLen)
	out = append(out, dk.PublicKey()...)
	return append(out, priv.PublicKey().Bytes()...), nil
}

func (m *sntrupKEM) serverReply(qc []byte) ([]byte, []byte, error) {
	// OpenSSH kex_kem_sntrup761x25519_enc refuses a client blob of any other
	// length; every 1158-byte string is a valid sntrup761 public key.
	if len(qc) != sntrupClientInitLen {
		return nil, nil, badValue("C_INIT is not 1190 bytes", nil)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	kcl, err := x25519Shared(priv, qc[sntrup761.PublicKeySize:])
	if err != nil {
		return nil, nil, err
	}
	ct, kpq, err := sntrup761.Encapsulate(rand.Reader, qc[:sntrup761.PublicKeySize])
	if err != nil {
		return nil, nil, badValue("bad sntrup761 public key", err)
	}
	out := make([]byte, 0, sntrupServerReplyLen)
	out = append(out, ct...)
	out = append(out, priv.PublicKey().Bytes()...)
	return out, sntrupK(kpq, kcl), nil
}

func (m *sntrupKEM) clientFinish(qs []byte) ([]byte, error) {
	if len(qs) != sntrupServerReplyLen {
		return nil, badValue("S_REPLY is not 1071 bytes", nil)
	}
	// Decapsulation never fails on a ciphertext of the right length
	// (implicit rejection): a forged one yields an unrelated key and the
	// host key signature on H fails instead.
	kpq, err := m.dk.Decapsulate(qs[:sntrup761.CiphertextSize])
	if err != nil {
		return nil, badValue("bad sntrup761 ciphertext", err)
	}
	kcl, err := x25519Shared(m.priv, qs[sntrup761.CiphertextSize:])
	if err != nil {
		return nil, err
	}
	return sntrupK(kpq, kcl), nil
}
