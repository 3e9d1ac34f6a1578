package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"sshtap"
	"sshtap/internal/eventfmt"
)

// startForwards opens every -L and -D listener and asks the server for
// every -R one. A listener that cannot open is an error, as with
// ExitOnForwardFailure: a forward the user asked for that silently does not
// exist is worse than failing.
func (c *client) startForwards(ctx context.Context) error {
	for _, list := range []struct {
		flag  string
		specs []forwardSpec
	}{{"-L", c.s.locals}, {"-R", c.s.remotes}, {"-D", c.s.dynamics}} {
		for _, f := range list.specs {
			fw, err := c.addForward(ctx, list.flag, f, 0)
			if err != nil {
				return err
			}
			if allocated := fw.allocatedPort(); allocated != "" && !c.s.quiet {
				// As ssh: tell the user which port the server chose.
				fmt.Fprintf(c.app.stderr, "Allocated port %s for remote forward to %s\n", allocated, f.dialAddr)
			}
		}
	}
	return nil
}

// forward is one forward set up from the command line, the config or a
// ~C command line: a listener here (-L, -D) or on the server (-R). The
// listener closes with the SSH connection, or when ~C -K cancels it.
type forward struct {
	flag  string // "-L", "-R" or "-D"
	spec  forwardSpec
	l     net.Listener
	bound string // l's address
}

// allocatedPort is the port the server chose for -R with port 0, else "".
func (f *forward) allocatedPort() string {
	if f.flag == "-R" && f.spec.listenNet == "tcp" && portOf(f.spec.listenAddr) == "0" {
		return portOf(f.bound)
	}
	return ""
}

// describe is the forward as ~# shows it.
func (f *forward) describe() string {
	switch f.flag {
	case "-D":
		return fmt.Sprintf("-D %s (SOCKS 4, 4a, 5)", f.bound)
	case "-R":
		return fmt.Sprintf("-R %s (on the server) -> %s", f.bound, f.spec.dialAddr)
	}
	return fmt.Sprintf("-L %s -> %s (via the server)", f.bound, f.spec.dialAddr)
}

// addForward opens the listener of one forward and serves it. It may run
// on any goroutine while the connection is up (~C adds forwards from the
// one reading the terminal). ctx bounds the forward's life; reqTimeout,
// when not 0, bounds the wait for the server's answer to a -R request.
func (c *client) addForward(ctx context.Context, flag string, f forwardSpec, reqTimeout time.Duration) (*forward, error) {
	if c.noForwarding {
		return nil, fmt.Errorf("%s %s: port forwarding is disabled (the host key changed)", flag, f.spec)
	}
	var (
		l    net.Listener
		err  error
		dial func(in net.Conn) (net.Conn, string, error)
	)
	switch flag {
	case "-L":
		l, err = c.listenLocal(f.listenNet, f.listenAddr)
		dial = func(net.Conn) (net.Conn, string, error) {
			out, err := c.conn.Dial(ctx, f.dialNet, f.dialAddr)
			return out, f.dialAddr, err
		}
	case "-D":
		l, err = c.listenLocal(f.listenNet, f.listenAddr)
		dial = func(in net.Conn) (net.Conn, string, error) { return c.socksConnect(ctx, in) }
	case "-R":
		// The tcpip-forward request waits for the server's answer, within
		// reqTimeout when one is given; ctx stays the forward's lifetime.
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if reqTimeout > 0 {
			lctx, cancel = context.WithTimeout(ctx, reqTimeout)
		}
		l, err = c.conn.Listen(lctx, f.listenNet, f.listenAddr)
		cancel()
		if err != nil {
			err = fmt.Errorf("remote port forwarding failed: %w", err)
		}
		var d net.Dialer
		dial = func(net.Conn) (net.Conn, string, error) {
			out, err := d.DialContext(ctx, f.dialNet, f.dialAddr)
			return out, f.dialAddr, err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, f.spec, err)
	}
	fw := &forward{flag: flag, spec: f, l: l, bound: l.Addr().String()}
	c.fwdMu.Lock()
	if c.fwdDone {
		c.fwdMu.Unlock()
		l.Close()
		return nil, fmt.Errorf("%s %s: the connection is closed", flag, f.spec)
	}
	c.fwds = append(c.fwds, fw)
	c.trackLocked(l)
	// Added under fwdMu while the connection is up: closeForwards, which
	// c.wg also counts, has not finished, so c.wg.Wait has not returned.
	c.wg.Add(1)
	c.fwdMu.Unlock()
	switch flag {
	case "-L":
		c.note(fmt.Sprintf("local forward %s -> %s (via the server)", fw.bound, f.dialAddr))
	case "-D":
		c.note(fmt.Sprintf("dynamic forward %s (SOCKS 4, 4a, 5)", fw.bound))
	case "-R":
		c.note(fmt.Sprintf("remote forward %s (on the server) -> %s", fw.bound, f.dialAddr))
	}
	go c.serveForward(fw, dial)
	return fw, nil
}

// cancelForward closes the forwards of kind flag ("-L", "-R", "-D") that
// listen on spec, [bind_address:]port or a socket path; connections
// already forwarded stay open, as with ssh's ~C -K. It returns how many it
// closed.
func (c *client) cancelForward(ctx context.Context, flag, spec string) (int, error) {
	if !strings.Contains(spec, "/") {
		if _, _, _, err := parseListenSpec(spec); err != nil {
			return 0, err
		}
	}
	c.fwdMu.Lock()
	var closing []*forward
	kept := c.fwds[:0]
	for _, fw := range c.fwds {
		if fw.flag == flag && fw.matches(spec) {
			closing = append(closing, fw)
			delete(c.fwdOpen, fw.l)
		} else {
			kept = append(kept, fw)
		}
	}
	clear(c.fwds[len(kept):])
	c.fwds = kept
	c.fwdMu.Unlock()
	// Every forward taken out of the list is closed, whatever the others'
	// outcome: one left open would go on forwarding, out of ~#'s sight.
	var errs []error
	for _, fw := range closing {
		if rl, ok := fw.l.(*sshtap.RemoteListener); ok {
			// cancel-tcpip-forward (RFC 4254 §7.1), answered by the server.
			if err := rl.CloseContext(ctx); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		fw.l.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return len(closing), fmt.Errorf("-K%s %s: %w", flag[1:], spec, err)
	}
	return len(closing), nil
}

// matches reports whether the forward listens on spec: the same socket
// path, or the port (as given, or as bound for port 0) and, when spec
// names one, the bind address ("*" for every address).
func (f *forward) matches(spec string) bool {
	if f.spec.listenNet != "tcp" {
		return spec == f.spec.listenAddr
	}
	bind, port, hasBind, err := parseListenSpec(spec)
	if err != nil {
		return false
	}
	host, p, _ := net.SplitHostPort(f.spec.listenAddr)
	if port != p && port != portOf(f.bound) {
		return false
	}
	if bind == "*" {
		bind = ""
	}
	return !hasBind || strings.EqualFold(bind, host)
}

// forwardList is what ~# shows: the forwards and the connections they
// carry, each line ending in CR LF (the terminal is raw).
func (c *client) forwardList() string {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	var b strings.Builder
	if len(c.fwds) == 0 {
		b.WriteString("No forwards.\r\n")
	} else {
		b.WriteString("Forwards:\r\n")
		for _, fw := range c.fwds {
			fmt.Fprintf(&b, "  %s\r\n", fw.describe())
		}
	}
	if len(c.fwdConns) == 0 {
		b.WriteString("No forwarded connections are open.\r\n")
		return b.String()
	}
	b.WriteString("The following connections are open:\r\n")
	conns := make([]*fwdConn, 0, len(c.fwdConns))
	for fc := range c.fwdConns {
		conns = append(conns, fc)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].id < conns[j].id })
	for _, fc := range conns {
		fmt.Fprintf(&b, "  #%d %s %s: %s -> %s\r\n", fc.id, fc.flag, fc.bound, fc.from, eventfmt.Clean(fc.to))
	}
	return b.String()
}

// fwdConn is one open forwarded connection, for ~#.
type fwdConn struct {
	id          int
	flag, bound string
	from, to    string
}

// closeForwards waits for the SSH connection to end, then closes the
// forwarding listeners and every forwarded (or X11) connection still open:
// a local client idling on a forward must not keep sshtap alive after it.
func (c *client) closeForwards() {
	defer c.wg.Done()
	c.conn.Wait()
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	c.fwdDone = true
	for conn := range c.fwdOpen {
		conn.Close()
	}
}

// track registers listeners and forwarded connections' ends, to be closed
// when the SSH connection ends; false means it already ended (the caller
// closes them).
func (c *client) track(conns ...io.Closer) bool {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	if c.fwdDone {
		return false
	}
	c.trackLocked(conns...)
	return true
}

func (c *client) trackLocked(conns ...io.Closer) {
	if c.fwdOpen == nil {
		c.fwdOpen = map[io.Closer]struct{}{}
	}
	for _, conn := range conns {
		c.fwdOpen[conn] = struct{}{}
	}
}

func (c *client) untrack(conns ...io.Closer) {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	for _, conn := range conns {
		delete(c.fwdOpen, conn)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// serveForward accepts on fw's listener until it closes and joins each
// connection with the one dial makes for it (dial also names the
// destination, for ~#). It runs on its own goroutine, counted in c.wg.
func (c *client) serveForward(fw *forward, dial func(in net.Conn) (out net.Conn, to string, err error)) {
	defer c.wg.Done()
	// A listener that fails for good is closed (a jointListener's other
	// half would stay bound otherwise); closing twice is harmless.
	defer fw.l.Close()
	var conns sync.WaitGroup
	defer conns.Wait()
	var backoff time.Duration
	for {
		in, err := fw.l.Accept()
		if err != nil {
			if !acceptRetryable(err) {
				return // closed
			}
			// Out of descriptors, or the like: keep the forward, as ssh
			// does (channel_post_port_listener), and try again a little
			// later; a close meanwhile ends the next Accept.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			c.note(fmt.Sprintf("warning: %s %s: accept: %v", fw.flag, fw.bound, err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !c.track(in) {
			in.Close()
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			out, to, err := dial(in)
			if err != nil {
				c.note(fmt.Sprintf("warning: %s %s: connection from %s: %s", fw.flag, fw.bound, in.RemoteAddr(), errorText(err)))
				in.Close()
				c.untrack(in)
				return
			}
			fc := &fwdConn{flag: fw.flag, bound: fw.bound, from: in.RemoteAddr().String(), to: to}
			if !c.trackConn(fc, out) {
				in.Close()
				out.Close()
				return
			}
			join(in, out)
			c.untrack(in, out)
			c.untrackConn(fc)
		}()
	}
}

// trackConn registers out and fc (numbering it); false means the SSH
// connection already ended.
func (c *client) trackConn(fc *fwdConn, out io.Closer) bool {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	if c.fwdDone {
		return false
	}
	c.trackLocked(out)
	c.connSeq++
	fc.id = c.connSeq
	if c.fwdConns == nil {
		c.fwdConns = map[*fwdConn]struct{}{}
	}
	c.fwdConns[fc] = struct{}{}
	return true
}

func (c *client) untrackConn(fc *fwdConn) {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	delete(c.fwdConns, fc)
}

// join copies both ways, passing each EOF on with CloseWrite, and closes
// both when both directions are done.
func join(a, b io.ReadWriteCloser) {
	var wg sync.WaitGroup
	half := func(dst, src io.ReadWriteCloser) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go half(a, b)
	go half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// acceptRetryable reports whether an Accept error leaves the listener
// usable: the process or the system ran out of descriptors or memory, or
// the connection was aborted before it was accepted.
func acceptRetryable(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
