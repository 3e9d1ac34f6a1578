package sshtap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"sshtap/internal/wire"
)

// mux is a Conn's connection protocol state (RFC 4254): the channel table,
// the outstanding global requests and the built-in handlers. Its zero value
// is ready to use.
//
// Lock order: Channel.mu before mux.mu before Conn.omu (see conn.go); the
// transport goroutine never holds mux.mu while taking a Channel's lock.
type mux struct {
	mu       sync.Mutex
	chans    map[uint32]*Channel
	nextID   uint32
	err      error // the Conn's error once it ended
	handlers map[string]func(*NewChannel)
	globals  map[string]func(*Request)
	noMore   bool // server: no-more-sessions@openssh.com received

	globalSendMu sync.Mutex          // serializes SendGlobalRequest's enqueue and send
	gpending     []chan globalResult // our global requests awaiting a reply, in order
	greplies     []*Request          // the peer's want_reply global requests, in order
	gqueue       []globalDelivery    // the peer's requests waiting for their handler
	gdraining    bool                // a goroutine delivers gqueue

	pending map[*NewChannel]struct{} // the peer's opens not yet accepted or rejected
	// The peer's channels, pending or open, for TransportConfig.MaxChannels
	// and ServerConfig.MaxSessions.
	peerChans, peerSessions int
	draining                bool // a Server's Shutdown: the peer's opens are refused
}

type globalResult struct {
	ok   bool
	data []byte
	err  error
}

// maxIncomingOpens bounds the peer's channel opens waiting for a handler's
// Accept or Reject; more are refused with RESOURCE_SHORTAGE.
const maxIncomingOpens = 256

// DefaultChannelOpenTimeout is how long a peer's channel open waits for its
// handler's Accept or Reject when TransportConfig.ChannelOpenTimeout is
// zero.
const DefaultChannelOpenTimeout = 30 * time.Second

func (c *TransportConfig) channelOpenTimeout() time.Duration {
	switch {
	case c.ChannelOpenTimeout < 0:
		return 0
	case c.ChannelOpenTimeout == 0:
		return DefaultChannelOpenTimeout
	}
	return c.ChannelOpenTimeout
}

// add allocates a local id for ch and registers it.
func (m *mux) add(ch *Channel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		if ch.peerOpened {
			m.forgetPeerLocked(ch.typ, ch.conn.isClient)
		}
		return m.err
	}
	if m.chans == nil {
		m.chans = make(map[uint32]*Channel)
	}
	if len(m.chans) >= 1<<24 {
		return errors.New("sshtap: too many channels")
	}
	for {
		id := m.nextID
		m.nextID++
		if _, busy := m.chans[id]; !busy {
			ch.localID = id
			m.chans[id] = ch
			return nil
		}
	}
}

func (m *mux) remove(id uint32, ch *Channel) {
	m.mu.Lock()
	if m.chans[id] == ch {
		delete(m.chans, id)
		if ch.peerOpened {
			m.forgetPeerLocked(ch.typ, ch.conn.isClient)
		}
	}
	m.mu.Unlock()
}

// forgetPeerLocked uncounts one of the peer's channels (a rejected open or
// a channel that ended). mux.mu is held.
func (m *mux) forgetPeerLocked(typ string, isClient bool) {
	m.peerChans--
	if !isClient && typ == "session" {
		m.peerSessions--
	}
}

func (m *mux) get(id uint32) *Channel {
	m.mu.Lock()
	ch := m.chans[id]
	m.mu.Unlock()
	return ch
}

// fail ends every channel and waiting call with the Conn's error. Called
// by Conn.fail.
func (m *mux) fail(err error) {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return
	}
	m.err = err
	chans := make([]*Channel, 0, len(m.chans))
	for _, ch := range m.chans {
		chans = append(chans, ch)
	}
	m.chans = nil
	for _, p := range m.gpending {
		p <- globalResult{err: err}
	}
	m.gpending = nil
	m.greplies = nil
	opens := make([]*NewChannel, 0, len(m.pending))
	for nc := range m.pending {
		opens = append(opens, nc)
	}
	m.pending = nil
	m.mu.Unlock()
	for _, ch := range chans {
		ch.mu.Lock()
		ch.failLocked(err)
		ch.mu.Unlock()
	}
	// Undecided opens end with the Conn: their handlers see done closed,
	// Accept and Reject fail, and their timers stop.
	for _, nc := range opens {
		nc.claim()
	}
}

// registerChannelHandler makes h handle the peer's opens of channel type
// typ on this Conn, in preference to TransportConfig.ChannelHandlers (nil
// removes it). Each open runs h in its own goroutine (see runOpenHandler);
// h must call Accept or Reject before it returns.
func (c *Conn) registerChannelHandler(typ string, h func(*NewChannel)) {
	m := &c.mux
	m.mu.Lock()
	defer m.mu.Unlock()
	if h == nil {
		delete(m.handlers, typ)
		return
	}
	if m.handlers == nil {
		m.handlers = make(map[string]func(*NewChannel))
	}
	m.handlers[typ] = h
}

// builtinChannels are package-level built-in channel handlers, registered
// at init time by the other connection protocol features: for a Conn, the
// factory returns the handler to use, or nil to fall through to
// TransportConfig.ChannelHandlers.
var builtinChannels = map[string]func(c *Conn) func(*NewChannel){}

// registerBuiltinChannel registers a built-in channel handler factory (call
// it from an init function).
func registerBuiltinChannel(typ string, f func(c *Conn) func(*NewChannel)) {
	builtinChannels[typ] = f
}

// builtinChannelHandler returns the built-in handler of channel type typ
// for this Conn: one registered with registerChannelHandler, else one from
// a registerBuiltinChannel factory, else nil.
func (c *Conn) builtinChannelHandler(typ string) func(*NewChannel) {
	c.mux.mu.Lock()
	h := c.mux.handlers[typ]
	c.mux.mu.Unlock()
	if h != nil {
		return h
	}
	if f := builtinChannels[typ]; f != nil {
		return f(c)
	}
	return nil
}

// channelHandler is the handler of the peer's opens of type typ: built-in
// first, then TransportConfig.ChannelHandlers; nil when there is none.
func (c *Conn) channelHandler(typ string) func(*NewChannel) {
	if h := c.builtinChannelHandler(typ); h != nil {
		return h
	}
	return c.cfg.ChannelHandlers[typ]
}

// NewChannel is a channel the peer asked to open (SSH_MSG_CHANNEL_OPEN,
// RFC 4254 §5.1), handed to a channel handler on the handler's own
// goroutine. The handler decides it with Accept or Reject, from any
// goroutine, before it returns: an open still undecided when the handler
// returns is rejected with OpenProhibited, and one undecided after
// TransportConfig.ChannelOpenTimeout with OpenResourceShortage; when the
// Conn ends, every undecided open ends with it. Only the first decision
// counts; later Accept and Reject calls return an error.
// Until it is decided, an open holds one of the 256 slots for pending
// opens (more are rejected with OpenResourceShortage).
type NewChannel struct {
	conn      *Conn
	typ       string
	extra     []byte
	sender    uint32
	window    uint32
	maxPacket uint32
	decided   atomic.Bool
	done      chan struct{} // closed by the decision
	// timer rejects the open after ChannelOpenTimeout; set before the
	// handler starts, nil without a timeout. Its func never reads it.
	timer *time.Timer
}

// Type returns the channel type.
func (nc *NewChannel) Type() string { return nc.typ }

// ExtraData returns the channel type specific data (a copy).
func (nc *NewChannel) ExtraData() []byte { return nc.extra }

// errDecided is returned by a second Accept or Reject, and by those that
// come after the open was rejected automatically.
var errDecided = errors.New("sshtap: channel open already accepted or rejected")

// decidedErr is why a decision came too late: the Conn's error once it
// ended (which decided the open), errDecided otherwise.
func (nc *NewChannel) decidedErr() error {
	if err := nc.conn.Err(); err != nil {
		return err
	}
	return errDecided
}

// decide makes the decision, once: it frees the open's pending slot.
// It reports whether this call made it.
func (nc *NewChannel) decide() bool {
	if !nc.decided.CompareAndSwap(false, true) {
		return false
	}
	m := &nc.conn.mux
	m.mu.Lock()
	delete(m.pending, nc)
	m.mu.Unlock()
	close(nc.done)
	return true
}

// rejected uncounts an open that was decided without a channel.
func (nc *NewChannel) rejected() {
	m := &nc.conn.mux
	m.mu.Lock()
	m.forgetPeerLocked(nc.typ, nc.conn.isClient)
	m.mu.Unlock()
}

// claim is decide for Accept and Reject (called on the handler's goroutine
// or one it handed nc to, so after timer was set): it also stops the
// timer.
func (nc *NewChannel) claim() bool {
	if !nc.decide() {
		return false
	}
	if nc.timer != nil {
		nc.timer.Stop()
	}
	return true
}

// autoReject rejects the open unless it was decided (the timer's func, and
// runOpenHandler once the handler returned).
func (nc *NewChannel) autoReject(reason OpenFailureReason, message string) {
	if nc.decide() {
		nc.rejected()
		nc.conn.queue(openFailure(nc.sender, reason, message))
	}
}

// Accept confirms the channel (SSH_MSG_CHANNEL_OPEN_CONFIRMATION) and
// returns it. Requests the peer sends before HandleRequests is called are
// held for it.
func (nc *NewChannel) Accept() (*Channel, error) { return nc.accept(nil, false) }

// accept is Accept with the request handler already in place when the
// confirmation is sent (so no request is ever held), when setHandler is true.
func (nc *NewChannel) accept(h func(*Request), setHandler bool) (*Channel, error) {
	if !nc.claim() {
		return nil, nc.decidedErr()
	}
	c := nc.conn
	ch := c.newChannel(nc.typ, nc.extra)
	ch.peerOpened = true // counted since handleOpen; add or remove uncounts it
	ch.remoteID, ch.pwin, ch.pmax = nc.sender, uint64(nc.window), nc.maxPacket
	ch.st.credit = uint64(nc.window)
	ch.handler, ch.hasHandler = h, setHandler
	if err := c.mux.add(ch); err != nil {
		return nil, err
	}
	m := wire.ChannelOpenConfirm{Recipient: nc.sender, Sender: ch.localID, Window: ch.lwinSize, MaxPacket: ch.lmax}
	if err := c.writePacket(context.Background(), m.Marshal(nil)); err != nil {
		c.mux.remove(ch.localID, ch)
		return nil, err
	}
	return ch, nil
}

// Reject refuses the channel (SSH_MSG_CHANNEL_OPEN_FAILURE). It never
// waits.
func (nc *NewChannel) Reject(reason OpenFailureReason, message string) error {
	if !nc.claim() {
		return nc.decidedErr()
	}
	nc.rejected()
	return nc.conn.queue(openFailure(nc.sender, reason, message))
}

func openFailure(recipient uint32, reason OpenFailureReason, message string) []byte {
	m := wire.ChannelOpenFailure{Recipient: recipient, Reason: uint32(reason), Message: message}
	return m.Marshal(nil)
}

// OpenChannel opens a channel of type typ with the type-specific data
// extra (RFC 4254 §5.1) and waits, bounded by ctx, for the peer's answer.
// A refusal is an *OpenChannelError. It runs the handshake first if
// needed. Set the channel's request handler with HandleRequests right
// after it returns (requests arriving before are held).
func (c *Conn) OpenChannel(ctx context.Context, typ string, extra []byte) (*Channel, error) {
	return c.openChannel(ctx, typ, extra, nil, false)
}

// openChannel is OpenChannel with the request handler h installed before
// the CHANNEL_OPEN is sent, when setHandler is true.
func (c *Conn) openChannel(ctx context.Context, typ string, extra []byte, h func(*Request), setHandler bool) (*Channel, error) {
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	if !c.Authenticated() {
		return nil, ErrNotAuthenticated
	}
	ch := c.newChannel(typ, append([]byte(nil), extra...))
	ch.opening, ch.openRes = true, make(chan error, 1)
	ch.handler, ch.hasHandler = h, setHandler
	if err := c.mux.add(ch); err != nil {
		return nil, err
	}
	m := wire.ChannelOpen{Type: typ, Sender: ch.localID, Window: ch.lwinSize, MaxPacket: ch.lmax, Extra: extra}
	if err := c.writePacket(ctx, m.Marshal(nil)); err != nil {
		c.mux.remove(ch.localID, ch)
		return nil, err
	}
	select {
	case err := <-ch.openRes:
		if err != nil {
			return nil, err
		}
		return ch, nil
	case <-ctx.Done():
	}
	ch.mu.Lock()
	if ch.opening {
		// The answer will come: a confirmation is closed right away.
		ch.abandoned = true
		ch.mu.Unlock()
		return nil, context.Cause(ctx)
	}
	ch.mu.Unlock()
	if err := <-ch.openRes; err == nil {
		ch.Close()
	}
	return nil, context.Cause(ctx)
}

// handleConnection handles a connection protocol message (RFC 4254) on the
// transport goroutine. It never blocks: data is copied into the channel's
// buffer, and user handlers of new channels run in their own goroutines.
func (c *Conn) handleConnection(p []byte) error {
	switch p[0] {
	case wire.MsgChannelData:
		id, data, err := wire.ParseChannelData(p)
		if err != nil {
			return c.protocolError("bad CHANNEL_DATA", err)
		}
		return c.handleData(id, false, 0, data)
	case wire.MsgChannelExtendedData:
		id, code, data, err := wire.ParseChannelExtendedData(p)
		if err != nil {
			return c.protocolError("bad CHANNEL_EXTENDED_DATA", err)
		}
		return c.handleData(id, true, code, data)
	case wire.MsgChannelOpen:
		return c.handleOpen(p)
	case wire.MsgGlobalRequest:
		return c.handleGlobalRequest(p)
	case wire.MsgRequestSuccess, wire.MsgRequestFailure:
		return c.handleGlobalReply(p)
	}
	id, ok := wire.RecipientOf(p)
	if !ok {
		if p[0] >= wire.MsgChannelOpenConfirm && p[0] <= wire.MsgChannelFailure {
			return c.protocolError("short "+wire.MsgName(p[0]), nil)
		}
		// RFC 4253 §11.4: unknown message numbers get UNIMPLEMENTED; this
		// runs right after the packet was read, so its sequence number is
		// the reader's previous one.
		return c.unimplemented(p[0], c.pr.Seq()-1)
	}
	ch := c.mux.get(id)
	if ch == nil {
		// OpenSSH disconnects on messages for channels it does not have.
		return c.protocolError(fmt.Sprintf("%s for unknown channel %d", wire.MsgName(p[0]), id), nil)
	}
	ch.mu.Lock()
	opening := ch.opening
	ch.mu.Unlock()
	if opening != (p[0] == wire.MsgChannelOpenConfirm || p[0] == wire.MsgChannelOpenFailure) {
		return c.protocolError(fmt.Sprintf("unexpected %s for channel %d", wire.MsgName(p[0]), id), nil)
	}
	switch p[0] {
	case wire.MsgChannelOpenConfirm:
		var m wire.ChannelOpenConfirm
		if err := m.Unmarshal(p); err != nil {
			return c.protocolError("bad CHANNEL_OPEN_CONFIRMATION", err)
		}
		ch.mu.Lock()
		ch.opening = false
		ch.remoteID, ch.pwin, ch.pmax = m.Sender, uint64(m.Window), m.MaxPacket
		ch.st.credit = uint64(m.Window)
		if ch.abandoned {
			ch.localClosed = true
			ch.sendCloseLocked()
		} else {
			ch.openRes <- nil
		}
		ch.mu.Unlock()
	case wire.MsgChannelOpenFailure:
		var m wire.ChannelOpenFailure
		if err := m.Unmarshal(p); err != nil {
			return c.protocolError("bad CHANNEL_OPEN_FAILURE", err)
		}
		ch.mu.Lock()
		ch.opening = false
		ch.openRes <- &OpenChannelError{Reason: OpenFailureReason(m.Reason), Message: m.Message}
		ch.mu.Unlock()
		c.mux.remove(id, ch)
	case wire.MsgChannelWindowAdjust:
		_, n, err := wire.ParseWindowAdjust(p)
		if err != nil {
			return c.protocolError("bad CHANNEL_WINDOW_ADJUST", err)
		}
		ch.mu.Lock()
		ch.pwin += uint64(n)
		ch.st.credit += uint64(n)
		over := ch.pwin > 1<<32-1
		ch.wakeAllLocked()
		ch.mu.Unlock()
		if over {
			// RFC 4254 §5.2: "Both parties MAY send this message ... the
			// window MUST NOT be increased above 2^32 - 1 bytes."
			return c.protocolError(fmt.Sprintf("window adjust overflows channel %d's window", id), nil)
		}
	case wire.MsgChannelEOF:
		ch.mu.Lock()
		ch.remoteEOF = true
		ch.wakeAllLocked()
		ch.mu.Unlock()
	case wire.MsgChannelClose:
		ch.mu.Lock()
		ch.remoteCloseLocked()
		ch.mu.Unlock()
	case wire.MsgChannelRequest:
		return c.handleChannelRequest(ch, p)
	case wire.MsgChannelSuccess, wire.MsgChannelFailure:
		return c.handleChannelReply(ch, p[0] == wire.MsgChannelSuccess)
	}
	return nil
}

// handleData buffers channel data for the reader. RFC 4254 §5.2: the peer
// may send no more than the window we advertised; data beyond it would
// have to be buffered beyond our bound, so it is a protocol error.
func (c *Conn) handleData(id uint32, extended bool, code uint32, data []byte) error {
	ch := c.mux.get(id)
	if ch == nil {
		return c.protocolError(fmt.Sprintf("data for unknown channel %d", id), nil)
	}
	ch.mu.Lock()
	if ch.opening {
		ch.mu.Unlock()
		return c.protocolError(fmt.Sprintf("data for channel %d before its confirmation", id), nil)
	}
	n := uint32(len(data))
	if uint64(len(data)) > uint64(ch.lwin) {
		lwin := ch.lwin
		ch.mu.Unlock()
		return c.protocolError(fmt.Sprintf("channel %d: peer sent %d bytes with a window of %d", id, len(data), lwin), nil)
	}
	ch.lwin -= n
	ch.st.received += uint64(n)
	switch {
	case ch.localClosed || ch.remoteEOF || ch.remoteClosed:
		// Discarded: we closed, or the peer broke its own EOF (RFC 4254
		// §5.3: "No explicit response is sent to this message" — OpenSSH
		// ignores such data too). The window is not given back.
	case !extended:
		ch.data.push(data, int(ch.lwinSize))
		notify(ch.rnotify)
	case code == wire.ExtendedDataStderr:
		ch.ext.push(data, int(ch.lwinSize))
		notify(ch.enotify)
	default:
		// RFC 4254 §5.2: other data_type_codes are not defined; the data
		// is dropped and its window given back at once.
		ch.consumedLocked(n)
	}
	ch.st.maxBuffer = max(ch.st.maxBuffer, ch.data.n+ch.ext.n)
	ch.mu.Unlock()
	return nil
}

// handleOpen handles the peer's SSH_MSG_CHANNEL_OPEN.
func (c *Conn) handleOpen(p []byte) error {
	var m wire.ChannelOpen
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad CHANNEL_OPEN", err)
	}
	if !c.isClient && m.Type == "session" {
		c.mux.mu.Lock()
		noMore := c.mux.noMore
		c.mux.mu.Unlock()
		if noMore {
			// OpenSSH PROTOCOL §2.2: after no-more-sessions@openssh.com
			// the server refuses further session channels.
			return c.queue(openFailure(m.Sender, OpenProhibited, "no more sessions"))
		}
	}
	h := c.channelHandler(m.Type)
	if h == nil {
		// RFC 4254 §5.1: "If the recipient of the SSH_MSG_CHANNEL_OPEN
		// message does not support the specified 'channel type', it simply
		// responds with SSH_MSG_CHANNEL_OPEN_FAILURE."
		return c.queue(openFailure(m.Sender, OpenUnknownChannelType, "unknown channel type"))
	}
	mx := &c.mux
	mx.mu.Lock()
	switch {
	case mx.err != nil:
		mx.mu.Unlock()
		return nil // the Conn ended: nobody answers any more
	case len(mx.pending) >= maxIncomingOpens:
		mx.mu.Unlock()
		return c.queue(openFailure(m.Sender, OpenResourceShortage, "too many pending channel opens"))
	case mx.draining:
		mx.mu.Unlock()
		return c.queue(openFailure(m.Sender, OpenProhibited, "server shutting down"))
	case mx.peerChans >= c.cfg.maxChannels(c.isClient):
		mx.mu.Unlock()
		return c.queue(openFailure(m.Sender, OpenResourceShortage, fmt.Sprintf("too many channels (at most %d)", c.cfg.maxChannels(c.isClient))))
	}
	session := !c.isClient && m.Type == "session"
	if session && mx.peerSessions >= c.scfg.maxSessions() {
		mx.mu.Unlock()
		return c.queue(openFailure(m.Sender, OpenResourceShortage, fmt.Sprintf("too many sessions (at most %d)", c.scfg.maxSessions())))
	}
	mx.peerChans++
	if session {
		mx.peerSessions++
	}
	nc := &NewChannel{conn: c, typ: m.Type, extra: append([]byte(nil), m.Extra...), sender: m.Sender, window: m.Window, maxPacket: m.MaxPacket, done: make(chan struct{})}
	if mx.pending == nil {
		mx.pending = make(map[*NewChannel]struct{})
	}
	mx.pending[nc] = struct{}{}
	if d := c.cfg.channelOpenTimeout(); d > 0 {
		// RFC 4254 §5.1: the recipient answers every open with a
		// confirmation or a failure; one the application leaves pending
		// must not hold its slot (and the peer's opener) for ever. Set
		// under mux.mu, which fail takes before it reads it.
		nc.timer = time.AfterFunc(d, func() {
			nc.autoReject(OpenResourceShortage, "channel open not decided in time")
		})
	}
	mx.mu.Unlock()
	go c.runOpenHandler(h, nc)
	return nil
}

// runOpenHandler runs a channel handler on its own goroutine (one per
// open) and rejects the open if the handler returned without deciding it.
func (c *Conn) runOpenHandler(h func(*NewChannel), nc *NewChannel) {
	h(nc)
	if nc.claim() {
		nc.rejected()
		nc.conn.queue(openFailure(nc.sender, OpenProhibited, "channel open not handled"))
	}
}
