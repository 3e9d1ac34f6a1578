package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"sshtap"
	"sshtap/agentproxy"
	"sshtap/internal/eventfmt"
	"sshtap/internal/sshconfig"
)

// session runs the command, or an interactive shell, and returns its exit
// status as an *exitStatus (nil for 0).
func (c *client) session(ctx context.Context) error {
	s := c.s
	sess, err := c.conn.NewSession(ctx)
	if err != nil {
		return fmt.Errorf("opening a session: %w", describeConnError(err))
	}
	defer sess.Close()

	if s.forwardAgent && c.agent != nil {
		if err := agentproxy.EnableForwarding(sess); err != nil {
			c.note(fmt.Sprintf("warning: agent forwarding refused: %v", err))
		}
	}
	if s.forwardX11 {
		if err := c.startX11(ctx, sess); err != nil {
			c.note(fmt.Sprintf("warning: X11 forwarding: %v", err))
		}
	}

	// A pty as ssh decides: asked for with -t, or no command and stdin is
	// a terminal; -tt forces it without a local terminal; -T never.
	stdinFile, _ := c.app.stdin.(*os.File)
	stdinTTY := stdinFile != nil && term.IsTerminal(int(stdinFile.Fd()))
	wantPty := false
	switch s.requestTTY {
	case "force":
		wantPty = true
	case "yes":
		wantPty = stdinTTY
		if !stdinTTY && !s.quiet {
			c.note("warning: pseudo-terminal will not be allocated because stdin is not a terminal")
		}
	case "auto":
		wantPty = s.command == "" && stdinTTY
	}
	rt := &rawTerm{out: c.out, sess: sess}
	var esc *escapeFilter
	if wantPty {
		w, h := 80, 24
		if stdinTTY {
			if tw, th, err := term.GetSize(int(stdinFile.Fd())); err == nil {
				w, h = tw, th
			}
		}
		termName := c.app.getenv("TERM")
		if termName == "" {
			termName = "xterm"
		}
		modes := sshtap.TerminalModes{sshtap.ModeISPEED: 38400, sshtap.ModeOSPEED: 38400}
		if err := sess.RequestPty(termName, h, w, modes); err != nil {
			return fmt.Errorf("pty request failed: %w", err)
		}
		if stdinTTY {
			rt.tty = stdinFile
			rt.enter()
			defer rt.finish()
			stop := c.watchWindow(sess, stdinFile)
			defer stop()
		}
		if s.escapeChar != noEscape {
			// ssh(1): escapes work "when a pseudo-terminal has been
			// requested".
			esc = newEscapeFilter(byte(s.escapeChar), s.escapeCmdLine)
		}
	}
	// SendEnv then SetEnv, as ssh sends them; servers may refuse any.
	for _, kv := range c.envToSend() {
		sess.Setenv(kv[0], kv[1])
	}

	stdin, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	sess.Stdout = c.app.stdout
	sess.Stderr = c.app.stderr
	if s.command == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(s.command)
	}
	if err != nil {
		return fmt.Errorf("starting the remote command: %w", describeConnError(err))
	}
	// stdin is copied on its own goroutine, which may stay blocked reading
	// a terminal after the command ends; the process exits anyway.
	escDisconnect := make(chan struct{})
	go func() {
		if esc != nil {
			if c.copyEscaped(ctx, stdin, c.app.stdin, esc, rt) {
				close(escDisconnect)
				return
			}
		} else {
			// Large reads (a file or a pipe with data waiting) go out as
			// several packets in one write; struct{ io.Reader } hides
			// os.File's WriterTo, which would copy 32 KiB at a time.
			io.CopyBuffer(stdin, struct{ io.Reader }{c.app.stdin}, make([]byte, 256<<10))
		}
		stdin.Close()
	}()
	waitErr := make(chan error, 1)
	go func() { waitErr <- sess.Wait() }()
	select {
	case err = <-waitErr:
	case <-escDisconnect:
		// ~. : as ssh, the connection ends and sshtap exits 255.
		c.conn.Disconnect(sshtap.DisconnectByApplication, "disconnected by user")
		<-waitErr
		return fmt.Errorf("connection to %s closed (~.)", c.s.host)
	case <-ctx.Done():
		c.conn.Disconnect(sshtap.DisconnectByApplication, "interrupted")
		<-waitErr
		return errors.New("interrupted")
	}
	return c.exitResult(err)
}

// exitResult maps the session's end to sshtap's exit status.
func (c *client) exitResult(err error) error {
	if err == nil {
		return nil
	}
	var ee *sshtap.ExitError
	if errors.As(err, &ee) {
		if ee.Signal != "" {
			// ssh exits 255 when the command was killed by a signal; we
			// do too, and say which.
			msg := "remote command killed by signal " + eventfmt.Clean(ee.Signal)
			if ee.CoreDumped {
				msg += " (core dumped)"
			}
			return errors.New(msg)
		}
		return &exitStatus{code: ee.Status & 0xff}
	}
	var me *sshtap.ExitMissingError
	if errors.As(err, &me) {
		if cerr := c.conn.Err(); cerr != nil {
			return describeConnError(cerr)
		}
		return errors.New("the remote command ended without an exit status")
	}
	return describeConnError(err)
}

// watchWindow forwards terminal size changes (SIGWINCH) to the session.
func (c *client) watchWindow(sess *sshtap.Session, tty *os.File) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				if w, h, err := term.GetSize(int(tty.Fd())); err == nil {
					sess.WindowChange(h, w)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// envToSend lists the local variables whose names match a SendEnv
// pattern, then the SetEnv pairs.
func (c *client) envToSend() [][2]string {
	var out [][2]string
	if len(c.s.sendEnv) > 0 && c.app.environ != nil {
		for _, kv := range c.app.environ() {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				continue
			}
			for _, p := range c.s.sendEnv {
				if sshconfig.MatchPattern(name, p) {
					out = append(out, [2]string{name, value})
					break
				}
			}
		}
	}
	return append(out, c.s.setEnv...)
}
