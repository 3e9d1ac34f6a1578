package kex

import (
	"crypto"
	"crypto/rand"
	_ "crypto/sha1" // registers crypto.SHA1 for the legacy SHA-1 methods
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"io"
	"math/big"
	"slices"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

// Params configures one key exchange for one role. NewExchange copies what
// it keeps (including the byte slices), so the caller may reuse its buffers
// afterwards.
type Params struct {
	Role        Role
	Method      string // negotiated kex method (Algorithms.Kex)
	HostKeyAlgo string // negotiated host key algorithm (Algorithms.HostKey)
	// Rand supplies the KEXINIT-independent randomness this package draws
	// itself (DH exponents, group choice, signatures where the signer honours
	// it); nil means crypto/rand. Since Go 1.26 crypto/ecdh and crypto/mlkem
	// key generation always use the system source.
	Rand io.Reader

	ClientVersion, ServerVersion []byte // identification strings without CR LF (V_C, V_S)
	ClientKexInit, ServerKexInit []byte // exact KEXINIT payloads as sent/received (I_C, I_S), starting with byte 20

	HostKey ssh.Signer // server only; an ssh.AlgorithmSigner is required for rsa-sha2-*

	Groups []GexGroup // server GEX groups; nil = the built-in RFC 3526 groups 2048..8192 bits

	// Client GEX request (RFC 4419 §3); zero values mean 2048, 3072 and 8192.
	// The root derives GexN from cipher strength as OpenSSH does.
	GexMin, GexN, GexMax uint32
}

// GexGroup is one Diffie-Hellman group offered by a group exchange server.
type GexGroup struct{ P, G *big.Int }

// Exchange runs one key exchange method for one role as a message-driven
// state machine. It performs no I/O and starts no goroutines. An Exchange is
// used by one goroutine, for one key exchange: call Start once, then Handle
// with each received method message until it returns a Result. After an error
// or a Result every further call fails.
type Exchange interface {
	// Start returns the first message to send, or nil (the server waits).
	// A client must call it exactly once before Handle; for a server it is
	// optional and returns nil.
	Start() ([]byte, error)
	// Handle consumes one received method message (type 30..49; msg is the
	// whole payload and is not retained) and returns a message to send (may
	// be nil) and, when the exchange is complete, the result. A server's
	// final reply and its Result come back together.
	Handle(msg []byte) (out []byte, res *Result, err error)
}

// Result is the outcome of a completed exchange. Its slices are owned by the
// caller.
type Result struct {
	H    []byte      // exchange hash; the first one is the session_id (RFC 4253 §7.2)
	K    []byte      // shared secret encoded exactly as hashed: mpint or string, with its length prefix
	Hash crypto.Hash // the method's HASH, for DeriveKey
	// HostKey is the server's host key (parsed K_S; an *ssh.Certificate for
	// cert algorithms). On the client its signature on H has been verified
	// with the negotiated algorithm; checking that the key is trusted is the
	// caller's job.
	HostKey     ssh.PublicKey
	HostKeyBlob []byte // K_S
}

type methodKind uint8

const (
	kindKEM methodKind = iota // one INIT/REPLY round carrying octet strings (ECDH, X25519, hybrids)
	kindDH                    // fixed-group Diffie-Hellman (RFC 4253 §8)
	kindGEX                   // group exchange (RFC 4419)
)

type method struct {
	name   string
	hash   crypto.Hash
	kind   methodKind
	newKEM func() kem // kindKEM
	group  *dhGroup   // kindDH
}

var methods = map[string]*method{
	Curve25519SHA256:       {Curve25519SHA256, crypto.SHA256, kindKEM, newX25519KEM, nil},
	Curve25519SHA256LibSSH: {Curve25519SHA256LibSSH, crypto.SHA256, kindKEM, newX25519KEM, nil},
	ECDHP256:               {ECDHP256, crypto.SHA256, kindKEM, newP256KEM, nil},
	ECDHP384:               {ECDHP384, crypto.SHA384, kindKEM, newP384KEM, nil},
	ECDHP521:               {ECDHP521, crypto.SHA512, kindKEM, newP521KEM, nil},
	MLKEM768X25519:         {MLKEM768X25519, crypto.SHA256, kindKEM, newMLKEMKEM, nil},
	Sntrup761X25519:        {Sntrup761X25519, crypto.SHA512, kindKEM, newSntrupKEM, nil},
	Sntrup761X25519OpenSSH: {Sntrup761X25519OpenSSH, crypto.SHA512, kindKEM, newSntrupKEM, nil},
	DHGroup1SHA1:           {DHGroup1SHA1, crypto.SHA1, kindDH, nil, group1},
	DHGroup14SHA1:          {DHGroup14SHA1, crypto.SHA1, kindDH, nil, group14},
	DHGroup14SHA256:        {DHGroup14SHA256, crypto.SHA256, kindDH, nil, group14},
	DHGroup16SHA512:        {DHGroup16SHA512, crypto.SHA512, kindDH, nil, group16},
	DHGroup18SHA512:        {DHGroup18SHA512, crypto.SHA512, kindDH, nil, group18},
	DHGexSHA256:            {DHGexSHA256, crypto.SHA256, kindGEX, nil, nil},
	DHGexSHA1:              {DHGexSHA1, crypto.SHA1, kindGEX, nil, nil},
}

// MethodHash returns the HASH of a supported kex method.
func MethodHash(method string) (crypto.Hash, bool) {
	m, ok := methods[method]
	if !ok {
		return 0, false
	}
	return m.hash, true
}

// NewExchange validates p and returns the state machine for p.Method and
// p.Role.
func NewExchange(p *Params) (Exchange, error) {
	if p == nil {
		return nil, &ConfigError{Reason: "nil Params"}
	}
	m, ok := methods[p.Method]
	if !ok {
		return nil, &ConfigError{Reason: "unsupported kex method " + p.Method}
	}
	if p.Role != Client && p.Role != Server {
		return nil, &ConfigError{Reason: "invalid role"}
	}
	if _, ok := hostKeyAlgos[p.HostKeyAlgo]; !ok {
		return nil, &ConfigError{Reason: "unsupported host key algorithm " + p.HostKeyAlgo}
	}
	if len(p.ClientKexInit) == 0 || p.ClientKexInit[0] != wire.MsgKexInit ||
		len(p.ServerKexInit) == 0 || p.ServerKexInit[0] != wire.MsgKexInit {
		return nil, &ConfigError{Reason: "ClientKexInit and ServerKexInit must be KEXINIT payloads"}
	}
	b := &base{m: m, p: *p}
	b.p.ClientVersion = slices.Clone(p.ClientVersion)
	b.p.ServerVersion = slices.Clone(p.ServerVersion)
	b.p.ClientKexInit = slices.Clone(p.ClientKexInit)
	b.p.ServerKexInit = slices.Clone(p.ServerKexInit)
	if b.p.Rand == nil {
		b.p.Rand = rand.Reader
	}
	if p.Role == Server {
		if p.HostKey == nil {
			return nil, &ConfigError{Reason: "server needs a HostKey"}
		}
		if !Has(HostKeyAlgorithms(p.HostKey, true), p.HostKeyAlgo) {
			return nil, &ConfigError{Reason: "host key of type " + p.HostKey.PublicKey().Type() + " cannot serve " + p.HostKeyAlgo}
		}
		b.hostKeyBlob = p.HostKey.PublicKey().Marshal()
	}
	switch m.kind {
	case kindKEM:
		return &kemExchange{base: b, kem: m.newKEM()}, nil
	case kindDH:
		return &dhExchange{base: b, group: m.group}, nil
	default:
		return newGexExchange(b)
	}
}

// base holds what every method shares: parameters, the sticky error and the
// final steps (hash, sign, verify).
type base struct {
	m           *method
	p           Params
	hostKeyBlob []byte // server: our K_S
	err         error  // sticky: first failure, or errDone
	started     bool   // client: Start was called
}

// begin implements the common part of Start: the sticky error, a second
// Start on a client (an error), and the server, for which Start is optional
// and does nothing. It reports whether the client should build its first
// message.
func (b *base) begin() (proceed bool, err error) {
	if b.err != nil {
		return false, b.err
	}
	if b.p.Role == Server {
		return false, nil
	}
	if b.started {
		return false, b.fail(0, &ConfigError{Reason: "Start called twice"})
	}
	b.started = true
	return true, nil
}

var errDone = &ConfigError{Reason: "exchange already finished"}

// fail records err (filling in the method and message of a *ProtocolError)
// and returns it; every later call returns it too.
func (b *base) fail(msg byte, err error) error {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		if pe.Method == "" {
			pe.Method = b.m.name
		}
		if pe.Msg == 0 {
			pe.Msg = msg
		}
	}
	b.err = err
	return err
}

// protoErr builds a *ProtocolError for this method.
func (b *base) protoErr(msg byte, reason string, err error) error {
	return b.fail(msg, &ProtocolError{Method: b.m.name, Msg: msg, Reason: reason, Err: err})
}

// unexpected reports a message that is not valid in the current state.
// RFC 4253 §7.1 / §11: during key exchange only the method's messages in
// sequence are valid; OpenSSH disconnects on anything else.
func (b *base) unexpected(msg []byte) error {
	var t byte
	if len(msg) > 0 {
		t = msg[0]
	}
	return b.protoErr(t, "unexpected message", nil)
}

// serverFinish signs H and builds the Result for the server.
func (b *base) serverFinish(h, k []byte) ([]byte, *Result, error) {
	sig, err := signH(b.p.HostKey, b.p.HostKeyAlgo, b.p.Rand, h)
	if err != nil {
		return nil, nil, b.fail(0, err)
	}
	b.err = errDone
	return sig, &Result{H: h, K: k, Hash: b.m.hash, HostKey: b.p.HostKey.PublicKey(), HostKeyBlob: slices.Clone(b.hostKeyBlob)}, nil
}

// clientFinish verifies the server's signature on H and builds the Result.
func (b *base) clientFinish(msg byte, ks, sig, h, k []byte) (*Result, error) {
	ks = slices.Clone(ks) // ssh.ParsePublicKey may alias its input; msg may be reused
	key, err := verifyH(b.p.HostKeyAlgo, ks, sig, h)
	if err != nil {
		return nil, b.fail(msg, err)
	}
	b.err = errDone
	return &Result{H: h, K: k, Hash: b.m.hash, HostKey: key, HostKeyBlob: ks}, nil
}
