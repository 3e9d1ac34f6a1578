package sshtap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"sshtap/internal/wire"
)

// forwardState is a Conn's port forwarding state (its fwd field).
type forwardState struct {
	mu         sync.Mutex
	listeners  []*RemoteListener // client: our tcpip-forward / streamlocal-forward listeners
	serverFwds []*serverForward  // server: listeners opened for the client
}

// closeAll closes the server side's listeners (the Conn ended).
func (st *forwardState) closeAll() {
	st.mu.Lock()
	fwds := st.serverFwds
	st.serverFwds = nil
	st.mu.Unlock()
	for _, f := range fwds {
		f.close()
	}
}

// ErrForwardProhibited is what the server-side hooks answer when
// ServerConfig.ForwardPermission refused (or is unset).
var ErrForwardProhibited = errors.New("sshtap: forwarding prohibited")

// ForwardError describes a failed forwarding operation.
type ForwardError struct {
	Op   string // "dial", "listen", "close"
	Kind string // "direct-tcpip", "tcpip-forward", ...
	Addr string
	Err  error
}

func (e *ForwardError) Error() string {
	return fmt.Sprintf("sshtap: %s %s %s: %v", e.Op, e.Kind, e.Addr, e.Err)
}

func (e *ForwardError) Unwrap() error { return e.Err }

// fwdAddr is the net.Addr of a forwarded endpoint that is not a TCP
// address (a host name, a Unix socket path on the far side).
type fwdAddr struct{ network, addr string }

func (a fwdAddr) Network() string { return a.network }
func (a fwdAddr) String() string  { return a.addr }

func makeAddr(network, host string, port uint32) net.Addr {
	if network == "unix" {
		return &net.UnixAddr{Name: host, Net: "unix"}
	}
	if ip := net.ParseIP(host); ip != nil {
		return &net.TCPAddr{IP: ip, Port: int(port)}
	}
	return fwdAddr{"tcp", net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))}
}

// chanConn is a forwarded connection: a *Channel with addresses.
type chanConn struct {
	*Channel
	laddr, raddr net.Addr
}

func (cc *chanConn) LocalAddr() net.Addr  { return cc.laddr }
func (cc *chanConn) RemoteAddr() net.Addr { return cc.raddr }

var _ net.Conn = (*chanConn)(nil)

func splitHostPort(addr string) (string, uint32, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, uint32(port), nil
}

// originator returns the address reported as the originator of channels we
// open: the local end of the SSH connection when it is TCP, else loopback.
func (c *Conn) originator() (string, uint32) {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a != nil {
		return a.IP.String(), uint32(a.Port)
	}
	return "127.0.0.1", 0
}

// Dial opens a connection to addr through the server: network "tcp" (or
// "tcp4", "tcp6") opens a "direct-tcpip" channel (RFC 4254 §7.2), "unix" a
// "direct-streamlocal@openssh.com" channel to the server's socket path addr
// (OpenSSH PROTOCOL §2.4). The returned net.Conn is the channel; its
// deadlines are the channel's.
func (c *Conn) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var (
		typ   string
		extra []byte
		raddr net.Addr
	)
	oh, op := c.originator()
	switch network {
	case "tcp", "tcp4", "tcp6":
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, &ForwardError{Op: "dial", Kind: "direct-tcpip", Addr: addr, Err: err}
		}
		typ = wire.ChannelTypeDirectTCPIP
		extra = (&wire.DirectTCPIP{Host: host, Port: port, OriginAddr: oh, OriginPort: op}).Append(nil)
		raddr = makeAddr("tcp", host, port)
	case "unix":
		typ = wire.ChannelTypeDirectStreamLocal
		extra = (&wire.DirectStreamLocal{Path: addr}).Append(nil)
		raddr = makeAddr("unix", addr, 0)
	default:
		return nil, &ForwardError{Op: "dial", Kind: network, Addr: addr, Err: net.UnknownNetworkError(network)}
	}
	ch, err := c.OpenChannel(ctx, typ, extra)
	if err != nil {
		return nil, &ForwardError{Op: "dial", Kind: typ, Addr: addr, Err: err}
	}
	return &chanConn{Channel: ch, laddr: makeAddr("tcp", oh, op), raddr: raddr}, nil
}

// RemoteListener is the net.Listener that Conn.Listen returns: the server
// listens, and the connections it forwards come out of Accept. Its methods
// may be called from any goroutine.
type RemoteListener struct {
	c       *Conn
	closing <-chan struct{} // the Conn's
	unix    bool
	host    string // the bind address as requested
	port    uint32 // the bound port (the server's reply for port 0)
	addr    net.Addr

	incoming chan *NewChannel
	done     chan struct{}
	once     sync.Once
}

// Listen asks the server to listen on addr and forward the connections to
// this client: network "tcp" sends "tcpip-forward" (RFC 4254 §7.1; port 0
// lets the server choose, and Addr reports the port it chose), "unix"
// sends "streamlocal-forward@openssh.com" (OpenSSH PROTOCOL §2.4). ctx
// bounds the wait for the server's answer, and nothing else does (but the
// Conn's end): it does not limit the listener's life. When ctx ends first,
// the matching cancel request follows, so that a late grant is withdrawn
// (for port 0 it cannot be: the server may then listen until the Conn
// ends, and the connections it forwards are rejected, as for any address
// this client did not ask for). Close sends the cancel request too.
func (c *Conn) Listen(ctx context.Context, network, addr string) (*RemoteListener, error) {
	l := &RemoteListener{c: c, closing: c.closing, incoming: make(chan *NewChannel), done: make(chan struct{})}
	switch network {
	case "tcp", "tcp4", "tcp6":
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, &ForwardError{Op: "listen", Kind: "tcpip-forward", Addr: addr, Err: err}
		}
		p := (&wire.TCPIPForward{Addr: host, Port: port}).Append(nil)
		ok, reply, err := c.SendGlobalRequest(ctx, wire.RequestTCPIPForward, true, p)
		if err == nil && !ok {
			err = ErrForwardProhibited
		}
		if err != nil {
			if ctx.Err() != nil && port != 0 {
				c.cancelLateForward(wire.RequestCancelTCPIPForward, p)
			}
			return nil, &ForwardError{Op: "listen", Kind: "tcpip-forward", Addr: addr, Err: err}
		}
		if port == 0 {
			// RFC 4254 §7.1: with port 0 the reply carries the port
			// the server allocated.
			rep, err := wire.ParseTCPIPForwardReply(reply)
			if err != nil || rep.Port == 0 || rep.Port > 65535 {
				return nil, &ForwardError{Op: "listen", Kind: "tcpip-forward", Addr: addr, Err: errors.New("no port in the server's reply")}
			}
			port = rep.Port
		}
		l.host, l.port, l.addr = host, port, makeAddr("tcp", host, port)
	case "unix":
		p := (&wire.StreamLocalForward{Path: addr}).Append(nil)
		ok, _, err := c.SendGlobalRequest(ctx, wire.RequestStreamLocalForward, true, p)
		if err == nil && !ok {
			err = ErrForwardProhibited
		}
		if err != nil {
			if ctx.Err() != nil {
				c.cancelLateForward(wire.RequestCancelStreamLocalForward, p)
			}
			return nil, &ForwardError{Op: "listen", Kind: "streamlocal-forward", Addr: addr, Err: err}
		}
		l.unix, l.host, l.addr = true, addr, makeAddr("unix", addr, 0)
	default:
		return nil, &ForwardError{Op: "listen", Kind: network, Addr: addr, Err: net.UnknownNetworkError(network)}
	}
	st := &c.fwd
	st.mu.Lock()
	st.listeners = append(st.listeners, l)
	st.mu.Unlock()
	return l, nil
}

// cancelLateForward follows a forward request whose answer Listen stopped
// waiting for with its cancel request (same body; RFC 4254 §7.1), without
// asking for a reply: the server handles requests in order, so a grant
// that comes late is withdrawn at once, and a refusal makes the cancel a
// no-op. A request for port 0 cannot be withdrawn (its port is in the
// answer): the server keeps it until the Conn ends, and the connections it
// forwards are rejected.
func (c *Conn) cancelLateForward(name string, body []byte) {
	c.SendGlobalRequest(ctxOf(c), name, false, body)
}

func (l *RemoteListener) Addr() net.Addr { return l.addr }

// Accept waits for the next forwarded connection.
func (l *RemoteListener) Accept() (net.Conn, error) {
	for {
		select {
		case nc := <-l.incoming:
			ch, err := nc.Accept()
			if err != nil {
				continue // the Conn is going away; the next round says so
			}
			host, port := parseOrigin(nc)
			return &chanConn{Channel: ch, laddr: l.addr, raddr: makeAddr("tcp", host, port)}, nil
		case <-l.done:
			return nil, net.ErrClosed
		case <-l.closing:
			if err := l.c.Err(); err != nil {
				return nil, err
			}
			return nil, net.ErrClosed
		}
	}
}

// parseOrigin reads the originator of a forwarded-tcpip open ("", 0 for
// other types, which do not report one).
func parseOrigin(nc *NewChannel) (string, uint32) {
	if nc.Type() != wire.ChannelTypeForwardedTCPIP {
		return "", 0
	}
	m, err := wire.ParseForwardedTCPIP(nc.ExtraData())
	if err != nil {
		return "", 0
	}
	return m.OriginAddr, m.OriginPort
}

// Close stops the listener and asks the server to stop listening
// (cancel-tcpip-forward, RFC 4254 §7.1, or
// cancel-streamlocal-forward@openssh.com): CloseContext with a context
// that never ends, so it returns once the server answered or the Conn
// ended.
func (l *RemoteListener) Close() error { return l.CloseContext(context.Background()) }

// CloseContext is Close with ctx bounding the wait for the server's
// answer. Accept returns net.ErrClosed at once, whatever the server says;
// a second call returns net.ErrClosed.
func (l *RemoteListener) CloseContext(ctx context.Context) error {
	first := false
	l.once.Do(func() { first = true; close(l.done) })
	if !first {
		return net.ErrClosed
	}
	c := l.c
	st := &c.fwd
	st.mu.Lock()
	for i, x := range st.listeners {
		if x == l {
			st.listeners = append(st.listeners[:i], st.listeners[i+1:]...)
			break
		}
	}
	st.mu.Unlock()
	if c.Err() != nil {
		return nil
	}
	kind, name := "tcpip-forward", wire.RequestCancelTCPIPForward
	p := (&wire.TCPIPForward{Addr: l.host, Port: l.port}).Append(nil)
	if l.unix {
		kind, name = "streamlocal-forward", wire.RequestCancelStreamLocalForward
		p = (&wire.StreamLocalForward{Path: l.host}).Append(nil)
	}
	if _, _, err := c.SendGlobalRequest(ctx, name, true, p); err != nil && c.Err() == nil {
		return &ForwardError{Op: "close", Kind: kind, Addr: l.addr.String(), Err: err}
	}
	return nil
}

// handleForwarded routes an incoming "forwarded-tcpip" (RFC 4254 §7.2) or
// "forwarded-streamlocal@openssh.com" open to the listener it belongs to.
// It runs on its own goroutine (one per incoming open) and returns once
// the open is decided.
func (c *Conn) handleForwarded(nc *NewChannel) {
	unix := nc.Type() != wire.ChannelTypeForwardedTCPIP
	var (
		host string
		port uint32
		err  error
	)
	if unix {
		var m wire.ForwardedStreamLocal
		m, err = wire.ParseForwardedStreamLocal(nc.ExtraData())
		host = m.Path
	} else {
		var m wire.ForwardedTCPIP
		m, err = wire.ParseForwardedTCPIP(nc.ExtraData())
		host, port = m.Addr, m.Port
	}
	if err != nil {
		nc.Reject(OpenConnectFailed, "malformed open")
		return
	}
	st := &c.fwd
	st.mu.Lock()
	var match *RemoteListener
	for _, l := range st.listeners {
		if l.unix != unix || l.port != port {
			continue
		}
		if l.host == host {
			match = l
			break
		}
		if match == nil {
			match = l // same port, address spelled differently
		}
	}
	st.mu.Unlock()
	if match == nil {
		// RFC 4254 §7.2: a client rejects forwarded opens it did not ask for.
		nc.Reject(OpenProhibited, "no forwarding requested for this address")
		return
	}
	select {
	case match.incoming <- nc:
		// Accept decides it at once; wait for that, since an open
		// still undecided when this handler returns is rejected
		// (runOpenHandler).
		select {
		case <-nc.done:
		case <-c.closing:
		}
	case <-nc.done: // ChannelOpenTimeout: no Accept took it
	case <-match.done:
		nc.Reject(OpenConnectFailed, "listener closed")
	case <-c.closing:
	}
}

// pipe copies both ways between a channel and a network connection until
// both directions ended, then closes both.
func pipe(ch *Channel, nc net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(ch, nc)
		ch.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		io.Copy(nc, ch)
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			nc.Close()
		}
	}()
	wg.Wait()
	nc.Close()
	ch.Close()
}

// forwardAllowed asks ServerConfig.ForwardPermission (default deny).
func (c *Conn) forwardAllowed(kind, addr string) bool {
	if c.scfg == nil || c.scfg.ForwardPermission == nil {
		return false
	}
	return c.scfg.ForwardPermission(c, kind, addr)
}

// handleDirect serves an incoming "direct-tcpip" (RFC 4254 §7.2) or
// "direct-streamlocal@openssh.com" open on a server: it asks
// ForwardPermission, dials and pipes. It runs on its own goroutine.
func (c *Conn) handleDirect(nc *NewChannel) {
	var network, kind, addr string
	if nc.Type() == wire.ChannelTypeDirectTCPIP {
		m, err := wire.ParseDirectTCPIP(nc.ExtraData())
		if err != nil {
			nc.Reject(OpenConnectFailed, "malformed open")
			return
		}
		if m.Port > 65535 {
			nc.Reject(OpenConnectFailed, "bad port")
			return
		}
		network, kind, addr = "tcp", "direct-tcpip", net.JoinHostPort(m.Host, strconv.FormatUint(uint64(m.Port), 10))
	} else {
		m, err := wire.ParseDirectStreamLocal(nc.ExtraData())
		if err != nil {
			nc.Reject(OpenConnectFailed, "malformed open")
			return
		}
		network, kind, addr = "unix", "direct-streamlocal", m.Path
	}
	if !c.forwardAllowed(kind, addr) {
		nc.Reject(OpenProhibited, "administratively prohibited")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	stop := context.AfterFunc(ctxOf(c), cancel)
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	stop()
	cancel()
	if err != nil {
		nc.Reject(OpenConnectFailed, err.Error())
		return
	}
	ch, err := nc.Accept()
	if err != nil {
		conn.Close()
		return
	}
	pipe(ch, conn)
}

// closingCtx is a context that is done when its Conn starts closing.
type closingCtx struct {
	context.Context
	c *Conn
}

func (x closingCtx) Done() <-chan struct{} { return x.c.closing }
func (x closingCtx) Err() error {
	select {
	case <-x.c.closing:
		return context.Canceled
	default:
		return nil
	}
}

func ctxOf(c *Conn) context.Context { return closingCtx{context.Background(), c} }

// serverForward is one tcpip-forward / streamlocal-forward listener a
// server opened for its client.
type serverForward struct {
	host string // as requested
	port uint32 // bound
	unix bool
	ln   net.Listener
	once sync.Once
	done chan struct{}
}

func (f *serverForward) close() {
	f.once.Do(func() {
		close(f.done)
		f.ln.Close()
	})
}

// bindHost maps a requested bind address to what we listen on: loopback
// names stay, anything else (including "" and wildcard addresses) binds
// 127.0.0.1, like OpenSSH with GatewayPorts no.
func bindHost(h string) string {
	if h == "localhost" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return h
	}
	return "127.0.0.1"
}

// serveForwardRequest serves "tcpip-forward" / "cancel-tcpip-forward"
// (RFC 4254 §7.1) and their streamlocal counterparts on a server. It runs
// on the global request goroutine (deliverGlobal), so requests are served
// in order (a cancel never overtakes its forward) and may block
// (ForwardPermission, listen).
func (c *Conn) serveForwardRequest(req *Request) {
	unix := req.Type == wire.RequestStreamLocalForward || req.Type == wire.RequestCancelStreamLocalForward
	var (
		host string
		port uint32
		err  error
	)
	if unix {
		var m wire.StreamLocalForward
		m, err = wire.ParseStreamLocalForward(req.Payload)
		host = m.Path
	} else {
		var m wire.TCPIPForward
		m, err = wire.ParseTCPIPForward(req.Payload)
		host, port = m.Addr, m.Port
	}
	if err != nil || port > 65535 {
		req.Reply(false, nil)
		return
	}
	st := &c.fwd
	switch req.Type {
	case "cancel-tcpip-forward", "cancel-streamlocal-forward@openssh.com":
		st.mu.Lock()
		var f *serverForward
		for i, x := range st.serverFwds {
			if x.unix == unix && x.host == host && x.port == port {
				f = x
				st.serverFwds = append(st.serverFwds[:i], st.serverFwds[i+1:]...)
				break
			}
		}
		st.mu.Unlock()
		if f != nil {
			f.close()
		}
		req.Reply(f != nil, nil)
		return
	}
	kind, network, bind := "tcpip-forward", "tcp", ""
	if unix {
		kind, network, bind = "streamlocal-forward", "unix", host
	} else {
		bind = net.JoinHostPort(bindHost(host), strconv.FormatUint(uint64(port), 10))
	}
	if !c.forwardAllowed(kind, bind) {
		req.Reply(false, nil)
		return
	}
	ln, err := net.Listen(network, bind)
	if err != nil {
		req.Reply(false, nil)
		return
	}
	f := &serverForward{host: host, unix: unix, ln: ln, done: make(chan struct{})}
	var reply []byte
	if !unix {
		f.port = uint32(ln.Addr().(*net.TCPAddr).Port)
		if port == 0 {
			// RFC 4254 §7.1: report the allocated port.
			reply = (&wire.TCPIPForwardReply{Port: f.port}).Append(nil)
		}
	}
	st.mu.Lock()
	st.serverFwds = append(st.serverFwds, f)
	st.mu.Unlock()
	if err := req.Reply(true, reply); err != nil {
		f.close()
		return
	}
	if c.Err() != nil {
		// The teardown's closeAll may have run before f was added.
		f.close()
		return
	}
	go c.acceptForwards(f)
}

// acceptForwards opens a forwarded-* channel to the client for each
// connection accepted on f (RFC 4254 §7.2).
func (c *Conn) acceptForwards(f *serverForward) {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			f.close()
			return
		}
		go c.openForwarded(f, conn)
	}
}

func (c *Conn) openForwarded(f *serverForward, conn net.Conn) {
	var typ string
	var extra []byte
	if f.unix {
		typ = wire.ChannelTypeForwardedStreamLocal
		extra = (&wire.ForwardedStreamLocal{Path: f.host}).Append(nil)
	} else {
		typ = wire.ChannelTypeForwardedTCPIP
		oh, op := "127.0.0.1", uint32(0)
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			oh, op = a.IP.String(), uint32(a.Port)
		}
		extra = (&wire.ForwardedTCPIP{Addr: f.host, Port: f.port, OriginAddr: oh, OriginPort: op}).Append(nil)
	}
	ctx, cancel := context.WithTimeout(ctxOf(c), 30*time.Second)
	ch, err := c.OpenChannel(ctx, typ, extra)
	cancel()
	if err != nil {
		conn.Close()
		return
	}
	pipe(ch, conn)
}

// Built-in channel handlers (RFC 4254 §7.2, OpenSSH PROTOCOL §2.4). A
// handler the application put in TransportConfig.ChannelHandlers for the
// same type takes precedence.
func init() {
	server := func(h func(*Conn, *NewChannel)) func(*Conn) func(*NewChannel) {
		return func(c *Conn) func(*NewChannel) {
			return c.builtinFor(false, h)
		}
	}
	client := func(h func(*Conn, *NewChannel)) func(*Conn) func(*NewChannel) {
		return func(c *Conn) func(*NewChannel) {
			return c.builtinFor(true, h)
		}
	}
	registerBuiltinChannel("direct-tcpip", server((*Conn).handleDirect))
	registerBuiltinChannel("direct-streamlocal@openssh.com", server((*Conn).handleDirect))
	registerBuiltinChannel("forwarded-tcpip", client((*Conn).handleForwarded))
	registerBuiltinChannel("forwarded-streamlocal@openssh.com", client((*Conn).handleForwarded))
	registerBuiltinChannel("x11", client((*Conn).handleX11Open))
	registerBuiltinChannel("auth-agent@openssh.com", client((*Conn).handleAgentOpen))
}

// builtinFor returns h bound to c when c is on the side h serves and the
// application has no handler of its own for the type.
func (c *Conn) builtinFor(clientSide bool, h func(*Conn, *NewChannel)) func(*NewChannel) {
	if c.isClient != clientSide {
		return nil
	}
	return func(nc *NewChannel) {
		if uh := c.cfg.ChannelHandlers[nc.Type()]; uh != nil {
			uh(nc)
			return
		}
		h(c, nc)
	}
}

func init() {
	serverOnly := func(c *Conn) func(*Request) {
		if c.isClient {
			return nil
		}
		return c.serveForwardRequest
	}
	for _, name := range []string{"tcpip-forward", "cancel-tcpip-forward",
		"streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com"} {
		registerBuiltinGlobal(name, serverOnly)
	}
}
