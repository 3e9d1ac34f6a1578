package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"sshtap"
	"sshtap/internal/socks"
)

// openErr is a refused channel open as Conn.Dial returns it.
func openErr(reason sshtap.OpenFailureReason, msg string) error {
	return &sshtap.ForwardError{Op: "dial", Kind: "direct-tcpip", Addr: "h:1", Err: &sshtap.OpenChannelError{Reason: reason, Message: msg}}
}

func TestParseDynamicForward(t *testing.T) {
	for _, tc := range []struct{ spec, addr string }{
		{"1080", "localhost:1080"},
		{"127.0.0.1:1080", "127.0.0.1:1080"},
		{"*:1080", ":1080"},
		{":1080", ":1080"},
		{"[::1]:1080", "[::1]:1080"},
		{"0", "localhost:0"},
	} {
		fs, err := parseDynamicForward(tc.spec)
		if err != nil || fs.listenNet != "tcp" || fs.listenAddr != tc.addr || fs.dialNet != "" {
			t.Errorf("parseDynamicForward(%q) = %+v, %v; want tcp %s", tc.spec, fs, err, tc.addr)
		}
	}
	for _, bad := range []string{"", "x", "70000", "a:b:1080", "1080:h:80", "[::1:1080", "-1"} {
		if fs, err := parseDynamicForward(bad); err == nil {
			t.Errorf("parseDynamicForward(%q) = %+v, want an error", bad, fs)
		}
	}
}

// A SOCKS client that stalls, or sends more than any valid handshake, is
// cut off before anything is dialled: bounded time and memory.
func TestSOCKSHandshakeBounded(t *testing.T) {
	old := socksHandshakeTimeout
	socksHandshakeTimeout = 300 * time.Millisecond
	defer func() { socksHandshakeTimeout = old }()
	c := &client{s: &settings{}} // no connection: nothing may be dialled
	for _, tc := range []struct {
		name      string
		send      []byte
		reply     []byte // what the client reads before the close
		errSubstr string
	}{
		{name: "silent", errSubstr: "no complete SOCKS request within"},
		{name: "one-byte", send: []byte{5}, errSubstr: "no complete SOCKS request within"},
		{name: "half-request", send: []byte{5, 1, 0, 5, 1, 0, 3, 20, 'a'}, reply: []byte{5, 0}, errSubstr: "no complete SOCKS request within"},
		{name: "huge-userid", send: append([]byte{4, 1, 0, 80, 127, 0, 0, 1}, bytes.Repeat([]byte{'u'}, 4096)...),
			reply: []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}, errSubstr: "USERID longer than 255"},
		{name: "not-socks", send: []byte("GET / HTTP/1.1\r\n\r\n"), errSubstr: "not a SOCKS 4 or 5 client (first byte 0x47)"},
		{name: "no-acceptable-method", send: []byte{5, 2, 1, 2}, reply: []byte{5, 0xff}, errSubstr: "no method sshtap supports"},
		{name: "bad-address-type", send: []byte{5, 1, 0, 5, 1, 0, 9, 0, 0}, reply: []byte{5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}, errSubstr: "address type 0x09"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			type res struct {
				err error
				d   time.Duration
			}
			done := make(chan res, 1)
			start := time.Now()
			go func() {
				_, _, err := c.socksConnect(context.Background(), server)
				server.Close()
				done <- res{err, time.Since(start)}
			}()
			go client.Write(tc.send) // net.Pipe: unread bytes block the writer until the close
			got, _ := io.ReadAll(client)
			r := <-done
			if r.err == nil || !strings.Contains(r.err.Error(), tc.errSubstr) {
				t.Errorf("error %v, want one containing %q", r.err, tc.errSubstr)
			}
			if !bytes.Equal(got, tc.reply) {
				t.Errorf("client read %x, want %x", got, tc.reply)
			}
			if r.d > 10*time.Second {
				t.Errorf("handshake ended after %v", r.d)
			}
		})
	}
}

func TestSOCKSReplyFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want socks.Reply
	}{
		{openErr(1, "administratively prohibited"), socks.ReplyNotAllowed},
		{openErr(2, "Connection refused"), socks.ReplyConnectionRefused},
		{openErr(2, "dial tcp 127.0.0.1:9: connect: connection refused"), socks.ReplyConnectionRefused},
		{openErr(2, "Name or service not known"), socks.ReplyHostUnreachable},
		{openErr(2, "dial tcp: lookup nosuch.invalid: no such host"), socks.ReplyHostUnreachable},
		{openErr(2, "No route to host"), socks.ReplyHostUnreachable},
		{openErr(2, "Network is unreachable"), socks.ReplyNetworkUnreachable},
		{openErr(4, "no more channels"), socks.ReplyGeneralFailure},
		{errors.New("connection lost"), socks.ReplyGeneralFailure},
	} {
		if got := socksReplyFor(tc.err); got != tc.want {
			t.Errorf("socksReplyFor(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
