package agentproxy

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap"
	"sshtap/internal/testpeer"
)

const ioTimeout = 20 * time.Second

// startAgent runs "ssh-agent -D -a SOCK" and returns SOCK once it listens
// (ssh-agent prints its SSH_AUTH_SOCK line only then).
func startAgent(t *testing.T) string {
	t.Helper()
	testpeer.Require(t, "ssh-agent", "ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(testpeer.Binary(t, "ssh-agent"), "-D", "-a", sock)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	stuck := time.AfterFunc(ioTimeout, func() { cmd.Process.Kill() })
	defer stuck.Stop()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "SSH_AUTH_SOCK="+sock) {
		t.Fatalf("ssh-agent: %q, %v", line, err)
	}
	return sock
}

// agentWithKeys starts an agent holding ed25519, ECDSA and RSA keys.
func agentWithKeys(t *testing.T) (string, []*testpeer.Key) {
	t.Helper()
	sock := startAgent(t)
	keys := testpeer.NewKeys(t, testpeer.KeyEd25519, testpeer.KeyECDSA256, testpeer.KeyRSA3072)
	a, c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, k := range keys {
		priv, err := ssh.ParseRawPrivateKey(k.Private)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Add(agent.AddedKey{PrivateKey: priv, Comment: string(k.Type)}); err != nil {
			t.Fatal(err)
		}
	}
	return sock, keys
}

func TestInteropAgentListSign(t *testing.T) {
	sock, keys := agentWithKeys(t)
	t.Setenv("SSH_AUTH_SOCK", sock)
	a, c, err := Dial("")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	listed, err := a.List()
	if err != nil || len(listed) != len(keys) {
		t.Fatalf("List: %d, %v", len(listed), err)
	}
	data := []byte("sign me")
	for _, k := range keys {
		sig, err := a.Sign(k.PublicKey, data)
		if err != nil {
			t.Fatalf("%s: %v", k.Type, err)
		}
		if err := k.PublicKey.Verify(data, sig); err != nil {
			t.Fatalf("%s: %v", k.Type, err)
		}
		if k.Type != testpeer.KeyRSA3072 {
			continue
		}
		for flags, format := range map[agent.SignatureFlags]string{
			agent.SignatureFlagRsaSha256: ssh.KeyAlgoRSASHA256,
			agent.SignatureFlagRsaSha512: ssh.KeyAlgoRSASHA512,
		} {
			sig, err := a.SignWithFlags(k.PublicKey, data, flags)
			if err != nil || sig.Format != format {
				t.Fatalf("flags %d: %v, %v", flags, sig, err)
			}
			if err := k.PublicKey.Verify(data, sig); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// dialSSHD starts sshd authorizing keys and dials it with sshtap using the
// agent at sock; handler (if not nil) is the Config.AgentHandler.
func dialSSHD(t *testing.T, sock string, keys []*testpeer.Key, handler func(*sshtap.Channel)) (*testpeer.SSHD, *sshtap.Conn) {
	t.Helper()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: keys, Config: []string{"AllowAgentForwarding yes"}})
	a, c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	conn, err := sshtap.Dial(ctx, "tcp", d.Addr, &sshtap.Config{
		User:            "root",
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Auth:            []sshtap.AuthMethod{sshtap.AgentAuth(a)},
		AgentHandler:    handler,
	})
	if err != nil {
		t.Fatalf("publickey login with the agent: %v\n%s", err, d.Log())
	}
	t.Cleanup(func() { conn.Close() })
	return d, conn
}

func TestInteropAgentAuth(t *testing.T) {
	sock, keys := agentWithKeys(t)
	_, conn := dialSSHD(t, sock, keys[2:], nil)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	s, err := conn.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output("echo ok")
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("%q, %v", out, err)
	}
}

// runForwarded runs cmd on sshd in a session with agent forwarding through
// a Proxy with policy, returning its combined output, the agent requests
// published on the Conn and the command's error.
func runForwarded(t *testing.T, sock string, keys []*testpeer.Key, policy Policy, cmd func(port int) string) (string, []*sshtap.AgentRequestEvent, error) {
	t.Helper()
	backing, bc, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	p := &Proxy{Backing: backing, Policy: policy}
	var wg sync.WaitGroup
	handler := func(ch *sshtap.Channel) { wg.Add(1); defer wg.Done(); p.Handler()(ch) }
	d, conn := dialSSHD(t, sock, keys, handler)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	sub := conn.SubscribeBuffer(ctx, sshtap.KindAgentRequest, 256)
	defer sub.Close()
	s, err := conn.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := EnableForwarding(s); err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput(cmd(d.Port))
	conn.Close()
	wg.Wait()
	var evs []*sshtap.AgentRequestEvent
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return string(out), evs, err
			}
			if ae, ok := ev.(*sshtap.AgentRequestEvent); ok {
				evs = append(evs, ae)
			}
			continue
		default:
		}
		return string(out), evs, err
	}
}

func hopCmd(port int) string {
	return "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -p " +
		strconv.Itoa(port) + " root@127.0.0.1 true && echo HOP-OK"
}

func TestInteropForwarding(t *testing.T) {
	testpeer.Require(t, "ssh", "sshd")
	sock, keys := agentWithKeys(t)
	out, evs, err := runForwarded(t, sock, keys, Policy{}, func(int) string { return "ssh-add -l" })
	if err != nil {
		t.Fatalf("ssh-add -l: %v\n%s", err, out)
	}
	for _, k := range keys {
		if !strings.Contains(out, ssh.FingerprintSHA256(k.PublicKey)) {
			t.Errorf("ssh-add -l misses %s:\n%s", k.Type, out)
		}
	}
	if !hasEvent(evs, "list", true) {
		t.Errorf("no list event: %+v", evs)
	}

	out, evs, err = runForwarded(t, sock, keys, Policy{}, hopCmd)
	if err != nil || !strings.Contains(out, "HOP-OK") {
		t.Fatalf("second hop: %v\n%s", err, out)
	}
	if !hasEvent(evs, "sign", true) {
		t.Errorf("no allowed sign event: %+v", evs)
	}
}

func TestInteropForwardingDenySign(t *testing.T) {
	testpeer.Require(t, "ssh", "sshd")
	sock, keys := agentWithKeys(t)
	deny := Policy{AllowSign: func(SignRequest) bool { return false }}
	out, evs, err := runForwarded(t, sock, keys, deny, hopCmd)
	if err == nil || strings.Contains(out, "HOP-OK") || !strings.Contains(out, "Permission denied") {
		t.Fatalf("hop with signing denied: %v\n%s", err, out)
	}
	if !hasEvent(evs, "sign", false) {
		t.Errorf("no denied sign event: %+v", evs)
	}
}

func TestInteropForwardingFilterKeys(t *testing.T) {
	testpeer.Require(t, "ssh", "sshd")
	sock, keys := agentWithKeys(t)
	hidden := string(keys[0].PublicKey.Marshal())
	filter := Policy{FilterKeys: func(ks []*agent.Key) []*agent.Key {
		var out []*agent.Key
		for _, k := range ks {
			if string(k.Marshal()) != hidden {
				out = append(out, k)
			}
		}
		return out
	}}
	out, _, err := runForwarded(t, sock, keys, filter, func(int) string { return "ssh-add -l" })
	if err != nil {
		t.Fatalf("ssh-add -l: %v\n%s", err, out)
	}
	if strings.Contains(out, ssh.FingerprintSHA256(keys[0].PublicKey)) {
		t.Errorf("hidden key listed:\n%s", out)
	}
	if !strings.Contains(out, ssh.FingerprintSHA256(keys[1].PublicKey)) {
		t.Errorf("visible key missing:\n%s", out)
	}
}

func hasEvent(evs []*sshtap.AgentRequestEvent, req string, allowed bool) bool {
	for _, ev := range evs {
		if ev.Request == req && ev.Allowed == allowed {
			return true
		}
	}
	return false
}

// TestInteropForwardedAgent: OpenSSH ssh -A against an sshtap server whose
// session code uses the forwarded agent (ForwardedAgent).
func TestInteropForwardedAgent(t *testing.T) {
	testpeer.Require(t, "ssh")
	sock, keys := agentWithKeys(t)
	t.Setenv("SSH_AUTH_SOCK", sock)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewSignerFromKey(priv)
	cfg := &sshtap.ServerConfig{
		HostKeys:     []ssh.Signer{hk},
		NoClientAuth: true,
		SessionHandler: func(s *sshtap.ServerSession) {
			ctx, cancel := context.WithTimeout(s.Context(), ioTimeout)
			defer cancel()
			a, c, err := ForwardedAgent(ctx, s)
			if err != nil {
				fmt.Fprintln(s, "ForwardedAgent:", err)
				s.Exit(2)
				return
			}
			defer c.Close()
			ks, err := a.List()
			if err != nil {
				fmt.Fprintln(s, "List:", err)
				s.Exit(3)
				return
			}
			for _, k := range ks {
				data := []byte("bastion " + k.Comment)
				sig, err := a.Sign(k, data)
				if err == nil {
					err = k.Verify(data, sig)
				}
				if err != nil {
					fmt.Fprintln(s, "sign:", err)
					s.Exit(4)
					return
				}
				fmt.Fprintln(s, "signed", ssh.FingerprintSHA256(k))
			}
			s.Exit(0)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := sshtap.ServerConn(nc, cfg)
		hctx, hcancel := context.WithTimeout(context.Background(), ioTimeout)
		err = c.Handshake(hctx)
		hcancel()
		if err == nil {
			c.Wait()
		}
		c.Close()
	})
	defer func() { ln.Close(); wg.Wait() }()
	res := testpeer.SSHClient{Addr: ln.Addr().String(), Flags: []string{"-A"}, Options: []string{"IdentitiesOnly=no"}, Command: []string{"x"}}.Run(t)
	if res.ExitCode != 0 {
		t.Fatalf("ssh -A: %s", res)
	}
	for _, k := range keys {
		if !strings.Contains(res.Stdout, "signed "+ssh.FingerprintSHA256(k.PublicKey)) {
			t.Errorf("%s not signed: %s", k.Type, res)
		}
	}
}
