package kex

import "sshtap/internal/wire"

// kem is the math of a method with one INIT/REPLY round of octet strings:
// ECDH (RFC 5656 §4), curve25519 (RFC 8731 §3) and the mlkem768x25519 hybrid.
// The client's value is Q_C (or C_INIT), the server's Q_S (or S_REPLY). Every
// returned K is already encoded as it enters the exchange hash.
type kem interface {
	// clientInit generates the client's ephemeral key and returns Q_C.
	clientInit() ([]byte, error)
	// serverReply validates Q_C, generates the server's ephemeral values and
	// returns Q_S and K.
	serverReply(qc []byte) (qs, k []byte, err error)
	// clientFinish validates Q_S and returns K.
	clientFinish(qs []byte) (k []byte, err error)
}

// badValue is the error a kem returns for a peer value that fails validation.
func badValue(reason string, err error) error {
	return &ProtocolError{Reason: reason, Err: err}
}

// kemExchange runs a kem method:
//
//	client -> SSH_MSG_KEX_ECDH_INIT  (string Q_C)
//	server -> SSH_MSG_KEX_ECDH_REPLY (string K_S, string Q_S, string signature on H)
//	H = HASH(V_C || V_S || I_C || I_S || K_S || string Q_C || string Q_S || K)
type kemExchange struct {
	*base
	kem kem
	qc  []byte // client: our Q_C, kept for H
}

func (e *kemExchange) Start() ([]byte, error) {
	if proceed, err := e.begin(); !proceed {
		return nil, err
	}
	qc, err := e.kem.clientInit()
	if err != nil {
		return nil, e.fail(0, err)
	}
	e.qc = qc
	return (&wire.KexECDHInit{ClientPub: qc}).Marshal(nil), nil
}

func (e *kemExchange) Handle(msg []byte) ([]byte, *Result, error) {
	if e.err != nil {
		return nil, nil, e.err
	}
	if e.p.Role == Server {
		return e.serverHandle(msg)
	}
	if !e.started || len(msg) == 0 || msg[0] != wire.MsgKexECDHReply {
		return nil, nil, e.unexpected(msg)
	}
	var m wire.KexECDHReply
	if err := m.Unmarshal(msg); err != nil {
		return nil, nil, e.protoErr(msg[0], "malformed message", err)
	}
	k, err := e.kem.clientFinish(m.ServerPub)
	if err != nil {
		return nil, nil, e.fail(msg[0], err)
	}
	h := e.hash(m.HostKey, e.qc, m.ServerPub, k)
	res, err := e.clientFinish(msg[0], m.HostKey, m.Signature, h, k)
	if err != nil {
		return nil, nil, err
	}
	return nil, res, nil
}

func (e *kemExchange) serverHandle(msg []byte) ([]byte, *Result, error) {
	if len(msg) == 0 || msg[0] != wire.MsgKexECDHInit {
		return nil, nil, e.unexpected(msg)
	}
	var m wire.KexECDHInit
	if err := m.Unmarshal(msg); err != nil {
		return nil, nil, e.protoErr(msg[0], "malformed message", err)
	}
	qs, k, err := e.kem.serverReply(m.ClientPub)
	if err != nil {
		return nil, nil, e.fail(msg[0], err)
	}
	h := e.hash(e.hostKeyBlob, m.ClientPub, qs, k)
	sig, res, err := e.serverFinish(h, k)
	if err != nil {
		return nil, nil, err
	}
	out := (&wire.KexECDHReply{HostKey: e.hostKeyBlob, ServerPub: qs, Signature: sig}).Marshal(nil)
	return out, res, nil
}
