package kex

import (
	"fmt"
	"strings"

	"sshtap/internal/wire"
)

// NegotiationError reports that no algorithm of one kind is common to both
// KEXINITs (RFC 4253 §7.1: "If no algorithm satisfying all these conditions
// can be found, the connection fails"). What is "kex", "host key",
// "cipher c2s", "cipher s2c", "mac c2s", "mac s2c", "compression c2s" or
// "compression s2c". Client and Server are the lists as offered.
type NegotiationError struct {
	What           string
	Client, Server []string
}

func (e *NegotiationError) Error() string {
	return fmt.Sprintf("sshtap: kex: no common %s algorithm; client offered [%s], server offered [%s]",
		e.What, strings.Join(e.Client, ","), strings.Join(e.Server, ","))
}

// SignatureError reports that the server's signature on the exchange hash is
// invalid, made with another algorithm than the negotiated one, or made with a
// host key that does not suit the negotiated algorithm.
type SignatureError struct {
	Algorithm string // negotiated host key algorithm
	Reason    string
	Err       error // underlying verification error, if any
}

func (e *SignatureError) Error() string {
	s := "sshtap: kex: host key signature (" + e.Algorithm + "): " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SignatureError) Unwrap() error { return e.Err }

// ProtocolError reports an unexpected or malformed method message, or a peer
// value (point, public value, group) that fails validation.
type ProtocolError struct {
	Method string
	Msg    byte // message type concerned; 0 when none
	Reason string
	Err    error // e.g. a *wire.DecodeError or a crypto error
}

func (e *ProtocolError) Error() string {
	s := "sshtap: kex: " + e.Method
	if e.Msg != 0 {
		s += ": " + methodMsgName(e.Method, e.Msg)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// ConfigError reports invalid local parameters (Params or Proposal).
type ConfigError struct{ Reason string }

func (e *ConfigError) Error() string { return "sshtap: kex: " + e.Reason }

// ModuliError reports a malformed line in a moduli file.
type ModuliError struct {
	Line   int
	Reason string
}

func (e *ModuliError) Error() string {
	return fmt.Sprintf("sshtap: kex: moduli line %d: %s", e.Line, e.Reason)
}

// methodMsgName names a method-specific message number (RFC 4251 §7: numbers
// 30..49 are reused by different methods) after the method's own RFC.
func methodMsgName(method string, t byte) string {
	m, ok := methods[method]
	if ok {
		switch {
		case m.kind == kindGEX:
			switch t {
			case wire.MsgKexDHGexRequestOld:
				return "SSH_MSG_KEX_DH_GEX_REQUEST_OLD"
			case wire.MsgKexDHGexGroup:
				return "SSH_MSG_KEX_DH_GEX_GROUP"
			case wire.MsgKexDHGexInit:
				return "SSH_MSG_KEX_DH_GEX_INIT"
			case wire.MsgKexDHGexReply:
				return "SSH_MSG_KEX_DH_GEX_REPLY"
			case wire.MsgKexDHGexRequest:
				return "SSH_MSG_KEX_DH_GEX_REQUEST"
			}
		case m.kind == kindKEM && t == wire.MsgKexECDHInit:
			return "SSH_MSG_KEX_ECDH_INIT"
		case m.kind == kindKEM && t == wire.MsgKexECDHReply:
			return "SSH_MSG_KEX_ECDH_REPLY"
		}
	}
	return wire.MsgName(t)
}
