package sshtap

import (
	"context"
	"sync"
)

// maxQueuedMsgs bounds a msgQueue: a peer may not flood us with messages
// the handshake runner has not asked for yet.
const maxQueuedMsgs = 128

// msgQueue hands copied payloads from the transport goroutine to one
// consumer goroutine. push never blocks.
type msgQueue struct {
	mu     sync.Mutex
	q      [][]byte
	notify chan struct{} // cap 1, made lazily
}

func (q *msgQueue) ch() chan struct{} {
	if q.notify == nil {
		q.notify = make(chan struct{}, 1)
	}
	return q.notify
}

// push queues a copy of p; it reports false when the queue is full.
func (q *msgQueue) push(p []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) >= maxQueuedMsgs {
		return false
	}
	q.q = append(q.q, append([]byte(nil), p...))
	select {
	case q.ch() <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the next payload, until ctx is done or closing is closed
// (then it returns errf()).
func (q *msgQueue) pop(ctx context.Context, closing <-chan struct{}, errf func() error) ([]byte, error) {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			p := q.q[0]
			q.q[0] = nil
			q.q = q.q[1:]
			q.mu.Unlock()
			return p, nil
		}
		ch := q.ch()
		q.mu.Unlock()
		select {
		case <-ch:
		case <-closing:
			return nil, errf()
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}
