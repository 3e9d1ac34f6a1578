package socks

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseGreeting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		methods []byte
		rest    []byte
		err     error // ErrIncomplete, or a *FormatError when formatErr
		bad     bool
	}{
		{name: "no-auth", in: []byte{5, 1, 0}, methods: []byte{0}},
		{name: "three-methods-pipelined", in: []byte{5, 3, 0, 1, 2, 5, 1, 0}, methods: []byte{0, 1, 2}, rest: []byte{5, 1, 0}},
		{name: "zero-methods", in: []byte{5, 0, 9}, methods: []byte{}, rest: []byte{9}},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "version-only", in: []byte{5}, err: ErrIncomplete},
		{name: "methods-short", in: []byte{5, 2, 0}, err: ErrIncomplete},
		{name: "socks4", in: []byte{4, 1, 0, 80}, bad: true},
		{name: "http", in: []byte("GET / HTTP/1.1\r\n"), bad: true},
		{name: "bad-first-byte", in: []byte{6}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, rest, err := ParseGreeting(tc.in)
			checkErr(t, err, tc.err, tc.bad)
			if err != nil {
				if !bytes.Equal(rest, tc.in) {
					t.Errorf("rest after an error %x, want the input %x", rest, tc.in)
				}
				return
			}
			if !bytes.Equal(g.Methods, tc.methods) || !bytes.Equal(rest, tc.rest) {
				t.Errorf("methods %x rest %x, want %x %x", g.Methods, rest, tc.methods, tc.rest)
			}
		})
	}
	g, _, _ := ParseGreeting([]byte{5, 2, 2, 0})
	if !g.Offers(MethodNoAuth) || g.Offers(1) {
		t.Errorf("Offers on methods %x: no-auth %v, GSSAPI %v", g.Methods, g.Offers(MethodNoAuth), g.Offers(1))
	}
}

func checkErr(t *testing.T, err, want error, bad bool) {
	t.Helper()
	var fe *FormatError
	switch {
	case bad:
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T), want a *FormatError", err, err)
		}
	case want != nil:
		if !errors.Is(err, want) {
			t.Fatalf("error %v, want %v", err, want)
		}
	case err != nil:
		t.Fatalf("unexpected error %v", err)
	}
}

// What curl 7.88 sends: --socks5h (a domain name), --socks5 with a
// resolved IPv4 or IPv6 address, --socks4 and --socks4a.
func TestParseRequest5(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want Request
		rest []byte
		err  error
		bad  bool
	}{
		{name: "domain", in: []byte("\x05\x01\x00\x03\x0bexample.com\x00\x50"),
			want: Request{Version: 5, Command: CommandConnect, AddrType: AddrDomain, Host: "example.com", Port: 80}},
		{name: "ipv4", in: []byte{5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90},
			want: Request{Version: 5, Command: CommandConnect, AddrType: AddrIPv4, Host: "127.0.0.1", Port: 8080}},
		{name: "ipv6", in: append([]byte{5, 1, 0, 4}, append(netip.MustParseAddr("::1").AsSlice(), 0x01, 0xbb)...),
			want: Request{Version: 5, Command: CommandConnect, AddrType: AddrIPv6, Host: "::1", Port: 443}},
		{name: "ipv4-mapped-stays-v6", in: append([]byte{5, 1, 0, 4}, append(netip.MustParseAddr("::ffff:10.0.0.1").AsSlice(), 0, 22)...),
			want: Request{Version: 5, Command: CommandConnect, AddrType: AddrIPv6, Host: "::ffff:10.0.0.1", Port: 22}},
		{name: "bind-is-read", in: []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0},
			want: Request{Version: 5, Command: CommandBind, AddrType: AddrIPv4, Host: "0.0.0.0", Port: 0}},
		{name: "udp-associate-is-read", in: []byte{5, 3, 0, 1, 1, 2, 3, 4, 0, 53},
			want: Request{Version: 5, Command: CommandUDPAssociate, AddrType: AddrIPv4, Host: "1.2.3.4", Port: 53}},
		{name: "data-after", in: []byte("\x05\x01\x00\x03\x01h\x00\x16SSH-2.0-x\r\n"),
			want: Request{Version: 5, Command: CommandConnect, AddrType: AddrDomain, Host: "h", Port: 22}, rest: []byte("SSH-2.0-x\r\n")},
		{name: "rsv-ignored", in: []byte{5, 1, 0xff, 1, 127, 0, 0, 1, 0, 80},
			want: Request{Version: 5, Command: CommandConnect, AddrType: AddrIPv4, Host: "127.0.0.1", Port: 80}},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "header-short", in: []byte{5, 1, 0}, err: ErrIncomplete},
		{name: "domain-length-missing", in: []byte{5, 1, 0, 3}, err: ErrIncomplete},
		{name: "domain-short", in: []byte("\x05\x01\x00\x03\x0bexample.co"), err: ErrIncomplete},
		{name: "port-short", in: []byte{5, 1, 0, 1, 127, 0, 0, 1, 0}, err: ErrIncomplete},
		{name: "ipv6-short", in: []byte{5, 1, 0, 4, 0, 0, 0, 0}, err: ErrIncomplete},
		{name: "empty-domain", in: []byte{5, 1, 0, 3, 0, 0, 80}, bad: true},
		{name: "nul-in-domain", in: []byte("\x05\x01\x00\x03\x03a\x00b\x00\x50"), bad: true},
		{name: "version-4", in: []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, bad: true},
		{name: "version-only-bad", in: []byte{0x16}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rest, err := ParseRequest5(tc.in)
			checkRequest(t, tc.in, r, rest, err, tc.want, tc.rest, tc.err, tc.bad)
		})
	}
	for _, atyp := range []byte{0, 2, 5, 0xff} {
		_, _, err := ParseRequest5([]byte{5, 1, 0, atyp, 1, 2, 3, 4, 5, 6})
		var ae *AddressTypeError
		if !errors.As(err, &ae) || ae.Type != atyp {
			t.Errorf("address type %d: error %v, want an *AddressTypeError naming it", atyp, err)
		}
	}
}

func TestParseRequest4(t *testing.T) {
	long := strings.Repeat("u", MaxField+1)
	for _, tc := range []struct {
		name string
		in   []byte
		want Request
		rest []byte
		err  error
		bad  bool
	}{
		{name: "socks4", in: []byte("\x04\x01\x00\x50\x7f\x00\x00\x01\x00"),
			want: Request{Version: 4, Command: CommandConnect, AddrType: AddrIPv4, Host: "127.0.0.1", Port: 80}},
		{name: "socks4-userid", in: []byte("\x04\x01\x1f\x90\x0a\x01\x02\x03fred\x00"),
			want: Request{Version: 4, Command: CommandConnect, AddrType: AddrIPv4, Host: "10.1.2.3", Port: 8080, UserID: "fred"}},
		{name: "socks4a", in: []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00example.com\x00"),
			want: Request{Version: 4, Command: CommandConnect, AddrType: AddrDomain, Host: "example.com", Port: 80}},
		{name: "socks4a-userid-data-after", in: []byte("\x04\x01\x00\x16\x00\x00\x00\xffme\x00h.example\x00SSH-2.0"),
			want: Request{Version: 4, Command: CommandConnect, AddrType: AddrDomain, Host: "h.example", Port: 22, UserID: "me"}, rest: []byte("SSH-2.0")},
		{name: "zero-address-is-not-4a", in: []byte("\x04\x01\x00\x50\x00\x00\x00\x00\x00host\x00"),
			want: Request{Version: 4, Command: CommandConnect, AddrType: AddrIPv4, Host: "0.0.0.0", Port: 80}, rest: []byte("host\x00")},
		{name: "bind-is-read", in: []byte("\x04\x02\x00\x50\x7f\x00\x00\x01\x00"),
			want: Request{Version: 4, Command: CommandBind, AddrType: AddrIPv4, Host: "127.0.0.1", Port: 80}},
		{name: "userid-at-limit", in: []byte("\x04\x01\x00\x50\x7f\x00\x00\x01" + long[1:] + "\x00"),
			want: Request{Version: 4, Command: CommandConnect, AddrType: AddrIPv4, Host: "127.0.0.1", Port: 80, UserID: long[1:]}},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "header-short", in: []byte{4, 1, 0, 80, 127, 0, 0}, err: ErrIncomplete},
		{name: "userid-unterminated", in: []byte("\x04\x01\x00\x50\x7f\x00\x00\x01fre"), err: ErrIncomplete},
		{name: "host-unterminated", in: []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00exam"), err: ErrIncomplete},
		{name: "host-missing", in: []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00"), err: ErrIncomplete},
		{name: "userid-too-long", in: []byte("\x04\x01\x00\x50\x7f\x00\x00\x01" + long), bad: true},
		{name: "userid-too-long-terminated", in: []byte("\x04\x01\x00\x50\x7f\x00\x00\x01" + long + "\x00"), bad: true},
		{name: "host-too-long", in: []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00" + long), bad: true},
		{name: "host-empty", in: []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00"), bad: true},
		{name: "version-5", in: []byte{5, 1, 0}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rest, err := ParseRequest4(tc.in)
			checkRequest(t, tc.in, r, rest, err, tc.want, tc.rest, tc.err, tc.bad)
		})
	}
}

// The longest valid handshakes fit in MaxHandshake, and a buffer that size
// filled with an unterminated USERID is refused, not incomplete.
func TestMaxHandshake(t *testing.T) {
	name := strings.Repeat("n", 255)
	greeting := append([]byte{5, 255}, bytes.Repeat([]byte{0}, 255)...)
	req := append([]byte{5, 1, 0, 3, 255}, append([]byte(name), 0, 80)...)
	all := append(greeting, req...)
	if len(all) > MaxHandshake {
		t.Errorf("longest SOCKS 5 handshake %d bytes > MaxHandshake %d", len(all), MaxHandshake)
	}
	_, rest, err := ParseGreeting(all)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, err := ParseRequest5(rest); err != nil || r.Host != name {
		t.Fatalf("longest request: %v", err)
	}
	v4a := []byte("\x04\x01\x00\x50\x00\x00\x00\x01" + name + "\x00" + name + "\x00")
	if len(v4a) != MaxHandshake {
		t.Errorf("longest SOCKS 4a request %d bytes, MaxHandshake %d", len(v4a), MaxHandshake)
	}
	if r, _, err := ParseRequest4(v4a); err != nil || r.Host != name || r.UserID != name {
		t.Fatalf("longest 4a request: %+v %v", r, err)
	}
	full := append([]byte{4, 1, 0, 80, 127, 0, 0, 1}, bytes.Repeat([]byte{'u'}, MaxHandshake-8)...)
	var fe *FormatError
	if _, _, err := ParseRequest4(full); !errors.As(err, &fe) {
		t.Errorf("a full buffer of USERID: %v, want a *FormatError", err)
	}
}

func TestAppendReplies(t *testing.T) {
	for _, tc := range []struct {
		rep   Reply
		bound netip.AddrPort
		want  []byte
	}{
		{ReplySucceeded, netip.AddrPort{}, []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		{ReplyConnectionRefused, netip.AddrPort{}, []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}},
		{ReplySucceeded, netip.MustParseAddrPort("192.0.2.7:1080"), []byte{5, 0, 0, 1, 192, 0, 2, 7, 0x04, 0x38}},
		{ReplySucceeded, netip.MustParseAddrPort("[::ffff:192.0.2.7]:1"), []byte{5, 0, 0, 1, 192, 0, 2, 7, 0, 1}},
		{ReplyHostUnreachable, netip.MustParseAddrPort("[2001:db8::1]:443"),
			[]byte{5, 4, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb}},
	} {
		if got := AppendReply5([]byte{0xaa}, tc.rep, tc.bound); !bytes.Equal(got, append([]byte{0xaa}, tc.want...)) {
			t.Errorf("AppendReply5(%v, %v) = %x, want aa%x", tc.rep, tc.bound, got, tc.want)
		}
	}
	if got := AppendReply4(nil, Reply4Rejected); !bytes.Equal(got, []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("AppendReply4 = %x", got)
	}
	if got := AppendMethod(nil, MethodNoAcceptable); !bytes.Equal(got, []byte{5, 0xff}) {
		t.Errorf("AppendMethod = %x", got)
	}
	if ReplyCommandNotSupported.String() != "command not supported" || Reply(0x42).String() != "reply 0x42" {
		t.Errorf("Reply names: %q %q", ReplyCommandNotSupported, Reply(0x42))
	}
}

func TestRequestAddr(t *testing.T) {
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{Host: "::1", Port: 80}, "[::1]:80"},
		{Request{Host: "example.com", Port: 443}, "example.com:443"},
		{Request{Host: "10.0.0.1", Port: 0}, "10.0.0.1:0"},
	} {
		if got := tc.r.Addr(); got != tc.want {
			t.Errorf("%+v.Addr() = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// checkRequest checks a parsed request against the expected one, or the
// error and the untouched input after a failure.
func checkRequest(t *testing.T, in []byte, r Request, rest []byte, err error, want Request, wantRest []byte, wantErr error, bad bool) {
	t.Helper()
	checkErr(t, err, wantErr, bad)
	if err != nil {
		if !bytes.Equal(rest, in) {
			t.Errorf("rest after an error %x, want the input", rest)
		}
		return
	}
	if r != want || !bytes.Equal(rest, wantRest) {
		t.Errorf("got %+v rest %q, want %+v rest %q", r, rest, want, wantRest)
	}
}
