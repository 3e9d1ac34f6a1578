package sshtap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// waitErr waits for a result that a Close must bring; the bound is only
// there so that a hang fails the test instead of the whole run.
func waitErr(t *testing.T, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still blocked after Session.Close", what)
		return nil
	}
}

// TestSessionCloseUnblocksRequest: a session request waiting for a reply
// that the server does not give returns ErrChannelClosed once the session
// is closed, and the Conn goes on serving other sessions.
func TestSessionCloseUnblocksRequest(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	asked := make(chan struct{}, 1)
	p := handshakePair(t, nil, &ServerConfig{
		SessionHandler: testSessionHandler,
		AllowSessionRequest: func(_ ConnMetadata, typ, _ string) bool {
			if typ == "env" {
				asked <- struct{}{}
				<-release
			}
			return true
		},
	})
	s := newTestSession(t, p.client)
	done := make(chan error, 1)
	go func() { done <- s.Setenv("LANG", "C") }()
	<-asked
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, "Setenv", done); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("Setenv after Close = %v, want ErrChannelClosed", err)
	}
	out, err := newTestSession(t, p.client).Output("echo still here")
	if err != nil || string(out) != "still here\n" {
		t.Fatalf("next session: %q, %v", out, err)
	}
}

// TestSessionCloseUnblocksOutput: Close ends an Output whose command runs
// on, with ErrChannelClosed, and CombinedOutput likewise.
func TestSessionCloseUnblocksOutput(t *testing.T) {
	// The command says on stderr that it runs, then never ends by itself.
	p := sessionPair(t, func(s *ServerSession) {
		io.WriteString(s, "partial\n")
		io.WriteString(s.Stderr(), "running\n")
		<-s.Context().Done()
	})
	s := newTestSession(t, p.client)
	pr, pw := io.Pipe()
	s.Stderr = pw
	type result struct {
		out []byte
		err error
	}
	done := make(chan error, 1)
	var res result
	go func() {
		res.out, res.err = s.Output("anything")
		done <- res.err
	}()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "running\n" {
		t.Fatalf("stderr: %q, %v", line, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	if err := waitErr(t, "Output", done); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("Output after Close = %q, %v; want ErrChannelClosed", res.out, err)
	}
	if err := s.Wait(); !errors.Is(err, errSessionWaited) {
		t.Fatalf("second Wait = %v", err)
	}
}

// TestInteropSessionCloseStoppedCommand: sshd keeps the channel of a
// command that stopped itself open for as long as the process lives, so
// only Close can end Output and Wait; the Conn keeps working.
func TestInteropSessionCloseStoppedCommand(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	c, _ := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), 0)
	stopped := func(t *testing.T, s *Session, run func() error) error {
		t.Helper()
		pr, pw := io.Pipe()
		s.Stderr = pw
		done := make(chan error, 1)
		go func() { done <- run() }()
		// The login shell's startup files may print to stderr too: look
		// for the marked line.
		lines := bufio.NewScanner(pr)
		pid, err := 0, error(nil)
		for pid == 0 && lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), "pid="); ok {
				if pid, err = strconv.Atoi(v); err != nil || pid <= 1 {
					t.Fatalf("pid line %q", lines.Text())
				}
			}
		}
		if pid == 0 {
			t.Fatalf("no pid line from the command: %v", lines.Err())
		}
		go io.Copy(io.Discard, pr) // whatever stderr says after it
		// sshd runs on this machine: the stopped shell goes with the test.
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		pr.Close()
		return waitErr(t, "the session", done)
	}
	// The shell reports its pid on stderr, then stops itself: sshd sees
	// neither an exit nor the end of its output.
	const cmd = "echo pid=$$ >&2; kill -STOP $$"
	t.Run("output", func(t *testing.T) {
		s := ioSession(t, c)
		if err := stopped(t, s, func() error { _, err := s.Output(cmd); return err }); !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("Output after Close = %v, want ErrChannelClosed", err)
		}
	})
	t.Run("wait", func(t *testing.T) {
		s := ioSession(t, c)
		if err := stopped(t, s, func() error { return s.Run(cmd) }); !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("Run after Close = %v, want ErrChannelClosed", err)
		}
	})
	out, err := ioSession(t, c).Output("echo alive")
	if err != nil || string(out) != "alive\n" {
		t.Fatalf("next session on the same Conn: %q, %v", out, err)
	}
}

// TestSessionOutputIntegrity: both output streams arrive intact through
// the Session's copy, which writes straight from the channel's buffers
// while the transport goroutine appends to them (chunks of every size,
// buffers wrapping around and growing, a writer that is sometimes slow).
func TestSessionOutputIntegrity(t *testing.T) {
	pattern := func(seed int64, n int) []byte {
		b := make([]byte, n)
		rand.New(rand.NewSource(seed)).Read(b)
		return b
	}
	wantOut, wantErr := pattern(1, 12<<20), pattern(2, 3<<20)
	p := sessionPair(t, func(s *ServerSession) {
		rng := rand.New(rand.NewSource(3))
		out, errOut := wantOut, wantErr
		for len(out) > 0 || len(errOut) > 0 {
			n := 1 + rng.Intn(100<<10)
			if len(out) > 0 && (len(errOut) == 0 || rng.Intn(4) > 0) {
				n = min(n, len(out))
				s.Write(out[:n])
				out = out[n:]
			} else {
				n = min(n, len(errOut))
				s.Stderr().Write(errOut[:n])
				errOut = errOut[n:]
			}
		}
		s.Exit(0)
	})
	s := newTestSession(t, p.client)
	var out, errOut bytes.Buffer
	slow := 0
	s.Stdout = writerFunc(func(b []byte) (int, error) {
		if slow++; slow%64 == 0 {
			runtime.Gosched() // let the transport goroutine fill the buffer meanwhile
		}
		return out.Write(b)
	})
	s.Stderr = &errOut
	if err := s.Run("pattern"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), wantOut) {
		t.Errorf("stdout: %d bytes, differ from the %d sent", out.Len(), len(wantOut))
	}
	if !bytes.Equal(errOut.Bytes(), wantErr) {
		t.Errorf("stderr: %d bytes, differ from the %d sent", errOut.Len(), len(wantErr))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
