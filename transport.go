package sshtap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"sshtap/internal/wire"
	"sshtap/packet"
)

// run is the transport goroutine.
func (c *Conn) run() {
	defer close(c.done)
	defer func() {
		if c.rz != nil {
			c.rz.close()
		}
	}()
	err := c.versionExchange()
	if err == nil {
		err = c.readLoop()
	}
	var de *DisconnectError
	c.omu.Lock()
	if werr := c.werr; werr != nil && !errors.As(err, &de) {
		// The peer hung up while we wrote; the read error (EOF) says less.
		err = werr
	}
	c.omu.Unlock()
	c.abort(err, 0, "")
}

// readLoop starts the first key exchange and then reads and dispatches
// packets until the connection fails.
func (c *Conn) readLoop() error {
	c.omu.Lock()
	_, err := c.beginKexLocked(true, false)
	c.omu.Unlock()
	c.kick()
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
					c.packetsIn.Add(1)
					continue
				}
			}
			if n > 0 {
				c.packetsIn.Add(1)
				if p, err = c.inflate(p); err != nil {
					return nil, 0, err
				}
				if len(p) == 0 {
					return nil, 0, c.abort(&ProtocolViolation{Msg: "empty packet payload"}, DisconnectProtocolError, "empty packet payload")
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
		c.sizeReadBuffer(need)
		if err := c.fill(); err != nil {
			return nil, 0, c.readError(err)
		}
	}
}

// sizeReadBuffer makes room before a read for the need bytes the packet in
// progress takes (counted from rpos). The buffer doubles, up to
// maxReadBuffer, when the last read filled it: more is waiting in the
// socket. It goes back to the small buffer inside the Conn when it was
// drained after a read shorter than that, so that a connection that went
// quiet holds no large buffer while it waits (the packet reader's
// plaintext buffer is given up with it). Otherwise the unread bytes move to
// the front when the packet would not fit behind them.
func (c *Conn) sizeReadBuffer(need int) {
	size := len(c.rbuf)
	switch {
	case c.readFull && size < maxReadBuffer:
		size = min(2*size, maxReadBuffer)
	case c.rend == 0 && c.lastRead < smallReadBuffer:
		size = smallReadBuffer
		c.pr.ReleaseBuffer()
	}
	size = max(size, need)
	switch {
	case size == smallReadBuffer && len(c.rbuf) != smallReadBuffer:
		copy(c.rsmall[:], c.rbuf[c.rpos:c.rend])
		c.rbuf = c.rsmall[:]
	case size != len(c.rbuf):
		nb := make([]byte, size)
		copy(nb, c.rbuf[c.rpos:c.rend])
		c.rbuf = nb
	case c.rpos+need <= len(c.rbuf):
		return
	default:
		copy(c.rbuf, c.rbuf[c.rpos:c.rend])
	}
	c.rend -= c.rpos
	c.rpos = 0
}

// fill reads once from the stream into the free end of the read buffer
// (one read moves as many packets as are ready). It returns the read error
// only when no byte came with it.
func (c *Conn) fill() error {
	free := len(c.rbuf) - c.rend
	n, err := c.rw.Read(c.rbuf[c.rend:])
	c.lastRead, c.readFull = n, n == free
	c.rend += n
	c.bytesIn.Add(uint64(n))
	if n > 0 {
		return nil
	}
	return err
}

func (c *Conn) readError(err error) error {
	if e := c.Err(); e != nil {
		return e // we closed it
	}
	if errors.Is(err, io.EOF) {
		if c.rend > c.rpos {
			return fmt.Errorf("sshtap: connection closed by peer in the middle of a packet: %w", io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("sshtap: connection closed by peer: %w", io.EOF)
	}
	return fmt.Errorf("sshtap: read: %w", err)
}

// macFailure applies the MAC policy to a packet error from the reader. It
// returns the payload to process (MACAccept), nil (MACDiscard) or an error.
func (c *Conn) macFailure(err error) ([]byte, error) {
	var ae *packet.AuthError
	var le *packet.LengthError
	switch {
	case errors.As(err, &ae):
		mm := MACMismatch{Seq: ae.Seq, Length: ae.Length, Cipher: c.rAlgs.Cipher, MAC: c.rAlgs.MAC, Mode: ae.Mode, LengthAuthenticated: true}
		v := MACDisconnect
		if policy := c.cfg.MACPolicy; policy != nil {
			c.callback(func() { v = policy(mm) })
		}
		if v > MACAccept || c.rz != nil || c.pr.LengthOracle() {
			// With compression on, a packet dropped or corrupt is a hole
			// in the zlib stream that spoils every later packet. With CBC
			// in classic mode, carrying on after a bad MAC but not after
			// a bad length would tell a splicing peer which it was
			// (cipher.LengthOracle).
			v = MACDisconnect
		}
		c.macVerdicts[v].Add(1)
		if c.hub.wants(KindMACMismatch) {
			c.hub.publish(&MACMismatchEvent{Header: now(), MACMismatch: mm, Verdict: v})
		}
		switch v {
		case MACDiscard:
			return nil, nil
		case MACAccept:
			return ae.Payload, nil
		}
		return nil, c.abort(&MACError{mm}, DisconnectMACError, "message authentication code incorrect")
	case errors.As(err, &le) && c.rAlgs.Cipher != "":
		// Once keys are in force, a bad length is a corrupted (or
		// mis-decrypted) packet whether or not the length was encrypted.
		mm := MACMismatch{Seq: le.Seq, Length: le.Length, Cipher: c.rAlgs.Cipher, MAC: c.rAlgs.MAC, Mode: le.Mode}
		c.macVerdicts[MACDisconnect].Add(1)
		if c.hub.wants(KindMACMismatch) {
			c.hub.publish(&MACMismatchEvent{Header: now(), MACMismatch: mm, Verdict: MACDisconnect})
		}
		msg := "bad packet length"
		if c.pr.LengthOracle() {
			// The same words as for a bad MAC: the DISCONNECT's size
			// must not tell the two apart either (cipher.LengthOracle).
			msg = "message authentication code incorrect"
		}
		return nil, c.abort(&MACError{mm}, DisconnectMACError, msg)
	}
	return nil, c.abort(&ProtocolViolation{Msg: "corrupt packet", Err: err}, DisconnectProtocolError, "corrupt packet")
}

// checkReadLimits starts a rekey when the inbound keys have carried their
// budget (RFC 4344 §3.1 packets, §3.2 / RFC 4253 §9 bytes).
func (c *Conn) checkReadLimits() {
	if c.rLimit == 0 {
		return
	}
	if st := c.pr.Stats(); st.Bytes >= c.rLimit || st.Packets >= 1<<31 {
		c.omu.Lock()
		if c.kex == nil && c.err == nil {
			c.beginKexLocked(false, false)
		}
		c.omu.Unlock()
		c.kick()
	}
}

// dispatch handles one packet outside a key exchange. Transport messages
// are handled inline; anything else goes to the connection layer.
func (c *Conn) dispatch(p []byte, seq uint32) error {
	t := p[0]
	switch t {
	case wire.MsgKexInit:
		return c.runKex(p, seq)
	case wire.MsgDisconnect, wire.MsgIgnore, wire.MsgDebug, wire.MsgUnimplemented:
		return c.handleGeneric(p)
	}
	if !c.keyed.Load() {
		// RFC 4253 §7: the first key exchange starts the connection; nothing
		// else is allowed before it.
		return c.protocolError(fmt.Sprintf("unexpected %s before key exchange", wire.MsgName(t)), nil)
	}
	switch t {
	case wire.MsgNewKeys:
		return c.protocolError("NEWKEYS outside key exchange", nil)
	case wire.MsgExtInfo:
		return c.handleExtInfo(p)
	case wire.MsgServiceRequest:
		return c.handleServiceRequest(p)
	case wire.MsgServiceAccept:
		return c.handleServiceAccept(p)
	case wire.MsgPing:
		return c.handlePing(p)
	case wire.MsgPong:
		return c.handlePong(p)
	}
	switch {
	case t >= 50 && t <= 79:
		return c.routeAuth(p)
	case t >= 80 && t <= 127:
		if !c.authenticated.Load() {
			// RFC 4252 §6 / RFC 4254 §1: the connection protocol runs on
			// top of an authenticated transport.
			return c.protocolError(fmt.Sprintf("%s before user authentication", wire.MsgName(t)), nil)
		}
		return c.handleConnection(p)
	}
	return c.unimplemented(t, seq)
}

// routeAuth queues a user authentication message for the handshake runner.
func (c *Conn) routeAuth(p []byte) error {
	if c.authenticated.Load() {
		// RFC 4252 §5.1: after USERAUTH_SUCCESS further authentication
		// requests are ignored; a client ignores stray auth messages too.
		return nil
	}
	if c.isClient && p[0] == wire.MsgUserAuthSuccess {
		// Mark it here, on the transport goroutine, so that connection
		// messages the server sends right after it are accepted.
		c.authenticated.Store(true)
	}
	if !c.authQueue.push(p) {
		return c.protocolError("too many queued authentication messages", nil)
	}
	return nil
}

// unimplemented answers a message type we do not know. RFC 4253 §11.4: "An
// implementation MUST respond to all unrecognized messages with an
// SSH_MSG_UNIMPLEMENTED message in the order in which the messages were
// received."
func (c *Conn) unimplemented(t byte, seq uint32) error {
	m := wire.Unimplemented{Seq: seq}
	if c.hub.wants(KindUnimplemented) {
		c.hub.publish(&UnimplementedEvent{Header: now(), Seq: seq, Type: t})
	}
	return c.queue(m.Marshal(nil))
}

// handleGeneric handles DISCONNECT, IGNORE, DEBUG and UNIMPLEMENTED
// (RFC 4253 §11), which may arrive at any time.
func (c *Conn) handleGeneric(p []byte) error {
	switch p[0] {
	case wire.MsgDisconnect:
		var m wire.Disconnect
		if err := m.Unmarshal(p); err != nil {
			return &ProtocolViolation{Msg: "bad DISCONNECT", Err: err}
		}
		e := &DisconnectError{Reason: DisconnectReason(m.Reason), Message: m.Message, Language: m.Language, Remote: true}
		if c.hub.wants(KindDisconnect) {
			c.hub.publish(&DisconnectEvent{Header: now(), Reason: e.Reason, Message: e.Message, Language: e.Language, Remote: true})
		}
		return e
	case wire.MsgIgnore:
		// Lenient: a truncated IGNORE is still an IGNORE (some embedded
		// servers send them); wire.Ignore keeps the bytes present.
		if c.hub.wants(KindIgnore) {
			var m wire.Ignore
			m.Unmarshal(p)
			d := m.Data[:min(len(m.Data), MaxEventData)]
			c.hub.publish(&IgnoreEvent{Header: now(), Data: append([]byte{}, d...), Length: len(m.Data)})
		}
	case wire.MsgDebug:
		// Decoded only when someone listens (rule 1: unwanted kinds cost
		// nothing); RFC 4253 §11.3 lets a receiver ignore DEBUG anyway.
		if c.hub.wants(KindDebug) {
			var m wire.Debug
			if err := m.Unmarshal(p); err != nil {
				return c.protocolError("bad DEBUG", err)
			}
			c.hub.publish(&DebugEvent{Header: now(), AlwaysDisplay: m.AlwaysDisplay, Message: strings.Clone(cutUTF8(m.Message, MaxEventData)),
				Length: len(m.Message), Language: strings.Clone(cutUTF8(m.Language, MaxEventData))})
		}
	case wire.MsgUnimplemented:
		var m wire.Unimplemented
		if err := m.Unmarshal(p); err != nil {
			return c.protocolError("bad UNIMPLEMENTED", err)
		}
		if c.hub.wants(KindUnimplemented) {
			c.hub.publish(&UnimplementedEvent{Header: now(), Seq: m.Seq, Remote: true})
		}
		c.refusedKex(m.Seq)
	}
	return nil
}

// refusedKex abandons a rekey whose KEXINIT the peer answered with
// UNIMPLEMENTED, as OpenSSH does before user authentication: the old keys
// stay in force and held writes are released.
func (c *Conn) refusedKex(seq uint32) {
	c.omu.Lock()
	r := c.kex
	if r == nil || r.initial || r.remoteFirst || r.peerKexInit || r.ourInitSeq.Load() != uint64(seq)+1 {
		c.omu.Unlock()
		return
	}
	c.kex = nil
	c.releaseHeldLocked()
	r.openWritesLocked()
	c.omu.Unlock()
	c.kick()
	r.finish(ErrRekeyRefused)
}

func (c *Conn) handleExtInfo(p []byte) error {
	var m wire.ExtInfo
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad EXT_INFO", err)
	}
	exts := make([]Extension, len(m.Extensions))
	c.mu.Lock()
	for i, e := range m.Extensions {
		exts[i] = Extension{Name: e.Name, Value: append([]byte{}, e.Value...)}
		switch e.Name {
		case "ping@openssh.com":
			c.peerPing = string(e.Value) == "0"
		case "server-sig-algs":
			c.peerSigAlg = splitNames(string(e.Value))
		}
	}
	c.mu.Unlock()
	if c.hub.wants(KindExtInfo) {
		c.hub.publish(&ExtInfoEvent{Header: now(), Extensions: exts})
	}
	return nil
}

func splitNames(s string) []string {
	var out []string
	for s != "" {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		if i > 0 {
			out = append(out, s[:i])
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

// ServerSigAlgs returns the server-sig-algs the server announced in
// EXT_INFO (RFC 8308 §3.1), or nil.
func (c *Conn) ServerSigAlgs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerSigAlg
}

// Strict reports whether strict key exchange is in force.
func (c *Conn) Strict() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.strict
}

func (c *Conn) handleServiceRequest(p []byte) error {
	var m wire.ServiceRequest
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad SERVICE_REQUEST", err)
	}
	if c.isClient {
		return c.protocolError("SERVICE_REQUEST sent to a client", nil)
	}
	// RFC 4253 §10: "If the server rejects the service request, it SHOULD
	// send an appropriate SSH_MSG_DISCONNECT message".
	if m.Service != "ssh-userauth" {
		msg := "service not available: " + m.Service
		return c.abort(&DisconnectError{Reason: DisconnectServiceNotAvailable, Message: msg}, DisconnectServiceNotAvailable, msg)
	}
	a := wire.ServiceAccept(m)
	return c.queue(a.Marshal(nil))
}

func (c *Conn) handleServiceAccept(p []byte) error {
	var m wire.ServiceAccept
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad SERVICE_ACCEPT", err)
	}
	if !c.isClient || m.Service != "ssh-userauth" {
		return c.protocolError("unexpected SERVICE_ACCEPT for "+fmt.Sprintf("%q", m.Service), nil)
	}
	c.setAuthReady()
	return nil
}

// handlePing answers PING with PONG carrying the same data (OpenSSH
// PROTOCOL, ping@openssh.com). The PONG is held while a key exchange is in
// flight, as required.
func (c *Conn) handlePing(p []byte) error {
	var m wire.Ping
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad PING", err)
	}
	pong := wire.Pong(m)
	return c.queue(pong.Marshal(nil))
}

func (c *Conn) handlePong(p []byte) error {
	var m wire.Pong
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad PONG", err)
	}
	if len(m.Data) != 8 {
		return nil // not ours
	}
	r := wire.NewReader(m.Data)
	id := r.Uint64()
	c.mu.Lock()
	var pp *pendingPing
	for i, x := range c.pings {
		if x.data == id {
			pp = x
			c.pings = append(c.pings[:i], c.pings[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	if pp == nil {
		return nil
	}
	rtt := time.Since(pp.sent)
	c.lastPingRTT.Store(int64(rtt))
	pp.ch <- rtt
	if c.hub.wants(KindPing) {
		c.hub.publish(&PingEvent{Header: now(), RTT: rtt})
	}
	return nil
}

// Ping sends a ping@openssh.com PING and waits for the matching PONG,
// returning the round-trip time. It needs the peer to have announced
// ping@openssh.com in EXT_INFO (OpenSSH 9.5 and later servers, sshtap
// servers); otherwise it returns ErrPingUnsupported without sending.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	if err := c.waitKeyed(ctx); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if !c.peerPing {
		c.mu.Unlock()
		return 0, ErrPingUnsupported
	}
	c.pingSeq++
	pp := &pendingPing{data: c.pingSeq, ch: make(chan time.Duration, 1)}
	c.pings = append(c.pings, pp)
	c.mu.Unlock()
	var data [8]byte
	m := wire.Ping{Data: wire.AppendUint64(data[:0], pp.data)}
	pp.sent = time.Now()
	// pp.sent is read by the transport goroutine only after the PONG, which
	// cannot arrive before the PING below is written.
	if err := c.writePacket(ctx, m.Marshal(nil)); err != nil {
		c.dropPing(pp)
		return 0, err
	}
	select {
	case rtt, ok := <-pp.ch:
		if !ok {
			return 0, c.Err()
		}
		return rtt, nil
	case <-ctx.Done():
		c.dropPing(pp)
		return 0, context.Cause(ctx)
	}
}

func (c *Conn) dropPing(pp *pendingPing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.pings {
		if x == pp {
			c.pings = append(c.pings[:i], c.pings[i+1:]...)
			return
		}
	}
}

// Rekey starts a key exchange (or joins the one in flight) and waits until
// it completes, bounded by ctx. Either side may start one at any time after
// the first.
func (c *Conn) Rekey(ctx context.Context) error {
	if err := c.waitKeyed(ctx); err != nil {
		return err
	}
	c.omu.Lock()
	if c.err != nil {
		err := c.err
		c.omu.Unlock()
		return err
	}
	r, err := c.beginKexLocked(false, false)
	c.omu.Unlock()
	c.kick()
	if err != nil {
		return err
	}
	select {
	case <-r.finished:
		return r.err
	case <-c.closing:
		return c.Err()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// SendIgnore sends SSH_MSG_IGNORE carrying data (RFC 4253 §11.2), waiting,
// bounded by ctx, while a key exchange holds writes.
func (c *Conn) SendIgnore(ctx context.Context, data []byte) error {
	if err := c.waitKeyed(ctx); err != nil {
		return err
	}
	// The payload is marshalled into a pooled buffer: writePacket copies it
	// into the outbound buffer (sealing there) and keeps no reference, so a
	// stream of IGNOREs allocates nothing per packet.
	m := wire.Ignore{Data: data}
	bp := payloadPool.Get().(*[]byte)
	*bp = m.Marshal((*bp)[:0])
	err := c.writePacket(ctx, *bp)
	payloadPool.Put(bp)
	return err
}

// payloadPool holds scratch buffers for payloads that writePacket copies.
var payloadPool = sync.Pool{New: func() any { return new([]byte) }}

// SendDebug sends SSH_MSG_DEBUG (RFC 4253 §11.3).
func (c *Conn) SendDebug(ctx context.Context, alwaysDisplay bool, message string) error {
	if err := c.waitKeyed(ctx); err != nil {
		return err
	}
	m := wire.Debug{AlwaysDisplay: alwaysDisplay, Message: message}
	return c.writePacket(ctx, m.Marshal(nil))
}

// ErrNotExtensionType is returned by Conn.SendExtensionMessage for a message
// number outside the range it may send.
var ErrNotExtensionType = errors.New("sshtap: message number is not a free local-extension number (194-255)")

// SendExtensionMessage sends one message of a local-extension number (RFC
// 4251 §7: "Local extensions" 192 to 255) with the given body after the
// message number, waiting, bounded by ctx, while a key exchange holds
// writes. Numbers 192 and 193 belong to ping@openssh.com, which this package
// implements (Conn.Ping), so msgType must be 194 to 255.
//
// It exists for protocol experiments and tooling. RFC 4253 §11.4 asks a
// peer that does not know the number to answer SSH_MSG_UNIMPLEMENTED, which
// arrives as an UnimplementedEvent with Remote set and the sequence number
// of the message sent; an sshtap peer does so. OpenSSH does not: it ends
// the connection (DISCONNECT PROTOCOL_ERROR "Invalid ssh2 packet type",
// seen with 9.2), so send these only to peers known to tolerate them. The
// Conn attaches no other meaning to the message.
func (c *Conn) SendExtensionMessage(ctx context.Context, msgType byte, body []byte) error {
	if msgType < 194 {
		return ErrNotExtensionType
	}
	if err := c.waitKeyed(ctx); err != nil {
		return err
	}
	p := make([]byte, 0, 1+len(body))
	p = append(append(p, msgType), body...)
	return c.writePacket(ctx, p)
}

// cutUTF8 returns s, or its longest prefix of at most n bytes that does not
// end inside a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
