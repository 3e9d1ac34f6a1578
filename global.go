package sshtap

import (
	"context"
	"fmt"

	"sshtap/internal/wire"
)

// Global requests (RFC 4254 §4).

// registerGlobalHandler makes h handle the peer's global requests named
// name on this Conn, in preference to TransportConfig.GlobalRequestHandler
// (nil removes it). h runs like TransportConfig.GlobalRequestHandler (see
// deliverGlobal); it must Reply when WantReply is set (later, from any
// goroutine, is fine).
func (c *Conn) registerGlobalHandler(name string, h func(*Request)) {
	m := &c.mux
	m.mu.Lock()
	defer m.mu.Unlock()
	if h == nil {
		delete(m.globals, name)
		return
	}
	if m.globals == nil {
		m.globals = make(map[string]func(*Request))
	}
	m.globals[name] = h
}

// builtinGlobals are package-level built-in global request handler
// factories, registered at init time: for a Conn, the factory returns the
// handler to use, or nil to fall through.
var builtinGlobals = map[string]func(c *Conn) func(*Request){}

// registerBuiltinGlobal registers a built-in global request handler factory
// (call it from an init function).
func registerBuiltinGlobal(name string, f func(c *Conn) func(*Request)) {
	builtinGlobals[name] = f
}

// globalHandler returns the handler of the peer's global request name:
// registerGlobalHandler's, a registerBuiltinGlobal factory's, then
// TransportConfig.GlobalRequestHandler; nil when there is none.
func (c *Conn) globalHandler(name string) func(*Request) {
	c.mux.mu.Lock()
	h := c.mux.globals[name]
	c.mux.mu.Unlock()
	if h != nil {
		return h
	}
	if f := builtinGlobals[name]; f != nil {
		if h := f(c); h != nil {
			return h
		}
	}
	return c.cfg.GlobalRequestHandler
}

// maxQueuedGlobals bounds the peer's global requests waiting for a busy
// handler; more are refused.
const maxQueuedGlobals = 64

// maxUnansweredRequests bounds the peer's want_reply requests still
// waiting for their replies, globally and per channel; past it the peer
// is disconnected.
const maxUnansweredRequests = 256

// deliverGlobal hands r to h off the transport goroutine: requests are
// delivered one at a time, in order, by a goroutine that lives while
// requests are waiting, so a handler may block and may call any Conn
// method, Close included.
func (m *mux) deliverGlobal(h func(*Request), r *Request) {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return
	}
	if len(m.gqueue) >= maxQueuedGlobals {
		m.mu.Unlock()
		r.Payload = nil // never delivered: only its place in the reply order is kept
		r.Reply(false, nil)
		return
	}
	m.gqueue = append(m.gqueue, globalDelivery{h, r})
	start := !m.gdraining
	m.gdraining = true
	m.mu.Unlock()
	if start {
		go m.drainGlobals()
	}
}

type globalDelivery struct {
	h func(*Request)
	r *Request
}

func (m *mux) drainGlobals() {
	m.mu.Lock()
	for len(m.gqueue) > 0 && m.err == nil {
		d := m.gqueue[0]
		m.gqueue[0] = globalDelivery{}
		m.gqueue = m.gqueue[1:]
		m.mu.Unlock()
		d.h(d.r)
		m.mu.Lock()
	}
	m.gqueue = nil
	m.gdraining = false
	m.mu.Unlock()
}

// handleGlobalRequest handles SSH_MSG_GLOBAL_REQUEST on the transport
// goroutine.
func (c *Conn) handleGlobalRequest(p []byte) error {
	var m wire.GlobalRequest
	if err := m.Unmarshal(p); err != nil {
		return c.protocolError("bad GLOBAL_REQUEST", err)
	}
	// The payload is copied only for a handler (below): a request answered
	// here holds no more than its place in the reply order.
	r := &Request{Type: m.Name, WantReply: m.WantReply, conn: c}
	if r.WantReply {
		c.mux.mu.Lock()
		if c.mux.err != nil {
			c.mux.mu.Unlock()
			return nil
		}
		if len(c.mux.greplies) >= maxUnansweredRequests {
			c.mux.mu.Unlock()
			// RFC 4254 §4 has the replies go out in request order, so each
			// unanswered request holds a place; a peer that keeps asking
			// without waiting for the answers gets no unbounded queue.
			return c.protocolError(fmt.Sprintf("more than %d global requests waiting for their replies", maxUnansweredRequests), nil)
		}
		c.mux.greplies = append(c.mux.greplies, r)
		c.mux.mu.Unlock()
	}
	handled := true
	switch m.Name {
	case "keepalive@openssh.com":
		// OpenSSH answers its keepalives with a failure (any reply shows
		// the peer is alive), as it does for every unknown request.
		r.Reply(false, nil)
	case "hostkeys-00@openssh.com":
		// OpenSSH PROTOCOL §2.5: the server announces its host keys after
		// authentication, without wanting a reply.
		hk, err := wire.ParseHostKeys(m.Data)
		if err == nil && c.hub.wants(KindHostKeys) {
			keys := make([][]byte, len(hk.Keys))
			for i, k := range hk.Keys {
				keys[i] = append([]byte(nil), k...)
			}
			c.hub.publish(&HostKeysEvent{Header: now(), Keys: keys})
		}
		handled = err == nil
		r.Reply(false, nil)
	case wire.RequestHostKeysProve:
		if c.isClient {
			handled = false
			r.Reply(false, nil)
			break
		}
		r.Payload = m.Data // used before this returns
		c.proveHostKeys(r)
	case "no-more-sessions@openssh.com":
		if c.isClient {
			handled = false
			r.Reply(false, nil)
			break
		}
		// OpenSSH PROTOCOL §2.2: the server refuses any later "session"
		// channel open.
		c.mux.mu.Lock()
		c.mux.noMore = true
		c.mux.mu.Unlock()
		r.Reply(true, nil)
	default:
		if h := c.globalHandler(m.Name); h != nil {
			r.Payload = append([]byte(nil), m.Data...)
			c.mux.deliverGlobal(h, r)
		} else {
			// RFC 4254 §4: "If the recipient does not recognize or support
			// the request, it simply responds with
			// SSH_MSG_REQUEST_FAILURE."
			handled = false
			r.Reply(false, nil)
		}
	}
	if c.hub.wants(KindGlobalRequest) {
		c.hub.publish(&GlobalRequestEvent{Header: now(), Name: m.Name, WantReply: m.WantReply, Handled: handled})
	}
	return nil
}

// flushGlobalRepliesLocked sends the decided replies at the head of the
// queue. mux.mu held.
func (m *mux) flushGlobalRepliesLocked(c *Conn) error {
	var err error
	for len(m.greplies) > 0 && m.greplies[0].replied {
		r := m.greplies[0]
		m.greplies[0] = nil
		m.greplies = m.greplies[1:]
		var msg []byte
		if r.ok {
			msg = (&wire.RequestSuccess{Data: r.resp}).Marshal(nil)
		} else {
			msg = (&wire.RequestFailure{}).Marshal(nil)
		}
		if e := c.queue(msg); e != nil && err == nil {
			err = e
		}
	}
	if len(m.greplies) == 0 {
		m.greplies = nil
	}
	return err
}

// handleGlobalReply handles SSH_MSG_REQUEST_SUCCESS / FAILURE, the answer
// to our oldest global request still waiting for one.
func (c *Conn) handleGlobalReply(p []byte) error {
	res := globalResult{}
	if p[0] == wire.MsgRequestSuccess {
		var m wire.RequestSuccess
		if err := m.Unmarshal(p); err != nil {
			return c.protocolError("bad REQUEST_SUCCESS", err)
		}
		res.ok, res.data = true, append([]byte(nil), m.Data...)
	}
	m := &c.mux
	m.mu.Lock()
	if len(m.gpending) == 0 {
		m.mu.Unlock()
		return c.protocolError("unexpected global request reply", nil)
	}
	ch := m.gpending[0]
	m.gpending[0] = nil
	m.gpending = m.gpending[1:]
	m.mu.Unlock()
	ch <- res
	return nil
}

// SendGlobalRequest sends a global request (RFC 4254 §4). With wantReply it
// waits, bounded by ctx, for the answer: whether it succeeded and the
// response-specific data of SSH_MSG_REQUEST_SUCCESS. Without, it returns
// (false, nil, nil) once the request is queued. It runs the handshake
// first if needed.
func (c *Conn) SendGlobalRequest(ctx context.Context, name string, wantReply bool, payload []byte) (bool, []byte, error) {
	if err := c.Handshake(ctx); err != nil {
		return false, nil, err
	}
	if !c.Authenticated() {
		return false, nil, ErrNotAuthenticated
	}
	msg := (&wire.GlobalRequest{Name: name, WantReply: wantReply, Data: payload}).Marshal(nil)
	m := &c.mux
	var res chan globalResult
	m.globalSendMu.Lock()
	if wantReply {
		m.mu.Lock()
		if m.err != nil {
			err := m.err
			m.mu.Unlock()
			m.globalSendMu.Unlock()
			return false, nil, err
		}
		res = make(chan globalResult, 1)
		m.gpending = append(m.gpending, res)
		m.mu.Unlock()
	}
	err := c.writePacket(ctx, msg)
	if err != nil && wantReply {
		m.mu.Lock()
		for i, p := range m.gpending {
			if p == res {
				m.gpending = append(m.gpending[:i], m.gpending[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
	}
	m.globalSendMu.Unlock()
	if err != nil || !wantReply {
		return false, nil, err
	}
	select {
	case r := <-res:
		return r.ok, r.data, r.err
	case <-ctx.Done():
		return false, nil, context.Cause(ctx)
	}
}
