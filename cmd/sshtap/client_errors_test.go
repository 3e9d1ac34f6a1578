package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// finalError is sshtap's closing error message: stderr from the last line
// starting "sshtap: " on (the events before it may quote the same error).
func finalError(stderr string) string {
	if strings.HasPrefix(stderr, "sshtap: ") {
		if i := strings.LastIndex(stderr, "\nsshtap: "); i < 0 {
			return stderr
		}
	}
	if i := strings.LastIndex(stderr, "\nsshtap: "); i >= 0 {
		return stderr[i+1:]
	}
	return ""
}

// wantFail checks that a run exited 255 with every one of wants in its
// closing error message.
func wantFail(t *testing.T, r result, wants ...string) {
	t.Helper()
	if r.code != 255 {
		t.Errorf("exit code %d, want 255\nstderr:\n%s", r.code, r.stderr)
	}
	msg := finalError(r.stderr)
	n := 0
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "sshtap: ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lines start with \"sshtap: \", want one message:\n%s", n, r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("error message lacks %q:\n%s\nstderr:\n%s", w, msg, r.stderr)
		}
	}
}

// TestClientUsageErrors: bad command lines exit 255 with the usage line,
// before any connection is made.
func TestClientUsageErrors(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := []string{"HOME=" + home, "USER=root"}
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"unknown-flag", []string{"-Z", "127.0.0.1"}, []string{"unknown option -Z", "usage:"}},
		{"unknown-long", []string{"--frobnicate", "127.0.0.1"}, []string{"unknown option --frobnicate", "usage:"}},
		{"no-destination", nil, []string{"no destination", "usage:"}},
		{"only-flags", []string{"-p", "22", "--json"}, []string{"no destination", "usage:"}},
		{"bad-port-word", []string{"-p", "abc", "127.0.0.1"}, []string{"bad port", "usage:"}},
		{"bad-port-zero", []string{"-p", "0", "127.0.0.1"}, []string{"bad port", "usage:"}},
		{"bad-port-big", []string{"-p", "70000", "127.0.0.1"}, []string{"bad port", "usage:"}},
		{"port-needs-value", []string{"-p"}, []string{"needs a value", "usage:"}},
		{"bad-mac-policy", []string{"--mac-policy", "bogus", "127.0.0.1"}, []string{"--mac-policy", "usage:"}},
		{"bad-only", []string{"--only", "kex,bogus", "127.0.0.1"}, []string{"--only", "usage:"}},
		{"bad-color", []string{"--color", "sometimes", "127.0.0.1"}, []string{"--color", "usage:"}},
		{"bad-rekey", []string{"--rekey-every", "often", "127.0.0.1"}, []string{"--rekey-every", "usage:"}},
		{"bad-keepalive", []string{"--keepalive", "-1s", "127.0.0.1"}, []string{"--keepalive", "usage:"}},
		{"bad-cipher", []string{"--ciphers", "rot13", "127.0.0.1"}, []string{"unsupported algorithm", "usage:"}},
		{"bad-forward", []string{"-L", "nonsense", "127.0.0.1"}, []string{"-L nonsense", "usage:"}},
		{"bad-option", []string{"-o", "StrictHostKeyChecking=perhaps", "127.0.0.1"}, []string{"StrictHostKeyChecking", "usage:"}},
		{"missing-config", []string{"-F", "/nonexistent/sshtap-config", "127.0.0.1"}, []string{"config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runDetached(t, 30*time.Second, env, tc.args...)
			wantFail(t, r, tc.wants...)
			if strings.Contains(r.stderr, "connected to") || strings.Contains(r.stderr, "connect to host") {
				t.Errorf("a usage error went on to connect:\n%s", r.stderr)
			}
		})
	}
}

// TestClientErrorsSSHD: connection, host key and authentication failures
// against sshd give the documented messages and exit 255.
func TestClientErrorsSSHD(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	port := strconv.Itoa(d.Port)
	dest := "root@127.0.0.1"

	t.Run("unknown-host-strict", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, "-o", "StrictHostKeyChecking=yes", dest, "echo ran")
		wantFail(t, r, "Host key verification failed", "StrictHostKeyChecking is yes")
		if r.stdout != "" {
			t.Errorf("the command ran: %q", r.stdout)
		}
		if kh := knownHostsOf(t, home); kh != "" {
			t.Errorf("known_hosts written: %q", kh)
		}
	})
	t.Run("unknown-host-batch", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, "-o", "BatchMode=yes", dest, "echo ran")
		wantFail(t, r, "Host key verification failed")
		if kh := knownHostsOf(t, home); kh != "" {
			t.Errorf("known_hosts written: %q", kh)
		}
	})
	t.Run("unknown-host-no-tty", func(t *testing.T) {
		t.Parallel()
		// Ask mode (the default) with no terminal and no askpass.
		home := peerHome(t, d, false)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, dest, "echo ran")
		wantFail(t, r, "Host key verification failed", "no terminal")
	})
	t.Run("accept-new", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		env := []string{"HOME=" + home}
		r := runDetached(t, 30*time.Second, env, "-p", port, "-o", "StrictHostKeyChecking=accept-new", dest, "echo first")
		if r.code != 0 || r.stdout != "first\n" {
			t.Fatalf("first run: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "Permanently added '[127.0.0.1]:"+port+"'") {
			t.Errorf("no 'Permanently added' note:\n%s", r.stderr)
		}
		kh := knownHostsOf(t, home)
		lines := strings.Split(strings.TrimSpace(kh), "\n")
		if len(lines) != 1 || !isHostKeyLine(d, lines[0]) {
			t.Fatalf("known_hosts after accept-new:\n%s", kh)
		}
		// UpdateHostKeys off: sshd's other host keys would be learned
		// on this second, verified, connection (as ssh learns them).
		r = runDetached(t, 30*time.Second, env, "-p", port, "-o", "StrictHostKeyChecking=accept-new", "-o", "UpdateHostKeys=no", dest, "echo second")
		if r.code != 0 || r.stdout != "second\n" {
			t.Fatalf("second run: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "Permanently added") {
			t.Errorf("second run added the key again:\n%s", r.stderr)
		}
		if kh2 := knownHostsOf(t, home); kh2 != kh {
			t.Errorf("known_hosts changed on the second run:\nbefore %q\nafter  %q", kh, kh2)
		}
	})
	t.Run("no-checking", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, "-o", "StrictHostKeyChecking=no", dest, "echo ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(home, ".ssh", "known_hosts")); err == nil {
			t.Errorf("StrictHostKeyChecking=no wrote known_hosts: %q", knownHostsOf(t, home))
		}
	})
	t.Run("changed-host-key", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		other := testpeer.NewKey(t, testpeer.KeyEd25519)
		kh := filepath.Join(home, ".ssh", "known_hosts")
		content := "# another host first\nexample.invalid " + other.AuthorizedKey + "\n" + other.KnownHostsLine(d.Addr) + "\n"
		if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var serverKey *testpeer.Key
		for _, hk := range d.HostKeys {
			if hk.PublicKey.Type() == ssh.KeyAlgoED25519 {
				serverKey = hk
			}
		}
		if serverKey == nil {
			t.Fatal("sshd has no ed25519 host key")
		}
		for _, check := range []string{"ask", "accept-new", "no-tty-default"} {
			args := []string{"-p", port, dest, "echo ran"}
			if check != "no-tty-default" {
				args = append([]string{"-o", "StrictHostKeyChecking=" + check}, args...)
			}
			r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, args...)
			wantFail(t, r, "REMOTE HOST IDENTIFICATION HAS CHANGED", ssh.FingerprintSHA256(serverKey.PublicKey),
				ssh.FingerprintSHA256(other.PublicKey), kh+":3", "ssh-keygen -R", "Host key verification failed")
			if r.stdout != "" {
				t.Errorf("%s: the command ran: %q", check, r.stdout)
			}
		}
		// StrictHostKeyChecking=no accepts even a changed key, as ssh
		// does: with a warning always shown, writing nothing, and with
		// forwarding (here -L) disabled.
		lport := freeTCPPort(t)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-v", "-o", "StrictHostKeyChecking=no",
			"-L", "127.0.0.1:"+strconv.Itoa(lport)+":127.0.0.1:9", "-p", port, dest, "echo ran")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Errorf("StrictHostKeyChecking=no with a changed key: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "host key of [127.0.0.1]:"+port+" CHANGED") || !strings.Contains(r.stderr, "all forwarding disabled") {
			t.Errorf("no warning about the changed key:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, "local forward") {
			t.Errorf("a forward was opened to a host whose key changed:\n%s", r.stderr)
		}
		if b, _ := os.ReadFile(kh); string(b) != content {
			t.Errorf("known_hosts changed:\n%s", b)
		}
	})
	t.Run("known-by-other-type", func(t *testing.T) {
		// As OpenSSH: a host recorded only with a key of another type
		// that now offers an ed25519 key is unknown (with a warning),
		// not changed.
		t.Parallel()
		edOnly := testpeer.StartSSHD(t, testpeer.SSHDOptions{HostKeys: testpeer.HostKeys(t, testpeer.KeyEd25519)})
		home := peerHome(t, edOnly, false)
		rsa := testpeer.NewKey(t, testpeer.KeyRSA3072)
		kh := filepath.Join(home, ".ssh", "known_hosts")
		if err := os.WriteFile(kh, []byte(rsa.KnownHostsLine(edOnly.Addr)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := strconv.Itoa(edOnly.Port)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", p, dest, "echo ran")
		wantFail(t, r, "no ssh-ed25519 host key is known", "Host key verification failed")
		if strings.Contains(r.stderr, "CHANGED") {
			t.Errorf("a new key type was reported as a changed key:\n%s", r.stderr)
		}
		r = runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-o", "StrictHostKeyChecking=accept-new", "-p", p, dest, "echo ran")
		if r.code != 0 || r.stdout != "ran\n" || !strings.Contains(r.stderr, "known by ssh-rsa key(s)") {
			t.Errorf("accept-new: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if n := strings.Count(knownHostsOf(t, home), "\n"); n != 2 {
			t.Errorf("known_hosts has %d lines, want the RSA line and the new ed25519 one:\n%s", n, knownHostsOf(t, home))
		}
	})
	t.Run("revoked-host-key", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		kh := filepath.Join(home, ".ssh", "known_hosts")
		var ed *testpeer.Key
		for _, hk := range d.HostKeys {
			if hk.PublicKey.Type() == ssh.KeyAlgoED25519 {
				ed = hk
			}
		}
		if err := os.WriteFile(kh, []byte("@revoked * "+ed.AuthorizedKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Refused whatever StrictHostKeyChecking says, as ssh does.
		for _, mode := range []string{"ask", "accept-new", "yes", "no"} {
			r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, "-o", "StrictHostKeyChecking="+mode, dest, "echo ran")
			wantFail(t, r, "revoked", ssh.FingerprintSHA256(ed.PublicKey), kh+":1", "Host key verification failed")
			if r.stdout != "" {
				t.Errorf("%s: the command ran", mode)
			}
		}
	})
	t.Run("remote-signal", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, true)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, dest, "echo before; kill -TERM $$; echo after")
		wantFail(t, r, "killed by signal TERM")
		if r.stdout != "before\n" {
			t.Errorf("stdout %q, want %q", r.stdout, "before\n")
		}
	})
	t.Run("exit-status", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, true)
		for _, code := range []int{0, 1, 42, 254, 255} {
			r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, dest, "exit "+strconv.Itoa(code))
			if r.code != code {
				t.Errorf("remote exit %d: sshtap exited %d\nstderr:\n%s", code, r.code, r.stderr)
			}
		}
	})
	t.Run("auth-no-key", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, true)
		os.Remove(filepath.Join(home, ".ssh", "id_ed25519"))
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, dest, "echo ran")
		wantFail(t, r, "Permission denied", "root@127.0.0.1", "tried:", "publickey", "no public key was available")
		if r.stdout != "" {
			t.Errorf("the command ran: %q", r.stdout)
		}
	})
	t.Run("auth-wrong-key", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, true)
		other := testpeer.NewKey(t, testpeer.KeyEd25519)
		r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", port, "-i", other.Path, "-o", "IdentitiesOnly=yes", dest, "echo ran")
		wantFail(t, r, "Permission denied", "tried:", "publickey", ssh.FingerprintSHA256(other.PublicKey))
	})
}

// TestClientConnectErrors: a closed port and a name that does not resolve.
func TestClientConnectErrors(t *testing.T) {
	t.Parallel()
	env := []string{"HOME=" + t.TempDir()}
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		port := strconv.Itoa(freeTCPPort(t))
		r := runDetached(t, 30*time.Second, env, "-p", port, "root@127.0.0.1", "true")
		wantFail(t, r, "connection refused", "127.0.0.1 port "+port)
	})
	t.Run("unresolvable", func(t *testing.T) {
		t.Parallel()
		r := runDetached(t, 60*time.Second, env, "root@no-such-host.sshtap.invalid", "true")
		wantFail(t, r, "could not resolve hostname no-such-host.sshtap.invalid")
	})
}

// TestClientNegotiationFailure: no cipher in common names both lists.
func TestClientNegotiationFailure(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{"Ciphers aes256-gcm@openssh.com"}})
	home := peerHome(t, d, true)
	r := runDetached(t, 30*time.Second, []string{"HOME=" + home}, "-p", strconv.Itoa(d.Port), "--ciphers", "aes128-ctr", "root@127.0.0.1", "true")
	wantFail(t, r, "unable to negotiate", "cipher", "sshtap offered: aes128-ctr", "server offered: aes256-gcm@openssh.com")
}

// TestClientServerLost: a server that stops answering is detected by the
// keepalive (ServerAliveCountMax probes), one that vanishes without a
// DISCONNECT ends the session; both exit 255 with a message saying so.
func TestClientServerLost(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, false)
	env := []string{"HOME=" + home}

	t.Run("hung", func(t *testing.T) {
		t.Parallel()
		px := startProxy(t, d.Addr)
		_, port, _ := strings.Cut(px.addr, ":")
		p := startBG(t, env, nil, "-p", port, "-o", "StrictHostKeyChecking=no", "--keepalive", "200ms",
			"-o", "ServerAliveCountMax=2", "root@127.0.0.1", "echo started; sleep 60")
		p.waitStdout("started", 30*time.Second)
		p.waitStderr("ping", 30*time.Second)
		px.freeze()
		r := p.wait(30 * time.Second)
		wantFail(t, r, "server not responding")
		if !strings.Contains(r.stderr, "connection-lost") {
			t.Errorf("no connection-lost disconnect event:\n%s", r.stderr)
		}
	})
	t.Run("gone", func(t *testing.T) {
		t.Parallel()
		px := startProxy(t, d.Addr)
		_, port, _ := strings.Cut(px.addr, ":")
		p := startBG(t, env, nil, "-p", port, "-o", "StrictHostKeyChecking=no", "root@127.0.0.1", "echo started; sleep 60")
		p.waitStdout("started", 30*time.Second)
		px.cutAll()
		r := p.wait(30 * time.Second)
		wantFail(t, r, "connection closed by the server")
	})
}
