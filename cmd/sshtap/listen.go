package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// listenLocal opens the listener of a local forward (-L, -D). Without a
// bind address, or with "localhost", ssh listens on every loopback address
// (channels.c: channel_fwd_bind_addr gives no address, and getaddrinfo
// without AI_PASSIVE returns 127.0.0.1 and ::1), so that no other local
// user can take the port on the other loopback and receive the clients
// whose "localhost" resolves there first. So does this, with the same port
// on both, without resolving "localhost" itself. A machine without IPv6
// gets the IPv4 listener alone; a ::1 port already taken is a warning, as
// in ssh.
func (c *client) listenLocal(network, addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if network != "tcp" || err != nil || host != "localhost" {
		return net.Listen(network, addr)
	}
	l4, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, err
	}
	_, port, _ = net.SplitHostPort(l4.Addr().String())
	l6, err := net.Listen("tcp", net.JoinHostPort("::1", port))
	switch {
	case err == nil:
		return newJointListener(l4, l6), nil
	case errors.Is(err, syscall.EADDRINUSE):
		c.note(fmt.Sprintf("warning: listening on 127.0.0.1:%s only: [::1]:%s is already taken", port, port))
	}
	return l4, nil
}

// jointListener accepts from several listeners as one; Addr is the
// first's. Each listener has a goroutine that hands its connections over
// until Close.
type jointListener struct {
	ls       []net.Listener
	accepted chan accepted
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

type accepted struct {
	conn net.Conn
	err  error
}

func newJointListener(ls ...net.Listener) *jointListener {
	j := &jointListener{ls: ls, accepted: make(chan accepted), done: make(chan struct{})}
	for _, l := range ls {
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			for {
				conn, err := l.Accept()
				select {
				case j.accepted <- accepted{conn, err}:
				case <-j.done:
					if conn != nil {
						conn.Close()
					}
					return
				}
				if err != nil && !acceptRetryable(err) {
					return
				}
			}
		}()
	}
	return j
}

func (j *jointListener) Accept() (net.Conn, error) {
	select {
	case a := <-j.accepted:
		// Close may have come while both were ready: it wins.
		select {
		case <-j.done:
			if a.conn != nil {
				a.conn.Close()
			}
			return nil, net.ErrClosed
		default:
		}
		return a.conn, a.err
	case <-j.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener and waits for their goroutines.
func (j *jointListener) Close() error {
	var err error
	j.once.Do(func() {
		close(j.done)
		for _, l := range j.ls {
			err = errors.Join(err, l.Close())
		}
		j.wg.Wait()
	})
	return err
}

func (j *jointListener) Addr() net.Addr { return j.ls[0].Addr() }
