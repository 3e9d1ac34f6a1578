package sshtap

import (
	"errors"
	"sync"
	"time"

	"sshtap/internal/wire"
)

// DefaultX11Timeout is how long an X11OpenEvent waits for a decision when
// Config.X11Timeout is zero.
const DefaultX11Timeout = 10 * time.Second

// ErrAlreadyDecided is returned by X11OpenEvent.Accept and Reject after the
// first decision (the application's, or an automatic rejection).
var ErrAlreadyDecided = errors.New("sshtap: x11: open already decided")

// X11OpenEvent reports an "x11" channel open from the server (RFC 4254
// §6.3.2) on a connection that requested X11 forwarding. It carries the
// decision: the first call of Accept or Reject wins, later calls return
// ErrAlreadyDecided. The open is rejected automatically when no
// subscription wanted KindX11Open, when every subscription that wanted it
// was full (the event was dropped), after Config.X11Timeout (or the shorter
// TransportConfig.ChannelOpenTimeout, after which Accept returns an error),
// and when the Conn closes.
type X11OpenEvent struct {
	Header
	OriginAddr string // originator address, as the server reports it
	OriginPort uint32 // originator port

	d *x11Decision
}

// Kind returns KindX11Open.
func (*X11OpenEvent) Kind() Kind { return KindX11Open }

// Accept confirms the open and returns the channel, which carries the X11
// connection (the application connects it to its X server).
func (e *X11OpenEvent) Accept() (*Channel, error) {
	if e.d == nil || !e.d.claim() {
		return nil, ErrAlreadyDecided
	}
	defer e.d.finish()
	return e.d.nc.Accept()
}

// Reject refuses the open with reason and message (RFC 4254 §5.1).
func (e *X11OpenEvent) Reject(reason OpenFailureReason, message string) error {
	if e.d == nil || !e.d.claim() {
		return ErrAlreadyDecided
	}
	defer e.d.finish()
	return e.d.nc.Reject(reason, message)
}

// x11Decision makes the first decision win.
type x11Decision struct {
	nc      *NewChannel
	mu      sync.Mutex
	decided bool
	done    chan struct{} // closed once the decision was carried out
}

func (d *x11Decision) claim() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.decided {
		return false
	}
	d.decided = true
	return true
}

func (d *x11Decision) finish() { close(d.done) }

// autoReject rejects unless a decision was already made.
func (d *x11Decision) autoReject(message string) {
	if d.claim() {
		d.nc.Reject(OpenProhibited, message)
		d.finish()
	}
}

func (c *Conn) x11Timeout() time.Duration {
	if c.ccfg != nil && c.ccfg.X11Timeout > 0 {
		return c.ccfg.X11Timeout
	}
	return DefaultX11Timeout
}

// handleX11Open decides an incoming "x11" open on a client. It runs on its
// own goroutine (one per incoming open) and returns once decided.
func (c *Conn) handleX11Open(nc *NewChannel) {
	if _, requested := c.x11Requested(); !requested {
		// ssh-protocol.md §8 / OpenSSH: a client refuses X11 opens it
		// never asked for (a malicious server could otherwise open them).
		nc.Reject(OpenProhibited, "X11 forwarding not requested")
		return
	}
	open, err := wire.ParseX11Open(nc.ExtraData())
	if err != nil {
		nc.Reject(OpenConnectFailed, "malformed x11 open")
		return
	}
	d := &x11Decision{nc: nc, done: make(chan struct{})}
	if !c.hub.wants(KindX11Open) {
		d.autoReject("X11 open not handled")
		return
	}
	timer := time.NewTimer(c.x11Timeout())
	defer timer.Stop()
	ev := &X11OpenEvent{Header: now(), OriginAddr: open.OriginAddr, OriginPort: open.OriginPort, d: d}
	if c.publishReport(ev) == 0 {
		d.autoReject("X11 open not handled")
		return
	}
	select {
	case <-d.done:
	case <-timer.C:
		d.autoReject("X11 open not decided in time")
	case <-nc.done: // TransportConfig.ChannelOpenTimeout
	case <-c.closing:
		d.autoReject("connection closing")
	}
}

// publishReport publishes ev and returns how many subscriptions received it
// (not counting those that were full and dropped it, or had ended).
func (c *Conn) publishReport(ev Event) int {
	h := &c.hub
	k := ev.Kind()
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.subs {
		if s.kinds&k == 0 {
			continue
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		before := s.dropped.Load()
		s.deliver(ev)
		if !closed && s.dropped.Load() == before {
			n++
		}
	}
	return n
}
