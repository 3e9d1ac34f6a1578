package sshtap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSessionHandler is a tiny command interpreter for in-process session
// tests.
func testSessionHandler(s *ServerSession) {
	if sub := s.Subsystem(); sub != "" {
		if sub != "echo" {
			s.Exit(127)
			return
		}
		io.Copy(s, s)
		s.Exit(0)
		return
	}
	cmd := s.Command()
	if s.Shell() {
		cmd = "shell"
	}
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "echo":
		fmt.Fprintln(s, arg)
	case "exit":
		n, _ := strconv.Atoi(arg)
		s.Exit(n)
	case "cat":
		io.Copy(s, s)
	case "stderr":
		fmt.Fprintln(s, "out:"+arg)
		fmt.Fprintln(s.Stderr(), "err:"+arg)
		s.Exit(1)
	case "env":
		for _, e := range s.Environ() {
			fmt.Fprintln(s, e)
		}
	case "signal":
		fmt.Fprintln(s, "ready")
		select {
		case sig := <-s.Signals():
			s.ExitSignal(sig, true, "got "+string(sig))
		case <-s.Context().Done():
		}
	case "killed":
		s.ExitSignal(SIGKILL, false, "")
	case "nostatus":
		fmt.Fprintln(s, "bye")
		s.closeNoStatus()
	case "shell":
		// A line-oriented shell: "size" prints the pty, "winch" waits for
		// a window change, "quit" ends.
		pty, ok := s.Pty()
		if !ok {
			fmt.Fprintln(s, "no pty")
			s.Exit(2)
			return
		}
		fmt.Fprintf(s, "pty %s %dx%d echo=%d ispeed=%d\n", pty.Term, pty.Cols, pty.Rows, pty.Modes[ModeECHO], pty.Modes[ModeISPEED])
		sc := bufio.NewScanner(s)
		for sc.Scan() {
			switch sc.Text() {
			case "winch":
				select {
				case wc := <-s.WindowChanges():
					fmt.Fprintf(s, "winch %dx%d\n", wc.Cols, wc.Rows)
				case <-time.After(10 * time.Second):
					fmt.Fprintln(s, "no winch")
				}
			case "quit":
				s.Exit(0)
				return
			default:
				fmt.Fprintln(s, "say "+sc.Text())
			}
		}
	case "hold":
		<-s.Context().Done()
	default:
		fmt.Fprintln(s.Stderr(), "unknown command "+cmd)
		s.Exit(127)
	}
}

// sessionPair is a connected pair whose server serves testSessionHandler
// (or h).
func sessionPair(t *testing.T, h func(*ServerSession)) pair {
	t.Helper()
	if h == nil {
		h = testSessionHandler
	}
	return handshakePair(t, nil, &ServerConfig{SessionHandler: h})
}

func newTestSession(t *testing.T, c *Conn) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSessionRunStatus(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Run("echo hello"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out.String() != "hello\n" {
		t.Fatalf("stdout %q", out.String())
	}

	s = newTestSession(t, p.client)
	err := s.Run("exit 3")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 3 || ee.Signal != "" {
		t.Fatalf("Run(exit 3) = %v, want ExitError status 3", err)
	}
	if got, want := err.Error(), "sshtap: process exited with status 3"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if err := s.Wait(); err == nil {
		t.Fatal("second Wait succeeded")
	}
}

func TestSessionOutput(t *testing.T) {
	p := sessionPair(t, nil)
	out, err := newTestSession(t, p.client).Output("echo out")
	if err != nil || string(out) != "out\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	out, err = newTestSession(t, p.client).CombinedOutput("stderr x")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 1 {
		t.Fatalf("CombinedOutput err = %v", err)
	}
	if string(out) != "out:x\nerr:x\n" && string(out) != "err:x\nout:x\n" {
		t.Fatalf("CombinedOutput = %q", out)
	}
}

func TestSessionStderr(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	var out, serr bytes.Buffer
	s.Stdout, s.Stderr = &out, &serr
	err := s.Run("stderr y")
	if ee := (*ExitError)(nil); !errors.As(err, &ee) || ee.Status != 1 {
		t.Fatalf("Run = %v", err)
	}
	if out.String() != "out:y\n" || serr.String() != "err:y\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), serr.String())
	}
}

func TestSessionStdinRoundTrip(t *testing.T) {
	p := sessionPair(t, nil)
	// Bigger than the default windows so flow control takes part.
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	s := newTestSession(t, p.client)
	s.Stdin = bytes.NewReader(in)
	out, err := s.Output("cat")
	if err != nil {
		t.Fatalf("cat: %v", err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("cat returned %d bytes, want %d equal", len(out), len(in))
	}
}

func TestSessionPipes(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	w, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StdinPipe(); err == nil {
		t.Fatal("second StdinPipe succeeded")
	}
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StdoutPipe(); err == nil {
		t.Fatal("StdoutPipe after Start succeeded")
	}
	br := bufio.NewReader(r)
	for i := range 3 {
		line := fmt.Sprintf("line %d\n", i)
		io.WriteString(w, line)
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("read %q, %v; want %q", got, err, line)
		}
	}
	w.Close()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after EOF: %q, %v", rest, err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestSessionSignal(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	r, _ := s.StdoutPipe()
	if err := s.Start("signal"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(r)
	if l, err := br.ReadString('\n'); l != "ready\n" {
		t.Fatalf("read %q, %v", l, err)
	}
	if err := s.Signal(SIGTERM); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, br)
	err := s.Wait()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Signal != "TERM" || !ee.CoreDumped || ee.Message != "got TERM" || ee.Status != -1 {
		t.Fatalf("Wait = %#v", err)
	}
	if got, want := err.Error(), "sshtap: process killed by signal TERM (core dumped): got TERM"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}

	err = newTestSession(t, p.client).Run("killed")
	if !errors.As(err, &ee) || ee.Signal != "KILL" || err.Error() != "sshtap: process killed by signal KILL" {
		t.Fatalf("Run(killed) = %v", err)
	}
}

func TestSessionPtyWindowChange(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	modes := TerminalModes{ModeECHO: 0, ModeISPEED: 38400, ModeOSPEED: 38400, 200: 1 /* out of range: not sent */}
	if err := s.RequestPty("xterm-256color", 40, 120, modes); err != nil {
		t.Fatalf("RequestPty: %v", err)
	}
	if err := s.RequestPty("vt100", 24, 80, nil); err == nil {
		t.Fatal("second pty-req accepted")
	} else if re := (*RequestRefusedError)(nil); !errors.As(err, &re) || re.Request != "pty-req" {
		t.Fatalf("second pty-req: %v", err)
	}
	w, _ := s.StdinPipe()
	r, _ := s.StdoutPipe()
	if err := s.Shell(); err != nil {
		t.Fatalf("Shell: %v", err)
	}
	if err := s.Start("echo x"); !errors.Is(err, errSessionStarted) {
		t.Fatalf("Start after Shell: %v", err)
	}
	br := bufio.NewReader(r)
	expect := func(want string) {
		t.Helper()
		l, err := br.ReadString('\n')
		if l != want {
			t.Fatalf("read %q, %v; want %q", l, err, want)
		}
	}
	expect("pty xterm-256color 120x40 echo=0 ispeed=38400\n")
	io.WriteString(w, "hi\n")
	expect("say hi\n")
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "winch\n")
	expect("winch 132x50\n")
	io.WriteString(w, "quit\n")
	io.Copy(io.Discard, br)
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestSessionLateRequestsRefused(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	w, _ := s.StdinPipe()
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	// A second exec directly on the channel: only one per channel.
	if ok, err := s.ch.SendRequest(context.Background(), "exec", true, []byte{0, 0, 0, 1, 'x'}); ok || err != nil {
		t.Fatalf("second exec: %v, %v", ok, err)
	}
	for _, f := range []func() error{
		func() error { return s.Setenv("A", "b") },
		func() error { return s.RequestPty("vt100", 1, 1, nil) },
	} {
		if err := f(); err == nil {
			t.Fatal("request after exec accepted")
		}
	}
	w.Close()
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestSessionEnv(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
		t.Fatal(err)
	}
	if err := s.Setenv("FOO", "a b=c"); err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("env")
	if err != nil || string(out) != "LANG=C.UTF-8\nFOO=a b=c\n" {
		t.Fatalf("env: %q, %v", out, err)
	}
}

func TestSessionSubsystem(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	s.Stdin = strings.NewReader("through the subsystem")
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.RequestSubsystem("echo"); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil || out.String() != "through the subsystem" {
		t.Fatalf("Wait = %v, out %q", err, out.String())
	}
	s = newTestSession(t, p.client)
	s.RequestSubsystem("nope")
	if err := s.Wait(); err == nil || err.(*ExitError).Status != 127 {
		t.Fatalf("unknown subsystem: %v", err)
	}
}

func TestSessionExitMissing(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	out, err := s.Output("nostatus")
	var em *ExitMissingError
	if !errors.As(err, &em) || string(out) != "bye\n" {
		t.Fatalf("Output = %q, %v; want ExitMissingError", out, err)
	}
}

func TestSessionWaitAfterClose(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	if err := s.Start("hold"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		// Our Close came before any exit status (the command holds
		// until the server sees it).
		if !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("Wait after Close = %v, want ErrChannelClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait after Close hangs")
	}
}

func TestSessionWaitNotStarted(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	if err := s.Wait(); !errors.Is(err, errSessionNotStarted) {
		t.Fatalf("Wait = %v", err)
	}
}

func TestSessionConcurrent(t *testing.T) {
	p := handshakePair(t, nil, &ServerConfig{SessionHandler: testSessionHandler, MaxSessions: 20})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := p.client.NewSession(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			s.Stdin = strings.NewReader(strings.Repeat(strconv.Itoa(i), 100000))
			out, err := s.Output("cat")
			if err != nil || len(out) != 100000*len(strconv.Itoa(i)) {
				errs <- fmt.Errorf("session %d: %d bytes, %v", i, len(out), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSessionRejectedWithoutHandler(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.client.NewSession(ctx)
	var oe *OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != OpenProhibited {
		t.Fatalf("NewSession without SessionHandler = %v, want OpenProhibited", err)
	}
}

func TestSessionForwardingRequests(t *testing.T) {
	got := make(chan string, 1)
	p := sessionPair(t, func(s *ServerSession) {
		x, ok := s.X11Request()
		got <- fmt.Sprintf("%v %v %+v", s.AgentForwardingRequested(), ok, x)
		s.Exit(0)
	})
	if _, ok := p.client.x11Requested(); ok || p.client.agentRequested() {
		t.Fatal("requested before any request")
	}
	s := newTestSession(t, p.client)
	if err := s.RequestAgentForwarding(); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestX11(true, "MIT-MAGIC-COOKIE-1", "00ff", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Run("x"); err != nil {
		t.Fatal(err)
	}
	want := "true true {SingleConnection:true AuthProtocol:MIT-MAGIC-COOKIE-1 AuthCookie:00ff Screen:0}"
	if g := <-got; g != want {
		t.Fatalf("server saw %q, want %q", g, want)
	}
	if x, ok := p.client.x11Requested(); !ok || x.AuthCookie != "00ff" || !p.client.agentRequested() {
		t.Fatal("client did not note the requests")
	}
}

func TestTerminalModesEncoding(t *testing.T) {
	m := TerminalModes{ModeOSPEED: 9600, ModeECHO: 1, ModeVINTR: 3, 0: 5, 170: 1}
	enc := m.encode()
	want := []byte{1, 0, 0, 0, 3, 53, 0, 0, 0, 1, 129, 0, 0, 0x25, 0x80, 0}
	if !bytes.Equal(enc, want) {
		t.Fatalf("encode = %v, want %v", enc, want)
	}
	back, err := parseModes(enc)
	if err != nil || len(back) != 3 || back[ModeOSPEED] != 9600 || back[ModeECHO] != 1 || back[ModeVINTR] != 3 {
		t.Fatalf("parse = %v, %v", back, err)
	}
	if enc := TerminalModes(nil).encode(); !bytes.Equal(enc, []byte{0}) {
		t.Fatalf("nil modes = %v", enc)
	}
}

// TestSessionExitOrders: exit-status before the EOF and data after it,
// eow@openssh.com in between (the channel stays open), then EOF and CLOSE.
func TestSessionExitOrders(t *testing.T) {
	p := sessionPair(t, func(s *ServerSession) {
		ch := s.Channel()
		io.WriteString(s, "a")
		st := []byte{0, 0, 0, 5}
		if _, err := ch.SendRequest(context.Background(), "exit-status", false, st); err != nil {
			panic(err)
		}
		if _, err := ch.SendRequest(context.Background(), "eow@openssh.com", false, nil); err != nil {
			panic(err)
		}
		io.WriteString(s, "b")
		// A second status is ignored: the first one counts.
		ch.SendRequest(context.Background(), "exit-status", false, []byte{0, 0, 0, 9})
		io.WriteString(s.Stderr(), "c")
		s.closeNoStatus()
	})
	s := newTestSession(t, p.client)
	var out, serr bytes.Buffer
	s.Stdout, s.Stderr = &out, &serr
	err := s.Run("x")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 5 {
		t.Fatalf("Run = %v, want status 5", err)
	}
	if out.String() != "ab" || serr.String() != "c" {
		t.Fatalf("stdout %q stderr %q", out.String(), serr.String())
	}
}

func TestServerSessionOpenRefused(t *testing.T) {
	errs := make(chan error, 2)
	p := sessionPair(t, func(s *ServerSession) {
		ctx := s.Context()
		_, err := s.OpenAgentChannel(ctx)
		errs <- err
		_, err = s.OpenX11Channel(ctx, "127.0.0.1", 6010)
		errs <- err
	})
	if err := newTestSession(t, p.client).Run("x"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "did not request") {
			t.Fatalf("open without a request: %v", err)
		}
	}
}

// TestSessionWindowChangeLatestWins: a handler that does not keep up sees
// at most the buffer's worth of changes, and the latest one last.
func TestSessionWindowChangeLatestWins(t *testing.T) {
	got := make(chan []WindowChange, 1)
	p := sessionPair(t, func(s *ServerSession) {
		io.Copy(io.Discard, s) // the client's EOF follows its window changes (see below)
		var wcs []WindowChange
		for {
			select {
			case wc := <-s.WindowChanges():
				wcs = append(wcs, wc)
				continue
			default:
			}
			break
		}
		got <- wcs
	})
	s := newTestSession(t, p.client)
	if err := s.RequestPty("vt100", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	w, _ := s.StdinPipe()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		if err := s.WindowChange(i, 2*i); err != nil {
			t.Fatal(err)
		}
	}
	// Window changes are channel requests, handed to the session on the
	// channel's request goroutine, not in step with the data: the EOF can
	// overtake the last of them. A request with a reply, answered once the
	// session took every request before it, keeps them ahead of the EOF.
	if _, err := s.ch.SendRequest(tctx(t), "barrier@sshtap.invalid", true, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	wcs := <-got
	if len(wcs) == 0 || len(wcs) > windowChangeBuffer {
		t.Fatalf("%d window changes delivered", len(wcs))
	}
	if last := wcs[len(wcs)-1]; last.Rows != 50 || last.Cols != 100 {
		t.Fatalf("last window change %+v, want 100x50", last)
	}
}

// TestSessionConnEnds: Wait reports the Conn's failure, not a missing exit
// status, when the connection dies under a running command.
func TestSessionConnEnds(t *testing.T) {
	p := sessionPair(t, nil)
	s := newTestSession(t, p.client)
	if err := s.Start("hold"); err != nil {
		t.Fatal(err)
	}
	p.server.Close()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		var ee *ExitError
		var em *ExitMissingError
		if err == nil || errors.As(err, &ee) || errors.As(err, &em) {
			t.Fatalf("Wait = %v, want the Conn's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait hangs after the Conn ended")
	}
}

// ServerSession is an io.ReadWriteCloser whose Close ends the session as
// Exit(0): a subsystem server handed the session closes it when done.
func TestServerSessionClose(t *testing.T) {
	var _ io.ReadWriteCloser = (*ServerSession)(nil)
	p := sessionPair(t, func(s *ServerSession) {
		var rwc io.ReadWriteCloser = s
		io.Copy(rwc, io.LimitReader(rwc, 5))
		rwc.Close()
		if err := s.Exit(9); err != nil { // too late: Close ended it
			t.Errorf("Exit after Close: %v", err)
		}
	})
	s := newTestSession(t, p.client)
	s.Stdin = strings.NewReader("hello, and more")
	out, err := s.Output("anything")
	if err != nil || string(out) != "hello" {
		t.Fatalf("Output = %q, %v; want hello and exit status 0", out, err)
	}
}
