package kex

import (
	"encoding/binary"
	"io"
	"math/big"

	"sshtap/internal/wire"
)

// Group exchange size limits. RFC 8270 raises the minimum modulus size of
// RFC 4419 from 1024 to 2048 bits for both the request and the group sent;
// OpenSSH's DH_GRP_MIN/DH_GRP_MAX are 2048 and 8192.
const (
	GexMinBits     = 2048
	GexDefaultBits = 3072
	GexMaxBits     = 8192
)

// builtinGexGroups are served when Params.Groups is nil, and used as the
// fallback when no configured group fits (as OpenSSH falls back to its
// built-in groups when /etc/ssh/moduli has no match).
var builtinGexGroups = []GexGroup{
	{group14.p, group14.g}, {group15.p, group15.g}, {group16.p, group16.g},
	{group17.p, group17.g}, {group18.p, group18.g},
}

// BuiltinGroups returns a copy of the built-in group exchange groups: the RFC
// 3526 2048, 3072, 4096, 6144 and 8192-bit MODP groups with generator 2.
func BuiltinGroups() []GexGroup {
	out := make([]GexGroup, len(builtinGexGroups))
	for i, g := range builtinGexGroups {
		out[i] = GexGroup{new(big.Int).Set(g.P), new(big.Int).Set(g.G)}
	}
	return out
}

type gexState uint8

const (
	gexWantRequest gexState = iota // server
	gexWantGroup                   // client
	gexWantInit                    // server
	gexWantReply                   // client
)

// gexExchange runs diffie-hellman-group-exchange-sha256 and the legacy
// diffie-hellman-group-exchange-sha1 (RFC 4419 §3 and §4.1, which differ
// only in HASH; both with RFC 8270's sizes, as OpenSSH applies them to
// both):
//
//	client -> SSH_MSG_KEY_DH_GEX_REQUEST (uint32 min, n, max)   [or REQUEST_OLD: uint32 n]
//	server -> SSH_MSG_KEX_DH_GEX_GROUP   (mpint p, mpint g)
//	client -> SSH_MSG_KEX_DH_GEX_INIT    (mpint e)
//	server -> SSH_MSG_KEX_DH_GEX_REPLY   (string K_S, mpint f, string signature of H)
//	H = hash(V_C || V_S || I_C || I_S || K_S || min || n || max || p || g || e || f || K)
//
// With REQUEST_OLD only n is hashed in place of min || n || max (RFC 4419 §5).
type gexExchange struct {
	*base
	state       gexState
	min, n, max uint32 // as requested by the client (hashed as sent)
	old         bool   // server: the client used REQUEST_OLD
	group       *dhGroup
	x, e        *big.Int // client: exponent and e
	groups      []GexGroup
}

func newGexExchange(b *base) (Exchange, error) {
	e := &gexExchange{base: b}
	if b.p.Role == Client {
		e.min, e.n, e.max = b.p.GexMin, b.p.GexN, b.p.GexMax
		if e.min == 0 {
			e.min = GexMinBits
		}
		if e.n == 0 {
			e.n = max(GexDefaultBits, e.min)
		}
		if e.max == 0 {
			e.max = GexMaxBits
		}
		if e.min > e.n || e.n > e.max {
			return nil, &ConfigError{Reason: "GEX request needs GexMin <= GexN <= GexMax"}
		}
		e.state = gexWantGroup
		return e, nil
	}
	for _, g := range b.p.Groups {
		if g.P == nil || g.G == nil || g.P.Bit(0) == 0 || g.P.BitLen() < 16 {
			return nil, &ConfigError{Reason: "GEX group with a missing or even modulus"}
		}
		if g.G.Cmp(bigOne) <= 0 || g.G.Cmp(new(big.Int).Sub(g.P, bigOne)) >= 0 {
			return nil, &ConfigError{Reason: "GEX group generator out of range"}
		}
	}
	e.groups = b.p.Groups
	e.state = gexWantRequest
	return e, nil
}

func (e *gexExchange) Start() ([]byte, error) {
	if proceed, err := e.begin(); !proceed {
		return nil, err
	}
	// RFC 4419 §3 step 1: "C sends 'min || n || max' to S".
	return (&wire.KexDHGexRequest{Min: e.min, N: e.n, Max: e.max}).Marshal(nil), nil
}

func (e *gexExchange) Handle(msg []byte) ([]byte, *Result, error) {
	if e.err != nil {
		return nil, nil, e.err
	}
	var t byte
	if len(msg) > 0 {
		t = msg[0]
	}
	switch {
	case e.p.Role == Client && e.started && e.state == gexWantGroup && t == wire.MsgKexDHGexGroup:
		out, err := e.clientGroup(msg)
		return out, nil, err
	case e.p.Role == Client && e.state == gexWantReply && t == wire.MsgKexDHGexReply:
		res, err := e.clientReply(msg)
		return nil, res, err
	case e.p.Role == Server && e.state == gexWantRequest &&
		(t == wire.MsgKexDHGexRequest || t == wire.MsgKexDHGexRequestOld):
		out, err := e.serverRequest(msg)
		return out, nil, err
	case e.p.Role == Server && e.state == gexWantInit && t == wire.MsgKexDHGexInit:
		return e.serverInit(msg)
	}
	return nil, nil, e.unexpected(msg)
}

func (e *gexExchange) clientGroup(msg []byte) ([]byte, error) {
	var m wire.KexDHGexGroup
	if err := m.Unmarshal(msg); err != nil {
		return nil, e.protoErr(msg[0], "malformed message", err)
	}
	// RFC 4419 §3 step 2 leaves the check to the client; OpenSSH (kexgexc.c)
	// refuses a p whose size lies outside the requested [min, max]
	// ("DH_GEX group out of range").
	if m.P.Sign() <= 0 || m.P.Bit(0) == 0 {
		return nil, e.protoErr(msg[0], "p is not an odd positive number", nil)
	}
	if bits := m.P.BitLen(); bits < int(e.min) || bits > int(e.max) {
		return nil, e.protoErr(msg[0], "group size out of the requested range", nil)
	}
	g := newDHGroup(m.P, m.G)
	if !g.validPublic(m.G) {
		return nil, e.protoErr(msg[0], "generator out of range 1 < g < p-1", nil)
	}
	x, pub, err := g.genKey(e.p.Rand)
	if err != nil {
		return nil, e.fail(0, err)
	}
	e.group, e.x, e.e = g, x, pub
	e.state = gexWantReply
	// Step 3: "C generates a random number x, where 1 < x < (p-1)/2. It
	// computes e = g^x mod p, and sends 'e' to S."
	return (&wire.KexDHGexInit{E: pub}).Marshal(nil), nil
}

func (e *gexExchange) clientReply(msg []byte) (*Result, error) {
	var m wire.KexDHGexReply
	if err := m.Unmarshal(msg); err != nil {
		return nil, e.protoErr(msg[0], "malformed message", err)
	}
	if !e.group.validPublic(m.F) {
		return nil, e.protoErr(msg[0], "f out of range 1 < f < p-1", nil)
	}
	k := e.group.sharedK(e.x, m.F)
	h := dhHash(e.base, m.HostKey, e.gexFields(), e.e, m.F, k)
	return e.clientFinish(msg[0], m.HostKey, m.Signature, h, k)
}

// gexFields encodes the hashed request and group: "uint32 min, uint32 n,
// uint32 max, mpint p, mpint g" (RFC 4419 §3), or "uint32 n, mpint p, mpint
// g" after a REQUEST_OLD (§5).
func (e *gexExchange) gexFields() []byte {
	b := make([]byte, 0, 12+2*(e.group.p.BitLen()/8+6))
	if !e.old {
		b = wire.AppendUint32(b, e.min)
	}
	b = wire.AppendUint32(b, e.n)
	if !e.old {
		b = wire.AppendUint32(b, e.max)
	}
	b = wire.AppendMpint(b, e.group.p)
	return wire.AppendMpint(b, e.group.g)
}

func (e *gexExchange) serverRequest(msg []byte) ([]byte, error) {
	lo, want, hi := uint32(GexMinBits), uint32(0), uint32(GexMaxBits)
	if msg[0] == wire.MsgKexDHGexRequestOld {
		var m wire.KexDHGexRequestOld
		if err := m.Unmarshal(msg); err != nil {
			return nil, e.protoErr(msg[0], "malformed message", err)
		}
		e.old, e.n, want = true, m.N, m.N
	} else {
		var m wire.KexDHGexRequest
		if err := m.Unmarshal(msg); err != nil {
			return nil, e.protoErr(msg[0], "malformed message", err)
		}
		// RFC 4419 §3: min <= n <= max is what the client promises;
		// OpenSSH (kexgexs.c) refuses a request violating it.
		if m.Min > m.N || m.N > m.Max {
			return nil, e.protoErr(msg[0], "request violates min <= n <= max", nil)
		}
		e.min, e.n, e.max = m.Min, m.N, m.Max
		lo, want, hi = max(m.Min, GexMinBits), m.N, min(m.Max, GexMaxBits)
	}
	// Clamp like OpenSSH (kexgexs.c): min to at least 2048 (RFC 8270), max
	// to at most 8192, n into [2048, 8192].
	want = min(max(want, GexMinBits), GexMaxBits)
	if lo > hi {
		return nil, e.protoErr(msg[0], "no group size acceptable to both sides", nil)
	}
	groups := e.groups
	if groups == nil {
		groups = builtinGexGroups
	}
	g, err := chooseGroup(groups, lo, want, hi, e.p.Rand)
	if err == nil && g == nil && e.groups != nil {
		g, err = chooseGroup(builtinGexGroups, lo, want, hi, e.p.Rand)
	}
	if err != nil {
		return nil, e.fail(0, err)
	}
	if g == nil {
		return nil, e.protoErr(msg[0], "no group in the requested size range", nil)
	}
	e.group = newDHGroup(g.P, g.G)
	e.state = gexWantInit
	// RFC 4419 §3 step 2: "S finds a group that best matches the client's
	// request, and sends 'p || g' to C."
	return (&wire.KexDHGexGroup{P: g.P, G: g.G}).Marshal(nil), nil
}

func (e *gexExchange) serverInit(msg []byte) ([]byte, *Result, error) {
	var m wire.KexDHGexInit
	if err := m.Unmarshal(msg); err != nil {
		return nil, nil, e.protoErr(msg[0], "malformed message", err)
	}
	f, sig, res, err := dhServerReply(e.base, e.group, msg[0], m.E, e.gexFields())
	if err != nil {
		return nil, nil, err
	}
	return (&wire.KexDHGexReply{HostKey: e.hostKeyBlob, F: f, Signature: sig}).Marshal(nil), res, nil
}

// chooseGroup picks, among the groups whose modulus has lo..hi bits, the
// smallest one of at least want bits, or failing that the largest one; ties
// are broken at random (OpenSSH dh.c choose_dh). It returns nil when no group
// fits.
func chooseGroup(groups []GexGroup, lo, want, hi uint32, rnd io.Reader) (*GexGroup, error) {
	best := -1
	var ties []int
	for i := range groups {
		bits := groups[i].P.BitLen()
		if bits < int(lo) || bits > int(hi) {
			continue
		}
		if best < 0 {
			best, ties = bits, append(ties[:0], i)
			continue
		}
		switch {
		case bits == best:
			ties = append(ties, i)
		case best < int(want) && bits > best, best >= int(want) && bits >= int(want) && bits < best:
			best, ties = bits, append(ties[:0], i)
		}
	}
	if best < 0 {
		return nil, nil
	}
	pick := 0
	if len(ties) > 1 {
		var b [4]byte
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, &ConfigError{Reason: "reading random group choice: " + err.Error()}
		}
		pick = int(binary.BigEndian.Uint32(b[:]) % uint32(len(ties)))
	}
	return &groups[ties[pick]], nil
}

// GexPreferredBits returns the group size a client asks for (GexN) given a
// strength in bits (OpenSSH dh.c dh_estimate): up to 112 bits -> 2048, up to
// 128 -> 3072, up to 192 -> 7680, otherwise 8192. OpenSSH feeds it 8 times the
// largest of the negotiated cipher's key, block and IV sizes and the MAC key
// size, so AES-256, chacha20-poly1305 or any hmac-sha2 MAC ask for 8192.
func GexPreferredBits(cipherStrengthBits int) uint32 {
	switch {
	case cipherStrengthBits <= 112:
		return 2048
	case cipherStrengthBits <= 128:
		return 3072
	case cipherStrengthBits <= 192:
		return 7680
	}
	return 8192
}
