package sshtap

import (
	"errors"
	"fmt"
	"net"
	"time"

	"sshtap/kex"
)

// DisconnectReason is a reason code of SSH_MSG_DISCONNECT (RFC 4250 §4.2.2).
type DisconnectReason uint32

// Disconnect reason codes, RFC 4250 §4.2.2.
const (
	DisconnectHostNotAllowedToConnect     DisconnectReason = 1
	DisconnectProtocolError               DisconnectReason = 2
	DisconnectKeyExchangeFailed           DisconnectReason = 3
	DisconnectReserved                    DisconnectReason = 4
	DisconnectMACError                    DisconnectReason = 5
	DisconnectCompressionError            DisconnectReason = 6
	DisconnectServiceNotAvailable         DisconnectReason = 7
	DisconnectProtocolVersionNotSupported DisconnectReason = 8
	DisconnectHostKeyNotVerifiable        DisconnectReason = 9
	DisconnectConnectionLost              DisconnectReason = 10
	DisconnectByApplication               DisconnectReason = 11
	DisconnectTooManyConnections          DisconnectReason = 12
	DisconnectAuthCancelledByUser         DisconnectReason = 13
	DisconnectNoMoreAuthMethodsAvailable  DisconnectReason = 14
	DisconnectIllegalUserName             DisconnectReason = 15
)

var disconnectReasonNames = [...]string{
	1:  "HOST_NOT_ALLOWED_TO_CONNECT",
	2:  "PROTOCOL_ERROR",
	3:  "KEY_EXCHANGE_FAILED",
	4:  "RESERVED",
	5:  "MAC_ERROR",
	6:  "COMPRESSION_ERROR",
	7:  "SERVICE_NOT_AVAILABLE",
	8:  "PROTOCOL_VERSION_NOT_SUPPORTED",
	9:  "HOST_KEY_NOT_VERIFIABLE",
	10: "CONNECTION_LOST",
	11: "BY_APPLICATION",
	12: "TOO_MANY_CONNECTIONS",
	13: "AUTH_CANCELLED_BY_USER",
	14: "NO_MORE_AUTH_METHODS_AVAILABLE",
	15: "ILLEGAL_USER_NAME",
}

// String returns the RFC 4250 name without the SSH_DISCONNECT_ prefix,
// or "UNKNOWN(n)".
func (r DisconnectReason) String() string {
	if int(r) < len(disconnectReasonNames) && disconnectReasonNames[r] != "" {
		return disconnectReasonNames[r]
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint32(r))
}

// DisconnectError ends a connection that was closed by SSH_MSG_DISCONNECT,
// sent by the peer (Remote) or by this side (Conn.Disconnect, or a fatal
// condition this side detected and announced).
//
// A local DisconnectError matches net.ErrClosed with errors.Is: the
// connection was closed here.
type DisconnectError struct {
	Reason   DisconnectReason
	Message  string
	Language string
	Remote   bool
}

func (e *DisconnectError) Error() string {
	who := "local"
	if e.Remote {
		who = "remote"
	}
	return fmt.Sprintf("sshtap: %s disconnect: %s (%d): %q", who, e.Reason, uint32(e.Reason), e.Message)
}

// Unwrap makes a local disconnect match net.ErrClosed.
func (e *DisconnectError) Unwrap() error {
	if e.Remote {
		return nil
	}
	return net.ErrClosed
}

// MACError is the typed error that ends a connection after a MAC or AEAD
// tag failure (verdict Disconnect) or an undecryptable packet length.
type MACError struct {
	MACMismatch
}

func (e *MACError) Error() string {
	if !e.LengthAuthenticated {
		return fmt.Sprintf("sshtap: bad packet length %d on packet %d (%s, %s)", e.Length, e.Seq, e.Cipher, e.Mode)
	}
	mac := e.MAC
	if mac == "" {
		mac = "aead"
	}
	return fmt.Sprintf("sshtap: message authentication code incorrect on packet %d (length %d, %s/%s, %s)", e.Seq, e.Length, e.Cipher, mac, e.Mode)
}

// NegotiationError reports that the two sides share no algorithm of one kind;
// it names both lists (RFC 4253 §7.1).
type NegotiationError = kex.NegotiationError

// StrictKexError reports a violation of strict key exchange
// (kex-strict-*-v00@openssh.com, the Terrapin countermeasure).
type StrictKexError struct {
	Msg string
}

func (e *StrictKexError) Error() string { return "sshtap: strict kex violation: " + e.Msg }

// LoginStage is how far a client got before the server's login grace time
// ran out.
type LoginStage uint8

const (
	// StageVersion: the client's identification string had not arrived.
	StageVersion LoginStage = iota + 1
	// StageKex: the first key exchange had not completed.
	StageKex
	// StageAuth: user authentication (the service request included) had
	// not succeeded.
	StageAuth
)

func (s LoginStage) String() string {
	switch s {
	case StageVersion:
		return "version exchange"
	case StageKex:
		return "key exchange"
	case StageAuth:
		return "user authentication"
	}
	return fmt.Sprintf("LoginStage(%d)", uint8(s))
}

// LoginGraceError is a server Conn's error when a client did not
// authenticate within ServerConfig.LoginGraceTime of the Conn's creation.
type LoginGraceError struct {
	Grace time.Duration
	Stage LoginStage // where the client stalled
}

func (e *LoginGraceError) Error() string {
	return fmt.Sprintf("sshtap: login grace time (%v) exceeded in the %s", e.Grace, e.Stage)
}

// ProtocolViolation reports a message the peer may not send at this point or
// one that does not parse.
type ProtocolViolation struct {
	Msg string
	Err error
}

func (e *ProtocolViolation) Error() string {
	if e.Err != nil {
		return "sshtap: protocol error: " + e.Msg + ": " + e.Err.Error()
	}
	return "sshtap: protocol error: " + e.Msg
}

func (e *ProtocolViolation) Unwrap() error { return e.Err }

// VersionError reports a failed version exchange (RFC 4253 §4.2): no
// identification line, a line that is too long, or an unsupported version.
type VersionError struct {
	Msg  string
	Line string // the offending line, if any, truncated to 80 bytes
	Err  error  // the underlying I/O error, if any
}

func (e *VersionError) Error() string {
	switch {
	case e.Line != "":
		return fmt.Sprintf("sshtap: version exchange: %s: %q", e.Msg, e.Line)
	case e.Err != nil:
		return "sshtap: version exchange: " + e.Msg + ": " + e.Err.Error()
	}
	return "sshtap: version exchange: " + e.Msg
}

func (e *VersionError) Unwrap() error { return e.Err }

// HostKeyError wraps the error returned by a HostKeyCallback that rejected
// the server's host key.
type HostKeyError struct {
	Err error
}

func (e *HostKeyError) Error() string { return "sshtap: host key rejected: " + e.Err.Error() }
func (e *HostKeyError) Unwrap() error { return e.Err }

// ErrPingUnsupported is returned by Conn.Ping when the peer did not announce
// ping@openssh.com in its EXT_INFO.
var ErrPingUnsupported = errors.New("sshtap: peer does not support ping@openssh.com")

// ErrRekeyRefused is returned by Conn.Rekey when the peer answered our
// KEXINIT with SSH_MSG_UNIMPLEMENTED (OpenSSH does so before user
// authentication). The connection goes on with the old keys.
var ErrRekeyRefused = errors.New("sshtap: peer refused to rekey (answered KEXINIT with UNIMPLEMENTED)")

// ErrRekeyBeforeAuth is returned by a server's Conn.Rekey before the client
// authenticated: OpenSSH clients cannot rekey before authentication, so
// sshtap servers never start one then (byte and time limits wait too).
var ErrRekeyBeforeAuth = errors.New("sshtap: a server does not rekey before user authentication")

// ErrWouldBlock is returned by a FuncReadWriter's Send or Recv func to mean
// "nothing could be done now, call again" (libssh2's LIBSSH2_ERROR_EAGAIN).
var ErrWouldBlock = errors.New("sshtap: operation would block")

// errClosed is the sticky error of a connection closed with Close.
var errClosed = fmt.Errorf("sshtap: connection closed: %w", net.ErrClosed)
