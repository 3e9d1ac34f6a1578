package kex

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"

	"sshtap/internal/wire"
)

// x25519KEM implements curve25519-sha256 and curve25519-sha256@libssh.org
// (RFC 8731).
type x25519KEM struct{ priv *ecdh.PrivateKey }

func newX25519KEM() kem { return &x25519KEM{} }

// x25519Shared computes X25519(priv, peer) and rejects bad peer values.
// RFC 8731 §3 requires both sides to abort when a received public key does
// not have the expected size (32 bytes) and when the computed shared secret
// is the all-zero value (RFC 7748 §6.1); OpenSSH and dropbear do both.
func x25519Shared(priv *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if len(peer) != 32 {
		return nil, badValue("X25519 public key is not 32 bytes", nil)
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, badValue("bad X25519 public key", err)
	}
	// crypto/ecdh itself refuses an all-zero result (low-order points); the
	// explicit check keeps the RFC 8731 requirement visible here.
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, badValue("X25519 shared secret is all zero", err)
	}
	if subtle.ConstantTimeCompare(secret, make([]byte, len(secret))) == 1 {
		return nil, badValue("X25519 shared secret is all zero", nil)
	}
	return secret, nil
}

// x25519K encodes the X25519 output as K. RFC 8731 §3.1: the 32 bytes of the
// shared secret are converted to an integer by reading them as an unsigned
// big-endian number (no byte reversal, although X25519 itself is
// little-endian) and K is that integer as an mpint: leading zero bytes
// dropped, 0x00 prepended when the top bit is set (RFC 4251 §5).
func x25519K(secret []byte) []byte {
	return wire.AppendMpintBytes(make([]byte, 0, 4+33), secret)
}

func (x *x25519KEM) clientInit() ([]byte, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	x.priv = priv
	return priv.PublicKey().Bytes(), nil
}

func (x *x25519KEM) serverReply(qc []byte) ([]byte, []byte, error) {
	if len(qc) != 32 {
		return nil, nil, badValue("X25519 public key is not 32 bytes", nil)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	secret, err := x25519Shared(priv, qc)
	if err != nil {
		return nil, nil, err
	}
	return priv.PublicKey().Bytes(), x25519K(secret), nil
}

func (x *x25519KEM) clientFinish(qs []byte) ([]byte, error) {
	secret, err := x25519Shared(x.priv, qs)
	if err != nil {
		return nil, err
	}
	return x25519K(secret), nil
}
