package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sshtap/kex"
)

func newEd25519Signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// certFixture is a CA, a host key and a way to certify it.
type certFixture struct {
	ca, otherCA, host ssh.Signer
	now               time.Time
}

func newCertFixture(t *testing.T) *certFixture {
	return &certFixture{ca: newEd25519Signer(t), otherCA: newEd25519Signer(t), host: newEd25519Signer(t), now: time.Unix(1_700_000_000, 0)}
}

// cert certifies the host key with ca; edit changes the certificate
// before it is signed.
func (f *certFixture) cert(t *testing.T, ca ssh.Signer, edit func(*ssh.Certificate)) *ssh.Certificate {
	t.Helper()
	c := &ssh.Certificate{
		Key: f.host.PublicKey(), Serial: 42, CertType: ssh.HostCert, KeyId: "web",
		ValidPrincipals: []string{"host.example", "127.0.0.1"},
		ValidAfter:      uint64(f.now.Add(-time.Hour).Unix()), ValidBefore: uint64(f.now.Add(time.Hour).Unix()),
	}
	if edit != nil {
		edit(c)
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// checkerWith is a hostKeyChecker (StrictHostKeyChecking=yes) over one
// known_hosts file holding lines; notes are collected.
func (f *certFixture) checkerWith(t *testing.T, lines ...string) (*hostKeyChecker, *[]string) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var notes []string
	h, err := newHostKeyChecker(checkYes, []string{kh}, nil, false, nil, func(s string) { notes = append(notes, s) })
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return f.now }
	return h, &notes
}

// Each reason a host certificate is refused is its own typed error and
// message; all but a bad signature and revocation fall back to the plain
// key, which StrictHostKeyChecking=yes then refuses as unknown.
func TestHostCertRefusals(t *testing.T) {
	f := newCertFixture(t)
	caLine := "@cert-authority * " + authorizedLine(f.ca.PublicKey())
	const hostport = "host.example:22"
	for _, tc := range []struct {
		name    string
		cert    *ssh.Certificate
		lines   []string
		failure certFailure
		want    string
	}{
		{"expired", f.cert(t, f.ca, func(c *ssh.Certificate) {
			c.ValidAfter, c.ValidBefore = uint64(f.now.Add(-48*time.Hour).Unix()), uint64(f.now.Add(-24*time.Hour).Unix())
		}), nil, certExpired, "has expired: valid from 2023-11-12T22:13:20Z to 2023-11-13T22:13:20Z, it is now 2023-11-14T22:13:20Z"},
		{"expiry instant", f.cert(t, f.ca, func(c *ssh.Certificate) { c.ValidBefore = uint64(f.now.Unix()) }), nil, certExpired, "has expired"},
		{"not yet valid", f.cert(t, f.ca, func(c *ssh.Certificate) { c.ValidAfter = uint64(f.now.Add(time.Minute).Unix()) }), nil, certNotYetValid, "is not valid yet: valid from 2023-11-14T22:14:20Z"},
		{"wrong principal", f.cert(t, f.ca, func(c *ssh.Certificate) { c.ValidPrincipals = []string{"db.example"} }), nil, certWrongPrincipal, `is not valid for the name "host.example": its principals are ["db.example"]`},
		{"user certificate", f.cert(t, f.ca, func(c *ssh.Certificate) { c.CertType = ssh.UserCert }), nil, certNotHost, "is a user certificate, not a host certificate"},
		{"critical option", f.cert(t, f.ca, func(c *ssh.Certificate) { c.CriticalOptions = map[string]string{"force-command": "x"} }), nil, certCriticalOptions, `has critical options, which host certificates do not define: ["force-command"]`},
		{"wrong CA", f.cert(t, f.otherCA, nil), nil, certUnknownCA, "is not trusted: no @cert-authority line for host.example names that CA"},
		{"CA for other hosts", f.cert(t, f.ca, nil), []string{"@cert-authority *.example.org " + authorizedLine(f.ca.PublicKey())}, certUnknownCA, "is not trusted"},
		{"negated host", f.cert(t, f.ca, nil), []string{"@cert-authority !host.example,*.example " + authorizedLine(f.ca.PublicKey())}, certUnknownCA, "is not trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.lines
			if lines == nil {
				lines = []string{caLine}
			}
			h, notes := f.checkerWith(t, lines...)
			err := h.check(hostport, fakeAddr(hostport), tc.cert)
			var hu *hostKeyUnknownError
			var ce *hostCertError
			if !errors.As(err, &hu) || !errors.As(err, &ce) {
				t.Fatalf("error %T %v, want a *hostKeyUnknownError carrying a *hostCertError", err, err)
			}
			if ce.failure != tc.failure {
				t.Errorf("failure %d, want %d", ce.failure, tc.failure)
			}
			msg := err.Error()
			for _, want := range []string{tc.want, `ID "web", serial 42`, ssh.FingerprintSHA256(f.host.PublicKey()), "Host key verification failed"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			// The user sees why the certificate was set aside, except when
			// no @cert-authority line concerns the host (ssh says nothing
			// then either).
			warned := slices.ContainsFunc(*notes, func(n string) bool { return strings.HasPrefix(n, "warning: ") && strings.Contains(n, tc.want) })
			if quiet := tc.name == "CA for other hosts" || tc.name == "negated host"; warned == quiet {
				t.Errorf("warning shown %v, want %v; notes %q", warned, !quiet, *notes)
			}
		})
	}
}

// A refused certificate whose plain key is on record is accepted through
// that key, as ssh does; a certificate whose signature does not verify, a
// revoked certified key and a revoked CA end the check with no fallback.
func TestHostCertFallbackAndHardFailures(t *testing.T) {
	f := newCertFixture(t)
	const hostport = "host.example:22"
	caLine := "@cert-authority * " + authorizedLine(f.ca.PublicKey())
	plainLine := knownhosts.Line([]string{"host.example"}, f.host.PublicKey())

	expired := f.cert(t, f.ca, func(c *ssh.Certificate) { c.ValidBefore = uint64(f.now.Add(-time.Minute).Unix()) })
	h, notes := f.checkerWith(t, caLine, plainLine)
	if err := h.check(hostport, fakeAddr(hostport), expired); err != nil {
		t.Fatalf("expired certificate of a recorded key: %v", err)
	}
	if !h.verified.Load() {
		t.Error("the recorded plain key did not count as verified")
	}
	if len(*notes) == 0 || !strings.Contains((*notes)[0], "has expired") {
		t.Errorf("notes %q, want the expiry warning", *notes)
	}

	forged := f.cert(t, f.ca, nil)
	forged.KeyId = "altered after signing"
	h, _ = f.checkerWith(t, caLine, plainLine)
	err := h.check(hostport, fakeAddr(hostport), forged)
	var ce *hostCertError
	if !errors.As(err, &ce) || ce.failure != certBadSignature || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("forged certificate: %v, want a bad-signature *hostCertError", err)
	}

	good := f.cert(t, f.ca, nil)
	for _, tc := range []struct {
		name    string
		revoked ssh.PublicKey
		want    string
	}{
		{"host key", f.host.PublicKey(), "the ssh-ed25519 key " + ssh.FingerprintSHA256(f.host.PublicKey()) + " certified by the host certificate for host.example is marked as revoked in "},
		{"CA", f.ca.PublicKey(), "the certificate authority ssh-ed25519 key " + ssh.FingerprintSHA256(f.ca.PublicKey()) + " that signed the host certificate for host.example is marked as revoked in "},
	} {
		t.Run("revoked "+tc.name, func(t *testing.T) {
			for _, mode := range []string{checkYes, checkNo} {
				h, _ := f.checkerWith(t, caLine, plainLine, "@revoked * "+authorizedLine(tc.revoked))
				h.mode = mode
				err := h.check(hostport, fakeAddr(hostport), good)
				var re *hostKeyRevokedError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "known_hosts:3") {
					t.Errorf("%s: %v, want a *hostKeyRevokedError: %q ...:3", mode, err, tc.want)
				}
			}
		})
	}
}

// Certificates accepted: CA lines with wildcards, hashed names, a bare
// host for a non-default port (OpenSSH retries without the port), upper
// case in the name typed; an accepted certificate does not count as a
// verified plain key (ssh turns UpdateHostKeys off then).
func TestHostCertAccepted(t *testing.T) {
	f := newCertFixture(t)
	ca := authorizedLine(f.ca.PublicKey())
	cert := f.cert(t, f.ca, nil)
	for _, tc := range []struct{ hostport, pattern string }{
		{"host.example:22", "*"},
		{"host.example:2222", "*"},
		{"127.0.0.1:2222", "[127.0.0.1]:2222"},
		{"127.0.0.1:2222", "127.0.0.1"},
		{"127.0.0.1:2222", "127.0.0.?"},
		{"host.example:22", "*.EXAMPLE"},
		{"HOST.example:22", "host.example"},
		{"host.example:22", "other.example,host.example"},
		{"host.example:2222", knownhosts.HashHostname("[host.example]:2222")},
		{"host.example:22", knownhosts.HashHostname("host.example")},
	} {
		h, notes := f.checkerWith(t, "@cert-authority "+tc.pattern+" "+ca)
		if !h.hasAuthority(tc.hostport) {
			t.Errorf("%s %q: no authority found", tc.hostport, tc.pattern)
		}
		if err := h.check(tc.hostport, fakeAddr(tc.hostport), cert); err != nil {
			t.Errorf("%s with @cert-authority %q: %v", tc.hostport, tc.pattern, err)
			continue
		}
		if h.verified.Load() {
			t.Errorf("%s: an accepted certificate made the host verified for UpdateHostKeys", tc.hostport)
		}
		if len(*notes) != 1 || !strings.Contains((*notes)[0], "known_hosts:1") || strings.HasPrefix((*notes)[0], "warning") {
			t.Errorf("%s: notes %q, want the acceptance naming the line", tc.hostport, *notes)
		}
	}
	h, _ := f.checkerWith(t, "@cert-authority host.example "+ca)
	if h.hasAuthority("db.example:22") {
		t.Error("a CA line for host.example matched db.example")
	}
}

// With an @cert-authority line for the host, every certificate algorithm
// is asked for first (OpenSSH's order_hostkeyalgs), then the known key
// types, then the rest; without one the order is that of the known keys.
func TestPreferKnownCertificates(t *testing.T) {
	algos := kex.DefaultHostKeyAlgos
	got := preferKnown([]string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}, true, algos)
	var certs []string
	for _, a := range algos {
		if strings.HasSuffix(a, "-cert-v01@openssh.com") {
			certs = append(certs, a)
		}
	}
	want := append(slices.Clone(certs), ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
	if len(got) != len(algos) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("with a CA and an RSA key: %q, want %q first", got, want)
	}
	if got := preferKnown(nil, true, algos); !slices.Equal(got[:len(certs)], certs) {
		t.Errorf("with a CA only: %q, want the certificates first", got)
	}
	if got := preferKnown(nil, false, algos); got != nil {
		t.Errorf("nothing known: %q, want nil (the default list)", got)
	}
	got = preferKnown([]string{ssh.KeyAlgoRSASHA512}, false, algos)
	if got[0] != kex.HostKeyRSASHA512Cert || slices.Index(got, kex.HostKeyED25519Cert) < slices.Index(got, ssh.KeyAlgoRSASHA512) {
		t.Errorf("an RSA key known, no CA: %q", got)
	}
}

// A host certificate whose CA signed it with ssh-rsa (SHA-1) is refused,
// as OpenSSH's sshkey_cert_check_host refuses a signature algorithm
// outside CASignatureAlgorithms (whose default has no ssh-rsa); the
// certified plain key is then checked as any other.
func TestHostCertSHA1CASignatureRefused(t *testing.T) {
	f := newCertFixture(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ssh.NewSignerFromKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	sha1CA, err := ssh.NewSignerWithAlgorithms(rs.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	cert := f.cert(t, sha1CA, nil)
	if cert.Signature.Format != ssh.KeyAlgoRSA {
		t.Fatalf("signature format %q, want ssh-rsa", cert.Signature.Format)
	}
	const hostport = "host.example:22"
	h, notes := f.checkerWith(t, "@cert-authority * "+authorizedLine(rs.PublicKey()))
	err = h.check(hostport, fakeAddr(hostport), cert)
	var ce *hostCertError
	var hu *hostKeyUnknownError
	if !errors.As(err, &hu) || !errors.As(err, &ce) || ce.failure != certDisallowedSignature {
		t.Fatalf("host certificate signed with ssh-rsa (SHA-1): %v, want a *hostKeyUnknownError carrying a disallowed-signature *hostCertError", err)
	}
	if want := `signed with ssh-rsa, which CASignatureAlgorithms does not allow`; !strings.Contains(err.Error(), want) {
		t.Errorf("message lacks %q:\n%v", want, err)
	}
	if !slices.ContainsFunc(*notes, func(n string) bool { return strings.Contains(n, "CASignatureAlgorithms") }) {
		t.Errorf("no warning about the signature algorithm: %q", *notes)
	}

	// Falling back to the plain key, as for the other refusals.
	h, _ = f.checkerWith(t, "@cert-authority * "+authorizedLine(rs.PublicKey()), knownhosts.Line([]string{"host.example"}, f.host.PublicKey()))
	if err := h.check(hostport, fakeAddr(hostport), cert); err != nil {
		t.Errorf("SHA-1-signed certificate of a recorded plain key: %v", err)
	}

	// CASignatureAlgorithms=+ssh-rsa allows it; rsa-sha2-256 signatures
	// by the same CA (x/crypto's choice for an RSA signer) are allowed by
	// default and refused when the list leaves them out.
	h, _ = f.checkerWith(t, "@cert-authority * "+authorizedLine(rs.PublicKey()))
	h.caSigAlgs = append(slices.Clone(defaultCASignatureAlgorithms), ssh.KeyAlgoRSA)
	if err := h.check(hostport, fakeAddr(hostport), cert); err != nil {
		t.Errorf("CASignatureAlgorithms with ssh-rsa: %v", err)
	}
	sha2 := f.cert(t, rs, nil)
	if sha2.Signature.Format != ssh.KeyAlgoRSASHA256 {
		t.Fatalf("signature format %q, want rsa-sha2-256", sha2.Signature.Format)
	}
	h, _ = f.checkerWith(t, "@cert-authority * "+authorizedLine(rs.PublicKey()))
	if err := h.check(hostport, fakeAddr(hostport), sha2); err != nil {
		t.Errorf("rsa-sha2-256 CA signature: %v", err)
	}
	h.caSigAlgs = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512}
	if err := h.check(hostport, fakeAddr(hostport), sha2); !errors.As(err, &ce) || ce.failure != certDisallowedSignature {
		t.Errorf("rsa-sha2-256 outside CASignatureAlgorithms: %v", err)
	}
}

// CASignatureAlgorithms takes OpenSSH's list syntax against its default.
func TestResolveCASignatureAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		opt  string
		want []string
	}{
		{"", nil},
		{"CASignatureAlgorithms=+ssh-rsa", append(slices.Clone(defaultCASignatureAlgorithms), ssh.KeyAlgoRSA)},
		{"CASignatureAlgorithms=ssh-ed25519,rsa-sha2-512", []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512}},
		{"CASignatureAlgorithms=-rsa-sha2-*", slices.DeleteFunc(slices.Clone(defaultCASignatureAlgorithms), func(a string) bool { return strings.HasPrefix(a, "rsa-sha2-") })},
	} {
		var opts []string
		if tc.opt != "" {
			opts = []string{tc.opt}
		}
		s, err := resolveWith(t, opts, "", "")
		if err != nil {
			t.Fatalf("%q: %v", tc.opt, err)
		}
		if !slices.Equal(s.caSigAlgs, tc.want) {
			t.Errorf("%q: %q, want %q", tc.opt, s.caSigAlgs, tc.want)
		}
	}
	if _, err := resolveWith(t, []string{"CASignatureAlgorithms=ssh-dss"}, "", ""); err == nil || !strings.Contains(err.Error(), "ssh-dss") {
		t.Errorf("unknown CA signature algorithm: %v", err)
	}
}

// A CA's key offered as a plain host key is not on record: OpenSSH
// matches plain keys against unmarked lines only. The same key on a plain
// line for the host is.
func TestCAKeyIsNotAHostKey(t *testing.T) {
	f := newCertFixture(t)
	const hostport = "host.example:22"
	caLine := "@cert-authority * " + authorizedLine(f.ca.PublicKey())
	h, _ := f.checkerWith(t, caLine)
	err := h.check(hostport, fakeAddr(hostport), f.ca.PublicKey())
	var hu *hostKeyUnknownError
	if !errors.As(err, &hu) {
		t.Fatalf("CA key as plain host key: %v (verified=%v), want a *hostKeyUnknownError", err, h.verified.Load())
	}
	if h.verified.Load() {
		t.Error("CA key counted as a verified host key")
	}

	// With a plain key of the CA's type on record, it is a changed key
	// (the @cert-authority line is not listed as a record).
	h, _ = f.checkerWith(t, caLine, knownhosts.Line([]string{"host.example"}, f.host.PublicKey()))
	err = h.check(hostport, fakeAddr(hostport), f.ca.PublicKey())
	var hc *hostKeyChangedError
	if !errors.As(err, &hc) || len(hc.known) != 1 || hc.known[0].Line != 2 {
		t.Errorf("CA key against a recorded plain key: %v, want a *hostKeyChangedError naming line 2 only", err)
	}

	// A plain line for the host holding the same key, hashed or not, is a
	// record; one for another host is not.
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{knownhosts.Line([]string{"host.example"}, f.ca.PublicKey()), true},
		{knownhosts.Line([]string{knownhosts.HashHostname("host.example")}, f.ca.PublicKey()), true},
		{knownhosts.Line([]string{"*.example"}, f.ca.PublicKey()), true},
		{knownhosts.Line([]string{"db.example"}, f.ca.PublicKey()), false},
	} {
		h, _ := f.checkerWith(t, caLine, tc.line)
		if err := h.check(hostport, fakeAddr(hostport), f.ca.PublicKey()); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want accepted %v", tc.line, err, tc.ok)
		}
	}
}

// The key types on record for the host go first when HostKeyAlgorithms is
// unset or only adds or removes names, as ssh's use_known_hosts_order; a
// plain list or a ^list keeps its own order.
func TestHostKeyAlgorithmsKnownOrder(t *testing.T) {
	f := newCertFixture(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := ssh.NewPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const hostport = "host.example:22"
	h, _ := f.checkerWith(t, knownhosts.Line([]string{"host.example"}, rsaKey))
	rsaFirst := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	for _, tc := range []struct {
		opt   string
		first []string // the list starts with these
		also  []string // and holds these
	}{
		{"", rsaFirst, nil},
		{"HostKeyAlgorithms=+ssh-rsa", append(slices.Clone(rsaFirst), ssh.KeyAlgoRSA), []string{ssh.KeyAlgoED25519}},
		{"HostKeyAlgorithms=-ecdsa-*", rsaFirst, []string{ssh.KeyAlgoED25519}},
		{"HostKeyAlgorithms=ssh-ed25519,rsa-sha2-512", []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512}, nil},
		{"HostKeyAlgorithms=^ssh-ed25519", []string{ssh.KeyAlgoED25519}, rsaFirst},
	} {
		var opts []string
		if tc.opt != "" {
			opts = []string{tc.opt}
		}
		s, err := resolveWith(t, opts, "", "")
		if err != nil {
			t.Fatalf("%q: %v", tc.opt, err)
		}
		// The plain algorithms (certificates of a known key type go first
		// too, as in ssh's order_hostkeyalgs).
		got := slices.DeleteFunc(hostKeyAlgorithms(s, h, hostport), func(a string) bool { return strings.HasSuffix(a, "-cert-v01@openssh.com") })
		if len(got) < len(tc.first) || !slices.Equal(got[:len(tc.first)], tc.first) {
			t.Errorf("%q: %q, want it to start with %q", tc.opt, got, tc.first)
		}
		for _, a := range tc.also {
			if !slices.Contains(got, a) {
				t.Errorf("%q: %q lacks %s", tc.opt, got, a)
			}
		}
	}
}
