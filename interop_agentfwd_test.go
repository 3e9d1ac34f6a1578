package sshtap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap/internal/testpeer"
)

// afStartAgent runs a real ssh-agent in the foreground (-D) on a socket
// under t.TempDir() and returns the socket path once it listens. The agent
// is killed and reaped at cleanup.
func afStartAgent(t *testing.T) string {
	t.Helper()
	bin := testpeer.Binary(t, "ssh-agent")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(bin, "-D", "-a", sock)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// A stuck agent that neither prints nor exits is killed, which ends
	// the read below.
	stuck := time.AfterFunc(ioTimeout, func() { cmd.Process.Kill() })
	defer stuck.Stop()
	// With -D, ssh-agent prints "SSH_AUTH_SOCK=...; export ..." only after
	// it listens on the socket: the line is the readiness signal.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "SSH_AUTH_SOCK="+sock) {
		t.Fatalf("ssh-agent -D -a %s: first line %q, %v; stderr: %s", sock, line, err, stderr.String())
	}
	return sock
}

// afAgentHandler is the SessionHandler of TestInteropSSHAgentForwarding: it
// reports on stdout whether agent forwarding was requested, and if so opens
// an auth-agent@openssh.com channel to the client, lists the keys of the
// client's agent and has each sign data, verifying the signatures.
func afAgentHandler(s *ServerSession) {
	ctx, cancel := context.WithTimeout(s.Context(), ioTimeout)
	defer cancel()
	if !s.AgentForwardingRequested() {
		ch, err := s.OpenAgentChannel(ctx)
		if err == nil {
			ch.Close()
			fmt.Fprintln(s, "not requested, but OpenAgentChannel succeeded")
			s.Exit(1)
			return
		}
		fmt.Fprintln(s, "not requested:", err)
		s.Exit(0)
		return
	}
	ch, err := s.OpenAgentChannel(ctx)
	if err != nil {
		fmt.Fprintln(s.Stderr(), "OpenAgentChannel:", err)
		s.Exit(2)
		return
	}
	if ch.Type() != "auth-agent@openssh.com" {
		fmt.Fprintln(s.Stderr(), "agent channel type", ch.Type())
	}
	fail := func(format string, args ...any) {
		ch.Close()
		fmt.Fprintf(s.Stderr(), format+"\n", args...)
		s.Exit(3)
	}
	ac := agent.NewClient(ch)
	keys, err := ac.List()
	if err != nil {
		fail("List: %v", err)
		return
	}
	if len(keys) == 0 {
		fail("the forwarded agent holds no keys")
		return
	}
	var out strings.Builder
	for i, k := range keys {
		data := fmt.Appendf(nil, "sshtap agent forwarding %d %s", i, s.Command())
		sig, err := ac.Sign(k, data)
		if err != nil {
			fail("Sign with %s: %v", ssh.FingerprintSHA256(k), err)
			return
		}
		if err := k.Verify(data, sig); err != nil {
			fail("signature by %s does not verify: %v", ssh.FingerprintSHA256(k), err)
			return
		}
		// The signature is over data and nothing else.
		if k.Verify(append(data, '!'), sig) == nil {
			fail("signature by %s verifies other data", ssh.FingerprintSHA256(k))
			return
		}
		fmt.Fprintf(&out, "signed %s %s %s\n", k.Type(), ssh.FingerprintSHA256(k), k.Comment)
	}
	ch.Close()
	if _, err := io.WriteString(s, out.String()); err != nil {
		return
	}
	s.Exit(0)
}

// afRequestLog is what ssh -vvv logs when it sends auth-agent-req@openssh.com.
const afRequestLog = "Requesting authentication agent forwarding"

// TestInteropSSHAgentForwarding: the OpenSSH client with -A against our
// server. The client's agent is a real ssh-agent holding an ed25519 key
// added with ssh-add (not the login key); the SessionHandler sees
// AgentForwardingRequested, opens an auth-agent@openssh.com channel with
// OpenAgentChannel, which ssh connects to its SSH_AUTH_SOCK, lists the
// agent's key through it and gets a valid signature. Without -A the
// request flag is false and OpenAgentChannel fails.
func TestInteropSSHAgentForwarding(t *testing.T) {
	// Not parallel: ssh takes its agent from SSH_AUTH_SOCK (t.Setenv).
	testpeer.Require(t, "ssh", "ssh-agent", "ssh-add")
	sock := afStartAgent(t)
	t.Setenv("SSH_AUTH_SOCK", sock)

	agentKey := testpeer.NewKey(t, testpeer.KeyEd25519)
	add := exec.Command(testpeer.Binary(t, "ssh-add"), agentKey.Path)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock, "SSH_ASKPASS=/bin/false", "DISPLAY=")
	add.Stdin = strings.NewReader("")
	add.WaitDelay = 5 * time.Second
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add %s: %v\n%s", agentKey.Path, err, out)
	}
	want := ssh.FingerprintSHA256(agentKey.PublicKey)

	loginKey := testpeer.NewKey(t, testpeer.KeyEd25519)
	run := func(t *testing.T, flag string) *testpeer.ClientResult {
		t.Helper()
		addr, conns := fwdServe(t, &ServerConfig{SessionHandler: afAgentHandler}, loginKey)
		res := testpeer.SSHClient{
			Addr:    addr,
			Keys:    []*testpeer.Key{loginKey},
			Flags:   []string{"-T", flag},
			Command: []string{"agent-check"},
			Timeout: ioTimeout,
		}.Run(t)
		if res.TimedOut {
			t.Fatalf("ssh %s timed out: %s", flag, res)
		}
		// ssh logged in to this server (it has exited: the connection
		// went active before).
		select {
		case <-conns:
		case <-time.After(ioTimeout):
			t.Fatalf("ssh %s did not log in to our server: %s", flag, res)
		}
		return res
	}

	t.Run("forwarded", func(t *testing.T) {
		res := run(t, "-A")
		if res.ExitCode != 0 {
			t.Fatalf("ssh -A: %s", res)
		}
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "signed ssh-ed25519 "+want+" ") {
			t.Fatalf("ssh -A stdout %q, want one line signed by the agent's key %s\n%s", res.Stdout, want, res)
		}
		if !strings.HasSuffix(lines[0], " sshtap-testpeer-ed25519") {
			// ssh-add keeps the comment stored in the key file.
			t.Errorf("agent key comment in %q, want sshtap-testpeer-ed25519", lines[0])
		}
		if strings.Contains(res.Stdout, ssh.FingerprintSHA256(loginKey.PublicKey)) {
			t.Errorf("the login key was listed through the agent: %q", res.Stdout)
		}
		// The client's log shows the request and our channel open.
		if !strings.Contains(res.Stderr, afRequestLog) {
			t.Errorf("ssh log lacks %q:\n%s", afRequestLog, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "auth-agent@openssh.com") {
			t.Errorf("ssh log does not mention auth-agent@openssh.com:\n%s", res.Stderr)
		}
	})

	t.Run("not-forwarded", func(t *testing.T) {
		res := run(t, "-a")
		if res.ExitCode != 0 {
			t.Fatalf("ssh -a: %s", res)
		}
		if !strings.HasPrefix(res.Stdout, "not requested: ") || !strings.Contains(res.Stdout, "did not request agent forwarding") {
			t.Fatalf("ssh -a stdout %q\n%s", res.Stdout, res)
		}
		if strings.Contains(res.Stderr, afRequestLog) {
			t.Errorf("ssh -a requested agent forwarding:\n%s", res.Stderr)
		}
	})
}
