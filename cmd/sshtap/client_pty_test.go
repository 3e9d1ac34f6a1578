package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// TestClientPTYShell drives an interactive shell on sshd through a real
// pty: the prompt, typing, the output and the exit status, with the events
// going to a file meanwhile and none of them onto the terminal.
func TestClientPTYShell(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	events := filepath.Join(t.TempDir(), "events.ndjson")
	p := startPTY(t, []string{"HOME=" + home, "USER=root"},
		"-p", strconv.Itoa(d.Port), "--events", events, "--json", "root@127.0.0.1")

	// A shell prompt: root's ends in "# ".
	off := p.waitFor(0, "# ", 30*time.Second)
	// Live: the handshake's events are in the file while the shell runs.
	evs := eventsOf(t, events)
	kinds := kindsOf(evs)
	for _, k := range []string{"kex", "user-auth"} {
		if kinds[k] == 0 {
			t.Errorf("while the shell runs, the events file has no %q line; kinds %v", k, kinds)
		}
	}

	// The typed line comes back as typed (echo); only its output has the
	// joined word and the computed number.
	p.send(`echo hel""lo-$((6*7))` + "\r")
	off = p.waitFor(off, "hello-42", 20*time.Second)
	off = p.waitFor(off, "# ", 20*time.Second)

	// The remote pty has the local terminal's size, and follows it when it
	// changes (SIGWINCH, window-change).
	p.send("stty size\r")
	off = p.waitFor(off, "24 80", 20*time.Second)
	off = p.waitFor(off, "# ", 20*time.Second)
	p.resize(40, 132)
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; ; n++ {
		// The mark is computed remotely: only the output has it, not the
		// echoed command line.
		mark := "size-" + strconv.Itoa(1000+n)
		p.send("echo size-$((1000+" + strconv.Itoa(n) + "))-$(stty size | tr ' ' x)\r")
		off = p.waitFor(off, mark+"-", 20*time.Second)
		off = p.waitFor(off, "\n", 20*time.Second)
		out := p.output()
		if strings.Contains(out[:off], mark+"-40x132") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote pty did not follow the resize to 40x132:\n%s", out)
		}
		// SIGWINCH reaches sshtap asynchronously to what is typed: poll.
		time.Sleep(100 * time.Millisecond) // polling interval, bounded by the deadline
	}
	off = p.waitFor(off, "# ", 20*time.Second)

	// The terminal is raw: ^C goes to the remote command, not to sshtap.
	// It is typed once the command runs as the terminal's foreground job:
	// the shell makes its child the foreground process group before the
	// child runs, and this child prints a computed mark before it execs
	// sleep. (A mark printed by the shell itself, before it forks sleep,
	// leaves a window in which ^C is lost and sleep runs its 30 s.)
	p.send("sh -c 'echo sleeping-$((3*3)); exec sleep 30'; echo slept\r")
	off = p.waitFor(off, "sleeping-9", 20*time.Second)
	p.send("\x03")
	off = p.waitFor(off, "# ", 20*time.Second)
	p.send("echo after-$((1+1))\r")
	off = p.waitFor(off, "after-2", 20*time.Second)
	p.waitFor(off, "# ", 20*time.Second)
	if p.cooked() {
		t.Error("the terminal is not in raw mode during the interactive session")
	}
	p.send("exit 3\r")
	if code := p.wait(30 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3 (the shell's)", code)
	}
	if !p.cooked() {
		t.Error("the terminal was left in raw mode")
	}

	out := p.output()
	for _, leak := range []string{`"kind"`, "kex-start", "user-auth", "summary"} {
		if strings.Contains(out, leak) {
			t.Errorf("event output %q leaked onto the terminal:\n%s", leak, out)
		}
	}
	kinds = kindsOf(eventsOf(t, events))
	for _, k := range []string{"kex-start", "kex", "user-auth", "closed", "summary"} {
		if kinds[k] == 0 {
			t.Errorf("events file has no %q line; kinds %v", k, kinds)
		}
	}
}

// TestClientPTYFirstUse answers the unknown-host question on the terminal
// (StrictHostKeyChecking ask, the default): yes records the key, no ends
// with the documented error.
func TestClientPTYFirstUse(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	port := strconv.Itoa(d.Port)
	const question = "Are you sure you want to continue connecting"

	t.Run("yes", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", port, "root@127.0.0.1", "echo connected-ok")
		off := p.waitFor(0, question, 30*time.Second)
		if kh := knownHostsOf(t, home); kh != "" {
			t.Errorf("known_hosts written before the answer: %q", kh)
		}
		p.send("yes\r")
		p.waitFor(off, "connected-ok", 30*time.Second)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
		kh := knownHostsOf(t, home)
		lines := strings.Split(strings.TrimSpace(kh), "\n")
		if len(lines) != 1 || !isHostKeyLine(d, lines[0]) {
			t.Errorf("known_hosts after yes:\n%s\nwant one line with a host key of [127.0.0.1]:%s", kh, port)
		}
		if !strings.HasPrefix(kh, "[127.0.0.1]:"+port+" ") {
			t.Errorf("known_hosts line does not name [127.0.0.1]:%s: %q", port, kh)
		}
	})
	t.Run("fingerprint", func(t *testing.T) {
		t.Parallel()
		// Anything else is asked again; the server's fingerprint, as
		// shown in the question, is a yes.
		home := peerHome(t, d, false)
		p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", port, "root@127.0.0.1", "echo connected-ok")
		off := p.waitFor(0, question, 30*time.Second)
		m := regexp.MustCompile(`key fingerprint is (SHA256:[A-Za-z0-9+/]+)`).FindStringSubmatch(p.output())
		if m == nil {
			t.Fatalf("no fingerprint in the question:\n%s", p.output())
		}
		p.send("perhaps\r")
		off = p.waitFor(off, "Please type 'yes', 'no' or the fingerprint", 30*time.Second)
		p.send(m[1] + "\r")
		p.waitFor(off, "connected-ok", 30*time.Second)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
		if kh := knownHostsOf(t, home); !isHostKeyLine(d, kh) {
			t.Errorf("known_hosts after the fingerprint: %q", kh)
		}
	})
	t.Run("wrong-fingerprint", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", port, "root@127.0.0.1", "echo connected-ok")
		off := p.waitFor(0, question, 30*time.Second)
		p.send("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r")
		p.waitFor(off, "Host key verification failed", 30*time.Second)
		if code := p.wait(30 * time.Second); code != 255 {
			t.Fatalf("exit code %d, want 255", code)
		}
		if kh := knownHostsOf(t, home); kh != "" {
			t.Errorf("known_hosts written: %q", kh)
		}
	})
	t.Run("no", func(t *testing.T) {
		t.Parallel()
		home := peerHome(t, d, false)
		p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", port, "root@127.0.0.1", "echo connected-ok")
		off := p.waitFor(0, question, 30*time.Second)
		p.send("no\r")
		p.waitFor(off, "Host key verification failed", 30*time.Second)
		if code := p.wait(30 * time.Second); code != 255 {
			t.Fatalf("exit code %d, want 255", code)
		}
		if strings.Contains(p.output(), "connected-ok") {
			t.Error("the command ran after the host key was refused")
		}
		if _, err := os.Stat(filepath.Join(home, ".ssh", "known_hosts")); err == nil {
			t.Errorf("known_hosts written after no: %q", knownHostsOf(t, home))
		}
	})
}

// TestClientPTYPromptOnTTY: the questions go to the controlling terminal,
// not to stdin and stdout, which stay the session's.
func TestClientPTYPromptOnTTY(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, false)
	var stdout syncBuffer
	p := startPTYRedirected(t, []string{"HOME=" + home}, strings.NewReader("line one\nline two\n"), &stdout,
		"-p", strconv.Itoa(d.Port), "root@127.0.0.1", "cat; echo cat-done")
	off := p.waitFor(0, "Are you sure you want to continue connecting", 30*time.Second)
	if stdout.String() != "" {
		t.Errorf("the question went to stdout: %q", stdout.String())
	}
	p.send("yes\r")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got, want := stdout.String(), "line one\nline two\ncat-done\n"; got != want {
		t.Errorf("stdout %q, want %q (stdin passed through, nothing else)", got, want)
	}
	if out := p.output()[off:]; strings.Contains(out, "line one") {
		t.Errorf("the session's data reached the terminal:\n%s", out)
	}
	if kh := knownHostsOf(t, home); !isHostKeyLine(d, kh) {
		t.Errorf("known_hosts after yes: %q", kh)
	}
}

// TestClientPTYSignal: SIGTERM during an interactive session ends it with
// 255 and leaves the terminal as it was.
func TestClientPTYSignal(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", strconv.Itoa(d.Port), "root@127.0.0.1")
	p.waitFor(0, "# ", 30*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(30 * time.Second); code != 255 {
		t.Errorf("exit code %d after SIGTERM, want 255", code)
	}
	if !p.cooked() {
		t.Error("the terminal was left in raw mode")
	}
	out := p.output()
	if !strings.Contains(out, "summary") {
		t.Errorf("no summary after SIGTERM:\n%s", out)
	}
	if !strings.Contains(out, "sshtap: interrupted") {
		t.Errorf("no 'sshtap: interrupted' message:\n%s", out)
	}
}
