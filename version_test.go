package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// vxRawServer runs an sshtap client against a scripted server. The server
// first reads the client's identification line, then lets script write
// whatever it wants (in the writes it chooses), then, with hangUp, closes
// the stream; it drains what the client sends meanwhile. It returns the
// client, all its events and its handshake error.
func vxRawServer(t *testing.T, hangUp bool, script func(w io.Writer) error) (*Conn, []Event, error) {
	t.Helper()
	a, b := net.Pipe()
	b.SetDeadline(time.Now().Add(20 * time.Second))
	c := ClientConn(a, &Config{NoAuth: true, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	sub := c.SubscribeBuffer(context.Background(), KindAll, 4096)
	gotLine := make(chan struct{})
	drained := hpGo(func() error {
		var buf [4096]byte
		signalled := false
		for {
			n, err := b.Read(buf[:])
			if !signalled && bytes.IndexByte(buf[:n], '\n') >= 0 {
				signalled = true
				close(gotLine)
			}
			if err != nil {
				if !signalled {
					close(gotLine)
				}
				return err
			}
		}
	})
	wrote := hpGo(func() error {
		<-gotLine
		err := script(b)
		if hangUp {
			b.Close()
		}
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.Handshake(ctx)
	c.Close()
	b.Close()
	wrote()
	drained()
	var evs []Event
	for ev := range sub.Events() {
		evs = append(evs, ev)
	}
	return c, evs, err
}

// vxRawClient runs an sshtap server against a scripted client.
func vxRawClient(t *testing.T, script func(w io.Writer) error) (*Conn, error) {
	t.Helper()
	testKeys(t)
	a, b := net.Pipe()
	a.SetDeadline(time.Now().Add(20 * time.Second))
	drained := hpGo(func() error { _, err := io.Copy(io.Discard, a); return err })
	s := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}})
	wrote := hpGo(func() error { return script(a) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := serverKeyed(ctx, s)
	s.Close()
	a.Close()
	wrote()
	drained()
	return s, err
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func bannerLines(evs []Event) []string {
	var out []string
	for _, e := range evs {
		if b, ok := e.(*BannerLineEvent); ok {
			out = append(out, b.Line)
		}
	}
	return out
}

func wantVersionError(t *testing.T, err error, contains string) {
	t.Helper()
	var ve *VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a *VersionError", err)
	}
	if !strings.HasPrefix(err.Error(), "sshtap: ") || !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q: want an sshtap: message mentioning %q", err, contains)
	}
}

// TestVersionPreamble: ServerConfig.Preamble lines reach the client as
// BannerLineEvents, in order, before the handshake completes.
func TestVersionPreamble(t *testing.T) {
	testKeys(t)
	pre := []string{"Welcome to the test", "", "  indented\tand tabbed", "ünïcödé ✓", strings.Repeat("long ", 400)}
	a, b := net.Pipe()
	c := ClientConn(a, &Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	s := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, Preamble: pre, NoClientAuth: true})
	defer c.Close()
	defer s.Close()
	sub := c.Subscribe(context.Background(), KindBannerLine|KindKex)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wait := hpGo(func() error { return s.Handshake(ctx) })
	if err := c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 10*time.Second, func(e Event) bool { _, ok := e.(*KexEvent); return ok })
	if got := bannerLines(evs); !slices.Equal(got, pre) {
		t.Errorf("banner lines %q, want %q", got, pre)
	}
	// Every banner line came before the key exchange finished.
	if _, ok := evs[len(evs)-1].(*KexEvent); !ok || len(evs) != len(pre)+1 {
		t.Errorf("events %v: want %d banner lines then the KexEvent", evs, len(pre))
	}
}

// TestVersionPreambleInvalid: a server refuses to send a preamble line
// that would be taken for an identification string.
func TestVersionPreambleInvalid(t *testing.T) {
	for _, l := range []string{"SSH-2.0-fake", "two\r\nlines"} {
		testKeys(t)
		a, b := net.Pipe()
		go io.Copy(io.Discard, a)
		s := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, Preamble: []string{"ok", l}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := serverKeyed(ctx, s)
		cancel()
		s.Close()
		a.Close()
		wantVersionError(t, err, "preamble")
	}
}

// TestVersionRawBannerLines: lines of a hand-rolled server before its
// identification string, CR LF or bare LF terminated, arrive in order.
func TestVersionRawBannerLines(t *testing.T) {
	lines := []string{"first", "", "third line: 8192 bytes next", strings.Repeat("x", 8192), "bare LF", "last"}
	c, sub, cerr, serr := hpClientAgainst(t, nil, func(p *hpPeer) error {
		var out []byte
		for i, l := range lines {
			out = append(out, l...)
			if i == 4 {
				out = append(out, '\n')
			} else {
				out = append(out, "\r\n"...)
			}
		}
		if err := p.write(out); err != nil {
			return err
		}
		return p.serveHandshake()
	}, nil)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
	}
	if got := bannerLines(hpEvents(sub)); !slices.Equal(got, lines) {
		t.Errorf("banner lines (%d) %.200q, want (%d) %.200q", len(got), got, len(lines), lines)
	}
	if v := c.ServerVersion(); v != "SSH-2.0-handpeer_1.0" {
		t.Errorf("ServerVersion() = %q", v)
	}
}

// TestVersionBannerLimits: at most 1024 lines of at most 8192 bytes may come
// before the identification string (OpenSSH's client limits).
func TestVersionBannerLimits(t *testing.T) {
	t.Run("1024-lines-ok", func(t *testing.T) {
		_, sub, cerr, serr := hpClientAgainst(t, nil, func(p *hpPeer) error {
			if err := p.write(bytes.Repeat([]byte("banner\r\n"), 1024)); err != nil {
				return err
			}
			return p.serveHandshake()
		}, nil)
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
		}
		if n := len(bannerLines(hpEvents(sub))); n != 1024 {
			t.Errorf("%d BannerLineEvents, want 1024", n)
		}
	})
	t.Run("1025-lines", func(t *testing.T) {
		_, evs, err := vxRawServer(t, false, writeString(strings.Repeat("banner\r\n", 1025)+"SSH-2.0-late\r\n"))
		wantVersionError(t, err, "1024")
		if n := len(bannerLines(evs)); n != 1024 {
			t.Errorf("%d BannerLineEvents before the error, want 1024", n)
		}
	})
	t.Run("8192-byte-line-split-before-LF", func(t *testing.T) {
		// The terminator arrives in a separate write: the limit is on the
		// line, not on what happens to be buffered.
		_, sub, cerr, serr := hpClientAgainst(t, nil, func(p *hpPeer) error {
			if err := p.write([]byte(strings.Repeat("y", 8192) + "\r")); err != nil {
				return err
			}
			if err := p.write([]byte("\n")); err != nil {
				return err
			}
			return p.serveHandshake()
		}, nil)
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
		}
		if got := bannerLines(hpEvents(sub)); len(got) != 1 || got[0] != strings.Repeat("y", 8192) {
			t.Errorf("banner lines %.60q, want one of 8192 bytes", got)
		}
	})
	for _, tc := range []struct {
		name, data string
	}{
		{"8193-byte-line", strings.Repeat("z", 8193) + "\r\nSSH-2.0-x\r\n"},
		{"100000-byte-line-one-write", strings.Repeat("z", 100000) + "\r\nSSH-2.0-x\r\n"},
		{"no-newline", strings.Repeat("z", 20000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, evs, err := vxRawServer(t, false, writeString(tc.data))
			wantVersionError(t, err, "8192")
			if n := len(bannerLines(evs)); n != 0 {
				t.Errorf("%d BannerLineEvents for an overlong line", n)
			}
		})
	}
}

// TestVersionGarbage: peers that never send a usable identification string.
func TestVersionGarbage(t *testing.T) {
	junk := make([]byte, 6000)
	for i := range junk {
		junk[i] = byte(i*131 + 7)
		if junk[i] == '\n' {
			junk[i] = 0
		}
	}
	for _, tc := range []struct {
		name, data, msg string
		hangUp          bool
	}{
		{"ssh-1.5", "SSH-1.5-OldServer\r\n", "unsupported protocol version", false},
		{"ssh-3.0", "SSH-3.0-Future\r\n", "unsupported protocol version", false},
		{"ssh-2.0-no-dash", "SSH-2.0\r\n", "unsupported protocol version", false},
		{"too-long-id", "SSH-2.0-" + strings.Repeat("v", 300) + "\r\n", "255", false},
		{"cr-inside-id", "SSH-2.0-a\rb\r\n", "CR", false},
		{"nul-in-id", "SSH-2.0-a\x00b\r\n", "NUL", false},
		{"junk-then-close", string(junk), "closed during version exchange", true},
		{"binary-lines-then-version", "\x00\x01\x02\xff\n\x7fELF\x00\x00\r\nSSH-2.0-x\r\n", "NUL", false},
		{"lines-then-close", "hello\r\nworld\r\n", "no identification string", true},
		{"nothing", "", "no identification string", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := vxRawServer(t, tc.hangUp, writeString(tc.data))
			wantVersionError(t, err, tc.msg)
			if tc.hangUp && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "closed") {
				t.Errorf("error %q does not say the peer closed the stream", err)
			}
		})
	}
}

// TestVersionServerRejectsClientBanner: only servers may send lines before
// their identification string (RFC 4253 §4.2); like OpenSSH's sshd, an
// sshtap server drops a client that does.
func TestVersionServerRejectsClientBanner(t *testing.T) {
	for _, tc := range []struct{ name, data, msg string }{
		{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not an identification string"},
		{"banner-then-ssh", "hello\r\nSSH-2.0-x\r\n", "not an identification string"},
		{"ssh-1.5", "SSH-1.5-old\r\n", "unsupported protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vxRawClient(t, writeString(tc.data))
			wantVersionError(t, err, tc.msg)
		})
	}
}

// TestVersionAccepted: identification strings that must work: a bare LF
// terminator, SSH-1.99- (RFC 4253 §5.1), comments, the KEXINIT in the same
// write, or the whole thing a byte at a time.
func TestVersionAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, version, term string
		byteAtATime         bool
	}{
		{"crlf", "SSH-2.0-handpeer_1.0", "\r\n", false},
		{"bare-lf", "SSH-2.0-handpeer_lf", "\n", false},
		{"ssh-1.99", "SSH-1.99-compat_2.0", "\r\n", false},
		{"comments", "SSH-2.0-handpeer_1.0 some comment here", "\r\n", false},
		{"byte-at-a-time", "SSH-2.0-dribble", "\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, cerr, serr := hpClientAgainst(t, nil, func(p *hpPeer) error {
				p.version = tc.version
				// Version line and KEXINIT in one write, as a server may.
				out := append([]byte(tc.version+tc.term), p.packet(p.kexInitPayload())...)
				if tc.byteAtATime {
					for i := range out {
						if err := p.write(out[i : i+1]); err != nil {
							return err
						}
					}
				} else if err := p.write(out); err != nil {
					return err
				}
				if err := p.readVersion(); err != nil {
					return err
				}
				if err := p.readKexInit(); err != nil {
					return err
				}
				if err := p.exchange(nil); err != nil {
					return err
				}
				return p.serveService()
			}, nil)
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
			}
			// The exchange hash covers V_S without CR LF: a wrong value
			// would have failed the host key signature already.
			if v := c.ServerVersion(); v != tc.version {
				t.Errorf("ServerVersion() = %q, want %q", v, tc.version)
			}
			if v := c.ClientVersion(); v != "SSH-2.0-sshtap_0.1" {
				t.Errorf("ClientVersion() = %q", v)
			}
		})
	}
}

// TestVersionServerSideAccepted: the server side accepts a client line with
// a bare LF and comments, and the KEXINIT in the same write.
func TestVersionServerSideAccepted(t *testing.T) {
	const v = "SSH-2.0-handclient_0.9 with comments"
	s, _, serr, cerr := hpServerAgainst(t, nil, func(p *hpPeer) error {
		p.version = v
		if err := p.write(append([]byte(v+"\n"), p.packet(p.kexInitPayload())...)); err != nil {
			return err
		}
		if err := p.readVersion(); err != nil {
			return err
		}
		if err := p.readKexInit(); err != nil {
			return err
		}
		return p.exchange(nil)
	}, nil)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: server %v, hand client %v", serr, cerr)
	}
	if got := s.ClientVersion(); got != v {
		t.Errorf("server ClientVersion() = %q, want %q", got, v)
	}
	if got := s.ServerVersion(); got != "SSH-2.0-sshtap_0.1" {
		t.Errorf("server ServerVersion() = %q", got)
	}
}

// TestVersionStrings: ClientVersion and ServerVersion on both sides, with
// default and configured versions; empty before the exchange.
func TestVersionStrings(t *testing.T) {
	for _, tc := range []struct{ cv, sv string }{{"", ""}, {"MyClient_2.5", "MyServer_7.1p1"}} {
		t.Run(fmt.Sprintf("%q/%q", tc.cv, tc.sv), func(t *testing.T) {
			testKeys(t)
			a, b := net.Pipe()
			ccfg := &Config{TransportConfig: TransportConfig{Version: tc.cv}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
			scfg := &ServerConfig{TransportConfig: TransportConfig{Version: tc.sv}, HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true}
			c, s := ClientConn(a, ccfg), ServerConn(b, scfg)
			defer c.Close()
			defer s.Close()
			if c.ClientVersion() != "" || c.ServerVersion() != "" || s.ClientVersion() != "" {
				t.Errorf("versions known before the exchange")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			wait := hpGo(func() error { return s.Handshake(ctx) })
			if err := c.Handshake(ctx); err != nil {
				t.Fatal(err)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			wantC, wantS := "SSH-2.0-sshtap_0.1", "SSH-2.0-sshtap_0.1"
			if tc.cv != "" {
				wantC = "SSH-2.0-" + tc.cv
			}
			if tc.sv != "" {
				wantS = "SSH-2.0-" + tc.sv
			}
			for _, side := range []*Conn{c, s} {
				if side.ClientVersion() != wantC || side.ServerVersion() != wantS {
					t.Errorf("client=%v: versions %q / %q, want %q / %q", side.IsClient(), side.ClientVersion(), side.ServerVersion(), wantC, wantS)
				}
			}
		})
	}
}

// TestVersionOwnInvalid: our own identification string must fit the RFC
// limits; a Version that does not fails the handshake on our side.
func TestVersionOwnInvalid(t *testing.T) {
	for _, v := range []string{strings.Repeat("v", 250), "bad\r\nversion"} {
		a, b := net.Pipe()
		go io.Copy(io.Discard, b)
		c := ClientConn(a, &Config{NoAuth: true, TransportConfig: TransportConfig{Version: v}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.Handshake(ctx)
		cancel()
		c.Close()
		b.Close()
		wantVersionError(t, err, "our identification string")
	}
}
