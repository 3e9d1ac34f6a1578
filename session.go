package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"sshtap/internal/wire"
)

// Session is a client's "session" channel (RFC 4254 §6): a remote command,
// shell or subsystem with its standard streams. Make one with
// Conn.NewSession; a Session runs one command.
//
// Set Stdin, Stdout and Stderr (or use the pipe methods) before Start,
// Shell or RequestSubsystem. A nil Stdin sends EOF at once; nil Stdout and
// Stderr discard what arrives.
type Session struct {
	// Stdin is copied to the remote standard input; EOF is sent when it
	// returns io.EOF.
	Stdin io.Reader
	// Stdout and Stderr receive the remote standard output and error
	// (channel data and extended data type 1). They may be the same
	// writer; writes to it are then serialized.
	Stdout io.Writer
	Stderr io.Writer

	conn *Conn
	ch   *Channel

	mu       sync.Mutex
	started  bool
	waited   bool
	exit     *ExitError // exit-status or exit-signal received
	stdinP   bool
	stdoutP  bool
	stderrP  bool
	copies   []func() error
	copyErrs chan error
}

// TerminalModes are the terminal modes of a pty-req (RFC 4254 §8): opcode
// to argument. Opcodes are 1..159; see the Mode constants.
type TerminalModes map[uint8]uint32

// Terminal mode opcodes (RFC 4254 §8, RFC 8160).
const (
	ModeVINTR   uint8 = wire.TermVINTR
	ModeVQUIT   uint8 = wire.TermVQUIT
	ModeVERASE  uint8 = wire.TermVERASE
	ModeVKILL   uint8 = wire.TermVKILL
	ModeVEOF    uint8 = wire.TermVEOF
	ModeVSUSP   uint8 = wire.TermVSUSP
	ModeICRNL   uint8 = wire.TermICRNL
	ModeIXON    uint8 = wire.TermIXON
	ModeIUTF8   uint8 = wire.TermIUTF8
	ModeISIG    uint8 = wire.TermISIG
	ModeICANON  uint8 = wire.TermICANON
	ModeECHO    uint8 = wire.TermECHO
	ModeECHOE   uint8 = wire.TermECHOE
	ModeECHOK   uint8 = wire.TermECHOK
	ModeECHONL  uint8 = wire.TermECHONL
	ModeIEXTEN  uint8 = wire.TermIEXTEN
	ModeOPOST   uint8 = wire.TermOPOST
	ModeONLCR   uint8 = wire.TermONLCR
	ModeCS8     uint8 = wire.TermCS8
	ModeISPEED  uint8 = wire.TTYOpISpeed
	ModeOSPEED  uint8 = wire.TTYOpOSpeed
	ModeTTYEND  uint8 = wire.TTYOpEnd // ends the encoding; never a map key
	maxModeCode uint8 = 159
)

// encodeModes encodes modes in opcode order (deterministic), skipping
// opcodes outside 1..159.
func (m TerminalModes) encode() []byte {
	ops := make([]uint8, 0, len(m))
	for op := range m {
		if op >= 1 && op <= maxModeCode {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	list := make([]wire.TerminalMode, len(ops))
	for i, op := range ops {
		list[i] = wire.TerminalMode{Opcode: op, Value: m[op]}
	}
	return wire.AppendTerminalModes(nil, list)
}

// parseModes decodes encoded terminal modes; nil when none are set.
func parseModes(b []byte) (TerminalModes, error) {
	list, err := wire.ParseTerminalModes(b)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	m := make(TerminalModes, len(list))
	for _, tm := range list {
		m[tm.Opcode] = tm.Value
	}
	return m, nil
}

// Signal is a signal name as sent in "signal" and "exit-signal" requests:
// without the "SIG" prefix (RFC 4254 §6.9, §6.10).
type Signal string

// Signals of RFC 4254 §6.10.
const (
	SIGABRT Signal = "ABRT"
	SIGALRM Signal = "ALRM"
	SIGFPE  Signal = "FPE"
	SIGHUP  Signal = "HUP"
	SIGILL  Signal = "ILL"
	SIGINT  Signal = "INT"
	SIGKILL Signal = "KILL"
	SIGPIPE Signal = "PIPE"
	SIGQUIT Signal = "QUIT"
	SIGSEGV Signal = "SEGV"
	SIGTERM Signal = "TERM"
	SIGUSR1 Signal = "USR1"
	SIGUSR2 Signal = "USR2"
)

// ExitError is the remote command's unsuccessful end: a non-zero
// exit-status, or an exit-signal (RFC 4254 §6.10).
type ExitError struct {
	// Status is the exit status; -1 when the command was killed by a
	// signal.
	Status int
	// Signal is the signal name (without "SIG") when killed by a signal.
	Signal string
	// CoreDumped and Message come with an exit-signal.
	CoreDumped bool
	Message    string
}

func (e *ExitError) Error() string {
	var s string
	if e.Signal != "" {
		s = "sshtap: process killed by signal " + e.Signal
	} else {
		s = fmt.Sprintf("sshtap: process exited with status %d", e.Status)
	}
	if e.CoreDumped {
		s += " (core dumped)"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ExitMissingError reports that the session channel closed without an
// exit-status or exit-signal request.
type ExitMissingError struct{}

func (*ExitMissingError) Error() string {
	return "sshtap: session closed without exit status or exit signal"
}

// RequestRefusedError reports a session request the server answered with
// CHANNEL_FAILURE.
type RequestRefusedError struct {
	Request string // "pty-req", "exec", ...
}

func (e *RequestRefusedError) Error() string {
	return "sshtap: session: " + e.Request + " request refused by the server"
}

var (
	errSessionStarted    = errors.New("sshtap: session: already started")
	errSessionNotStarted = errors.New("sshtap: session: not started")
	errSessionWaited     = errors.New("sshtap: session: Wait was already called")
)

// sessionState is per-Conn session bookkeeping (the Conn's sess field):
// what the client's sessions asked for, so the X11 and agent channel
// handlers can tell solicited opens from unsolicited ones.
type sessionState struct {
	mu    sync.Mutex
	x11   *X11Request // the last x11-req sent (client) that the server accepted
	agent bool        // an auth-agent-req@openssh.com was sent (client) and accepted
}

// X11Request is the data of an x11-req (RFC 4254 §6.3.1).
type X11Request struct {
	SingleConnection bool
	AuthProtocol     string
	AuthCookie       string
	Screen           uint32
}

// noteX11Requested records that a session sent an accepted x11-req.
func (c *Conn) noteX11Requested(r X11Request) {
	c.sess.mu.Lock()
	c.sess.x11 = &r
	c.sess.mu.Unlock()
}

// noteAgentRequested records that a session sent an accepted
// auth-agent-req@openssh.com.
func (c *Conn) noteAgentRequested() {
	c.sess.mu.Lock()
	c.sess.agent = true
	c.sess.mu.Unlock()
}

// x11Requested reports whether a session of this client Conn sent an
// x11-req the server accepted, and its data (for the x11 channel handler).
func (c *Conn) x11Requested() (X11Request, bool) {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	if c.sess.x11 == nil {
		return X11Request{}, false
	}
	return *c.sess.x11, true
}

// agentRequested reports whether a session of this client Conn requested
// agent forwarding and the server accepted (for the
// auth-agent@openssh.com channel handler).
func (c *Conn) agentRequested() bool {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.agent
}

// NewSession opens a "session" channel (RFC 4254 §6.1).
func (c *Conn) NewSession(ctx context.Context) (*Session, error) {
	ch, err := c.OpenChannel(ctx, wire.ChannelTypeSession, nil)
	if err != nil {
		return nil, err
	}
	s := &Session{conn: c, ch: ch}
	ch.handleRequestsInline(s.handleRequest)
	return s, nil
}

// Channel returns the underlying channel. While the command's output is
// copied to Stdout or Stderr, only that copy may read it.
func (s *Session) Channel() *Channel { return s.ch }

// handleRequest runs on the transport goroutine (handleRequestsInline)
// for each request the server sends on the session channel; it never
// blocks.
func (s *Session) handleRequest(r *Request) {
	switch r.Type {
	case wire.RequestExitStatus:
		if st, err := wire.ParseExitStatus(r.Payload); err == nil {
			s.mu.Lock()
			if s.exit == nil {
				s.exit = &ExitError{Status: int(st.Status)}
			}
			s.mu.Unlock()
		}
	case wire.RequestExitSignal:
		if es, err := wire.ParseExitSignal(r.Payload); err == nil {
			s.mu.Lock()
			if s.exit == nil {
				s.exit = &ExitError{Status: -1, Signal: es.Signal, CoreDumped: es.CoreDumped, Message: es.Message}
			}
			s.mu.Unlock()
		}
	case wire.RequestEOW:
		// OpenSSH PROTOCOL §2.1: the server will not read more input; the
		// channel stays open for output and the exit status. Writes keep
		// using the window the server grants.
	}
	if r.WantReply {
		r.Reply(false, nil)
	}
}

// request sends a session request with want_reply and turns a failure
// reply into *RequestRefusedError.
func (s *Session) request(name string, payload []byte) error {
	ok, err := s.ch.SendRequest(context.Background(), name, true, payload)
	if err != nil {
		return err
	}
	if !ok {
		return &RequestRefusedError{Request: name}
	}
	return nil
}

// RequestPty asks for a pseudo-terminal (RFC 4254 §6.2) of h rows and w
// columns with the given terminal type (e.g. "xterm") and modes.
func (s *Session) RequestPty(term string, h, w int, modes TerminalModes) error {
	req := wire.PtyReq{Term: term, Cols: uint32(w), Rows: uint32(h), Modes: modes.encode()}
	return s.request(wire.RequestPty, req.Append(nil))
}

// WindowChange tells the server the terminal is now h rows by w columns
// (RFC 4254 §6.7; no reply).
func (s *Session) WindowChange(h, w int) error {
	req := wire.WindowChange{Cols: uint32(w), Rows: uint32(h)}
	_, err := s.ch.SendRequest(context.Background(), wire.RequestWindowChange, false, req.Append(nil))
	return err
}

// Setenv asks the server to set an environment variable for the command
// (RFC 4254 §6.4). Servers accept only the names they allow (sshd:
// AcceptEnv); a refusal is a *RequestRefusedError.
func (s *Session) Setenv(name, value string) error {
	req := wire.EnvReq{Name: name, Value: value}
	return s.request(wire.RequestEnv, req.Append(nil))
}

// Signal delivers a signal to the remote process (RFC 4254 §6.9; no
// reply: servers may ignore it).
func (s *Session) Signal(sig Signal) error {
	req := wire.SignalReq{Name: string(sig)}
	_, err := s.ch.SendRequest(context.Background(), wire.RequestSignal, false, req.Append(nil))
	return err
}

// RequestX11 asks for X11 forwarding (RFC 4254 §6.3.1). cookie is the
// (usually fake) hex cookie the server's proxy display checks. On success
// the Conn accepts the server's "x11" channel opens.
func (s *Session) RequestX11(single bool, proto, cookie string, screen uint32) error {
	req := wire.X11Req{SingleConnection: single, AuthProtocol: proto, AuthCookie: cookie, Screen: screen}
	if err := s.request(wire.RequestX11, req.Append(nil)); err != nil {
		return err
	}
	s.conn.noteX11Requested(X11Request{SingleConnection: single, AuthProtocol: proto, AuthCookie: cookie, Screen: screen})
	return nil
}

// RequestAgentForwarding asks for agent forwarding
// (auth-agent-req@openssh.com, OpenSSH PROTOCOL.agent). On success the
// Conn accepts the server's "auth-agent@openssh.com" channel opens.
func (s *Session) RequestAgentForwarding() error {
	if err := s.request(wire.RequestAuthAgent, nil); err != nil {
		return err
	}
	s.conn.noteAgentRequested()
	return nil
}

// Start runs cmd on the server (an "exec" request, RFC 4254 §6.5) and
// starts copying the standard streams; Wait waits for it to end.
func (s *Session) Start(cmd string) error {
	req := wire.ExecReq{Command: cmd}
	return s.start(wire.RequestExec, req.Append(nil))
}

// Shell starts the user's login shell (a "shell" request).
func (s *Session) Shell() error { return s.start(wire.RequestShell, nil) }

// RequestSubsystem starts a subsystem such as "sftp" (a "subsystem"
// request).
func (s *Session) RequestSubsystem(name string) error {
	req := wire.SubsystemReq{Name: name}
	return s.start(wire.RequestSubsystem, req.Append(nil))
}

// Run runs cmd and waits for it: Start followed by Wait.
func (s *Session) Run(cmd string) error {
	if err := s.Start(cmd); err != nil {
		return err
	}
	return s.Wait()
}

// Output runs cmd and returns its standard output.
func (s *Session) Output(cmd string) ([]byte, error) {
	if s.Stdout != nil {
		return nil, errors.New("sshtap: session: Stdout already set")
	}
	var b bytes.Buffer
	s.Stdout = &b
	if err := s.Start(cmd); err != nil {
		s.Stdout = nil // a refused command may be followed by another
		return nil, err
	}
	err := s.Wait()
	return b.Bytes(), err
}

// lockedWriter serializes writes from the stdout and stderr copies.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// CombinedOutput runs cmd and returns its standard output and error
// interleaved as they arrived.
func (s *Session) CombinedOutput(cmd string) ([]byte, error) {
	if s.Stdout != nil || s.Stderr != nil {
		return nil, errors.New("sshtap: session: Stdout or Stderr already set")
	}
	var b bytes.Buffer
	w := &lockedWriter{w: &b}
	s.Stdout, s.Stderr = w, w
	if err := s.Start(cmd); err != nil {
		s.Stdout, s.Stderr = nil, nil // a refused command may be followed by another
		return nil, err
	}
	err := s.Wait()
	return b.Bytes(), err
}

// start sends the shell/exec/subsystem request and starts the copies.
func (s *Session) start(name string, payload []byte) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errSessionStarted
	}
	s.started = true
	s.mu.Unlock()
	if err := s.request(name, payload); err != nil {
		// A refused request leaves the session unstarted (RFC 4254 §6.5
		// lets only one of these succeed, not only one be asked): the
		// caller may try another command.
		s.mu.Lock()
		s.started = false
		s.mu.Unlock()
		return err
	}
	s.startCopies()
	return nil
}

// benignCopyErr reports errors that only mean the channel ended first: the
// command exited before reading all of Stdin, or Close was called.
func benignCopyErr(err error) bool {
	return err == nil || err == io.EOF || errors.Is(err, ErrChannelClosed)
}

// startCopies starts copying the standard streams that are not pipes:
// one goroutine copies Stdin, one copies both output streams (the transport
// goroutine's data reaches the writers through a single hand-off). With
// no Stdin, EOF is sent at once.
func (s *Session) startCopies() {
	var fns []func() error
	if !s.stdinP {
		if in := s.Stdin; in != nil {
			fns = append(fns, func() error {
				err := copyGrowing(s.ch, in)
				if cerr := s.ch.CloseWrite(); err == nil && !errors.Is(cerr, ErrWriteClosed) {
					err = cerr
				}
				if benignCopyErr(err) {
					return nil
				}
				return err
			})
		} else {
			s.ch.CloseWrite()
		}
	}
	orDiscard := func(w io.Writer) io.Writer {
		if w == nil {
			return io.Discard
		}
		return w
	}
	switch {
	case !s.stdoutP && !s.stderrP:
		out, errOut := orDiscard(s.Stdout), orDiscard(s.Stderr)
		fns = append(fns, func() error { return s.copyOutput(out, errOut) })
	case !s.stdoutP:
		out := orDiscard(s.Stdout)
		fns = append(fns, func() error {
			if _, err := io.Copy(out, s.ch); !benignCopyErr(err) {
				return err
			}
			return nil
		})
	case !s.stderrP:
		out := orDiscard(s.Stderr)
		fns = append(fns, func() error {
			if _, err := io.Copy(out, s.ch.Stderr()); !benignCopyErr(err) {
				return err
			}
			return nil
		})
	}
	errs := make(chan error, len(fns))
	s.mu.Lock()
	s.copies, s.copyErrs = fns, errs
	s.mu.Unlock()
	for _, f := range fns {
		go func() { errs <- f() }()
	}
}

// copyGrowing copies src to dst until EOF, reading into a buffer that
// starts small (a terminal's input waits in it, maybe for ever) and doubles,
// up to maxWriteBatch, while reads fill it (a file or a busy pipe: a large
// read goes out as several packets in one write).
func copyGrowing(dst io.Writer, src io.Reader) error {
	buf := make([]byte, 512)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			wn, werr := dst.Write(buf[:n])
			if werr == nil && wn < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return werr
			}
			if n == len(buf) && len(buf) < maxWriteBatch {
				buf = make([]byte, 2*len(buf))
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyOutput copies the channel's data to out and its stderr stream to
// errOut until both ended, as two io.Copy calls would, but writing
// straight from the channel's buffers (no copy in between).
func (s *Session) copyOutput(out, errOut io.Writer) error {
	for {
		view, stderr, err := s.ch.peekAny()
		if err != nil {
			if benignCopyErr(err) {
				return nil
			}
			return err
		}
		w := out
		if stderr {
			w = errOut
		}
		n, werr := w.Write(view)
		s.ch.consumeView(n, stderr)
		if werr == nil && n < len(view) {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			return werr
		}
	}
}

// Wait waits for the started command to end and for its output to be
// copied. It returns nil for exit status 0, *ExitError for another status
// or a signal, *ExitMissingError when the channel closed without either,
// ErrChannelClosed when Close ended the wait before the exit status came,
// or the error that ended the copying (the Conn's error when it failed).
// Close, from any goroutine, ends Wait (and Run, Output and
// CombinedOutput) without waiting for the server.
//
// Like os/exec, Wait also waits for the copy of Stdin: a Stdin whose Read
// blocks keeps Wait waiting until it returns (the copy stops at its next
// write once the channel closed). Use StdinPipe for interactive input.
func (s *Session) Wait() error {
	s.mu.Lock()
	if !s.started || s.copyErrs == nil {
		s.mu.Unlock()
		return errSessionNotStarted
	}
	if s.waited {
		s.mu.Unlock()
		return errSessionWaited
	}
	s.waited = true
	n, errs := len(s.copies), s.copyErrs
	s.mu.Unlock()
	var copyErr error
	for range n {
		if err := <-errs; err != nil && copyErr == nil {
			copyErr = err
		}
	}
	// The exit status may follow the EOF: wait for the peer's CLOSE, or
	// for Close (a server may never close the channel of a command that
	// does not end; sshd keeps it open while its process lives).
	select {
	case <-s.ch.closedByPeer():
	case <-s.ch.closed:
	}
	s.ch.mu.Lock()
	closedFirst := s.ch.closedFirst
	s.ch.mu.Unlock()
	s.mu.Lock()
	exit := s.exit
	s.mu.Unlock()
	switch {
	case exit == nil && closedFirst:
		// Close, not the server, ended the session (its CLOSE may have
		// come since, in answer).
		return ErrChannelClosed
	case exit == nil:
		if copyErr != nil {
			return copyErr
		}
		return &ExitMissingError{}
	case exit.Signal == "" && exit.Status == 0:
		return copyErr
	}
	return exit
}

// StdinPipe returns a pipe to the remote standard input; closing it sends
// EOF. It must be called before the command starts, instead of setting
// Stdin.
func (s *Session) StdinPipe() (io.WriteCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.Stdin != nil || s.stdinP:
		return nil, errors.New("sshtap: session: Stdin already set")
	case s.started:
		return nil, errSessionStarted
	}
	s.stdinP = true
	return stdinPipe{s.ch}, nil
}

type stdinPipe struct{ ch *Channel }

func (p stdinPipe) Write(b []byte) (int, error) { return p.ch.Write(b) }
func (p stdinPipe) Close() error                { return p.ch.CloseWrite() }

// StdoutPipe returns the remote standard output. It must be called before
// the command starts, instead of setting Stdout, and read until EOF: Wait
// waits for it only through the channel's end.
func (s *Session) StdoutPipe() (io.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.Stdout != nil || s.stdoutP:
		return nil, errors.New("sshtap: session: Stdout already set")
	case s.started:
		return nil, errSessionStarted
	}
	s.stdoutP = true
	return s.ch, nil
}

// StderrPipe returns the remote standard error (extended data type 1), like
// StdoutPipe.
func (s *Session) StderrPipe() (io.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.Stderr != nil || s.stderrP:
		return nil, errors.New("sshtap: session: Stderr already set")
	case s.started:
		return nil, errSessionStarted
	}
	s.stderrP = true
	return s.ch.Stderr(), nil
}

// Close closes the session channel (CHANNEL_CLOSE), from any goroutine,
// and never waits. Every Session method in progress returns: a request
// waiting for its reply (RequestPty, Setenv, Start, Shell, ...) and Wait
// (so Run, Output and CombinedOutput) with ErrChannelClosed unless the exit
// status came first. It is how a Session is cancelled: for a context, use
// context.AfterFunc(ctx, func() { s.Close() }). The Conn is not affected;
// the channel's id is freed once the server closes its side.
func (s *Session) Close() error { return s.ch.Close() }
