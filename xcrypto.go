package sshtap

// An x/crypto/ssh *ssh.Client over a Conn: code written against
// golang.org/x/crypto/ssh (and libraries on top of it, such as pkg/sftp)
// runs over sshtap's transport, events included.

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// NewSSHClient returns an x/crypto/ssh *ssh.Client that runs over c, an
// authenticated client Conn (it runs the handshake if needed; its error is
// returned). Sessions, port forwarding (Dial, Listen), global and channel
// requests of the *ssh.Client go through c, whose events keep flowing to
// its subscriptions; closing either closes both.
//
// The server's channel opens of the types the *ssh.Client handles
// (forwarded-tcpip and forwarded-streamlocal@openssh.com for its Listen
// calls, x11 and auth-agent@openssh.com for its HandleChannelOpen) go to
// the *ssh.Client from then on, no longer to c's own handlers. The
// server's global requests are answered by c. Requests the server sends on
// a channel (exit-status, exit-signal, keepalive@openssh.com, ...) reach
// the *ssh.Client in order, each with WantReply false: a reply the server
// wants is sent by c (a refusal, as OpenSSH's client answers requests it
// does not know).
func NewSSHClient(ctx context.Context, c *Conn) (*ssh.Client, error) {
	if !c.isClient {
		return nil, errors.New("sshtap: NewSSHClient needs a client Conn")
	}
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	x := &xConn{c: c, chans: make(chan ssh.NewChannel)}
	for _, typ := range []string{"forwarded-tcpip", "forwarded-streamlocal@openssh.com", "x11", "auth-agent@openssh.com"} {
		c.registerChannelHandler(typ, x.deliverOpen)
	}
	reqs := make(chan *ssh.Request)
	go func() {
		// The *ssh.Client ranges over both until they are closed.
		<-c.closing
		close(reqs)
		x.mu.Lock()
		x.closed = true
		close(x.chans)
		x.mu.Unlock()
	}()
	return ssh.NewClient(x, x.chans, reqs), nil
}

// xConn is an ssh.Conn over a Conn.
type xConn struct {
	c *Conn

	mu     sync.Mutex // guards closed and sends on chans
	chans  chan ssh.NewChannel
	closed bool
}

func (x *xConn) User() string          { return x.c.User() }
func (x *xConn) SessionID() []byte     { return x.c.SessionID() }
func (x *xConn) ClientVersion() []byte { return []byte(x.c.ClientVersion()) }
func (x *xConn) ServerVersion() []byte { return []byte(x.c.ServerVersion()) }
func (x *xConn) RemoteAddr() net.Addr  { return x.c.RemoteAddr() }
func (x *xConn) LocalAddr() net.Addr   { return x.c.LocalAddr() }
func (x *xConn) Close() error          { return x.c.Close() }
func (x *xConn) Wait() error           { return x.c.Wait() }

func (x *xConn) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	return x.c.SendGlobalRequest(context.Background(), name, wantReply, payload)
}

func (x *xConn) OpenChannel(name string, data []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	ch, err := x.c.openChannel(context.Background(), name, data, nil, false)
	if err != nil {
		return nil, nil, xOpenError(err)
	}
	return newXChannel(ch)
}

// xOpenError makes a refusal an *ssh.OpenChannelError, as x/crypto callers
// expect.
func xOpenError(err error) error {
	var oe *OpenChannelError
	if errors.As(err, &oe) {
		return &ssh.OpenChannelError{Reason: ssh.RejectionReason(oe.Reason), Message: oe.Message}
	}
	return err
}

// deliverOpen hands the server's channel open to the *ssh.Client (a
// channel handler: its own goroutine, one per open) and waits for its
// decision, so that the open is not rejected as unhandled meanwhile.
func (x *xConn) deliverOpen(nc *NewChannel) {
	done := make(chan struct{})
	x.mu.Lock() // the send and the close of chans exclude each other
	sent := false
	if !x.closed {
		select {
		case x.chans <- &xNewChannel{nc: nc, done: done}:
			sent = true
		case <-nc.done: // timed out while the *ssh.Client was busy
		case <-x.c.closing:
		}
	}
	x.mu.Unlock()
	if !sent {
		return // rejected when the handler returns
	}
	// The *ssh.Client's application decides it when it gets to it (an
	// accept loop may be busy for long): as in x/crypto, no timeout then.
	// The 256 pending opens stay the bound.
	if nc.timer != nil {
		nc.timer.Stop()
	}
	select {
	case <-done:
	case <-nc.done:
	}
}

// xNewChannel is an ssh.NewChannel.
type xNewChannel struct {
	nc   *NewChannel
	done chan struct{}
	once sync.Once
}

func (n *xNewChannel) decided() { n.once.Do(func() { close(n.done) }) }

func (n *xNewChannel) Accept() (ssh.Channel, <-chan *ssh.Request, error) {
	defer n.decided()
	ch, err := n.nc.Accept()
	if err != nil {
		return nil, nil, err
	}
	return newXChannel(ch)
}

func (n *xNewChannel) Reject(reason ssh.RejectionReason, message string) error {
	defer n.decided()
	return n.nc.Reject(OpenFailureReason(reason), message)
}

func (n *xNewChannel) ChannelType() string { return n.nc.Type() }
func (n *xNewChannel) ExtraData() []byte   { return n.nc.ExtraData() }

// xChannel is an ssh.Channel.
type xChannel struct {
	*Channel
}

// xEOF is x/crypto's error for a channel that is closed: io.EOF.
func xEOF(err error) error {
	if errors.Is(err, ErrChannelClosed) {
		return io.EOF
	}
	return err
}

func (c xChannel) SendRequest(name string, wantReply bool, payload []byte) (bool, error) {
	ok, err := c.Channel.SendRequest(context.Background(), name, wantReply, payload)
	return ok, xEOF(err)
}

func (c xChannel) Close() error { return xEOF(c.Channel.Close()) }

func (c xChannel) Stderr() io.ReadWriter { return c.Channel.Stderr() }

// newXChannel wraps ch and feeds its requests, in order, to the returned
// channel, which is closed once the peer closed ch (after its last
// request) or the Conn ended.
func newXChannel(ch *Channel) (ssh.Channel, <-chan *ssh.Request, error) {
	reqs := make(chan *ssh.Request)
	q := &xRequestQueue{notify: make(chan struct{}, 1)}
	// Inline, on the transport goroutine: requests are queued in arrival
	// order before the CLOSE that may follow them is handled.
	ch.handleRequestsInline(func(r *Request) {
		if r.WantReply {
			r.Reply(false, nil)
		}
		q.push(&ssh.Request{Type: r.Type, Payload: r.Payload})
	})
	go q.pump(reqs, ch.closedByPeer())
	return xChannel{ch}, reqs, nil
}

// xRequestQueue holds a channel's requests for the *ssh.Client, at most
// maxXRequests (a server that floods a channel whose requests are read
// slowly loses the excess); the pump drains it as the client reads.
type xRequestQueue struct {
	mu     sync.Mutex
	q      []*ssh.Request
	notify chan struct{}
}

const maxXRequests = 256

func (q *xRequestQueue) push(r *ssh.Request) {
	q.mu.Lock()
	if len(q.q) < maxXRequests {
		q.q = append(q.q, r)
	}
	q.mu.Unlock()
	notify(q.notify)
}

func (q *xRequestQueue) pop() *ssh.Request {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 {
		return nil
	}
	r := q.q[0]
	q.q[0] = nil
	q.q = q.q[1:]
	return r
}

// pump sends the queued requests to out, in order, and closes out once
// the channel is closed by the peer (or the Conn ended) and nothing is
// left. Like x/crypto's own, the request channel must be serviced: the
// *ssh.Client's sessions do, ssh.DiscardRequests does.
func (q *xRequestQueue) pump(out chan<- *ssh.Request, peerClosed <-chan struct{}) {
	defer close(out)
	for {
		if r := q.pop(); r != nil {
			out <- r
			continue
		}
		select {
		case <-q.notify:
		case <-peerClosed:
			// No request is queued after the peer's CLOSE; deliver the
			// ones that came before it.
			for r := q.pop(); r != nil; r = q.pop() {
				out <- r
			}
			return
		}
	}
}

// XConnMetadata returns m as an x/crypto ssh.ConnMetadata (whose version
// strings are byte slices), for x/crypto callbacks.
func XConnMetadata(m ConnMetadata) ssh.ConnMetadata { return xMeta{m} }

type xMeta struct{ ConnMetadata }

func (m xMeta) ClientVersion() []byte { return []byte(m.ConnMetadata.ClientVersion()) }
func (m xMeta) ServerVersion() []byte { return []byte(m.ConnMetadata.ServerVersion()) }

// XPublicKeyCallback adapts an x/crypto public key callback to
// ServerConfig.PublicKeyCallback, so that ssh.CertChecker works unchanged:
//
//	cfg.PublicKeyCallback = sshtap.XPublicKeyCallback(checker.Authenticate)
//
// Its error is the server-side reason of a refusal (UserAuthEvent.Err);
// the permissions it grants, ExtraData included, become Conn.Permissions.
// An x/crypto *ssh.PartialSuccessError becomes a *PartialSuccessError
// whose next callbacks are adapted the same way (XPasswordCallback,
// XKeyboardInteractiveCallback).
func XPublicKeyCallback(f func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error)) func(ConnMetadata, ssh.PublicKey) (*Permissions, error) {
	if f == nil {
		return nil
	}
	return func(m ConnMetadata, key ssh.PublicKey) (*Permissions, error) {
		return fromXPermissions(f(xMeta{m}, key))
	}
}

// XPasswordCallback adapts an x/crypto password callback to
// ServerConfig.PasswordCallback, as XPublicKeyCallback does.
func XPasswordCallback(f func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error)) func(ConnMetadata, []byte) (*Permissions, error) {
	if f == nil {
		return nil
	}
	return func(m ConnMetadata, password []byte) (*Permissions, error) {
		return fromXPermissions(f(xMeta{m}, password))
	}
}

// XKeyboardInteractiveCallback adapts an x/crypto keyboard-interactive
// callback to ServerConfig.KeyboardInteractiveCallback, as
// XPublicKeyCallback does.
func XKeyboardInteractiveCallback(f func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error)) func(ConnMetadata, KeyboardInteractiveChallenge) (*Permissions, error) {
	if f == nil {
		return nil
	}
	return func(m ConnMetadata, challenge KeyboardInteractiveChallenge) (*Permissions, error) {
		return fromXPermissions(f(xMeta{m}, ssh.KeyboardInteractiveChallenge(challenge)))
	}
}

// fromXPermissions converts an x/crypto auth callback's result.
func fromXPermissions(p *ssh.Permissions, err error) (*Permissions, error) {
	var pse *ssh.PartialSuccessError
	if errors.As(err, &pse) {
		return nil, &PartialSuccessError{
			Next: ServerAuthCallbacks{
				PasswordCallback:            XPasswordCallback(pse.Next.PasswordCallback),
				PublicKeyCallback:           XPublicKeyCallback(pse.Next.PublicKeyCallback),
				KeyboardInteractiveCallback: XKeyboardInteractiveCallback(pse.Next.KeyboardInteractiveCallback),
			},
			// x/crypto checks the source-address of the permissions
			// returned with a partial success too.
			Permissions: fromXPermissionsOnly(p),
		}
	}
	if err != nil || p == nil {
		return nil, err
	}
	return fromXPermissionsOnly(p), nil
}

func fromXPermissionsOnly(p *ssh.Permissions) *Permissions {
	if p == nil {
		return nil
	}
	return &Permissions{CriticalOptions: p.CriticalOptions, Extensions: p.Extensions, ExtraData: p.ExtraData}
}
