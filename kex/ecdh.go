package kex

import (
	"crypto/ecdh"
	"crypto/rand"

	"sshtap/internal/wire"
)

// nistKEM implements ecdh-sha2-nistp256/384/521 (RFC 5656 §4).
type nistKEM struct {
	curve ecdh.Curve
	priv  *ecdh.PrivateKey
}

func newP256KEM() kem { return &nistKEM{curve: ecdh.P256()} }
func newP384KEM() kem { return &nistKEM{curve: ecdh.P384()} }
func newP521KEM() kem { return &nistKEM{curve: ecdh.P521()} }

// shared validates the peer's point and returns K.
//
// RFC 5656 §4: "All elliptic curve public keys MUST be validated after they
// are received. An example of a validation algorithm can be found in Section
// 3.2.2 of [SEC1]." crypto/ecdh's NewPublicKey accepts only the uncompressed
// SEC1 encoding (RFC 5656 §3.1 point compression is optional and OpenSSH
// rejects it) and checks that the point is on the curve and not the point at
// infinity. §4: "the shared secret K ... is the x-coordinate of the shared
// point", encoded as an mpint.
func (n *nistKEM) shared(priv *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if len(peer) == 0 || peer[0] != 4 {
		return nil, badValue("ECDH public key is not an uncompressed point", nil)
	}
	pub, err := n.curve.NewPublicKey(peer)
	if err != nil {
		return nil, badValue("bad ECDH public key", err)
	}
	x, err := priv.ECDH(pub)
	if err != nil {
		return nil, badValue("ECDH failed", err)
	}
	return wire.AppendMpintBytes(make([]byte, 0, 4+1+len(x)), x), nil
}

func (n *nistKEM) clientInit() ([]byte, error) {
	priv, err := n.curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	n.priv = priv
	return priv.PublicKey().Bytes(), nil
}

func (n *nistKEM) serverReply(qc []byte) ([]byte, []byte, error) {
	priv, err := n.curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	k, err := n.shared(priv, qc)
	if err != nil {
		return nil, nil, err
	}
	return priv.PublicKey().Bytes(), k, nil
}

func (n *nistKEM) clientFinish(qs []byte) ([]byte, error) {
	return n.shared(n.priv, qs)
}
