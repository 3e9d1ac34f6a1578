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
		l, err := c.conn.Listen(f.listenNet, f.listenAddr)
		if err != nil {
			closeAll(listeners)
			return fmt.Errorf("-R %s: remote port forwarding failed: %w", f.spec, err)
		}
		listeners = append(listeners, l)
		if tcp, ok := l.Addr().(*net.TCPAddr); ok && f.listenNet == "tcp" && portOf(f.listenAddr) == "0" {
			// As ssh: tell the user which port the server chose.
			fmt.Fprintf(c.app.stderr, "Allocated port %d for remote forward to %s\n", tcp.Port, f.dialAddr)
		}
		c.note(fmt.Sprintf("remote forward %s (on the server) -> %s", l.Addr(), f.dialAddr))
		var d net.Dialer
		c.serveForward(l, func() (net.Conn, error) { return d.DialContext(ctx, f.dialNet, f.dialAddr) })
	}
	if len(listeners) > 0 {
		// Listeners close with the connection.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.conn.Wait()
			closeAll(listeners)
		}()
	}
	return nil
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
				join(in, out)
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
