package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// startForwards opens every -L listener and asks the server for every -R
// one. A listener that cannot open is an error, as with
// ExitOnForwardFailure: a forward the user asked for that silently does not
// exist is worse than failing.
func (c *client) startForwards(ctx context.Context) error {
	var listeners []net.Listener
	for _, f := range c.s.locals {
		l, err := net.Listen(f.listenNet, f.listenAddr)
		if err != nil {
			closeAll(listeners)
			return fmt.Errorf("-L %s: %w", f.spec, err)
		}
		listeners = append(listeners, l)
		c.note(fmt.Sprintf("local forward %s -> %s (via the server)", l.Addr(), f.dialAddr))
		c.serveForward(l, func() (net.Conn, error) { return c.conn.Dial(ctx, f.dialNet, f.dialAddr) })
	}
	for _, f := range c.s.remotes {
		l, err := c.conn.Listen(ctx, f.listenNet, f.listenAddr)
		if err != nil {
			closeAll(listeners)
			return fmt.Errorf("-R %s: remote port forwarding failed: %w", f.spec, err)
		}
		listeners = append(listeners, l)
		if f.listenNet == "tcp" && portOf(f.listenAddr) == "0" && !c.s.quiet {
			// As ssh: tell the user which port the server chose.
			fmt.Fprintf(c.app.stderr, "Allocated port %s for remote forward to %s\n", portOf(l.Addr().String()), f.dialAddr)
		}
		c.note(fmt.Sprintf("remote forward %s (on the server) -> %s", l.Addr(), f.dialAddr))
		var d net.Dialer
		c.serveForward(l, func() (net.Conn, error) { return d.DialContext(ctx, f.dialNet, f.dialAddr) })
	}
	// Listeners close with the SSH connection (closeForwards).
	if !c.track(closers(listeners)...) {
		closeAll(listeners)
	}
	return nil
}

func closers(ls []net.Listener) []io.Closer {
	out := make([]io.Closer, len(ls))
	for i, l := range ls {
		out[i] = l
	}
	return out
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
	if c.fwdOpen == nil {
		c.fwdOpen = map[io.Closer]struct{}{}
	}
	for _, conn := range conns {
		c.fwdOpen[conn] = struct{}{}
	}
	return true
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

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// serveForward accepts on l until it closes and joins each connection with
// one from dial.
func (c *client) serveForward(l net.Listener, dial func() (net.Conn, error)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				out, err := dial()
				if err != nil {
					c.note(fmt.Sprintf("warning: forward from %s: %v", in.RemoteAddr(), err))
					in.Close()
					return
				}
				if !c.track(in, out) {
					in.Close()
					out.Close()
					return
				}
				join(in, out)
				c.untrack(in, out)
			}()
		}
	}()
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
