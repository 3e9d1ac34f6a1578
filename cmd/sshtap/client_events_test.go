package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sshtap/internal/testpeer"
	"sshtap/kex"
)

// TestClientSSHConfig: a -F file's Host block supplies HostName, Port, User
// and IdentityFile (with ~), and the command line still wins over it.
func TestClientSSHConfig(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	// The key only under a name the config gives: no default identity.
	if err := os.Rename(filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(home, "k")); err != nil {
		t.Fatal(err)
	}
	closed := freeTCPPort(t)
	cfg := filepath.Join(t.TempDir(), "config")
	text := "Host myalias\n" +
		"    HostName 127.0.0.1\n" +
		"    Port " + strconv.Itoa(d.Port) + "\n" +
		"    User root\n" +
		"    IdentityFile ~/k\n" +
		"\n" +
		"Host wrongport\n" +
		"    HostName 127.0.0.1\n" +
		"    Port " + strconv.Itoa(closed) + "\n" +
		"    User nobody-at-all\n" +
		"    IdentityFile ~/k\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "USER=someone-else"}

	t.Run("alias", func(t *testing.T) {
		t.Parallel()
		r := runDetached(t, 60*time.Second, env, "-F", cfg, "myalias", "echo $USER@$SSH_CONNECTION")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "root@127.0.0.1 ") || !strings.Contains(r.stdout, " "+strconv.Itoa(d.Port)+"\n") {
			t.Fatalf("exit %d, stdout %q, want root on port %d\nstderr:\n%s", r.code, r.stdout, d.Port, r.stderr)
		}
	})
	t.Run("command-line-wins", func(t *testing.T) {
		t.Parallel()
		r := runDetached(t, 60*time.Second, env, "-F", cfg, "-p", strconv.Itoa(d.Port), "-l", "root", "wrongport", "echo $USER")
		if r.code != 0 || r.stdout != "root\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = runDetached(t, 60*time.Second, env, "-F", cfg, "-o", "Port="+strconv.Itoa(d.Port), "root@wrongport", "echo $USER")
		if r.code != 0 || r.stdout != "root\n" {
			t.Fatalf("-o Port: exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("config-port", func(t *testing.T) {
		t.Parallel()
		r := runDetached(t, 60*time.Second, env, "-F", cfg, "wrongport", "true")
		wantFail(t, r, "connection refused", "port "+strconv.Itoa(closed))
	})
}

// TestClientEventOutput: --only and --except select kinds, colour follows
// the terminal, NO_COLOR and --color, and --rekey-every and --keepalive
// produce rekeys and pings against sshd.
func TestClientEventOutput(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	base := []string{"-p", strconv.Itoa(d.Port)}
	run := func(t *testing.T, args ...string) result {
		t.Helper()
		r := runDetached(t, 60*time.Second, env, append(base, args...)...)
		if r.code != 0 {
			t.Fatalf("sshtap %v: exit %d\nstderr:\n%s", args, r.code, r.stderr)
		}
		return r
	}
	// alwaysShown are not event kinds: --only and --except do not hide them.
	alwaysShown := map[string]bool{"note": true, "summary": true}

	t.Run("only", func(t *testing.T) {
		t.Parallel()
		r := run(t, "--json", "--only", "kex,closed", "root@127.0.0.1", "true")
		kinds := kindsOf(ndjson(t, r.stderr))
		if kinds["kex"] != 1 || kinds["closed"] != 1 || kinds["summary"] != 1 {
			t.Errorf("kinds %v: want one kex, closed and summary", kinds)
		}
		for k := range kinds {
			if k != "kex" && k != "closed" && !alwaysShown[k] {
				t.Errorf("--only kex,closed showed %q (kinds %v)", k, kinds)
			}
		}
		// The summary still counts every kind.
		for _, e := range ndjson(t, r.stderr) {
			if e["kind"] == "summary" {
				counts, _ := e["counts"].(map[string]any)
				if counts["user-auth"] == nil || counts["kex-start"] == nil {
					t.Errorf("summary counts %v: want the hidden kinds counted", counts)
				}
			}
		}
	})
	t.Run("sntrup761", func(t *testing.T) {
		t.Parallel()
		// sshd 9.2 lacks mlkem768x25519-sha256, so by default the first
		// method both offer is sntrup761x25519-sha512; -o names the
		// @openssh.com alias.
		for _, tc := range []struct{ opt, want string }{
			{"", kex.Sntrup761X25519},
			{"KexAlgorithms=" + kex.Sntrup761X25519OpenSSH, kex.Sntrup761X25519OpenSSH},
		} {
			args := []string{"--json", "--only", "kex", "root@127.0.0.1", "true"}
			if tc.opt != "" {
				args = append([]string{"-o", tc.opt}, args...)
			}
			r := run(t, args...)
			var got []any
			for _, e := range ndjson(t, r.stderr) {
				if e["kind"] == "kex" {
					got = append(got, e["kex"])
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("-o %q: kex events name %v, want [%s]", tc.opt, got, tc.want)
			}
		}
		r := run(t, "-o", "KexAlgorithms="+kex.Sntrup761X25519OpenSSH, "--only", "kex", "--no-summary", "root@127.0.0.1", "true")
		if !strings.Contains(r.stderr, kex.Sntrup761X25519OpenSSH) {
			t.Errorf("human view does not name the method:\n%s", r.stderr)
		}
	})
	t.Run("except", func(t *testing.T) {
		t.Parallel()
		r := run(t, "--json", "--except", "kex,kex-start,ext-info", "root@127.0.0.1", "true")
		kinds := kindsOf(ndjson(t, r.stderr))
		for _, k := range []string{"kex", "kex-start", "ext-info"} {
			if kinds[k] != 0 {
				t.Errorf("--except showed %q (kinds %v)", k, kinds)
			}
		}
		if kinds["user-auth"] == 0 || kinds["closed"] == 0 {
			t.Errorf("--except hid other kinds too: %v", kinds)
		}
	})
	t.Run("human-only", func(t *testing.T) {
		t.Parallel()
		r := run(t, "--only", "closed", "--no-summary", "root@127.0.0.1", "true")
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || (f[1] != "closed" && f[1] != "note") {
				t.Errorf("--only closed --no-summary: line %q", l)
			}
		}
		if strings.Contains(r.stderr, "summary") {
			t.Errorf("--no-summary wrote a summary:\n%s", r.stderr)
		}
	})
	t.Run("colour", func(t *testing.T) {
		t.Parallel()
		// Not a terminal: no colour, also with NO_COLOR unset.
		r := run(t, "root@127.0.0.1", "true")
		if strings.Contains(r.stderr, "\x1b") {
			t.Errorf("ESC in non-terminal output:\n%q", r.stderr)
		}
		r = run(t, "--color=always", "root@127.0.0.1", "true")
		if !strings.Contains(r.stderr, "\x1b[") {
			t.Errorf("no colour with --color=always:\n%q", r.stderr)
		}
		r = run(t, "--color=always", "--json", "root@127.0.0.1", "true")
		if strings.Contains(r.stderr, "\x1b") {
			t.Errorf("ESC in NDJSON with --color=always:\n%q", r.stderr)
		}
		// A terminal: colour by default, none with NO_COLOR or --color=never.
		for _, tc := range []struct {
			name   string
			env    []string
			args   []string
			colour bool
		}{
			{"tty", nil, nil, true},
			{"tty-NO_COLOR", []string{"NO_COLOR=1"}, nil, false},
			{"tty-never", nil, []string{"--color=never"}, false},
			{"tty-NO_COLOR-always", []string{"NO_COLOR=1"}, []string{"--color=always"}, true},
		} {
			args := append(append(append([]string(nil), base...), tc.args...), "root@127.0.0.1", "echo done-"+tc.name)
			p := startPTY(t, append(append([]string(nil), env...), tc.env...), args...)
			if code := p.wait(60 * time.Second); code != 0 {
				t.Fatalf("%s: exit %d\n%s", tc.name, code, p.output())
			}
			out := p.output()
			if !strings.Contains(out, "done-"+tc.name) {
				t.Errorf("%s: no command output:\n%q", tc.name, out)
			}
			if got := strings.Contains(out, "\x1b["); got != tc.colour {
				t.Errorf("%s: colour %v, want %v:\n%q", tc.name, got, tc.colour, out)
			}
		}
	})
	t.Run("rekey-every", func(t *testing.T) {
		t.Parallel()
		const size = 1 << 20
		// 1 MiB in 64 KiB pieces with pauses: sshd writes fast enough to
		// send a whole MiB before it reads the client's KEXINIT, so
		// without them no rekey may complete before the command ends.
		r := run(t, "--json", "--rekey-every", "64K", "root@127.0.0.1",
			"for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do head -c 65536 /dev/zero; sleep 0.05; done")
		if len(r.stdout) != size || strings.Trim(r.stdout, "\x00") != "" {
			t.Fatalf("stdout: %d bytes, want %d zero bytes", len(r.stdout), size)
		}
		evs := ndjson(t, r.stderr)
		rekeyKex := 0
		var rekeys float64 = -1
		for _, e := range evs {
			switch e["kind"] {
			case "kex":
				if e["initial"] == false {
					rekeyKex++
				}
			case "summary":
				rekeys, _ = e["rekeys"].(float64)
			}
		}
		// sshtap starts a rekey once the keys have carried 64 KiB; how
		// many complete depends on timing: at least one.
		t.Logf("%d rekeys", rekeyKex)
		if rekeyKex < 1 || rekeys < 1 {
			t.Errorf("%d non-initial kex events, summary rekeys %v: want at least one for 1 MiB at 64K", rekeyKex, rekeys)
		}
		if float64(rekeyKex) != rekeys {
			t.Errorf("%d non-initial kex events but summary rekeys %v", rekeyKex, rekeys)
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		t.Parallel()
		r := run(t, "--json", "--keepalive", "200ms", "root@127.0.0.1", "sleep 1")
		pings := 0
		for _, e := range ndjson(t, r.stderr) {
			switch e["kind"] {
			case "ping":
				pings++
				if rtt, ok := e["rtt_ms"].(float64); !ok || rtt <= 0 {
					t.Errorf("ping event without a positive rtt_ms: %v", e)
				}
			case "summary":
				if n, _ := e["pings"].(float64); int(n) != pings {
					t.Errorf("summary pings %v, but %d ping events", e["pings"], pings)
				}
				if _, ok := e["rtt_avg_ms"].(float64); !ok {
					t.Errorf("summary without rtt_avg_ms: %v", e)
				}
			}
		}
		if pings < 2 {
			t.Errorf("%d ping events in a 1 s command at 200ms intervals, want several", pings)
		}
	})
}
