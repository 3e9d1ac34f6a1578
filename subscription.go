package sshtap

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEventBuffer is the number of events a subscription holds before it
// starts dropping (more slots are reserved for LaggedEvent and
// ClosedEvent).
const DefaultEventBuffer = 256

// Subscription receives the events of one Conn that match its kinds.
//
// Events arrive on the channel returned by Events in the order they happened.
// The publisher never waits for a subscriber: when the channel is full, the
// newest event is dropped and counted, and the next event that fits is
// preceded by one *LaggedEvent with the count. The last event is always one
// *ClosedEvent, after which the channel is closed. A Subscription is safe for
// concurrent use.
type Subscription struct {
	kinds Kind
	ch    chan Event
	n     int // events queued before dropping; cap(ch) is n+3

	mu      sync.Mutex
	closed  bool
	lag     uint64        // dropped since the last delivered event
	dropped atomic.Uint64 // cumulative

	hub  *hub
	stop func() bool // context.AfterFunc stop
}

// Events returns the channel on which events arrive. It is closed after the
// ClosedEvent.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Kinds returns the kinds the subscription asked for.
func (s *Subscription) Kinds() Kind { return s.kinds }

// Dropped returns how many events were dropped so far because the
// subscription was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription: it receives a ClosedEvent with net.ErrClosed
// (unless it already ended) and its channel is closed. Close is idempotent.
func (s *Subscription) Close() {
	s.hub.remove(s)
	s.end(net.ErrClosed)
}

// deliver offers ev without blocking. The caller has checked the kind.
func (s *Subscription) deliver(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	// Only publishers send, and they hold s.mu, so len(s.ch) can only shrink
	// underneath us. An event is delivered while fewer than n are queued; a
	// pending LaggedEvent rides along, so the queue holds at most n+1 and
	// the two slots left (cap is n+3) always fit a final Lagged and Closed.
	if len(s.ch) >= s.n {
		s.lag++
		s.dropped.Add(1)
		return
	}
	if s.lag > 0 {
		s.ch <- &LaggedEvent{Header{ev.When()}, s.lag}
		s.lag = 0
	}
	s.ch <- ev
}

// end sends the final ClosedEvent (after a pending LaggedEvent) and closes
// the channel. It never blocks: two slots are always free.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.stop != nil {
		s.stop()
	}
	now := time.Now()
	if s.lag > 0 {
		s.ch <- &LaggedEvent{Header{now}, s.lag}
		s.lag = 0
	}
	s.ch <- &ClosedEvent{Header{now}, err}
	close(s.ch)
}

// hub fans events out to subscriptions.
type hub struct {
	mask atomic.Uint64 // union of the kinds of live subscriptions

	mu   sync.Mutex
	subs []*Subscription
	err  error // set once the conn ended; later subscriptions end at once
	done bool
}

// wants reports whether any subscription wants kind k. Publish sites check it
// before building an event, so unwanted kinds cost nothing.
func (h *hub) wants(k Kind) bool { return Kind(h.mask.Load())&k != 0 }

func (h *hub) publish(ev Event) {
	k := ev.Kind()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		if s.kinds&k != 0 {
			s.deliver(ev)
		}
	}
}

func (h *hub) subscribe(ctx context.Context, kinds Kind, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	s := &Subscription{kinds: kinds &^ (KindLagged | KindClosed), ch: make(chan Event, buffer+3), n: buffer, hub: h}
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		s.end(h.err)
		return s
	}
	h.subs = append(h.subs, s)
	h.recomputeLocked()
	h.mu.Unlock()
	if ctx.Done() != nil {
		// Rule 4: no goroutine per subscription.
		stop := context.AfterFunc(ctx, func() {
			h.remove(s)
			s.end(context.Cause(ctx))
		})
		s.mu.Lock()
		if s.closed {
			stop()
		} else {
			s.stop = stop
		}
		s.mu.Unlock()
	}
	return s
}

func (h *hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.subs {
		if x == s {
			h.subs = append(h.subs[:i], h.subs[i+1:]...)
			h.recomputeLocked()
			return
		}
	}
}

func (h *hub) recomputeLocked() {
	var m Kind
	for _, s := range h.subs {
		m |= s.kinds
	}
	h.mask.Store(uint64(m))
}

// close ends every subscription with err; later subscriptions end at once.
func (h *hub) close(err error) {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return
	}
	h.done, h.err = true, err
	subs := h.subs
	h.subs = nil
	h.mask.Store(0)
	h.mu.Unlock()
	for _, s := range subs {
		s.end(err)
	}
}
