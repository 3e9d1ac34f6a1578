// Package socks decodes what a SOCKS client sends to a SOCKS server and
// encodes the server's replies, for SOCKS 4, its 4a extension and SOCKS 5
// (RFC 1928) with the CONNECT command. It is the codec of sshtap's dynamic
// forwarding (-D): pure byte-in/byte-out, no I/O and no goroutines.
//
// Decoders are cursor readers: they take the bytes received so far and
// return the decoded value and the bytes after it, ErrIncomplete when more
// bytes are needed, or a *FormatError when the bytes cannot be a valid
// message. Every variable-length field is bounded (at most 255 bytes), so a
// complete handshake never exceeds MaxHandshake bytes: a caller that reads
// into a buffer of that size and still gets ErrIncomplete when it is full
// has a broken client.
package socks

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Protocol versions: the first byte of every client message.
const (
	Version4 = 0x04
	Version5 = 0x05
)

// SOCKS 5 authentication methods (RFC 1928 §3).
const (
	MethodNoAuth       = 0x00 // NO AUTHENTICATION REQUIRED
	MethodNoAcceptable = 0xff // NO ACCEPTABLE METHODS
)

// Commands (RFC 1928 §4; SOCKS 4 has CONNECT and BIND with the same codes).
const (
	CommandConnect      = 0x01
	CommandBind         = 0x02
	CommandUDPAssociate = 0x03 // SOCKS 5 only
)

// SOCKS 5 address types (RFC 1928 §4).
const (
	AddrIPv4   = 0x01
	AddrDomain = 0x03
	AddrIPv6   = 0x04
)

// Reply is a SOCKS 5 reply code (RFC 1928 §6, field REP).
type Reply byte

// SOCKS 5 reply codes (RFC 1928 §6).
const (
	ReplySucceeded               Reply = 0x00
	ReplyGeneralFailure          Reply = 0x01
	ReplyNotAllowed              Reply = 0x02 // connection not allowed by ruleset
	ReplyNetworkUnreachable      Reply = 0x03
	ReplyHostUnreachable         Reply = 0x04
	ReplyConnectionRefused       Reply = 0x05
	ReplyTTLExpired              Reply = 0x06
	ReplyCommandNotSupported     Reply = 0x07
	ReplyAddressTypeNotSupported Reply = 0x08
)

var replyNames = [...]string{
	"succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
	"network unreachable", "host unreachable", "connection refused", "TTL expired",
	"command not supported", "address type not supported",
}

func (r Reply) String() string {
	if int(r) < len(replyNames) {
		return replyNames[r]
	}
	return "reply 0x" + strconv.FormatUint(uint64(r), 16)
}

// SOCKS 4 reply codes (field CD of the reply).
const (
	Reply4Granted  = 0x5a // request granted
	Reply4Rejected = 0x5b // request rejected or failed
)

// Bounds on variable-length fields. SOCKS 5 length prefixes are one byte;
// SOCKS 4's NUL-terminated USERID and 4a's host name have no stated limit,
// so they get the same one.
const (
	MaxField = 255
	// MaxHandshake is the most a valid client sends before the server's
	// reply to its request: a SOCKS 4a request (8 + USERID and host name,
	// each with its NUL), one byte longer than a SOCKS 5 greeting (2+255)
	// and request (4+1+255+2).
	MaxHandshake = 8 + 2*(MaxField+1)
)

// ErrIncomplete means the bytes are a valid beginning of a message that
// needs more bytes.
var ErrIncomplete = errors.New("socks: incomplete message")

// FormatError is a message that no valid client sends.
type FormatError struct {
	Msg string
}

func (e *FormatError) Error() string { return "socks: " + e.Msg }

func formatErr(format string, a ...any) error {
	return &FormatError{Msg: fmt.Sprintf(format, a...)}
}

// AddressTypeError is a SOCKS 5 request with an address type other than
// IPv4, domain name or IPv6: its length is unknown, so the request cannot
// be read; the server answers ReplyAddressTypeNotSupported and closes
// (RFC 1928 §6).
type AddressTypeError struct {
	Type byte
}

func (e *AddressTypeError) Error() string {
	return fmt.Sprintf("socks: address type 0x%02x not supported", e.Type)
}

// Greeting is a SOCKS 5 client's version identifier/method selection
// message (RFC 1928 §3). Methods aliases the decoded bytes.
type Greeting struct {
	Methods []byte
}

// Offers reports whether the client offered method m.
func (g Greeting) Offers(m byte) bool { return bytes.IndexByte(g.Methods, m) >= 0 }

// ParseGreeting decodes a SOCKS 5 greeting:
//
//	+----+----------+----------+
//	|VER | NMETHODS | METHODS  |
//	+----+----------+----------+
//	| 1  |    1     | 1 to 255 |
//	+----+----------+----------+
func ParseGreeting(b []byte) (Greeting, []byte, error) {
	if len(b) < 2 {
		if len(b) == 1 && b[0] != Version5 {
			return Greeting{}, b, formatErr("version %d, want 5", b[0])
		}
		return Greeting{}, b, ErrIncomplete
	}
	if b[0] != Version5 {
		return Greeting{}, b, formatErr("version %d, want 5", b[0])
	}
	// RFC 1928 §3 has METHODS hold 1 to 255 octets; a greeting with
	// none is still read, and gets NO ACCEPTABLE METHODS like any greeting
	// without one the server supports.
	n := int(b[1])
	if len(b) < 2+n {
		return Greeting{}, b, ErrIncomplete
	}
	return Greeting{Methods: b[2 : 2+n]}, b[2+n:], nil
}

// AppendMethod appends the server's METHOD selection message (RFC 1928
// §3): VER 5 and the chosen method, MethodNoAcceptable for none.
func AppendMethod(b []byte, method byte) []byte {
	return append(b, Version5, method)
}

// Request is a client's connection request.
type Request struct {
	Version  byte // Version4 (also for 4a) or Version5
	Command  byte // CommandConnect, CommandBind, CommandUDPAssociate
	AddrType byte // AddrIPv4, AddrDomain (also SOCKS 4a) or AddrIPv6
	// Host is an IP address in its textual form, or the domain name as
	// the client sent it, not resolved: the server side resolves it.
	Host   string
	Port   uint16
	UserID string // SOCKS 4 USERID; empty for SOCKS 5
}

// Addr is host:port, with brackets around an IPv6 address.
func (r Request) Addr() string {
	return net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
}

// ParseRequest4 decodes a SOCKS 4 or 4a request:
//
//	+----+----+---------+--------+------------+------+
//	| VN | CD | DSTPORT | DSTIP  | USERID     | NULL |
//	+----+----+---------+--------+------------+------+
//	| 1  | 1  |    2    |   4    | variable   |  1   |
//	+----+----+---------+--------+------------+------+
//
// With SOCKS 4a a DSTIP of 0.0.0.x, x not zero, means the domain name
// follows the USERID's NUL, itself NUL-terminated.
func ParseRequest4(b []byte) (Request, []byte, error) {
	var r Request
	if len(b) >= 1 && b[0] != Version4 {
		return r, b, formatErr("version %d, want 4", b[0])
	}
	if len(b) < 8 {
		return r, b, ErrIncomplete
	}
	r.Version, r.Command = Version4, b[1]
	r.Port = uint16(b[2])<<8 | uint16(b[3])
	ip := [4]byte(b[4:8])
	rest := b[8:]
	user, rest, err := cString(rest, "USERID")
	if err != nil {
		return Request{}, b, err
	}
	r.UserID = user
	if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
		// SOCKS 4a: "0.0.0.x with x nonzero, an inadmissible destination
		// address", says the server must read the domain name after the
		// USERID.
		host, after, err := cString(rest, "host name")
		if err != nil {
			return Request{}, b, err
		}
		if host == "" {
			return Request{}, b, formatErr("empty SOCKS 4a host name")
		}
		r.AddrType, r.Host, rest = AddrDomain, host, after
	} else {
		r.AddrType, r.Host = AddrIPv4, netip.AddrFrom4(ip).String()
	}
	return r, rest, nil
}

// cString reads a NUL-terminated field of at most MaxField bytes.
func cString(b []byte, what string) (string, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		if len(b) > MaxField {
			return "", b, formatErr("%s longer than %d bytes", what, MaxField)
		}
		return "", b, ErrIncomplete
	}
	if i > MaxField {
		return "", b, formatErr("%s longer than %d bytes", what, MaxField)
	}
	return string(b[:i]), b[i+1:], nil
}

// ParseRequest5 decodes a SOCKS 5 request (RFC 1928 §4):
//
//	+----+-----+-------+------+----------+----------+
//	|VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
//	+----+-----+-------+------+----------+----------+
//	| 1  |  1  | X'00' |  1   | Variable |    2     |
//	+----+-----+-------+------+----------+----------+
//
// An unknown ATYP is an *AddressTypeError. RSV is not checked: RFC 1928
// only calls it reserved, and clients are known to leave garbage in it.
func ParseRequest5(b []byte) (Request, []byte, error) {
	var r Request
	if len(b) >= 1 && b[0] != Version5 {
		return r, b, formatErr("version %d, want 5", b[0])
	}
	if len(b) < 4 {
		return r, b, ErrIncomplete
	}
	r.Version, r.Command, r.AddrType = Version5, b[1], b[3]
	rest := b[4:]
	var addrLen int
	switch r.AddrType {
	case AddrIPv4:
		addrLen = 4
	case AddrIPv6:
		addrLen = 16
	case AddrDomain:
		if len(rest) < 1 {
			return Request{}, b, ErrIncomplete
		}
		addrLen = int(rest[0])
		if addrLen == 0 {
			return Request{}, b, formatErr("empty domain name")
		}
		rest = rest[1:]
	default:
		return Request{}, b, &AddressTypeError{Type: r.AddrType}
	}
	if len(rest) < addrLen+2 {
		return Request{}, b, ErrIncomplete
	}
	addr := rest[:addrLen]
	switch r.AddrType {
	case AddrIPv4:
		r.Host = netip.AddrFrom4([4]byte(addr)).String()
	case AddrIPv6:
		r.Host = netip.AddrFrom16([16]byte(addr)).String()
	default:
		// "the first octet of the address field contains the number of
		// octets of name that follow, there is no terminating NUL octet"
		// (RFC 1928 §5): a NUL inside the name is not a name.
		if bytes.IndexByte(addr, 0) >= 0 {
			return Request{}, b, formatErr("NUL in domain name")
		}
		r.Host = string(addr)
	}
	r.Port = uint16(rest[addrLen])<<8 | uint16(rest[addrLen+1])
	return r, rest[addrLen+2:], nil
}

// AppendReply5 appends a SOCKS 5 reply (RFC 1928 §6) with code rep and the
// bound address: its IPv4 or IPv6 form, 0.0.0.0 port 0 when bound is not
// valid (the server's address for a tunnelled connection means nothing to
// the client; OpenSSH sends the same).
//
//	+----+-----+-------+------+----------+----------+
//	|VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
//	+----+-----+-------+------+----------+----------+
func AppendReply5(b []byte, rep Reply, bound netip.AddrPort) []byte {
	b = append(b, Version5, byte(rep), 0)
	ip := bound.Addr().Unmap()
	switch {
	case ip.Is4():
		a := ip.As4()
		b = append(b, AddrIPv4)
		b = append(b, a[:]...)
	case ip.Is6():
		a := ip.As16()
		b = append(b, AddrIPv6)
		b = append(b, a[:]...)
	default:
		b = append(b, AddrIPv4, 0, 0, 0, 0)
	}
	port := bound.Port()
	return append(b, byte(port>>8), byte(port))
}

// AppendReply4 appends a SOCKS 4 reply: VN 0, the code (Reply4Granted or
// Reply4Rejected), and DSTPORT and DSTIP, which the client ignores, zero.
func AppendReply4(b []byte, code byte) []byte {
	return append(b, 0, code, 0, 0, 0, 0, 0, 0)
}
