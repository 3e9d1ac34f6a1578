package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// httpServer serves "hello <path> via <Host header>" on addr ("127.0.0.1:0",
// "[::1]:0") until cleanup; nil when addr cannot be listened on.
func httpServer(t *testing.T, addr string) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s via %s", r.URL.Path, r.Host)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// curlThrough fetches url with curl through the SOCKS proxy at proxy, as
// curl's proxy scheme says (socks5h: the proxy resolves names, as
// --socks5-hostname; socks4a; socks4 and socks5: curl resolves them) and
// returns the body, failing the test when curl fails.
func curlThrough(t *testing.T, scheme, proxy, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testpeer.Binary(t, "curl"), "-sS", "--max-time", "30", "--noproxy", "", "--proxy", scheme+"://"+proxy, url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl --proxy %s://%s %s: %v\n%s", scheme, proxy, url, err, stderr.String())
	}
	return string(out)
}

// socksRequest connects to the SOCKS server at proxy, sends handshake
// (all of it at once, as a pipelining client may) and reads n reply
// bytes. The connection stays open for the caller.
func socksRequest(t *testing.T, proxy string, handshake []byte, n int) (net.Conn, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(handshake); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, n)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("reading the %d-byte reply to %x: %v (got %x)", n, handshake, err, reply)
	}
	return c, reply
}

func portBytes(p int) []byte { return []byte{byte(p >> 8), byte(p)} }

// socks5Connect is a no-auth greeting and a CONNECT request for an
// address of type atyp.
func socks5Connect(atyp byte, addr []byte, port int) []byte {
	b := []byte{5, 1, 0, 5, 1, 0, atyp}
	if atyp == 3 {
		b = append(b, byte(len(addr)))
	}
	return append(append(b, addr...), portBytes(port)...)
}

// checkDynamic runs the SOCKS checks that hold through any server: curl
// as a socks5h, socks4a, socks4 and socks5 proxy of a local HTTP server, a raw
// SOCKS 5 client echoing data with half-close, and the error replies for
// a refused destination, unsupported commands and address types, and a
// client without an acceptable method.
func checkDynamic(t *testing.T, proxy string) {
	web := httpServer(t, "127.0.0.1:0")
	wport := web.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct{ opt, url, want string }{
		{"socks5h", fmt.Sprintf("http://localhost:%d/five-h", wport), fmt.Sprintf("hello /five-h via localhost:%d", wport)},
		{"socks4a", fmt.Sprintf("http://localhost:%d/four-a", wport), fmt.Sprintf("hello /four-a via localhost:%d", wport)},
		{"socks4", fmt.Sprintf("http://127.0.0.1:%d/four", wport), fmt.Sprintf("hello /four via 127.0.0.1:%d", wport)},
		{"socks5", fmt.Sprintf("http://127.0.0.1:%d/five", wport), fmt.Sprintf("hello /five via 127.0.0.1:%d", wport)},
	} {
		if got := curlThrough(t, tc.opt, proxy, tc.url); got != tc.want {
			t.Errorf("curl --proxy %s:// %s: body %q, want %q", tc.opt, tc.url, got, tc.want)
		}
	}
	if web6 := httpServer(t, "[::1]:0"); web6 == nil {
		t.Log("no IPv6 loopback: SOCKS 5 with an IPv6 address not tried")
	} else {
		p6 := web6.Listener.Addr().(*net.TCPAddr).Port
		url := fmt.Sprintf("http://[::1]:%d/six", p6)
		if got, want := curlThrough(t, "socks5", proxy, url), fmt.Sprintf("hello /six via [::1]:%d", p6); got != want {
			t.Errorf("curl --proxy socks5:// %s: body %q, want %q", url, got, want)
		}
	}

	// Data both ways, the client's EOF passed on (the echo server answers
	// it with its own), bytes sent right after the request included.
	echo := echoServer(t)
	c, reply := socksRequest(t, proxy, append(socks5Connect(1, []byte{127, 0, 0, 1}, echo.Port), "early "...), 12)
	if !bytes.Equal(reply, []byte{5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("SOCKS 5 CONNECT to the echo server: reply %x, want 0500 and 05000001 00000000 0000", reply)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, append([]byte("early "), payload...)) {
		t.Errorf("echo through SOCKS 5: %d bytes back (%v), want the %d sent", len(got), err, len("early ")+len(payload))
	}

	closed := freeTCPPort(t)
	for _, tc := range []struct {
		name      string
		handshake []byte
		want      []byte
	}{
		{"socks5-refused", socks5Connect(1, []byte{127, 0, 0, 1}, closed), []byte{5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"socks5h-refused", socks5Connect(3, []byte("localhost"), closed), []byte{5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"socks4-refused", append([]byte{4, 1}, append(portBytes(closed), 127, 0, 0, 1, 0)...), []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}},
		{"socks5-bind", []byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, []byte{5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"socks5-udp-associate", []byte{5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0}, []byte{5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"socks4-bind", []byte{4, 2, 0, 80, 127, 0, 0, 1, 0}, []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}},
		{"socks5-address-type", []byte{5, 1, 0, 5, 1, 0, 7, 1, 2, 3, 4}, []byte{5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"socks5-username-only", []byte{5, 1, 2}, []byte{5, 0xff}},
	} {
		c, reply := socksRequest(t, proxy, tc.handshake, len(tc.want))
		if !bytes.Equal(reply, tc.want) {
			t.Errorf("%s: reply %x, want %x", tc.name, reply, tc.want)
		}
		// Then the server closes.
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: %d more bytes after the reply, want the connection closed", tc.name, n)
		}
	}
}

// TestClientDynamicForward: -D against sshd with curl's SOCKS 5, 4a and 4,
// domain names resolved by the server (its log names the host as the
// client sent it), and the error replies.
func TestClientDynamicForward(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "curl")
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	dport := strconv.Itoa(freeTCPPort(t))
	p := startBG(t, []string{"HOME=" + home, "USER=root"}, nil, "-p", strconv.Itoa(d.Port), "-v", "-N", "-D", "127.0.0.1:"+dport, "root@127.0.0.1")
	p.waitStderr("dynamic forward 127.0.0.1:"+dport, 30*time.Second)
	proxy := "127.0.0.1:" + dport
	checkDynamic(t, proxy)
	// sshd was asked for "localhost", not an address: the name was
	// resolved on the server's side.
	d.WaitLog(t, "target localhost port ")
	se := p.stderr.String()
	for _, w := range []string{"SOCKS 5 CONNECT localhost:", "SOCKS 4a CONNECT localhost:", "SOCKS 4 CONNECT 127.0.0.1:", "SOCKS 5 CONNECT [::1]:"} {
		if !strings.Contains(se, w) && !(strings.Contains(w, "::1") && !hasIPv6Loopback()) {
			t.Errorf("no %q note under -v:\n%s", w, se)
		}
	}
	if !strings.Contains(se, "Connection refused") {
		t.Errorf("the refused destination is not reported with sshd's reason:\n%s", se)
	}
	if code := p.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// TestClientDynamicForwardServe: -D through `sshtap serve
// --allow-forwarding`, and without it every CONNECT answered "connection
// not allowed by ruleset".
func TestClientDynamicForwardServe(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "curl")
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprintf("allow-%v", allow), func(t *testing.T) {
			args := []string{"--listen", "127.0.0.1:0", "--host-key", filepath.Join(t.TempDir(), "hk"), "--authorized-keys", writeAuthorizedKeys(t, key)}
			if allow {
				args = append(args, "--allow-forwarding")
			}
			r := startServe(t, nil, args...)
			host, port, _ := net.SplitHostPort(r.addr)
			dport := strconv.Itoa(freeTCPPort(t))
			p := startBG(t, []string{"HOME=" + t.TempDir(), "USER=tester"}, nil, "-F", "none", "-i", key.Path, "-o", "StrictHostKeyChecking=no",
				"-p", port, "-v", "-N", "-D", "127.0.0.1:"+dport, "tester@"+host)
			p.waitStderr("dynamic forward 127.0.0.1:"+dport, 30*time.Second)
			proxy := "127.0.0.1:" + dport
			if allow {
				checkDynamic(t, proxy)
				return
			}
			web := httpServer(t, "127.0.0.1:0")
			c, reply := socksRequest(t, proxy, socks5Connect(1, []byte{127, 0, 0, 1}, web.Listener.Addr().(*net.TCPAddr).Port), 12)
			if want := []byte{5, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0}; !bytes.Equal(reply, want) {
				t.Errorf("CONNECT to a server that forbids forwarding: reply %x, want %x", reply, want)
			}
			c.Close()
			p.waitStderr("ADMINISTRATIVELY_PROHIBITED", 20*time.Second)
		})
	}
}
