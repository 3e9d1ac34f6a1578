// Package agentproxy connects sshtap to ssh-agents: it dials the user's
// agent, serves forwarded agent channels (auth-agent@openssh.com) of an
// sshtap client through a policy that can deny signatures and hide keys,
// publishing every request as an sshtap.AgentRequestEvent, and gives an
// sshtap server's code the agent a client forwarded.
//
// The wire format is golang.org/x/crypto/ssh/agent's.
package agentproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap"
)

// MaxMessageSize is the largest agent request a Proxy accepts (256 KiB,
// like OpenSSH's ssh-agent); a bigger frame ends the channel.
const MaxMessageSize = 256 * 1024

// ErrDenied is returned by the policy wrapper for requests the Policy
// refused; the remote side gets SSH_AGENT_FAILURE.
var ErrDenied = errors.New("agentproxy: request denied by policy")

// ErrTooLarge is returned by Serve when the remote side sent a frame larger
// than MaxMessageSize.
var ErrTooLarge = errors.New("agentproxy: agent message too large")

// Dial connects to the ssh-agent listening on the unix socket path ("" means
// $SSH_AUTH_SOCK). The Closer closes the connection.
func Dial(path string) (agent.ExtendedAgent, io.Closer, error) {
	if path == "" {
		path = os.Getenv("SSH_AUTH_SOCK")
		if path == "" {
			return nil, nil, errors.New("agentproxy: SSH_AUTH_SOCK is not set (no ssh-agent to connect to)")
		}
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("agentproxy: connect to agent: %w", err)
	}
	return agent.NewClient(c), c, nil
}

// NewClient returns an agent client speaking the agent protocol over rw
// (agent.NewClient).
func NewClient(rw io.ReadWriter) agent.ExtendedAgent { return agent.NewClient(rw) }

// SignRequest is a sign request as shown to Policy.AllowSign.
type SignRequest struct {
	Key   ssh.PublicKey
	Data  []byte
	Flags agent.SignatureFlags
	Conn  *sshtap.Conn // the Conn the request came over (nil outside one)
}

// Policy decides what the remote side may do with the backing agent.
type Policy struct {
	// AllowSign allows or denies each sign request (like ssh-add -c);
	// nil allows all.
	AllowSign func(SignRequest) bool
	// FilterKeys chooses which identities are listed; signing with a key
	// it hides is refused. nil shows all.
	FilterKeys func([]*agent.Key) []*agent.Key
	// AllowExtension allows or denies extension requests by name (such as
	// session-bind@openssh.com); nil allows all.
	AllowExtension func(name string) bool
	// AllowMutations allows add, remove, remove-all, lock and unlock;
	// by default they are refused.
	AllowMutations bool
}

// Proxy serves forwarded agent channels with a backing agent.
type Proxy struct {
	// Backing is the agent requests are proxied to: the local agent
	// (Dial), an in-process agent.NewKeyring(), or any agent.Agent.
	// Sign flags and extensions need an agent.ExtendedAgent.
	Backing agent.Agent
	Policy  Policy
}

// Handler returns the function to set as sshtap.Config.AgentHandler: it
// serves one auth-agent@openssh.com channel (see Serve) and closes it.
func (p *Proxy) Handler() func(*sshtap.Channel) {
	return func(ch *sshtap.Channel) {
		defer ch.Close()
		p.Serve(ch, ch.Conn())
	}
}

// Serve serves agent requests read from rw until it fails or reaches EOF;
// each request is checked against the Policy, proxied to Backing and, if
// conn is not nil, published with conn.NotifyAgentRequest. Frames larger than
// MaxMessageSize end it with ErrTooLarge.
func (p *Proxy) Serve(rw io.ReadWriter, conn *sshtap.Conn) error {
	w := &wrapper{p: p, conn: conn}
	lim := &limitRW{rw: rw}
	err := agent.ServeAgent(w, lim)
	if lim.tooLarge {
		return ErrTooLarge
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// EnableForwarding sends auth-agent-req@openssh.com on sess. The Conn's
// Config.AgentHandler must have been set (e.g. to Proxy.Handler()) before
// the Conn was made, or the channels the server opens are refused.
func EnableForwarding(sess *sshtap.Session) error { return sess.RequestAgentForwarding() }

// ForwardedAgent opens an agent channel to the client of s (which must have
// requested forwarding) and returns an agent client over it; the Closer
// closes the channel.
func ForwardedAgent(ctx context.Context, s *sshtap.ServerSession) (agent.ExtendedAgent, io.Closer, error) {
	ch, err := s.OpenAgentChannel(ctx)
	if err != nil {
		return nil, nil, err
	}
	return agent.NewClient(ch), ch, nil
}

// limitRW refuses frames announcing more than MaxMessageSize bytes. It
// tracks agent.ServeAgent's reads: a 4-byte length, then that many bytes.
type limitRW struct {
	rw       io.ReadWriter
	hdr      [4]byte
	nhdr     int
	body     uint32
	tooLarge bool
}

func (l *limitRW) Write(b []byte) (int, error) { return l.rw.Write(b) }

func (l *limitRW) Read(b []byte) (int, error) {
	if l.tooLarge {
		return 0, ErrTooLarge
	}
	if l.body > 0 {
		if uint32(len(b)) > l.body {
			b = b[:l.body]
		}
		n, err := l.rw.Read(b)
		l.body -= uint32(n)
		return n, err
	}
	// In a length header: read no further than its end, to see it.
	if len(b) > 4-l.nhdr {
		b = b[:4-l.nhdr]
	}
	n, err := l.rw.Read(b)
	copy(l.hdr[l.nhdr:], b[:n])
	l.nhdr += n
	if l.nhdr == 4 {
		l.nhdr = 0
		size := binary.BigEndian.Uint32(l.hdr[:])
		if size > MaxMessageSize {
			l.tooLarge = true
			return 0, ErrTooLarge
		}
		l.body = size
	}
	return n, err
}

// wrapper is the agent.ExtendedAgent ServeAgent serves: it applies the
// Policy and publishes events.
type wrapper struct {
	p    *Proxy
	conn *sshtap.Conn
}

func (w *wrapper) notify(ev sshtap.AgentRequestEvent, err error) {
	if err != nil && !errors.Is(err, ErrDenied) {
		ev.Err = err.Error()
	}
	if w.conn != nil {
		w.conn.NotifyAgentRequest(ev)
	}
}

func (w *wrapper) mutate(name, key string, f func() error) error {
	ev := sshtap.AgentRequestEvent{Request: name, Key: key, Allowed: w.p.Policy.AllowMutations}
	if !ev.Allowed {
		w.notify(ev, nil)
		return ErrDenied
	}
	err := f()
	w.notify(ev, err)
	return err
}

func (w *wrapper) visible() ([]*agent.Key, error) {
	keys, err := w.p.Backing.List()
	if err != nil {
		return nil, err
	}
	if f := w.p.Policy.FilterKeys; f != nil {
		keys = f(keys)
	}
	return keys, nil
}

func (w *wrapper) List() ([]*agent.Key, error) {
	keys, err := w.visible()
	w.notify(sshtap.AgentRequestEvent{Request: "list", Allowed: true}, err)
	return keys, err
}

func (w *wrapper) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return w.SignWithFlags(key, data, 0)
}

func (w *wrapper) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	ev := sshtap.AgentRequestEvent{Request: "sign", Key: ssh.FingerprintSHA256(key), Flags: uint32(flags), Allowed: true}
	if w.p.Policy.FilterKeys != nil {
		keys, err := w.visible()
		if err != nil {
			w.notify(ev, err)
			return nil, err
		}
		found := false
		want := key.Marshal()
		for _, k := range keys {
			if string(k.Marshal()) == string(want) {
				found = true
				break
			}
		}
		ev.Allowed = found
	}
	if ev.Allowed && w.p.Policy.AllowSign != nil {
		ev.Allowed = w.p.Policy.AllowSign(SignRequest{Key: key, Data: data, Flags: flags, Conn: w.conn})
	}
	if !ev.Allowed {
		w.notify(ev, nil)
		return nil, ErrDenied
	}
	var sig *ssh.Signature
	var err error
	if ea, ok := w.p.Backing.(agent.ExtendedAgent); ok {
		sig, err = ea.SignWithFlags(key, data, flags)
	} else if flags == 0 {
		sig, err = w.p.Backing.Sign(key, data)
	} else {
		err = errors.New("agentproxy: backing agent does not support sign flags")
	}
	w.notify(ev, err)
	return sig, err
}

func (w *wrapper) Add(key agent.AddedKey) error {
	fp := ""
	if s, err := ssh.NewSignerFromKey(key.PrivateKey); err == nil {
		fp = ssh.FingerprintSHA256(s.PublicKey())
	}
	return w.mutate("add", fp, func() error { return w.p.Backing.Add(key) })
}

func (w *wrapper) Remove(key ssh.PublicKey) error {
	return w.mutate("remove", ssh.FingerprintSHA256(key), func() error { return w.p.Backing.Remove(key) })
}

func (w *wrapper) RemoveAll() error {
	return w.mutate("remove-all", "", w.p.Backing.RemoveAll)
}

func (w *wrapper) Lock(passphrase []byte) error {
	return w.mutate("lock", "", func() error { return w.p.Backing.Lock(passphrase) })
}

func (w *wrapper) Unlock(passphrase []byte) error {
	return w.mutate("unlock", "", func() error { return w.p.Backing.Unlock(passphrase) })
}

// Signers is not reachable through the agent protocol.
func (w *wrapper) Signers() ([]ssh.Signer, error) {
	return nil, errors.New("agentproxy: Signers not supported")
}

func (w *wrapper) Extension(name string, contents []byte) ([]byte, error) {
	ev := sshtap.AgentRequestEvent{Request: "extension", Extension: name, Allowed: true}
	if f := w.p.Policy.AllowExtension; f != nil {
		ev.Allowed = f(name)
	}
	if !ev.Allowed {
		w.notify(ev, nil)
		// ServeAgent answers this error with SSH_AGENT_FAILURE.
		return nil, agent.ErrExtensionUnsupported
	}
	ea, ok := w.p.Backing.(agent.ExtendedAgent)
	if !ok {
		w.notify(ev, agent.ErrExtensionUnsupported)
		return nil, agent.ErrExtensionUnsupported
	}
	res, err := ea.Extension(name, contents)
	w.notify(ev, err)
	return res, err
}
