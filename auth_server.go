package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

// Defaults for ServerConfig.MaxAuthTries and LoginGraceTime (OpenSSH's).
const (
	defaultMaxAuthTries   = 6
	defaultLoginGraceTime = 2 * time.Minute
)

// maxPKCache bounds the publickey callback results kept between a query
// and its signed request.
const maxPKCache = 16

// authMeta is the ConnMetadata auth callbacks see: User is the name being
// authenticated (Conn.User is empty until authentication succeeded).
type authMeta struct {
	*Conn
	user string
}

func (m authMeta) User() string { return m.user }

// pkResult is a cached PublicKeyCallback decision.
type pkResult struct {
	perms *Permissions
	err   error
}

// serverAuthRun is the state of one server-side authentication.
type serverAuthRun struct {
	c          *Conn
	cb         ServerAuthCallbacks
	user       string
	service    string
	requests   int
	failures   int
	maxTries   int
	bannerSent bool
	partial    bool // a method succeeded partially (NoClientAuth no longer applies)
	pkCache    map[string]pkResult
	fatal      error // a transport error inside a keyboard-interactive challenge
}

// decision is the outcome of one request.
type decision struct {
	method, algo string
	perms        *Permissions
	err          error // nil: success
	reason       string
	reply        bool // a reply (PK_OK) was sent already: neither success nor failure
}

func (c *Conn) publishAuth(user, method, algo string, r AuthResult, remaining []string, reason string) {
	if r == AuthFailure && method != wire.MethodNone {
		c.authFailures.Add(1)
	}
	if c.hub.wants(KindUserAuth) {
		c.hub.publish(&UserAuthEvent{Header: now(), User: user, Method: method, Algorithm: algo,
			Result: r, Remaining: remaining, Err: reason})
	}
}

// serverAuth runs the server side of user authentication (RFC 4252) on the
// handshake runner: it answers USERAUTH_REQUESTs with the callbacks of
// ServerConfig until one succeeds, MaxAuthTries requests failed, or
// LoginGraceTime passed.
func (c *Conn) serverAuth(ctx context.Context) error {
	st := &serverAuthRun{
		c: c,
		cb: ServerAuthCallbacks{
			PasswordCallback:            c.scfg.PasswordCallback,
			PublicKeyCallback:           c.scfg.PublicKeyCallback,
			KeyboardInteractiveCallback: c.scfg.KeyboardInteractiveCallback,
		},
		maxTries: c.scfg.MaxAuthTries,
	}
	if st.maxTries <= 0 {
		st.maxTries = defaultMaxAuthTries
	}
	return st.run(ctx)
}

func (c *ServerConfig) loginGraceTime() time.Duration {
	if c.LoginGraceTime > 0 {
		return c.LoginGraceTime
	}
	return defaultLoginGraceTime
}

// loginGraceExpired ends a server Conn whose client did not authenticate
// within LoginGraceTime of the Conn's creation (the timer's func).
func (c *Conn) loginGraceExpired() {
	if !c.loginDecided.CompareAndSwap(loginPending, loginExpired) {
		return // authenticated first
	}
	stage := StageAuth
	c.mu.Lock()
	switch {
	case c.clientVersion == nil:
		stage = StageVersion
	case !c.keyed.Load():
		stage = StageKex
	}
	c.mu.Unlock()
	err := &LoginGraceError{Grace: c.scfg.loginGraceTime(), Stage: stage}
	// OpenSSH just closes the connection; once the client's identification
	// string arrived, the binary packet protocol is up and we say why.
	var reason DisconnectReason
	if stage != StageVersion {
		reason = DisconnectByApplication
	}
	c.abort(err, reason, "login grace time exceeded")
}

// methods lists the enabled methods (those with a callback), for
// USERAUTH_FAILURE: "a comma-separated name-list of authentication 'method
// name' values that may productively continue the authentication dialog"
// (RFC 4252 §5.1).
func (st *serverAuthRun) methods() []string {
	var m []string
	if st.cb.PublicKeyCallback != nil {
		m = append(m, wire.MethodPublicKey)
	}
	if st.cb.PasswordCallback != nil {
		m = append(m, wire.MethodPassword)
	}
	if st.cb.KeyboardInteractiveCallback != nil {
		m = append(m, wire.MethodKeyboardInteractive)
	}
	return m
}

func (st *serverAuthRun) meta() ConnMetadata { return authMeta{Conn: st.c, user: st.user} }

// write sends an auth reply, preceded by the banner the first time.
func (st *serverAuthRun) write(ctx context.Context, p []byte) error {
	if !st.bannerSent {
		st.bannerSent = true
		if b := st.c.scfg.Banner; b != "" {
			// RFC 4252 §5.4: "The SSH server may send an
			// SSH_MSG_USERAUTH_BANNER message at any time after this
			// authentication protocol starts and before authentication is
			// successful."
			m := wire.UserAuthBanner{Message: b}
			if err := st.c.writePacket(ctx, m.Marshal(nil)); err != nil {
				return err
			}
		}
	}
	return st.c.writePacket(ctx, p)
}

func (st *serverAuthRun) run(ctx context.Context) error {
	for {
		p, err := st.c.nextAuthMsg(ctx)
		if err != nil {
			return err
		}
		if p[0] != wire.MsgUserAuthRequest {
			return st.c.protocolError(fmt.Sprintf("unexpected %s during user authentication", wire.MsgName(p[0])), nil)
		}
		var req wire.UserAuthRequest
		if err := req.Unmarshal(p); err != nil {
			return st.c.protocolError("bad USERAUTH_REQUEST", err)
		}
		st.requests++
		if st.requests == 1 {
			st.user, st.service = req.User, req.Service
		} else if req.User != st.user || req.Service != st.service {
			// OpenSSH (auth2.c) disconnects with PROTOCOL_ERROR: "Change of
			// username or service not allowed".
			msg := fmt.Sprintf("Change of username or service not allowed: (%s,%s) -> (%s,%s)",
				st.user, st.service, req.User, req.Service)
			return st.c.abort(&ProtocolViolation{Msg: msg}, DisconnectProtocolError, msg)
		}
		if req.Service != wire.ServiceConnection {
			// RFC 4252 §5: "If the requested service is not available, the
			// server MAY disconnect immediately or at any later time.
			// Sending a proper disconnect message is RECOMMENDED."
			msg := "service not available: " + req.Service
			return st.c.abort(&DisconnectError{Reason: DisconnectServiceNotAvailable, Message: msg},
				DisconnectServiceNotAvailable, msg)
		}
		d, err := st.decide(ctx, &req)
		if err != nil {
			return err
		}
		if d.reply {
			continue
		}
		if d.err == nil {
			if err := checkSourceAddress(st.c.RemoteAddr(), d.perms); err != nil {
				d.err, d.reason = err, err.Error()
			}
		}
		// A step accepted as partial success is held to its certificate's
		// source-address as well.
		if pse := (*PartialSuccessError)(nil); errors.As(d.err, &pse) {
			if err := checkSourceAddress(st.c.RemoteAddr(), pse.Permissions); err != nil {
				d.err, d.reason = err, err.Error()
			}
		}
		if d.err == nil && st.c.admit != nil {
			if de := st.c.admit(); de != nil {
				return st.c.abort(de, de.Reason, de.Message)
			}
		}
		if d.err == nil {
			// Mark the Conn authenticated before the client can see
			// USERAUTH_SUCCESS and send connection messages.
			if !st.c.setAuthenticated(st.user, d.perms) {
				// The login grace time ran out first; it ends the Conn.
				<-st.c.closing
				return st.c.Err()
			}
			st.c.publishAuth(st.user, d.method, d.algo, AuthSuccess, nil, "")
			// RFC 4252 §5.1: "SSH_MSG_USERAUTH_SUCCESS ... is sent only
			// once."
			if err := st.write(ctx, (&wire.UserAuthSuccess{}).Marshal(nil)); err != nil {
				return err
			}
			st.c.announceHostKeys(ctx)
			return nil
		}
		var pse *PartialSuccessError
		if errors.As(d.err, &pse) {
			// RFC 4252 §5.1: partial success "MUST be TRUE if the
			// authentication request to which this is a response was
			// successful", and the list names what is still needed.
			st.cb = pse.Next
			st.partial = true
			st.pkCache = nil
			m := st.methods()
			st.c.publishAuth(st.user, d.method, d.algo, AuthPartialSuccess, m, "")
			f := wire.UserAuthFailure{Methods: m, PartialSuccess: true}
			if err := st.write(ctx, f.Marshal(nil)); err != nil {
				return err
			}
			continue
		}
		// OpenSSH does not count the first "none" request as a failure.
		if !(req.Method == wire.MethodNone && st.requests == 1) {
			st.failures++
		}
		m := st.methods()
		reason := d.reason
		if reason == "" {
			reason = d.err.Error()
		}
		st.c.publishAuth(st.user, d.method, d.algo, AuthFailure, m, reason)
		if st.failures >= st.maxTries {
			// OpenSSH (auth_maxtries_exceeded): DISCONNECT PROTOCOL_ERROR
			// "Too many authentication failures", instead of the failure
			// reply.
			msg := "Too many authentication failures"
			return st.c.abort(&DisconnectError{Reason: DisconnectProtocolError, Message: msg},
				DisconnectProtocolError, msg)
		}
		f := wire.UserAuthFailure{Methods: m}
		if err := st.write(ctx, f.Marshal(nil)); err != nil {
			return err
		}
	}
}

var (
	errMethodDisabled = errors.New("method not enabled")
	errNoneRefused    = errors.New("authentication required")
)

// decide runs one request's method. A transport failure is returned as
// err; the method's verdict is in the decision.
func (st *serverAuthRun) decide(ctx context.Context, req *wire.UserAuthRequest) (decision, error) {
	d := decision{method: req.Method}
	switch req.Method {
	case wire.MethodNone:
		// RFC 4252 §5.2: "If no authentication is needed for the user, the
		// server MUST return SSH_MSG_USERAUTH_SUCCESS. Otherwise, the
		// server MUST return SSH_MSG_USERAUTH_FAILURE".
		if st.c.scfg.NoClientAuth && !st.partial {
			return d, nil
		}
		d.err = errNoneRefused
		return d, nil
	case wire.MethodPassword:
		if st.cb.PasswordCallback == nil {
			d.err = errMethodDisabled
			return d, nil
		}
		pa, err := wire.ParsePasswordAuth(req.Rest)
		if err != nil {
			return d, st.c.protocolError("bad password request", err)
		}
		if pa.Change {
			// We never send PASSWD_CHANGEREQ; a change request fails.
			d.err = errors.New("password change not supported")
			return d, nil
		}
		d.perms, d.err = st.cb.PasswordCallback(st.meta(), []byte(pa.Password))
		return d, nil
	case wire.MethodKeyboardInteractive:
		if st.cb.KeyboardInteractiveCallback == nil {
			d.err = errMethodDisabled
			return d, nil
		}
		if _, err := wire.ParseKeyboardInteractiveAuth(req.Rest); err != nil {
			return d, st.c.protocolError("bad keyboard-interactive request", err)
		}
		st.fatal = nil
		d.perms, d.err = st.cb.KeyboardInteractiveCallback(st.meta(), st.challenge(ctx))
		if st.fatal != nil {
			return d, st.fatal
		}
		return d, nil
	case wire.MethodPublicKey, wire.MethodPublicKeyHostbound:
		return st.publicKey(ctx, req)
	}
	// RFC 4252 §5: "If the server does not support the requested
	// authentication method, it MUST respond with SSH_MSG_USERAUTH_FAILURE".
	d.err = fmt.Errorf("unsupported method %q", req.Method)
	return d, nil
}

// challenge returns the KeyboardInteractiveChallenge of one
// keyboard-interactive request: each call is one INFO_REQUEST /
// INFO_RESPONSE round (RFC 4256 §3.2-§3.4).
func (st *serverAuthRun) challenge(ctx context.Context) KeyboardInteractiveChallenge {
	return func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		if st.fatal != nil {
			return nil, st.fatal
		}
		if len(questions) != len(echos) {
			return nil, fmt.Errorf("sshtap: keyboard-interactive: %d questions but %d echo flags", len(questions), len(echos))
		}
		m := wire.UserAuthInfoRequest{Name: name, Instruction: instruction}
		for i, q := range questions {
			m.Prompts = append(m.Prompts, wire.Prompt{Text: q, Echo: echos[i]})
		}
		if err := st.write(ctx, m.Marshal(nil)); err != nil {
			st.fatal = err
			return nil, err
		}
		p, err := st.c.nextAuthMsg(ctx)
		if err != nil {
			st.fatal = err
			return nil, err
		}
		if p[0] != wire.MsgUserAuthInfoResponse {
			st.fatal = st.c.protocolError(fmt.Sprintf("unexpected %s during keyboard-interactive", wire.MsgName(p[0])), nil)
			return nil, st.fatal
		}
		var r wire.UserAuthInfoResponse
		if err := r.Unmarshal(p); err != nil {
			st.fatal = st.c.protocolError("bad USERAUTH_INFO_RESPONSE", err)
			return nil, st.fatal
		}
		// RFC 4256 §3.4: "The num-responses field MUST match the
		// num-prompts field in the request message."
		if len(r.Responses) != len(questions) {
			st.fatal = st.c.protocolError(fmt.Sprintf("USERAUTH_INFO_RESPONSE has %d responses for %d prompts",
				len(r.Responses), len(questions)), nil)
			return nil, st.fatal
		}
		return r.Responses, nil
	}
}

// keyAlgoMatches reports whether algo is an acceptable public key
// algorithm for key (the names of server-sig-algs and their certificate
// forms), and returns the signature algorithm it implies.
func keyAlgoMatches(key ssh.PublicKey, algo string, accepted []string) (sigAlgo string, ok bool) {
	plain := key.Type()
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		plain = cert.Key.Type()
	}
	var names []string
	switch plain {
	case ssh.KeyAlgoRSA:
		// RFC 8332 §3: rsa-sha2-256/512 with an "ssh-rsa" blob; SHA-1
		// ssh-rsa only when ServerConfig.PublicKeyAlgorithms names it.
		names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		names = []string{plain}
	default:
		return "", false
	}
	for _, n := range names {
		if !slices.Contains(accepted, n) {
			continue
		}
		name := n
		if isCert {
			switch n {
			case ssh.KeyAlgoRSASHA512:
				name = ssh.CertAlgoRSASHA512v01
			case ssh.KeyAlgoRSASHA256:
				name = ssh.CertAlgoRSASHA256v01
			default:
				name = key.Type()
			}
		}
		if name == algo {
			return n, true
		}
	}
	return "", false
}

// publicKey handles "publickey" (RFC 4252 §7) and
// "publickey-hostbound-v00@openssh.com" (OpenSSH PROTOCOL §3.1) requests.
func (st *serverAuthRun) publicKey(ctx context.Context, req *wire.UserAuthRequest) (decision, error) {
	d := decision{method: req.Method}
	hostbound := req.Method == wire.MethodPublicKeyHostbound
	pk, err := wire.ParsePublicKeyAuth(req.Rest, hostbound)
	if err != nil {
		return d, st.c.protocolError("bad publickey request", err)
	}
	d.algo = pk.Algorithm
	if st.cb.PublicKeyCallback == nil {
		d.err = errMethodDisabled
		return d, nil
	}
	if hostbound && !bytes.Equal(pk.HostKey, st.c.HostKey()) {
		// OpenSSH PROTOCOL §3.1: the server "MUST check that the
		// host key matches the server's host key".
		d.err = errors.New("publickey-hostbound: host key is not ours")
		return d, nil
	}
	key, err := ssh.ParsePublicKey(pk.PublicKey)
	if err != nil {
		d.err = fmt.Errorf("unparsable public key: %w", err)
		return d, nil
	}
	accepted, err := st.c.scfg.publicKeyAlgorithms()
	if err != nil {
		d.err = err
		return d, nil
	}
	sigAlgo, ok := keyAlgoMatches(key, pk.Algorithm, accepted)
	if !ok {
		d.err = fmt.Errorf("public key algorithm %q not accepted for a %s key", pk.Algorithm, key.Type())
		return d, nil
	}
	if !pk.Signed {
		// RFC 4252 §7: "The server MUST respond to this message with
		// either SSH_MSG_USERAUTH_FAILURE or with ... SSH_MSG_USERAUTH_PK_OK".
		r := st.checkKey(key, pk.PublicKey)
		// A callback that accepts the key as one step of several
		// (*PartialSuccessError) accepts it for the query too: the step
		// itself counts only once the signed request proves the private
		// key.
		var pse *PartialSuccessError
		if r.err != nil && !errors.As(r.err, &pse) {
			d.err = r.err
			return d, nil
		}
		ok := wire.UserAuthPKOK{Algorithm: pk.Algorithm, PublicKey: pk.PublicKey}
		d.reply = true
		return d, st.write(ctx, ok.Marshal(nil))
	}
	// RFC 4252 §7: "When the server receives this message, it MUST check
	// whether the supplied key is acceptable for authentication, and if
	// so, it MUST check whether the signature is correct."
	sig, ok := parseSignature(pk.Signature)
	if !ok {
		d.err = errors.New("malformed signature")
		return d, nil
	}
	// The signature's algorithm must be the one the request named (its
	// plain form for certificates; RFC 8332 §3.2).
	if sig.Format != sigAlgo {
		d.err = fmt.Errorf("signature algorithm %q does not match request algorithm %q", sig.Format, pk.Algorithm)
		return d, nil
	}
	data := wire.PublicKeySignedData(st.c.SessionID(), req.User, req.Service, req.Method, pk.Algorithm, pk.PublicKey, pk.HostKey)
	verifyKey := key
	if cert, isCert := key.(*ssh.Certificate); isCert {
		verifyKey = cert.Key
	}
	if err := verifyKey.Verify(data, sig); err != nil {
		d.err = fmt.Errorf("signature verification failed: %w", err)
		return d, nil
	}
	r := st.checkKey(key, pk.PublicKey)
	d.perms, d.err = r.perms, r.err
	return d, nil
}

// checkKey runs PublicKeyCallback once per key blob: a query and its signed
// request share the answer.
func (st *serverAuthRun) checkKey(key ssh.PublicKey, blob []byte) pkResult {
	if r, ok := st.pkCache[string(blob)]; ok {
		return r
	}
	perms, err := st.cb.PublicKeyCallback(st.meta(), key)
	r := pkResult{perms: perms, err: err}
	if st.pkCache == nil || len(st.pkCache) >= maxPKCache {
		st.pkCache = make(map[string]pkResult)
	}
	st.pkCache[string(blob)] = r
	return r
}

// parseSignature decodes a signature blob (RFC 4253 §6.6) into the form
// x/crypto verifies; trailing fields (sk keys' flags and counter) are kept
// in Rest.
func parseSignature(b []byte) (*ssh.Signature, bool) {
	s, err := wire.ParseSignature(b)
	if err != nil {
		return nil, false
	}
	return &ssh.Signature{Format: s.Format, Blob: slices.Clone(s.Blob), Rest: slices.Clone(s.Rest)}, true
}

// checkSourceAddress enforces a "source-address" critical option (OpenSSH
// PROTOCOL.certkeys: "Comma-separated list of source addresses from which
// this certificate is accepted for authentication. Addresses are specified
// in CIDR format (nn.nn.nn.nn/nn or hhhh::hhhh/nn). If this option is not
// present, then certificates may be presented from any source address.")
// that a callback granted, as from ssh.CertChecker, which leaves the check
// to the server.
func checkSourceAddress(remote net.Addr, perms *Permissions) error {
	if perms == nil {
		return nil
	}
	list, ok := perms.CriticalOptions["source-address"]
	if !ok {
		return nil
	}
	var rip netip.Addr
	if tcp, ok := remote.(*net.TCPAddr); ok {
		rip, _ = netip.AddrFromSlice(tcp.IP)
	}
	if !rip.IsValid() {
		return fmt.Errorf("source-address restriction, and the remote address %v is not an IP address", remote)
	}
	rip = rip.Unmap()
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		pfx, err := netip.ParsePrefix(a)
		if ip, aerr := netip.ParseAddr(a); err != nil && aerr == nil {
			pfx = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()) // a single address
		} else if err != nil {
			continue
		}
		if pfx.Contains(rip) {
			return nil
		}
	}
	return fmt.Errorf("source-address %q does not allow %v", list, rip)
}
