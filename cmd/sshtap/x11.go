package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"sshtap"
)

const x11AuthProto = "MIT-MAGIC-COOKIE-1"

// x11Display is where X11 connections from the server go.
type x11Display struct {
	network, addr string
	screen        uint32
	cookie        []byte // the real cookie from xauth, nil if none
}

// parseDisplay reads $DISPLAY: [host]:display[.screen]. An empty host or
// "unix" means the local socket /tmp/.X11-unix/X<display>.
func parseDisplay(d string) (*x11Display, error) {
	i := strings.LastIndexByte(d, ':')
	if i < 0 {
		return nil, fmt.Errorf("DISPLAY %q has no display number", d)
	}
	host, rest := d[:i], d[i+1:]
	num, scr, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 65535-6000 {
		return nil, fmt.Errorf("DISPLAY %q: bad display number", d)
	}
	x := &x11Display{}
	if scr != "" {
		s, err := strconv.Atoi(scr)
		if err != nil || s < 0 {
			return nil, fmt.Errorf("DISPLAY %q: bad screen", d)
		}
		x.screen = uint32(s)
	}
	if host == "" || host == "unix" {
		x.network, x.addr = "unix", fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	} else {
		x.network, x.addr = "tcp", net.JoinHostPort(host, strconv.Itoa(6000+n))
	}
	return x, nil
}

// xauthCookie asks xauth for the display's MIT-MAGIC-COOKIE-1.
// xauth is the program to run (XAuthLocation).
func xauthCookie(ctx context.Context, xauth, display string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, xauth, "list", display).Output()
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == x11AuthProto {
			return hex.DecodeString(f[2])
		}
	}
	return nil, errors.New("no " + x11AuthProto + " for the display")
}

// startX11 asks for X11 forwarding with a fake cookie and serves the
// server's x11 channels: each goes to the local display, with the fake
// cookie in the client's connection setup replaced by the real one (as ssh
// does, so the real cookie never leaves this machine).
func (c *client) startX11(ctx context.Context, sess *sshtap.Session) error {
	display := c.app.getenv("DISPLAY")
	if display == "" {
		return errors.New("DISPLAY is not set")
	}
	x, err := parseDisplay(display)
	if err != nil {
		return err
	}
	if x.cookie, err = xauthCookie(ctx, c.s.xauth, display); err != nil {
		c.note(fmt.Sprintf("x11: no xauth cookie (%v); the display must accept connections without one", err))
		x.cookie = nil
	}
	fake := make([]byte, 16)
	rand.Read(fake)
	// Subscribe before asking, so no open is missed.
	sub := c.conn.Subscribe(context.Background(), sshtap.KindX11Open)
	if err := sess.RequestX11(false, x11AuthProto, hex.EncodeToString(fake), x.screen); err != nil {
		sub.Close()
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for ev := range sub.Events() {
			open, ok := ev.(*sshtap.X11OpenEvent)
			if !ok {
				continue
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.serveX11(open, x, fake)
			}()
		}
	}()
	return nil
}

// serveX11 connects to the local display first, as ssh does, so that a
// display that is not there is an OPEN_FAILURE the server sees, then
// accepts the channel and joins the two.
func (c *client) serveX11(open *sshtap.X11OpenEvent, x *x11Display, fake []byte) {
	local, err := net.DialTimeout(x.network, x.addr, 10*time.Second)
	if err != nil {
		c.note(fmt.Sprintf("warning: x11: local display %s: %v", x.addr, err))
		open.Reject(sshtap.OpenConnectFailed, "cannot connect to the local X display")
		return
	}
	ch, err := open.Accept()
	if err != nil {
		local.Close()
		return
	}
	defer ch.Close()
	if !c.track(ch, local) {
		local.Close()
		return
	}
	defer c.untrack(ch, local)
	ch.SetReadDeadline(time.Now().Add(30 * time.Second))
	setup, err := readX11Setup(ch)
	ch.SetReadDeadline(time.Time{})
	if err == nil {
		setup, err = substituteCookie(setup, fake, x.cookie)
	}
	if err == nil {
		_, err = local.Write(setup)
	}
	if err != nil {
		c.note(fmt.Sprintf("warning: x11: connection from %s:%d refused: %v", open.OriginAddr, open.OriginPort, err))
		local.Close()
		return
	}
	join(ch, local)
}

// readX11Setup reads the X11 connection setup request: a 12-byte header
// (byte order, protocol version, lengths of the authorization name and
// data) followed by both, each padded to 4 bytes.
func readX11Setup(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 12)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("reading the connection setup: %w", err)
	}
	order, err := x11Order(hdr[0])
	if err != nil {
		return nil, err
	}
	n, d := int(order.Uint16(hdr[6:])), int(order.Uint16(hdr[8:]))
	body := make([]byte, pad4(n)+pad4(d))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("reading the connection setup: %w", err)
	}
	return append(hdr, body...), nil
}

func x11Order(b byte) (binary.ByteOrder, error) {
	switch b {
	case 'B':
		return binary.BigEndian, nil
	case 'l':
		return binary.LittleEndian, nil
	}
	return nil, fmt.Errorf("bad byte-order byte %#x in the connection setup", b)
}

func pad4(n int) int { return (n + 3) &^ 3 }

// substituteCookie checks that setup carries the fake cookie and replaces
// it with the real one; without a real cookie the authorization is removed
// (the display then decides by other means).
func substituteCookie(setup, fake, real []byte) ([]byte, error) {
	order, err := x11Order(setup[0])
	if err != nil {
		return nil, err
	}
	n, d := int(order.Uint16(setup[6:])), int(order.Uint16(setup[8:]))
	name := setup[12 : 12+n]
	data := setup[12+pad4(n) : 12+pad4(n)+d]
	// Constant time, as the cookie is a secret the remote side guesses at.
	if string(name) != x11AuthProto || subtle.ConstantTimeCompare(data, fake) != 1 {
		return nil, errors.New("authorization does not match the fake cookie sent to the server")
	}
	out := append([]byte{}, setup[:12]...)
	if real == nil {
		order.PutUint16(out[6:], 0)
		order.PutUint16(out[8:], 0)
		return out, nil
	}
	order.PutUint16(out[8:], uint16(len(real)))
	out = append(out, setup[12:12+pad4(n)]...)
	out = append(out, real...)
	return append(out, make([]byte, pad4(len(real))-len(real))...), nil
}
