package sshtap

import (
	"context"
	"fmt"

	"sshtap/internal/wire"
)

// Request is a channel request (RFC 4254 §5.4) or a global request
// (RFC 4254 §4) received from the peer.
//
// Reply may be called from any goroutine, at any later time, exactly once
// when WantReply is set. Replies are sent in the order the requests
// arrived, whatever order Reply is called in (RFC 4254 §4: "the recipient
// will respond to this message with SSH_MSG_REQUEST_SUCCESS or
// SSH_MSG_REQUEST_FAILURE"; OpenSSH matches replies to requests by order),
// so a request left unanswered holds back the replies after it.
type Request struct {
	Type      string
	WantReply bool
	Payload   []byte // the request-specific data (a copy, owned by the handler)

	ch      *Channel // nil for global requests
	conn    *Conn
	replied bool   // guarded by ch.mu or conn.mux.mu
	ok      bool   // the reply, once replied
	resp    []byte // REQUEST_SUCCESS data (global requests)
}

// Reply answers the request: SSH_MSG_CHANNEL_SUCCESS / FAILURE for a
// channel request, SSH_MSG_REQUEST_SUCCESS (carrying payload) / FAILURE
// for a global request. payload is ignored for channel requests and
// failures. Reply on a request without WantReply does nothing; a second
// Reply returns ErrAlreadyReplied. Replies to a channel after it sent
// CLOSE are dropped.
func (r *Request) Reply(ok bool, payload []byte) error {
	if !r.WantReply {
		return nil
	}
	if r.ch != nil {
		ch := r.ch
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if r.replied {
			return ErrAlreadyReplied
		}
		r.replied, r.ok = true, ok
		return ch.flushRepliesLocked()
	}
	m := &r.conn.mux
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.replied {
		return ErrAlreadyReplied
	}
	r.replied, r.ok = true, ok
	if ok {
		r.resp = append([]byte(nil), payload...)
	}
	return m.flushGlobalRepliesLocked(r.conn)
}

// flushRepliesLocked sends the replies at the head of the queue that are
// decided. ch.mu held.
func (ch *Channel) flushRepliesLocked() error {
	var err error
	for len(ch.replies) > 0 && ch.replies[0].replied {
		r := ch.replies[0]
		ch.replies[0] = nil
		ch.replies = ch.replies[1:]
		if ch.sentClose || ch.err != nil {
			continue
		}
		var msg []byte
		if r.ok {
			msg = (&wire.ChannelSuccess{Recipient: ch.remoteID}).Marshal(nil)
		} else {
			msg = (&wire.ChannelFailure{Recipient: ch.remoteID}).Marshal(nil)
		}
		if e := ch.conn.queue(msg); e != nil && err == nil {
			err = e
		}
	}
	if len(ch.replies) == 0 {
		ch.replies = nil
	}
	return err
}

// HandleRequests sets the handler of the peer's channel requests.
//
// h runs off the transport goroutine, one request at a time, in the order
// the requests arrived: requests that arrived before HandleRequests are
// delivered on the caller's goroutine before it returns, later ones on a
// goroutine that lives while requests are waiting. So h may block (other
// channels' data keeps flowing) and may call any Conn or Channel method,
// Close included; requests that arrive meanwhile wait for it, up to 64
// (more are refused). Reply may be called later, from any goroutine.
// Requests that came before the peer's CLOSE are still delivered (their
// replies are dropped), but the CLOSE takes effect at once: a handler may
// still run when reads already return io.EOF. A nil h refuses every request (CHANNEL_FAILURE
// when a reply is wanted, RFC 4254 §5.4: "If the request is not recognized
// or is not supported for the channel, SSH_MSG_CHANNEL_FAILURE is
// returned.").
func (ch *Channel) HandleRequests(h func(*Request)) {
	ch.mu.Lock()
	ch.handler, ch.hasHandler = h, true
	if ch.drain || len(ch.held) == 0 {
		ch.mu.Unlock()
		return
	}
	ch.drain = true
	ch.mu.Unlock()
	ch.deliverHeld()
}

// handleRequestsInline is HandleRequests for a handler of this package
// that never blocks nor calls back into the Conn: it runs on the transport
// goroutine, so its effects are in place before the next message is
// handled (a client session's exit status before the CLOSE that follows).
func (ch *Channel) handleRequestsInline(h func(*Request)) {
	ch.mu.Lock()
	ch.inline = true
	ch.mu.Unlock()
	ch.HandleRequests(h)
}

// deliverHeld delivers the waiting requests, in order, until none is left.
// The caller set ch.drain.
func (ch *Channel) deliverHeld() {
	ch.mu.Lock()
	for len(ch.held) > 0 {
		r := ch.held[0]
		ch.held[0] = nil
		ch.held = ch.held[1:]
		h := ch.handler
		ch.mu.Unlock()
		deliverRequest(h, r)
		ch.mu.Lock()
	}
	ch.held = nil
	ch.drain = false
	ch.mu.Unlock()
}

func deliverRequest(h func(*Request), r *Request) {
	if h == nil {
		r.Reply(false, nil)
		return
	}
	h(r)
}

// handleChannelRequest handles SSH_MSG_CHANNEL_REQUEST on the transport
// goroutine.
func (c *Conn) handleChannelRequest(ch *Channel, p []byte) error {
	var m wire.ChannelRequest
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad CHANNEL_REQUEST", err)
	}
	r := &Request{Type: m.Type, WantReply: m.WantReply, Payload: append([]byte(nil), m.Data...), ch: ch, conn: c}
	ch.mu.Lock()
	if r.WantReply && len(ch.replies) >= maxUnansweredRequests {
		ch.mu.Unlock()
		// RFC 4254 §5.4: replies go out in request order; see
		// handleGlobalRequest.
		return c.protocolError(fmt.Sprintf("channel %d: more than %d requests waiting for their replies", ch.localID, maxUnansweredRequests), nil)
	}
	if ch.sentClose || ch.localClosed {
		// Nothing may follow our CLOSE; a closed channel serves nothing.
		if r.WantReply && !ch.sentClose {
			r.replied = true
			ch.replies = append(ch.replies, r)
			ch.flushRepliesLocked()
		}
		ch.mu.Unlock()
		return nil
	}
	if r.WantReply {
		ch.replies = append(ch.replies, r)
	}
	if ch.inline && ch.hasHandler && !ch.drain {
		h := ch.handler
		ch.mu.Unlock()
		deliverRequest(h, r)
		return nil
	}
	if len(ch.held) >= maxHeldRequests {
		r.Payload = nil // never delivered: only its place in the reply order is kept
		r.replied = true
		ch.flushRepliesLocked()
		ch.mu.Unlock()
		return nil
	}
	ch.held = append(ch.held, r)
	start := ch.hasHandler && !ch.drain
	if start {
		ch.drain = true
	}
	ch.mu.Unlock()
	if start {
		go ch.deliverHeld()
	}
	return nil
}

// handleChannelReply handles SSH_MSG_CHANNEL_SUCCESS / FAILURE: the answer
// to our oldest request still waiting (RFC 4254 §5.4).
func (c *Conn) handleChannelReply(ch *Channel, ok bool) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.pending) == 0 {
		if ch.localClosed || ch.sentClose {
			// Our Close failed the waiting requests; their answers may
			// still be on the way.
			return nil
		}
		return c.protocolError("unexpected channel request reply", nil)
	}
	p := ch.pending[0]
	ch.pending[0] = nil
	ch.pending = ch.pending[1:]
	p <- reqResult{ok: ok}
	return nil
}

// SendRequest sends a channel request (RFC 4254 §5.4). With wantReply it
// waits, bounded by ctx, for the peer's answer and reports whether it
// succeeded; without, it returns false once the request is queued.
// Requests may follow CloseWrite but not Close.
func (ch *Channel) SendRequest(ctx context.Context, name string, wantReply bool, payload []byte) (bool, error) {
	m := wire.ChannelRequest{Recipient: ch.remoteID, Type: name, WantReply: wantReply, Data: payload}
	msg := m.Marshal(nil)
	var res chan reqResult
	ch.reqMu.Lock()
	ch.mu.Lock()
	err := ch.err
	switch {
	case ch.localClosed:
		err = ErrChannelClosed
	case err == nil && (ch.remoteClosed || ch.sentClose):
		err = ErrChannelClosed
	}
	if err != nil {
		ch.mu.Unlock()
		ch.reqMu.Unlock()
		return false, err
	}
	if wantReply {
		res = make(chan reqResult, 1)
		ch.pending = append(ch.pending, res)
	}
	ch.mu.Unlock()
	err = ch.conn.writeChannelMsg(ctx, ch, msg)
	if err != nil && wantReply {
		// Not sent: no reply will come for it.
		ch.mu.Lock()
		for i, p := range ch.pending {
			if p == res {
				ch.pending = append(ch.pending[:i], ch.pending[i+1:]...)
				break
			}
		}
		ch.mu.Unlock()
	}
	ch.reqMu.Unlock()
	if err != nil || !wantReply {
		return false, err
	}
	select {
	case r := <-res:
		return r.ok, r.err
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}
