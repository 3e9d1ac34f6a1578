package sshtap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap/internal/wire"
)

// AuthMethod is one client authentication method (see Password,
// PasswordCallback, PasswordWithChange, PublicKeys, PublicKeysCallback,
// KeyboardInteractive, AgentAuth).
type AuthMethod interface {
	// method is the RFC 4252 method name the server must list.
	method() string
	// auth runs the method to its end: success (true), failure (false,
	// with ca's remaining list updated) or a fatal error.
	auth(ctx context.Context, ca *clientAuthRun) (bool, error)
}

// AuthError reports that user authentication failed: every method was tried
// or none could be.
type AuthError struct {
	Tried     []string // the methods tried, in order
	Remaining []string // the methods the server last said could continue
	Partial   bool     // some method succeeded partially
	// Err is the last error that made a method pass over a credential
	// without ending authentication: a public key whose signer failed (an
	// agent that refused, a passphrase not given). Nil if none.
	Err error
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("sshtap: user authentication failed: tried [%s], server allows [%s]",
		strings.Join(e.Tried, ","), strings.Join(e.Remaining, ","))
	if e.Err != nil {
		s += " (last problem: " + e.Err.Error() + ")"
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Err }

// PasswordChangeError is returned when the server asked for a password
// change (SSH_MSG_USERAUTH_PASSWD_CHANGEREQ, RFC 4252 §8) and the method has
// no change callback (see PasswordWithChange).
type PasswordChangeError struct {
	Prompt string // the server's prompt, unfiltered
}

func (e *PasswordChangeError) Error() string {
	return fmt.Sprintf("sshtap: the server requires a password change (%q) and no change callback is set", e.Prompt)
}

// AuthMethodError wraps an error returned by a client auth method's own
// callback (password prompt, public key list, keyboard-interactive
// challenge); it ends authentication. A signer's error does not: that key
// is passed over (see AuthError.Err).
type AuthMethodError struct {
	Method string
	Err    error
}

func (e *AuthMethodError) Error() string { return "sshtap: " + e.Method + " auth: " + e.Err.Error() }
func (e *AuthMethodError) Unwrap() error { return e.Err }

// clientAuthRun is the state of one client authentication.
type clientAuthRun struct {
	c         *Conn
	user      string
	tried     []string
	remaining []string
	partial   bool
	skipErr   error // the last credential passed over (AuthError.Err)
}

// send writes a USERAUTH_REQUEST for method with its method-specific
// fields (RFC 4252 §5: the service is "ssh-connection").
func (ca *clientAuthRun) send(ctx context.Context, method string, rest []byte) error {
	req := wire.UserAuthRequest{User: ca.user, Service: wire.ServiceConnection, Method: method, Rest: rest}
	return ca.c.writePacket(ctx, req.Marshal(nil))
}

// recv returns the next auth message that is not a banner. RFC 4252 §5.4:
// "The SSH server may send an SSH_MSG_USERAUTH_BANNER message at any time
// after this authentication protocol starts and before authentication is
// successful."
func (ca *clientAuthRun) recv(ctx context.Context) ([]byte, error) {
	for {
		p, err := ca.c.nextAuthMsg(ctx)
		if err != nil {
			return nil, err
		}
		if p[0] == wire.MsgUserAuthBanner {
			if err := ca.c.handleAuthBanner(p); err != nil {
				return nil, err
			}
			continue
		}
		return p, nil
	}
}

// outcome handles USERAUTH_SUCCESS and USERAUTH_FAILURE for a request of
// method (signature algorithm algo, if any). done reports that p was one of
// them.
func (ca *clientAuthRun) outcome(p []byte, method, algo string) (done, success bool, err error) {
	switch p[0] {
	case wire.MsgUserAuthSuccess:
		// The transport goroutine already marked the Conn authenticated
		// (routeAuth); record the user.
		ca.c.setAuthenticated(ca.user, nil) // a client has no grace time: always true
		ca.c.publishClientAuth(ca.user, method, algo, AuthSuccess, nil)
		return true, true, nil
	case wire.MsgUserAuthFailure:
		var f wire.UserAuthFailure
		if err := f.Unmarshal(p); err != nil {
			return true, false, ca.c.protocolError("bad USERAUTH_FAILURE", err)
		}
		// RFC 4252 §5.1: "The value of 'partial success' MUST be TRUE if
		// the authentication request to which this is a response was
		// successful."
		r := AuthFailure
		if f.PartialSuccess {
			r = AuthPartialSuccess
			ca.partial = true
		}
		ca.remaining = f.Methods
		ca.c.publishClientAuth(ca.user, method, algo, r, f.Methods)
		return true, false, nil
	}
	return false, false, nil
}

// await reads the reply to a request of method (signature algorithm algo,
// if any): SUCCESS or FAILURE ends the method (done, with ok and err from
// outcome); otherwise it must be the method's own message want (0: none
// expected), which is returned in p.
func (ca *clientAuthRun) await(ctx context.Context, method, algo string, want byte) (p []byte, done, ok bool, err error) {
	p, err = ca.recv(ctx)
	if err != nil {
		return nil, true, false, err
	}
	if done, ok, err := ca.outcome(p, method, algo); done || err != nil {
		return nil, true, ok, err
	}
	if want == 0 || p[0] != want {
		return nil, true, false, ca.unexpected(p, method)
	}
	return p, false, false, nil
}

// unexpected is the error for a message the method in progress cannot
// take.
func (ca *clientAuthRun) unexpected(p []byte, method string) error {
	return ca.c.protocolError(fmt.Sprintf("unexpected %s during %s authentication", wire.MsgName(p[0]), method), nil)
}

// clientAuth runs user authentication (RFC 4252) on the handshake runner:
// "none" first to learn the methods the server allows (§5.2), then each
// method of Config.Auth in order that the server still lists, until one
// succeeds. A partial success (§5.1) goes on with the new list.
func (c *Conn) clientAuth(ctx context.Context) error {
	ca := &clientAuthRun{c: c, user: c.ccfg.User}
	if err := ca.send(ctx, wire.MethodNone, nil); err != nil {
		return err
	}
	ca.tried = append(ca.tried, wire.MethodNone)
	if _, _, ok, err := ca.await(ctx, wire.MethodNone, "", 0); err != nil || ok {
		return err
	}
	methods := c.ccfg.Auth
	used := make([]bool, len(methods))
	for {
		i := -1
		for j, m := range methods {
			if !used[j] && slices.Contains(ca.remaining, m.method()) {
				i = j
				break
			}
		}
		if i < 0 {
			err := &AuthError{Tried: ca.tried, Remaining: ca.remaining, Partial: ca.partial, Err: ca.skipErr}
			// RFC 4253 §11.1 / RFC 4250 §4.2.2:
			// SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE.
			return c.abort(err, DisconnectNoMoreAuthMethodsAvailable, "no more authentication methods available")
		}
		used[i] = true
		ca.tried = append(ca.tried, methods[i].method())
		ok, err := methods[i].auth(ctx, ca)
		if err != nil {
			var me *AuthMethodError
			var pe *PasswordChangeError
			if errors.As(err, &me) || errors.As(err, &pe) {
				return c.abort(err, DisconnectAuthCancelledByUser, "authentication cancelled")
			}
			return err
		}
		if ok {
			return nil
		}
	}
}

func (c *Conn) publishClientAuth(user, method, algo string, r AuthResult, remaining []string) {
	if r == AuthFailure && method != wire.MethodNone {
		c.authFailures.Add(1)
	}
	if c.hub.wants(KindUserAuth) {
		c.hub.publish(&UserAuthEvent{Header: now(), User: user, Method: method, Algorithm: algo, Result: r, Remaining: remaining})
	}
}

// handleAuthBanner reports a USERAUTH_BANNER (RFC 4252 §5.4).
func (c *Conn) handleAuthBanner(p []byte) error {
	var b wire.UserAuthBanner
	if err := b.Unmarshal(p); err != nil {
		return c.protocolError("bad USERAUTH_BANNER", err)
	}
	if c.hub.wants(KindAuthBanner) {
		c.hub.publish(&AuthBannerEvent{Header: now(), Message: b.Message, Language: b.Language})
	}
	if cb := c.ccfg.BannerCallback; cb != nil {
		cb(b.Message)
	}
	return nil
}

// --- password (RFC 4252 §8) ---------------------------------------------------

type passwordMethod struct {
	get    func() (string, error)
	change func(prompt string) (string, error)
}

// Password authenticates with a fixed password (RFC 4252 §8).
func Password(secret string) AuthMethod {
	return &passwordMethod{get: func() (string, error) { return secret, nil }}
}

// PasswordCallback authenticates with the password prompt returns, called
// when the method is tried (only if the server lists "password").
func PasswordCallback(prompt func() (string, error)) AuthMethod {
	return &passwordMethod{get: prompt}
}

// PasswordWithChange authenticates with secret and, when the server answers
// SSH_MSG_USERAUTH_PASSWD_CHANGEREQ, with the new password change returns
// for the server's prompt (RFC 4252 §8). Without a change callback (Password,
// PasswordCallback) such a request fails with *PasswordChangeError.
func PasswordWithChange(secret string, change func(prompt string) (newPassword string, err error)) AuthMethod {
	return &passwordMethod{get: func() (string, error) { return secret, nil }, change: change}
}

func (m *passwordMethod) method() string { return wire.MethodPassword }

func (m *passwordMethod) auth(ctx context.Context, ca *clientAuthRun) (bool, error) {
	pw, err := m.get()
	if err != nil {
		return false, &AuthMethodError{Method: wire.MethodPassword, Err: err}
	}
	// "boolean FALSE, string plaintext password".
	if err := ca.send(ctx, wire.MethodPassword, wire.AppendPasswordAuth(nil, wire.PasswordAuth{Password: pw})); err != nil {
		return false, err
	}
	for {
		p, done, ok, err := ca.await(ctx, wire.MethodPassword, "", wire.MsgUserAuthPasswdChangeReq)
		if done {
			return ok, err
		}
		// Number 60 during a password request is PASSWD_CHANGEREQ.
		var req wire.UserAuthPasswdChangeReq
		if err := req.Unmarshal(p); err != nil {
			return false, ca.c.protocolError("bad USERAUTH_PASSWD_CHANGEREQ", err)
		}
		if m.change == nil {
			return false, &PasswordChangeError{Prompt: req.Prompt}
		}
		np, err := m.change(req.Prompt)
		if err != nil {
			return false, &AuthMethodError{Method: wire.MethodPassword, Err: err}
		}
		// RFC 4252 §8: "boolean TRUE, string plaintext old password,
		// string plaintext new password".
		rest := wire.AppendPasswordAuth(nil, wire.PasswordAuth{Change: true, Password: pw, NewPassword: np})
		if err := ca.send(ctx, wire.MethodPassword, rest); err != nil {
			return false, err
		}
		pw = np
	}
}

// --- keyboard-interactive (RFC 4256) -------------------------------------------

type keyboardInteractiveMethod struct {
	challenge KeyboardInteractiveChallenge
}

// KeyboardInteractive answers the server's keyboard-interactive prompts
// (RFC 4256) with challenge, called once per SSH_MSG_USERAUTH_INFO_REQUEST
// (empty questions for a 0-prompt round); it must return one answer per
// question.
func KeyboardInteractive(challenge func(name, instruction string, questions []string, echos []bool) ([]string, error)) AuthMethod {
	return &keyboardInteractiveMethod{challenge: challenge}
}

func (m *keyboardInteractiveMethod) method() string { return wire.MethodKeyboardInteractive }

func (m *keyboardInteractiveMethod) auth(ctx context.Context, ca *clientAuthRun) (bool, error) {
	// RFC 4256 §3.1: "string language tag (as defined in [RFC-3066])" —
	// deprecated, SHOULD be empty; "string submethods".
	if err := ca.send(ctx, wire.MethodKeyboardInteractive, wire.AppendKeyboardInteractiveAuth(nil, wire.KeyboardInteractiveAuth{})); err != nil {
		return false, err
	}
	for {
		p, done, ok, err := ca.await(ctx, wire.MethodKeyboardInteractive, "", wire.MsgUserAuthInfoRequest)
		if done {
			return ok, err
		}
		// Number 60 during keyboard-interactive is INFO_REQUEST.
		var req wire.UserAuthInfoRequest
		if err := req.Unmarshal(p); err != nil {
			return false, ca.c.protocolError("bad USERAUTH_INFO_REQUEST", err)
		}
		qs := make([]string, len(req.Prompts))
		echos := make([]bool, len(req.Prompts))
		for i, pr := range req.Prompts {
			qs[i], echos[i] = pr.Text, pr.Echo
		}
		ans, err := m.challenge(req.Name, req.Instruction, qs, echos)
		if err != nil {
			return false, &AuthMethodError{Method: wire.MethodKeyboardInteractive, Err: err}
		}
		// RFC 4256 §3.4: "The num-responses field MUST match the
		// num-prompts field in the request message." A 0-prompt round
		// still gets a 0-response reply.
		if len(ans) != len(qs) {
			return false, &AuthMethodError{Method: wire.MethodKeyboardInteractive,
				Err: fmt.Errorf("challenge returned %d answers for %d questions", len(ans), len(qs))}
		}
		resp := wire.UserAuthInfoResponse{Responses: ans}
		if err := ca.c.writePacket(ctx, resp.Marshal(nil)); err != nil {
			return false, err
		}
	}
}

// --- publickey (RFC 4252 §7, RFC 8332) -----------------------------------------

type publicKeyMethod struct {
	signers func() ([]ssh.Signer, error)
}

// PublicKeys authenticates with the given keys, in order: each is first
// offered without a signature (a query) and signed only when the server
// answers SSH_MSG_USERAUTH_PK_OK. RSA keys that implement
// ssh.AlgorithmSigner sign with rsa-sha2-512 or rsa-sha2-256, whichever the
// server lists first in server-sig-algs (RFC 8332 §3.1); certificate signers
// (ssh.NewCertSigner) use the *-cert-v01@openssh.com names.
func PublicKeys(signers ...ssh.Signer) AuthMethod {
	return &publicKeyMethod{signers: func() ([]ssh.Signer, error) { return signers, nil }}
}

// PublicKeysCallback is PublicKeys with the keys from get, called when the
// method is tried.
func PublicKeysCallback(get func() ([]ssh.Signer, error)) AuthMethod {
	return &publicKeyMethod{signers: get}
}

// AgentAuth authenticates with the keys of an ssh-agent (publickey). The
// agent's signers sign rsa-sha2-256/512 through the agent's signature flags
// (SSH_AGENT_RSA_SHA2_256/512).
func AgentAuth(a agent.Agent) AuthMethod {
	return &publicKeyMethod{signers: a.Signers}
}

func (m *publicKeyMethod) method() string { return wire.MethodPublicKey }

// pickAlgorithm chooses the public key algorithm name for s (the name in
// the request) and the signature algorithm (the name in the signature
// blob), among the signature algorithms in allowed (Config.PublicKeyAlgorithms
// as expanded; nil allows all but the SHA-1 ssh-rsa for keys that can do
// better); "" when the key cannot be used.
func pickAlgorithm(s ssh.Signer, serverAlgs, allowed []string) (reqAlgo, sigAlgo string) {
	pub := s.PublicKey()
	cert, isCert := pub.(*ssh.Certificate)
	keyType := pub.Type()
	if isCert {
		keyType = cert.Key.Type()
	}
	if keyType != ssh.KeyAlgoRSA {
		if allowed != nil && !slices.Contains(allowed, keyType) {
			return "", ""
		}
		return pub.Type(), keyType
	}
	// RFC 8332 §3: the key blob stays "ssh-rsa"; the algorithm name says
	// the hash. The signer's own algorithms bound the choice.
	var can []string
	switch as := s.(type) {
	case ssh.MultiAlgorithmSigner:
		can = as.Algorithms()
	case ssh.AlgorithmSigner:
		can = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		can = []string{ssh.KeyAlgoRSA}
	}
	if allowed != nil {
		can = slices.DeleteFunc(slices.Clone(can), func(a string) bool { return !slices.Contains(allowed, a) })
		if len(can) == 0 {
			return "", ""
		}
	}
	sigAlgo = ""
	for _, a := range []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256} {
		if slices.Contains(can, a) && slices.Contains(serverAlgs, a) {
			sigAlgo = a
			break
		}
	}
	if sigAlgo == "" {
		switch {
		case !slices.Contains(can, ssh.KeyAlgoRSASHA512) && !slices.Contains(can, ssh.KeyAlgoRSASHA256):
			// The key (or the configuration) offers only the legacy
			// SHA-1 algorithm.
			sigAlgo = ssh.KeyAlgoRSA
		case allowed != nil && slices.Contains(can, ssh.KeyAlgoRSA) && slices.Contains(serverAlgs, ssh.KeyAlgoRSA):
			// SHA-1 named in Config.PublicKeyAlgorithms, and the only
			// RSA algorithm the server lists.
			sigAlgo = ssh.KeyAlgoRSA
		case len(serverAlgs) == 0:
			// No server-sig-algs: RFC 8332 §3.3 lets a client try
			// rsa-sha2-* anyway; never SHA-1 for a key that can do better.
			if slices.Contains(can, ssh.KeyAlgoRSASHA512) {
				sigAlgo = ssh.KeyAlgoRSASHA512
			} else {
				sigAlgo = ssh.KeyAlgoRSASHA256
			}
		default:
			return "", ""
		}
	}
	if !isCert {
		return sigAlgo, sigAlgo
	}
	switch sigAlgo {
	case ssh.KeyAlgoRSASHA512:
		return ssh.CertAlgoRSASHA512v01, sigAlgo
	case ssh.KeyAlgoRSASHA256:
		return ssh.CertAlgoRSASHA256v01, sigAlgo
	}
	return ssh.CertAlgoRSAv01, sigAlgo
}

func (m *publicKeyMethod) auth(ctx context.Context, ca *clientAuthRun) (bool, error) {
	signers, err := m.signers()
	if err != nil {
		return false, &AuthMethodError{Method: wire.MethodPublicKey, Err: err}
	}
	serverAlgs := ca.c.ServerSigAlgs()
	var allowed []string
	if ccfg := ca.c.ccfg; ccfg != nil && len(ccfg.PublicKeyAlgorithms) > 0 {
		allowed, err = expandAlgorithms("PublicKeyAlgorithms", ccfg.PublicKeyAlgorithms, DefaultPublicKeyAlgorithms, SupportedPublicKeyAlgorithms)
		if err != nil {
			return false, &AuthMethodError{Method: wire.MethodPublicKey, Err: err}
		}
	}
	for _, s := range signers {
		if !slices.Contains(ca.remaining, wire.MethodPublicKey) {
			return false, nil
		}
		reqAlgo, sigAlgo := pickAlgorithm(s, serverAlgs, allowed)
		if reqAlgo == "" {
			continue
		}
		ok, err := m.tryKey(ctx, ca, s, reqAlgo, sigAlgo)
		if err != nil || ok {
			return ok, err
		}
		// A server that refused rsa-sha2-* and has no server-sig-algs
		// (RFC 8308), or lists ssh-rsa there too, may accept only ssh-rsa
		// (as sshd with PubkeyAcceptedAlgorithms ssh-rsa, whose
		// server-sig-algs still lists rsa-sha2-*): when the configuration
		// names ssh-rsa, offer an RSA key (or RSA certificate) once more
		// with it.
		if plainKey(s.PublicKey()).Type() == ssh.KeyAlgoRSA && (len(serverAlgs) == 0 || slices.Contains(serverAlgs, ssh.KeyAlgoRSA)) &&
			sigAlgo != ssh.KeyAlgoRSA && slices.Contains(allowed, ssh.KeyAlgoRSA) &&
			slices.Contains(ca.remaining, wire.MethodPublicKey) {
			if r, _ := pickAlgorithm(s, []string{ssh.KeyAlgoRSA}, allowed); r != "" {
				ok, err := m.tryKey(ctx, ca, s, r, ssh.KeyAlgoRSA)
				if err != nil || ok {
					return ok, err
				}
			}
		}
	}
	return false, nil
}

// tryKey offers one key: a query, then (on PK_OK) the signed request.
func (m *publicKeyMethod) tryKey(ctx context.Context, ca *clientAuthRun, s ssh.Signer, reqAlgo, sigAlgo string) (bool, error) {
	blob := s.PublicKey().Marshal()
	// RFC 4252 §7: "boolean FALSE, string public key algorithm name,
	// string public key blob" asks whether the key is acceptable.
	q := wire.AppendPublicKeyAuth(nil, wire.PublicKeyAuth{Algorithm: reqAlgo, PublicKey: blob}, false)
	if err := ca.send(ctx, wire.MethodPublicKey, q); err != nil {
		return false, err
	}
	p, done, accepted, err := ca.await(ctx, wire.MethodPublicKey, reqAlgo, wire.MsgUserAuthPKOK)
	if done {
		return accepted, err
	}
	// Number 60 during publickey is PK_OK: "string public key algorithm
	// name from the request, string public key blob from the request".
	var pkOK wire.UserAuthPKOK
	if err := pkOK.Unmarshal(p); err != nil {
		return false, ca.c.protocolError("bad USERAUTH_PK_OK", err)
	}
	if pkOK.Algorithm != reqAlgo || string(pkOK.PublicKey) != string(blob) {
		return false, ca.c.protocolError("USERAUTH_PK_OK for a key that was not offered", nil)
	}
	data := wire.PublicKeySignedData(ca.c.SessionID(), ca.user, wire.ServiceConnection, wire.MethodPublicKey, reqAlgo, blob, nil)
	var sig *ssh.Signature
	if as, isAS := s.(ssh.AlgorithmSigner); isAS {
		sig, err = as.SignWithAlgorithm(ca.c.cfg.rand(), data, sigAlgo)
	} else {
		sig, err = s.Sign(ca.c.cfg.rand(), data)
	}
	if err != nil {
		// A key that cannot sign (an agent that refused, a passphrase
		// that was not given) is passed over like a key the server
		// refused, as OpenSSH does; the event says why.
		ca.skipErr = fmt.Errorf("%s key %s: signing failed: %w", s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey()), err)
		if ca.c.hub.wants(KindUserAuth) {
			ca.c.hub.publish(&UserAuthEvent{Header: now(), User: ca.user, Method: wire.MethodPublicKey, Algorithm: reqAlgo,
				Result: AuthFailure, Remaining: ca.remaining, Err: ca.skipErr.Error()})
		}
		return false, nil
	}
	// RFC 8332 §3.2 / RFC 4252 §7: the signature's algorithm must be the
	// one named in the request (its plain form for certificates).
	if sig.Format != sigAlgo {
		return false, &AuthMethodError{Method: wire.MethodPublicKey,
			Err: fmt.Errorf("signer made a %q signature, want %q", sig.Format, sigAlgo)}
	}
	sigBlob := wire.AppendSignature(nil, wire.Signature{Format: sig.Format, Blob: sig.Blob, Rest: sig.Rest})
	signed := wire.AppendPublicKeyAuth(nil, wire.PublicKeyAuth{Signed: true, Algorithm: reqAlgo, PublicKey: blob,
		Signature: sigBlob}, false)
	if err := ca.send(ctx, wire.MethodPublicKey, signed); err != nil {
		return false, err
	}
	_, _, ok, err := ca.await(ctx, wire.MethodPublicKey, reqAlgo, 0)
	return ok, err
}
