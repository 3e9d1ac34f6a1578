package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestProxyCommandReadsTerminal: a ProxyCommand that asks on /dev/tty (an
// "ssh -W" asking a password) gets what is typed there: it runs in
// sshtap's process group, the terminal's foreground one, not in a group of
// its own, which reading the terminal would stop (SIGTTIN).
func TestProxyCommandReadsTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	// The answer comes back with a computed mark: the terminal's echo of
	// what is typed has no "-42".
	os.WriteFile(cfg, []byte(`Host *
  ProxyCommand sh -c 'printf "proxy-asks: " >/dev/tty; read answer </dev/tty; echo "proxy-got-$answer-$((6*7))" >/dev/tty'
`), 0o600)
	p := startPTY(t, []string{"HOME=" + dir, "USER=me"}, "-F", cfg, "target")
	off := p.waitFor(0, "proxy-asks: ", 30*time.Second)
	p.send("typed\r")
	p.waitFor(off, "proxy-got-typed-42", 30*time.Second)
	// The command then exits without speaking SSH: the connection fails.
	if code := p.wait(30 * time.Second); code == 0 {
		t.Errorf("sshtap exited 0 although its ProxyCommand closed the connection at once")
	}
}

// TestProxyCommandProcessGroup: the command stays in sshtap's process
// group, as ssh leaves it, whether or not sshtap has a terminal.
func TestProxyCommandProcessGroup(t *testing.T) {
	p, err := startProxyCommand("cat", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pgid, err := syscall.Getpgid(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != syscall.Getpgrp() {
		t.Errorf("the ProxyCommand's process group is %d, sshtap's %d", pgid, syscall.Getpgrp())
	}
}
