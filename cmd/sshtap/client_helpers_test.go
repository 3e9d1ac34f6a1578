package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sshtap/internal/testpeer"
)

// Helpers for the client tests that run the built binary against sshd: a
// pty the binary runs on, a binary running in the background, a TCP echo
// server.

// openPTY opens a pseudo-terminal pair: the master stays with the test,
// the slave becomes the child's terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, sl, err := openPty() // serve's
	if err != nil {
		t.Fatalf("open a pty: %v", err)
	}
	setPtySize(m, 80, 24, 0, 0)
	// NOFLSH: a ^C typed on the terminal (TestClientPasswordAskpass's
	// tty-interrupt) makes the kernel send SIGINT and flush the output
	// queue, and the flush races with what the program writes in answer to
	// the signal: its last lines ("sshtap: ...: interrupted") were lost
	// now and then, the master reading EIO after its exit without them.
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		var tio *unix.Termios
		if tio, ioErr = unix.IoctlGetTermios(int(fd), unix.TCGETS); ioErr == nil {
			tio.Lflag |= unix.NOFLSH
			ioErr = unix.IoctlSetTermios(int(fd), unix.TCSETS, tio)
		}
	}); err != nil || ioErr != nil {
		t.Fatalf("terminal settings: %v, %v", err, ioErr)
	}
	return m, sl
}

// child is the built binary started by startChild: its exit is watched,
// and it is killed at cleanup if still running.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	exited chan struct{} // closed when it has exited; code is then set
	code   int           // exit code; 128+N when killed by signal N
}

// startChild starts the binary with args, env (added to PATH) and the I/O
// and process attributes setup gives the command. cleanup runs at the
// test's cleanup, after the process has exited.
func startChild(t *testing.T, env []string, setup func(*exec.Cmd), cleanup func(), args ...string) *child {
	t.Helper()
	c := &child{t: t, cmd: exec.Command(sshtapBin(t), args...), exited: make(chan struct{})}
	// The binary is built with -race, whose runtime sleeps a second at
	// exit by default; races found are reported (exit code 66) anyway.
	c.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "GORACE=atexit_sleep_ms=0", hermeticEnv}, env...)
	setup(c.cmd)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start sshtap: %v", err)
	}
	go func() {
		err := c.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			c.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				c.code = 128 + int(ws.Signal())
			}
		default:
			c.code = -1
		}
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
		cleanup()
	})
	return c
}

// waitExit waits up to d for the process to exit and reports whether it did.
func (c *child) waitExit(d time.Duration) bool {
	select {
	case <-c.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// ptyProc is the built binary running on a pty as its controlling terminal,
// with stdin, stdout and stderr on it.
type ptyProc struct {
	*child
	master *os.File

	mu     sync.Mutex
	out    bytes.Buffer
	grew   chan struct{} // closed and replaced whenever out grows or reading ends
	closed bool
	readWG sync.WaitGroup
}

// startPTY runs the binary with args and env (added to PATH and TERM=dumb)
// on a fresh pty. It is killed, and the pty closed, at cleanup.
func startPTY(t *testing.T, env []string, args ...string) *ptyProc {
	t.Helper()
	return startPTYRedirected(t, env, nil, nil, args...)
}

// startPTYRedirected is startPTY with stdin and stdout elsewhere when not
// nil: the pty stays the controlling terminal (/dev/tty) and stderr.
func startPTYRedirected(t *testing.T, env []string, stdin io.Reader, stdout io.Writer, args ...string) *ptyProc {
	t.Helper()
	return startPTYWith(t, env, stdin, stdout, nil, args...)
}

// startPTYWith is startPTYRedirected with wrap, when not nil, changing the
// command first (what runs, with its arguments).
func startPTYWith(t *testing.T, env []string, stdin io.Reader, stdout io.Writer, wrap func(*exec.Cmd), args ...string) *ptyProc {
	t.Helper()
	master, slave := openPTY(t)
	defer slave.Close() // the child has its own; reads on master end with EIO when it exits
	p := &ptyProc{master: master, grew: make(chan struct{})}
	setup := func(cmd *exec.Cmd) {
		if wrap != nil {
			wrap(cmd)
		}
		cmd.Env = append(cmd.Env, "TERM=dumb")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		if stdin != nil {
			cmd.Stdin = stdin
		}
		if stdout != nil {
			cmd.Stdout = stdout
		}
		// Ctty is a descriptor of the child: stderr is always the pty.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 2}
	}
	t.Cleanup(func() { master.Close() }) // if the start fails; closing twice is harmless
	p.child = startChild(t, env, setup, func() {
		master.Close()
		p.readWG.Wait()
		if strings.Contains(p.output(), "DATA RACE") {
			t.Errorf("the race detector reported a race in sshtap")
		}
		if t.Failed() {
			t.Logf("sshtap %v, terminal output:\n%s", args, p.output())
		}
	}, args...)
	p.readWG.Add(1)
	go p.read()
	return p
}

func (p *ptyProc) read() {
	defer p.readWG.Done()
	buf := make([]byte, 4096)
	for {
		n, err := p.master.Read(buf)
		p.mu.Lock()
		p.out.Write(buf[:n])
		close(p.grew)
		p.grew = make(chan struct{})
		if err != nil {
			p.closed = true
		}
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// output is everything the process wrote to the terminal so far.
func (p *ptyProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal output from offset from on contains
// substr and returns the offset just after it; it fails the test after d.
func (p *ptyProc) waitFor(from int, substr string, d time.Duration) int {
	p.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		s := p.out.String()
		grew, closed := p.grew, p.closed
		p.mu.Unlock()
		if from <= len(s) {
			if i := strings.Index(s[from:], substr); i >= 0 {
				return from + i + len(substr)
			}
		}
		if closed {
			p.t.Fatalf("the terminal closed without showing %q; output:\n%s", substr, s)
		}
		select {
		case <-grew:
		case <-deadline.C:
			p.t.Fatalf("no %q on the terminal after %v; output:\n%s", substr, d, s)
		}
	}
}

// send types s on the terminal.
func (p *ptyProc) send(s string) {
	p.t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		p.t.Fatalf("typing %q: %v", s, err)
	}
}

// resize sets the terminal's size; the kernel sends SIGWINCH to sshtap.
func (p *ptyProc) resize(rows, cols uint16) {
	p.t.Helper()
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		p.t.Fatalf("resize the pty: %v", err)
	}
}

// cooked reports whether the terminal is back in its normal mode: echo and
// line editing on, as sshtap must leave it.
func (p *ptyProc) cooked() bool {
	p.t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.master.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatalf("terminal settings: %v", err)
	}
	return tio.Lflag&unix.ECHO != 0 && tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ISIG != 0 && tio.Oflag&unix.OPOST != 0
}

// wait waits for the process to exit and returns its exit code, failing the
// test after d.
func (p *ptyProc) wait(d time.Duration) int {
	p.t.Helper()
	if !p.waitExit(d) {
		p.t.Fatalf("sshtap still running after %v; terminal output:\n%s", d, p.output())
	}
	// Collect what it wrote last: reading ends with EIO once the last
	// holder of the slave is gone.
	done := make(chan struct{})
	go func() { p.readWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return p.code
}

// bgProc is the built binary running in the background with its output
// collected.
type bgProc struct {
	*child
	stdout, stderr syncBuffer
}

// startBG starts the binary with args and env (added to PATH), stdin at
// EOF unless stdin is given, in a session of its own: it has no controlling
// terminal even when the tests run on one, so nothing can prompt on /dev/tty.
// It is killed at cleanup if still running.
func startBG(t *testing.T, env []string, stdin io.Reader, args ...string) *bgProc {
	t.Helper()
	p := &bgProc{}
	setup := func(cmd *exec.Cmd) {
		cmd.Stdin = stdin
		cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	p.child = startChild(t, env, setup, func() {
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("the race detector reported a race in sshtap")
		}
		if t.Failed() {
			t.Logf("sshtap %v\nstdout:\n%s\nstderr:\n%s", args, p.stdout.String(), p.stderr.String())
		}
	}, args...)
	return p
}

// waitStderr polls stderr until it contains substr and returns it, failing
// the test after d or when the process exits without writing it.
func (p *bgProc) waitStderr(substr string, d time.Duration) string {
	p.t.Helper()
	return p.waitOutput(&p.stderr, "stderr", substr, d)
}

// waitStdout is waitStderr for stdout.
func (p *bgProc) waitStdout(substr string, d time.Duration) string {
	p.t.Helper()
	return p.waitOutput(&p.stdout, "stdout", substr, d)
}

func (p *bgProc) waitOutput(b *syncBuffer, name, substr string, d time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := b.String()
		if strings.Contains(s, substr) {
			return s
		}
		select {
		case <-p.exited:
			if s := b.String(); strings.Contains(s, substr) {
				return s
			}
			p.t.Fatalf("sshtap exited (%d) without writing %q to %s; stderr:\n%s", p.code, substr, name, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q on sshtap's %s after %v:\n%s", substr, name, d, s)
		}
	}
}

// stop sends sig and returns the exit code, failing the test if the process
// does not exit within d.
func (p *bgProc) stop(sig os.Signal, d time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
	if !p.waitExit(d) {
		p.t.Fatalf("sshtap did not exit within %v of %v", d, sig)
	}
	return p.code
}

// wait waits for the process to exit, failing the test after d, and
// returns its output and exit code.
func (p *bgProc) wait(d time.Duration) result {
	p.t.Helper()
	if !p.waitExit(d) {
		p.t.Fatalf("sshtap %v still running after %v\nstdout:\n%s\nstderr:\n%s", p.cmd.Args[1:], d, p.stdout.String(), p.stderr.String())
	}
	return result{stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.code}
}

// runDetached runs the binary to completion with no controlling terminal
// (see startBG), bounded by d.
func runDetached(t *testing.T, d time.Duration, env []string, args ...string) result {
	t.Helper()
	return startBG(t, env, nil, args...).wait(d)
}

// echoServer listens on 127.0.0.1 and echoes every connection back,
// closing its write side at EOF. It stops at cleanup.
func echoServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr)
}

// freeTCPPort returns a 127.0.0.1 port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// echoThrough connects to addr, sends a payload, closes the write side and
// checks that the same bytes come back.
func echoThrough(t *testing.T, addr string, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading back through %s: %v (got %d bytes)", addr, err, len(got))
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing through %s: %v", addr, err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("through %s: got %d bytes back, want the %d sent", addr, len(got), len(payload))
	}
}

// knownHostsOf reads the known_hosts file of home ("" when missing).
func knownHostsOf(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, ".ssh", "known_hosts"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// isHostKeyLine reports whether line is the known_hosts line of one of
// d's host keys for d.Addr.
func isHostKeyLine(d *testpeer.SSHD, line string) bool {
	for _, hk := range d.HostKeys {
		if strings.TrimSpace(line) == hk.KnownHostsLine(d.Addr) {
			return true
		}
	}
	return false
}

// eventsOf parses an --events --json file.
func eventsOf(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ndjson(t, string(b))
}

// tcpProxy forwards connections from a 127.0.0.1 port to a target; the
// test can freeze it (the server's bytes stop reaching the client, nothing
// is closed: a hung server or network) or cut it (both sides closed: a
// server gone without a DISCONNECT). It stops at cleanup.
type tcpProxy struct {
	addr   string
	frozen chan struct{} // closed by freeze
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: l.Addr().String(), frozen: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(c, s, false) }()
			go func() { defer p.wg.Done(); p.pipe(s, c, true) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.cutAll()
		p.wg.Wait()
	})
	return p
}

// pipe copies src to dst; when freezable, data read after freeze is
// dropped and nothing more is written.
func (p *tcpProxy) pipe(src, dst net.Conn, freezable bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			frozen := false
			if freezable {
				select {
				case <-p.frozen:
					frozen = true
				default:
				}
			}
			if !frozen {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (p *tcpProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

// cutAll closes every proxied connection, both sides.
func (p *tcpProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
