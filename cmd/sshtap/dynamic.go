package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"sshtap"
	"sshtap/internal/eventfmt"
	"sshtap/internal/socks"
)

// Dynamic forwarding (-D, DynamicForward): a local SOCKS 4, 4a and 5
// server whose CONNECT requests become direct-tcpip channels (RFC 4254
// §7.2) through the connection. Domain names go to the server as they
// came, and are resolved there.

// socksHandshakeTimeout bounds a SOCKS client's handshake, from accept to
// its complete request: a client that sends nothing, or a byte at a time,
// is cut off. (The channel open that follows is bounded by the server.)
// A variable for tests.
var socksHandshakeTimeout = 20 * time.Second

// parseListenSpec reads [bind_address:]port, the listening half of a
// forward (IPv6 addresses in brackets).
func parseListenSpec(spec string) (bind, port string, hasBind bool, err error) {
	parts, err := splitForward(spec)
	if err != nil {
		return "", "", false, err
	}
	switch len(parts) {
	case 1:
		port = parts[0]
	case 2:
		bind, port, hasBind = parts[0], parts[1], true
	default:
		return "", "", false, errors.New("want [bind_address:]port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", false, fmt.Errorf("bad port %q", port)
	}
	return bind, port, hasBind, nil
}

// parseDynamicForward reads -D and DynamicForward: [bind_address:]port,
// on localhost unless a bind address is given ("*" or empty: every
// address), as ssh without GatewayPorts.
func parseDynamicForward(spec string) (forwardSpec, error) {
	bind, port, hasBind, err := parseListenSpec(spec)
	if err != nil {
		return forwardSpec{spec: spec}, err
	}
	fs := forwardSpec{spec: spec, listenNet: "tcp", listenAddr: "localhost:" + port}
	if hasBind {
		if bind == "*" {
			bind = ""
		}
		fs.listenAddr = joinHostPort(bind, port)
	}
	return fs, nil
}

// socksConnect runs the server side of a SOCKS handshake on in, opens the
// channel to the requested destination, tells the client the outcome and
// returns the channel and the destination. On failure the client has been
// sent the error reply its protocol has (when there is one) and the error
// says what went wrong; the caller closes in.
func (c *client) socksConnect(ctx context.Context, in net.Conn) (net.Conn, string, error) {
	in.SetDeadline(time.Now().Add(socksHandshakeTimeout))
	buf := make([]byte, 0, socks.MaxHandshake)
	// fill reads more of the handshake; the decoders refuse any message
	// longer than MaxHandshake, so buf never needs to grow.
	fill := func() error {
		if len(buf) == cap(buf) {
			return errors.New("SOCKS handshake too long")
		}
		n, err := in.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 || err == nil {
			return nil
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return fmt.Errorf("no complete SOCKS request within %v", socksHandshakeTimeout)
		}
		return fmt.Errorf("SOCKS handshake: %w", err)
	}
	off := 0 // buf[:off] is decoded
	for len(buf) == 0 {
		if err := fill(); err != nil {
			return nil, "", err
		}
	}
	var (
		req socks.Request
		err error
	)
	switch buf[0] {
	case socks.Version4:
		var rest []byte
		for {
			req, rest, err = socks.ParseRequest4(buf)
			if !errors.Is(err, socks.ErrIncomplete) {
				break
			}
			if err := fill(); err != nil {
				return nil, "", err
			}
		}
		if err != nil {
			in.Write(socks.AppendReply4(nil, socks.Reply4Rejected))
			return nil, "", err
		}
		off = len(buf) - len(rest)
	case socks.Version5:
		var g socks.Greeting
		var rest []byte
		for {
			g, rest, err = socks.ParseGreeting(buf)
			if !errors.Is(err, socks.ErrIncomplete) {
				break
			}
			if err := fill(); err != nil {
				return nil, "", err
			}
		}
		if err != nil {
			return nil, "", err
		}
		if !g.Offers(socks.MethodNoAuth) {
			// RFC 1928 §3: "If the selected METHOD is X'FF', none of the
			// methods listed by the client are acceptable, and the client
			// MUST close the connection."
			in.Write(socks.AppendMethod(nil, socks.MethodNoAcceptable))
			return nil, "", fmt.Errorf("SOCKS 5 client offers no method sshtap supports (methods %x; only 00, no authentication)", g.Methods)
		}
		if _, err := in.Write(socks.AppendMethod(nil, socks.MethodNoAuth)); err != nil {
			return nil, "", err
		}
		off = len(buf) - len(rest)
		for {
			req, rest, err = socks.ParseRequest5(buf[off:])
			if !errors.Is(err, socks.ErrIncomplete) {
				break
			}
			if err := fill(); err != nil {
				return nil, "", err
			}
		}
		if err != nil {
			rep := socks.ReplyGeneralFailure
			var ae *socks.AddressTypeError
			if errors.As(err, &ae) {
				rep = socks.ReplyAddressTypeNotSupported
			}
			in.Write(socks.AppendReply5(nil, rep, netip.AddrPort{}))
			return nil, "", err
		}
		off = len(buf) - len(rest)
	default:
		return nil, "", fmt.Errorf("not a SOCKS 4 or 5 client (first byte 0x%02x)", buf[0])
	}

	// The handshake is read; the channel open may take as long as the
	// server's connect() takes, and the reply must not meet the handshake
	// deadline.
	in.SetDeadline(time.Time{})
	reply := func(rep socks.Reply) error {
		in.SetWriteDeadline(time.Now().Add(socksHandshakeTimeout))
		defer in.SetWriteDeadline(time.Time{})
		if req.Version == socks.Version4 {
			code := byte(socks.Reply4Granted)
			if rep != socks.ReplySucceeded {
				code = socks.Reply4Rejected
			}
			_, err := in.Write(socks.AppendReply4(nil, code))
			return err
		}
		_, err := in.Write(socks.AppendReply5(nil, rep, netip.AddrPort{}))
		return err
	}
	to := req.Addr()
	if req.Command != socks.CommandConnect {
		reply(socks.ReplyCommandNotSupported)
		return nil, to, fmt.Errorf("SOCKS %d command %d to %s not supported (only CONNECT)", req.Version, req.Command, eventfmt.Clean(to))
	}
	c.note(fmt.Sprintf("SOCKS %s CONNECT %s from %s", socksVersion(req), eventfmt.Clean(to), in.RemoteAddr()))
	out, err := c.conn.Dial(ctx, "tcp", to)
	if err != nil {
		reply(socksReplyFor(err))
		return nil, to, fmt.Errorf("SOCKS CONNECT %s: %w", eventfmt.Clean(to), err)
	}
	if err := reply(socks.ReplySucceeded); err != nil {
		out.Close()
		return nil, to, fmt.Errorf("SOCKS CONNECT %s: telling the client: %w", eventfmt.Clean(to), err)
	}
	if off < len(buf) {
		// Data the client sent right after its request, not waiting for
		// the reply.
		if _, err := out.Write(buf[off:]); err != nil {
			out.Close()
			return nil, to, err
		}
	}
	return out, to, nil
}

func socksVersion(r socks.Request) string {
	if r.Version == socks.Version4 && r.AddrType == socks.AddrDomain {
		return "4a"
	}
	return strconv.Itoa(int(r.Version))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// socksReplyFor maps a refused channel open to the closest SOCKS 5 reply
// (RFC 1928 §6). CONNECT_FAILED carries the server's reason only as text
// (sshd's is strerror's or getaddrinfo's, sshtap's Go's dial error).
func socksReplyFor(err error) socks.Reply {
	var oe *sshtap.OpenChannelError
	if !errors.As(err, &oe) {
		return socks.ReplyGeneralFailure
	}
	switch oe.Reason {
	case sshtap.OpenProhibited:
		return socks.ReplyNotAllowed
	case sshtap.OpenConnectFailed:
		m := strings.ToLower(oe.Message)
		switch {
		case strings.Contains(m, "network is unreachable"):
			return socks.ReplyNetworkUnreachable
		case strings.Contains(m, "no route to host"), strings.Contains(m, "host is unreachable"),
			strings.Contains(m, "name or service not known"), strings.Contains(m, "no such host"),
			strings.Contains(m, "name resolution"), strings.Contains(m, "nodename nor servname"),
			strings.Contains(m, "timed out"), strings.Contains(m, "no address associated"):
			return socks.ReplyHostUnreachable
		}
		return socks.ReplyConnectionRefused
	}
	return socks.ReplyGeneralFailure
}
