package main

// Host certificates checked against the @cert-authority lines of
// known_hosts, as OpenSSH's ssh checks them (sshd(8) "SSH_KNOWN_HOSTS FILE
// FORMAT"; PROTOCOL.certkeys).
//
// x/crypto's knownhosts.New handles plain keys and @revoked lines here; its
// own certificate check is not used for three reasons: its host patterns
// without a port match port 22 only, where OpenSSH's "@cert-authority *"
// covers every port; its errors are strings, where each refusal here is a
// distinct typed reason; and OpenSSH falls back to the certified plain key
// when a certificate is not accepted, which a callback that fails cannot
// do. The lines are parsed with ssh.ParseKnownHosts, and ssh.CertChecker
// has the last word (it verifies the CA's signature).

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sshtap/internal/sshconfig"
)

// knownAuthority is one @cert-authority line, or (in
// hostKeyChecker.caKeyLines) one plain host key line.
type knownAuthority struct {
	file     string
	line     int
	patterns []string // the host patterns, comma-separated in the file
	key      ssh.PublicKey
}

// readAuthorities returns the @cert-authority lines of the known_hosts
// files that exist, with their file names and line numbers as
// knownhosts.New reports them, and the plain host key lines (no marker)
// whose key is also on one of those @cert-authority lines.
func readAuthorities(files []string) (authorities, caKeyLines []knownAuthority, err error) {
	var plain []knownAuthority
	for _, file := range files {
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			isCA := bytes.HasPrefix(line, []byte("@cert-authority"))
			if len(line) == 0 || line[0] == '#' || (line[0] == '@' && !isCA) {
				continue
			}
			// Lines that do not parse are skipped, as knownhosts.New
			// skips them.
			marker, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
			switch {
			case err != nil:
			case isCA && marker == "cert-authority":
				authorities = append(authorities, knownAuthority{file: file, line: n, patterns: hosts, key: key})
			case !isCA && marker == "":
				plain = append(plain, knownAuthority{file: file, line: n, patterns: hosts, key: key})
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", file, err)
		}
	}
	for _, p := range plain {
		if slices.ContainsFunc(authorities, func(a knownAuthority) bool { return sameKey(a.key, p.key) }) {
			caKeyLines = append(caKeyLines, p)
		}
	}
	return authorities, caKeyLines, nil
}

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// matches reports whether the line's host patterns match one of names.
// For each name, as OpenSSH's match_hostname: a pattern is a hashed name
// (|1|salt|hash, HMAC-SHA1 of the name keyed by the salt), or a pattern
// with * and ? matched without regard to case; a negated pattern (!pat)
// that matches rules the name out whatever else matches.
func (a *knownAuthority) matches(names []string) bool {
	for _, name := range names {
		name = strings.ToLower(name)
		matched := false
		for _, p := range a.patterns {
			neg := strings.HasPrefix(p, "!")
			p = strings.TrimPrefix(p, "!")
			var ok bool
			if strings.HasPrefix(p, "|1|") {
				ok = hashedNameMatches(p, name)
			} else {
				ok = sshconfig.MatchPattern(name, strings.ToLower(p))
			}
			if ok && neg {
				matched = false
				break
			}
			matched = matched || ok
		}
		if matched {
			return true
		}
	}
	return false
}

// hashedNameMatches checks a HashKnownHosts entry, |1|base64(salt)|base64(hash).
func hashedNameMatches(entry, name string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(name))
	return hmac.Equal(m.Sum(nil), want)
}

// lookupNames are the known_hosts names a connection to hostport is looked
// up by: "host" for port 22, "[host]:port" otherwise, and then, as
// OpenSSH's check_host_key retries "without port identifier", the bare
// host.
func lookupNames(hostport string) []string {
	name := knownhosts.Normalize(hostport)
	names := []string{name}
	if host, port, err := net.SplitHostPort(hostport); err == nil && port != "22" {
		names = append(names, strings.Trim(host, "[]"))
	}
	return names
}

// hasAuthority reports whether an @cert-authority line matches hostport:
// the client then asks for certificates first, as OpenSSH's
// order_hostkeyalgs does.
func (h *hostKeyChecker) hasAuthority(hostport string) bool {
	names := lookupNames(hostport)
	return slices.ContainsFunc(h.authorities, func(a knownAuthority) bool { return a.matches(names) })
}

// authorityFor returns the @cert-authority line for hostport that names
// ca, or nil.
func (h *hostKeyChecker) authorityFor(hostport string, ca ssh.PublicKey) *knownAuthority {
	names := lookupNames(hostport)
	blob := ca.Marshal()
	for i := range h.authorities {
		a := &h.authorities[i]
		if bytes.Equal(a.key.Marshal(), blob) && a.matches(names) {
			return a
		}
	}
	return nil
}

// certPrincipal is the name a host certificate must list: the host name
// connected to (HostName, or the destination), lower-cased unless it is an
// address, as ssh.c prepares it for sshkey_cert_check_host.
func certPrincipal(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host
	}
	return strings.ToLower(host)
}

// certFailure is why a host certificate was not accepted.
type certFailure int

const (
	certUnknownCA           certFailure = iota // no @cert-authority line for the host names its CA
	certNotHost                                // a user certificate
	certNotYetValid                            // before its valid-after time
	certExpired                                // at or past its valid-before time
	certWrongPrincipal                         // the host name is not among its principals
	certNoPrincipals                           // it lists no principals
	certCriticalOptions                        // it has critical options (none are defined for hosts)
	certBadSignature                           // the CA's signature does not verify
	certDisallowedSignature                    // the CA signed with an algorithm outside CASignatureAlgorithms
)

// defaultCASignatureAlgorithms are the signature algorithms a host
// certificate's CA may have used, as OpenSSH 9.2's CASignatureAlgorithms
// default (ssh_config(5)): no ssh-rsa, whose signatures use SHA-1. The
// webauthn-sk-ecdsa-sha2-nistp256@openssh.com of that default is left out
// because x/crypto cannot verify such signatures.
var defaultCASignatureAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// supportedCASignatureAlgorithms are the names CASignatureAlgorithms
// accepts: the defaults and the legacy ssh-rsa, which must be named.
var supportedCASignatureAlgorithms = append(slices.Clone(defaultCASignatureAlgorithms), ssh.KeyAlgoRSA)

// hostCertError says why a host certificate was not accepted. Except for
// certBadSignature, the client then checks the certified plain key as any
// other host key (OpenSSH's check_host_key: "No matching CA found. Retry
// with plain key"), and an error about that key carries this one.
type hostCertError struct {
	failure certFailure
	host    string // the known_hosts name
	name    string // the principal looked for
	cert    *ssh.Certificate
	now     time.Time
	detail  string // certBadSignature: the checker's error; certDisallowedSignature: the allowed algorithms
}

func (e *hostCertError) Error() string {
	c := e.cert
	what := fmt.Sprintf("the host certificate of %s (ID %q, serial %d, signed by CA %s %s)",
		e.host, c.KeyId, c.Serial, c.SignatureKey.Type(), ssh.FingerprintSHA256(c.SignatureKey))
	switch e.failure {
	case certUnknownCA:
		return what + " is not trusted: no @cert-authority line for " + e.host + " names that CA"
	case certNotHost:
		return what + " is a user certificate, not a host certificate"
	case certNotYetValid:
		return fmt.Sprintf("%s is not valid yet: valid %s, it is now %s", what, certValidity(c), e.now.UTC().Format(time.RFC3339))
	case certExpired:
		return fmt.Sprintf("%s has expired: valid %s, it is now %s", what, certValidity(c), e.now.UTC().Format(time.RFC3339))
	case certWrongPrincipal:
		return fmt.Sprintf("%s is not valid for the name %q: its principals are %q", what, e.name, c.ValidPrincipals)
	case certNoPrincipals:
		return what + " lists no principals (sshtap, like x/crypto, does not take that as valid for every host)"
	case certCriticalOptions:
		return fmt.Sprintf("%s has critical options, which host certificates do not define: %q", what, slices.Sorted(maps.Keys(c.CriticalOptions)))
	case certBadSignature:
		return what + " does not verify: " + e.detail + ".\nHost key verification failed"
	case certDisallowedSignature:
		format := "no signature"
		if c.Signature != nil {
			format = c.Signature.Format
		}
		return fmt.Sprintf("%s is signed with %s, which CASignatureAlgorithms does not allow (%s)", what, format, e.detail)
	}
	return what + " was not accepted"
}

// hostKeyRevokedError is a host key, a host certificate's key or its CA
// marked @revoked in a known_hosts file: refused, whatever
// StrictHostKeyChecking says, with no fallback.
type hostKeyRevokedError struct {
	host    string
	role    string // "", or for a certificate "certified by" / "CA of"
	key     ssh.PublicKey
	revoked knownhosts.KnownKey
}

func (e *hostKeyRevokedError) Error() string {
	what := fmt.Sprintf("%s key %s", e.key.Type(), ssh.FingerprintSHA256(e.key))
	switch e.role {
	case "certified by":
		what = "the " + what + " certified by the host certificate"
	case "CA of":
		what = "the certificate authority " + what + " that signed the host certificate"
	}
	return fmt.Sprintf("%s for %s is marked as revoked in %s:%d.\nHost key verification failed", what, e.host, e.revoked.Filename, e.revoked.Line)
}

// revoked returns a *hostKeyRevokedError when key is on a @revoked line.
func (h *hostKeyChecker) revoked(hostport, role string, key ssh.PublicKey) error {
	if h.checker == nil {
		return nil
	}
	var re *knownhosts.RevokedError
	if errors.As(h.checker(hostport, fakeAddr(hostport), key), &re) {
		return &hostKeyRevokedError{host: knownhosts.Normalize(hostport), role: role, key: key, revoked: re.Revoked}
	}
	return nil
}

// caSignatureAlgorithms is CASignatureAlgorithms, resolved.
func (h *hostKeyChecker) caSignatureAlgorithms() []string {
	if h.caSigAlgs == nil {
		return defaultCASignatureAlgorithms
	}
	return h.caSigAlgs
}

// checkCert checks a host certificate as OpenSSH does: the certified key
// and the CA must not be revoked (sshconnect.c check_key_not_revoked), an
// @cert-authority line for the host must name the CA, and the certificate
// must be a host certificate, valid now, listing the host name among its
// principals, with no critical options, signed with an algorithm
// CASignatureAlgorithms allows (sshkey_cert_check_host). The
// returned error is a *hostKeyRevokedError, a *hostCertError, or nil.
func (h *hostKeyChecker) checkCert(hostport string, cert *ssh.Certificate) error {
	if err := h.revoked(hostport, "certified by", cert.Key); err != nil {
		return err
	}
	if err := h.revoked(hostport, "CA of", cert.SignatureKey); err != nil {
		return err
	}
	now := time.Now()
	if h.now != nil {
		now = h.now()
	}
	e := &hostCertError{host: knownhosts.Normalize(hostport), name: certPrincipal(hostport), cert: cert, now: now}
	fail := func(f certFailure) error { e.failure = f; return e }
	auth := h.authorityFor(hostport, cert.SignatureKey)
	switch unix := now.Unix(); {
	case auth == nil:
		return fail(certUnknownCA)
	case cert.CertType != ssh.HostCert:
		return fail(certNotHost)
	case unix < 0 || uint64(unix) < cert.ValidAfter:
		return fail(certNotYetValid)
	case cert.ValidBefore != ssh.CertTimeInfinity && uint64(unix) >= cert.ValidBefore:
		return fail(certExpired)
	case len(cert.ValidPrincipals) == 0:
		return fail(certNoPrincipals)
	case !slices.Contains(cert.ValidPrincipals, e.name):
		return fail(certWrongPrincipal)
	case len(cert.CriticalOptions) > 0:
		return fail(certCriticalOptions)
	case cert.Signature == nil || !slices.Contains(h.caSignatureAlgorithms(), cert.Signature.Format):
		// sshkey_cert_check_host: "Certificate signed with disallowed
		// algorithm". The signature's own algorithm counts, not the CA
		// key's type: one RSA CA key signs with ssh-rsa or rsa-sha2-*.
		e.detail = "allowed: " + strings.Join(h.caSignatureAlgorithms(), ",")
		return fail(certDisallowedSignature)
	}
	// The library has the last word; with everything above in order, what
	// it can still refuse is the CA's signature.
	checker := &ssh.CertChecker{
		IsHostAuthority: func(ca ssh.PublicKey, _ string) bool { return bytes.Equal(ca.Marshal(), auth.key.Marshal()) },
		Clock:           func() time.Time { return now },
	}
	if err := checker.CheckHostKey(net.JoinHostPort(e.name, "22"), nil, cert); err != nil {
		e.detail = err.Error()
		return fail(certBadSignature)
	}
	h.note(fmt.Sprintf("host certificate %s %s (ID %q, serial %d) accepted: signed by CA %s %s, trusted for %s by %s:%d",
		cert.Type(), ssh.FingerprintSHA256(cert.Key), cert.KeyId, cert.Serial,
		cert.SignatureKey.Type(), ssh.FingerprintSHA256(cert.SignatureKey), e.host, auth.file, auth.line))
	return nil
}
