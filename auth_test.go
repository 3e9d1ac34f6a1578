package sshtap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap/internal/wire"
)

// authRun is one in-process authentication: both Conns, both handshake
// errors and the events each side published.
type authRun struct {
	client, server *Conn
	cerr, serr     error
	cev, sev       []Event
}

const authKinds = KindUserAuth | KindAuthBanner | KindDisconnect

// runAuth runs a client and a server over net.Pipe with the given configs
// (no NoClientAuth default, unlike tryHandshake) and collects their auth,
// banner and disconnect events. Both Conns are closed at cleanup.
func runAuth(t *testing.T, ccfg *Config, scfg *ServerConfig) *authRun {
	t.Helper()
	testKeys(t)
	if ccfg.HostKeyCallback == nil {
		ccfg.HostKeyCallback = insecure
	}
	if len(scfg.HostKeys) == 0 {
		scfg.HostKeys = []ssh.Signer{testEd25519}
	}
	a, b := net.Pipe()
	r := &authRun{client: ClientConn(a, ccfg), server: ServerConn(b, scfg)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	csub := r.client.Subscribe(context.Background(), authKinds)
	ssub := r.server.Subscribe(context.Background(), authKinds)
	serr := make(chan error, 1)
	go func() { serr <- r.server.Handshake(ctx) }()
	r.cerr = r.client.Handshake(ctx)
	if r.cerr != nil {
		// The server may wait for a request that never comes.
		r.client.Close()
	}
	r.serr = <-serr
	if r.serr != nil {
		r.client.Close()
	}
	r.cev, r.sev = ioDrain(csub), ioDrain(ssub)
	csub.Close()
	ssub.Close()
	t.Cleanup(func() {
		r.client.Close()
		r.server.Close()
	})
	return r
}

func (r *authRun) ok(t *testing.T) {
	t.Helper()
	if r.cerr != nil || r.serr != nil {
		t.Fatalf("handshake: client: %v; server: %v", r.cerr, r.serr)
	}
	if !r.client.Authenticated() || !r.server.Authenticated() {
		t.Fatalf("authenticated: client %v, server %v", r.client.Authenticated(), r.server.Authenticated())
	}
}

// authEvents returns the UserAuthEvents among evs.
func authEvents(evs []Event) []*UserAuthEvent {
	var out []*UserAuthEvent
	for _, ev := range evs {
		if e, ok := ev.(*UserAuthEvent); ok {
			out = append(out, e)
		}
	}
	return out
}

// authSummary renders auth events as "method/algo:result" strings.
func authSummary(evs []Event) []string {
	var out []string
	for _, e := range authEvents(evs) {
		s := e.Method
		if e.Algorithm != "" {
			s += "/" + e.Algorithm
		}
		out = append(out, s+":"+e.Result.String())
	}
	return out
}

func authNewEd25519(t *testing.T) ssh.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authAcceptKeys is a PublicKeyCallback accepting exactly keys.
func authAcceptKeys(keys ...ssh.PublicKey) func(ConnMetadata, ssh.PublicKey) (*Permissions, error) {
	return func(meta ConnMetadata, k ssh.PublicKey) (*Permissions, error) {
		for _, a := range keys {
			if bytes.Equal(a.Marshal(), k.Marshal()) {
				return &Permissions{Extensions: map[string]string{"key": ssh.FingerprintSHA256(k), "user": meta.User()}}, nil
			}
		}
		return nil, errors.New("unknown key")
	}
}

func TestAuthPassword(t *testing.T) {
	t.Parallel()
	scfg := func() *ServerConfig {
		return &ServerConfig{PasswordCallback: func(meta ConnMetadata, pw []byte) (*Permissions, error) {
			if meta.User() == "alice" && string(pw) == "s3cret" {
				return &Permissions{Extensions: map[string]string{"via": "password"}}, nil
			}
			return nil, errors.New("wrong password")
		}}
	}
	t.Run("success", func(t *testing.T) {
		r := runAuth(t, &Config{User: "alice", Auth: []AuthMethod{Password("s3cret")}}, scfg())
		r.ok(t)
		if r.server.User() != "alice" || r.client.User() != "alice" {
			t.Errorf("users: server %q client %q", r.server.User(), r.client.User())
		}
		if p := r.server.Permissions(); p == nil || p.Extensions["via"] != "password" {
			t.Errorf("server permissions %+v", p)
		}
		want := []string{"none:failure", "password:success"}
		if got := authSummary(r.cev); !slices.Equal(got, want) {
			t.Errorf("client events %v, want %v", got, want)
		}
		if got := authSummary(r.sev); !slices.Equal(got, want) {
			t.Errorf("server events %v, want %v", got, want)
		}
		if e := authEvents(r.cev)[0]; !slices.Equal(e.Remaining, []string{"password"}) {
			t.Errorf("none failure lists %v", e.Remaining)
		}
	})
	t.Run("callback", func(t *testing.T) {
		calls := 0
		r := runAuth(t, &Config{User: "alice", Auth: []AuthMethod{PasswordCallback(func() (string, error) {
			calls++
			return "s3cret", nil
		})}}, scfg())
		r.ok(t)
		if calls != 1 {
			t.Errorf("prompt called %d times", calls)
		}
	})
	t.Run("failure", func(t *testing.T) {
		r := runAuth(t, &Config{User: "alice", Auth: []AuthMethod{Password("nope")}}, scfg())
		var ae *AuthError
		if !errors.As(r.cerr, &ae) {
			t.Fatalf("client error %v, want *AuthError", r.cerr)
		}
		if !slices.Equal(ae.Tried, []string{"none", "password"}) || !slices.Equal(ae.Remaining, []string{"password"}) || ae.Partial {
			t.Errorf("AuthError %+v", ae)
		}
		se := authEvents(r.sev)
		if len(se) != 2 || se[1].Result != AuthFailure || se[1].Err != "wrong password" || se[1].User != "alice" {
			t.Errorf("server events %+v", se)
		}
		// The client hangs up with NO_MORE_AUTH_METHODS_AVAILABLE.
		var de *DisconnectError
		if !errors.As(r.serr, &de) || !de.Remote || de.Reason != DisconnectNoMoreAuthMethodsAvailable {
			t.Errorf("server error %v", r.serr)
		}
	})
	t.Run("prompt-error", func(t *testing.T) {
		boom := errors.New("no tty")
		r := runAuth(t, &Config{User: "alice", Auth: []AuthMethod{PasswordCallback(func() (string, error) { return "", boom })}}, scfg())
		var me *AuthMethodError
		if !errors.As(r.cerr, &me) || !errors.Is(r.cerr, boom) {
			t.Fatalf("client error %v, want *AuthMethodError wrapping the prompt's", r.cerr)
		}
	})
	t.Run("not-listed", func(t *testing.T) {
		// The server enables only publickey: the password is never sent.
		calls := 0
		r := runAuth(t, &Config{User: "alice", Auth: []AuthMethod{PasswordCallback(func() (string, error) {
			calls++
			return "s3cret", nil
		})}}, &ServerConfig{PublicKeyCallback: authAcceptKeys()})
		var ae *AuthError
		if !errors.As(r.cerr, &ae) || !slices.Equal(ae.Tried, []string{"none"}) || !slices.Equal(ae.Remaining, []string{"publickey"}) {
			t.Fatalf("client error %v", r.cerr)
		}
		if calls != 0 {
			t.Error("password prompt called for a method the server does not list")
		}
	})
}

func TestAuthNoClientAuth(t *testing.T) {
	t.Parallel()
	r := runAuth(t, &Config{User: "bob"}, &ServerConfig{NoClientAuth: true})
	r.ok(t)
	if got := authSummary(r.sev); !slices.Equal(got, []string{"none:success"}) {
		t.Errorf("server events %v", got)
	}
	// Without NoClientAuth and without callbacks, "none" fails with an
	// empty list and the client has nothing to try.
	r = runAuth(t, &Config{User: "bob", Auth: []AuthMethod{Password("x")}}, &ServerConfig{})
	var ae *AuthError
	if !errors.As(r.cerr, &ae) || len(ae.Remaining) != 0 {
		t.Fatalf("client error %v", r.cerr)
	}
}

func TestAuthPublicKey(t *testing.T) {
	t.Parallel()
	testKeys(t)
	for _, tc := range []struct {
		name   string
		signer ssh.Signer
		algo   string
	}{
		{"ed25519", testEd25519, ssh.KeyAlgoED25519},
		{"ecdsa256", testECDSA256, ssh.KeyAlgoECDSA256},
		{"ecdsa384", testECDSA384, ssh.KeyAlgoECDSA384},
		{"ecdsa521", testECDSA521, ssh.KeyAlgoECDSA521},
		// server-sig-algs lists rsa-sha2-512 and rsa-sha2-256: 512 wins.
		{"rsa", testRSA, ssh.KeyAlgoRSASHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			other := authNewEd25519(t)
			r := runAuth(t, &Config{User: "carol", Auth: []AuthMethod{PublicKeys(other, tc.signer)}},
				&ServerConfig{PublicKeyCallback: authAcceptKeys(tc.signer.PublicKey())})
			r.ok(t)
			// The unknown key's query fails (a failure, not a query that
			// got PK_OK); the right key is queried and signed.
			want := []string{"none:failure", "publickey/ssh-ed25519:failure", "publickey/" + tc.algo + ":success"}
			if got := authSummary(r.cev); !slices.Equal(got, want) {
				t.Errorf("client events %v, want %v", got, want)
			}
			if got := authSummary(r.sev); !slices.Equal(got, want) {
				t.Errorf("server events %v, want %v", got, want)
			}
			if p := r.server.Permissions(); p == nil || p.Extensions["user"] != "carol" {
				t.Errorf("server permissions %+v (callback saw meta.User())", p)
			}
		})
	}
	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		r := runAuth(t, &Config{User: "carol", Auth: []AuthMethod{PublicKeys(authNewEd25519(t))}},
			&ServerConfig{PublicKeyCallback: authAcceptKeys(testEd25519.PublicKey())})
		var ae *AuthError
		if !errors.As(r.cerr, &ae) || !slices.Equal(ae.Tried, []string{"none", "publickey"}) {
			t.Fatalf("client error %v", r.cerr)
		}
	})
	t.Run("callback", func(t *testing.T) {
		t.Parallel()
		r := runAuth(t, &Config{User: "carol", Auth: []AuthMethod{PublicKeysCallback(func() ([]ssh.Signer, error) {
			return []ssh.Signer{testECDSA256}, nil
		})}}, &ServerConfig{PublicKeyCallback: authAcceptKeys(testECDSA256.PublicKey())})
		r.ok(t)
	})
	t.Run("query-cached", func(t *testing.T) {
		t.Parallel()
		// The callback decides once per key: the query's answer is reused
		// for the signed request.
		calls := 0
		accept := authAcceptKeys(testEd25519.PublicKey())
		r := runAuth(t, &Config{User: "carol", Auth: []AuthMethod{PublicKeys(testEd25519)}},
			&ServerConfig{PublicKeyCallback: func(m ConnMetadata, k ssh.PublicKey) (*Permissions, error) {
				calls++
				return accept(m, k)
			}})
		r.ok(t)
		if calls != 1 {
			t.Errorf("PublicKeyCallback called %d times, want 1", calls)
		}
	})
}

func TestAuthAgent(t *testing.T) {
	t.Parallel()
	testKeys(t)
	kr := agent.NewKeyring()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	if err := kr.Add(agent.AddedKey{PrivateKey: edPriv}); err != nil {
		t.Fatal(err)
	}
	// An RSA key through the agent signs rsa-sha2-512 via
	// SSH_AGENT_RSA_SHA2_512.
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Add(agent.AddedKey{PrivateKey: rsaPriv}); err != nil {
		t.Fatal(err)
	}
	rsaPub, err := ssh.NewPublicKey(&rsaPriv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	r := runAuth(t, &Config{User: "dave", Auth: []AuthMethod{AgentAuth(kr)}},
		&ServerConfig{PublicKeyCallback: authAcceptKeys(rsaPub)})
	r.ok(t)
	want := []string{"none:failure", "publickey/ssh-ed25519:failure", "publickey/rsa-sha2-512:success"}
	if got := authSummary(r.sev); !slices.Equal(got, want) {
		t.Errorf("server events %v, want %v", got, want)
	}
}

func TestAuthRSAAlgorithmChoice(t *testing.T) {
	t.Parallel()
	testKeys(t)
	sha256only, err := ssh.NewSignerWithAlgorithms(testRSA.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSASHA256})
	if err != nil {
		t.Fatal(err)
	}
	sha1only, err := ssh.NewSignerWithAlgorithms(testRSA.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	plain := struct{ ssh.Signer }{testRSA} // hides AlgorithmSigner
	both := []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512}
	for _, tc := range []struct {
		name       string
		s          ssh.Signer
		serverAlgs []string
		want       string
	}{
		{"both", testRSA, both, ssh.KeyAlgoRSASHA512},
		{"server-256", testRSA, []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}, ssh.KeyAlgoRSASHA256},
		{"server-512", testRSA, []string{ssh.KeyAlgoRSASHA512}, ssh.KeyAlgoRSASHA512},
		{"signer-256", sha256only, both, ssh.KeyAlgoRSASHA256},
		{"no-ext-info", testRSA, nil, ssh.KeyAlgoRSASHA512},
		{"server-sha1-only", testRSA, []string{ssh.KeyAlgoRSA}, ""},
		{"signer-sha1-only", sha1only, []string{ssh.KeyAlgoRSA}, ssh.KeyAlgoRSA},
		{"plain-signer", plain, both, ssh.KeyAlgoRSA},
		{"ed25519", testEd25519, both, ssh.KeyAlgoED25519},
	} {
		req, sig := pickAlgorithm(tc.s, tc.serverAlgs, nil)
		if req != tc.want || sig != tc.want {
			t.Errorf("%s: picked %q/%q, want %q", tc.name, req, sig, tc.want)
		}
	}
	// Certificates: the request names the cert algorithm, the signature
	// the plain one.
	cert := authUserCert(t, testEd25519, testRSA.PublicKey(), "u")
	cs, err := ssh.NewCertSigner(cert, testRSA)
	if err != nil {
		t.Fatal(err)
	}
	if req, sig := pickAlgorithm(cs, both, nil); req != ssh.CertAlgoRSASHA512v01 || sig != ssh.KeyAlgoRSASHA512 {
		t.Errorf("rsa cert: %q/%q", req, sig)
	}
	if req, sig := pickAlgorithm(cs, []string{ssh.KeyAlgoRSASHA256}, nil); req != ssh.CertAlgoRSASHA256v01 || sig != ssh.KeyAlgoRSASHA256 {
		t.Errorf("rsa cert, server 256: %q/%q", req, sig)
	}
}

// authUserCert makes a user certificate for pub signed by ca.
func authUserCert(t *testing.T, ca ssh.Signer, pub ssh.PublicKey, principal string) *ssh.Certificate {
	t.Helper()
	c := &ssh.Certificate{
		Key:             pub,
		Serial:          1,
		CertType:        ssh.UserCert,
		KeyId:           "test",
		ValidPrincipals: []string{principal},
		ValidAfter:      uint64(time.Now().Add(-time.Hour).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

// authCertCallback checks user certificates of ca with ssh.CertChecker.
func authCertCallback(ca ssh.PublicKey) func(ConnMetadata, ssh.PublicKey) (*Permissions, error) {
	checker := &ssh.CertChecker{IsUserAuthority: func(auth ssh.PublicKey) bool {
		return bytes.Equal(auth.Marshal(), ca.Marshal())
	}}
	return func(meta ConnMetadata, key ssh.PublicKey) (*Permissions, error) {
		cert, ok := key.(*ssh.Certificate)
		if !ok {
			return nil, errors.New("not a certificate")
		}
		if !checker.IsUserAuthority(cert.SignatureKey) {
			return nil, errors.New("unknown CA")
		}
		if err := checker.CheckCert(meta.User(), cert); err != nil {
			return nil, err
		}
		return &Permissions{CriticalOptions: cert.CriticalOptions, Extensions: cert.Extensions}, nil
	}
}

func TestAuthCertificate(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ca := authNewEd25519(t)
	for _, tc := range []struct {
		name string
		key  ssh.Signer
		algo string
	}{
		{"ed25519", authNewEd25519(t), ssh.CertAlgoED25519v01},
		{"ecdsa", testECDSA384, ssh.CertAlgoECDSA384v01},
		{"rsa", testRSA, ssh.CertAlgoRSASHA512v01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, err := ssh.NewCertSigner(authUserCert(t, ca, tc.key.PublicKey(), "erin"), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			r := runAuth(t, &Config{User: "erin", Auth: []AuthMethod{PublicKeys(cs)}}, &ServerConfig{PublicKeyCallback: authCertCallback(ca.PublicKey())})
			r.ok(t)
			want := []string{"none:failure", "publickey/" + tc.algo + ":success"}
			if got := authSummary(r.sev); !slices.Equal(got, want) {
				t.Errorf("server events %v, want %v", got, want)
			}
			if _, ok := r.server.Permissions().Extensions["permit-pty"]; !ok {
				t.Errorf("permissions %+v", r.server.Permissions())
			}
		})
	}
	t.Run("wrong-principal", func(t *testing.T) {
		t.Parallel()
		k := authNewEd25519(t)
		cs, _ := ssh.NewCertSigner(authUserCert(t, ca, k.PublicKey(), "someone-else"), k)
		r := runAuth(t, &Config{User: "erin", Auth: []AuthMethod{PublicKeys(cs)}}, &ServerConfig{PublicKeyCallback: authCertCallback(ca.PublicKey())})
		var ae *AuthError
		if !errors.As(r.cerr, &ae) {
			t.Fatalf("client error %v", r.cerr)
		}
		if se := authEvents(r.sev); len(se) != 2 || !strings.Contains(se[1].Err, "principal") {
			t.Errorf("server events %+v", se)
		}
	})
}

func TestAuthKeyboardInteractive(t *testing.T) {
	t.Parallel()
	type round struct {
		name, instr string
		qs          []string
		echos       []bool
	}
	rounds := []round{
		{"login", "first", []string{"user? ", "password: "}, []bool{true, false}},
		{"", "just a message", nil, nil}, // 0 prompts: still answered
		{"otp", "", []string{"code: "}, []bool{false}},
	}
	scfg := &ServerConfig{KeyboardInteractiveCallback: func(meta ConnMetadata, ch KeyboardInteractiveChallenge) (*Permissions, error) {
		want := [][]string{{"frank", "pw"}, nil, {"123456"}}
		for i, r := range rounds {
			ans, err := ch(r.name, r.instr, r.qs, r.echos)
			if err != nil {
				return nil, err
			}
			if !slices.Equal(ans, want[i]) {
				return nil, fmt.Errorf("round %d: answers %q", i, ans)
			}
		}
		return nil, nil
	}}
	var seen []round
	answers := map[string]string{"user? ": "frank", "password: ": "pw", "code: ": "123456"}
	r := runAuth(t, &Config{User: "frank", Auth: []AuthMethod{KeyboardInteractive(func(name, instr string, qs []string, echos []bool) ([]string, error) {
		seen = append(seen, round{name, instr, qs, echos})
		var out []string
		for _, q := range qs {
			out = append(out, answers[q])
		}
		return out, nil
	})}}, scfg)
	r.ok(t)
	if len(seen) != 3 || len(seen[1].qs) != 0 || seen[1].instr != "just a message" || !slices.Equal(seen[0].echos, []bool{true, false}) {
		t.Errorf("client saw rounds %+v", seen)
	}
	if got := authSummary(r.sev); !slices.Equal(got, []string{"none:failure", "keyboard-interactive:success"}) {
		t.Errorf("server events %v", got)
	}

	// A wrong answer fails the method.
	answers["code: "] = "000000"
	r = runAuth(t, &Config{User: "frank", Auth: []AuthMethod{KeyboardInteractive(func(name, instr string, qs []string, echos []bool) ([]string, error) {
		var out []string
		for _, q := range qs {
			out = append(out, answers[q])
		}
		return out, nil
	})}}, scfg)
	var ae *AuthError
	if !errors.As(r.cerr, &ae) {
		t.Fatalf("client error %v", r.cerr)
	}
	if se := authEvents(r.sev); len(se) != 2 || !strings.Contains(se[1].Err, "round 2") {
		t.Errorf("server events %+v", se)
	}
}

func TestAuthOrder(t *testing.T) {
	t.Parallel()
	testKeys(t)
	var order []string
	pw := PasswordCallback(func() (string, error) { order = append(order, "password"); return "wrong", nil })
	ki := KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
		order = append(order, "kbd")
		return nil, nil
	})
	pk := PublicKeysCallback(func() ([]ssh.Signer, error) {
		order = append(order, "publickey")
		return []ssh.Signer{testEd25519}, nil
	})
	// The server lists publickey and password, not keyboard-interactive:
	// the config order is kept, unlisted methods are skipped.
	r := runAuth(t, &Config{User: "g", Auth: []AuthMethod{ki, pw, pk}}, &ServerConfig{
		PasswordCallback:  func(ConnMetadata, []byte) (*Permissions, error) { return nil, errors.New("no") },
		PublicKeyCallback: authAcceptKeys(testEd25519.PublicKey()),
	})
	r.ok(t)
	if !slices.Equal(order, []string{"password", "publickey"}) {
		t.Errorf("methods ran in order %v", order)
	}
	want := []string{"none:failure", "password:failure", "publickey/ssh-ed25519:success"}
	if got := authSummary(r.cev); !slices.Equal(got, want) {
		t.Errorf("client events %v, want %v", got, want)
	}
}

func TestAuthPartialSuccess(t *testing.T) {
	t.Parallel()
	testKeys(t)
	// publickey first, then password (like AuthenticationMethods
	// publickey,password). The password method comes first in the client's
	// list but is only listed by the server after the key.
	scfg := &ServerConfig{PublicKeyCallback: func(m ConnMetadata, k ssh.PublicKey) (*Permissions, error) {
		if _, err := authAcceptKeys(testEd25519.PublicKey())(m, k); err != nil {
			return nil, err
		}
		return nil, &PartialSuccessError{Next: ServerAuthCallbacks{
			PasswordCallback: func(_ ConnMetadata, pw []byte) (*Permissions, error) {
				if string(pw) == "2fa" {
					return &Permissions{Extensions: map[string]string{"stage": "2"}}, nil
				}
				return nil, errors.New("bad second factor")
			},
		}}
	}}
	r := runAuth(t, &Config{User: "h", Auth: []AuthMethod{Password("2fa"), PublicKeys(testEd25519)}}, scfg)
	r.ok(t)
	want := []string{"none:failure", "publickey/ssh-ed25519:partial-success", "password:success"}
	if got := authSummary(r.cev); !slices.Equal(got, want) {
		t.Errorf("client events %v, want %v", got, want)
	}
	if got := authSummary(r.sev); !slices.Equal(got, want) {
		t.Errorf("server events %v, want %v", got, want)
	}
	if e := authEvents(r.cev)[1]; !slices.Equal(e.Remaining, []string{"password"}) {
		t.Errorf("after partial success the server lists %v", e.Remaining)
	}
	if p := r.server.Permissions(); p == nil || p.Extensions["stage"] != "2" {
		t.Errorf("permissions %+v", p)
	}

	// A wrong second factor: AuthError with Partial.
	r = runAuth(t, &Config{User: "h", Auth: []AuthMethod{PublicKeys(testEd25519), Password("x")}}, scfg)
	var ae *AuthError
	if !errors.As(r.cerr, &ae) || !ae.Partial || !slices.Equal(ae.Tried, []string{"none", "publickey", "password"}) {
		t.Fatalf("client error %#v", r.cerr)
	}
}

func TestAuthBanner(t *testing.T) {
	t.Parallel()
	var got []string
	r := runAuth(t, &Config{User: "i", Auth: []AuthMethod{Password("p")}, BannerCallback: func(m string) { got = append(got, m) }},
		&ServerConfig{Banner: "Welcome\r\n", PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return nil, nil }})
	r.ok(t)
	if !slices.Equal(got, []string{"Welcome\r\n"}) {
		t.Errorf("BannerCallback got %q", got)
	}
	var banners []*AuthBannerEvent
	for _, ev := range r.cev {
		if b, ok := ev.(*AuthBannerEvent); ok {
			banners = append(banners, b)
		}
	}
	if len(banners) != 1 || banners[0].Message != "Welcome\r\n" {
		t.Errorf("banner events %+v", banners)
	}
	// The banner comes before the first reply.
	if len(r.cev) < 2 {
		t.Fatalf("client events %v", r.cev)
	}
	if _, ok := r.cev[0].(*AuthBannerEvent); !ok {
		t.Errorf("first client event %T, want the banner", r.cev[0])
	}
}

func TestAuthMaxAuthTries(t *testing.T) {
	t.Parallel()
	keys := []ssh.Signer{authNewEd25519(t), authNewEd25519(t), authNewEd25519(t)}
	r := runAuth(t, &Config{User: "j", Auth: []AuthMethod{PublicKeys(keys...)}},
		&ServerConfig{MaxAuthTries: 2, PublicKeyCallback: authAcceptKeys()})
	var de *DisconnectError
	if !errors.As(r.cerr, &de) || !de.Remote || de.Reason != DisconnectProtocolError || de.Message != "Too many authentication failures" {
		t.Fatalf("client error %v", r.cerr)
	}
	if !errors.As(r.serr, &de) || de.Remote || de.Reason != DisconnectProtocolError {
		t.Fatalf("server error %v", r.serr)
	}
	var disc []*DisconnectEvent
	for _, ev := range r.cev {
		if d, ok := ev.(*DisconnectEvent); ok {
			disc = append(disc, d)
		}
	}
	if len(disc) != 1 || !disc[0].Remote || disc[0].Reason != 2 || disc[0].Message != "Too many authentication failures" {
		t.Errorf("client disconnect events %+v", disc)
	}
	// The first "none" is free; two key failures end it (the second
	// without a FAILURE reply).
	if got := authSummary(r.sev); !slices.Equal(got, []string{"none:failure", "publickey/ssh-ed25519:failure", "publickey/ssh-ed25519:failure"}) {
		t.Errorf("server events %v", got)
	}
}

func TestAuthLoginGraceTime(t *testing.T) {
	t.Parallel()
	testKeys(t)
	a, b := net.Pipe()
	// The client stops after the service request, so the server waits for
	// a USERAUTH_REQUEST that never comes.
	cl := ClientConn(a, &Config{NoAuth: true, HostKeyCallback: insecure})
	sv := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, LoginGraceTime: 300 * time.Millisecond,
		PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return nil, nil }})

	defer cl.Close()
	defer sv.Close()
	csub := cl.Subscribe(context.Background(), KindDisconnect)
	defer csub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serr := make(chan error, 1)
	go func() { serr <- sv.Handshake(ctx) }()
	if err := cl.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := <-serr
	var ge *LoginGraceError
	if !errors.As(err, &ge) || ge.Stage != StageAuth || ge.Grace != 300*time.Millisecond {
		t.Fatalf("server error %v, want a *LoginGraceError in user authentication", err)
	}
	var de *DisconnectError
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("grace time took %v", d)
	}
	cerr := cl.Wait()
	if !errors.As(cerr, &de) || !de.Remote || de.Reason != DisconnectByApplication {
		t.Errorf("client error %v", cerr)
	}
}

// authBadSigner signs correctly and then spoils the signature bytes.
type authBadSigner struct{ ssh.AlgorithmSigner }

func (s authBadSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(r, data, "")
}

func (s authBadSigner) SignWithAlgorithm(r io.Reader, data []byte, algo string) (*ssh.Signature, error) {
	sig, err := s.AlgorithmSigner.SignWithAlgorithm(r, data, algo)
	if err == nil {
		sig.Blob[len(sig.Blob)/2] ^= 1
	}
	return sig, err
}

// authWrongFormatSigner claims another algorithm in its signatures.
type authWrongFormatSigner struct{ ssh.AlgorithmSigner }

func (s authWrongFormatSigner) SignWithAlgorithm(r io.Reader, data []byte, algo string) (*ssh.Signature, error) {
	sig, err := s.AlgorithmSigner.SignWithAlgorithm(r, data, algo)
	if err == nil {
		sig.Format = ssh.KeyAlgoRSASHA256
	}
	return sig, err
}

func TestAuthBadSignature(t *testing.T) {
	t.Parallel()
	testKeys(t)
	for _, s := range []ssh.Signer{testEd25519, testRSA, testECDSA256} {
		bad := authBadSigner{s.(ssh.AlgorithmSigner)}
		r := runAuth(t, &Config{User: "k", Auth: []AuthMethod{PublicKeys(bad)}},
			&ServerConfig{PublicKeyCallback: authAcceptKeys(s.PublicKey())})
		var ae *AuthError
		if !errors.As(r.cerr, &ae) {
			t.Fatalf("%s: client error %v", s.PublicKey().Type(), r.cerr)
		}
		se := authEvents(r.sev)
		if len(se) != 2 || se[1].Result != AuthFailure || !strings.Contains(se[1].Err, "signature verification failed") {
			t.Errorf("%s: server events %+v", s.PublicKey().Type(), se)
		}
	}
	// The client refuses to send a signature whose format is not the
	// algorithm it named.
	r := runAuth(t, &Config{User: "k", Auth: []AuthMethod{PublicKeys(authWrongFormatSigner{testRSA.(ssh.AlgorithmSigner)})}},
		&ServerConfig{PublicKeyCallback: authAcceptKeys(testRSA.PublicKey())})
	var me *AuthMethodError
	if !errors.As(r.cerr, &me) || !strings.Contains(me.Error(), "rsa-sha2-256") {
		t.Errorf("client error %v", r.cerr)
	}
}

// authRawMethod sends hand-made requests, for protocol violations and methods
// Config.Auth has no constructor for.
type authRawMethod struct {
	name string
	run  func(ctx context.Context, ca *clientAuthRun) (bool, error)
}

func (m *authRawMethod) method() string { return m.name }
func (m *authRawMethod) auth(ctx context.Context, ca *clientAuthRun) (bool, error) {
	return m.run(ctx, ca)
}

func TestAuthUserChange(t *testing.T) {
	t.Parallel()
	m := &authRawMethod{name: "password", run: func(ctx context.Context, ca *clientAuthRun) (bool, error) {
		ca.user = "mallory"
		if err := ca.send(ctx, "password", wire.AppendPasswordAuth(nil, wire.PasswordAuth{Password: "x"})); err != nil {
			return false, err
		}
		_, err := ca.recv(ctx)
		return false, err
	}}
	r := runAuth(t, &Config{User: "l", Auth: []AuthMethod{m}},
		&ServerConfig{PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return nil, nil }})
	var pv *ProtocolViolation
	if !errors.As(r.serr, &pv) || !strings.Contains(pv.Msg, "Change of username or service not allowed: (l,ssh-connection) -> (mallory,ssh-connection)") {
		t.Fatalf("server error %v", r.serr)
	}
	var de *DisconnectError
	if !errors.As(r.cerr, &de) || !de.Remote || de.Reason != DisconnectProtocolError {
		t.Fatalf("client error %v", r.cerr)
	}
	if r.server.Authenticated() {
		t.Error("server authenticated")
	}
}

func TestAuthHostbound(t *testing.T) {
	t.Parallel()
	testKeys(t)
	hostbound := func(hostKey func(ca *clientAuthRun) []byte) AuthMethod {
		return &authRawMethod{name: "publickey", run: func(ctx context.Context, ca *clientAuthRun) (bool, error) {
			s := testEd25519
			blob := s.PublicKey().Marshal()
			hk := hostKey(ca)
			data := wire.PublicKeySignedData(ca.c.SessionID(), ca.user, wire.ServiceConnection, wire.MethodPublicKeyHostbound,
				ssh.KeyAlgoED25519, blob, hk)
			sig, err := s.Sign(rand.Reader, data)
			if err != nil {
				return false, err
			}
			rest := wire.AppendPublicKeyAuth(nil, wire.PublicKeyAuth{Signed: true, Algorithm: ssh.KeyAlgoED25519,
				PublicKey: blob, HostKey: hk, Signature: wire.AppendSignature(nil, wire.Signature{Format: sig.Format, Blob: sig.Blob})}, true)
			if err := ca.send(ctx, wire.MethodPublicKeyHostbound, rest); err != nil {
				return false, err
			}
			p, err := ca.recv(ctx)
			if err != nil {
				return false, err
			}
			_, ok, err := ca.outcome(p, wire.MethodPublicKeyHostbound, ssh.KeyAlgoED25519)
			return ok, err
		}}
	}
	scfg := func() *ServerConfig {
		return &ServerConfig{HostKeys: []ssh.Signer{testECDSA256}, PublicKeyCallback: authAcceptKeys(testEd25519.PublicKey())}
	}
	r := runAuth(t, &Config{User: "m", Auth: []AuthMethod{hostbound(func(ca *clientAuthRun) []byte { return ca.c.HostKey() })}}, scfg())
	r.ok(t)
	if got := authSummary(r.sev); !slices.Equal(got, []string{"none:failure", "publickey-hostbound-v00@openssh.com/ssh-ed25519:success"}) {
		t.Errorf("server events %v", got)
	}
	// Bound to another host key: refused.
	r = runAuth(t, &Config{User: "m", Auth: []AuthMethod{hostbound(func(*clientAuthRun) []byte { return testRSA.PublicKey().Marshal() })}}, scfg())
	if r.cerr == nil {
		t.Fatal("hostbound request with a foreign host key succeeded")
	}
	if se := authEvents(r.sev); len(se) != 2 || !strings.Contains(se[1].Err, "host key") {
		t.Errorf("server events %+v", se)
	}
}

// authScriptedServer runs a server Conn's transport without its auth runner:
// the test answers the client's auth messages itself.
func authScriptedServer(t *testing.T, ccfg *Config, script func(ctx context.Context, s *Conn) error) (cerr, serr error) {
	t.Helper()
	testKeys(t)
	a, b := net.Pipe()
	ccfg.HostKeyCallback = insecure
	cl := ClientConn(a, ccfg)
	sv := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}})
	defer cl.Close()
	defer sv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		sv.start()
		select {
		case <-sv.authReady:
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		err := script(ctx, sv)
		if err != nil {
			sv.abort(err, 0, "")
		}
		done <- err
	}()
	cerr = cl.Handshake(ctx)
	if cerr != nil {
		cl.Close()
	}
	serr = <-done
	return cerr, serr
}

func TestAuthPasswordChange(t *testing.T) {
	t.Parallel()
	script := func(ctx context.Context, s *Conn) error {
		var got []wire.PasswordAuth
		for {
			p, err := s.nextAuthMsg(ctx)
			if err != nil {
				return err
			}
			var req wire.UserAuthRequest
			if err := req.Unmarshal(p); err != nil {
				return err
			}
			switch req.Method {
			case "none":
				f := wire.UserAuthFailure{Methods: []string{"password"}}
				if err := s.writePacket(ctx, f.Marshal(nil)); err != nil {
					return err
				}
				continue
			case "password":
			default:
				return fmt.Errorf("method %q", req.Method)
			}
			pa, err := wire.ParsePasswordAuth(req.Rest)
			if err != nil {
				return err
			}
			got = append(got, pa)
			if !pa.Change {
				// RFC 4252 §8: "byte SSH_MSG_USERAUTH_PASSWD_CHANGEREQ,
				// string prompt, string language tag". wire has only the
				// decoder: sshtap's server never sends it.
				m := wire.AppendString([]byte{wire.MsgUserAuthPasswdChangeReq}, "expired, new one:")
				m = wire.AppendString(m, "")
				if err := s.writePacket(ctx, m); err != nil {
					return err
				}
				continue
			}
			if pa.Password != "old" || pa.NewPassword != "new" {
				return fmt.Errorf("change request %+v", got)
			}
			s.setAuthenticated(req.User, nil)
			return s.writePacket(ctx, (&wire.UserAuthSuccess{}).Marshal(nil))
		}
	}
	var prompt string
	cerr, serr := authScriptedServer(t, &Config{User: "n", Auth: []AuthMethod{PasswordWithChange("old", func(p string) (string, error) {
		prompt = p
		return "new", nil
	})}}, script)
	if cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
	if prompt != "expired, new one:" {
		t.Errorf("change prompt %q", prompt)
	}
	// Without a change callback: *PasswordChangeError.
	cerr, _ = authScriptedServer(t, &Config{User: "n", Auth: []AuthMethod{Password("old")}}, script)
	var pce *PasswordChangeError
	if !errors.As(cerr, &pce) || pce.Prompt != "expired, new one:" {
		t.Errorf("client error %v", cerr)
	}
}

func TestAuthServiceNotAvailable(t *testing.T) {
	t.Parallel()
	cerr, serr := authScriptedServerRaw(t)
	var de *DisconnectError
	if !errors.As(serr, &de) || de.Reason != DisconnectServiceNotAvailable {
		t.Errorf("server error %v", serr)
	}
	if !errors.As(cerr, &de) || !de.Remote || de.Reason != DisconnectServiceNotAvailable {
		t.Errorf("client error %v", cerr)
	}
}

// authScriptedServerRaw: a client whose first USERAUTH_REQUEST names the
// service "ssh-foo", against our server.
func authScriptedServerRaw(t *testing.T) (cerr, serr error) {
	testKeys(t)
	a, b := net.Pipe()
	cl := ClientConn(a, &Config{NoAuth: true, HostKeyCallback: insecure})
	sv := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return nil, nil }})
	defer cl.Close()
	defer sv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sv.Handshake(ctx) }()
	if err := cl.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	req := wire.UserAuthRequest{User: "o", Service: "ssh-foo", Method: "none"}
	if err := cl.writePacket(ctx, req.Marshal(nil)); err != nil {
		t.Fatal(err)
	}
	serr = <-done
	return cl.Wait(), serr
}

// The second offer with ssh-rsa (for servers that accept only SHA-1 RSA
// signatures) is for RSA keys only: a refused ed25519 or ECDSA key is
// offered once, even with "+ssh-rsa" configured, so it does not cost the
// server's MaxAuthTries twice.
func TestSSHRSARetryOnlyForRSAKeys(t *testing.T) {
	testKeys(t)
	other := authNewEd25519(t)
	r := runAuth(t, &Config{User: "carol", PublicKeyAlgorithms: []string{"+ssh-rsa"}, Auth: []AuthMethod{PublicKeys(other, testECDSA256, testEd25519)}},
		&ServerConfig{PublicKeyAlgorithms: []string{"+ssh-rsa"}, PublicKeyCallback: authAcceptKeys(testEd25519.PublicKey())})
	r.ok(t)
	want := []string{"none:failure", "publickey/ssh-ed25519:failure", "publickey/ecdsa-sha2-nistp256:failure", "publickey/ssh-ed25519:success"}
	if got := authSummary(r.sev); !slices.Equal(got, want) {
		t.Errorf("server saw %v, want %v", got, want)
	}
}

// TestXCallbacksPartialSuccess: an x/crypto public key callback that asks
// for a password too (*ssh.PartialSuccessError) makes the client go on
// with a password, checked by the adapted x/crypto password callback, and
// the ExtraData that callback grants reaches Conn.Permissions.
func TestXCallbacksPartialSuccess(t *testing.T) {
	testKeys(t)
	password := func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if m.User() != "carol" || string(pw) != "second factor" {
			return nil, errors.New("wrong password")
		}
		return &ssh.Permissions{Extensions: map[string]string{"step": "2"}, ExtraData: map[any]any{"token": 42}}, nil
	}
	publicKey := func(m ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if !bytes.Equal(k.Marshal(), testEd25519.PublicKey().Marshal()) {
			return nil, errors.New("unknown key")
		}
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{PasswordCallback: password}}
	}
	r := runAuth(t, &Config{User: "carol", Auth: []AuthMethod{PublicKeys(testEd25519), Password("second factor")}},
		&ServerConfig{PublicKeyCallback: XPublicKeyCallback(publicKey)})
	r.ok(t)
	want := []string{"none:failure", "publickey/ssh-ed25519:partial-success", "password:success"}
	if got := authSummary(r.sev); !slices.Equal(got, want) {
		t.Errorf("server saw %v, want %v", got, want)
	}
	if p := r.server.Permissions(); p == nil || p.Extensions["step"] != "2" || p.ExtraData["token"] != 42 {
		t.Errorf("permissions %+v, want the password step's, ExtraData included", p)
	}
}

// publicOnlySigner has a public key and no private key: a client that
// knows someone's public key and nothing more.
type publicOnlySigner struct{ pub ssh.PublicKey }

func (s publicOnlySigner) PublicKey() ssh.PublicKey { return s.pub }
func (s publicOnlySigner) Sign(io.Reader, []byte) (*ssh.Signature, error) {
	return nil, errors.New("no private key")
}

// TestPartialSuccessNeedsSignature: a publickey step that a callback
// accepts as partial success counts only after the signed request; the
// unsigned query (RFC 4252 §7) gets PK_OK and nothing more, so a client
// holding only the public key does not pass the first factor.
func TestPartialSuccessNeedsSignature(t *testing.T) {
	testKeys(t)
	pk := func(m ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if !bytes.Equal(k.Marshal(), testEd25519.PublicKey().Marshal()) {
			return nil, errors.New("unknown key")
		}
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return &ssh.Permissions{}, nil }}}
	}
	for _, scfg := range []*ServerConfig{
		{PublicKeyCallback: XPublicKeyCallback(pk)},
		{PublicKeyCallback: func(m ConnMetadata, k ssh.PublicKey) (*Permissions, error) {
			if !bytes.Equal(k.Marshal(), testEd25519.PublicKey().Marshal()) {
				return nil, errors.New("unknown key")
			}
			return nil, &PartialSuccessError{Next: ServerAuthCallbacks{PasswordCallback: func(ConnMetadata, []byte) (*Permissions, error) { return &Permissions{}, nil }}}
		}},
	} {
		r := runAuth(t, &Config{User: "eve", Auth: []AuthMethod{PublicKeys(publicOnlySigner{testEd25519.PublicKey()}), Password("x")}}, scfg)
		if r.server.Authenticated() || slices.Contains(authSummary(r.sev), "publickey/ssh-ed25519:partial-success") {
			t.Fatalf("first factor passed without a signature: %v", authSummary(r.sev))
		}
	}
}

// TestPartialSuccessSourceAddress: the permissions returned with a partial
// success are held to their source-address critical option, as x/crypto
// holds them: a step from an address outside it fails (runAuth's pipe has
// no IP address, which no source-address admits).
func TestPartialSuccessSourceAddress(t *testing.T) {
	testKeys(t)
	pk := func(m ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		return &ssh.Permissions{CriticalOptions: map[string]string{"source-address": "192.0.2.0/24"}},
			&ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
				PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return &ssh.Permissions{}, nil }}}
	}
	r := runAuth(t, &Config{User: "eve", Auth: []AuthMethod{PublicKeys(testEd25519), Password("x")}},
		&ServerConfig{PublicKeyCallback: XPublicKeyCallback(pk)})
	if r.server.Authenticated() || slices.Contains(authSummary(r.sev), "publickey/ssh-ed25519:partial-success") {
		t.Fatalf("a step outside its source-address passed: %v", authSummary(r.sev))
	}
}
