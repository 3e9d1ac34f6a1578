package main

import (
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

// askpass writes an SSH_ASKPASS program that logs its prompt to a file and
// answers answer; it returns the program's path and the log's.
func askpass(t *testing.T, answer string) (prog, log string) {
	t.Helper()
	dir := t.TempDir()
	prog, log = filepath.Join(dir, "askpass"), filepath.Join(dir, "prompts")
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '" + log + "'\nprintf '%s\\n' '" + answer + "'\n"
	if err := os.WriteFile(prog, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return prog, log
}

func prompts(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestClientPasswordAskpass logs in with a password (and with
// keyboard-interactive through PAM) answered by SSH_ASKPASS with
// SSH_ASKPASS_REQUIRE=force: a wrong one is refused with the documented
// message after NumberOfPasswordPrompts tries, the right one runs the
// command.
func TestClientPasswordAskpass(t *testing.T) {
	t.Parallel()
	user, pw := testpeer.TestUserPassword(t)
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{
		"PasswordAuthentication yes", "KbdInteractiveAuthentication no", "PubkeyAuthentication no"}})
	home := peerHome(t, d, true)
	dest := user + "@127.0.0.1"
	port := strconv.Itoa(d.Port)
	env := func(prog string) []string {
		return []string{"HOME=" + home, "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"}
	}

	t.Run("wrong", func(t *testing.T) {
		prog, log := askpass(t, "not-"+pw)
		r := runDetached(t, 60*time.Second, env(prog), "-p", port, "--json", dest, "echo ran")
		wantFail(t, r, "Permission denied", dest, "tried:", "password")
		if r.stdout != "" {
			t.Errorf("the command ran: %q", r.stdout)
		}
		ps := prompts(t, log)
		if len(ps) != 3 || ps[0] != dest+"'s password:" {
			t.Errorf("askpass prompts %q, want three (NumberOfPasswordPrompts) of %q", ps, dest+"'s password:")
		}
		fails := 0
		for _, e := range ndjson(t, strings.TrimSuffix(r.stderr, finalError(r.stderr))) {
			if e["kind"] == "user-auth" && e["method"] == "password" && e["result"] == "failure" {
				fails++
			}
		}
		if fails != 3 {
			t.Errorf("%d failed password user-auth events, want 3", fails)
		}
	})
	t.Run("wrong-one-prompt", func(t *testing.T) {
		prog, log := askpass(t, "not-"+pw)
		r := runDetached(t, 60*time.Second, env(prog), "-p", port, "-o", "NumberOfPasswordPrompts=1", dest, "echo ran")
		wantFail(t, r, "Permission denied", "password")
		if ps := prompts(t, log); len(ps) != 1 {
			t.Errorf("askpass prompts %q, want one", ps)
		}
	})
	t.Run("right", func(t *testing.T) {
		prog, _ := askpass(t, pw)
		r := runDetached(t, 60*time.Second, env(prog), "-p", port, "--json", dest, "id -un")
		if r.code != 0 || r.stdout != user+"\n" {
			t.Fatalf("exit %d, stdout %q, want %q\nstderr:\n%s", r.code, r.stdout, user+"\n", r.stderr)
		}
		ok := false
		for _, e := range ndjson(t, r.stderr) {
			if e["kind"] == "user-auth" && e["result"] == "success" {
				ok = e["method"] == "password"
			}
		}
		if !ok {
			t.Errorf("no successful password user-auth event:\n%s", r.stderr)
		}
		d.WaitLog(t, "Accepted password for "+user)
	})
	t.Run("tty", func(t *testing.T) {
		// No askpass: the prompt is on the terminal, the typing is not
		// echoed, a wrong password is asked again.
		p := startPTY(t, []string{"HOME=" + home}, "-p", port, dest, "echo logged-in-as-$(id -un)")
		question := dest + "'s password: "
		off := p.waitFor(0, question, 30*time.Second)
		p.send("not-" + pw + "\r")
		off = p.waitFor(off, question, 30*time.Second)
		p.send(pw + "\r")
		p.waitFor(off, "logged-in-as-"+user, 30*time.Second)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if strings.Contains(p.output(), pw) {
			t.Errorf("the password was echoed on the terminal:\n%s", p.output())
		}
		if !p.cooked() {
			t.Error("echo was left off after the password prompt")
		}
		// Events wait while the prompt is up: none lands on its line.
		if regexp.MustCompile(`password: [^\n]*\+\d+\.\d+s`).MatchString(p.output()) {
			t.Errorf("an event was written on the password prompt's line:\n%q", p.output())
		}
	})
	t.Run("tty-wrong", func(t *testing.T) {
		p := startPTY(t, []string{"HOME=" + home}, "-p", port, "-o", "NumberOfPasswordPrompts=2", dest, "echo ran")
		question := dest + "'s password: "
		off := p.waitFor(0, question, 30*time.Second)
		p.send("wrong-1\r")
		off = p.waitFor(off, question, 30*time.Second)
		p.send("wrong-2\r")
		p.waitFor(off, "Permission denied", 30*time.Second)
		if code := p.wait(30 * time.Second); code != 255 {
			t.Fatalf("exit code %d, want 255", code)
		}
		if n := strings.Count(p.output(), question); n != 2 {
			t.Errorf("%d password prompts, want 2 (NumberOfPasswordPrompts)", n)
		}
	})
	t.Run("tty-interrupt", func(t *testing.T) {
		// Ctrl-C at the password prompt ends sshtap (255), with echo back
		// on, instead of leaving it blocked in the terminal read.
		p := startPTY(t, []string{"HOME=" + home}, "-p", port, dest, "echo ran")
		p.waitFor(0, dest+"'s password: ", 30*time.Second)
		p.send("\x03")
		if code := p.wait(30 * time.Second); code != 255 {
			t.Fatalf("exit code %d after Ctrl-C at the prompt, want 255\n%s", code, p.output())
		}
		if !strings.Contains(p.output(), "interrupted") {
			t.Errorf("no 'interrupted' after Ctrl-C:\n%s", p.output())
		}
		if !p.cooked() {
			t.Error("echo was left off after Ctrl-C at the password prompt")
		}
	})
	t.Run("askpass-no-tty", func(t *testing.T) {
		// Without a terminal SSH_ASKPASS is used without being forced.
		prog, log := askpass(t, pw)
		r := runDetached(t, 60*time.Second, []string{"HOME=" + home, "SSH_ASKPASS=" + prog}, "-p", port, dest, "id -un")
		if r.code != 0 || r.stdout != user+"\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if ps := prompts(t, log); len(ps) != 1 {
			t.Errorf("askpass prompts %q, want one", ps)
		}
	})
	t.Run("batch-mode", func(t *testing.T) {
		// BatchMode never asks, not even askpass.
		prog, log := askpass(t, pw)
		r := runDetached(t, 60*time.Second, env(prog), "-p", port, "-o", "BatchMode=yes", dest, "echo ran")
		wantFail(t, r, "Permission denied", "BatchMode")
		if _, err := os.Stat(log); err == nil {
			t.Errorf("askpass ran in BatchMode: %q", prompts(t, log))
		}
	})

	t.Run("keyboard-interactive", func(t *testing.T) {
		if _, err := os.Stat("/etc/pam.d/sshd"); err != nil {
			t.Skip("no /etc/pam.d/sshd: without PAM, sshd on Linux has no keyboard-interactive device")
		}
		kd := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{
			"UsePAM yes", "KbdInteractiveAuthentication yes", "PasswordAuthentication no", "PubkeyAuthentication no"}})
		khome := peerHome(t, kd, true)
		kenv := func(prog string) []string {
			return []string{"HOME=" + khome, "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"}
		}
		kport := strconv.Itoa(kd.Port)

		prog, log := askpass(t, pw)
		r := runDetached(t, 60*time.Second, kenv(prog), "-p", kport, "--json", dest, "id -un")
		if r.code != 0 || r.stdout != user+"\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		ok := false
		for _, e := range ndjson(t, r.stderr) {
			if e["kind"] == "user-auth" && e["result"] == "success" {
				ok = e["method"] == "keyboard-interactive"
			}
		}
		if !ok {
			t.Errorf("no successful keyboard-interactive user-auth event:\n%s", r.stderr)
		}
		if ps := prompts(t, log); len(ps) == 0 || !strings.Contains(strings.ToLower(ps[0]), "password") {
			t.Errorf("askpass prompts %q: want PAM's password prompt", ps)
		}
		kd.WaitLog(t, "Accepted keyboard-interactive/pam for "+user)

		prog, _ = askpass(t, "not-"+pw)
		r = runDetached(t, 60*time.Second, kenv(prog), "-p", kport, dest, "echo ran")
		wantFail(t, r, "Permission denied", "tried:", "keyboard-interactive")
	})
}

// TestClientKeyPassphrase: an encrypted identity file is unlocked with the
// passphrase from SSH_ASKPASS (or typed on the terminal); a wrong one is
// asked three times, then the key is skipped and the login fails.
func TestClientKeyPassphrase(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh-keygen")
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	key := filepath.Join(home, ".ssh", "id_ed25519")
	if out, err := exec.Command(testpeer.Binary(t, "ssh-keygen"), "-p", "-P", "", "-N", "sekrit", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v: %s", err, out)
	}
	port := strconv.Itoa(d.Port)
	question := "Enter passphrase for key '" + key + "':"

	t.Run("askpass", func(t *testing.T) {
		t.Parallel()
		prog, log := askpass(t, "sekrit")
		r := runDetached(t, 60*time.Second, []string{"HOME=" + home, "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"},
			"-p", port, "root@127.0.0.1", "echo ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if ps := prompts(t, log); len(ps) != 1 || ps[0] != question {
			t.Errorf("askpass prompts %q, want [%q]", ps, question)
		}
	})
	t.Run("askpass-wrong", func(t *testing.T) {
		t.Parallel()
		prog, log := askpass(t, "not-it")
		r := runDetached(t, 60*time.Second, []string{"HOME=" + home, "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"},
			"-p", port, "-o", "KbdInteractiveAuthentication=no", "root@127.0.0.1", "echo ok")
		wantFail(t, r, "Permission denied", "publickey")
		if !strings.Contains(r.stderr, "bad passphrase") {
			t.Errorf("no warning about the bad passphrase:\n%s", r.stderr)
		}
		if ps := prompts(t, log); len(ps) != 3 {
			t.Errorf("askpass prompts %q, want three", ps)
		}
	})
	t.Run("tty", func(t *testing.T) {
		t.Parallel()
		p := startPTY(t, []string{"HOME=" + home}, "-p", port, "root@127.0.0.1", "echo logged-in")
		off := p.waitFor(0, question, 30*time.Second)
		p.send("sekrit\r")
		p.waitFor(off, "logged-in", 30*time.Second)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if strings.Contains(p.output(), "sekrit") {
			t.Errorf("the passphrase was echoed:\n%s", p.output())
		}
	})
}

// TestClientEncryptedKeyNotUsed: an encrypted identity after one the
// server accepts is never decrypted: no passphrase question (ssh offers the
// public key first, and so does sshtap).
func TestClientEncryptedKeyNotUsed(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh-keygen")
	plain := testpeer.NewKey(t, testpeer.KeyEd25519)
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{AuthorizedKeys: []*testpeer.Key{plain}})
	home := peerHome(t, d, true)
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc")
	if out, err := exec.Command(testpeer.Binary(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "sekrit", "-f", enc).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	os.Remove(enc + ".pub") // the OpenSSH format carries the public key in clear
	prog, log := askpass(t, "sekrit")
	r := runDetached(t, 60*time.Second, []string{"HOME=" + home, "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"},
		"-p", strconv.Itoa(d.Port), "-i", plain.Path, "-i", enc, "root@127.0.0.1", "echo ok")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if ps := prompts(t, log); len(ps) != 0 {
		t.Errorf("asked %q for a key that was never needed", ps)
	}
}
