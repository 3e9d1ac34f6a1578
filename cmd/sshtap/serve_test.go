package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
	"sshtap/cipher"
	"sshtap/internal/testpeer"
)

// lineWriter hands complete lines written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default: // nobody reads that many lines
		}
		w.buf = w.buf[i+1:]
	}
}

// serveEvents records, through the serveHookKey hook, every event of every
// connection runServe serves, independently of the rendered format.
type serveEvents struct {
	mu     sync.Mutex
	labels []string
	events map[string][]sshtap.Event
	wg     sync.WaitGroup
}

func (e *serveEvents) hook(label string, c *sshtap.Conn) {
	sub := c.SubscribeBuffer(context.Background(), sshtap.KindAll, 4096)
	e.mu.Lock()
	e.labels = append(e.labels, label)
	e.mu.Unlock()
	e.wg.Go(func() {
		for ev := range sub.Events() {
			e.mu.Lock()
			e.events[label] = append(e.events[label], ev)
			e.mu.Unlock()
		}
	})
}

// conn returns the events of the n-th connection (from 1) once it ended.
func (e *serveEvents) conn(t *testing.T, n int) (string, []sshtap.Event) {
	t.Helper()
	e.wg.Wait() // callers ask after runServe returned: every subscription has ended
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.labels) < n {
		t.Fatalf("%d connections seen, want at least %d", len(e.labels), n)
	}
	l := e.labels[n-1]
	return l, e.events[l]
}

// serveRun is an in-process `sshtap serve`.
type serveRun struct {
	addr   string      // the bound address, from stdout's first line
	hkLine string      // stdout's second line
	stdout *lineWriter // the later lines
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
	code   int
	events *serveEvents
}

// startServe runs runServe with args in-process until it printed its
// address. env is what a.getenv sees. Cleanup cancels it and waits.
func startServe(t *testing.T, env map[string]string, args ...string) *serveRun {
	t.Helper()
	r := &serveRun{stderr: &syncBuffer{}, done: make(chan int, 1), events: &serveEvents{events: map[string][]sshtap.Event{}}}
	out := &lineWriter{lines: make(chan string, 16)}
	r.stdout = out
	a := &app{stdin: strings.NewReader(""), stdout: out, stderr: r.stderr, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), serveHookKey{}, r.events.hook))
	r.cancel = cancel
	go func() { r.done <- a.runServe(ctx, append([]string{"--color", "never"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
		r.events.wg.Wait()
	})
	timeout := time.After(20 * time.Second)
	for _, dst := range []*string{&r.addr, &r.hkLine} {
		select {
		case l := <-out.lines:
			*dst = l
		case code := <-r.done:
			r.done <- code
			t.Fatalf("sshtap serve %v exited with %d before listening; stderr:\n%s", args, code, r.stderr.String())
		case <-timeout:
			t.Fatalf("sshtap serve %v: no address after 20s; stderr:\n%s", args, r.stderr.String())
		}
	}
	var ok bool
	if r.addr, ok = strings.CutPrefix(r.addr, "listening on "); !ok {
		t.Fatalf("first stdout line %q, want \"listening on ADDR\"", r.addr)
	}
	return r
}

// wait waits for runServe to return and returns its exit code.
func (r *serveRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code, ok := <-r.done:
		if ok {
			r.code = code
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sshtap serve did not return within 30s; stderr:\n%s", r.stderr.String())
	}
	return r.code
}

// stop cancels the server (as SIGINT does) and returns its exit code.
func (r *serveRun) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func hostKeyFingerprint(t *testing.T, line string) string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "host" || f[1] != "key" || !strings.HasPrefix(f[3], "SHA256:") {
		t.Fatalf("host key line %q, want \"host key TYPE SHA256:... (...)\"", line)
	}
	return f[3]
}

func TestServeHostKeyGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	hk := filepath.Join(dir, "host_key")
	args := []string{"--listen", "127.0.0.1:0", "--no-auth", "--host-key", hk}

	r := startServe(t, nil, args...)
	fp := hostKeyFingerprint(t, r.hkLine)
	if !strings.Contains(r.hkLine, "new key written to "+hk) {
		t.Errorf("first run: host key line %q does not say the key was generated", r.hkLine)
	}
	if code := r.stop(t); code != exitOK {
		t.Fatalf("first run exited %d; stderr:\n%s", code, r.stderr.String())
	}
	fi, err := os.Stat(hk)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %04o, want 0600", fi.Mode().Perm())
	}
	priv, err := os.ReadFile(hk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(priv, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Errorf("host key is not in OpenSSH format:\n%s", priv)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 || ssh.FingerprintSHA256(signer.PublicKey()) != fp {
		t.Errorf("key file holds %s %s, printed %s", signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), fp)
	}
	pub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil || ssh.FingerprintSHA256(pk) != fp {
		t.Errorf(".pub file %q (%v) does not match %s", pub, err, fp)
	}

	// The second run loads the same key and leaves the file alone.
	r2 := startServe(t, nil, args...)
	if got := hostKeyFingerprint(t, r2.hkLine); got != fp {
		t.Errorf("second run: fingerprint %s, want %s", got, fp)
	}
	if !strings.Contains(r2.hkLine, "loaded from "+hk) {
		t.Errorf("second run: host key line %q does not say the key was loaded", r2.hkLine)
	}
	if code := r2.stop(t); code != exitOK {
		t.Fatalf("second run exited %d", code)
	}
	if again, _ := os.ReadFile(hk); !bytes.Equal(again, priv) {
		t.Error("the second run rewrote the host key")
	}

	// A key others can read is refused, as sshd does.
	if err := os.Chmod(hk, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runServeInProcess(t, nil, args...)
	if code != exitError || !strings.Contains(stderr, "too open") || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("world-readable host key: exit %d, stderr %q; want 255 and a chmod hint", code, stderr)
	}
}

// runServeInProcess runs runServe to completion (for runs that fail early).
func runServeInProcess(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := a.runServe(ctx, args)
	if ctx.Err() != nil {
		t.Fatalf("sshtap serve %v ran until the timeout", args)
	}
	return code, stdout.String(), stderr.String()
}

func TestServeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	hk := filepath.Join(dir, "hk")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	worldReadable := filepath.Join(dir, "wr")
	if err := os.WriteFile(worldReadable, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(badKeys, []byte("ssh-ed25519 notbase64!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no host key", []string{"--no-auth"}, "--host-key FILE is required"},
		{"no auth", []string{"--host-key", hk}, "no way to authenticate clients"},
		{"unknown flag", []string{"--host-key", hk, "--no-auth", "--bogus"}, "unknown option --bogus"},
		{"positional", []string{"--host-key", hk, "--no-auth", "extra"}, `unexpected argument "extra"`},
		{"password env unset", []string{"--host-key", hk, "--password-env", "NOPE"}, "NOPE is empty or not set"},
		{"both passwords", []string{"--host-key", hk, "--password", "x", "--password-env", "PW"}, "exclude each other"},
		{"mac policy", []string{"--host-key", hk, "--no-auth", "--mac-policy", "ignore"}, `"ignore" is not disconnect, discard or accept`},
		{"cipher", []string{"--host-key", hk, "--no-auth", "--ciphers", "rot13"}, `unsupported algorithm "rot13"`},
		{"rekey", []string{"--host-key", hk, "--no-auth", "--rekey-every", "often"}, "neither a size"},
		{"max conns", []string{"--host-key", hk, "--no-auth", "--max-conns", "0"}, "not a positive number"},
		{"max sessions", []string{"--host-key", hk, "--no-auth", "--max-sessions", "x"}, "--max-sessions: \"x\" is not a positive number"},
		{"max startups", []string{"--host-key", hk, "--no-auth", "--max-startups", "30:10"}, "want START:RATE:FULL"},
		{"login grace", []string{"--host-key", hk, "--no-auth", "--login-grace-time", "0s"}, "not a positive duration"},
		{"authorized keys missing", []string{"--host-key", hk, "--authorized-keys", filepath.Join(dir, "none")}, "--authorized-keys: open"},
		{"authorized keys bad", []string{"--host-key", hk, "--authorized-keys", badKeys}, badKeys + ":1"},
		{"listen busy", []string{"--host-key", hk, "--no-auth", "--listen", busy.Addr().String()}, "cannot listen on " + busy.Addr().String()},
		{"listen bad", []string{"--host-key", hk, "--no-auth", "--listen", "127.0.0.1:notaport"}, "cannot listen on 127.0.0.1:notaport"},
		{"host key readable", []string{"--host-key", worldReadable, "--no-auth"}, "permissions 0644 are too open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runServeInProcess(t, nil, tc.args...)
			if code != exitError || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 255 and %q", code, stderr, tc.want)
			}
			if strings.Contains(stdout, "listening on") {
				t.Errorf("stdout %q: a failed run must not claim to listen", stdout)
			}
		})
	}
	// The built command too: its exit status is what scripts see.
	res := runBin(t, 2*time.Minute, nil, "", "serve", "--listen", busy.Addr().String(), "--no-auth", "--host-key", filepath.Join(dir, "hk2"))
	if res.code != exitError || !strings.Contains(res.stderr, "sshtap: cannot listen on "+busy.Addr().String()) {
		t.Errorf("binary, busy port: exit %d, stderr %q", res.code, res.stderr)
	}
}

// writeAuthorizedKeys writes keys (with an option and a comment, which are
// parsed and ignored) as an authorized_keys file.
func writeAuthorizedKeys(t *testing.T, keys ...*testpeer.Key) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test keys\n\n")
	for _, k := range keys {
		b.WriteString("restrict " + k.AuthorizedKey + "\n")
	}
	p := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// userAuthEvents returns the UserAuthEvents among evs.
func userAuthEvents(evs []sshtap.Event) []*sshtap.UserAuthEvent {
	var out []*sshtap.UserAuthEvent
	for _, ev := range evs {
		if ua, ok := ev.(*sshtap.UserAuthEvent); ok {
			out = append(out, ua)
		}
	}
	return out
}

func countKind(evs []sshtap.Event, k sshtap.Kind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind() == k {
			n++
		}
	}
	return n
}

func stderrLines(s string) []string { return strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") }

// TestServeOpenSSHInProcess connects OpenSSH's ssh to an in-process server:
// an exec session (stdout, stderr, exit status), a pty shell, the events
// seen through the hook, and the shutdown on cancel.
func TestServeOpenSSHInProcess(t *testing.T) {
	testpeer.Require(t, "ssh")
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	other := testpeer.NewKey(t, testpeer.KeyEd25519)
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", filepath.Join(t.TempDir(), "hk"),
		"--authorized-keys", writeAuthorizedKeys(t, key), "--user", "tester")

	res := testpeer.SSHClient{Addr: r.addr, User: "tester", Keys: []*testpeer.Key{key},
		Options: []string{"SendEnv=LANG", "SetEnv=LC_SSHTAP=yes FOO=bar"},
		Command: []string{"echo hello; echo err >&2; echo $LC_SSHTAP-$FOO-$SSH_CONNECTION; exit 3"}}.Run(t)
	if res.ExitCode != 3 {
		t.Fatalf("ssh exit %d, want 3\n%s", res.ExitCode, res)
	}
	out := strings.Split(res.Stdout, "\n")
	if len(out) != 3 || out[0] != "hello" || !strings.HasPrefix(out[1], "yes--127.0.0.1 ") {
		t.Errorf("stdout %q, want hello and the allowed env only", res.Stdout)
	}
	if !slices.Contains(stderrLines(res.Stderr), "err") {
		t.Errorf("remote stderr \"err\" missing from ssh's stderr:\n%s", res.Stderr)
	}

	// A pty: sh sees a terminal of the requested size.
	res = testpeer.SSHClient{Addr: r.addr, User: "tester", Keys: []*testpeer.Key{key}, Flags: []string{"-tt"},
		Options: []string{"SetEnv=TERM=dumb"},
		Stdin:   strings.NewReader("test -t 0 && echo tty-$((40+2)); exit 4\n")}.Run(t)
	if res.ExitCode != 4 || !strings.Contains(res.Stdout, "tty-42") {
		t.Errorf("pty shell: want exit 4 and tty-42 (stdin is a terminal)\n%s", res)
	}

	// The wrong user and an unknown key are refused.
	res = testpeer.SSHClient{Addr: r.addr, User: "someone-else", Keys: []*testpeer.Key{key}, Command: []string{"true"}}.Run(t)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Permission denied") {
		t.Errorf("wrong user: want Permission denied\n%s", res)
	}
	res = testpeer.SSHClient{Addr: r.addr, User: "tester", Keys: []*testpeer.Key{other}, Command: []string{"true"}}.Run(t)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Permission denied") {
		t.Errorf("unknown key: want Permission denied\n%s", res)
	}

	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exited %d after cancel; stderr:\n%s", code, r.stderr.String())
	}

	label, evs := r.events.conn(t, 1)
	if !strings.HasPrefix(label, "#1 127.0.0.1:") {
		t.Errorf("label %q, want \"#1 127.0.0.1:PORT\"", label)
	}
	if countKind(evs, sshtap.KindKex) < 1 || countKind(evs, sshtap.KindClosed) != 1 {
		t.Errorf("connection 1: %d kex, %d closed events; want >=1 and 1", countKind(evs, sshtap.KindKex), countKind(evs, sshtap.KindClosed))
	}
	ok := false
	for _, ua := range userAuthEvents(evs) {
		// OpenSSH uses publickey-hostbound-v00@openssh.com when offered.
		if strings.HasPrefix(ua.Method, "publickey") && ua.Result == sshtap.AuthSuccess && ua.User == "tester" {
			ok = true
		}
	}
	if !ok {
		t.Errorf("connection 1: no successful publickey user-auth event for tester in %v", userAuthEvents(evs))
	}
	for n, why := range map[int]string{3: "is not \"tester\"", 4: "key not in --authorized-keys"} {
		_, evs := r.events.conn(t, n)
		refused := false
		for _, ua := range userAuthEvents(evs) {
			if ua.Result == sshtap.AuthSuccess {
				t.Errorf("connection %d: %s authenticated", n, ua.User)
			}
			refused = refused || strings.Contains(ua.Err, why)
		}
		if !refused {
			t.Errorf("connection %d: no user-auth failure saying %q", n, why)
		}
	}
	text := r.stderr.String()
	for _, want := range []string{
		`session: exec /bin/sh -c "echo hello;`,
		"session: command exited with status 3",
		"env FOO refused",
		"session: shell /bin/sh with pty",
		"session: command exited with status 4",
		`client (user "tester", key ` + ssh.FingerprintSHA256(key.PublicKey) + ") gone",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("event output lacks %q:\n%s", want, text)
		}
	}
}

// TestServeOpenSSHBinary runs the built command as a user would:
// `sshtap serve --once` with NDJSON events in a file, and OpenSSH's ssh
// running a command through it.
func TestServeOpenSSHBinary(t *testing.T) {
	testpeer.Require(t, "ssh")
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	dir := t.TempDir()
	events := filepath.Join(dir, "events.ndjson")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshtapBin(t), "serve", "--once", "--listen", "127.0.0.1:0",
		"--host-key", filepath.Join(dir, "hk"), "--authorized-keys", writeAuthorizedKeys(t, key),
		"--json", "--events", events)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("no stdout from sshtap serve; stderr:\n%s", stderr.String())
	}
	addr, ok := strings.CutPrefix(sc.Text(), "listening on ")
	if !ok {
		t.Fatalf("first line %q, want \"listening on ADDR\"", sc.Text())
	}
	go io.Copy(io.Discard, stdout) // the host key line; ends when the process exits

	res := testpeer.RunSSH(t, addr, key, "echo hello; echo err >&2; exit 3")
	if res.ExitCode != 3 || res.Stdout != "hello\n" || !slices.Contains(stderrLines(res.Stderr), "err") {
		t.Fatalf("ssh: want stdout hello, stderr err, exit 3\n%s", res)
	}

	err = cmd.Wait()
	waited = true
	if err != nil {
		t.Fatalf("sshtap serve --once: %v (want exit 0 after the connection); stderr:\n%s", err, stderr.String())
	}

	data, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	checkServeNDJSON(t, data)
}

// checkServeNDJSON checks the --json events of one OpenSSH connection.
// The field names are those the renderer is expected to use ("kind",
// "conn", and "method"/"result" on user-auth).
func checkServeNDJSON(t *testing.T, data []byte) {
	t.Helper()
	var objs []map[string]any
	bad := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			bad++
			continue
		}
		objs = append(objs, m)
	}
	if len(objs) == 0 {
		t.Fatalf("no line of the --json output is JSON:\n%s", data)
	}
	if bad > 0 {
		t.Errorf("%d lines of the --json output are not JSON:\n%s", bad, data)
	}
	kinds := map[string]int{}
	authOK := false
	for _, m := range objs {
		kind, _ := m["kind"].(string)
		kinds[kind]++
		if conn, _ := m["conn"].(string); kind != "" && kind != "summary" && !strings.HasPrefix(conn, "#1 127.0.0.1:") {
			t.Errorf("event %v: conn %q, want \"#1 127.0.0.1:PORT\"", m, conn)
		}
		if method, _ := m["method"].(string); kind == "user-auth" && strings.HasPrefix(method, "publickey") && m["result"] == "success" {
			authOK = true
		}
	}
	for _, k := range []string{"note", "kex", "user-auth", "closed", "summary"} {
		if kinds[k] == 0 {
			t.Errorf("no %q object in the --json output (kinds %v):\n%s", k, kinds, data)
		}
	}
	if !authOK {
		t.Errorf("no successful publickey user-auth object:\n%s", data)
	}
}

// TestServePassword uses sshtap's own client for the password method (no
// sshpass here), with --password-env, then checks the shutdown: a cancelled
// server disconnects its clients by-application and returns 0.
func TestServePassword(t *testing.T) {
	r := startServe(t, map[string]string{"SSHTAP_TEST_PW": "s3cret"}, "--listen", "127.0.0.1:0",
		"--host-key", filepath.Join(t.TempDir(), "hk"), "--password-env", "SSHTAP_TEST_PW", "--max-conns", "4")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(pw string) (*sshtap.Conn, error) {
		return sshtap.Dial(ctx, "tcp", r.addr, &sshtap.Config{
			User:            "me",
			Auth:            []sshtap.AuthMethod{sshtap.Password(pw)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		})
	}

	if c, err := dial("wrong"); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}

	c, err := dial("s3cret")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Subsystems but sftp and env outside LANG/LC_* are refused (CHANNEL_FAILURE);
	// the session is still usable.
	if err := s.RequestSubsystem("netconf"); err == nil {
		t.Error("subsystem netconf granted")
	}
	if err := s.Setenv("LD_PRELOAD", "x"); err == nil {
		t.Error("env LD_PRELOAD granted")
	}
	out, err := s.Output("echo hi; kill -TERM $$")
	var ee *sshtap.ExitError
	if string(out) != "hi\n" || !errors.As(err, &ee) || ee.Signal != "TERM" {
		t.Errorf("Output = %q, %v; want hi and exit-signal TERM", out, err)
	}
	s.Close()

	// A long-running command is killed when the server stops.
	s2, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}

	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exited %d after cancel", code)
	}
	var de *sshtap.DisconnectError
	if err := c.Wait(); !errors.As(err, &de) || !de.Remote || de.Reason != sshtap.DisconnectByApplication {
		t.Errorf("client ended with %v, want a remote DISCONNECT by-application", err)
	}

	_, evs := r.events.conn(t, 1)
	uas := userAuthEvents(evs)
	failed := false
	for _, ua := range uas {
		if ua.Method == "password" && ua.Result == sshtap.AuthFailure && ua.Err == "wrong password" {
			failed = true
		}
	}
	if !failed {
		t.Errorf("connection 1: no password failure event in %v", uas)
	}
	_, evs = r.events.conn(t, 2)
	succeeded := false
	for _, ua := range userAuthEvents(evs) {
		succeeded = succeeded || (ua.Method == "password" && ua.Result == sshtap.AuthSuccess && ua.User == "me")
	}
	if !succeeded {
		t.Errorf("connection 2: no password success event")
	}
	if n := countKind(evs, sshtap.KindDisconnect); n != 1 {
		t.Errorf("connection 2: %d disconnect events, want 1 (ours)", n)
	}
	for _, want := range []string{"session: command killed by signal TERM", "server shutting down"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("event output lacks %q:\n%s", want, r.stderr.String())
		}
	}
	// What became of the sleep at shutdown (killed, or never started) is
	// told before its connection's "gone" note: a connection's notes end
	// with it.
	text := r.stderr.String()
	gone := strings.LastIndex(text, `client (user "me") gone`)
	if gone < 0 || strings.Contains(text[gone:], "session:") {
		t.Errorf("a session note follows its connection's gone note:\n%s", text)
	}
}

// TestRekeyEvery checks the --rekey-every parser shared by the client and
// serve.
func TestRekeyEvery(t *testing.T) {
	for in, want := range map[string]string{
		"1M": "1048576 0s", "512K": "524288 0s", "2g": "2147483648 0s", "1000": "1000 0s",
		"30s": "0 30s", "10m": "0 10m0s",
	} {
		b, d, err := parseRekeyEvery(in)
		if got := fmt.Sprintf("%d %v", b, d); err != nil || got != want {
			t.Errorf("parseRekeyEvery(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "15", "-1s", "1T", "M"} {
		if _, _, err := parseRekeyEvery(in); err == nil {
			t.Errorf("parseRekeyEvery(%q) accepted", in)
		}
	}
}

// TestServeBadClients: garbage, a client stuck in the handshake and one
// over --max-conns do not disturb the server, which still serves and stops
// promptly.
func TestServeBadClients(t *testing.T) {
	r := startServe(t, map[string]string{"PW": "pw"}, "--listen", "127.0.0.1:0",
		"--host-key", filepath.Join(t.TempDir(), "hk"), "--password-env", "PW", "--max-conns", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Garbage instead of an identification string: the server hangs up.
	junk, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	junk.Write([]byte("GET / HTTP/1.0\r\n\r\n" + strings.Repeat("\x00\xff", 40000)))
	junk.SetReadDeadline(time.Now().Add(20 * time.Second))
	io.Copy(io.Discard, junk) // until the server closes it
	junk.Close()

	// Clients that say nothing do not count against --max-conns, which
	// bounds authenticated connections.
	for range 3 {
		idle, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
	}
	dial := func() (*sshtap.Conn, error) {
		return sshtap.Dial(ctx, "tcp", r.addr, &sshtap.Config{User: "u", Auth: []sshtap.AuthMethod{sshtap.Password("pw")}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	}
	c, err := dial()
	if err != nil {
		t.Fatalf("a good client after a bad one, beside 3 silent ones: %v", err)
	}
	defer c.Close()
	c2, err := dial()
	if err != nil {
		t.Fatalf("a second client: %v", err)
	}
	defer c2.Close()

	// Two connections are authenticated: a third is told so.
	c3, err := dial()
	var de *sshtap.DisconnectError
	if !errors.As(err, &de) || de.Reason != sshtap.DisconnectTooManyConnections {
		if c3 != nil {
			c3.Close()
		}
		t.Errorf("a third client with --max-conns 2: %v, want TOO_MANY_CONNECTIONS", err)
	}

	start := time.Now()
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopping took %v", d)
	}
	if !strings.Contains(r.stderr.String(), "refused at authentication: 2 authenticated connections already (--max-conns)") {
		t.Errorf("no note for the refused connection:\n%s", r.stderr.String())
	}
	if _, err := c.NewSession(ctx); err == nil {
		t.Error("the client's connection survived the server's stop")
	}
}

// TestServeLimits: a socket that never sends its identification string is
// closed at --login-grace-time with a note naming the stage, and past
// --max-startups a new connection gets sshd's line.
func TestServeLimits(t *testing.T) {
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", filepath.Join(t.TempDir(), "hk"), "--no-auth",
		"--login-grace-time", "1s", "--max-startups", "1")
	silent, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The silent one was accepted first (one accept loop): this one is
	// over the limit of one unauthenticated connection.
	over, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(20 * time.Second))
	if got, err := io.ReadAll(over); string(got) != "Exceeded MaxStartups\r\n" || err != nil {
		t.Errorf("connection over --max-startups read %q, %v", got, err)
	}
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(silent); err != nil {
		t.Fatalf("silent connection: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the silent connection was closed after %v with --login-grace-time 1s", d)
	}
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	for _, want := range []string{"login grace time (1s) exceeded in the version exchange", "connection dropped: MaxStartups 1:100:1, 1 unauthenticated connections"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("no note %q:\n%s", want, r.stderr.String())
		}
	}
}

// TestServeOnceServesOne: with --once, sockets that reached the backlog
// along with the first are not served, and serve exits when the first one
// ends.
func TestServeOnceServesOne(t *testing.T) {
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", filepath.Join(t.TempDir(), "hk"), "--no-auth", "--once")
	var socks []net.Conn
	for range 4 {
		nc, err := net.Dial("tcp", r.addr)
		if err != nil {
			break // the listener is closed already
		}
		defer nc.Close()
		socks = append(socks, nc)
	}
	served := 0
	var first net.Conn
	for _, nc := range socks {
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(nc).ReadString('\n')
		if strings.HasPrefix(line, "SSH-2.0-") {
			served++
			first = nc
		}
	}
	if served != 1 {
		t.Fatalf("%d of %d connections served with --once", served, len(socks))
	}
	first.Close()
	if code := r.wait(t); code != exitOK {
		t.Fatalf("serve --once exited %d", code)
	}
}

// TestServeAgentForwarding: with ssh -A, the forwarded agent's keys are
// listed in a note.
func TestServeAgentForwarding(t *testing.T) {
	// Not parallel: ssh takes its agent from SSH_AUTH_SOCK (t.Setenv).
	testpeer.Require(t, "ssh", "ssh-agent", "ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command(testpeer.Binary(t, "ssh-agent"), "-D", "-a", sock)
	agentCmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	agentOut, err := agentCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agentCmd.WaitDelay = 5 * time.Second
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agentCmd.Process.Kill()
		agentCmd.Wait()
	})
	stuck := time.AfterFunc(20*time.Second, func() { agentCmd.Process.Kill() })
	// ssh-agent -D prints SSH_AUTH_SOCK=... once it listens.
	line, err := bufio.NewReader(agentOut).ReadString('\n')
	stuck.Stop()
	if err != nil || !strings.Contains(line, "SSH_AUTH_SOCK="+sock) {
		t.Fatalf("ssh-agent: first line %q, %v", line, err)
	}
	agentKey := testpeer.NewKey(t, testpeer.KeyEd25519)
	add := exec.Command(testpeer.Binary(t, "ssh-add"), agentKey.Path)
	add.Env = []string{"SSH_AUTH_SOCK=" + sock, "SSH_ASKPASS=/bin/false", "DISPLAY="}
	add.WaitDelay = 5 * time.Second
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)

	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", filepath.Join(t.TempDir(), "hk"),
		"--authorized-keys", writeAuthorizedKeys(t, key))
	res := testpeer.SSHClient{Addr: r.addr, Keys: []*testpeer.Key{key}, Flags: []string{"-A"}, Command: []string{"echo ok"}}.Run(t)
	if res.ExitCode != 0 || res.Stdout != "ok\n" {
		t.Fatalf("ssh -A: %s", res)
	}
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	want := "agent: the client forwarded an agent with 1 key(s); ssh-ed25519 " + ssh.FingerprintSHA256(agentKey.PublicKey)
	if !strings.Contains(r.stderr.String(), want) {
		t.Errorf("event output lacks %q:\n%s", want, r.stderr.String())
	}
}

// TestServeDefaultMACs: serve offers sshd's MACs (OpenSSH 9.2's default
// list, SHA-1 included, after SHA-2): OpenSSH's ssh with its own default
// MAC list (and a non-AEAD cipher) negotiates its first choice,
// umac-64-etm@openssh.com; one restricted to hmac-sha1 (or its etm form)
// gets in as it would with sshd; and `--macs -hmac-sha1*` removes the SHA-1
// MACs from that list, so the same client is refused.
func TestServeDefaultMACs(t *testing.T) {
	testpeer.Require(t, "ssh")
	run := func(addr string, opts ...string) *testpeer.ClientResult {
		t.Helper()
		return testpeer.SSHClient{Addr: addr, Options: append(opts, "ConnectTimeout=10"), Flags: []string{"-T"},
			Command: []string{"echo mac-ok"}}.Run(t)
	}
	hk := filepath.Join(t.TempDir(), "hk")
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--no-auth", "--host-key", hk)
	for _, c := range []struct {
		opts []string
		want string
	}{
		{[]string{"Ciphers=aes128-ctr"}, cipher.UMAC64ETM},
		{[]string{"Ciphers=aes128-ctr", "MACs=" + cipher.HMACSHA1}, cipher.HMACSHA1},
		{[]string{"Ciphers=aes128-ctr", "MACs=" + cipher.HMACSHA1ETM}, cipher.HMACSHA1ETM},
	} {
		res := run(r.addr, c.opts...)
		if res.ExitCode != 0 || res.Stdout != "mac-ok\n" {
			t.Fatalf("ssh %v: exit %d\n%s", c.opts, res.ExitCode, res)
		}
		if k := res.SSHLog().FirstKex(); k.MACCtoS != c.want || k.MACStoC != c.want {
			t.Errorf("ssh %v negotiated MACs %s / %s, want %s", c.opts, k.MACCtoS, k.MACStoC, c.want)
		}
	}

	r2 := startServe(t, nil, "--listen", "127.0.0.1:0", "--no-auth", "--host-key", hk, "--macs", "-hmac-sha1*")
	res := run(r2.addr, "Ciphers=aes128-ctr", "MACs="+cipher.HMACSHA1)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "no matching MAC found") {
		t.Errorf("ssh with hmac-sha1 against --macs -hmac-sha1*: want no matching MAC\n%s", res)
	}
}
