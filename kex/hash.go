package kex

import (
	"math/big"

	"sshtap/internal/wire"
)

// The exchange hash H of every method (RFC 4253 §8, RFC 5656 §4, RFC 4419 §3,
// RFC 8731 §3, the mlkem768x25519 draft) is HASH over
//
//	string V_C, string V_S, string I_C, string I_S, string K_S,
//	the method's fields, K
//
// where K is appended exactly as Result.K carries it (mpint or string, with
// its length prefix). I_C and I_S are the KEXINIT payloads as sent, starting
// with byte 20; V_C and V_S exclude CR LF; K_S is the whole host key or
// certificate blob.

// hashPrefix returns the encoding of the fields every exchange hash starts
// with: string V_C, string V_S, string I_C, string I_S, string K_S
// (RFC 4253 §8, RFC 5656 §4, RFC 4419 §3, RFC 8731 §3). extra is a capacity
// hint for the method fields that follow.
func (b *base) hashPrefix(ks []byte, extra int) []byte {
	n := 5*4 + len(b.p.ClientVersion) + len(b.p.ServerVersion) + len(b.p.ClientKexInit) +
		len(b.p.ServerKexInit) + len(ks) + extra
	buf := make([]byte, 0, n)
	buf = wire.AppendBytes(buf, b.p.ClientVersion)
	buf = wire.AppendBytes(buf, b.p.ServerVersion)
	buf = wire.AppendBytes(buf, b.p.ClientKexInit)
	buf = wire.AppendBytes(buf, b.p.ServerKexInit)
	return wire.AppendBytes(buf, ks)
}

// sum returns HASH(data).
func (b *base) sum(data []byte) []byte {
	h := b.m.hash.New()
	h.Write(data)
	return h.Sum(nil)
}

// hash computes H for kem methods (RFC 5656 §4, RFC 8731 §3, and the
// mlkem768x25519 draft: "string C_INIT, string S_REPLY, string K").
func (e *kemExchange) hash(ks, qc, qs, k []byte) []byte {
	buf := e.hashPrefix(ks, 8+len(qc)+len(qs)+len(k))
	buf = wire.AppendBytes(buf, qc)
	buf = wire.AppendBytes(buf, qs)
	buf = append(buf, k...)
	return e.sum(buf)
}

// dhHash computes H for fixed-group DH (RFC 4253 §8) and, with the group
// exchange fields in gexFields, for DH GEX (RFC 4419 §3):
// prefix || gexFields || mpint e || mpint f || K.
func dhHash(b *base, ks, gexFields []byte, e, f *big.Int, k []byte) []byte {
	n := (e.BitLen()+f.BitLen())/8 + 10 + len(gexFields) + len(k)
	buf := b.hashPrefix(ks, n)
	buf = append(buf, gexFields...)
	buf = wire.AppendMpint(buf, e)
	buf = wire.AppendMpint(buf, f)
	buf = append(buf, k...)
	return b.sum(buf)
}
