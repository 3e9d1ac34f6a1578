package sshtap

// The record layer of a Conn: its goroutines, its locks, the write path and
// the abort path.
//
// Goroutines a Conn owns:
//
//	transport   run: version exchange, then reads every packet, runs key
//	            exchanges and dispatches; never waits for a write (its own
//	            messages go through the queue) nor for a user callback
//	            other than the MAC policy and HostKeyCallback.
//	flusher     started on demand by queue when nobody holds the write lock;
//	            writes what was queued and ends.
//	handlers    user handlers (channel opens, channel and global requests)
//	            run off the transport goroutine, one goroutine per open and
//	            at most one draining each request queue.
//	teardown    started by abort; releases every waiter, flushes the
//	            DISCONNECT, closes the stream and ends.
//
// An idle Conn runs the transport goroutine only.
//
// Write functions (one per semantic):
//
//	writePacket  caller's goroutine: waits (cancellably) while our key
//	             exchange holds the message (RFC 4253 §7.1) and for the
//	             write lock; then seals everything queued plus this packet
//	             and writes them with one Write.
//	writeData    writePacket for channel data, framed in place (zero copy)
//	             and refused after the channel's EOF or CLOSE.
//	queue        any goroutine, the transport goroutine included: never
//	             waits and never does I/O. The payload is copied and sent by
//	             whoever holds the write lock next (or a flusher); during
//	             our key exchange, non-kex payloads are held until our
//	             NEWKEYS, in order.
//	abort        records the first fatal error (sticky), queues DISCONNECT at
//	             most once, wakes every waiter and tears the Conn down.
//
// Lock order (a lock may be taken while holding the ones before it):
//
//	Channel.reqMu, mux.globalSendMu > writeSem > omu > mu > hub.mu
//	Channel.mu > mux.mu > omu
//	Server.mu > mux.mu
//
// A Server's hooks (admit, onEnd) take Server.mu and are called with no
// Conn lock held.
//
// writeSem (the write lock) is held across I/O, and so are the two request
// locks before it (they keep a request and its place in the reply order
// together); nothing else is. Holders of Channel.mu or mux.mu only ever try
// writeSem without waiting (kick). The transport goroutine never waits for
// writeSem. omu guards the outbound queue, the key exchange round and the
// sticky error; it is never held across I/O nor across a user callback.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"sshtap/cipher"
	"sshtap/internal/wire"
	"sshtap/packet"
)

// Conn is one SSH connection, client or server, over any io.ReadWriter.
//
// One transport goroutine per Conn reads packets, runs key exchanges and
// handles transport messages inline, publishing events as it goes. Packets
// are sealed and written on the sending goroutine, one Write per call,
// serialized by one write lock; the transport goroutine's own replies are
// queued and written by the next writer. While a key exchange is in
// flight, writes of other messages wait (cancellably) until our NEWKEYS is
// out. All methods are safe for concurrent use. The first fatal error
// sticks: every later call returns it.
type Conn struct {
	rw       io.ReadWriter
	isClient bool
	cfg      *TransportConfig
	ccfg     *Config       // client only
	scfg     *ServerConfig // server only
	addr     string        // host key callback address (client)
	hub      hub

	// Read side: owned by the transport goroutine. rbuf is rsmall while
	// traffic is light and grows while reads fill it (see sizeReadBuffer).
	rbuf       []byte
	rpos, rend int
	lastRead   int  // bytes the last Read returned
	readFull   bool // the last Read filled all of rbuf's free space
	rsmall     [smallReadBuffer]byte
	pr         packet.Reader
	rz         *inflater   // decompression of the peer's packets; nil when off
	rzDelayed  bool        // zlib@openssh.com: rz starts at authentication
	authSent   atomic.Bool // server: USERAUTH_SUCCESS was sealed (set by the writer)
	// The peer's key exchanges (see peerKexAllowed).
	kexTrafficMark uint64    // trafficBesidesReads() when the last exchange ended
	kexTokens      float64   // exchanges the peer may start now
	kexTokenTime   time.Time // when kexTokens was last refilled
	rAlgs          DirectionAlgorithms
	rLimit         uint64

	// Write side, owned by the holder of writeSem (cap 1; a channel so
	// that waiting for it can be cancelled).
	writeSem  chan struct{}
	pw        packet.Writer
	wbuf      []byte    // the packets of one Write
	wLimit    uint64    // outbound bytes before a rekey; 0 before keys
	wShort    int       // consecutive short Writes (see writeOut)
	wz        *deflater // compression of our packets; nil when off
	wzDelayed bool      // zlib@openssh.com: wz starts at authentication

	// Outbound state, guarded by omu.
	omu          sync.Mutex
	err          error       // sticky first error
	werr         error       // a Write failed (see writeFailed)
	werrTimer    *time.Timer // ends the Conn writeFailGrace after werr
	discErr      error       // a Write that may have carried our DISCONNECT failed
	outq         []outPacket // waiting for the next holder of writeSem, in order
	outBytes     []byte      // the payloads of outq, back to back
	spareOutq    []outPacket // outq's other half, swapped by takeQueueLocked
	spareBytes   []byte      // outBytes's other half
	pending      atomic.Bool // outq is not empty
	held         [][]byte    // non-kex payloads queued during our key exchange
	heldBytes    int         // their total length
	kex          *kexRound   // the round in progress, nil when none
	verQueued    bool        // our identification string was queued
	rekeyTimer   *time.Timer // TransportConfig.RekeyInterval
	preAuthRekey bool        // tests only: let a server rekey before auth

	// Guarded by mu.
	mu                           sync.Mutex
	sessionID                    []byte
	clientVersion, serverVersion []byte
	hostKey                      []byte
	algs                         Algorithms
	strict                       bool
	peerExtInfoC                 bool // server: the client sent ext-info-c
	peerPing                     bool // the peer announced ping@openssh.com
	peerSigAlg                   []string
	pings                        []*pendingPing
	pingSeq                      uint64
	authUser                     string
	perms                        *Permissions
	keepAliveStarted             bool
	keepAlive                    *keepAlive

	// Set by a Server (under omu) before the Conn starts: admit is asked
	// before USERAUTH_SUCCESS (an error refuses the client), onEnd is
	// called when the Conn ends, before its stream is closed (unless it
	// ended before onEnd was set). Both run with no Conn lock held.
	admit func() *DisconnectError
	onEnd func()

	graceTimer    *time.Timer   // server: LoginGraceTime, from ServerConn; set once, under omu
	loginDecided  atomic.Uint32 // loginPending, then loginDone or loginExpired
	authQueue     msgQueue      // auth messages for the handshake runner
	authenticated atomic.Bool   // user authentication succeeded
	keyed         atomic.Bool   // the first key exchange completed
	authReady     chan struct{} // closed when user authentication may start
	authReadyOnce sync.Once
	keyedCh       chan struct{} // closed when the first key exchange completed
	runner        atomic.Bool   // a Handshake call runs the handshake
	inCallback    atomic.Int32  // the transport goroutine is in a user callback

	sess sessionState // session requests made (session.go)
	mux  mux          // connection protocol: channels and global requests (mux.go)
	fwd  forwardState // port forwarding listeners (forward.go)

	startOnce   sync.Once
	started     atomic.Bool
	hsOnce      sync.Once
	hsDone      chan struct{} // closed when the handshake completed or failed
	hsErr       error
	done        chan struct{} // closed when the transport goroutine exited
	closing     chan struct{} // closed by abort
	streamDone  chan struct{} // closed when the teardown ended
	closeRWOnce sync.Once
	closeOnce   sync.Once

	bytesIn, bytesOut     atomic.Uint64
	packetsIn, packetsOut atomic.Uint64
	rekeys                atomic.Uint64
	macVerdicts           [MACAccept + 1]atomic.Uint64 // MAC failures by verdict
	authFailures          atomic.Uint64
	lastPingRTT           atomic.Int64     // nanoseconds; 0 before the first pong
	zOut, zIn             [2]atomic.Uint64 // compression: payload bytes before, after
}

// outPacket is one queued payload (or, raw, the identification string),
// stored in Conn.outBytes.
type outPacket struct {
	off, n int
	raw    bool
	round  *kexRound     // our KEXINIT: record its sequence number
	sealer cipher.Sealer // our NEWKEYS: switch to it once sealed
	strict bool          // with sealer: reset the sequence number
	comp   string        // with sealer: the compression method from then on
}

// kexRound is one key exchange, from the first KEXINIT to the peer's NEWKEYS.
type kexRound struct {
	initial     bool
	remoteFirst bool
	start       time.Time
	ourInit     []byte        // our KEXINIT payload
	ourInitSeq  atomic.Uint64 // 1 + its outbound sequence number, once sealed
	ourMsg      *wire.KexInit
	sentNewKeys bool          // our NEWKEYS is queued (omu)
	peerKexInit bool          // the peer's KEXINIT arrived: the exchange runs (omu)
	writesOpen  chan struct{} // closed (under omu) with sentNewKeys or on abort
	openClosed  bool          // writesOpen is closed (omu)
	finished    chan struct{} // closed when the round completed (or on failure)
	once        sync.Once
	err         error
}

// openWritesLocked releases the writes this round held. omu is held.
func (r *kexRound) openWritesLocked() {
	if !r.openClosed {
		r.openClosed = true
		close(r.writesOpen)
	}
}

func (r *kexRound) finish(err error) {
	r.once.Do(func() {
		r.err = err
		close(r.finished)
	})
}

type pendingPing struct {
	data uint64
	sent time.Time
	ch   chan time.Duration
}

// Read buffer sizes: an idle or interactive connection reads into
// smallReadBuffer bytes kept inside the Conn; reads that fill the buffer
// double it, up to maxReadBuffer (one read then moves several full-size
// packets); once the buffer is drained after a short read, it goes back to
// the small one.
const (
	smallReadBuffer = 512
	maxReadBuffer   = 128 << 10
)

// maxIdleBuffer is the largest write buffer or outbound queue half kept
// once traffic got light.
const maxIdleBuffer = 1 << 10

func newConn(rw io.ReadWriter, cfg *TransportConfig) *Conn {
	c := &Conn{
		rw:         rw,
		cfg:        cfg,
		writeSem:   make(chan struct{}, 1),
		hsDone:     make(chan struct{}),
		done:       make(chan struct{}),
		authReady:  make(chan struct{}),
		keyedCh:    make(chan struct{}),
		closing:    make(chan struct{}),
		streamDone: make(chan struct{}),
	}
	c.rbuf = c.rsmall[:]
	c.pr.MaxPacket = cfg.maxPacket()
	return c
}

// ClientConn returns a client Conn over rw without doing any I/O; Handshake (or
// the first call that needs it) runs the version exchange, the key exchange
// and the "ssh-userauth" service request. Subscribing between ClientConn and
// Handshake sees every event of the handshake. If rw is an io.Closer it is
// closed with the Conn; if it has SetReadDeadline, that is used to interrupt
// a stalled read when it cannot be closed.
func ClientConn(rw io.ReadWriter, cfg *Config) *Conn {
	if cfg == nil {
		cfg = &Config{}
	}
	c := newConn(rw, &cfg.TransportConfig)
	c.isClient, c.ccfg, c.addr = true, cfg, cfg.Addr
	return c
}

// ServerConn returns a server Conn over rw without doing any I/O; see
// ClientConn. ServerConfig.LoginGraceTime counts from this call: a client
// that has not authenticated by then is disconnected, whatever stage it
// stalled in, and the Conn's error is a *LoginGraceError.
func ServerConn(rw io.ReadWriter, cfg *ServerConfig) *Conn {
	if cfg == nil {
		cfg = &ServerConfig{}
	}
	c := newConn(rw, &cfg.TransportConfig)
	c.scfg = cfg
	// One deadline from here to authenticated: version exchange, first
	// key exchange and user authentication. Set under omu, where abort
	// reads it: the timer may fire before this function returns.
	c.omu.Lock()
	c.graceTimer = time.AfterFunc(cfg.loginGraceTime(), c.loginGraceExpired)
	c.omu.Unlock()
	return c
}

// NewClientConn runs the client side of the handshake over rw, bounded by
// ctx, and returns the Conn once the server accepted the "ssh-userauth"
// service. On failure rw is closed (if it is an io.Closer).
func NewClientConn(ctx context.Context, rw io.ReadWriter, cfg *Config) (*Conn, error) {
	c := ClientConn(rw, cfg)
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// NewServerConn runs the server side of the handshake over rw, bounded by
// ctx, and returns the Conn once the first key exchange completed.
func NewServerConn(ctx context.Context, rw io.ReadWriter, cfg *ServerConfig) (*Conn, error) {
	c := ServerConn(rw, cfg)
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
	c := ClientConn(nc, cfg)
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
			c.abort(err, 0, "")
			c.waitEnded()
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
		c.abort(fmt.Errorf("sshtap: handshake: %w", context.Cause(ctx)), 0, "")
		c.waitEnded()
		<-c.hsDone
		return c.hsErr
	}
}

// runHandshake waits for the transport (version exchange, first key
// exchange, service request) and then runs user authentication.
func (c *Conn) runHandshake(ctx context.Context) error {
	select {
	case <-c.authReady:
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

// setAuthReady is called by the transport goroutine once user
// authentication may start.
func (c *Conn) setAuthReady() {
	c.authReadyOnce.Do(func() { close(c.authReady) })
}

// nextAuthMsg returns the next user authentication message (a copy).
func (c *Conn) nextAuthMsg(ctx context.Context) ([]byte, error) {
	return c.authQueue.pop(ctx, c.closing, c.Err)
}

// setAuthenticated records a successful user authentication.
// On a server it fails (false) when the login grace time ran out first: of
// the two, whichever comes first wins.
func (c *Conn) setAuthenticated(user string, perms *Permissions) bool {
	if !c.loginDecided.CompareAndSwap(loginPending, loginDone) {
		return false
	}
	c.omu.Lock()
	if c.graceTimer != nil {
		c.graceTimer.Stop()
	}
	c.omu.Unlock()
	c.mu.Lock()
	c.authUser, c.perms = user, perms
	c.mu.Unlock()
	c.authenticated.Store(true)
	return true
}

// loginDecided values: the login grace time and a successful
// authentication race for it.
const (
	loginPending = iota
	loginDone
	loginExpired
)

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
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.err
}

// Wait blocks until the transport goroutine ends and returns why.
func (c *Conn) Wait() error {
	c.start()
	<-c.done
	if c.interruptible() {
		<-c.streamDone
	}
	return c.Err()
}

// Close sends SSH_MSG_DISCONNECT (BY_APPLICATION) if the connection is up,
// closes the underlying stream and waits for the transport goroutine. It
// may be called from any goroutine, user callbacks included. Later calls
// return an error matching net.ErrClosed.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() { first = true })
	if !first {
		return errClosed
	}
	c.abort(errClosed, DisconnectByApplication, "closed by application")
	c.waitEnded()
	return nil
}

// Disconnect sends SSH_MSG_DISCONNECT with reason and message and closes
// the Conn. The Conn's error becomes a local *DisconnectError (which matches
// net.ErrClosed). It returns the error writing the DISCONNECT failed with,
// or the Conn's error when it had ended already.
func (c *Conn) Disconnect(reason DisconnectReason, message string) error {
	local := &DisconnectError{Reason: reason, Message: message}
	if err := c.abort(local, reason, message); err != local {
		return err
	}
	c.waitEnded()
	if c.interruptible() {
		c.omu.Lock()
		defer c.omu.Unlock()
		return c.discErr
	}
	return nil
}

func now() Header { return Header{time.Now()} }

// waitEnded waits, after abort, for the teardown and for the transport
// goroutine, when the stream can be interrupted (a stream with neither
// Close nor deadlines cannot be, and then a goroutine stays blocked in it
// until it returns). It does not wait for a transport goroutine that is
// inside a user callback: the callback may be the caller.
func (c *Conn) waitEnded() {
	if !c.interruptible() {
		return
	}
	<-c.streamDone
	if c.started.Load() && c.inCallback.Load() == 0 {
		<-c.done
	}
}

func (c *Conn) interruptible() bool {
	switch c.rw.(type) {
	case io.Closer, interface{ SetReadDeadline(time.Time) error }:
		return true
	}
	return false
}

// abort is the one way a Conn ends. It records err as the Conn's error
// unless one is recorded already (the first error sticks, and abort then
// returns it). When reason is not zero and our identification string went
// out, it queues SSH_MSG_DISCONNECT with reason and msg (RFC 4253 §11.1:
// "This message causes immediate termination of the connection.") and
// publishes the local DisconnectEvent. Every waiter wakes at once; a
// teardown goroutine then fails the channels and pending calls, ends every
// subscription with a ClosedEvent, writes what is queued (within a second)
// and closes the stream. abort never waits, never takes a Channel's or the
// mux's lock, and may be called from any goroutine holding any lock but
// omu, mu or the hub's.
func (c *Conn) abort(err error, reason DisconnectReason, msg string) error {
	c.omu.Lock()
	if c.err != nil {
		err = c.err
		c.omu.Unlock()
		return err
	}
	c.err = err
	sendDisconnect := reason != 0 && c.verQueued
	if sendDisconnect {
		m := wire.Disconnect{Reason: uint32(reason), Message: msg}
		c.pushLocked(m.Marshal(nil), outPacket{})
	}
	r := c.kex
	c.kex = nil
	c.held, c.heldBytes = nil, 0
	if r != nil {
		r.openWritesLocked()
	}
	if c.rekeyTimer != nil {
		c.rekeyTimer.Stop()
	}
	if c.werrTimer != nil {
		c.werrTimer.Stop()
	}
	if c.graceTimer != nil {
		c.graceTimer.Stop()
	}
	close(c.closing)
	c.omu.Unlock()
	if sendDisconnect && c.hub.wants(KindDisconnect) {
		c.hub.publish(&DisconnectEvent{Header: now(), Reason: reason, Message: msg})
	}
	go c.teardown(err, r)
	return err
}

// teardown is abort's second half, on its own goroutine.
func (c *Conn) teardown(err error, r *kexRound) {
	defer close(c.streamDone)
	c.omu.Lock()
	onEnd := c.onEnd
	c.omu.Unlock()
	if onEnd != nil {
		onEnd()
	}
	c.mux.fail(err)
	if r != nil {
		r.finish(err)
	}
	c.mu.Lock()
	pings := c.pings
	c.pings = nil
	ka := c.keepAlive
	c.mu.Unlock()
	for _, p := range pings {
		close(p.ch)
	}
	if ka != nil {
		ka.stop()
	}
	c.finishHandshake(err)
	c.hub.close(err)
	c.fwd.closeAll()

	// Take the write lock, so that a write in progress (which may carry
	// the DISCONNECT) ends before the stream is closed, and write what is
	// still queued, unless the stream is stuck: a Write blocked on a peer
	// that does not read ends when the guard closes the stream.
	guard := time.AfterFunc(time.Second, c.closeRW)
	c.writeSem <- struct{}{}
	if c.pending.Load() {
		q, b := c.takeQueue()
		c.sealQueue(q, b)
		if len(c.wbuf) > 0 {
			n, werr := c.rw.Write(c.wbuf)
			c.bytesOut.Add(uint64(n))
			c.wbuf = c.wbuf[:0]
			if werr != nil {
				c.omu.Lock()
				c.discErr = werr
				c.omu.Unlock()
			}
		}
	}
	<-c.writeSem
	guard.Stop()
	c.closeRW()
}

// closeRW closes the stream, or interrupts its reads when it has deadlines
// but no Close.
func (c *Conn) closeRW() {
	c.closeRWOnce.Do(func() {
		switch rw := c.rw.(type) {
		case io.Closer:
			rw.Close()
		case interface{ SetReadDeadline(time.Time) error }:
			rw.SetReadDeadline(time.Unix(1, 0))
			if w, ok := rw.(interface{ SetWriteDeadline(time.Time) error }); ok {
				w.SetWriteDeadline(time.Unix(1, 0))
			}
		}
	})
}

func (c *Conn) finishHandshake(err error) {
	c.hsOnce.Do(func() {
		c.hsErr = err
		close(c.hsDone)
	})
}

// callback runs f, a user callback, on the transport goroutine, marking it
// so that a Close from inside f does not wait for the transport goroutine.
func (c *Conn) callback(f func()) {
	c.inCallback.Add(1)
	defer c.inCallback.Add(-1)
	f()
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

// holdLocked returns what to wait for while a message of type t must be
// held back, or nil when it may go now: a key exchange holds every message
// but transport and kex ones until our NEWKEYS (RFC 4253 §7.1). omu is held.
func (c *Conn) holdLocked(t byte) chan struct{} {
	if r := c.kex; r != nil && !r.sentNewKeys && !isKexPhaseMessage(t) {
		return r.writesOpen
	}
	return nil
}

// pushLocked appends payload (copied) to the queue. omu is held.
func (c *Conn) pushLocked(payload []byte, p outPacket) {
	p.off, p.n = len(c.outBytes), len(payload)
	c.outBytes = append(c.outBytes, payload...)
	c.outq = append(c.outq, p)
	c.pending.Store(true)
}

// queue sends payload without waiting, from any goroutine (see the table
// at the top of this file). It fails only once the Conn has failed.
func (c *Conn) queue(payload []byte) error {
	c.omu.Lock()
	err := c.queueLocked(payload)
	c.omu.Unlock()
	if err == errQueueFull {
		return c.queueOverflow()
	}
	c.kick()
	return err
}

// maxQueuedBytes bounds the messages queued for the peer (replies,
// confirmations, window adjustments, those held during our key exchange):
// they pile up only when the peer keeps sending requests and does not
// read what we answer.
const maxQueuedBytes = 1 << 20

// queueOverhead is what a queued message costs beyond its payload (its
// queue entry, the packet framing it gets), so that a flood of tiny replies
// is bounded too.
const queueOverhead = 64

// errQueueFull is queueLocked's answer past maxQueuedBytes; the caller
// ends the Conn with queueOverflow once omu is released.
var errQueueFull = errors.New("sshtap: outbound queue full")

func (c *Conn) queueOverflow() error {
	msg := fmt.Sprintf("the peer does not read our replies: more than %d bytes queued", maxQueuedBytes)
	return c.abort(&ProtocolViolation{Msg: msg}, DisconnectProtocolError, msg)
}

// queueLocked is queue's first half; the caller kicks after unlocking.
// omu is held.
func (c *Conn) queueLocked(payload []byte) error {
	if err := c.errLocked(); err != nil {
		return err
	}
	if len(c.outBytes)+c.heldBytes+len(payload)+queueOverhead*(len(c.outq)+len(c.held)+1) > maxQueuedBytes {
		return errQueueFull
	}
	if c.holdLocked(payload[0]) != nil {
		c.held = append(c.held, append([]byte(nil), payload...))
		c.heldBytes += len(payload)
		return nil
	}
	c.pushLocked(payload, outPacket{})
	return nil
}

// kick makes sure what is queued gets written without the caller doing I/O:
// if nobody holds the write lock, a flusher goroutine takes it over;
// otherwise its holder writes the queue when it lets go (release).
func (c *Conn) kick() {
	if !c.pending.Load() {
		return
	}
	select {
	case c.writeSem <- struct{}{}:
		go c.flushAndRelease()
	default:
	}
}

// flushAndRelease writes the queue with the write lock held, then releases
// it (the flusher goroutine).
func (c *Conn) flushAndRelease() {
	err := c.flushLocked()
	c.release()
	if err != nil {
		c.writeFailed(err)
	}
}

// release lets go of the write lock and, if something was queued meanwhile
// (by a goroutine that found the lock taken and so relied on us), writes
// it: whoever holds the lock last looks at the queue after letting go.
func (c *Conn) release() {
	<-c.writeSem
	for c.pending.Load() {
		select {
		case c.writeSem <- struct{}{}:
		default:
			return // the new holder will look
		}
		err := c.flushLocked()
		<-c.writeSem
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// takeQueue takes the queue over (omu is taken).
func (c *Conn) takeQueue() ([]outPacket, []byte) {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.takeQueueLocked()
}

// takeQueueLocked swaps the queue with its spare half and returns what was
// queued. The caller holds writeSem and hands the halves back with
// returnQueue. omu is held.
func (c *Conn) takeQueueLocked() ([]outPacket, []byte) {
	if len(c.outq) == 0 {
		return nil, nil
	}
	q, b := c.outq, c.outBytes
	c.outq, c.outBytes = c.spareOutq[:0], c.spareBytes[:0]
	c.spareOutq, c.spareBytes = nil, nil
	c.pending.Store(false)
	return q, b
}

// sealQueue seals queued packets into c.wbuf, switching keys after our
// NEWKEYS (RFC 4253 §7.3: "All messages sent after this message MUST use
// the new keys and algorithms."). writeSem is held.
func (c *Conn) sealQueue(q []outPacket, b []byte) {
	if len(q) == 0 {
		return
	}
	for i := range q {
		p := &q[i]
		payload := b[p.off : p.off+p.n]
		if p.raw {
			c.wbuf = append(c.wbuf, payload...)
			continue
		}
		if p.round != nil {
			p.round.ourInitSeq.Store(uint64(c.pw.Seq()) + 1)
		}
		c.appendPacket(payload)
		if p.sealer != nil {
			c.pw.SetSealer(p.sealer)
			c.setWriteCompression(p.comp)
			if p.strict {
				c.pw.ResetSeq() // strict kex: reset after each NEWKEYS sent
			}
			c.wLimit = c.cfg.rekeyBytes()
		}
		p.round, p.sealer = nil, nil
	}
	c.omu.Lock()
	if c.spareOutq == nil && cap(b) <= maxIdleBuffer {
		// A half that grew for a burst (a key exchange) is dropped.
		c.spareOutq, c.spareBytes = q[:0], b[:0]
	}
	c.omu.Unlock()
}

// flushLocked writes the queue. writeSem is held.
func (c *Conn) flushLocked() error {
	q, b := c.takeQueue()
	c.sealQueue(q, b)
	c.checkWriteLimit()
	return c.writeOut()
}

// checkWriteLimit starts a rekey when the outbound keys have carried their
// budget (RFC 4344 §3.1 packets, §3.2 / RFC 4253 §9 bytes), sealing our
// KEXINIT right away. writeSem is held.
func (c *Conn) checkWriteLimit() {
	if c.wLimit == 0 {
		return
	}
	if st := c.pw.Stats(); st.Bytes < c.wLimit && st.Packets < 1<<31 {
		return
	}
	c.omu.Lock()
	if c.kex == nil && c.err == nil {
		c.beginKexLocked(false, false)
	}
	q, b := c.takeQueueLocked()
	c.omu.Unlock()
	c.sealQueue(q, b)
}

// writeOut writes c.wbuf with one Write. writeSem is held.
func (c *Conn) writeOut() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	n, err := c.rw.Write(c.wbuf)
	c.bytesOut.Add(uint64(n))
	c.wbuf = c.wbuf[:0]
	if n >= maxIdleBuffer/2 {
		c.wShort = 0
	} else if c.wShort++; c.wShort >= 2 && cap(c.wbuf) > maxIdleBuffer {
		// Short writes in a row: traffic got light, so a buffer that
		// grew for long ones goes (one short write is no sign: window
		// adjustments and replies come between data packets).
		c.wbuf = nil
	}
	if err != nil {
		return fmt.Errorf("sshtap: write: %w", err)
	}
	return nil
}

// writePacket sends payload on the caller's goroutine, waiting, bounded by
// ctx, while a key exchange holds it back and for the write lock.
func (c *Conn) writePacket(ctx context.Context, payload []byte) error {
	err := c.write(ctx.Done(), nil, payload, nil, 0, 0, 0)
	if err == errCancelled {
		return context.Cause(ctx)
	}
	return err
}

// writeChannelMsg is writePacket for a channel message (a request): it is
// refused once ch sent CLOSE (RFC 4254 §5.3: nothing may follow it).
func (c *Conn) writeChannelMsg(ctx context.Context, ch *Channel, payload []byte) error {
	err := c.write(ctx.Done(), ch, payload, nil, 0, 0, 0)
	if err == errCancelled {
		return context.Cause(ctx)
	}
	return err
}

// writeData sends SSH_MSG_CHANNEL_DATA (code 0) or
// SSH_MSG_CHANNEL_EXTENDED_DATA (code > 0) for ch, framed straight into the
// write buffer as packets of at most maxPacket data bytes, all written
// with one Write: data is copied once and nothing is allocated. Nothing is
// framed once ch sent EOF or CLOSE (checked under omu, which orders it with
// those messages). cancel (a deadline) aborts waiting with
// os.ErrDeadlineExceeded; ch's Close with ErrChannelClosed. The caller is
// responsible for the window.
func (c *Conn) writeData(ch *Channel, code uint32, data []byte, maxPacket int, cancel <-chan struct{}) error {
	err := c.write(cancel, ch, nil, data, ch.remoteID, code, maxPacket)
	if err == errCancelled {
		return os.ErrDeadlineExceeded
	}
	return err
}

// write is writePacket, writeChannelMsg and writeData: payload, or the
// data of channel data messages for recipient when payload is nil.
func (c *Conn) write(cancel <-chan struct{}, ch *Channel, payload, data []byte, recipient, code uint32, maxPacket int) error {
	t := byte(wire.MsgChannelData)
	if payload != nil {
		t = payload[0]
	}
	var closed chan struct{} // a channel's Close ends the wait
	if ch != nil {
		closed = ch.closed
	}
	for {
		c.omu.Lock()
		err := c.errLocked()
		wait := c.holdLocked(t)
		c.omu.Unlock()
		if err != nil {
			return err
		}
		if wait != nil {
			if err := c.waitFor(wait, cancel, closed); err != nil {
				return err
			}
			continue
		}
		if err := c.acquire(cancel, closed); err != nil {
			return err
		}
		c.omu.Lock()
		err = c.errLocked()
		if err == nil && ch != nil {
			err = c.vetoLocked(ch, payload == nil)
		}
		wait = c.holdLocked(t)
		q, b := c.takeQueueLocked()
		c.omu.Unlock()
		c.sealQueue(q, b)
		if err == nil && wait == nil {
			if payload != nil {
				c.appendPacket(payload)
			} else {
				c.appendData(recipient, code, data, maxPacket)
			}
			c.checkWriteLimit()
		}
		werr := c.writeOut()
		c.release()
		if werr != nil {
			return c.writeFailed(werr)
		}
		if err != nil {
			return err
		}
		if wait == nil {
			return nil
		}
	}
}

// writeFailed records a failed Write. Writes fail from now on, but the
// Conn's error is left to the transport goroutine for a moment: a write
// usually fails because the peer hung up, and what it read last (say, the
// peer's DISCONNECT) says why. If the transport goroutine has not ended
// the Conn within writeFailGrace (a stream whose reads go on), the write
// error does.
func (c *Conn) writeFailed(err error) error {
	c.omu.Lock()
	if c.err != nil {
		// The Conn ended first: this Write may have carried its DISCONNECT.
		if c.discErr == nil {
			c.discErr = err
		}
		err = c.err
		c.omu.Unlock()
		return err
	}
	if c.werr == nil {
		c.werr = err
		c.werrTimer = time.AfterFunc(writeFailGrace, func() { c.abort(err, 0, "") })
	}
	c.omu.Unlock()
	return err
}

// writeFailGrace is how long writeFailed leaves the transport goroutine to
// end the Conn.
const writeFailGrace = time.Second

// errLocked is the error writes fail with, or nil. omu is held.
func (c *Conn) errLocked() error {
	if c.err != nil {
		return c.err
	}
	return c.werr
}

// errCancelled is write's result when cancel fired; the callers map it to
// their context's cause or os.ErrDeadlineExceeded.
var errCancelled = fmt.Errorf("sshtap: write cancelled")

// waitFor waits for wait, or returns why it cannot.
func (c *Conn) waitFor(wait, cancel <-chan struct{}, closed chan struct{}) error {
	select {
	case <-wait:
		return nil
	default:
	}
	return c.waitOr(wait, nil, cancel, closed)
}

// acquire takes the write lock, or returns why it cannot.
func (c *Conn) acquire(cancel <-chan struct{}, closed chan struct{}) error {
	select {
	case c.writeSem <- struct{}{}:
		return nil
	default:
	}
	return c.waitOr(nil, c.writeSem, cancel, closed)
}

// waitOr waits until wait is closed or a slot of sem is taken (one of the
// two is nil), or returns why it cannot: cancel (errCancelled), the
// channel's Close (closed) or the Conn's end.
func (c *Conn) waitOr(wait <-chan struct{}, sem chan<- struct{}, cancel <-chan struct{}, closed chan struct{}) error {
	select {
	case <-wait:
		return nil
	case sem <- struct{}{}:
		return nil
	case <-cancel:
		return errCancelled
	case <-closed:
		return ErrChannelClosed
	case <-c.closing:
		return c.Err()
	}
}

// vetoLocked says why nothing (data, if data) may be sent on ch any more,
// or nil. omu is held.
func (c *Conn) vetoLocked(ch *Channel, data bool) error {
	if ch.sentClose {
		return ErrChannelClosed
	}
	if data && ch.sentEOF {
		return ErrWriteClosed
	}
	return nil
}

// appendData frames channel data messages into c.wbuf, data in pieces
// of at most maxPacket bytes: each payload is built in place behind room
// for the packet header and sealed where it lies. writeSem is held.
func (c *Conn) appendData(recipient, code uint32, data []byte, maxPacket int) {
	hl := wire.ChannelDataHeaderLen
	if code != 0 {
		hl = wire.ChannelExtendedDataHeaderLen
	}
	packets := max(1, (len(data)+maxPacket-1)/maxPacket)
	start := len(c.wbuf)
	need := packets*(5+hl+c.pw.MaxOverhead()) + len(data)
	if cap(c.wbuf)-start < need {
		nb := make([]byte, start, start+need)
		copy(nb, c.wbuf)
		c.wbuf = nb
	}
	for {
		chunk := data[:min(len(data), maxPacket)]
		data = data[len(chunk):]
		start := len(c.wbuf)
		p := c.wbuf[start+5 : start+5 : cap(c.wbuf)]
		if code == 0 {
			p = wire.AppendChannelDataHeader(p, recipient, len(chunk))
		} else {
			p = wire.AppendChannelExtendedDataHeader(p, recipient, code, len(chunk))
		}
		p = append(p, chunk...)
		c.appendPacket(p)
		if len(data) == 0 {
			return
		}
	}
}

// queueChannelCtl queues EOF or CLOSE for ch once, setting *flag
// (ch.sentEOF or ch.sentClose) under omu so that data writers see it before
// framing anything after it. ch.mu is held; it never waits.
func (c *Conn) queueChannelCtl(ch *Channel, payload []byte, flag *bool) error {
	c.omu.Lock()
	var err error
	if !*flag && !ch.sentClose {
		*flag = true
		err = c.queueLocked(payload)
	}
	c.omu.Unlock()
	if err == errQueueFull {
		return c.queueOverflow()
	}
	c.kick()
	return err
}

// Stats are a connection's counters and gauges, a snapshot.
type Stats struct {
	BytesRead, BytesWritten uint64 // on the underlying stream, framing included
	// PacketsRead counts the binary packets read, those a MAC policy
	// discarded or accepted included; PacketsWritten those sealed for
	// writing (a packet sealed as the Conn ends may never reach the peer).
	PacketsRead, PacketsWritten uint64
	Rekeys                      uint64 // completed key exchanges after the first
	// MACFailures counts the packets that failed authentication, by the
	// MAC policy's verdict (index MACDisconnect, MACDiscard, MACAccept).
	MACFailures [3]uint64
	// AuthFailures counts failed user authentication requests of a method
	// other than "none" (a server's refusals, or a client's refused
	// attempts).
	AuthFailures uint64
	// OpenChannels counts the channels in the Conn's table now: either
	// side's, our opens waiting for the answer and channels waiting for
	// the peer's CLOSE included, the peer's undecided opens not.
	OpenChannels int
	LastPingRTT  time.Duration // the last Ping round trip; 0 before one
	// Payload bytes before and after compression, each way, while
	// compression is on (the ratio is Uncompressed/Compressed; all 0 when
	// it never was).
	UncompressedOut, CompressedOut uint64
	UncompressedIn, CompressedIn   uint64
}

// Stats returns a snapshot of the connection's counters. It is cheap
// (atomic loads and one lock) and safe to call from any goroutine, at any
// time, also after the Conn ended.
func (c *Conn) Stats() Stats {
	st := Stats{
		BytesRead: c.bytesIn.Load(), BytesWritten: c.bytesOut.Load(),
		PacketsRead: c.packetsIn.Load(), PacketsWritten: c.packetsOut.Load(),
		Rekeys: c.rekeys.Load(), AuthFailures: c.authFailures.Load(),
		LastPingRTT: time.Duration(c.lastPingRTT.Load()),
	}
	for i := range st.MACFailures {
		st.MACFailures[i] = c.macVerdicts[i].Load()
	}
	st.UncompressedOut, st.CompressedOut = c.zOut[0].Load(), c.zOut[1].Load()
	st.UncompressedIn, st.CompressedIn = c.zIn[0].Load(), c.zIn[1].Load()
	c.mux.mu.Lock()
	st.OpenChannels = len(c.mux.chans)
	c.mux.mu.Unlock()
	return st
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
