package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
	"sshtap/agentproxy"
)

// serveWaitDelay bounds how long a session waits for the command's output
// after the command exited (a background process may keep it open) and for
// the command to die after it was killed.
const serveWaitDelay = 2 * time.Second

// serveSignals maps the signal names of "signal" and "exit-signal"
// requests (RFC 4254 §6.10) to signals and back.
var serveSignals = map[sshtap.Signal]syscall.Signal{
	sshtap.SIGABRT: syscall.SIGABRT,
	sshtap.SIGALRM: syscall.SIGALRM,
	sshtap.SIGFPE:  syscall.SIGFPE,
	sshtap.SIGHUP:  syscall.SIGHUP,
	sshtap.SIGILL:  syscall.SIGILL,
	sshtap.SIGINT:  syscall.SIGINT,
	sshtap.SIGKILL: syscall.SIGKILL,
	sshtap.SIGPIPE: syscall.SIGPIPE,
	sshtap.SIGQUIT: syscall.SIGQUIT,
	sshtap.SIGSEGV: syscall.SIGSEGV,
	sshtap.SIGTERM: syscall.SIGTERM,
	sshtap.SIGUSR1: syscall.SIGUSR1,
	sshtap.SIGUSR2: syscall.SIGUSR2,
}

func serveSignalName(sig syscall.Signal) (sshtap.Signal, bool) {
	for name, s := range serveSignals {
		if s == sig {
			return name, true
		}
	}
	return "", false
}

// session serves one session channel: a command or a shell run by /bin/sh
// as the current user (see the top of serve.go).
func (s *server) session(label string, ss *sshtap.ServerSession) {
	s.sessionStart()
	defer s.sessionEnd()
	note := func(format string, args ...any) { s.out.w.Note(label, fmt.Sprintf(format, args...)) }

	pty, hasPty := ss.Pty()
	var what string
	var args []string
	switch {
	case ss.Subsystem() == "sftp" && s.sftpRoot != "": // others are refused by AllowSessionRequest
		note("session: subsystem sftp (rooted at %s)", s.sftpRoot)
		start := time.Now()
		if err := serveSFTP(ss, s.sftpRoot); err != nil {
			note("session: sftp ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
			ss.Exit(1)
			return
		}
		note("session: sftp ended after %v", time.Since(start).Round(time.Millisecond))
		ss.Close()
		return
	case ss.Subsystem() != "":
		ss.Exit(1)
		return
	case ss.Shell():
		what = "shell /bin/sh"
	default:
		what = fmt.Sprintf("exec /bin/sh -c %q", ss.Command())
		args = []string{"-c", ss.Command()}
	}
	if hasPty {
		what += fmt.Sprintf(" with pty (TERM=%s, %dx%d)", pty.Term, pty.Cols, pty.Rows)
	}
	if _, ok := ss.X11Request(); ok {
		note("session: x11-req ignored (X11 forwarding is not served)")
	}
	note("session: %s", what)

	if ss.AgentForwardingRequested() {
		// Before the command starts: a short command would end the session
		// (and the client may hang up) before the listing is done.
		s.listAgent(note, ss)
	}

	cmd := exec.CommandContext(ss.Context(), "/bin/sh", args...)
	cmd.Env = s.sessionEnv(note, ss, pty, hasPty)
	if fi, err := os.Stat(s.home); err == nil && fi.IsDir() {
		cmd.Dir = s.home
	}
	cmd.WaitDelay = serveWaitDelay
	// The command leads its own process group (Setpgid or Setsid below):
	// killing the group also ends what it started in the background.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

	var waitIO func()    // after the command exited: wait for its output
	var stopInput func() // after Exit: wait for the input copier
	var resize func(sshtap.WindowChange)
	started := false
	if hasPty {
		master, slave, err := openPty()
		if err != nil {
			note("session: no pty (%v); running without one", err)
			fmt.Fprintf(ss.Stderr(), "sshtap serve: cannot allocate a pty (%v); running without one\r\n", err)
			hasPty = false
		} else {
			setPtySize(master, pty.Cols, pty.Rows, pty.WidthPx, pty.HeightPx)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			err = cmd.Start()
			slave.Close()
			if err != nil {
				master.Close()
				s.startFailed(note, ss, err)
				return
			}
			started = true
			outDone := make(chan struct{})
			go func() {
				defer close(outDone)
				io.Copy(ss, master) // ends with EIO once every holder of the slave is gone
			}()
			inDone := make(chan struct{})
			go func() {
				defer close(inDone)
				io.Copy(master, ss)
			}()
			waitIO = func() {
				select {
				case <-outDone:
				case <-time.After(serveWaitDelay):
				}
				master.Close()
				<-outDone
			}
			stopInput = func() { <-inDone }
			resize = func(wc sshtap.WindowChange) { setPtySize(master, wc.Cols, wc.Rows, wc.WidthPx, wc.HeightPx) }
		}
	}
	if !started {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Stdout, cmd.Stderr = ss, ss.Stderr()
		stdin, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			s.startFailed(note, ss, err)
			return
		}
		inDone := make(chan struct{})
		go func() {
			defer close(inDone)
			io.Copy(stdin, ss)
			stdin.Close() // EOF from the client: EOF to the command
		}()
		waitIO = func() {} // cmd.Wait waits for stdout and stderr (bounded by WaitDelay)
		stopInput = func() { <-inDone }
	}

	// Signals and window changes, until the command is gone.
	stop := make(chan struct{})
	var helpers sync.WaitGroup
	helpers.Go(func() {
		for {
			select {
			case <-stop:
				return
			case name := <-ss.Signals():
				if sig, ok := serveSignals[name]; ok {
					note("session: signal %s delivered", name)
					cmd.Process.Signal(sig)
				} else {
					note("session: unknown signal %q ignored", name)
				}
			case wc := <-ss.WindowChanges():
				if resize != nil {
					resize(wc)
				}
			}
		}
	})

	err := cmd.Wait()
	waitIO()
	close(stop)
	helpers.Wait()

	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && !errors.Is(err, exec.ErrWaitDelay) {
		note("session: wait: %v", err)
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		sig := ws.Signal()
		if name, ok := serveSignalName(sig); ok {
			note("session: command killed by signal %s", name)
			ss.ExitSignal(name, ws.CoreDump(), "")
		} else {
			note("session: command killed by signal %d", int(sig))
			ss.Exit(128 + int(sig))
		}
	default:
		note("session: command exited with status %d", ws.ExitStatus())
		ss.Exit(ws.ExitStatus())
	}
	stopInput() // Exit closed the channel: the input copier's Read has returned
}

// startFailed reports a command that could not be started.
func (s *server) startFailed(note func(string, ...any), ss *sshtap.ServerSession, err error) {
	note("session: cannot start /bin/sh: %v", err)
	fmt.Fprintf(ss.Stderr(), "sshtap serve: cannot start /bin/sh: %v\r\n", err)
	ss.Exit(127)
}

// sessionEnv is the command's environment: what sshd sets, plus the
// client's LANG and LC_* (the only env requests granted).
func (s *server) sessionEnv(note func(string, ...any), ss *sshtap.ServerSession, pty sshtap.PtyRequest, hasPty bool) []string {
	path := s.getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + s.home,
		"USER=" + s.username,
		"LOGNAME=" + s.username,
		"SHELL=/bin/sh",
	}
	c := ss.Conn()
	rh, rp, _ := net.SplitHostPort(c.RemoteAddr().String())
	lh, lp, _ := net.SplitHostPort(c.LocalAddr().String())
	env = append(env, "SSH_CLIENT="+rh+" "+rp+" "+lp, "SSH_CONNECTION="+rh+" "+rp+" "+lh+" "+lp)
	if hasPty && pty.Term != "" {
		env = append(env, "TERM="+pty.Term)
	}
	// Only LANG and LC_* were granted (AllowSessionRequest in handle).
	env = append(env, ss.Environ()...)
	return env
}

// listAgent lists the identities of the agent the client forwarded.
func (s *server) listAgent(note func(string, ...any), ss *sshtap.ServerSession) {
	ctx, cancel := context.WithTimeout(ss.Context(), 5*time.Second)
	defer cancel()
	ag, closer, err := agentproxy.ForwardedAgent(ctx, ss)
	if err != nil {
		note("agent: cannot open the forwarded agent: %v", err)
		return
	}
	unblock := context.AfterFunc(ctx, func() { closer.Close() }) // List has no context
	keys, err := ag.List()
	unblock()
	closer.Close()
	if err != nil {
		note("agent: listing the forwarded agent's keys: %v", err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agent: the client forwarded an agent with %d key(s)", len(keys))
	for _, k := range keys {
		pk, err := ssh.ParsePublicKey(k.Blob)
		if err != nil {
			fmt.Fprintf(&b, "; %s (unparsable)", k.Format)
			continue
		}
		fmt.Fprintf(&b, "; %s %s %s", pk.Type(), ssh.FingerprintSHA256(pk), k.Comment)
	}
	note("%s", b.String())
}
