package main

import (
	"io"
	"os"
	"os/signal"
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

// TestProxyCommandCloseHangsUp: Close sends SIGHUP as soon as it has
// closed the command's stdin, as ssh does when the connection ends; it
// does not first wait for a command that ignores its stdin to exit.
func TestProxyCommandCloseHangsUp(t *testing.T) {
	// A test run under nohup has SIGHUP ignored, and an ignored signal
	// stays ignored across exec; one this process handles is reset to the
	// default in the child.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	p, err := startProxyCommand("sleep 3600", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough that a Close waiting for it before SIGHUP is caught
	// below; the SIGKILL fallback is not what ends this command.
	p.exitWait = time.Hour
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	select {
	case <-closed:
	case <-deadline.C:
		p.cmd.Process.Kill()
		<-closed
		t.Fatal("Close still waiting 30s after it closed the ProxyCommand's stdin: no SIGHUP")
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		t.Errorf("the ProxyCommand ended with %v, want SIGHUP", p.cmd.ProcessState)
	}
}

// TestProxyCommandCloseKills: a command that ignores SIGHUP gets SIGKILL
// after the wait, and Close returns once it was reaped.
func TestProxyCommandCloseKills(t *testing.T) {
	p, err := startProxyCommand(`sh -c "trap '' HUP; echo ready; exec sleep 3600"`, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.exitWait = 10 * time.Millisecond
	// SIGHUP is ignored only once the trap ran.
	buf := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(p, buf); err != nil || string(buf) != "ready\n" {
		p.exitWait = 0
		p.Close()
		t.Fatalf("reading the command's output: %q, %v", buf, err)
	}
	p.Close()
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the ProxyCommand ended with %v, want SIGKILL", p.cmd.ProcessState)
	}
}
