package sshtap

import (
	"context"
	"os"
	"slices"

	"sshtap/internal/wire"
)

// writeChannelData frames SSH_MSG_CHANNEL_DATA (code 0) or
// SSH_MSG_CHANNEL_EXTENDED_DATA (code > 0) for recipient straight into the
// outbound buffer: data is copied once, and nothing is allocated in steady
// state. It waits, bounded by ctx, while a key exchange holds writes back
// or too much is queued. The caller is responsible for the window and the
// peer's maximum packet size (Channel.Write does both).
func (c *Conn) writeChannelData(ctx context.Context, recipient, code uint32, data []byte) error {
	err := c.writeDataTo(nil, recipient, code, data, ctx.Done())
	if err == os.ErrDeadlineExceeded {
		return context.Cause(ctx)
	}
	return err
}

// writeData is writeChannelData for a channel: nothing is framed once the
// channel sent EOF or CLOSE (checked under c.wmu, which orders it with
// those messages), and cancel (a deadline) aborts waiting with
// os.ErrDeadlineExceeded.
func (c *Conn) writeData(ch *Channel, code uint32, data []byte, cancel <-chan struct{}) error {
	return c.writeDataTo(ch, ch.remoteID, code, data, cancel)
}

func (c *Conn) writeDataTo(ch *Channel, recipient, code uint32, data []byte, cancel <-chan struct{}) error {
	var closed chan struct{} // a Close ends the wait
	if ch != nil {
		closed = ch.closed
	}
	for {
		c.wmu.Lock()
		if c.werr != nil {
			err := c.werr
			c.wmu.Unlock()
			return err
		}
		if ch != nil && (ch.sentEOF || ch.sentClose) {
			c.wmu.Unlock()
			ch.mu.Lock()
			err := ch.writeErrLocked()
			ch.mu.Unlock()
			if err == nil {
				err = ErrWriteClosed
			}
			return err
		}
		wait := c.holdLocked(false)
		if wait == nil {
			hl := wire.ChannelDataHeaderLen
			if code != 0 {
				hl = wire.ChannelExtendedDataHeaderLen
			}
			// Build the payload in c.out's spare capacity, after room for
			// packet_length and padding_length, and let AppendPacket frame
			// it in place.
			start := len(c.out)
			c.out = slices.Grow(c.out, 5+hl+len(data)+c.pw.MaxOverhead())
			p := c.out[start+5 : start+5 : cap(c.out)]
			if code == 0 {
				p = wire.AppendChannelDataHeader(p, recipient, len(data))
			} else {
				p = wire.AppendChannelExtendedDataHeader(p, recipient, code, len(data))
			}
			p = append(p, data...)
			err := c.writeLocked(p)
			c.wmu.Unlock()
			return err
		}
		c.wmu.Unlock()
		select {
		case <-wait:
		case <-closed:
			return ErrChannelClosed
		case <-cancel:
			return os.ErrDeadlineExceeded
		}
	}
}

// writeNoWait queues a small control message without ever waiting: during a
// key exchange it is held and sent right after our NEWKEYS, in order. Safe
// from any goroutine, including the transport goroutine.
func (c *Conn) writeNoWait(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeNoWaitLocked(payload)
}

func (c *Conn) writeNoWaitLocked(payload []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if r := c.kex; r != nil && !r.sentNewKeys && !isKexPhaseMessage(payload[0]) {
		c.queued = append(c.queued, append([]byte(nil), payload...))
		return nil
	}
	return c.writeLocked(payload)
}

// writeChannelCtl sends EOF or CLOSE for ch once, setting *flag (ch.sentEOF
// or ch.sentClose) with c.wmu held so that data writers see it before
// framing anything after it. ch.mu is held; never waits.
func (c *Conn) writeChannelCtl(ch *Channel, payload []byte, flag *bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if *flag || ch.sentClose {
		return nil
	}
	*flag = true
	return c.writeNoWaitLocked(payload)
}

// writeChannelMsg sends a channel message (a request) unless ch already
// sent CLOSE (RFC 4254 §5.3: nothing may follow it), waiting like
// writePacket, bounded by ctx.
func (c *Conn) writeChannelMsg(ctx context.Context, ch *Channel, payload []byte) error {
	return c.writeUnless(ctx, payload, func() error {
		if ch.sentClose {
			return ErrChannelClosed
		}
		return nil
	})
}
