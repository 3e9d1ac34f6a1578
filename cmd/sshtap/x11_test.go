package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// fakeXServer listens on 127.0.0.1:6000+N for a free display number N and
// answers each connection whose setup carries cookie with "OK" (and
// anything else with "NO").
func fakeXServer(t *testing.T, cookie []byte) (display string) {
	t.Helper()
	var l net.Listener
	var n int
	for n = 50; n < 500; n++ {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(6000+n)); err == nil {
			break
		}
	}
	if l == nil {
		t.Fatal("no free X display port")
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			setup, err := readX11Setup(c)
			reply := "NO"
			if err == nil && bytes.Contains(setup, []byte(x11AuthProto)) && bytes.Contains(setup, cookie) {
				reply = "OK"
			}
			io.WriteString(c, reply)
			c.Close()
		}
	}()
	return fmt.Sprintf("127.0.0.1:%d", n)
}

// TestClientX11SSHD: with -X against sshd (X11Forwarding yes), a program on
// the server connecting to its $DISPLAY reaches the local display. The
// server side only ever sees a fake cookie; the local display receives the
// real one from xauth (substituted in the connection setup), and the open
// shows as an x11-open event.
func TestClientX11SSHD(t *testing.T) {
	testpeer.Require(t, "xauth", "bash")
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{
		"X11Forwarding yes", "X11UseLocalhost yes", "X11DisplayOffset 10", "XAuthLocation " + testpeer.Binary(t, "xauth"),
	}})
	home := peerHome(t, d, true)
	real := []byte("0123456789abcdef")
	display := fakeXServer(t, real)
	xa := filepath.Join(t.TempDir(), "Xauthority")
	if out, err := exec.Command("xauth", "-f", xa, "add", display, x11AuthProto, hex.EncodeToString(real)).CombinedOutput(); err != nil {
		t.Fatalf("xauth add: %v: %s", err, out)
	}
	// On the server: read the (fake) cookie sshd stored, send an X11
	// setup carrying it to $DISPLAY, print the display's answer.
	remote := `bash -c '
set -e
num=${DISPLAY#*:}; num=${num%%.*}
hexc=$(xauth list "$DISPLAY" | awk "{print \$3}" | head -n1)
esc=$(printf %s "$hexc" | sed "s/../\\\\x&/g")
exec 3<>/dev/tcp/127.0.0.1/$((6000+num))
{ printf "l\000\013\000\000\000\022\000\020\000\000\000MIT-MAGIC-COOKIE-1\000\000"; printf "$esc"; } >&3
head -c 2 <&3; echo
echo "fake=$hexc" >&2
'`
	events := filepath.Join(t.TempDir(), "events")
	env := []string{"HOME=" + home, "USER=root", "DISPLAY=" + display, "XAUTHORITY=" + xa}
	r := runBin(t, 60*time.Second, env, "", "-X", "-p", strconv.Itoa(d.Port), "--json", "--events", events, "root@127.0.0.1", remote)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "OK" {
		t.Fatalf("exit %d, stdout %q (want OK)\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, hex.EncodeToString(real)) || !strings.Contains(r.stderr, "fake=") {
		t.Errorf("the server saw the real cookie, or no cookie:\n%s", r.stderr)
	}
	data := readFile(t, events)
	found := false
	for _, e := range ndjson(t, data) {
		if e["kind"] == "x11-open" && e["origin_addr"] == "127.0.0.1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no x11-open event from 127.0.0.1:\n%s", data)
	}
}
