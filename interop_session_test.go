package sshtap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// ioSessionDial connects to a peer and authenticates with key, subscribing
// to kinds before the handshake (nil sub when kinds is 0).
func ioSessionDial(t *testing.T, addr, user string, key *testpeer.Key, kinds Kind) (*Conn, *Subscription) {
	t.Helper()
	ctx := ioContext(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := ClientConn(nc, &Config{
		Addr:            addr,
		User:            user,
		Auth:            []AuthMethod{PublicKeys(key.Signer)},
		HostKeyCallback: insecure,
	})

	t.Cleanup(func() { c.Close() })
	var sub *Subscription
	if kinds != 0 {
		sub = c.SubscribeBuffer(ctx, kinds, 256)
	}
	if err := c.Handshake(ctx); err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	return c, sub
}

func ioSession(t *testing.T, c *Conn) *Session {
	t.Helper()
	s, err := c.NewSession(ioContext(t))
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ioCat sends data through cat on a new session of c and checks that it
// all comes back.
func ioCat(t *testing.T, c *Conn, data []byte) {
	t.Helper()
	s := ioSession(t, c)
	s.Stdin = bytes.NewReader(data)
	out, err := s.Output("cat")
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("cat: %d bytes back of %d, %v", len(out), len(data), err)
	}
}

// ioEchoServer starts a Server with tc whose sessions echo their input,
// for key. conns waits until the server is idle and returns the
// connections that were authenticated, in order.
func ioEchoServer(t *testing.T, key *testpeer.Key, tc TransportConfig) (addr string, conns func() []*Conn) {
	t.Helper()
	testKeys(t)
	var mu sync.Mutex
	var active []*Conn
	s := &Server{
		Config: &ServerConfig{
			HostKeys:          []ssh.Signer{testEd25519},
			PublicKeyCallback: acceptKey(key.PublicKey),
			SessionHandler:    func(ss *ServerSession) { io.Copy(ss, ss) },
			TransportConfig:   tc,
		},
		ConnState: func(c *Conn, st ConnState) {
			if st == StateActive {
				mu.Lock()
				active = append(active, c)
				mu.Unlock()
			}
		},
	}
	addr = testServer(t, s)
	return addr, func() []*Conn {
		waitServerIdle(t, s)
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(active)
	}
}

// ioSessionCore runs the checks every peer passes: stdout, stderr with an
// exit status, a signal death, stdin round trip, and a pty shell driven
// through its input.
func ioSessionCore(t *testing.T, c *Conn) {
	t.Run("stdout", func(t *testing.T) {
		out, err := ioSession(t, c).Output("echo hello; echo world")
		if err != nil || string(out) != "hello\nworld\n" {
			t.Fatalf("Output = %q, %v", out, err)
		}
	})
	t.Run("stderr-exit", func(t *testing.T) {
		s := ioSession(t, c)
		var out, serr bytes.Buffer
		s.Stdout, s.Stderr = &out, &serr
		err := s.Run("echo out; echo oops >&2; exit 3")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Status != 3 || ee.Signal != "" {
			t.Fatalf("Run = %v, want exit status 3", err)
		}
		if err.Error() != "sshtap: process exited with status 3" {
			t.Fatalf("Error() = %q", err.Error())
		}
		if out.String() != "out\n" || serr.String() != "oops\n" {
			t.Fatalf("stdout %q stderr %q", out.String(), serr.String())
		}
	})
	t.Run("signal-death", func(t *testing.T) {
		err := ioSession(t, c).Run("kill -TERM $$")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Signal != "TERM" {
			t.Fatalf("Run = %#v, want exit-signal TERM", err)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		ioCat(t, c, bytes.Repeat([]byte("sshtap session stdin\n"), 100000)) // ~2 MiB
	})
	t.Run("pty-shell", func(t *testing.T) {
		s := ioSession(t, c)
		if err := s.RequestPty("xterm", 40, 100, TerminalModes{ModeISPEED: 38400, ModeOSPEED: 38400}); err != nil {
			t.Fatalf("RequestPty: %v", err)
		}
		w, _ := s.StdinPipe()
		r, _ := s.StdoutPipe()
		if err := s.Shell(); err != nil {
			t.Fatalf("Shell: %v", err)
		}
		pr := newPtyReader(r)
		io.WriteString(w, "stty size; echo mark$((20+22))\n")
		if got := pr.until(t, "mark42"); !strings.Contains(got, "40 100") {
			t.Fatalf("stty size output %q, want 40 100", got)
		}
		if err := s.WindowChange(50, 132); err != nil {
			t.Fatal(err)
		}
		// sshd applies the new size to the pty when it handles the
		// window-change request; ask until stty reports it (each question
		// waits for its answer), within a deadline.
		deadline := time.Now().Add(15 * time.Second)
		for n := 0; ; n++ {
			mark := strconv.Itoa(1000 + n)
			io.WriteString(w, "stty size; echo mark$((1000+"+strconv.Itoa(n)+"))\n")
			got := pr.until(t, "mark"+mark)
			if strings.Contains(got, "50 132") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stty size after window-change %q, want 50 132", got)
			}
		}
		io.WriteString(w, "exit 7\n")
		pr.drain()
		err := s.Wait()
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Status != 7 {
			t.Fatalf("Wait = %v, want status 7", err)
		}
	})
}

// ptyReader accumulates a pty's output (echo, prompts, CR LF) in the
// background.
type ptyReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	pos  int
	more chan struct{}
	done chan struct{}
}

func newPtyReader(r io.Reader) *ptyReader {
	p := &ptyReader{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

// until waits for marker (print it computed, e.g. mark$((20+22)), so the
// echo of the command does not match) and returns the output since the
// last call up to it.
func (p *ptyReader) until(t *testing.T, marker string) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		p.mu.Lock()
		s := p.buf.String()[p.pos:]
		if i := strings.Index(s, marker); i >= 0 {
			p.pos += i + len(marker)
			p.mu.Unlock()
			return s[:i]
		}
		all := p.buf.String()
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.done:
			p.mu.Lock()
			found := strings.Contains(p.buf.String()[p.pos:], marker)
			all = p.buf.String()
			p.mu.Unlock()
			if !found {
				t.Fatalf("output ended without %q: %q", marker, all)
			}
		case <-deadline:
			t.Fatalf("no %q in pty output %q", marker, all)
		}
	}
}

func (p *ptyReader) drain() { <-p.done }

func TestInteropSessionSSHD(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{
		"AcceptEnv LANG",
		"Subsystem echo /bin/cat",
	}})
	c, sub := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), KindDebug|KindIgnore)

	// DEBUG after a publickey login: one per check of the matching
	// authorized_keys line (peers.md), with "key options".
	var debug []*DebugEvent
	collect(t, sub, 10*time.Second, func(ev Event) bool {
		if de, ok := ev.(*DebugEvent); ok {
			debug = append(debug, de)
		}
		return len(debug) > 0
	})
	if !strings.Contains(debug[0].Message, "key options") || debug[0].AlwaysDisplay {
		t.Errorf("DEBUG after publickey login: %+v", debug[0])
	}

	ioSessionCore(t, c)

	t.Run("env", func(t *testing.T) {
		s := ioSession(t, c)
		if err := s.Setenv("LANG", "C.sshtap"); err != nil {
			t.Fatalf("Setenv LANG: %v", err)
		}
		// Not in AcceptEnv: sshd refuses.
		var re *RequestRefusedError
		if err := s.Setenv("SSHTAP_NOPE", "x"); !errors.As(err, &re) || re.Request != "env" {
			t.Fatalf("Setenv not accepted = %v", err)
		}
		out, err := s.Output(`echo "$LANG/$SSHTAP_NOPE"`)
		if err != nil || string(out) != "C.sshtap/\n" {
			t.Fatalf("Output = %q, %v", out, err)
		}
	})
	t.Run("subsystem", func(t *testing.T) {
		s := ioSession(t, c)
		s.Stdin = strings.NewReader("via the echo subsystem")
		var out bytes.Buffer
		s.Stdout = &out
		if err := s.RequestSubsystem("echo"); err != nil {
			t.Fatalf("RequestSubsystem: %v", err)
		}
		if err := s.Wait(); err != nil || out.String() != "via the echo subsystem" {
			t.Fatalf("Wait = %v, out %q", err, out.String())
		}
		if err := ioSession(t, c).RequestSubsystem("nope"); err == nil {
			t.Fatal("unknown subsystem accepted")
		}
	})
	t.Run("ignore-no-echo-pty", func(t *testing.T) {
		s := ioSession(t, c)
		if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
			t.Fatal(err)
		}
		w, _ := s.StdinPipe()
		r, _ := s.StdoutPipe()
		if err := s.Start("stty -echo; echo ready; read x; read y; echo got:$x:$y"); err != nil {
			t.Fatal(err)
		}
		pr := newPtyReader(r)
		pr.until(t, "ready")
		nIgnore := 0
		for _, line := range []string{"a\n", "b\n"} {
			io.WriteString(w, line)
			// sshd sends one IGNORE each time it writes input into the
			// no-echo pty.
			collect(t, sub, 10*time.Second, func(ev Event) bool {
				_, ok := ev.(*IgnoreEvent)
				if ok {
					nIgnore++
				}
				return ok
			})
		}
		pr.until(t, "got:a:b")
		pr.drain()
		if err := s.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		// No further IGNOREs: exactly one per input line. sshd answers a
		// global request after it handled everything we sent before it, so
		// an IGNORE for our input would have arrived ahead of the reply.
		if _, _, err := c.SendGlobalRequest(ioContext(t), "sshtap-barrier@sshtap.invalid", true, nil); err != nil {
			t.Fatalf("global request: %v", err)
		}
		for _, ev := range ioDrain(sub) {
			if _, ok := ev.(*IgnoreEvent); ok {
				t.Fatalf("a third IGNORE: %v", ev)
			}
		}
		if nIgnore != 2 {
			t.Fatalf("%d IGNOREs", nIgnore)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := c.NewSession(ioContext(t))
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				out, err := s.Output("echo $((" + string(rune('0'+i)) + "*2))")
				if err != nil || strings.TrimSpace(string(out)) == "" {
					t.Errorf("session %d: %q, %v", i, out, err)
				}
			}()
		}
		wg.Wait()
	})
}

func TestInteropSessionDropbear(t *testing.T) {
	d := testpeer.StartDropbear(t, testpeer.DropbearOptions{})
	c, _ := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), 0)
	ioSessionCore(t, c)
}

// ioSessionServer runs our server with testSessionHandler and no client
// authentication on 127.0.0.1 until the test ends.
func ioSessionServer(t *testing.T) string {
	t.Helper()
	testKeys(t)
	return ioSessionServerWith(t, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true, SessionHandler: testSessionHandler})
}

// ioSessionServerWith is ioSessionServer with cfg.
func ioSessionServerWith(t *testing.T, cfg *ServerConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := ServerConn(nc, cfg)
				hctx, hcancel := context.WithTimeout(ctx, ioTimeout)
				err := c.Handshake(hctx)
				hcancel()
				if err == nil {
					select {
					case <-ctx.Done():
					case <-c.closing:
					}
				}
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestInteropSessionServerSSH drives our ServerSession with the OpenSSH
// client: exec with stdout, stderr and exit statuses, stdin, a signal
// death, and a pty shell (-tt) with its terminal type.
func TestInteropSessionServerSSH(t *testing.T) {
	addr := ioSessionServer(t)
	run := func(stdin string, flags []string, cmd ...string) *testpeer.ClientResult {
		t.Helper()
		return testpeer.SSHClient{Addr: addr, Flags: flags, Command: cmd, Stdin: strings.NewReader(stdin),
			Options: []string{"ConnectTimeout=10"}}.Run(t)
	}
	if r := run("", []string{"-T"}, "echo hello"); r.ExitCode != 0 || r.Stdout != "hello\n" {
		t.Fatalf("echo: %v", r)
	}
	if r := run("", []string{"-T"}, "exit 3"); r.ExitCode != 3 {
		t.Fatalf("exit 3: %v", r)
	}
	if r := run("", []string{"-T"}, "stderr z"); r.ExitCode != 1 || r.Stdout != "out:z\n" || !strings.Contains(r.Stderr, "err:z\n") {
		t.Fatalf("stderr: %v", r)
	}
	in := strings.Repeat("through ssh\n", 50000)
	if r := run(in, []string{"-T"}, "cat"); r.ExitCode != 0 || r.Stdout != in {
		t.Fatalf("cat: exit %d, %d bytes of %d", r.ExitCode, len(r.Stdout), len(in))
	}
	// OpenSSH's client reports a remote signal death as exit 255 with
	// "killed by signal" in its log... check the message it prints.
	if r := run("", []string{"-T"}, "killed"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "exit-signal") {
		t.Fatalf("killed: %v", r)
	}
	r := run("hi\nquit\n", []string{"-tt"})
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "pty ") || !strings.Contains(r.Stdout, "say hi") {
		t.Fatalf("pty shell: %v", r)
	}
}

// TestInteropSessionServerDBClient is the same with dropbear's client.
func TestInteropSessionServerDBClient(t *testing.T) {
	addr := ioSessionServer(t)
	run := func(stdin string, args []string, cmd ...string) *testpeer.ClientResult {
		t.Helper()
		return testpeer.DBClient{Addr: addr, Args: args, Command: cmd, Stdin: strings.NewReader(stdin)}.Run(t)
	}
	if r := run("", []string{"-T"}, "echo hello"); r.ExitCode != 0 || r.Stdout != "hello\n" {
		t.Fatalf("echo: %v", r)
	}
	if r := run("", []string{"-T"}, "exit 3"); r.ExitCode != 3 {
		t.Fatalf("exit 3: %v", r)
	}
	if r := run("", []string{"-T"}, "stderr z"); r.ExitCode != 1 || r.Stdout != "out:z\n" || !strings.Contains(r.Stderr, "err:z\n") {
		t.Fatalf("stderr: %v", r)
	}
	in := strings.Repeat("through dbclient\n", 50000)
	if r := run(in, []string{"-T"}, "cat"); r.ExitCode != 0 || r.Stdout != in {
		t.Fatalf("cat: exit %d, %d bytes of %d", r.ExitCode, len(r.Stdout), len(in))
	}
}
