package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// TestClientForwarding: -L and -R with -N carry data both ways between the
// test and an echo server, and SIGINT or SIGTERM ends sshtap cleanly (exit
// 0, a disconnect, the summary).
func TestClientForwarding(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	port := strconv.Itoa(d.Port)
	echo := echoServer(t)

	t.Run("local", func(t *testing.T) {
		t.Parallel()
		lport := freeTCPPort(t)
		spec := "127.0.0.1:" + strconv.Itoa(lport) + ":127.0.0.1:" + strconv.Itoa(echo.Port)
		p := startBG(t, env, nil, "-p", port, "-v", "-N", "-L", spec, "root@127.0.0.1")
		p.waitStderr("local forward 127.0.0.1:"+strconv.Itoa(lport), 30*time.Second)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lport))
		echoThrough(t, addr, 200_000)
		echoThrough(t, addr, 10)
		if code := p.stop(os.Interrupt, 20*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGINT, want 0\nstderr:\n%s", code, p.stderr.String())
		}
		se := p.stderr.String()
		for _, w := range []string{"closed", "summary"} {
			if !strings.Contains(se, w) {
				t.Errorf("no %q after SIGINT:\n%s", w, se)
			}
		}
		if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("the -L listener %s still accepts after sshtap exited", addr)
		}
	})
	t.Run("remote", func(t *testing.T) {
		t.Parallel()
		spec := "127.0.0.1:0:127.0.0.1:" + strconv.Itoa(echo.Port)
		p := startBG(t, env, nil, "-p", port, "-N", "-R", spec, "root@127.0.0.1")
		se := p.waitStderr("Allocated port ", 30*time.Second)
		m := regexp.MustCompile(`Allocated port (\d+) for remote forward to 127\.0\.0\.1:` + strconv.Itoa(echo.Port)).FindStringSubmatch(se)
		if m == nil {
			t.Fatalf("no 'Allocated port N for remote forward to 127.0.0.1:%d' line:\n%s", echo.Port, se)
		}
		addr := net.JoinHostPort("127.0.0.1", m[1])
		echoThrough(t, addr, 200_000)
		echoThrough(t, addr, 10)
		if code := p.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr.String())
		}
		if !strings.Contains(p.stderr.String(), "summary") {
			t.Errorf("no summary after SIGTERM:\n%s", p.stderr.String())
		}
	})
}

// TestClientForwardEndsWithSession: when the command ends, sshtap exits
// even though a local client still holds a forwarded connection open (it
// is closed); and -R with port 0 and the default bind address reports the
// port the server chose.
func TestClientForwardEndsWithSession(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	port := strconv.Itoa(d.Port)
	echo := echoServer(t)

	lport := freeTCPPort(t)
	spec := "127.0.0.1:" + strconv.Itoa(lport) + ":127.0.0.1:" + strconv.Itoa(echo.Port)
	p := startBG(t, env, nil, "-p", port, "-v", "-L", spec, "-R", "0:127.0.0.1:"+strconv.Itoa(echo.Port), "root@127.0.0.1", "sleep 2")
	p.waitStderr("local forward 127.0.0.1:"+strconv.Itoa(lport), 30*time.Second)
	if se := p.waitStderr("Allocated port ", 30*time.Second); !regexp.MustCompile(`Allocated port \d+ for remote forward`).MatchString(se) {
		t.Errorf("no allocated port for -R 0:...:\n%s", se)
	}
	idle, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(lport)))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Write([]byte("x"))
	buf := make([]byte, 1)
	idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := idle.Read(buf); err != nil {
		t.Fatalf("forward not working: %v", err)
	}
	if r := p.wait(20 * time.Second); r.code != 0 {
		t.Errorf("exit code %d, want 0", r.code)
	}
	// The idle client's connection was closed by sshtap.
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(buf); err == nil {
		t.Error("the forwarded connection is still open after sshtap exited")
	}
}

// TestClientForwardFailures: a forward that cannot be set up is an error
// (exit 255), not a silently missing forward.
func TestClientForwardFailures(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{"AllowTcpForwarding no"}})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	port := strconv.Itoa(d.Port)

	t.Run("local-in-use", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		r := runDetached(t, 30*time.Second, env, "-p", port, "-N", "-L", l.Addr().String()+":127.0.0.1:9", "root@127.0.0.1")
		wantFail(t, r, "-L "+l.Addr().String()+":127.0.0.1:9", "address already in use")
	})
	t.Run("remote-refused", func(t *testing.T) {
		t.Parallel()
		r := runDetached(t, 30*time.Second, env, "-p", port, "-N", "-R", "127.0.0.1:0:127.0.0.1:9", "root@127.0.0.1")
		wantFail(t, r, "-R 127.0.0.1:0:127.0.0.1:9", "remote port forwarding failed")
		if strings.Contains(r.stderr, "Allocated port") {
			t.Errorf("a refused forward was reported as allocated:\n%s", r.stderr)
		}
	})
}

// startAgent runs ssh-agent in the foreground on a socket in a temp dir
// with key added, and returns the socket. The agent is killed at cleanup.
func startAgent(t *testing.T, key *testpeer.Key) string {
	t.Helper()
	testpeer.Require(t, "ssh-agent", "ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command(testpeer.Binary(t, "ssh-agent"), "-D", "-a", sock)
	agent.Env = []string{"PATH=" + os.Getenv("PATH")}
	agentOut, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent.WaitDelay = 5 * time.Second
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
	})
	// ssh-agent -D prints SSH_AUTH_SOCK=... only once it listens; a stuck
	// agent is killed, which ends the read.
	stuck := time.AfterFunc(10*time.Second, func() { agent.Process.Kill() })
	line, err := bufio.NewReader(agentOut).ReadString('\n')
	stuck.Stop()
	if err != nil || !strings.Contains(line, "SSH_AUTH_SOCK="+sock) {
		t.Fatalf("ssh-agent did not listen on %s: first line %q, %v", sock, line, err)
	}
	add := exec.Command(testpeer.Binary(t, "ssh-add"), key.Path)
	add.Env = []string{"SSH_AUTH_SOCK=" + sock}
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	return sock
}

// TestClientAgentForwarding: with -A, ssh-add -l on the server lists the
// local agent's key, and the forwarded requests show as agent-request
// events.
func TestClientAgentForwarding(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	key := testpeer.NewKey(t, testpeer.KeyEd25519) // the agent's, not authorised: the file key logs in
	sock := startAgent(t, key)
	env := []string{"HOME=" + home, "USER=root", "SSH_AUTH_SOCK=" + sock}
	fp := ssh.FingerprintSHA256(key.PublicKey)

	r := runDetached(t, 60*time.Second, env, "-p", strconv.Itoa(d.Port), "-A", "--json", "root@127.0.0.1", "ssh-add -l")
	if r.code != 0 || !strings.Contains(r.stdout, fp) {
		t.Fatalf("ssh-add -l through -A: exit %d, stdout %q, want the agent key %s\nstderr:\n%s", r.code, r.stdout, fp, r.stderr)
	}
	var reqs []map[string]any
	for _, e := range ndjson(t, r.stderr) {
		if e["kind"] == "agent-request" {
			reqs = append(reqs, e)
		}
	}
	listed := false
	for _, e := range reqs {
		if e["request"] == "list" && e["allowed"] == true {
			listed = true
		}
	}
	if !listed {
		t.Errorf("no allowed agent-request list event; agent-request events: %v", reqs)
	}

	// The agent's keys log in: the file key is gone, the agent has the
	// authorised one; with IdentityAgent none it is not used.
	home2 := peerHome(t, d, true)
	os.Remove(filepath.Join(home2, ".ssh", "id_ed25519"))
	sock2 := startAgent(t, d.ClientKey())
	env2 := []string{"HOME=" + home2, "USER=root", "SSH_AUTH_SOCK=" + sock2}
	r = runDetached(t, 60*time.Second, env2, "-p", strconv.Itoa(d.Port), "root@127.0.0.1", "echo via-agent")
	if r.code != 0 || r.stdout != "via-agent\n" {
		t.Errorf("login with the agent's key: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = runDetached(t, 60*time.Second, env2, "-p", strconv.Itoa(d.Port), "-o", "IdentityAgent=none", "root@127.0.0.1", "echo via-agent")
	wantFail(t, r, "Permission denied")

	// Without -A, the server has no agent.
	r = runDetached(t, 60*time.Second, env, "-p", strconv.Itoa(d.Port), "root@127.0.0.1", "ssh-add -l")
	if r.code == 0 || strings.Contains(r.stdout, fp) {
		t.Errorf("ssh-add -l without -A: exit %d, stdout %q: want no agent", r.code, r.stdout)
	}
}
