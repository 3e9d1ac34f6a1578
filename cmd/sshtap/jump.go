package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"sshtap"
	"sshtap/agentproxy"
	"sshtap/internal/eventfmt"
)

// hop is the connection to one jump host (ProxyJump, -J).
type hop struct {
	src     eventfmt.Source // its label on the event stream
	s       *settings
	conn    *sshtap.Conn
	sum     *eventfmt.Summary
	watched <-chan struct{}
	start   time.Time
	wg      sync.WaitGroup // its UpdateHostKeys goroutine
	agent   io.Closer      // its own agent connection, when it has one
}

// maxJumpHosts bounds the way to the destination: a ProxyJump that leads
// back through the config to itself is a loop.
const maxJumpHosts = 16

// planHops resolves the jump hosts of s, in the order they are connected.
// Each has its own settings from the config (-F, else ~/.ssh/config), as
// the "ssh -W" process that OpenSSH runs for each hop would have: user,
// port, identities, known hosts and host key checking, algorithms. As in
// ssh, the command line's -o options are not passed on; the first hop's
// own ProxyJump or ProxyCommand is honoured (ssh reaches it with a plain
// "ssh -W"), the later hops' are not (ssh passes them -J, which wins).
func (c *client) planHops(s *settings, depth int) ([]*settings, error) {
	var chain []*settings
	for i, spec := range s.jumps {
		user, host, port, err := parseJumpHost(spec)
		if err != nil {
			return nil, fmt.Errorf("jump host %v", err)
		}
		hf := &clientFlags{configFile: s.configFile, quiet: s.quiet, verbose: s.verbose, user: user}
		if port != 0 {
			hf.port = strconv.Itoa(port)
		}
		hs, err := resolve(hf, []string{host}, c.app.getenv)
		if err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				err = errors.New(ue.msg)
			}
			return nil, fmt.Errorf("jump host %s: %v", host, err)
		}
		if i > 0 {
			hs.jumps, hs.proxyCommand = nil, ""
		} else if len(hs.jumps) > 0 {
			if depth >= maxJumpHosts {
				return nil, fmt.Errorf("jump host loop via %s: more than %d jump hosts", host, maxJumpHosts)
			}
			before, err := c.planHops(hs, depth+1)
			if err != nil {
				return nil, err
			}
			chain = append(chain, before...)
		}
		chain = append(chain, hs)
	}
	if len(chain) > maxJumpHosts {
		return nil, fmt.Errorf("more than %d jump hosts", maxJumpHosts)
	}
	// As ssh refuses a jump host that is the destination itself ("jumphost
	// loop via"): the same host, port and user twice on the way is a loop.
	seen := map[string]bool{endpoint(s): true}
	for _, hs := range chain {
		if seen[endpoint(hs)] {
			return nil, fmt.Errorf("jump host loop via %s (%s@%s port %d twice on the way)", hs.host, hs.user, hs.hostname, hs.port)
		}
		seen[endpoint(hs)] = true
	}
	return chain, nil
}

func endpoint(s *settings) string {
	return s.user + "@" + net.JoinHostPort(s.hostname, strconv.Itoa(s.port))
}

// dialTransport makes the stream the destination's SSH connection runs
// over: a direct-tcpip channel of the last jump host, a ProxyCommand's
// stdin and stdout, or a TCP connection. via says which, for the
// "connected to" note. dctx bounds the TCP connect (ConnectTimeout).
func (c *client) dialTransport(ctx, dctx context.Context, s *settings, addr string) (rw io.ReadWriteCloser, via string, err error) {
	switch {
	case len(s.jumps) > 0:
		chain, err := c.planHops(s, 0)
		if err != nil {
			return nil, "", err
		}
		last, err := c.connectHops(ctx, chain)
		if err != nil {
			c.closeHops()
			return nil, "", err
		}
		ch, err := last.conn.Dial(dctx, "tcp", addr)
		if err != nil {
			err = hopDialError(last, addr, err)
			c.closeHops()
			return nil, "", err
		}
		return ch, "via jump host " + last.src.Hop, nil
	case s.proxyCommand != "":
		p, err := startProxyCommand(s.proxyCommand, c.app.stderr)
		if err != nil {
			return nil, "", err
		}
		return p, "via ProxyCommand", nil
	}
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, "", connectError(s.hostname, s.port, err)
	}
	return nc, nc.RemoteAddr().String(), nil
}

// hopDialError says that jump host h could not open a channel to addr.
func hopDialError(h *hop, addr string, err error) error {
	var oe *sshtap.OpenChannelError
	if errors.As(err, &oe) {
		return fmt.Errorf("jump host %s refused to connect to %s: %s (%s)", h.src.Hop, addr, eventfmt.Clean(oe.Message), oe.Reason)
	}
	if cerr := h.conn.Err(); cerr != nil {
		err = describeConnError(cerr)
	}
	return fmt.Errorf("jump host %s: connecting to %s: %v", h.src.Hop, addr, err)
}

// connectHops connects to each jump host of chain through the one before
// (the first directly, or by its own ProxyCommand) and returns the last.
// Each connection's events are shown labelled with its hop. Connections
// made are kept in c.hops even on failure, for closeHops.
func (c *client) connectHops(ctx context.Context, chain []*settings) (*hop, error) {
	var prev *hop
	for i, hs := range chain {
		h := &hop{src: eventfmt.Source{Hop: hs.host, HopIndex: i + 1}, s: hs, sum: new(eventfmt.Summary)}
		note := func(msg string) { c.noteFrom(h.src, msg) }
		ag := c.agent
		if sock := c.agentSocketOf(hs); sock != c.agentSocket() {
			ag = nil
			if sock != "" {
				a, closer, err := agentproxy.Dial(sock)
				if err != nil {
					note(fmt.Sprintf("warning: agent %s: %v", sock, err))
				} else {
					ag, h.agent = a, closer
				}
			}
		}
		cfg, plan, hk, hostport, err := c.connConfig(hs, ag, note)
		if err != nil {
			closeAgent(h)
			return nil, fmt.Errorf("jump host %s: %w", hs.host, err)
		}
		var rw io.ReadWriteCloser
		var via string
		h.start = time.Now()
		switch {
		case prev != nil:
			ch, err := prev.conn.Dial(ctx, "tcp", hostport)
			if err != nil {
				closeAgent(h)
				return nil, hopDialError(prev, hostport, err)
			}
			rw, via = ch, "via jump host "+prev.src.Hop
		case hs.proxyCommand != "":
			p, err := startProxyCommand(hs.proxyCommand, c.app.stderr)
			if err != nil {
				closeAgent(h)
				return nil, fmt.Errorf("jump host %s: %w", hs.host, err)
			}
			rw, via = p, "via ProxyCommand"
		default:
			dctx := ctx
			if hs.connectTimeout > 0 {
				var cancel context.CancelFunc
				dctx, cancel = context.WithTimeout(ctx, hs.connectTimeout)
				defer cancel()
			}
			nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", hostport)
			if err != nil {
				closeAgent(h)
				return nil, fmt.Errorf("jump host %s: %w", hs.host, connectError(hs.hostname, hs.port, err))
			}
			rw, via = nc, nc.RemoteAddr().String()
		}
		h.conn = sshtap.ClientConn(rw, cfg)
		c.hops = append(c.hops, h)
		c.out.w.NoteFrom(h.src, fmt.Sprintf("connected to %s (%s) as %s", hostport, via, hs.user))
		h.watched = c.out.watchFrom(h.conn, h.src, h.sum)
		c.learnHostKeys(ctx, &h.wg, h.conn, hk, hostport, hs.updateHostKeys)
		if err := handshakeWithin(ctx, h.conn, hs.connectTimeout, hostport); err != nil {
			return nil, fmt.Errorf("jump host %s: %w", hs.host, c.handshakeError(hs, plan, err))
		}
		prev = h
	}
	return prev, nil
}

// handshakeWithin runs conn's handshake; a timeout, when not zero, bounds
// the version exchange and the first key exchange but not authentication
// (as ConnectTimeout does for the destination).
func handshakeWithin(ctx context.Context, conn *sshtap.Conn, timeout time.Duration, addr string) error {
	if timeout > 0 {
		hctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		timer := time.AfterFunc(timeout, func() {
			if conn.SessionID() == nil {
				cancel(fmt.Errorf("connection to %s timed out during the key exchange (ConnectTimeout %v)", addr, timeout))
			}
		})
		defer timer.Stop()
		ctx = hctx
	}
	return conn.Handshake(ctx)
}

// closeHops closes the jump hosts' connections, the last one first, and
// writes each one's summary after its last event.
func (c *client) closeHops() {
	for i := len(c.hops) - 1; i >= 0; i-- {
		h := c.hops[i]
		h.conn.Close()
		h.wg.Wait()
		c.out.drain(h.watched)
		c.out.finishFrom(h.src, h.sum, h.conn.Stats(), time.Since(h.start))
		closeAgent(h)
	}
	c.hops = nil
}

func closeAgent(h *hop) {
	if h.agent != nil {
		h.agent.Close()
		h.agent = nil
	}
}
