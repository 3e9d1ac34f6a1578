package sshtap

import (
	"context"
	"errors"
	"io"
	"sync"

	"sshtap/internal/wire"
)

// PtyRequest is a client's pty-req (RFC 4254 §6.2).
type PtyRequest struct {
	Term                          string
	Cols, Rows, WidthPx, HeightPx uint32
	Modes                         TerminalModes // nil when none were sent
}

// WindowChange is a client's window-change (RFC 4254 §6.7).
type WindowChange struct {
	Cols, Rows, WidthPx, HeightPx uint32
}

// Buffer sizes of ServerSession.WindowChanges and Signals.
const (
	windowChangeBuffer = 8
	signalBuffer       = 16
)

// ServerSession is one "session" channel on a server, handed to
// ServerConfig.SessionHandler once the client asked for a shell, a command
// or a subsystem. Read and Write carry the standard input and output.
// Returning from the handler ends the session with Exit(0) unless Exit or
// ExitSignal was called.
type ServerSession struct {
	conn *Conn
	ch   *Channel
	ctx  context.Context

	// Set on the transport goroutine before the handler starts, read-only
	// after (the start request is the last that changes them).
	mu        sync.Mutex
	started   bool
	command   string
	subsystem string
	shell     bool
	pty       *PtyRequest
	env       []string
	agent     bool
	x11       *X11Request

	winch   chan WindowChange
	signals chan Signal

	exitOnce sync.Once
	exitErr  error
}

func init() {
	registerBuiltinChannel(wire.ChannelTypeSession, func(c *Conn) func(*NewChannel) {
		if c.isClient {
			// A client refuses "session" opens from the server
			// (ssh-protocol.md §8) unless the application handles them
			// through TransportConfig.ChannelHandlers.
			return nil
		}
		if c.scfg.SessionHandler == nil && c.cfg.ChannelHandlers[wire.ChannelTypeSession] != nil {
			return nil // the application serves raw session channels
		}
		return c.serveSession
	})
}

// serveSession is the built-in handler of "session" channel opens on a
// server (registered with the channel layer). It runs in its own goroutine
// per open.
func (c *Conn) serveSession(nc *NewChannel) {
	if c.scfg == nil || c.scfg.SessionHandler == nil {
		nc.Reject(OpenProhibited, "sessions are not served")
		return
	}
	s := &ServerSession{
		conn:    c,
		winch:   make(chan WindowChange, windowChangeBuffer),
		signals: make(chan Signal, signalBuffer),
	}
	ch, err := nc.Accept()
	if err != nil {
		return
	}
	s.ch = ch
	s.ctx = ch.closedContext()
	ch.HandleRequests(s.handleRequest)
}

// allowed asks ServerConfig.AllowSessionRequest about a request.
func (s *ServerSession) allowed(typ, detail string) bool {
	f := s.conn.scfg.AllowSessionRequest
	return f == nil || f(s.conn, typ, detail)
}

// handleRequest runs on the channel's request goroutine (HandleRequests),
// one request at a time.
func (s *ServerSession) handleRequest(r *Request) {
	ok := false
	start := false
	s.mu.Lock()
	switch r.Type {
	case wire.RequestPty:
		if s.started || s.pty != nil {
			break
		}
		pr, err := wire.ParsePtyReq(r.Payload)
		if err != nil {
			break
		}
		modes, err := parseModes(pr.Modes)
		if err != nil || !s.allowed(r.Type, "") {
			break
		}
		s.pty = &PtyRequest{Term: pr.Term, Cols: pr.Cols, Rows: pr.Rows, WidthPx: pr.WidthPx, HeightPx: pr.HeightPx, Modes: modes}
		ok = true
	case wire.RequestX11:
		if s.started {
			break
		}
		xr, err := wire.ParseX11Req(r.Payload)
		if err != nil || !s.allowed(r.Type, "") {
			break
		}
		s.x11 = &X11Request{SingleConnection: xr.SingleConnection, AuthProtocol: xr.AuthProtocol, AuthCookie: xr.AuthCookie, Screen: xr.Screen}
		ok = true
	case wire.RequestAuthAgent:
		if s.started || !s.allowed(r.Type, "") {
			break
		}
		s.agent = true
		ok = true
	case wire.RequestEnv:
		if s.started {
			break
		}
		e, err := wire.ParseEnvReq(r.Payload)
		if err != nil || !s.allowed(r.Type, e.Name) {
			break
		}
		s.env = append(s.env, e.Name+"="+e.Value)
		ok = true
	case wire.RequestShell, wire.RequestExec, wire.RequestSubsystem:
		// RFC 4254 §6.5: "Only one of these requests will succeed per
		// channel."
		if s.started {
			break
		}
		var detail string
		switch r.Type {
		case wire.RequestExec:
			e, err := wire.ParseExecReq(r.Payload)
			if err != nil {
				s.mu.Unlock()
				s.reply(r, false)
				return
			}
			detail = e.Command
		case wire.RequestSubsystem:
			e, err := wire.ParseSubsystemReq(r.Payload)
			if err != nil {
				s.mu.Unlock()
				s.reply(r, false)
				return
			}
			detail = e.Name
		}
		if !s.allowed(r.Type, detail) {
			break
		}
		switch r.Type {
		case wire.RequestShell:
			s.shell = true
		case wire.RequestExec:
			s.command = detail
		case wire.RequestSubsystem:
			s.subsystem = detail
		}
		s.started = true
		ok, start = true, true
	case wire.RequestWindowChange:
		wc, err := wire.ParseWindowChange(r.Payload)
		if err != nil {
			break
		}
		s.deliverWindowChange(WindowChange{Cols: wc.Cols, Rows: wc.Rows, WidthPx: wc.WidthPx, HeightPx: wc.HeightPx})
		ok = true
	case wire.RequestSignal:
		sr, err := wire.ParseSignalReq(r.Payload)
		if err != nil {
			break
		}
		select {
		case s.signals <- Signal(sr.Name):
			ok = true
		default: // a handler that does not read signals loses them
		}
	}
	s.mu.Unlock()
	s.reply(r, ok)
	if start {
		// The reply is queued before anything the handler writes.
		go s.run()
	}
}

func (s *ServerSession) reply(r *Request, ok bool) {
	if r.WantReply {
		r.Reply(ok, nil)
	}
}

// deliverWindowChange queues wc, dropping the oldest queued change when the
// buffer is full (the latest size wins). Called with s.mu held, only on the
// transport goroutine (the only sender).
func (s *ServerSession) deliverWindowChange(wc WindowChange) {
	for {
		select {
		case s.winch <- wc:
			return
		default:
		}
		select {
		case <-s.winch:
		default:
		}
	}
}

func (s *ServerSession) run() {
	defer s.Exit(0)
	s.conn.scfg.SessionHandler(s)
}

// Conn returns the connection the session belongs to.
func (s *ServerSession) Conn() *Conn { return s.conn }

// Channel returns the underlying channel.
func (s *ServerSession) Channel() *Channel { return s.ch }

// Context is done when the session channel closes.
func (s *ServerSession) Context() context.Context { return s.ctx }

// Command returns the command of an "exec" request ("" otherwise).
func (s *ServerSession) Command() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.command
}

// Subsystem returns the name of a "subsystem" request ("" otherwise).
func (s *ServerSession) Subsystem() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subsystem
}

// Shell reports whether the client asked for a shell.
func (s *ServerSession) Shell() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shell
}

// Pty returns the client's pty-req, if it sent one.
func (s *ServerSession) Pty() (PtyRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pty == nil {
		return PtyRequest{}, false
	}
	return *s.pty, true
}

// WindowChanges delivers the client's window-change requests. When the
// handler falls behind, older changes are dropped: the latest size wins.
// The channel is never closed; select on Context().Done() too.
func (s *ServerSession) WindowChanges() <-chan WindowChange { return s.winch }

// Signals delivers the client's "signal" requests (signals arriving while
// the buffer is full are refused). The channel is never closed.
func (s *ServerSession) Signals() <-chan Signal { return s.signals }

// Environ returns the client's "env" requests as "NAME=value" strings, in
// order. The server accepts them all; filter as needed.
func (s *ServerSession) Environ() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.env...)
}

// AgentForwardingRequested reports whether the client sent
// auth-agent-req@openssh.com.
func (s *ServerSession) AgentForwardingRequested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agent
}

// X11Request returns the client's x11-req, if it sent one.
func (s *ServerSession) X11Request() (X11Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.x11 == nil {
		return X11Request{}, false
	}
	return *s.x11, true
}

// OpenAgentChannel opens an "auth-agent@openssh.com" channel to the client
// (after it requested agent forwarding), to carry one agent connection.
func (s *ServerSession) OpenAgentChannel(ctx context.Context) (*Channel, error) {
	if !s.AgentForwardingRequested() {
		return nil, errors.New("sshtap: session: the client did not request agent forwarding")
	}
	return s.conn.OpenChannel(ctx, wire.ChannelTypeAuthAgent, nil)
}

// OpenX11Channel opens an "x11" channel to the client (after it sent an
// x11-req) for an X client connected from originAddr:originPort
// (RFC 4254 §6.3.2).
func (s *ServerSession) OpenX11Channel(ctx context.Context, originAddr string, originPort uint32) (*Channel, error) {
	if _, ok := s.X11Request(); !ok {
		return nil, errors.New("sshtap: session: the client did not request X11 forwarding")
	}
	open := wire.X11Open{OriginAddr: originAddr, OriginPort: originPort}
	return s.conn.OpenChannel(ctx, wire.ChannelTypeX11, open.Append(nil))
}

// Read reads the client's standard input.
func (s *ServerSession) Read(p []byte) (int, error) { return s.ch.Read(p) }

// Write writes to the client's standard output.
func (s *ServerSession) Write(p []byte) (int, error) { return s.ch.Write(p) }

// Stderr writes to the client's standard error (extended data type 1).
func (s *ServerSession) Stderr() io.Writer { return s.ch.Stderr() }

// CloseWrite sends EOF on the standard output.
func (s *ServerSession) CloseWrite() error { return s.ch.CloseWrite() }

// Exit ends the session: exit-status (RFC 4254 §6.10), EOF, CLOSE. Only the
// first Exit or ExitSignal has an effect; later calls return its result.
func (s *ServerSession) Exit(status int) error {
	return s.finish(wire.RequestExitStatus, (&wire.ExitStatus{Status: uint32(status)}).Append(nil))
}

// ExitSignal ends the session as killed by sig: exit-signal (RFC 4254
// §6.10), EOF, CLOSE.
func (s *ServerSession) ExitSignal(sig Signal, coreDumped bool, message string) error {
	es := wire.ExitSignal{Signal: string(sig), CoreDumped: coreDumped, Message: message}
	return s.finish(wire.RequestExitSignal, es.Append(nil))
}

func (s *ServerSession) finish(name string, payload []byte) error {
	s.exitOnce.Do(func() {
		// The status first, then EOF, then CLOSE, as sshd
		// (session_exit_message): a client may answer our EOF with its
		// CLOSE at once (dbclient does when its stdin is done), after
		// which no request can be sent.
		_, err := s.ch.SendRequest(context.Background(), name, false, payload)
		if werr := s.ch.CloseWrite(); err == nil && !benignCopyErr(werr) && !errors.Is(werr, ErrWriteClosed) {
			err = werr
		}
		if cerr := s.ch.Close(); err == nil && !errors.Is(cerr, ErrChannelClosed) {
			err = cerr
		}
		s.exitErr = err
	})
	return s.exitErr
}

// Close ends the session as Exit(0) does, unless Exit or ExitSignal came
// first (then it returns what that returned). With Read and Write it makes
// a ServerSession an io.ReadWriteCloser, the stream a subsystem server
// such as pkg/sftp's takes.
func (s *ServerSession) Close() error { return s.Exit(0) }

// closeNoStatus ends the session without an exit status (tests: a server
// that never reports one).
func (s *ServerSession) closeNoStatus() {
	s.exitOnce.Do(func() {
		s.ch.CloseWrite()
		s.ch.Close()
	})
}
