package sshtap

// The Server: accept loop, startup limit, connection limit, shutdown.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("sshtap: Server closed")

// MaxStartups is OpenSSH's MaxStartups "start:rate:full" random early drop
// for unauthenticated connections: below Start of them, every new
// connection is served; from Start on, a new one is dropped with
// probability Rate percent, rising linearly to 100 percent at Full; at
// Full and beyond every new one is dropped. A dropped connection gets the
// line "Exceeded MaxStartups" (as from sshd) and is closed before any SSH
// byte. The zero value means DefaultMaxStartups; Full < 0 means no limit.
type MaxStartups struct {
	Start, Rate, Full int
}

// DefaultMaxStartups is OpenSSH's default, 10:30:100.
var DefaultMaxStartups = MaxStartups{Start: 10, Rate: 30, Full: 100}

// ParseMaxStartups parses "start:rate:full" or a single number N (N:100:N,
// a hard limit), as sshd_config's MaxStartups.
func ParseMaxStartups(s string) (MaxStartups, error) {
	bad := fmt.Errorf("sshtap: MaxStartups %q: want start:rate:full or a number", s)
	f := strings.Split(s, ":")
	var v [3]int
	for i, x := range f {
		n, err := strconv.Atoi(x)
		if err != nil || n < 0 || len(f) > 3 || len(f) == 2 {
			return MaxStartups{}, bad
		}
		v[i] = n
	}
	if len(f) == 1 {
		v = [3]int{v[0], 100, v[0]}
	}
	m := MaxStartups{Start: v[0], Rate: v[1], Full: v[2]}
	if m.Full == 0 || m.Start > m.Full || m.Rate > 100 {
		return MaxStartups{}, bad
	}
	return m, nil
}

func (m MaxStartups) String() string { return fmt.Sprintf("%d:%d:%d", m.Start, m.Rate, m.Full) }

// drop decides for a new connection, with n unauthenticated ones already
// (m with its defaults applied: see Server.maxStartups).
func (m MaxStartups) drop(n int) bool {
	switch {
	case m.Full < 0:
		return false
	case n >= m.Full:
		return true
	case n < m.Start || m.Start >= m.Full:
		return false
	}
	p := m.Rate + (100-m.Rate)*(n-m.Start)/(m.Full-m.Start)
	return rand.IntN(100) < p
}

// ConnState is a state a Server's connection goes through, reported to
// Server.ConnState.
type ConnState int

const (
	// StateNew: accepted, the Conn made, nothing sent or read yet.
	// Subscribing here sees every event of the handshake.
	StateNew ConnState = iota
	// StateActive: the client authenticated and was admitted under
	// MaxConns.
	StateActive
	// StateClosed: the Conn ended; its Err says why.
	StateClosed
)

func (s ConnState) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateActive:
		return "active"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// A Server accepts connections and serves them, in the manner of
// net/http.Server: it owns the accept loop, a goroutine per connection and
// its cleanup, and the limits a server facing the internet needs before
// authentication.
//
//   - ServerConfig.LoginGraceTime counts from the accept and covers the
//     version exchange, the first key exchange and user authentication.
//   - MaxStartups bounds unauthenticated connections (random early drop).
//   - MaxConns bounds authenticated ones, so connections that never
//     authenticate cannot lock honest users out.
//
// Set the fields before Serve and do not change them afterwards. A Server
// runs one goroutine per connection (besides the Conn's own) and one
// per Serve call; all its methods are safe for concurrent use.
type Server struct {
	// Config configures every connection, unless NewConn is set.
	Config *ServerConfig

	// Addr is the TCP address ListenAndServe listens on; "" means ":22".
	Addr string

	// MaxStartups limits unauthenticated connections (see MaxStartups).
	MaxStartups MaxStartups

	// MaxConns bounds authenticated connections at a time: a client that
	// authenticates while MaxConns others are connected is disconnected
	// (TOO_MANY_CONNECTIONS) instead of getting USERAUTH_SUCCESS. Zero
	// means no bound.
	MaxConns int

	// NewConn, if set, makes the Conn of an accepted socket in place of
	// ServerConn(nc, Config), to give a connection a configuration of its
	// own. It must return a Conn made by ServerConn over nc (or a wrapper
	// of it) and not started; nil drops the connection. It runs on the
	// connection's goroutine; LoginGraceTime counts from ServerConn.
	NewConn func(nc net.Conn) *Conn

	// ConnState, if set, is called on the connection's goroutine as the
	// connection enters each state: StateNew before the handshake,
	// StateActive after authentication, StateClosed at the end (always,
	// and last). The connection waits for it.
	ConnState func(c *Conn, state ConnState)

	// Logger receives accept errors and dropped connections (at Info
	// level). Nil means slog.Default().
	Logger *slog.Logger

	mu        sync.Mutex
	stats     ServerStats // the counters; the gauges and live Conns are added by Stats
	listeners map[*net.Listener]struct{}
	conns     map[*Conn]*serverConn
	startups  int  // unauthenticated connections, accepted and not yet Conns included
	active    int  // authenticated, admitted connections
	closing   bool // Shutdown or Close was called
	allGone   chan struct{}
	wg        sync.WaitGroup // connection goroutines
}

// serverConn is a Server's bookkeeping of one connection (under
// Server.mu).
type serverConn struct {
	authed, ended bool
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ListenAndServe listens on s.Addr (TCP) and serves it; see Serve.
func (s *Server) ListenAndServe() error {
	addr := s.Addr
	if addr == "" {
		addr = ":22"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sshtap: %w", err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, and then returns ErrServerClosed; it closes ln.
// It returns other errors of Accept that are not temporary (after which
// ln is closed too); temporary ones (too many open files) are retried
// after a pause.
func (s *Server) Serve(ln net.Listener) error {
	if s.Config == nil && s.NewConn == nil {
		ln.Close()
		return errors.New("sshtap: Server has neither Config nor NewConn")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	s.listeners[&ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.logger().Info("sshtap: accept failed; retrying", "err", err, "pause", pause)
				time.Sleep(pause)
				continue
			}
			return fmt.Errorf("sshtap: accept: %w", err)
		}
		pause = 0
		s.admitSocket(nc)
	}
}

// isTemporary reports accept errors worth retrying (EMFILE and the like).
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// admitSocket applies MaxStartups to an accepted socket and starts its
// goroutine.
func (s *Server) admitSocket(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	n := s.startups
	s.stats.Accepted++
	if s.maxStartups().drop(n) {
		s.stats.DroppedStartups++
		s.mu.Unlock()
		s.logger().Info("sshtap: connection dropped", "remote", nc.RemoteAddr().String(),
			"reason", fmt.Sprintf("MaxStartups %v, %d unauthenticated connections", s.maxStartups(), n))
		// What sshd sends; a write this small to a new socket does not
		// block, and the deadline makes sure.
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("Exceeded MaxStartups\r\n"))
		nc.Close()
		return
	}
	s.startups++
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serveConn(nc)
}

func (s *Server) maxStartups() MaxStartups {
	if s.MaxStartups == (MaxStartups{}) {
		return DefaultMaxStartups
	}
	return s.MaxStartups
}

// serveConn runs one connection: handshake, authentication, until it ends.
func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	var c *Conn
	if s.NewConn != nil {
		c = s.NewConn(nc)
	} else {
		c = ServerConn(nc, s.Config)
	}
	if c == nil || c.isClient || c.started.Load() {
		nc.Close()
		s.mu.Lock()
		s.startups--
		s.mu.Unlock()
		if c != nil {
			s.logger().Error("sshtap: Server.NewConn returned a client or started Conn; connection dropped")
		}
		return
	}
	sc := &serverConn{}
	c.omu.Lock()
	c.admit = func() *DisconnectError { return s.admitAuth(sc) }
	c.onEnd = func() { s.connEnded(c, sc) }
	c.omu.Unlock()
	s.mu.Lock()
	closing := s.closing
	if !closing {
		if s.conns == nil {
			s.conns = make(map[*Conn]*serverConn)
		}
		s.conns[c] = sc
	}
	s.mu.Unlock()
	if s.ConnState != nil {
		s.ConnState(c, StateNew)
	}
	if closing {
		c.abort(errServerShutdown(), DisconnectByApplication, serverShutdownMsg)
	} else if err := c.Handshake(context.Background()); err == nil || c.Authenticated() {
		// Reported for every authenticated connection, also one that
		// ended before its handshake call returned.
		if s.ConnState != nil {
			s.ConnState(c, StateActive)
		}
	}
	c.Wait()
	<-c.streamDone
	// Normally done by onEnd already; not when the Conn ended before
	// onEnd was set (a grace time shorter than NewConn, a Conn NewConn
	// closed).
	s.connEnded(c, sc)
	if s.ConnState != nil {
		s.ConnState(c, StateClosed)
	}
	st := c.Stats()
	var ge *LoginGraceError
	s.mu.Lock()
	s.stats.addConn(st)
	if errors.As(c.Err(), &ge) {
		s.stats.LoginGraceExpired++
	}
	delete(s.conns, c)
	if len(s.conns) == 0 && s.allGone != nil {
		close(s.allGone)
		s.allGone = nil
	}
	s.mu.Unlock()
}

// admitAuth is called by user authentication before it succeeds: it moves
// the connection from the startups to the active ones, within MaxConns.
func (s *Server) admitAuth(sc *serverConn) *DisconnectError {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case sc.ended, s.closing:
		return errServerShutdown()
	case s.MaxConns > 0 && s.active >= s.MaxConns:
		s.stats.RefusedConns++
		return &DisconnectError{Reason: DisconnectTooManyConnections,
			Message: fmt.Sprintf("too many connections (at most %d)", s.MaxConns)}
	}
	sc.authed = true
	s.startups--
	s.active++
	return nil
}

// connEnded is the Conn's onEnd: its place is free before its stream
// closes, so a client that saw it end may connect again at once.
func (s *Server) connEnded(c *Conn, sc *serverConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc.ended {
		return
	}
	sc.ended = true
	if sc.authed {
		s.active--
	} else {
		s.startups--
	}
}

const serverShutdownMsg = "server shutting down"

func errServerShutdown() *DisconnectError {
	return &DisconnectError{Reason: DisconnectByApplication, Message: serverShutdownMsg}
}

// closeListenersLocked marks the server closing and closes its
// listeners. s.mu is held.
func (s *Server) closeListenersLocked() {
	s.closing = true
	for ln := range s.listeners {
		(*ln).Close()
	}
}

// Shutdown stops the server gracefully: it closes the listeners, ends
// every connection that has not authenticated, refuses new channels on
// the authenticated ones (OpenProhibited), and waits for
// them to end, ending each as soon as it has no open channel. When ctx is
// done first it returns ctx's error; Close then ends the remaining ones.
// After Shutdown, Serve returns ErrServerClosed. Calling it from NewConn or
// ConnState waits until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closeListenersLocked()
	s.mu.Unlock()
	poll := time.NewTimer(0)
	defer poll.Stop()
	interval := 10 * time.Millisecond
	for {
		s.mu.Lock()
		var end []*Conn
		for c, sc := range s.conns {
			if !sc.authed || c.drain() {
				end = append(end, c)
			}
		}
		left := len(s.conns)
		var gone chan struct{}
		if left > 0 {
			if s.allGone == nil {
				s.allGone = make(chan struct{})
			}
			gone = s.allGone
		}
		s.mu.Unlock()
		for _, c := range end {
			c.abort(errServerShutdown(), DisconnectByApplication, serverShutdownMsg)
		}
		if left == 0 {
			// The connection goroutines still finishing (ConnState
			// calls, a NewConn in progress).
			done := make(chan struct{})
			go func() { s.wg.Wait(); close(done) }()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-gone:
		case <-poll.C:
			interval = min(2*interval, 500*time.Millisecond)
			poll.Reset(interval)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the listeners and ends every connection at once (DISCONNECT
// by-application), then waits for the connections' goroutines, the
// ConnState calls included; so it must not be called from NewConn or
// ConnState (it would wait for itself).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closeListenersLocked()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.abort(errServerShutdown(), DisconnectByApplication, serverShutdownMsg)
	}
	s.wg.Wait()
	return nil
}

// drain makes the Conn refuse the peer's channel opens from now on and
// reports whether it has no channel (so it stays without one).
func (c *Conn) drain() bool {
	c.mux.mu.Lock()
	defer c.mux.mu.Unlock()
	c.mux.draining = true
	return len(c.mux.chans) == 0 && len(c.mux.pending) == 0
}

// ServerStats are a Server's counters (since it was made, over every
// connection, ended or live) and gauges (now).
type ServerStats struct {
	Accepted        uint64 // connections accepted
	DroppedStartups uint64 // dropped at once by MaxStartups
	RefusedConns    uint64 // refused at authentication by MaxConns
	// LoginGraceExpired counts connections ended by LoginGraceTime.
	LoginGraceExpired uint64

	Unauthenticated int // connections now before authentication
	Authenticated   int // connections now authenticated

	// The sums of the connections' Stats.
	BytesRead, BytesWritten     uint64
	PacketsRead, PacketsWritten uint64
	Rekeys                      uint64
	MACFailures                 [3]uint64 // by verdict, as in Stats
	AuthFailures                uint64
	OpenChannels                int // now
}

// addConn adds one connection's counters.
func (t *ServerStats) addConn(st Stats) {
	t.BytesRead += st.BytesRead
	t.BytesWritten += st.BytesWritten
	t.PacketsRead += st.PacketsRead
	t.PacketsWritten += st.PacketsWritten
	t.Rekeys += st.Rekeys
	for i, n := range st.MACFailures {
		t.MACFailures[i] += n
	}
	t.AuthFailures += st.AuthFailures
}

// Stats returns a snapshot of the server's counters and gauges. It is
// safe to call from any goroutine at any time.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	t := s.stats
	t.Unauthenticated, t.Authenticated = s.startups, s.active
	live := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		live = append(live, c)
	}
	s.mu.Unlock()
	for _, c := range live {
		st := c.Stats()
		t.addConn(st)
		t.OpenChannels += st.OpenChannels
	}
	return t
}
