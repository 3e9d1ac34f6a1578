package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// peerHome is a HOME for the sshtap process with the test client key as
// ~/.ssh/id_ed25519 and, when known is set, the server's host keys in
// ~/.ssh/known_hosts.
func peerHome(t *testing.T, d *testpeer.SSHD, known bool) string {
	t.Helper()
	home := t.TempDir()
	sshDir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	k := d.ClientKeys[0]
	if err := os.WriteFile(filepath.Join(sshDir, "id_ed25519"), k.Private, 0o600); err != nil {
		t.Fatal(err)
	}
	if known {
		var b strings.Builder
		for _, hk := range d.HostKeys {
			b.WriteString(hk.KnownHostsLine(d.Addr) + "\n")
		}
		if err := os.WriteFile(filepath.Join(sshDir, "known_hosts"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// ndjson parses an NDJSON stream, failing the test on a line that is not
// one JSON object.
func ndjson(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not NDJSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func kindsOf(evs []map[string]any) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		k, _ := e["kind"].(string)
		n[k]++
	}
	return n
}

// TestClientCommandSSHD runs a command on OpenSSH sshd with the built
// binary: stdout, stderr and the exit status pass through, and the events
// show in NDJSON (to a file) and in the human format (on stderr).
func TestClientCommandSSHD(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	port := strconv.Itoa(d.Port)
	events := filepath.Join(t.TempDir(), "events.ndjson")

	r := runBin(t, 60*time.Second, env, "", "-p", port, "--json", "--events", events, "root@127.0.0.1",
		"echo out; echo err >&2; exit 7")
	if r.code != 7 {
		t.Fatalf("exit code %d, want 7\nstderr:\n%s", r.code, r.stderr)
	}
	if r.stdout != "out\n" {
		t.Errorf("stdout %q, want %q", r.stdout, "out\n")
	}
	if !strings.Contains(r.stderr, "err\n") {
		t.Errorf("stderr %q lacks the command's stderr", r.stderr)
	}
	data, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	evs := ndjson(t, string(data))
	kinds := kindsOf(evs)
	for _, k := range []string{"kex-start", "kex", "ext-info", "user-auth", "closed", "summary"} {
		if kinds[k] == 0 {
			t.Errorf("no %q event; got %v", k, kinds)
		}
	}
	for _, e := range evs {
		switch e["kind"] {
		case "kex":
			if e["initial"] != true || e["strict"] != true {
				t.Errorf("kex event %v: want initial and strict against sshd 9.x", e)
			}
		case "user-auth":
			if e["result"] == "success" && e["method"] != "publickey" {
				t.Errorf("user-auth success by %v, want publickey", e["method"])
			}
		}
	}

	// Human format on stderr, no colour (not a terminal).
	r = runBin(t, 60*time.Second, env, "", "-p", port, "root@127.0.0.1", "exit 0")
	if r.code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", r.code, r.stderr)
	}
	// One line per event: "+S.MMMs kind  details", with the time since
	// connect; the kex line names the negotiated algorithms.
	line := regexp.MustCompile(`^\+\d+\.\d{3}s (\S+)\s+(.*)$`)
	seen := map[string]string{}
	for _, l := range strings.Split(r.stderr, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			seen[m[1]] = m[2]
		}
	}
	if k := seen["kex"]; !strings.HasPrefix(k, "initial ") || !strings.Contains(k, " c2s ") || !strings.Contains(k, " strict") {
		t.Errorf("kex line %q: want initial, the algorithms each way and strict", k)
	}
	if u := seen["user-auth"]; !strings.Contains(u, "publickey") || !strings.Contains(u, "success") {
		t.Errorf("last user-auth line %q: want the publickey success", u)
	}
	if c, ok := seen["closed"]; !ok || c != "closed" {
		t.Errorf("closed line %q: want a clean close", c)
	}
	if !strings.Contains(r.stderr, "summary after ") {
		t.Errorf("no exit summary:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "\x1b[") {
		t.Errorf("colour escapes in non-terminal output:\n%q", r.stderr)
	}
}

// sshtap -C against sshd: zlib@openssh.com is negotiated, the output comes
// through, and the summary tells the ratio.
func TestClientCompression(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	r := runBin(t, 60*time.Second, env, "", "-C", "-p", strconv.Itoa(d.Port), "root@127.0.0.1", "head -c 300000 /dev/zero")
	if r.code != 0 || len(r.stdout) != 300000 {
		t.Fatalf("exit %d, %d bytes of output; stderr:\n%s", r.code, len(r.stdout), r.stderr)
	}
	for _, want := range []string{"zlib@openssh.com", "zlib     in "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// UpdateHostKeys (default yes): sshtap against sshd with three host keys,
// knowing one and a retired one, learns the other two once sshd proved them
// (a host-key-proof event says so) and removes the retired key.
func TestClientUpdateHostKeys(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{HostKeys: []*testpeer.Key{
		testpeer.NewKey(t, testpeer.KeyEd25519), testpeer.NewKey(t, testpeer.KeyECDSA256), testpeer.NewKey(t, testpeer.KeyRSA3072),
	}})
	home := peerHome(t, d, false)
	kh := filepath.Join(home, ".ssh", "known_hosts")
	retired := testpeer.NewKey(t, testpeer.KeyEd25519)
	if err := os.WriteFile(kh, []byte(d.HostKeys[0].KnownHostsLine(d.Addr)+"\n"+retired.KnownHostsLine(d.Addr)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "USER=root"}
	r := runBin(t, 60*time.Second, env, "", "-o", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512",
		"-p", strconv.Itoa(d.Port), "root@127.0.0.1", "sleep 0.3")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range d.HostKeys {
		if !strings.Contains(string(data), strings.Fields(k.AuthorizedKey)[1]) {
			t.Errorf("known_hosts lacks the %s key:\n%s\nstderr:\n%s", k.Type, data, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "Learned new hostkey"); n != 2 {
		t.Errorf("%d keys learned, want 2:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "host-key-proof") || !strings.Contains(r.stderr, "proven n=2") {
		t.Errorf("no host-key-proof event for the two keys:\n%s", r.stderr)
	}
	if strings.Contains(string(data), strings.Fields(retired.AuthorizedKey)[1]) || !strings.Contains(r.stderr, "Deprecated hostkey removed") {
		t.Errorf("the retired key was not removed:\n%s\nstderr:\n%s", data, r.stderr)
	}
	// Next time: nothing new.
	r = runBin(t, 60*time.Second, env, "", "-p", strconv.Itoa(d.Port), "root@127.0.0.1", "sleep 0.3")
	if r.code != 0 || strings.Contains(r.stderr, "Learned new hostkey") {
		t.Errorf("second run: exit %d\n%s", r.code, r.stderr)
	}
}
