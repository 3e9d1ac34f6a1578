package sshtap

import "context"

// DialSSH connects to the SSH server at addr ("host:port") through c, as
// OpenSSH's ProxyJump does: it opens a "direct-tcpip" channel to addr
// (Dial) and runs the client handshake with cfg over that channel, all
// bounded by ctx. c is the jump host's connection; the returned Conn is
// the next hop's, a Conn like any other (it has its own keys, events and
// host key check). addr is what cfg.HostKeyCallback sees unless cfg.Addr
// is set, and the Conn's RemoteAddr is addr.
//
// Lifetimes: the channel is the new Conn's stream, so closing the new Conn
// closes the channel (c stays up), and when c ends the channel fails and
// the new Conn ends with an I/O error. On failure the channel is closed;
// a refused channel is a *ForwardError wrapping the *OpenChannelError.
//
// To see the new connection's handshake events, subscribe before the
// handshake: Dial the channel and pass it to ClientConn instead.
func (c *Conn) DialSSH(ctx context.Context, addr string, cfg *Config) (*Conn, error) {
	nc, err := c.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &Config{}
	}
	inner := ClientConn(nc, cfg)
	if inner.addr == "" {
		inner.addr = addr
	}
	if err := inner.Handshake(ctx); err != nil {
		return nil, err
	}
	return inner, nil
}
