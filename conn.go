package sshtap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"sshtap/internal/wire"
	"sshtap/packet"
)

// Conn is one SSH connection, client or server, over any io.ReadWriter.
//
// One transport goroutine per Conn reads packets, runs key exchanges and
// handles transport messages inline, publishing events as it goes. Packets
// are framed and sealed on the caller's goroutine, serialized by one mutex,
// into an outbound buffer that a second goroutine writes to the stream,
// coalescing whatever is queued into one Write; so the Conn never deadlocks
// on an unbuffered stream such as net.Pipe, and crypto and syscalls overlap.
// While a key exchange this side started is in flight, writes of other
// messages wait (cancellably) until the new keys are in place. All methods
// are safe for concurrent use. The first fatal error sticks: every later call
// returns it.
type Conn struct {
	rw       io.ReadWriter
	isClient bool
	cfg      *TransportConfig
	ccfg     *Config       // client only
	scfg     *ServerConfig // server only
	addr     string        // host key callback address (client)
	hub      hub

	// Read side: owned by the transport goroutine.
	rbuf       []byte
	rpos, rend int
	pr         packet.Reader
	rAlgs      DirectionAlgorithms
	rLimit     uint64

	// Write side, guarded by wmu.
	wmu      sync.Mutex
	pw       packet.Writer
	out      []byte        // sealed bytes waiting for the writer goroutine
	spare    []byte        // the other half of the double buffer
	writing  bool          // the writer goroutine is in a Write
	flushed  chan struct{} // made by a waiter; closed after the next batch
	werr     error
	kex      *kexRound // the round in progress, nil when none
	queued   [][]byte  // transport-goroutine writes held while kex is in flight
	keyed    bool      // the first key exchange finished
	wLimit   uint64
	rekeyTmr *time.Timer

	// disconnecting: a DISCONNECT was queued (guarded by wmu). Whoever
	// queued it fails the Conn with the real reason right after, so a write
	// error (the peer hanging up first) must not take its place.
	disconnecting bool

	// Guarded by mu.
	mu                           sync.Mutex
	err                          error // sticky first error
	sessionID                    []byte
	clientVersion, serverVersion []byte
	hostKey                      []byte
	algs                         Algorithms
	strict                       bool
	peerExtC                     bool // server: the client sent ext-info-c
	peerPing                     bool // the peer announced ping@openssh.com
	peerSigAlg                   []string
	pings                        []*pendingPing
	pingSeq                      uint64

	// Authentication (issue 3).
	authQ         msgQueue    // auth messages for the handshake runner
	authenticated atomic.Bool // user authentication succeeded
	authUser      string      // guarded by mu
	perms         *Permissions
	tready        chan struct{} // closed when the transport is ready for auth
	treadyOnce    sync.Once
	keyedCh       chan struct{} // closed when the first key exchange completed
	preAuthRekey  bool          // tests only: let a server rekey before auth (wmu)
	runner        atomic.Bool   // a Handshake call runs the handshake

	sess sessionState // session requests made (session.go)

	mux mux // connection protocol: channels and global requests (mux.go)

	startOnce sync.Once
	hsOnce    sync.Once
	hsDone    chan struct{} // closed when the handshake completed or failed
	hsErr     error
	done      chan struct{} // closed when the transport goroutine exited
	wdone     chan struct{} // closed when the writer goroutine exited
	wake      chan struct{} // cap 1: there is something to write
	closing   chan struct{} // closed by fail
	closingO  sync.Once
	rwOnce    sync.Once // the stream is closed (or its reads interrupted) once
	started   atomic.Bool
	closeOnce sync.Once

	bytesIn, bytesOut atomic.Uint64
	rekeys            atomic.Uint64
}

// kexRound is one key exchange, from the first KEXINIT to the peer's NEWKEYS.
type kexRound struct {
	initial     bool
	remoteFirst bool
	start       time.Time
	ourInit     []byte // our KEXINIT payload
	ourInitSeq  uint32 // the outbound sequence number it was sent with
	ourMsg      *wire.KexInit
	sentNewKeys bool          // guarded by wmu
	writesOpen  chan struct{} // closed when our NEWKEYS is out (or on failure)
	finished    chan struct{} // closed when the round completed (or on failure)
	once        sync.Once
	err         error
}

func (r *kexRound) openWrites() {
	select {
	case <-r.writesOpen:
	default:
		close(r.writesOpen)
	}
}

func (r *kexRound) finish(err error) {
	r.once.Do(func() {
		r.err = err
		r.openWrites()
		close(r.finished)
	})
}

type pendingPing struct {
	data uint64
	sent time.Time
	ch   chan time.Duration
}

const initialReadBuffer = 128 << 10

func newConn(rw io.ReadWriter, cfg *TransportConfig) *Conn {
	c := &Conn{
		rw:      rw,
		cfg:     cfg,
		hsDone:  make(chan struct{}),
		done:    make(chan struct{}),
		tready:  make(chan struct{}),
		keyedCh: make(chan struct{}),
		wdone:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		rbuf:    make([]byte, initialReadBuffer),
	}
	c.pr.MaxPacket = cfg.maxPacket()
	return c
}

// Client returns a client Conn over rw without doing any I/O; Handshake (or
// the first call that needs it) runs the version exchange, the key exchange
// and the "ssh-userauth" service request. Subscribing between Client and
// Handshake sees every event of the handshake. If rw is an io.Closer it is
// closed with the Conn; if it has SetReadDeadline, that is used to interrupt
// a stalled read when it cannot be closed.
func Client(rw io.ReadWriter, cfg *Config) *Conn {
	if cfg == nil {
		cfg = &Config{}
	}
	c := newConn(rw, &cfg.TransportConfig)
	c.isClient, c.ccfg, c.addr = true, cfg, cfg.Addr
	return c
}

// Server returns a server Conn over rw without doing any I/O; see Client.
func Server(rw io.ReadWriter, cfg *ServerConfig) *Conn {
	if cfg == nil {
		cfg = &ServerConfig{}
	}
	c := newConn(rw, &cfg.TransportConfig)
	c.scfg = cfg
	return c
}

// NewClientConn runs the client side of the handshake over rw, bounded by
// ctx, and returns the Conn once the server accepted the "ssh-userauth"
// service. On failure rw is closed (if it is an io.Closer).
func NewClientConn(ctx context.Context, rw io.ReadWriter, cfg *Config) (*Conn, error) {
	c := Client(rw, cfg)
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// NewServerConn runs the server side of the handshake over rw, bounded by
// ctx, and returns the Conn once the first key exchange completed.
func NewServerConn(ctx context.Context, rw io.ReadWriter, cfg *ServerConfig) (*Conn, error) {
	c := Server(rw, cfg)
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Dial connects to addr and runs the client handshake, all bounded by ctx.
// addr is what HostKeyCallback sees (unless cfg.Addr is set).
func Dial(ctx context.Context, network, addr string, cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("sshtap: dial: %w", err)
	}
	c := Client(nc, cfg)
	if c.addr == "" {
		c.addr = addr
	}
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Handshake runs the handshake if it has not run yet and waits for it,
// bounded by ctx. A cancelled ctx fails the Conn. Calling it again returns
// the first result.
func (c *Conn) Handshake(ctx context.Context) error {
	c.start()
	select {
	case <-c.hsDone:
		return c.hsErr
	default:
	}
	if c.runner.CompareAndSwap(false, true) {
		// This call runs the rest of the handshake, user authentication
		// included, on its own goroutine (so user callbacks such as password
		// prompts never run on the transport goroutine).
		if err := c.runHandshake(ctx); err != nil {
			c.fail(err)
			c.waitGoroutines()
		} else {
			c.finishHandshake(nil)
			c.startKeepAlive() // Config.KeepAlive, clients only
		}
		<-c.hsDone
		return c.hsErr
	}
	select {
	case <-c.hsDone:
		return c.hsErr
	case <-ctx.Done():
		c.fail(fmt.Errorf("sshtap: handshake: %w", context.Cause(ctx)))
		c.waitGoroutines()
		<-c.hsDone
		return c.hsErr
	}
}

// runHandshake waits for the transport (version exchange, first key
// exchange, service request) and then runs user authentication.
func (c *Conn) runHandshake(ctx context.Context) error {
	select {
	case <-c.tready:
	case <-c.closing:
		return c.Err()
	case <-ctx.Done():
		return fmt.Errorf("sshtap: handshake: %w", context.Cause(ctx))
	}
	if c.isClient {
		if c.ccfg.NoAuth || c.ccfg.NoServiceRequest {
			return nil
		}
		return c.clientAuth(ctx)
	}
	return c.serverAuth(ctx)
}

// waitKeyed starts the connection if needed and waits, bounded by ctx, until
// the first key exchange completed: transport-level calls (Rekey, Ping,
// SendIgnore, SendDebug) need no more than that.
func (c *Conn) waitKeyed(ctx context.Context) error {
	c.start()
	select {
	case <-c.keyedCh:
		return nil
	case <-c.closing:
		return c.Err()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// transportIsReady is called by the transport goroutine once user
// authentication may start.
func (c *Conn) transportIsReady() {
	c.treadyOnce.Do(func() { close(c.tready) })
}

// nextAuthMsg returns the next user authentication message (a copy).
func (c *Conn) nextAuthMsg(ctx context.Context) ([]byte, error) {
	return c.authQ.pop(ctx, c.closing, c.Err)
}

// setAuthenticated records a successful user authentication.
func (c *Conn) setAuthenticated(user string, perms *Permissions) {
	c.mu.Lock()
	c.authUser, c.perms = user, perms
	c.mu.Unlock()
	c.authenticated.Store(true)
}

// Authenticated reports whether user authentication succeeded.
func (c *Conn) Authenticated() bool { return c.authenticated.Load() }

// User returns the authenticated user name ("" before authentication).
func (c *Conn) User() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authUser
}

// Permissions returns what the server's auth callback granted (server
// side), or nil.
func (c *Conn) Permissions() *Permissions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.perms
}

func (c *Conn) start() {
	c.startOnce.Do(func() {
		c.started.Store(true)
		go c.run()
		go c.writeLoop()
	})
}

// Subscribe returns a subscription to the events of the given kinds
// (LaggedEvent and ClosedEvent always come). It ends when ctx is done, when
// it is closed, or when the Conn ends. Subscribing before Handshake sees the
// handshake's events; subscribing on an ended Conn yields only its
// ClosedEvent.
func (c *Conn) Subscribe(ctx context.Context, kinds Kind) *Subscription {
	return c.hub.subscribe(ctx, kinds, c.cfg.EventBuffer)
}

// SubscribeBuffer is Subscribe with a buffer of n events instead of
// TransportConfig.EventBuffer.
func (c *Conn) SubscribeBuffer(ctx context.Context, kinds Kind, n int) *Subscription {
	return c.hub.subscribe(ctx, kinds, n)
}

// Err returns the error that ended the Conn, or nil while it is alive.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Wait blocks until the transport goroutine ends and returns why.
func (c *Conn) Wait() error {
	c.start()
	<-c.done
	<-c.wdone
	return c.Err()
}

// Close sends SSH_MSG_DISCONNECT (BY_APPLICATION) if the connection is up,
// closes the underlying stream and waits for the transport goroutine.
// Later calls return an error matching net.ErrClosed.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() { first = true })
	if !first {
		return errClosed
	}
	// Record the local close first: the peer hangs up on our DISCONNECT,
	// and the EOF our reader then sees must not become the first error.
	if c.claimError(errClosed) && c.started.Load() {
		if c.sendDisconnect(DisconnectByApplication, "closed by application") == nil {
			c.waitFlushed(time.Second)
		}
	}
	c.fail(errClosed)
	c.waitGoroutines()
	return nil
}

// Disconnect sends SSH_MSG_DISCONNECT with reason and message and closes
// the Conn. The Conn's error becomes a local *DisconnectError (which matches
// net.ErrClosed).
func (c *Conn) Disconnect(reason DisconnectReason, message string) error {
	local := &DisconnectError{Reason: reason, Message: message}
	if !c.claimError(local) {
		return c.Err()
	}
	werr := c.sendDisconnect(reason, message)
	if werr == nil {
		c.waitFlushed(time.Second)
	}
	c.fail(local)
	c.waitGoroutines()
	return werr
}

// claimError makes err the Conn's error if it has none yet and reports
// whether it did. The teardown (fail) is still to be done by the caller.
func (c *Conn) claimError(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.err = err
	return true
}

// sendDisconnect writes DISCONNECT (allowed at any time, RFC 4253 §11.1)
// and publishes the local DisconnectEvent.
func (c *Conn) sendDisconnect(reason DisconnectReason, message string) error {
	m := wire.Disconnect{Reason: uint32(reason), Message: message}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.werr
	if err == nil {
		err = c.writeLocked(m.Marshal(nil))
		c.disconnecting = true
	}
	// Published before wmu is released: the peer may hang up on our
	// DISCONNECT at once, and fail, which takes wmu before it ends the
	// subscriptions, must not get there first.
	if err == nil && c.hub.wants(KindDisconnect) {
		c.hub.publish(&DisconnectEvent{Header: now(), Reason: reason, Message: message})
	}
	return err
}

func now() Header { return Header{time.Now()} }

// waitGoroutines waits for both goroutines after fail, when the stream can
// be interrupted (a stream with neither Close nor deadlines cannot be, and
// then a goroutine stays blocked in it until it returns).
func (c *Conn) waitGoroutines() {
	if c.started.Load() && c.interruptible() {
		<-c.done
		<-c.wdone
	}
}

// waitFlushed waits up to d until everything queued was written.
func (c *Conn) waitFlushed(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	c.wmu.Lock()
	for (len(c.out) > 0 || c.writing) && c.werr == nil {
		ch := c.flushedLocked()
		c.wmu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return
		case <-c.closing:
			return
		}
		c.wmu.Lock()
	}
	c.wmu.Unlock()
}

func (c *Conn) flushedLocked() chan struct{} {
	if c.flushed == nil {
		c.flushed = make(chan struct{})
	}
	return c.flushed
}

// writeLoop is the writer goroutine: it writes what callers sealed into
// c.out, a batch per Write.
func (c *Conn) writeLoop() {
	defer close(c.wdone)
	for {
		select {
		case <-c.wake:
		case <-c.closing:
			return
		}
		c.wmu.Lock()
		buf := c.out
		c.out = c.spare[:0]
		c.writing = len(buf) > 0
		c.wmu.Unlock()
		var err error
		if len(buf) > 0 {
			var n int
			n, err = c.rw.Write(buf)
			c.bytesOut.Add(uint64(n))
		}
		c.wmu.Lock()
		c.spare = buf[:0]
		c.writing = false
		if err != nil && c.werr == nil {
			c.werr = fmt.Errorf("sshtap: write: %w", err)
		}
		if c.flushed != nil {
			close(c.flushed)
			c.flushed = nil
		}
		if len(c.out) > 0 {
			c.signalWriter()
		}
		ending := c.disconnecting
		c.wmu.Unlock()
		if err != nil {
			if !ending {
				c.fail(fmt.Errorf("sshtap: write: %w", err))
			}
			return
		}
	}
}

func (c *Conn) signalWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
func (c *Conn) interruptible() bool {
	switch c.rw.(type) {
	case io.Closer, interface{ SetReadDeadline(time.Time) error }:
		return true
	}
	return false
}

// fail records the first fatal error and tears the connection down: the
// stream is closed (or its reads interrupted), waiters are released and
// every subscription ends with a ClosedEvent carrying the error.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	pings := c.pings
	c.pings = nil
	c.mu.Unlock()

	c.wmu.Lock()
	if c.werr == nil {
		c.werr = err
	}
	r := c.kex
	c.kex = nil
	c.queued = nil
	if c.rekeyTmr != nil {
		c.rekeyTmr.Stop()
	}
	if c.flushed != nil {
		close(c.flushed)
		c.flushed = nil
	}
	c.wmu.Unlock()
	c.closingO.Do(func() { close(c.closing) })
	c.mux.fail(err)
	if r != nil {
		r.finish(err)
	}
	for _, p := range pings {
		close(p.ch)
	}
	c.rwOnce.Do(func() {
		switch rw := c.rw.(type) {
		case io.Closer:
			rw.Close()
		case interface{ SetReadDeadline(time.Time) error }:
			rw.SetReadDeadline(time.Unix(1, 0))
		}
	})
	c.finishHandshake(err)
	c.hub.close(err)
}

func (c *Conn) finishHandshake(err error) {
	c.hsOnce.Do(func() {
		c.hsErr = err
		close(c.hsDone)
	})
}

// run is the transport goroutine.
func (c *Conn) run() {
	defer close(c.done)
	err := c.versionExchange()
	if err == nil {
		err = c.readLoop()
	}
	c.wmu.Lock()
	disconnecting := c.disconnecting
	c.wmu.Unlock()
	if disconnecting && c.Err() == nil {
		// Let the DISCONNECT queued for this error reach the peer.
		c.waitFlushed(time.Second)
	}
	c.fail(err)
}

// readLoop starts the first key exchange and then reads and dispatches
// packets until the connection fails.
func (c *Conn) readLoop() error {
	c.wmu.Lock()
	_, err := c.startKexLocked(true)
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	for {
		p, seq, err := c.readPacket()
		if err != nil {
			return err
		}
		if err := c.dispatch(p, seq); err != nil {
			return err
		}
	}
}

// readPacket returns the next authentic (or policy-accepted) packet payload
// and its sequence number. The payload is valid until the next call.
func (c *Conn) readPacket() ([]byte, uint32, error) {
	for {
		if c.rend > c.rpos {
			seq := c.pr.Seq()
			p, n, err := c.pr.Next(c.rbuf[c.rpos:c.rend])
			c.rpos += n
			if err != nil {
				p, err = c.macFailure(err)
				if err != nil {
					return nil, 0, err
				}
				if p == nil { // discarded
					continue
				}
			}
			if n > 0 {
				if len(p) == 0 {
					return nil, 0, &ProtocolViolation{Msg: "empty packet payload"}
				}
				c.checkReadLimits()
				return p, seq, nil
			}
		}
		if c.rpos == c.rend {
			c.rpos, c.rend = 0, 0
		}
		need := c.pr.Need()
		if have := c.rend - c.rpos; need <= have {
			return nil, 0, fmt.Errorf("sshtap: internal error: packet reader needs %d bytes, has %d", need, have)
		}
		if c.rpos+need > len(c.rbuf) {
			c.compact(need)
		}
		if err := c.fill(); err != nil {
			return nil, 0, c.readError(err)
		}
	}
}

// compact moves the unread bytes to the front of the read buffer, growing
// it when it is smaller than need.
func (c *Conn) compact(need int) {
	if need > len(c.rbuf) {
		nb := make([]byte, need+need/4)
		copy(nb, c.rbuf[c.rpos:c.rend])
		c.rbuf = nb
	} else {
		copy(c.rbuf, c.rbuf[c.rpos:c.rend])
	}
	c.rend -= c.rpos
	c.rpos = 0
}

// fill reads once from the stream into the free end of the read buffer
// (one read moves as many packets as are ready). It returns the read error
// only when no byte came with it.
func (c *Conn) fill() error {
	n, err := c.rw.Read(c.rbuf[c.rend:])
	c.rend += n
	c.bytesIn.Add(uint64(n))
	if n > 0 {
		return nil
	}
	return err
}

func (c *Conn) readError(err error) error {
	if errors.Is(err, io.EOF) {
		if c.rend > c.rpos {
			return fmt.Errorf("sshtap: connection closed by peer in the middle of a packet: %w", io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("sshtap: connection closed by peer: %w", io.EOF)
	}
	if e := c.Err(); e != nil {
		return e // we closed it
	}
	return fmt.Errorf("sshtap: read: %w", err)
}

// macFailure applies the MAC policy to a packet error from the reader. It
// returns the payload to process (Accept), nil (Discard) or an error.
func (c *Conn) macFailure(err error) ([]byte, error) {
	var ae *packet.AuthError
	var le *packet.LengthError
	switch {
	case errors.As(err, &ae):
		mm := MACMismatch{Seq: ae.Seq, Length: ae.Length, Cipher: c.rAlgs.Cipher, MAC: c.rAlgs.MAC, Mode: ae.Mode, LengthAuthenticated: true}
		v := Disconnect
		if c.cfg.MACPolicy != nil {
			v = c.cfg.MACPolicy(mm)
		}
		if v > Accept {
			v = Disconnect
		}
		if c.hub.wants(KindMACMismatch) {
			c.hub.publish(&MACMismatchEvent{Header: now(), MACMismatch: mm, Verdict: v})
		}
		switch v {
		case Discard:
			return nil, nil
		case Accept:
			return ae.Payload, nil
		}
		c.sendDisconnect(DisconnectMACError, "message authentication code incorrect")
		return nil, &MACError{mm}
	case errors.As(err, &le) && c.rAlgs.Cipher != "":
		// Once keys are in force, a bad length is a corrupted (or
		// mis-decrypted) packet whether or not the length was encrypted.
		mm := MACMismatch{Seq: le.Seq, Length: le.Length, Cipher: c.rAlgs.Cipher, MAC: c.rAlgs.MAC, Mode: le.Mode}
		if c.hub.wants(KindMACMismatch) {
			c.hub.publish(&MACMismatchEvent{Header: now(), MACMismatch: mm, Verdict: Disconnect})
		}
		c.sendDisconnect(DisconnectMACError, "bad packet length")
		return nil, &MACError{mm}
	}
	c.sendDisconnect(DisconnectProtocolError, "corrupt packet")
	return nil, &ProtocolViolation{Msg: "corrupt packet", Err: err}
}

// checkReadLimits starts a rekey when the inbound keys have carried their
// budget (RFC 4344 §3.1 packets, §3.2 / RFC 4253 §9 bytes).
func (c *Conn) checkReadLimits() {
	if c.rLimit == 0 {
		return
	}
	if st := c.pr.Stats(); st.Bytes >= c.rLimit || st.Packets >= 1<<31 {
		c.wmu.Lock()
		if c.kex == nil && c.werr == nil {
			c.startKexLocked(false)
		}
		c.wmu.Unlock()
	}
}

// isKexPhaseMessage reports whether t may be sent while a key exchange this
// side started is in flight. RFC 4253 §7.1: after KEXINIT only transport
// layer generic messages (1 to 19, but not SERVICE_REQUEST/ACCEPT; EXT_INFO
// is held too, as OpenSSH does), algorithm negotiation (20 to 29) and key
// exchange method messages (30 to 49) may be sent.
func isKexPhaseMessage(t byte) bool {
	switch {
	case t == wire.MsgServiceRequest, t == wire.MsgServiceAccept, t == wire.MsgExtInfo:
		return false
	case t >= 1 && t <= 49:
		return true
	}
	return false
}

// maxQueued is how many sealed bytes may wait for the writer goroutine
// before writePacket waits (backpressure).
const maxQueued = 1 << 20

// holdLocked returns what to wait for while a write must be held back, or
// nil when it may go ahead: a key exchange this side started holds every
// message but transport and kex ones until our NEWKEYS (RFC 4253 §7.1), and
// more than maxQueued bytes waiting for the writer goroutine hold everything
// (backpressure). c.wmu is held.
func (c *Conn) holdLocked(kexPhaseMsg bool) chan struct{} {
	if r := c.kex; r != nil && !r.sentNewKeys && !kexPhaseMsg {
		return r.writesOpen
	}
	if len(c.out) >= maxQueued {
		return c.flushedLocked()
	}
	return nil
}

// writePacket queues payload, waiting (bounded by ctx) while a key exchange
// holds non-kex messages back or too much is queued.
func (c *Conn) writePacket(ctx context.Context, payload []byte) error {
	return c.writeUnless(ctx, payload, nil)
}

// writeUnless is writePacket with a veto: veto, if set, is checked with
// c.wmu held right before the payload is queued, and its error is returned
// instead (a channel that already sent CLOSE sends nothing more).
func (c *Conn) writeUnless(ctx context.Context, payload []byte, veto func() error) error {
	for {
		c.wmu.Lock()
		if c.werr != nil {
			err := c.werr
			c.wmu.Unlock()
			return err
		}
		if veto != nil {
			if err := veto(); err != nil {
				c.wmu.Unlock()
				return err
			}
		}
		ch := c.holdLocked(isKexPhaseMessage(payload[0]))
		if ch == nil {
			err := c.writeLocked(payload)
			c.wmu.Unlock()
			return err
		}
		c.wmu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// writeFromTransport is writePacket for the transport goroutine, which must
// never wait: not for a key exchange it runs itself (held messages are kept
// and sent right after our NEWKEYS, in order) nor for backpressure.
func (c *Conn) writeFromTransport(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if r := c.kex; r != nil && !r.sentNewKeys && !isKexPhaseMessage(payload[0]) {
		c.queued = append(c.queued, append([]byte(nil), payload...))
		return nil
	}
	return c.writeLocked(payload)
}

// writeLocked frames and seals one packet into the outbound buffer and
// wakes the writer goroutine. c.wmu is held.
func (c *Conn) writeLocked(payload []byte) error {
	if c.werr != nil {
		return c.werr
	}
	c.out = c.pw.AppendPacket(c.out, payload)
	c.signalWriter()
	if c.wLimit != 0 && c.kex == nil {
		if st := c.pw.Stats(); st.Bytes >= c.wLimit || st.Packets >= 1<<31 {
			c.startKexLocked(false)
		}
	}
	return nil
}

// Stats are a connection's counters.
type Stats struct {
	BytesRead, BytesWritten uint64 // on the underlying stream, framing included
	Rekeys                  uint64 // completed key exchanges after the first
}

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats {
	return Stats{BytesRead: c.bytesIn.Load(), BytesWritten: c.bytesOut.Load(), Rekeys: c.rekeys.Load()}
}

// SessionID returns the exchange hash of the first key exchange
// (RFC 4253 §7.2), or nil before it completed.
func (c *Conn) SessionID() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// Algorithms returns the algorithms of the last completed key exchange.
func (c *Conn) Algorithms() Algorithms {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.algs
}

// ClientVersion and ServerVersion return the identification strings without
// CR LF, once the version exchange is done.
// Before that they return "".
func (c *Conn) ClientVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.clientVersion)
}

// ServerVersion: see ClientVersion.
func (c *Conn) ServerVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.serverVersion)
}

// HostKey returns the server's host key blob (K_S) of the first key exchange.
func (c *Conn) HostKey() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hostKey
}

// IsClient reports whether this is the client side.
func (c *Conn) IsClient() bool { return c.isClient }

// RemoteAddr returns the peer's address when the stream is a net.Conn.
func (c *Conn) RemoteAddr() net.Addr {
	if nc, ok := c.rw.(net.Conn); ok {
		return nc.RemoteAddr()
	}
	return nil
}

// LocalAddr returns the local address when the stream is a net.Conn.
func (c *Conn) LocalAddr() net.Addr {
	if nc, ok := c.rw.(net.Conn); ok {
		return nc.LocalAddr()
	}
	return nil
}
