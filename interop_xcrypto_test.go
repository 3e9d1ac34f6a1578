package sshtap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// x/crypto/ssh's own client API over an sshtap Conn against real sshd:
// exec with stdin, stdout, stderr and the exit status, a pty, local and
// remote port forwarding, while the Conn's events keep flowing.
func TestInteropXCryptoClient(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	c, sub := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), KindKex)
	ctx := ioContext(t)
	client, err := NewSSHClient(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if client.User() != d.User || !strings.HasPrefix(string(client.ServerVersion()), "SSH-2.0-OpenSSH") {
		t.Errorf("client metadata: user %q, server version %q", client.User(), client.ServerVersion())
	}

	t.Run("exec", func(t *testing.T) {
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out, serr bytes.Buffer
		s.Stdin, s.Stdout, s.Stderr = strings.NewReader("from stdin"), &out, &serr
		err = s.Run("cat; echo; echo oops >&2; exit 3")
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
			t.Fatalf("Run = %v, want *ssh.ExitError with status 3", err)
		}
		if out.String() != "from stdin\n" || serr.String() != "oops\n" {
			t.Fatalf("stdout %q stderr %q", out.String(), serr.String())
		}
	})
	t.Run("signal-death", func(t *testing.T) {
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.Run("kill -TERM $$")
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.Signal() != "TERM" {
			t.Fatalf("Run = %v, want exit-signal TERM", err)
		}
	})
	t.Run("pty", func(t *testing.T) {
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.RequestPty("xterm", 40, 100, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
			t.Fatal(err)
		}
		out, err := s.Output("tty; stty size")
		if err != nil || !strings.HasPrefix(string(out), "/dev/pts/") || !strings.Contains(string(out), "40 100") {
			t.Fatalf("Output = %q, %v", out, err)
		}
	})
	t.Run("direct-tcpip", func(t *testing.T) {
		ln := echoListener(t)
		nc, err := client.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		echoCheck(t, nc, "through sshd and back")
	})
	t.Run("remote-forward", func(t *testing.T) {
		ln, err := client.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			io.Copy(nc, nc)
		}()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		echoCheck(t, nc, "to sshd's listener and back")
	})
	t.Run("slow-accept", func(t *testing.T) {
		// A forwarded connection handed to the *ssh.Client waits for its
		// application's Accept as long as it takes (x/crypto has no open
		// timeout), even with a short ChannelOpenTimeout on the Conn.
		nc, err := net.Dial("tcp", d.Addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Addr: d.Addr, User: d.User, Auth: []AuthMethod{PublicKeys(d.ClientKey().Signer)}, HostKeyCallback: insecure}
		cfg.ChannelOpenTimeout = 100 * time.Millisecond
		c2 := ClientConn(nc, cfg)
		defer c2.Close()
		client2, err := NewSSHClient(ctx, c2)
		if err != nil {
			t.Fatal(err)
		}
		defer client2.Close()
		ln, err := client2.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		<-time.After(300 * time.Millisecond) // what is tested: the application is slow
		fwd, err := ln.Accept()
		if err != nil {
			t.Fatalf("Accept after 300 ms with a 100 ms ChannelOpenTimeout: %v", err)
		}
		defer fwd.Close()
		go io.Copy(fwd, fwd)
		echoCheck(t, conn, "late but served")
	})
	t.Run("events", func(t *testing.T) {
		if err := c.Rekey(ctx); err != nil {
			t.Fatal(err)
		}
		evs := collect(t, sub, 10*time.Second, func(e Event) bool { k, ok := e.(*KexEvent); return ok && !k.Initial })
		if len(evs) == 0 {
			t.Fatal("no rekey event")
		}
		// The *ssh.Client still works after the rekey.
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if out, err := s.Output("echo after"); err != nil || string(out) != "after\n" {
			t.Fatalf("Output after rekey = %q, %v", out, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// sshd refuses unknown channel types with "open failed".
		_, _, err := client.OpenChannel("no-such-type@sshtap", nil)
		var oe *ssh.OpenChannelError
		if !errors.As(err, &oe) || oe.Reason != ssh.ConnectionFailed || oe.Message != "open failed" {
			t.Fatalf("OpenChannel = %v, want *ssh.OpenChannelError ConnectionFailed", err)
		}
	})
	client.Close()
	if err := c.Wait(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the Conn after client.Close: %v", err)
	}
}

// echoListener serves an echo on a loopback listener until the test ends.
func echoListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				io.Copy(nc, nc)
			}()
		}
	}()
	return ln
}

func echoCheck(t *testing.T, nc net.Conn, msg string) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != msg {
		t.Fatalf("echo: %q, %v", got, err)
	}
}
