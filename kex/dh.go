package kex

import (
	"io"
	"math/big"

	"sshtap/internal/wire"
)

// dhExponentBits is the size of our private DH exponents. Short exponents
// are safe with safe-prime groups; 512 bits give about 256-bit security
// against discrete-logarithm attacks on the exponent, above the strength of
// the largest group (RFC 3526 §8 estimates 8192 bits at 200-300 bits).
// OpenSSH (dh.c dh_gen_key) likewise uses 2*need bits, not |p|.
const dhExponentBits = 512

// dhGroup is a Diffie-Hellman group: a safe prime p and generator g.
type dhGroup struct {
	p, g, pMinus1 *big.Int
}

func newDHGroup(p, g *big.Int) *dhGroup {
	return &dhGroup{p: p, g: g, pMinus1: new(big.Int).Sub(p, big.NewInt(1))}
}

func hexGroup(pHex string) *dhGroup {
	p, ok := new(big.Int).SetString(pHex, 16)
	if !ok {
		panic("kex: bad built-in prime")
	}
	return newDHGroup(p, big.NewInt(2))
}

// Fixed groups (RFC 8268 §3, RFC 4253 §8.1 and §8.2), generator 2.
var (
	group1  = hexGroup(rfc2409Prime1024)
	group14 = hexGroup(rfc3526Prime2048)
	group15 = hexGroup(rfc3526Prime3072)
	group16 = hexGroup(rfc3526Prime4096)
	group17 = hexGroup(rfc3526Prime6144)
	group18 = hexGroup(rfc3526Prime8192)
)

// validPublic reports whether a peer's public value (e or f) lies in
// 1 < v < p-1. RFC 4253 §8: "Values of 'e' or 'f' that are not in the range
// [1, p-1] MUST NOT be sent or accepted by either side. If this condition is
// violated, the key exchange fails." Like OpenSSH (dh.c dh_pub_is_valid) and
// dropbear, 1 and p-1 are refused too: they confine the secret to {1, p-1}.
func (g *dhGroup) validPublic(v *big.Int) bool {
	return v != nil && v.Cmp(bigOne) > 0 && v.Cmp(g.pMinus1) < 0
}

var bigOne = big.NewInt(1)

// genKey draws a private exponent x and returns x and g^x mod p.
func (g *dhGroup) genKey(rnd io.Reader) (x, pub *big.Int, err error) {
	bits := dhExponentBits
	if m := g.p.BitLen() - 2; m < bits {
		bits = m
	}
	buf := make([]byte, (bits+7)/8)
	for range 64 {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return nil, nil, &ConfigError{Reason: "reading random exponent: " + err.Error()}
		}
		if extra := len(buf)*8 - bits; extra > 0 {
			buf[0] &= 0xff >> extra
		}
		x = new(big.Int).SetBytes(buf)
		if x.Cmp(bigOne) <= 0 {
			continue
		}
		pub = new(big.Int).Exp(g.g, x, g.p)
		// We must not send a value outside the range either (RFC 4253 §8).
		if g.validPublic(pub) {
			return x, pub, nil
		}
	}
	return nil, nil, &ConfigError{Reason: "cannot generate a DH key (bad random source or group)"}
}

// sharedK returns K = peer^x mod p encoded as an mpint (RFC 4253 §8: "K =
// f^x mod p"; "mpint K, the shared secret" in H).
func (g *dhGroup) sharedK(x, peer *big.Int) []byte {
	k := new(big.Int).Exp(peer, x, g.p)
	return wire.AppendMpint(make([]byte, 0, 4+1+(g.p.BitLen()+7)/8), k)
}

// dhExchange runs a fixed-group method (RFC 4253 §8):
//
//	client -> SSH_MSG_KEXDH_INIT  (mpint e)
//	server -> SSH_MSG_KEXDH_REPLY (string K_S, mpint f, string signature of H)
//	H = hash(V_C || V_S || I_C || I_S || K_S || e || f || K)
type dhExchange struct {
	*base
	group *dhGroup
	x, e  *big.Int // client: our exponent and e
}

func (e *dhExchange) Start() ([]byte, error) {
	if proceed, err := e.begin(); !proceed {
		return nil, err
	}
	x, pub, err := e.group.genKey(e.p.Rand)
	if err != nil {
		return nil, e.fail(0, err)
	}
	e.x, e.e = x, pub
	return (&wire.KexDHInit{E: pub}).Marshal(nil), nil
}

func (e *dhExchange) Handle(msg []byte) ([]byte, *Result, error) {
	if e.err != nil {
		return nil, nil, e.err
	}
	if e.p.Role == Server {
		return e.serverHandle(msg)
	}
	if !e.started || len(msg) == 0 || msg[0] != wire.MsgKexDHReply {
		return nil, nil, e.unexpected(msg)
	}
	var m wire.KexDHReply
	if err := m.Unmarshal(msg); err != nil {
		return nil, nil, e.protoErr(msg[0], "malformed message", err)
	}
	if !e.group.validPublic(m.F) {
		return nil, nil, e.protoErr(msg[0], "f out of range 1 < f < p-1", nil)
	}
	k := e.group.sharedK(e.x, m.F)
	h := dhHash(e.base, m.HostKey, nil, e.e, m.F, k)
	res, err := e.clientFinish(msg[0], m.HostKey, m.Signature, h, k)
	if err != nil {
		return nil, nil, err
	}
	return nil, res, nil
}

func (e *dhExchange) serverHandle(msg []byte) ([]byte, *Result, error) {
	if len(msg) == 0 || msg[0] != wire.MsgKexDHInit {
		return nil, nil, e.unexpected(msg)
	}
	var m wire.KexDHInit
	if err := m.Unmarshal(msg); err != nil {
		return nil, nil, e.protoErr(msg[0], "malformed message", err)
	}
	f, sig, res, err := dhServerReply(e.base, e.group, msg[0], m.E, nil)
	if err != nil {
		return nil, nil, err
	}
	return (&wire.KexDHReply{HostKey: e.hostKeyBlob, F: f, Signature: sig}).Marshal(nil), res, nil
}

// dhServerReply is the server's half of Diffie-Hellman, shared by the fixed
// groups (RFC 4253 §8) and group exchange (RFC 4419 §3, whose extra hash
// fields come in gexFields): check e, pick y, compute f = g^y mod p, K and
// H, and sign H.
func dhServerReply(b *base, g *dhGroup, t byte, e *big.Int, gexFields []byte) (f *big.Int, sig []byte, res *Result, err error) {
	// RFC 4253 §8: "Values of 'e' or 'f' that are not in the range
	// [1, p-1] MUST NOT be sent or accepted by either side."
	if !g.validPublic(e) {
		return nil, nil, nil, b.protoErr(t, "e out of range 1 < e < p-1", nil)
	}
	y, f, err := g.genKey(b.p.Rand)
	if err != nil {
		return nil, nil, nil, b.fail(0, err)
	}
	k := g.sharedK(y, e)
	h := dhHash(b, b.hostKeyBlob, gexFields, e, f, k)
	sig, res, err = b.serverFinish(h, k)
	if err != nil {
		return nil, nil, nil, err
	}
	return f, sig, res, nil
}
