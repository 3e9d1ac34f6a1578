package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// jumpNet is three OpenSSH servers on 127.0.0.1, each with its own host
// key, all letting in one client key, and an ssh_config naming them hop1,
// hop2 and target (the latter with ProxyJump hop1,hop2).
type jumpNet struct {
	hop1, hop2, target *testpeer.SSHD
	key                *testpeer.Key
	home, config       string
	known              string // known_hosts with every server's key
	env                []string
}

func startJumpNet(t *testing.T, hop2Config ...string) *jumpNet {
	t.Helper()
	n := &jumpNet{key: testpeer.NewKey(t, testpeer.KeyEd25519), home: t.TempDir()}
	start := func(extra ...string) *testpeer.SSHD {
		return testpeer.StartSSHD(t, testpeer.SSHDOptions{
			HostKeys:       []*testpeer.Key{testpeer.NewKey(t, testpeer.KeyEd25519)},
			AuthorizedKeys: []*testpeer.Key{n.key},
			Config:         extra,
		})
	}
	n.hop1, n.hop2, n.target = start(), start(hop2Config...), start()
	var known strings.Builder
	for _, d := range []*testpeer.SSHD{n.hop1, n.hop2, n.target} {
		known.WriteString(d.HostKeys[0].KnownHostsLine(d.Addr) + "\n")
	}
	n.known = n.writeFile(t, "known_hosts", known.String())
	n.config = n.writeConfig(t, n.known, "")
	n.env = []string{"HOME=" + n.home, "USER=root", "SSH_AUTH_SOCK="}
	return n
}

func (n *jumpNet) writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeConfig writes an ssh_config for the three servers (readable by
// OpenSSH's ssh too), with known as the known_hosts file and extra lines
// at the top.
func (n *jumpNet) writeConfig(t *testing.T, known, extra string) string {
	t.Helper()
	return n.writeFile(t, "ssh_config", fmt.Sprintf(`%s
Host hop1
  Port %d
Host hop2
  Port %d
Host target
  Port %d
  ProxyJump hop1,hop2
Host direct
  Port %d
Host *
  HostName 127.0.0.1
  User root
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  BatchMode yes
`, extra, n.hop1.Port, n.hop2.Port, n.target.Port, n.target.Port, n.key.Path, known))
}

// ownerScript runs on the target and prints, for each process holding the
// client end of the SSH connection it runs in, the process and its
// ancestors: "owner: PID PPID ... 1". Everything runs on one machine, so
// this names the process that connected to the target.
const ownerScript = `set -- $SSH_CONNECTION
for p in $(ss -Htnp state established src "$1:$2" dst "$3:$4" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
  chain=""
  while [ "$p" -gt 1 ] 2>/dev/null; do chain="$chain $p"; p=$(awk '{print $4}' /proc/$p/stat); done
  echo "owner:$chain"
done`

// connectedBy checks that the target's client was a process of d's sshd
// (a direct-tcpip channel it opened), from ownerScript's output.
func connectedBy(t *testing.T, out string, d *testpeer.SSHD, name string) {
	t.Helper()
	owners := regexp.MustCompile(`(?m)^owner:(.*)$`).FindAllStringSubmatch(out, -1)
	if len(owners) == 0 {
		t.Fatalf("no owner of the target's client socket found; output:\n%s", out)
	}
	pid := strconv.Itoa(d.Pid())
	for _, o := range owners {
		if !strings.Contains(" "+o[1]+" ", " "+pid+" ") {
			t.Errorf("the target's client socket is held by processes %s, not by %s's sshd (pid %s)", o[1], name, pid)
		}
	}
}

// TestJumpSSHD goes through two real sshd hops, from the config's
// ProxyJump and from -J, and checks who connected to the target.
func TestJumpSSHD(t *testing.T) {
	n := startJumpNet(t)
	t.Run("config", func(t *testing.T) {
		r := runBin(t, 60*time.Second, n.env, "", "-F", n.config, "target", ownerScript)
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
		}
		// The target was reached from hop2's sshd, never directly.
		connectedBy(t, r.stdout, n.hop2, "hop2")
		if got := strings.Count(n.target.Log(), "Connection from 127.0.0.1"); got != 1 {
			t.Errorf("the target sshd saw %d connections, want 1", got)
		}
		for _, c := range []struct {
			d    *testpeer.SSHD
			port int
		}{{n.hop1, n.hop2.Port}, {n.hop2, n.target.Port}} {
			if want := fmt.Sprintf("target 127.0.0.1 port %d", c.port); !strings.Contains(c.d.Log(), want) {
				t.Errorf("hop sshd on port %d logged no direct-tcpip open with %q", c.d.Port, want)
			}
		}
		for _, want := range []string{"[hop 1 hop1] note", "[hop 2 hop2] note", "via jump host hop2"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("human events lack %q:\n%s", want, r.stderr)
			}
		}
	})
	t.Run("flag-overrides-config", func(t *testing.T) {
		// -J wins over the config's ProxyJump hop1,hop2: one hop.
		r := runBin(t, 60*time.Second, n.env, "", "-F", n.config, "-J", "hop1", "target", ownerScript)
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
		}
		connectedBy(t, r.stdout, n.hop1, "hop1")
		if strings.Contains(r.stderr, "hop2") {
			t.Errorf("hop2 was used:\n%s", r.stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		// -J with user@host:port and ssh:// hops, not from the config.
		events := filepath.Join(t.TempDir(), "events.ndjson")
		hops := fmt.Sprintf("root@hop1:%d,ssh://root@127.0.0.1:%d", n.hop1.Port, n.hop2.Port)
		r := runBin(t, 60*time.Second, n.env, "", "-F", n.config, "--json", "--events", events, "-J", hops, "direct", "echo jumped")
		if r.code != 0 || r.stdout != "jumped\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		kinds := map[string]map[string]int{}
		for _, e := range ndjson(t, readFile(t, events)) {
			label := "target"
			if h, ok := e["hop"].(string); ok {
				label = fmt.Sprintf("%v %s", e["hop_index"], h)
			} else if _, ok := e["hop_index"]; ok {
				t.Errorf("hop_index without hop: %v", e)
			}
			if kinds[label] == nil {
				kinds[label] = map[string]int{}
			}
			kinds[label][e["kind"].(string)]++
		}
		want := []string{"1 hop1", "2 127.0.0.1", "target"}
		if len(kinds) != len(want) {
			t.Errorf("events of %d connections, want %q: %v", len(kinds), want, kinds)
		}
		for _, w := range want {
			for _, k := range []string{"kex", "user-auth", "closed", "summary", "note"} {
				if kinds[w][k] == 0 {
					t.Errorf("connection %q has no %s event: %v", w, k, kinds[w])
				}
			}
		}
	})
	t.Run("proxycommand-sshtap-W", func(t *testing.T) {
		// ProxyCommand running sshtap -W through hop1.
		pc := fmt.Sprintf("ProxyCommand=%s -F %s -q --no-summary --events /dev/null -W %%h:%%p hop1", sshtapBin(t), n.config)
		r := runBin(t, 60*time.Second, n.env, "", "-F", n.config, "-o", pc, "direct", ownerScript)
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
		}
		connectedBy(t, r.stdout, n.hop1, "hop1")
		if !strings.Contains(r.stderr, "via ProxyCommand") {
			t.Errorf("no note of the ProxyCommand:\n%s", r.stderr)
		}
	})
	t.Run("proxycommand-ssh-W", func(t *testing.T) {
		pc := fmt.Sprintf("ProxyCommand=ssh -F %s -W %%h:%%p hop2", n.config)
		r := runBin(t, 60*time.Second, n.env, "", "-F", n.config, "-o", pc, "direct", ownerScript)
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
		}
		connectedBy(t, r.stdout, n.hop2, "hop2")
	})
	t.Run("openssh-over-sshtap-W", func(t *testing.T) {
		// OpenSSH's client with sshtap -W as its ProxyCommand.
		pc := fmt.Sprintf("ProxyCommand=%s -F %s -q --no-summary --events /dev/null -W %%h:%%p hop1", sshtapBin(t), n.config)
		cmd := exec.Command("ssh", "-F", n.config, "-o", pc, "direct", ownerScript)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, n.env...)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("ssh: %v\n%s", err, stderr)
		}
		connectedBy(t, string(out), n.hop1, "hop1")
	})
}

// TestJumpErrors: a hop whose host key is unknown and a hop that refuses
// direct-tcpip are refused with errors naming the hop.
func TestJumpErrors(t *testing.T) {
	n := startJumpNet(t, "AllowTcpForwarding no")
	// hop1's key is not on record.
	known := n.writeFile(t, "known_hosts", n.hop2.HostKeys[0].KnownHostsLine(n.hop2.Addr)+"\n"+n.target.HostKeys[0].KnownHostsLine(n.target.Addr)+"\n")
	cfg := n.writeConfig(t, known, "")
	r := runBin(t, 60*time.Second, n.env, "", "-F", cfg, "target", "echo reached")
	if r.code != 255 || r.stdout != "" {
		t.Fatalf("unknown hop host key: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "sshtap: jump host hop1: ") || !strings.Contains(r.stderr, fmt.Sprintf("[127.0.0.1]:%d", n.hop1.Port)) {
		t.Errorf("unknown hop host key: the error does not name the hop:\n%s", r.stderr)
	}
	if strings.Contains(n.hop2.Log(), "Connection from") || strings.Contains(n.target.Log(), "Connection from") {
		t.Error("went on past a hop whose host key is unknown")
	}

	// hop2 refuses direct-tcpip (AllowTcpForwarding no).
	r = runBin(t, 60*time.Second, n.env, "", "-F", n.config, "target", "echo reached")
	if r.code != 255 || r.stdout != "" {
		t.Fatalf("refused direct-tcpip: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	want := fmt.Sprintf("sshtap: jump host hop2 refused to connect to 127.0.0.1:%d", n.target.Port)
	if !strings.Contains(r.stderr, want) {
		t.Errorf("refused direct-tcpip: stderr lacks %q:\n%s", want, r.stderr)
	}
	if strings.Contains(n.target.Log(), "Connection from") {
		t.Error("the target was reached")
	}
}

// TestJumpServe goes through `sshtap serve` as the jump host.
func TestJumpServe(t *testing.T) {
	n := startJumpNet(t)
	hk := filepath.Join(t.TempDir(), "hostkey")
	srv := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", hk,
		"--authorized-keys", writeAuthorizedKeys(t, n.key), "--allow-forwarding", "--no-summary")
	pub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(srv.addr, "127.0.0.1:")
	known := n.writeFile(t, "known_hosts", readFile(t, n.known)+"[127.0.0.1]:"+port+" "+string(pub))
	cfg := n.writeConfig(t, known, "Host tapjump\n  Port "+port)
	r := runBin(t, 60*time.Second, n.env, "", "-F", cfg, "-J", "tapjump,hop2", "direct", ownerScript)
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nserve:\n%s", r.code, r.stderr, srv.stderr.String())
	}
	connectedBy(t, r.stdout, n.hop2, "hop2")
	// hop2 was reached from sshtap serve's process (this test binary).
	if want := fmt.Sprintf("target 127.0.0.1 port %d", n.target.Port); !strings.Contains(n.hop2.Log(), want) {
		t.Errorf("hop2 logged no direct-tcpip open with %q", want)
	}
	if !strings.Contains(r.stderr, "[hop 1 tapjump] kex ") || !strings.Contains(r.stderr, "[hop 2 hop2] kex ") {
		t.Errorf("no events of the serve hop:\n%s", r.stderr)
	}
}
