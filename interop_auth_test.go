package sshtap

// User authentication against real peers: our client against OpenSSH's sshd
// and dropbear, OpenSSH's ssh against our server. They skip when a peer is
// missing and fail instead with SSHTAP_INTEROP=1.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// iaDial connects to addr, runs the whole handshake with cfg and returns
// the Conn (closed at cleanup), the auth, banner and disconnect events of the
// connection so far and the handshake error.
func iaDial(t *testing.T, addr string, cfg *Config) (*Conn, []Event, error) {
	t.Helper()
	if cfg.HostKeyCallback == nil {
		cfg.HostKeyCallback = insecure
	}
	ctx := ioContext(t)
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := ClientConn(nc, cfg)
	sub := c.Subscribe(context.Background(), authKinds)
	err = c.Handshake(ctx)
	evs := ioDrain(sub)
	sub.Close()
	t.Cleanup(func() { c.Close() })
	return c, evs, err
}

// iaSuccess returns the successful UserAuthEvent among evs, or nil.
func iaSuccess(evs []Event) *UserAuthEvent {
	for _, e := range authEvents(evs) {
		if e.Result == AuthSuccess {
			return e
		}
	}
	return nil
}

func TestInteropAuthSSHDPublicKey(t *testing.T) {
	t.Parallel()
	keys := testpeer.NewKeys(t, testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyECDSA384, testpeer.KeyRSA3072)
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: keys})
	want := map[testpeer.KeyType]string{
		testpeer.KeyEd25519:  ssh.KeyAlgoED25519,
		testpeer.KeyECDSA256: ssh.KeyAlgoECDSA256,
		testpeer.KeyECDSA384: ssh.KeyAlgoECDSA384,
		// sshd's server-sig-algs lists both rsa-sha2 algorithms: 512 wins.
		testpeer.KeyRSA3072: ssh.KeyAlgoRSASHA512,
	}
	for _, k := range keys {
		t.Run(string(k.Type), func(t *testing.T) {
			t.Parallel()
			other := testpeer.NewKey(t, testpeer.KeyEd25519) // not authorized: refused first
			c, evs, err := iaDial(t, s.Addr, &Config{User: s.User, Auth: []AuthMethod{PublicKeys(other.Signer, k.Signer)}})
			if err != nil {
				t.Fatalf("handshake: %v\nevents: %v", err, authSummary(evs))
			}
			ok := iaSuccess(evs)
			if !c.Authenticated() || ok == nil || ok.Algorithm != want[k.Type] {
				t.Fatalf("events %v, want success with %s", authSummary(evs), want[k.Type])
			}
			s.WaitLog(t, "Accepted publickey for root from 127.0.0.1 port")
			if l := s.Log(); !strings.Contains(l, ssh.FingerprintSHA256(k.PublicKey)) {
				t.Errorf("sshd log does not name the key %s", ssh.FingerprintSHA256(k.PublicKey))
			}
		})
	}
}

func TestInteropAuthSSHDPassword(t *testing.T) {
	t.Parallel()
	user, pw := testpeer.TestUserPassword(t)
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: []*testpeer.Key{},
		Config: []string{"PasswordAuthentication yes", "KbdInteractiveAuthentication no", "PubkeyAuthentication no"}})
	t.Run("wrong-then-right", func(t *testing.T) {
		// Both passwords are tried in order: the wrong one fails, the
		// right one succeeds.
		c, evs, err := iaDial(t, s.Addr, &Config{User: user, Auth: []AuthMethod{Password("wrong"), PasswordCallback(func() (string, error) { return pw, nil })}})
		if err != nil {
			t.Fatalf("handshake: %v\nevents: %v", err, authSummary(evs))
		}
		got := authSummary(evs)
		if !c.Authenticated() || len(got) != 3 || got[1] != "password:failure" || got[2] != "password:success" {
			t.Errorf("events %v", got)
		}
		s.WaitLog(t, "Accepted password for "+user)
	})
	t.Run("wrong", func(t *testing.T) {
		_, evs, err := iaDial(t, s.Addr, &Config{User: user, Auth: []AuthMethod{Password("wrong")}})
		var ae *AuthError
		if !errors.As(err, &ae) || len(ae.Remaining) != 1 || ae.Remaining[0] != "password" {
			t.Errorf("error %v, events %v", err, authSummary(evs))
		}
	})
}

// TestInteropAuthSSHDKeyboardInteractive uses sshd with PAM (UsePAM yes
// overrides the harness's "UsePAM no"): without PAM, OpenSSH on Linux has
// no keyboard-interactive device. PAM's pam_unix asks for the password in
// an INFO_REQUEST.
func TestInteropAuthSSHDKeyboardInteractive(t *testing.T) {
	t.Parallel()
	user, pw := testpeer.TestUserPassword(t)
	if _, err := os.Stat("/etc/pam.d/sshd"); err != nil {
		t.Skip("no /etc/pam.d/sshd: sshd has no keyboard-interactive device without PAM")
	}
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: []*testpeer.Key{},
		Config: []string{"UsePAM yes", "KbdInteractiveAuthentication yes", "PasswordAuthentication no", "PubkeyAuthentication no"}})
	var rounds [][]string
	c, evs, err := iaDial(t, s.Addr, &Config{User: user, Auth: []AuthMethod{KeyboardInteractive(func(name, instr string, qs []string, echos []bool) ([]string, error) {
		rounds = append(rounds, qs)
		ans := make([]string, len(qs))
		for i, q := range qs {
			if strings.Contains(strings.ToLower(q), "password") {
				ans[i] = pw
			}
		}
		return ans, nil
	})}})
	if err != nil {
		t.Fatalf("handshake: %v\nevents: %v\nrounds: %q", err, authSummary(evs), rounds)
	}
	if !c.Authenticated() || iaSuccess(evs) == nil || iaSuccess(evs).Method != "keyboard-interactive" {
		t.Errorf("events %v", authSummary(evs))
	}
	if len(rounds) == 0 {
		t.Error("no INFO_REQUEST round")
	}
	t.Logf("rounds: %q", rounds)
	s.WaitLog(t, "Accepted keyboard-interactive/pam for "+user)
}

func TestInteropAuthSSHDCertificate(t *testing.T) {
	t.Parallel()
	ca := testpeer.NewKey(t, testpeer.KeyEd25519)
	caFile := filepath.Join(t.TempDir(), "ca.pub")
	if err := os.WriteFile(caFile, []byte(ca.AuthorizedKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: []*testpeer.Key{},
		Config: []string{"TrustedUserCAKeys " + caFile}})
	for _, typ := range []testpeer.KeyType{testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyRSA3072} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			k := testpeer.NewKey(t, typ)
			cs, err := ssh.NewCertSigner(authUserCert(t, ca.Signer, k.PublicKey, "root"), k.Signer)
			if err != nil {
				t.Fatal(err)
			}
			c, evs, err := iaDial(t, s.Addr, &Config{User: s.User, Auth: []AuthMethod{PublicKeys(cs)}})
			if err != nil {
				t.Fatalf("handshake: %v\nevents: %v", err, authSummary(evs))
			}
			wantAlgo := cs.PublicKey().Type()
			if typ == testpeer.KeyRSA3072 {
				wantAlgo = ssh.CertAlgoRSASHA512v01
			}
			if ok := iaSuccess(evs); !c.Authenticated() || ok == nil || ok.Algorithm != wantAlgo {
				t.Errorf("events %v, want success with %s", authSummary(evs), wantAlgo)
			}
		})
	}
	t.Run("wrong-principal", func(t *testing.T) {
		t.Parallel()
		k := testpeer.NewKey(t, testpeer.KeyEd25519)
		cs, _ := ssh.NewCertSigner(authUserCert(t, ca.Signer, k.PublicKey, "nobody-here"), k.Signer)
		_, evs, err := iaDial(t, s.Addr, &Config{User: s.User, Auth: []AuthMethod{PublicKeys(cs)}})
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Errorf("error %v, events %v", err, authSummary(evs))
		}
	})
}

func TestInteropAuthSSHDMaxAuthTries(t *testing.T) {
	t.Parallel()
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{"MaxAuthTries 2"}})
	wrong := testpeer.NewKeys(t, testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyEd25519)
	var signers []ssh.Signer
	for _, k := range wrong {
		signers = append(signers, k.Signer)
	}
	c, evs, err := iaDial(t, s.Addr, &Config{User: s.User, Auth: []AuthMethod{PublicKeys(signers...)}})
	var de *DisconnectError
	if !errors.As(err, &de) || !de.Remote || de.Reason != DisconnectProtocolError || de.Message != "Too many authentication failures" {
		t.Fatalf("error %v, events %v", err, authSummary(evs))
	}
	var disc *DisconnectEvent
	for _, ev := range evs {
		if d, ok := ev.(*DisconnectEvent); ok {
			disc = d
		}
	}
	if disc == nil || !disc.Remote || disc.Reason != 2 || disc.Message != "Too many authentication failures" {
		t.Errorf("disconnect event %+v", disc)
	}
	if c.Authenticated() {
		t.Error("authenticated")
	}
}

func TestInteropAuthDropbearPublicKey(t *testing.T) {
	t.Parallel()
	keys := testpeer.NewKeys(t, testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyRSA3072)
	d := testpeer.StartDropbear(t, testpeer.DropbearOptions{AuthorizedKeys: keys})
	want := map[testpeer.KeyType]string{
		testpeer.KeyEd25519:  ssh.KeyAlgoED25519,
		testpeer.KeyECDSA256: ssh.KeyAlgoECDSA256,
		// dropbear 2022.83 has no rsa-sha2-512: its server-sig-algs leads
		// us to rsa-sha2-256.
		testpeer.KeyRSA3072: ssh.KeyAlgoRSASHA256,
	}
	for _, k := range keys {
		t.Run(string(k.Type), func(t *testing.T) {
			t.Parallel()
			c, evs, err := iaDial(t, d.Addr, &Config{User: d.User, Auth: []AuthMethod{PublicKeys(k.Signer)}})
			if err != nil {
				t.Fatalf("handshake: %v\nevents: %v", err, authSummary(evs))
			}
			if ok := iaSuccess(evs); !c.Authenticated() || ok == nil || ok.Algorithm != want[k.Type] {
				t.Errorf("events %v, want success with %s (server-sig-algs %v)", authSummary(evs), want[k.Type], c.ServerSigAlgs())
			}
		})
	}
}

// --- OpenSSH's client against our server ------------------------------------

// iaServe accepts one connection on a new listener, runs our server's
// handshake with cfg, then closes the Conn. It returns the address and a
// func that waits for the server's auth events and the handshake's error.
func iaServe(t *testing.T, cfg *ServerConfig) (string, func() ([]Event, error)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		err error
		evs []Event
	}
	done := make(chan res, 1)
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			done <- res{err: err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		c := ServerConn(nc, cfg)
		sub := c.Subscribe(ctx, KindUserAuth)
		err = c.Handshake(ctx)
		evs := ioDrain(sub)
		sub.Close()
		c.Close()
		done <- res{err, evs}
	}()
	var once sync.Once
	var r res
	wait := func() ([]Event, error) {
		once.Do(func() {
			select {
			case r = <-done:
			case <-time.After(ioTimeout):
				ln.Close()
				r = <-done
			}
		})
		return r.evs, r.err
	}
	t.Cleanup(func() { ln.Close(); wait() })
	return ln.Addr().String(), wait
}

// iaRunSSH runs ssh -vvv -N against addr with extra -o options and
// environment.
func iaRunSSH(t *testing.T, addr, user string, keys []*testpeer.Key, env []string, opts ...string) (string, int) {
	t.Helper()
	bin := testpeer.Binary(t, "ssh")
	_, port, _ := net.SplitHostPort(addr)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	args := []string{"-F", "/dev/null"}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	args = append(args, "-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=no",
		"-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10")
	for _, k := range keys {
		args = append(args, "-i", k.Path)
	}
	args = append(args, "-p", port, "-vvv", "-N", user+"@127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// No controlling terminal: ssh must use SSH_ASKPASS, not /dev/tty.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out.String())
	}
	return out.String(), code
}

func TestInteropAuthSSHClientPublicKey(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	for _, typ := range []testpeer.KeyType{testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyRSA3072} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			k := testpeer.NewKey(t, typ)
			other := testpeer.NewKey(t, testpeer.KeyEd25519)
			addr, wait := iaServe(t, &ServerConfig{HostKeys: allHostKeys(t), PublicKeyCallback: authAcceptKeys(k.PublicKey)})
			log, code := iaRunSSH(t, addr, "tester", []*testpeer.Key{other, k}, nil, "BatchMode=yes")
			evs, err := wait()
			if err != nil {
				t.Fatalf("server handshake: %v\nssh (exit %d):\n%s", err, code, log)
			}
			if !strings.Contains(log, "Authenticated to 127.0.0.1") {
				t.Errorf("ssh did not authenticate (exit %d):\n%s", code, log)
			}
			want := k.PublicKey.Type()
			if typ == testpeer.KeyRSA3072 {
				want = ssh.KeyAlgoRSASHA512
			}
			if ok := iaSuccess(evs); ok == nil || ok.User != "tester" || ok.Algorithm != want {
				t.Errorf("server events %v, want success with %s", authSummary(evs), want)
			}
		})
	}
}

func TestInteropAuthSSHClientPassword(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	dir := t.TempDir()
	askpass := filepath.Join(dir, "askpass.sh")
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho 'pa55 word'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	var got []string
	var mu sync.Mutex
	addr, wait := iaServe(t, &ServerConfig{HostKeys: allHostKeys(t), Banner: "hello from sshtap\n",
		PasswordCallback: func(meta ConnMetadata, pw []byte) (*Permissions, error) {
			mu.Lock()
			got = append(got, meta.User()+":"+string(pw))
			mu.Unlock()
			if string(pw) == "pa55 word" {
				return nil, nil
			}
			return nil, errors.New("wrong")
		}})
	log, code := iaRunSSH(t, addr, "tester", nil,
		[]string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0"},
		"BatchMode=no", "PreferredAuthentications=password", "PubkeyAuthentication=no", "NumberOfPasswordPrompts=1")
	evs, err := wait()
	if err != nil {
		t.Fatalf("server handshake: %v\nssh (exit %d):\n%s", err, code, log)
	}
	if !strings.Contains(log, "Authenticated to 127.0.0.1") {
		t.Errorf("ssh did not authenticate (exit %d):\n%s", code, log)
	}
	if !strings.Contains(log, "hello from sshtap") {
		t.Errorf("ssh did not show our banner:\n%s", log)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "tester:pa55 word" {
		t.Errorf("PasswordCallback saw %q", got)
	}
	if ok := iaSuccess(evs); ok == nil || ok.Method != "password" {
		t.Errorf("server events %v", authSummary(evs))
	}
}

// TestInteropAuthSSHClientKeyboardInteractive: OpenSSH's client answers our
// server's INFO_REQUESTs (an instruction-only 0-prompt round, then a
// password prompt) through SSH_ASKPASS.
func TestInteropAuthSSHClientKeyboardInteractive(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	askpass := filepath.Join(t.TempDir(), "askpass.sh")
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho 'otp-4711'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	var answers [][]string
	addr, wait := iaServe(t, &ServerConfig{HostKeys: allHostKeys(t),
		KeyboardInteractiveCallback: func(meta ConnMetadata, ch KeyboardInteractiveChallenge) (*Permissions, error) {
			a, err := ch("sshtap", "no questions this round", nil, nil)
			if err != nil {
				return nil, err
			}
			answers = append(answers, a)
			a, err = ch("sshtap", "", []string{"One-time code: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			answers = append(answers, a)
			if len(a) == 1 && a[0] == "otp-4711" {
				return nil, nil
			}
			return nil, errors.New("wrong code")
		}})
	log, code := iaRunSSH(t, addr, "tester", nil,
		[]string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0"},
		"BatchMode=no", "PreferredAuthentications=keyboard-interactive", "PubkeyAuthentication=no")
	evs, err := wait()
	if err != nil {
		t.Fatalf("server handshake: %v\nssh (exit %d):\n%s", err, code, log)
	}
	if !strings.Contains(log, "Authenticated to 127.0.0.1") {
		t.Errorf("ssh did not authenticate (exit %d):\n%s", code, log)
	}
	if len(answers) != 2 || len(answers[0]) != 0 {
		t.Errorf("answers %q", answers)
	}
	if ok := iaSuccess(evs); ok == nil || ok.Method != "keyboard-interactive" {
		t.Errorf("server events %v", authSummary(evs))
	}
}
