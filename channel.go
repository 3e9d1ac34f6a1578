package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"sshtap/internal/wire"
)

// Channel errors.
var (
	// ErrChannelClosed is returned by operations on a channel closed with
	// Close. It matches net.ErrClosed.
	ErrChannelClosed = fmt.Errorf("sshtap: channel closed: %w", net.ErrClosed)
	// ErrWriteClosed is returned by writes after CloseWrite (RFC 4254
	// §5.3: "No explicit response is sent to this message. However, the
	// application may send EOF to whatever is at the other end of the
	// channel."; after sending EOF no more data may be sent).
	ErrWriteClosed = errors.New("sshtap: channel: write after CloseWrite")
	// ErrNotAuthenticated is returned by connection protocol calls on a
	// Conn whose user authentication did not succeed (Config.NoAuth).
	ErrNotAuthenticated = errors.New("sshtap: connection protocol needs an authenticated connection")
	// ErrAlreadyReplied is returned by a second Request.Reply.
	ErrAlreadyReplied = errors.New("sshtap: request already replied to")

	errZeroMaxPacket = errors.New("sshtap: channel: the peer's maximum packet size is 0")
)

// OpenFailureReason is the reason code of SSH_MSG_CHANNEL_OPEN_FAILURE
// (RFC 4254 §5.1, RFC 4250 §4.3).
type OpenFailureReason uint32

// Channel open failure reasons, RFC 4254 §5.1.
const (
	OpenProhibited         OpenFailureReason = 1 // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
	OpenConnectFailed      OpenFailureReason = 2 // SSH_OPEN_CONNECT_FAILED
	OpenUnknownChannelType OpenFailureReason = 3 // SSH_OPEN_UNKNOWN_CHANNEL_TYPE
	OpenResourceShortage   OpenFailureReason = 4 // SSH_OPEN_RESOURCE_SHORTAGE
)

// String returns the RFC 4250 name without the SSH_OPEN_ prefix.
func (r OpenFailureReason) String() string {
	switch r {
	case OpenProhibited:
		return "ADMINISTRATIVELY_PROHIBITED"
	case OpenConnectFailed:
		return "CONNECT_FAILED"
	case OpenUnknownChannelType:
		return "UNKNOWN_CHANNEL_TYPE"
	case OpenResourceShortage:
		return "RESOURCE_SHORTAGE"
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint32(r))
}

// OpenChannelError is returned by OpenChannel when the peer refused the
// channel with SSH_MSG_CHANNEL_OPEN_FAILURE.
type OpenChannelError struct {
	Reason  OpenFailureReason
	Message string
}

func (e *OpenChannelError) Error() string {
	return fmt.Sprintf("sshtap: channel open refused: %s: %q", e.Reason, e.Message)
}

// Channel defaults, chosen with the BenchmarkChannelThroughput* benchmarks
// (flow_test.go). Without latency (net.Pipe, loopback TCP) every window
// from 1 MiB up gives the same 1.5-2.3 GB/s with AES-128-GCM, and 128 KiB
// packets beat 32 KiB ones over TCP by about 15%. With a 10 ms round trip a
// window caps throughput at window/RTT: 1 MiB 95 MB/s, 2 MiB (OpenSSH's and
// x/crypto's) 184 MB/s, 4 MiB 345 MB/s, 8 MiB 660 MB/s, 16 MiB 1.1 GB/s.
// The window is also the most a channel buffers when its reader lags
// (buffers grow on demand, so a reader that keeps up uses far less).
const (
	// DefaultChannelWindow is the receive window advertised per channel
	// when TransportConfig.ChannelWindow is zero.
	DefaultChannelWindow = 8 << 20
	// DefaultChannelMaxPacket is the largest data packet we accept per
	// channel when TransportConfig.ChannelMaxPacket is zero (what we send
	// never exceeds the peer's own value). OpenSSH peers get
	// openSSHChannelMaxPacket instead.
	DefaultChannelMaxPacket = 128 << 10
	// openSSHChannelMaxPacket is the default for OpenSSH peers, the value
	// OpenSSH advertises itself. OpenSSH's RekeyLimit check adds the size
	// of the packet about to be sent to the blocks already sent as if its
	// byte count were a block count: a peer allowed 128 KiB packets starts
	// a key exchange up to 128 KiB blocks (1 MiB with 8-byte blocks) early,
	// which with "RekeyLimit 1M" is after every packet. With 32 KiB packets
	// it rekeys exactly as often as between two OpenSSH ends.
	openSSHChannelMaxPacket = 32 << 10
	// maxSendChunk bounds the data of one outbound packet whatever the
	// peer's maximum packet size: OpenSSH refuses packets over 256 KiB.
	maxSendChunk = 128 << 10
	// maxWriteBatch bounds the data one Write call on the stream carries:
	// a large Channel.Write is framed into several packets (of the peer's
	// maximum packet size) written with one system call.
	maxWriteBatch = 256 << 10
	// maxBatchPackets bounds the packets of one such Write.
	maxBatchPackets = 16
	// maxHeldRequests bounds the requests held for a channel whose request
	// handler is not set yet.
	maxHeldRequests = 64
)

// channelWindow is the window we advertise (at most 2^32-1, RFC 4254 §5.2).
func (c *TransportConfig) channelWindow() uint32 {
	w := c.ChannelWindow
	switch {
	case w <= 0:
		return DefaultChannelWindow
	case uint64(w) > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(w)
}

// channelMaxPacket is the maximum packet we advertise on c's channels (see
// TransportConfig.channelMaxPacket).
func (c *Conn) channelMaxPacket() uint32 {
	def := DefaultChannelMaxPacket
	if c.peerIsOpenSSH() {
		def = openSSHChannelMaxPacket
	}
	return c.cfg.channelMaxPacket(def)
}

// peerIsOpenSSH reports whether the peer's identification string names
// OpenSSH (RFC 4253 §4.2: softwareversion follows "SSH-2.0-").
func (c *Conn) peerIsOpenSSH() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	peer := c.serverVersion
	if !c.isClient {
		peer = c.clientVersion
	}
	return bytes.HasPrefix(peer, []byte("SSH-2.0-OpenSSH_"))
}

// channelMaxPacket is the maximum packet we advertise, def when
// ChannelMaxPacket is zero: it must fit our own inbound packet limit with
// the extended data header, padding (up to 255 bytes, RFC 4253 §6) and a
// MAC.
func (c *TransportConfig) channelMaxPacket(def int) uint32 {
	m := c.ChannelMaxPacket
	if m <= 0 {
		m = def
	}
	if lim := c.maxPacket() - 512; m > lim {
		m = lim
	}
	if m < 1 {
		m = 1
	}
	return uint32(m)
}

// Channel is one SSH channel (RFC 4254 §5). It is an io.ReadWriteCloser
// over the channel's data; Stderr gives the extended data of type 1.
//
// Concurrency: all methods are safe for concurrent use; Read (and Stderr
// reads) must not be called concurrently with itself, nor Write with
// itself. Reads and writes run on the caller's goroutine: there is no
// goroutine per channel. The transport goroutine copies received data into
// the channel's buffer (bounded by the advertised window) and wakes the
// reader, which copies it out.
//
// Lifetime: the channel ends when both sides sent SSH_MSG_CHANNEL_CLOSE
// (its local id is then free for reuse) or when the Conn ends (every call
// then returns the Conn's error, except Read, which first returns what was
// buffered).
type Channel struct {
	conn     *Conn
	typ      string
	extra    []byte
	localID  uint32
	remoteID uint32 // fixed once the channel is open
	// peerOpened: the peer opened it (counted against MaxChannels).
	peerOpened bool

	reqMu sync.Mutex // serializes SendRequest's enqueue and send

	mu sync.Mutex // guards everything below
	// Outbound window: what the peer still accepts (RFC 4254 §5.2).
	pwin uint64
	pmax uint32
	// Inbound window.
	lwin     uint32 // bytes the peer may still send
	lwinSize uint32 // the window we advertise
	lmax     uint32
	consumed uint32 // read by the application, not yet given back
	data     ringBuf
	ext      ringBuf

	opening   bool       // CHANNEL_OPEN sent, no answer yet
	abandoned bool       // the opener gave up waiting
	openRes   chan error // the open's outcome (cap 1)

	remoteEOF    bool
	remoteClosed bool
	// peerClosedDone: peerClosed was closed (by the peer's CLOSE or by
	// failLocked, which may come in either order).
	peerClosedDone bool
	writeClosed    bool // CloseWrite called
	localClosed    bool // Close called
	closedFirst    bool // Close was called before the peer's CLOSE arrived
	err            error
	// sentEOF and sentClose are set with both mu and conn.omu held, so
	// either lock suffices to read them. Data is framed (under conn.omu's
	// check) only while both are false: nothing follows our EOF or CLOSE.
	sentEOF, sentClose bool

	pending    []chan reqResult // our requests awaiting a reply, in order
	handler    func(*Request)
	hasHandler bool       // handler set
	inline     bool       // the handler runs on the transport goroutine
	drain      bool       // held requests are being delivered
	held       []*Request // requests waiting for the handler, in order
	replies    []*Request // want_reply requests not yet answered, in order

	rnotify, enotify, wnotify, ewnotify chan struct{}
	rdl, wdl                            deadline
	peerClosed                          chan struct{} // closed on the peer's CLOSE or the Conn's end
	closed                              chan struct{} // closed by Close
	ctx                                 context.Context
	cancel                              context.CancelFunc
	adj                                 [16]byte
	stderr                              stderrRW
	st                                  flowStats
}

// flowStats count a channel's flow control, for tests (guarded by mu).
type flowStats struct {
	sent      uint64 // data bytes we framed (or are framing)
	credit    uint64 // the peer's initial window plus its adjustments
	received  uint64 // data bytes the peer sent
	granted   uint64 // our initial window plus our adjustments
	maxBuffer int    // the most bytes buffered at once
}

type reqResult struct {
	ok  bool
	err error
}

func (c *Conn) newChannel(typ string, extra []byte) *Channel {
	ch := &Channel{
		conn:       c,
		typ:        typ,
		extra:      extra,
		lwinSize:   c.cfg.channelWindow(),
		lmax:       c.channelMaxPacket(),
		rnotify:    make(chan struct{}, 1),
		enotify:    make(chan struct{}, 1),
		wnotify:    make(chan struct{}, 1),
		ewnotify:   make(chan struct{}, 1),
		peerClosed: make(chan struct{}),
		closed:     make(chan struct{}),
	}
	ch.lwin = ch.lwinSize
	ch.st.granted = uint64(ch.lwinSize)
	ch.stderr.ch = ch
	return ch
}

// expired reports whether a deadline channel is closed.
func expired(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// wakeAllLocked wakes every waiter. ch.mu is held.
func (ch *Channel) wakeAllLocked() {
	notify(ch.rnotify)
	notify(ch.enotify)
	notify(ch.wnotify)
	notify(ch.ewnotify)
}

// Type returns the channel type of the CHANNEL_OPEN.
func (ch *Channel) Type() string { return ch.typ }

// Conn returns the connection the channel belongs to.
func (ch *Channel) Conn() *Conn { return ch.conn }

// ExtraData returns the type-specific data of the CHANNEL_OPEN.
func (ch *Channel) ExtraData() []byte { return ch.extra }

// LocalID returns our channel number.
func (ch *Channel) LocalID() uint32 { return ch.localID }

// RemoteID returns the peer's channel number.
func (ch *Channel) RemoteID() uint32 { return ch.remoteID }

// Read reads channel data. It returns io.EOF once the peer sent EOF or
// CLOSE and everything buffered was read, ErrChannelClosed after Close,
// os.ErrDeadlineExceeded after the read deadline, and the Conn's error
// after the Conn ended (buffered data first).
func (ch *Channel) Read(p []byte) (int, error) { return ch.read(false, p) }

// read is Read of the data stream, or of the stderr stream with ext.
func (ch *Channel) read(ext bool, p []byte) (int, error) {
	buf, err := ch.await(!ext, ext, len(p) == 0)
	if err != nil || buf == nil {
		return 0, err
	}
	n := buf.pop(p)
	ch.consumedLocked(uint32(n))
	ch.mu.Unlock()
	return n, nil
}

// await waits until the data stream (wantData) or the stderr stream
// (wantExt) has bytes buffered, data first, and returns that stream's
// buffer with ch.mu held. It returns ErrChannelClosed after Close,
// os.ErrDeadlineExceeded once the read deadline passed (as net.Conn: even
// when bytes are buffered), io.EOF once the peer sent EOF or CLOSE and the
// streams asked for are drained, and the Conn's error after it ended; ch.mu
// is then not held. With now, it does not wait for bytes: it returns (nil,
// nil) with ch.mu not held unless one of the first two errors applies.
func (ch *Channel) await(wantData, wantExt, now bool) (*ringBuf, error) {
	var dataWake, extWake chan struct{} // nil: not waited for
	if wantData {
		dataWake = ch.rnotify
	}
	if wantExt {
		extWake = ch.enotify
	}
	ch.mu.Lock()
	for {
		var err error
		switch {
		case ch.localClosed:
			err = ErrChannelClosed
		case expired(ch.rdl.wait()):
			err = os.ErrDeadlineExceeded
		case now:
		case wantData && ch.data.n > 0:
			return &ch.data, nil
		case wantExt && ch.ext.n > 0:
			return &ch.ext, nil
		case ch.remoteEOF || ch.remoteClosed:
			err = io.EOF
		case ch.err != nil:
			err = ch.err
		default:
			ch.mu.Unlock()
			select {
			case <-dataWake:
			case <-extWake:
			case <-ch.rdl.wait():
			}
			ch.mu.Lock()
			continue
		}
		ch.mu.Unlock()
		return nil, err
	}
}

// peekAny waits for bytes in the data or the stderr stream, following
// Read's rules, and returns a view of bytes buffered in the data stream,
// or in the stderr stream when data has none, leaving them buffered until
// consumeView: one goroutine so drains both streams without copying them.
// The view stays valid until then: the transport goroutine only appends
// behind buffered bytes or moves them to a larger array (leaving the old
// one as it is), and stops appending once Close was called. Only one
// goroutine may read the channel while a view is out (the Session's output
// copy is the only caller).
func (ch *Channel) peekAny() (view []byte, stderr bool, err error) {
	buf, err := ch.await(true, true, false)
	if err != nil {
		return nil, false, err
	}
	view, stderr = buf.view(), buf == &ch.ext
	ch.mu.Unlock()
	return view, stderr, nil
}

// consumeView gives up the first n bytes of the view peekAny returned,
// crediting the window.
func (ch *Channel) consumeView(n int, stderr bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.localClosed {
		return // Close emptied the buffers
	}
	buf := &ch.data
	if stderr {
		buf = &ch.ext
	}
	n = min(n, buf.n)
	buf.discard(n)
	ch.consumedLocked(uint32(n))
}

// consumedLocked credits n bytes read by the application and, once half the
// window was consumed, gives it back with SSH_MSG_CHANNEL_WINDOW_ADJUST
// (RFC 4254 §5.2: "After receiving this message, the recipient MAY send
// the given number of bytes more than it was previously allowed to send;
// the window size is incremented."). ch.mu is held.
func (ch *Channel) consumedLocked(n uint32) {
	ch.consumed += n
	if ch.consumed < ch.lwinSize/2 || ch.remoteEOF || ch.remoteClosed || ch.sentClose || ch.err != nil {
		return
	}
	add := ch.consumed
	ch.consumed = 0
	ch.lwin += add // never over lwinSize: lwin + buffered + consumed == lwinSize
	ch.st.granted += uint64(add)
	m := wire.ChannelWindowAdjust{Recipient: ch.remoteID, Bytes: add}
	ch.conn.queue(m.Marshal(ch.adj[:0])) // a failure is the Conn's, seen by every call
}

// Write sends p as channel data, split into packets of at most the peer's
// maximum packet size, waiting for window space as needed (RFC 4254 §5.2:
// "The maximum amount of data allowed is determined by the maximum packet
// size for the channel, and the current window size, whichever is
// smaller."). It honours the write deadline. It returns ErrWriteClosed
// after CloseWrite, ErrChannelClosed after Close, io.EOF once the peer
// closed the channel, and the Conn's error after the Conn ended.
func (ch *Channel) Write(p []byte) (int, error) { return ch.write(0, ch.wnotify, p) }

func (ch *Channel) write(code uint32, wake chan struct{}, p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		ch.mu.Lock()
		for {
			if err := ch.writeErrLocked(); err != nil {
				ch.mu.Unlock()
				return total, err
			}
			if expired(ch.wdl.wait()) {
				ch.mu.Unlock()
				return total, os.ErrDeadlineExceeded
			}
			if ch.pwin > 0 && ch.pmax > 0 {
				break
			}
			if ch.pmax == 0 {
				ch.mu.Unlock()
				return total, errZeroMaxPacket
			}
			ch.mu.Unlock()
			select {
			case <-wake:
			case <-ch.wdl.wait():
				return total, os.ErrDeadlineExceeded
			}
			ch.mu.Lock()
		}
		pmax := min(ch.pmax, maxSendChunk)
		// A peer's tiny maximum packet size must not turn one batch
		// into a huge number of packets.
		n := min(uint64(len(p)), ch.pwin, maxWriteBatch, uint64(pmax)*maxBatchPackets)
		ch.pwin -= n
		ch.st.sent += n
		if ch.pwin > 0 {
			// Another writer (stdout or stderr) may use the rest.
			notify(ch.wnotify)
			notify(ch.ewnotify)
		}
		ch.mu.Unlock()
		err := ch.conn.writeData(ch, code, p[:n], int(pmax), ch.wdl.wait())
		if err != nil {
			if err == os.ErrDeadlineExceeded {
				// Nothing was framed: the window is still ours.
				ch.mu.Lock()
				ch.pwin += n
				ch.st.sent -= n
				notify(ch.wnotify) // a writer of the other stream may use it
				notify(ch.ewnotify)
				ch.mu.Unlock()
			}
			return total, err
		}
		total += int(n)
		p = p[n:]
	}
	return total, nil
}

// writeErrLocked is why nothing more can be written, or nil.
func (ch *Channel) writeErrLocked() error {
	switch {
	case ch.localClosed:
		return ErrChannelClosed
	case ch.writeClosed || ch.sentEOF:
		return ErrWriteClosed
	case ch.err != nil:
		return ch.err
	case ch.remoteClosed || ch.sentClose:
		return io.EOF
	}
	return nil
}

// CloseWrite sends SSH_MSG_CHANNEL_EOF (RFC 4254 §5.3: "When a party will
// no longer send more data to a channel, it SHOULD send
// SSH_MSG_CHANNEL_EOF."). Reading and requests continue to work. A Write
// running concurrently may be cut short (ErrWriteClosed); CloseWrite never
// waits for one.
func (ch *Channel) CloseWrite() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.writeErrLocked(); err != nil {
		return err
	}
	ch.writeClosed = true
	ch.wakeAllLocked()
	b := (&wire.ChannelEOF{Recipient: ch.remoteID}).Marshal(nil)
	return ch.conn.queueChannelCtl(ch, b, &ch.sentEOF)
}

// Close sends SSH_MSG_CHANNEL_CLOSE (RFC 4254 §5.3: "When either party
// wishes to terminate the channel, it sends SSH_MSG_CHANNEL_CLOSE."),
// discards buffered data and fails pending calls with ErrChannelClosed. The
// local id is freed once the peer's CLOSE was received too. Calling Close
// again returns ErrChannelClosed. Close never waits: a Write running
// concurrently is cut short.
func (ch *Channel) Close() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.localClosed {
		return ErrChannelClosed
	}
	ch.localClosed = true
	ch.closedFirst = !ch.remoteClosed
	close(ch.closed)
	ch.wakeAllLocked()
	ch.data.reset()
	ch.ext.reset()
	ch.failPendingLocked(ErrChannelClosed)
	if ch.cancel != nil {
		ch.cancel()
	}
	if ch.err != nil {
		return nil
	}
	return ch.sendCloseLocked()
}

// sendCloseLocked sends our CLOSE once (answering the held want_reply
// requests first) and frees the id when both CLOSEs were seen. ch.mu held.
func (ch *Channel) sendCloseLocked() error {
	if ch.sentClose {
		ch.maybeFreeLocked()
		return nil
	}
	// Requests waiting for a handler that is not set yet can no longer be
	// answered (nothing may follow our CLOSE): those that wanted a reply
	// are refused now and dropped. When the peer closed first, the others
	// stay held for a handler set later (HandleRequests: requests that
	// came before the peer's CLOSE are still delivered); after our own
	// Close nobody will read them.
	if !ch.hasHandler {
		kept := ch.held[:0]
		for _, r := range ch.held {
			switch {
			case r.WantReply:
				r.replied = true
			case ch.remoteClosed:
				kept = append(kept, r)
			}
		}
		clear(ch.held[len(kept):])
		ch.held = kept
	}
	ch.flushRepliesLocked()
	b := (&wire.ChannelClose{Recipient: ch.remoteID}).Marshal(nil)
	err := ch.conn.queueChannelCtl(ch, b, &ch.sentClose)
	ch.maybeFreeLocked()
	return err
}

// remoteCloseLocked handles the peer's CLOSE. ch.mu is held.
func (ch *Channel) remoteCloseLocked() {
	ch.remoteClosed = true
	ch.signalPeerClosedLocked()
	if ch.cancel != nil {
		ch.cancel()
	}
	ch.failPendingLocked(ErrChannelClosed)
	ch.wakeAllLocked()
	// RFC 4254 §5.3: "Upon receiving this message, a party MUST send back
	// an SSH_MSG_CHANNEL_CLOSE unless it has already sent this message for
	// the channel."
	ch.sendCloseLocked()
}

// maybeFreeLocked frees the local id once CLOSE was both sent and received
// (RFC 4254 §5.3: "The channel is considered closed for a party when it has
// both sent and received SSH_MSG_CHANNEL_CLOSE, and the party may then
// reuse the channel number.").
func (ch *Channel) maybeFreeLocked() {
	if ch.sentClose && ch.remoteClosed {
		ch.conn.mux.remove(ch.localID, ch)
	}
}

// failPendingLocked fails our requests awaiting a reply.
func (ch *Channel) failPendingLocked(err error) {
	for _, p := range ch.pending {
		p <- reqResult{err: err}
	}
	ch.pending = nil
}

// Stderr returns the channel's extended data of type 1
// (SSH_EXTENDED_DATA_STDERR, RFC 4254 §5.2). Its reads and writes share
// the channel's window with Read and Write: unread stderr data holds the
// window like unread data, so a reader of one stream should also drain
// the other. Its Read and Write follow the channel's rules and deadlines.
func (ch *Channel) Stderr() io.ReadWriter { return &ch.stderr }

type stderrRW struct{ ch *Channel }

func (s *stderrRW) Read(p []byte) (int, error) { return s.ch.read(true, p) }
func (s *stderrRW) Write(p []byte) (int, error) {
	return s.ch.write(wire.ExtendedDataStderr, s.ch.ewnotify, p)
}

// SetDeadline sets the read and write deadlines (os.ErrDeadlineExceeded
// once passed; a zero time means none).
func (ch *Channel) SetDeadline(t time.Time) error {
	ch.rdl.set(t)
	ch.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of Read and Stderr reads.
func (ch *Channel) SetReadDeadline(t time.Time) error { ch.rdl.set(t); return nil }

// SetWriteDeadline sets the deadline of Write and Stderr writes, waits for
// window space included.
func (ch *Channel) SetWriteDeadline(t time.Time) error { ch.wdl.set(t); return nil }

// closedByPeer returns a channel closed when the peer's CLOSE arrived or
// the Conn ended.
func (ch *Channel) closedByPeer() <-chan struct{} { return ch.peerClosed }

// closedContext returns a context cancelled when the channel is closed by
// either side or the Conn ends.
func (ch *Channel) closedContext() context.Context {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.ctx == nil {
		ch.ctx, ch.cancel = context.WithCancel(context.Background())
		if ch.localClosed || ch.remoteClosed || ch.err != nil {
			ch.cancel()
		}
	}
	return ch.ctx
}

// failLocked ends the channel with the Conn's error. ch.mu held.
func (ch *Channel) failLocked(err error) {
	if ch.err != nil {
		return
	}
	ch.err = err
	ch.failPendingLocked(err)
	if ch.opening {
		ch.opening = false
		ch.openRes <- err
	}
	ch.signalPeerClosedLocked()
	if ch.cancel != nil {
		ch.cancel()
	}
	ch.wakeAllLocked()
}

// signalPeerClosedLocked closes peerClosed once, whichever comes first: the
// peer's CLOSE or the Conn's end. ch.mu held.
func (ch *Channel) signalPeerClosedLocked() {
	if !ch.peerClosedDone {
		ch.peerClosedDone = true
		close(ch.peerClosed)
	}
}

// deadline is a resettable deadline whose expiry closes a channel, so that
// waits can select on it without allocating.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed when the deadline passed
}

// wait returns a channel closed once the deadline passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: wait until it closed the channel
	}
	d.timer = nil
	expired := false
	select {
	case <-d.ch:
		expired = true
	default:
	}
	if t.IsZero() {
		if expired {
			d.ch = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if expired {
			d.ch = make(chan struct{})
		}
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !expired {
		close(d.ch)
	}
}

// ringBuf is a byte FIFO that grows (by doubling, up to a limit) and is
// reused, so steady-state use does not allocate.
type ringBuf struct {
	b    []byte
	r, n int
}

// push appends p; the caller guarantees n+len(p) <= limit.
func (q *ringBuf) push(p []byte, limit int) {
	if q.n+len(p) > len(q.b) {
		q.grow(q.n+len(p), limit)
	}
	w := q.r + q.n
	if w >= len(q.b) {
		w -= len(q.b)
	}
	k := copy(q.b[w:], p)
	copy(q.b, p[k:])
	q.n += len(p)
}

func (q *ringBuf) grow(need, limit int) {
	size := max(2*len(q.b), 64<<10)
	for size < need {
		size *= 2
	}
	size = max(min(size, limit), need)
	nb := make([]byte, size)
	n := q.n
	q.pop(nb)
	q.b, q.r, q.n = nb, 0, n
}

// pop moves up to len(p) bytes into p.
func (q *ringBuf) pop(p []byte) int {
	n := min(len(p), q.n)
	k := copy(p[:n], q.b[q.r:])
	copy(p[k:n], q.b)
	q.discard(n)
	return n
}

func (q *ringBuf) reset() { q.r, q.n = 0, 0 }

// view returns the buffered bytes from the read position up to the end of
// the buffered data or of the array, whichever comes first.
func (q *ringBuf) view() []byte {
	end := min(q.r+q.n, len(q.b))
	return q.b[q.r:end:end]
}

// discard drops the first n buffered bytes (n <= q.n).
func (q *ringBuf) discard(n int) {
	q.r += n
	if q.r >= len(q.b) {
		q.r -= len(q.b)
	}
	q.n -= n
	if q.n == 0 {
		q.r = 0
	}
}
