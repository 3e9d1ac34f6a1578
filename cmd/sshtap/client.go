package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap"
	"sshtap/agentproxy"
	"sshtap/internal/eventfmt"
	"sshtap/kex"
)

// runClient is `sshtap [flags] [user@]host [command...]`.
func (a *app) runClient(ctx context.Context, args []string) int {
	f, rest, err := parseClientArgs(args)
	if err != nil {
		return a.fail(err)
	}
	if f.help {
		a.usage(a.stdout)
		return exitOK
	}
	if f.version {
		fmt.Fprintln(a.stdout, "sshtap "+version)
		return exitOK
	}
	s, err := resolve(f, rest, a.getenv)
	if err != nil {
		return a.fail(err)
	}
	out, err := a.openEvents(&f.events, clientUsage)
	if err != nil {
		return a.fail(err)
	}
	defer out.close()
	c := &client{app: a, s: s, out: out, sum: new(eventfmt.Summary)}
	return a.fail(c.run(ctx))
}

// parseClientArgs parses the client's command line. As ssh, options may
// also follow the destination, up to the command (sshtap host -p 2222
// uname): the command starts at the first argument after the destination
// that is not an option, or after "--". rest is the destination and the
// command's words.
func parseClientArgs(args []string) (f *clientFlags, rest []string, err error) {
	f = new(clientFlags)
	if rest, err = parseOpts(args, f.opts(), true, clientUsage); err != nil {
		return nil, nil, err
	}
	if len(rest) > 1 && strings.HasPrefix(rest[1], "-") && len(rest[1]) > 1 {
		more, err := parseOpts(rest[1:], f.opts(), true, clientUsage)
		if err != nil {
			return nil, nil, err
		}
		rest = append(rest[:1:1], more...)
	}
	return f, rest, nil
}

// version is the CLI's version, also sent in the identification string.
const version = "0.1"

// client is one connection made by runClient.
type client struct {
	app    *app
	s      *settings
	out    *eventOutput
	sum    *eventfmt.Summary
	prompt *prompter
	conn   *sshtap.Conn
	agent  agent.ExtendedAgent
	wg     sync.WaitGroup // forwarding and X11 goroutines

	fwdMu        sync.Mutex
	fwdOpen      map[io.Closer]struct{} // listeners and forwarded connections' ends
	fwdDone      bool                   // the SSH connection ended: close new ones at once
	fwds         []*forward             // forwards set up, in order
	fwdConns     map[*fwdConn]struct{}  // open forwarded connections, for ~#
	connSeq      int                    // numbers fwdConns
	noForwarding bool                   // the host key changed: no forwarding (as ssh)

	hops []*hop // the jump hosts' connections, first connected first
}

// note shows a line about what sshtap itself does: on the event stream
// (kind "note") with -v, and always for warnings unless -q.
func (c *client) note(msg string) { c.noteFrom(eventfmt.Source{}, msg) }

// noteFrom is note about the connection src names (a jump host's).
func (c *client) noteFrom(src eventfmt.Source, msg string) {
	shown := strings.HasPrefix(msg, "warning") || strings.HasPrefix(msg, "Permanently added") || strings.HasPrefix(msg, "Learned new hostkey") ||
		strings.HasPrefix(msg, "Deprecated hostkey removed")
	if c.s.verbose || shown && !c.s.quiet {
		c.out.w.NoteFrom(src, msg)
	}
}

func (c *client) run(ctx context.Context) (err error) {
	s := c.s
	for _, n := range s.configNotes {
		c.note(n)
	}
	c.prompt = newPrompter(c.app.getenv, s.batch)
	c.prompt.interrupt = ctx.Done()
	c.prompt.onAsk = c.out.holdForPrompt
	defer c.prompt.close()

	// The agent, for authentication and -A.
	if sock := c.agentSocket(); sock != "" {
		ag, closer, err := agentproxy.Dial(sock)
		if err != nil {
			c.note(fmt.Sprintf("warning: agent %s: %v", sock, err))
		} else {
			defer closer.Close()
			c.agent = ag
		}
	}
	cfg, plan, hk, hostport, err := c.connConfig(s, c.agent, c.note)
	if err != nil {
		return err
	}
	addr := hostport
	if s.forwardAgent {
		if c.agent == nil {
			c.note("warning: agent forwarding requested but there is no agent (SSH_AUTH_SOCK)")
		} else {
			cfg.AgentHandler = (&agentproxy.Proxy{Backing: c.agent}).Handler()
		}
	}

	// Connect.
	dctx := ctx
	if s.connectTimeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, s.connectTimeout)
		defer cancel()
	}
	nc, via, err := c.dialTransport(ctx, dctx, s, addr)
	if err != nil {
		return err
	}
	// Registered before the destination's own end below, so it runs
	// after it: the jump hosts go last.
	defer c.closeHops()
	conn := sshtap.ClientConn(nc, cfg)
	c.conn = conn
	c.out.w.Note("", fmt.Sprintf("connected to %s (%s) as %s", addr, via, s.user))
	watched := c.out.watch(conn, "", c.sum)
	c.learnHostKeys(ctx, &c.wg, conn, hk, hostport, s.updateHostKeys)
	defer func() {
		conn.Close()
		c.wg.Wait()
		c.out.drain(watched)
		c.out.finish("", c.sum, conn.Stats(), time.Since(c.out.start))
	}()

	// ConnectTimeout also bounds the version exchange and the first key
	// exchange (a server that accepts and then says nothing), but not
	// authentication: a person typing a password takes the time it takes.
	if err := handshakeWithin(ctx, conn, s.connectTimeout, addr); err != nil {
		return c.handshakeError(s, plan, err)
	}
	c.wg.Add(1)
	go c.closeForwards()
	if hk.changed.Load() {
		// As ssh with a changed key under StrictHostKeyChecking=no.
		s.locals, s.remotes, s.dynamics, s.forwardAgent, s.forwardX11 = nil, nil, nil, false, false
		c.noForwarding = true
	}
	if err := c.startForwards(ctx); err != nil {
		return err
	}
	if s.stdioForward != "" {
		return c.stdioForward(ctx)
	}
	if s.noCommand {
		// -N: forwarding only, until interrupted or the server goes.
		select {
		case <-ctx.Done():
		case <-waitConn(conn):
			if err := conn.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
				return describeConnError(err)
			}
		}
		conn.Disconnect(sshtap.DisconnectByApplication, "disconnected by user")
		return nil
	}
	return c.session(ctx)
}

// connConfig makes the configuration of a connection with settings s:
// host key checking against s's known_hosts files (hostport is the name
// they are looked up under), authentication with s's methods and ag's keys,
// s's algorithms. note shows what sshtap does on this connection.
func (c *client) connConfig(s *settings, ag agent.ExtendedAgent, note func(string)) (cfg *sshtap.Config, plan *authPlan, hk *hostKeyChecker, hostport string, err error) {
	hk, err = newHostKeyChecker(s.check, s.knownHosts, s.globalKnown, s.hashKnownHosts,
		func(q string) (string, error) { return c.prompt.ask(q, true) }, note)
	if err != nil {
		return nil, nil, nil, "", err
	}
	if !c.prompt.available() {
		hk.ask = nil
	}
	hk.caSigAlgs = s.caSigAlgs
	hk.minRSABits = s.requiredRSASize
	hk.hostKeyAlgos = s.hkAlgs
	if len(hk.hostKeyAlgos) == 0 {
		hk.hostKeyAlgos = kex.DefaultHostKeyAlgos
	}
	hostport = net.JoinHostPort(s.hostname, strconv.Itoa(s.port))
	plan = &authPlan{
		user: s.user, host: s.hostname, agent: ag, identities: s.identities, explicit: s.explicit,
		identOnly: s.identitiesOnly, pubkey: s.pubkey, password: s.password, kbdInt: s.kbdInt,
		passwordTurn: s.passwordTurns, preferred: s.preferred, prompt: c.prompt, note: note,
		minRSABits: s.requiredRSASize,
		unsafe:     hk.changed.Load,
	}
	cfg = &sshtap.Config{
		TransportConfig: sshtap.TransportConfig{
			KexAlgorithms: s.kex, Ciphers: s.ciphers, MACs: s.macs, HostKeyAlgorithms: s.hkAlgs,
			MACPolicy: s.macPolicy, RekeyBytes: s.rekeyBytes, RekeyInterval: s.rekeyInterval,
			Version: "sshtap_" + version,
		},
		User:                s.user,
		Auth:                plan.methods(),
		PublicKeyAlgorithms: s.pubkeyAlgs,
		HostKeyCallback:     func(_ string, remote net.Addr, key ssh.PublicKey) error { return hk.check(hostport, remote, key) },
		KeepAlive:           sshtap.KeepAlive{Interval: s.keepAlive, CountMax: s.keepAliveMax},
	}
	if s.compression {
		// As OpenSSH's client with Compression yes.
		cfg.Compression = []string{sshtap.CompressionZlibSSH, sshtap.CompressionZlib, sshtap.CompressionNone}
	}
	cfg.HostKeyAlgorithms = hostKeyAlgorithms(s, hk, hostport)
	return cfg, plan, hk, hostport, nil
}

// learnHostKeys follows the keys the server announces after
// authentication (UpdateHostKeys mode: yes, ask; no does nothing).
// The goroutine doing it is counted in wg and ends with conn.
func (c *client) learnHostKeys(ctx context.Context, wg *sync.WaitGroup, conn *sshtap.Conn, hk *hostKeyChecker, hostport, mode string) {
	if mode == "no" {
		return
	}
	sub := conn.Subscribe(ctx, sshtap.KindHostKeys)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range sub.Events() {
			if hke, ok := ev.(*sshtap.HostKeysEvent); ok {
				hk.updateHostKeys(ctx, conn, hostport, mode, hke.Keys)
			}
		}
	}()
}

// agentSocket is IdentityAgent or SSH_AUTH_SOCK ("" = none).
func (c *client) agentSocket() string { return c.agentSocketOf(c.s) }

// agentSocketOf is s's IdentityAgent or SSH_AUTH_SOCK ("" = none).
func (c *client) agentSocketOf(s *settings) string {
	switch s.identityAgent {
	case "none":
		return ""
	case "", "SSH_AUTH_SOCK":
		return c.app.getenv("SSH_AUTH_SOCK")
	}
	if v, ok := strings.CutPrefix(s.identityAgent, "$"); ok {
		return c.app.getenv(v)
	}
	return s.identityAgent
}

// hostKeyAlgorithms is the HostKeyAlgorithms list to offer to hostport:
// as configured, with the algorithms of the keys on record for the host
// first (preferKnown) unless the configuration set the order itself. As
// ssh (sshconnect2.c, use_known_hosts_order), that is when HostKeyAlgorithms
// is unset or only adds (+) or removes (-) names: -o
// HostKeyAlgorithms=+ssh-rsa to a host recorded with its RSA key asks for
// that key first. nil leaves the library its defaults.
func hostKeyAlgorithms(s *settings, hk *hostKeyChecker, hostport string) []string {
	if s.hkOwnOrder {
		return s.hkAlgs
	}
	algos := s.hkAlgs
	if len(algos) == 0 {
		algos = kex.DefaultHostKeyAlgos
	}
	if ordered := preferKnown(hk.knownAlgorithms(hostport), hk.hasAuthority(hostport), algos); ordered != nil {
		return ordered
	}
	return s.hkAlgs
}

// preferKnown orders algos with those of the known keys first (as OpenSSH
// does), so a host whose RSA key is on record is asked for that key; with
// certs (an @cert-authority line matches the host) every certificate
// algorithm comes first too, as in OpenSSH's order_hostkeyalgs.
func preferKnown(known []string, certs bool, algos []string) []string {
	if len(known) == 0 && !certs {
		return nil
	}
	var first, rest []string
	for _, a := range algos {
		plain, isCert := strings.CutSuffix(a, "-cert-v01@openssh.com")
		isKnown := certs && isCert
		for _, k := range known {
			if a == k || plain == k {
				isKnown = true
			}
		}
		if isKnown {
			first = append(first, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(first, rest...)
}

// waitConn returns a channel closed when conn ends.
func waitConn(conn *sshtap.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		conn.Wait()
		close(done)
	}()
	return done
}

// connectError words a failed TCP connect as ssh does.
func connectError(host string, port int, err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("could not resolve hostname %s: %s", host, dns.Err)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connect to host %s port %d: connection refused", host, port)
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return fmt.Errorf("connect to host %s port %d: connection timed out", host, port)
	}
	return fmt.Errorf("connect to host %s port %d: %v", host, port, err)
}

// handshakeError explains why the handshake failed.
func (c *client) handshakeError(s *settings, plan *authPlan, err error) error {
	var ae *sshtap.AuthError
	var ne *kex.NegotiationError
	var hc *hostKeyChangedError
	var hu *hostKeyUnknownError
	switch {
	case errors.As(err, &hc):
		return hc
	case errors.As(err, &hu):
		return hu
	case errors.As(err, &ae):
		return plan.authFailure(ae)
	case errors.As(err, &ne):
		return fmt.Errorf("unable to negotiate with %s port %d: no matching %s.\n  sshtap offered: %s\n  server offered: %s",
			s.hostname, s.port, ne.What, strings.Join(ne.Client, ","), eventfmt.Clean(strings.Join(ne.Server, ",")))
	}
	var he *sshtap.HostKeyError
	if errors.As(err, &he) {
		return he.Err
	}
	return describeConnError(err)
}

// describeConnError words connection-level failures.
func describeConnError(err error) error {
	var de *sshtap.DisconnectError
	if errors.As(err, &de) && de.Remote {
		return fmt.Errorf("disconnected by the server: %s (reason %d, %s)", eventfmt.Clean(de.Message), de.Reason, de.Reason)
	}
	var ka *sshtap.KeepAliveError
	if errors.As(err, &ka) {
		return fmt.Errorf("server not responding: %d keepalive probes unanswered, %v apart", ka.Missed, ka.Interval)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("connection closed by the server")
	}
	return err
}
