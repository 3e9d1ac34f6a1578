package sshtap

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// FuncReadWriter adapts libssh2-style send and receive functions to the
// io.ReadWriter a Conn runs over, replacing libssh2's SEND and RECV
// callbacks.
//
// Send writes some of b and returns how many bytes it took; Recv reads into b
// and returns how many bytes it produced. Either may return ErrWouldBlock
// (with n == 0 or n > 0) to mean "nothing more right now, call again": the
// adapter then waits (Backoff, doubling up to 10 ms) and calls again, so a
// non-blocking socket or a user-space transport plugs in as it is. Recv
// returning (0, nil) is treated like ErrWouldBlock; io.EOF ends the stream.
//
// Close makes pending and later calls fail with net.ErrClosed, which is how a
// Conn interrupts a stalled peer; CloseFunc, if set, is called once.
// Send and Recv are called from different goroutines but each from one at a
// time.
type FuncReadWriter struct {
	Send      func(b []byte) (int, error)
	Recv      func(b []byte) (int, error)
	CloseFunc func() error
	// Backoff is the first wait after ErrWouldBlock. Zero means 50µs.
	Backoff time.Duration

	closed atomic.Bool
}

// Read implements io.Reader over Recv.
func (f *FuncReadWriter) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	wait := f.backoff()
	for {
		if f.closed.Load() {
			return 0, net.ErrClosed
		}
		n, err := f.Recv(b)
		if n > 0 {
			if errors.Is(err, ErrWouldBlock) {
				err = nil
			}
			return n, err
		}
		if err != nil && !errors.Is(err, ErrWouldBlock) {
			return 0, err
		}
		wait = pause(wait)
	}
}

// Write implements io.Writer over Send, calling it until all of b is taken.
func (f *FuncReadWriter) Write(b []byte) (int, error) {
	wait := f.backoff()
	done := 0
	for done < len(b) {
		if f.closed.Load() {
			return done, net.ErrClosed
		}
		n, err := f.Send(b[done:])
		if n < 0 || n > len(b)-done {
			return done, errors.New("sshtap: Send returned an invalid count")
		}
		done += n
		switch {
		case err == nil && n == 0:
			return done, io.ErrShortWrite
		case err == nil, n > 0 && errors.Is(err, ErrWouldBlock):
			wait = f.backoff()
		case errors.Is(err, ErrWouldBlock):
			wait = pause(wait)
		default:
			return done, err
		}
	}
	return done, nil
}

// Close marks the adapter closed and calls CloseFunc once.
func (f *FuncReadWriter) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	if f.CloseFunc != nil {
		return f.CloseFunc()
	}
	return nil
}

func (f *FuncReadWriter) backoff() time.Duration {
	if f.Backoff > 0 {
		return f.Backoff
	}
	return 50 * time.Microsecond
}

func pause(d time.Duration) time.Duration {
	time.Sleep(d)
	if d < 10*time.Millisecond {
		d *= 2
	}
	return d
}
