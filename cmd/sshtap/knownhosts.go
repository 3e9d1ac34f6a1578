package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sshtap"
)

// Host key checking modes, as ssh_config's StrictHostKeyChecking.
const (
	checkAsk       = "ask"        // unknown host: ask on the terminal (default)
	checkYes       = "yes"        // unknown host: refuse
	checkAcceptNew = "accept-new" // unknown host: accept and record; changed key: refuse
	checkNo        = "no"         // accept anything, record nothing (throwaway hosts)
)

func parseCheckMode(s string) (string, error) {
	switch strings.ToLower(s) {
	case "ask":
		return checkAsk, nil
	case "yes", "true":
		return checkYes, nil
	case "accept-new":
		return checkAcceptNew, nil
	case "no", "off", "false":
		return checkNo, nil
	}
	return "", fmt.Errorf("StrictHostKeyChecking %q is not yes, ask, accept-new or no", s)
}

// hostKeyChangedError is a host key that differs from the one recorded.
type hostKeyChangedError struct {
	host        string
	fingerprint string // of the key the server presented
	keyType     string
	known       []knownhosts.KnownKey
	cert        *hostCertError // the host certificate this key came with, not accepted
}

func (e *hostKeyChangedError) Unwrap() error {
	if e.cert == nil {
		return nil
	}
	return e.cert
}

func (e *hostKeyChangedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "REMOTE HOST IDENTIFICATION HAS CHANGED for %s!\n", e.host)
	fmt.Fprintf(&b, "  The server presented %s key %s,\n", e.keyType, e.fingerprint)
	for _, k := range e.known {
		fmt.Fprintf(&b, "  but %s:%d records %s key %s.\n", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key))
	}
	b.WriteString("  Someone could be intercepting the connection (man-in-the-middle), or the host key was replaced.\n")
	if e.cert != nil {
		fmt.Fprintf(&b, "  The key came with a host certificate that was not accepted: %v.\n", e.cert)
	}
	if len(e.known) > 0 {
		fmt.Fprintf(&b, "  If the change is expected, remove the old entry: ssh-keygen -R %q -f %s\n", e.host, e.known[0].Filename)
	}
	b.WriteString("Host key verification failed.")
	return b.String()
}

// hostKeyUnknownError is an unknown host in a mode that does not accept it.
type hostKeyUnknownError struct {
	host, fingerprint, keyType, why string
	cert                            *hostCertError // the host certificate this key came with, not accepted
}

func (e *hostKeyUnknownError) Error() string {
	var certLine string
	if e.cert != nil {
		certLine = fmt.Sprintf("\n  The key came with a host certificate that was not accepted: %v.", e.cert)
	}
	return fmt.Sprintf("no %s host key is known for %s (%s %s) and %s.%s\nHost key verification failed.",
		e.keyType, e.host, e.keyType, e.fingerprint, e.why, certLine)
}

func (e *hostKeyUnknownError) Unwrap() error {
	if e.cert == nil {
		return nil
	}
	return e.cert
}

var errHostKeyDeclined = errors.New("host key not accepted.\nHost key verification failed")

// hostKeyChecker checks server host keys against known_hosts files.
type hostKeyChecker struct {
	mode    string
	user    []string // user known_hosts files, the first is written to
	global  []string // read-only files
	hash    bool     // HashKnownHosts: record hashed names
	ask     func(question string) (string, error)
	noteFn  func(string)
	checker ssh.HostKeyCallback // nil when no file exists yet
	// authorities are the @cert-authority lines of every file.
	authorities []knownAuthority
	// caKeyLines are the plain host key lines whose key is also a CA's.
	caKeyLines []knownAuthority
	now        func() time.Time // nil: time.Now
	// caSigAlgs are the signature algorithms a host certificate's CA may
	// have used (CASignatureAlgorithms); nil: defaultCASignatureAlgorithms.
	caSigAlgs []string
	// minRSABits is RequiredRSASize: an RSA host key (or host certificate
	// key) below it ends the connection.
	minRSABits int
	// hostKeyAlgos is HostKeyAlgorithms as configured (the defaults when
	// not): UpdateHostKeys learns and keeps no key of another type.
	hostKeyAlgos []string

	// changed is set when StrictHostKeyChecking=no accepted a changed
	// host key: passwords and forwarding are then refused.
	changed atomic.Bool
	// verified is set when the host key was found in a known_hosts file:
	// only then are the keys the server announces learned (UpdateHostKeys).
	verified atomic.Bool
	// announced is set by the first host key announcement, the only one
	// UpdateHostKeys acts on.
	announced atomic.Bool
}

func newHostKeyChecker(mode string, user, global []string, hash bool, ask func(string) (string, error), note func(string)) (*hostKeyChecker, error) {
	h := &hostKeyChecker{mode: mode, user: user, global: global, hash: hash, ask: ask, noteFn: note}
	var files []string
	for _, f := range slices.Concat(user, global) {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	if len(files) > 0 {
		cb, err := knownhosts.New(files...)
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		if h.authorities, h.caKeyLines, err = readAuthorities(files); err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		h.checker = h.withoutAuthorities(cb)
	}
	return h, nil
}

// withoutAuthorities makes x/crypto's knownhosts callback read
// @cert-authority lines as OpenSSH does, as trust in a CA and never as a
// host key (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT: the marker "indicates
// that the line contains a certification authority (CA) key"). knownhosts
// counts them as host keys of the hosts they match: it would accept a
// CA's own key offered as a plain host key, and a CA of the host key's
// type would make every other key of that type look like a changed host
// key. So a key accepted only through such a line is not on record, and
// the lines are dropped from the keys a KeyError says are.
func (h *hostKeyChecker) withoutAuthorities(cb ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostport string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostport, remote, key)
		if err == nil && h.onlyAsAuthority(hostport, key) {
			// What is on record for the host: the KeyError for a key that
			// certainly is not.
			probe, _ := ssh.NewPublicKey(probeKey())
			err = cb(hostport, remote, probe)
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		want := slices.DeleteFunc(slices.Clone(ke.Want), func(k knownhosts.KnownKey) bool {
			return slices.ContainsFunc(h.authorities, func(a knownAuthority) bool { return a.file == k.Filename && a.line == k.Line })
		})
		return &knownhosts.KeyError{Want: want}
	}
}

// onlyAsAuthority reports whether key, which knownhosts accepted for
// hostport, is a CA's key that no plain host key line for hostport holds.
func (h *hostKeyChecker) onlyAsAuthority(hostport string, key ssh.PublicKey) bool {
	if !slices.ContainsFunc(h.authorities, func(a knownAuthority) bool { return sameKey(a.key, key) }) {
		return false
	}
	names := []string{knownhosts.Normalize(hostport)}
	return !slices.ContainsFunc(h.caKeyLines, func(l knownAuthority) bool { return sameKey(l.key, key) && l.matches(names) })
}

// knownAlgorithms returns the key types recorded for hostport, so the
// client can prefer them (as OpenSSH does) and a host with an RSA key on
// record is not reported as changed because it offered ed25519 first.
func (h *hostKeyChecker) knownAlgorithms(hostport string) []string {
	if h.checker == nil {
		return nil
	}
	// Any key that is certainly not on record reveals, through the
	// KeyError, every key that is.
	probe, _ := ssh.NewPublicKey(probeKey())
	err := h.checker(hostport, fakeAddr(hostport), probe)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algs []string
	for _, k := range ke.Want {
		switch k.Key.Type() {
		case ssh.KeyAlgoRSA:
			// ssh-rsa counts only when configured (+ssh-rsa).
			algs = append(algs, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algs = append(algs, k.Key.Type())
		}
	}
	return algs
}

// check is the ssh.HostKeyCallback for the connection to hostport (the
// name the user connects to, with its port). A host certificate is checked
// against the @cert-authority lines; when it is not accepted (revoked and
// badly signed ones aside), its plain key is checked instead, as OpenSSH
// does, and an error about that key carries the certificate's.
func (h *hostKeyChecker) check(hostport string, remote net.Addr, key ssh.PublicKey) error {
	if why := rsaTooSmall(key, h.minRSABits); why != "" {
		return fmt.Errorf("host key for %s refused: %s", knownhosts.Normalize(hostport), why)
	}
	var certErr *hostCertError
	if cert, ok := key.(*ssh.Certificate); ok {
		err := h.checkCert(hostport, cert)
		if err == nil || !errors.As(err, &certErr) || certErr.failure == certBadSignature {
			return err
		}
		if certErr.failure != certUnknownCA || h.hasAuthority(hostport) {
			h.note("warning: " + certErr.Error() + "; checking its plain key instead")
		} else {
			h.note(fmt.Sprintf("the host certificate's CA %s is not trusted for %s; checking its plain key instead",
				ssh.FingerprintSHA256(cert.SignatureKey), certErr.host))
		}
		key = cert.Key
	}
	fp := ssh.FingerprintSHA256(key)
	var err error = &knownhosts.KeyError{}
	if h.checker != nil {
		err = h.checker(hostport, remote, key)
	}
	// A revoked key is refused in every mode, StrictHostKeyChecking=no
	// included, as ssh does.
	var re *knownhosts.RevokedError
	if errors.As(err, &re) {
		return &hostKeyRevokedError{host: knownhosts.Normalize(hostport), key: key, revoked: re.Revoked}
	}
	if h.mode == checkNo {
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) && sameType(ke.Want, key) {
			// As ssh: go on, loudly, but without what a man in the
			// middle would want (passwords, forwarding).
			h.changed.Store(true)
			h.note(fmt.Sprintf("warning: the %s host key of %s CHANGED (now %s, %s:%d records %s); StrictHostKeyChecking=no goes on, with password and keyboard-interactive authentication and all forwarding disabled",
				key.Type(), knownhosts.Normalize(hostport), fp, ke.Want[0].Filename, ke.Want[0].Line, ssh.FingerprintSHA256(ke.Want[0].Key)))
			return nil
		}
		h.note(fmt.Sprintf("host key checking disabled: accepting %s key %s", key.Type(), fp))
		return nil
	}
	if err == nil {
		h.verified.Store(true)
		return nil
	}
	var ke *knownhosts.KeyError
	switch {
	case !errors.As(err, &ke):
		return err
	case sameType(ke.Want, key):
		return &hostKeyChangedError{host: knownhosts.Normalize(hostport), fingerprint: fp, keyType: key.Type(), known: ke.Want, cert: certErr}
	}
	// Unknown host, or (as OpenSSH sees it) a host known only by keys of
	// other types: the new type is a new key to accept, not a change.
	name := knownhosts.Normalize(hostport)
	if len(ke.Want) > 0 {
		h.note(fmt.Sprintf("warning: %s is known by %s key(s) in %s:%d, not by the %s key it offers now",
			name, ke.Want[0].Key.Type(), ke.Want[0].Filename, ke.Want[0].Line, key.Type()))
	}
	switch h.mode {
	case checkYes:
		return &hostKeyUnknownError{host: name, fingerprint: fp, keyType: key.Type(), why: "StrictHostKeyChecking is yes", cert: certErr}
	case checkAsk:
		if h.ask == nil {
			return &hostKeyUnknownError{host: name, fingerprint: fp, keyType: key.Type(),
				why: "there is no terminal to ask on (use -o StrictHostKeyChecking=accept-new to accept new hosts)", cert: certErr}
		}
		q := fmt.Sprintf("The authenticity of host '%s (%s)' can't be established.\n%s key fingerprint is %s.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? ",
			name, remote, keyTypeName(key), fp)
		for {
			ans, err := h.ask(q)
			if err != nil {
				return fmt.Errorf("reading the answer: %w", err)
			}
			ans = strings.TrimSpace(ans)
			switch {
			case strings.EqualFold(ans, "yes"), ans == fp:
			case strings.EqualFold(ans, "no"):
				return errHostKeyDeclined
			case strings.HasPrefix(ans, "SHA256:"):
				return fmt.Errorf("the fingerprint you entered does not match the server's %s.\nHost key verification failed", fp)
			default:
				q = "Please type 'yes', 'no' or the fingerprint: "
				continue
			}
			break
		}
	}
	if err := h.record(hostport, key); err != nil {
		// ssh goes on when it cannot write known_hosts; so do we, loudly.
		h.note(fmt.Sprintf("warning: could not record the host key: %v", err))
		return nil
	}
	h.note(fmt.Sprintf("Permanently added '%s' (%s) to the list of known hosts (%s).", name, keyTypeName(key), h.user[0]))
	return nil
}

// record appends the key to the first user known_hosts file.
func (h *hostKeyChecker) record(hostport string, key ssh.PublicKey) error {
	if len(h.user) == 0 {
		return errors.New("no known_hosts file")
	}
	file := h.user[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	name := knownhosts.Normalize(hostport)
	if h.hash {
		name = knownhosts.HashHostname(name)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	// A file that does not end in a newline would glue our line to its last.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if last, err := lastByte(file); err == nil && last != '\n' {
			w.WriteByte('\n')
		}
	}
	w.WriteString(knownhosts.Line([]string{name}, key) + "\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (h *hostKeyChecker) note(s string) {
	if h.noteFn != nil {
		h.noteFn(s)
	}
}

func lastByte(path string) (byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return '\n', err
	}
	b := make([]byte, 1)
	_, err = f.ReadAt(b, st.Size()-1)
	return b[0], err
}

// keyTypeName is the short name ssh prints ("ED25519", "ECDSA", "RSA").
func keyTypeName(k ssh.PublicKey) string {
	switch t := k.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ECDSA"
	case t == ssh.KeyAlgoRSA:
		return "RSA"
	default:
		return t
	}
}

type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

func fakeAddr(hostport string) net.Addr { return addrString(hostport) }

// probeKey is a fixed ed25519 public key no host has: the all-zero seed's.
func probeKey() ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}

// sameType reports whether a recorded key has the presented key's type: a
// different key of the same type is a changed host key.
func sameType(known []knownhosts.KnownKey, key ssh.PublicKey) bool {
	for _, k := range known {
		if k.Key.Type() == key.Type() {
			return true
		}
	}
	return false
}

// unknownKeys returns the keys in blobs that no known_hosts file records
// for hostport (revoked ones are skipped, unparsable ones too).
func (h *hostKeyChecker) unknownKeys(hostport string, blobs [][]byte) []ssh.PublicKey {
	var out []ssh.PublicKey
	for _, b := range blobs {
		k, err := ssh.ParsePublicKey(b)
		if err != nil {
			continue
		}
		if h.checker != nil {
			err = h.checker(hostport, fakeAddr(hostport), k)
		} else {
			err = &knownhosts.KeyError{}
		}
		var re *knownhosts.RevokedError
		if err != nil && !errors.As(err, &re) {
			out = append(out, k)
		}
	}
	return out
}

// updateHostKeys follows the host keys a server announced after
// authentication (hostkeys-00@openssh.com), as ssh's UpdateHostKeys: only
// for a host verified through known_hosts, it records the new keys the
// server proved (hostkeys-prove-00@openssh.com) and removes the keys on
// record for this host that the server no longer announces
// (staleHostKeys), after asking in "ask" mode. Nothing changes unless the
// whole update can be made.
func (h *hostKeyChecker) updateHostKeys(ctx context.Context, conn *sshtap.Conn, hostport, mode string, blobs [][]byte) {
	if mode == "no" || !h.verified.Load() || h.changed.Load() {
		return
	}
	// OpenSSH acts on the first announcement only.
	if !h.announced.CompareAndSwap(false, true) {
		return
	}
	announced, ok := announcedKeys(blobs, h.hostKeyAlgos)
	if !ok {
		return
	}
	var keys []ssh.PublicKey
	for _, k := range h.unknownKeys(hostport, blobs) {
		if slices.ContainsFunc(announced, func(a ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), k.Marshal()) }) {
			keys = append(keys, k)
		}
	}
	stale, ok := h.staleHostKeys(hostport, conn.HostKey(), announced)
	if !ok || (len(keys) == 0 && len(stale) == 0) {
		return
	}
	// Removing keys needs no proof (the server just stopped announcing
	// them); new keys do.
	if len(keys) > 0 {
		if err := conn.ProveHostKeys(ctx, keys); err != nil {
			if conn.Err() == nil { // not just the connection ending first
				h.note(fmt.Sprintf("warning: the server did not prove its new host keys; none learned: %v", err))
			}
			return
		}
	}
	name := knownhosts.Normalize(hostport)
	if mode == "ask" {
		if h.ask == nil {
			return
		}
		var lines []string
		for _, k := range keys {
			lines = append(lines, "  new: "+k.Type()+" "+ssh.FingerprintSHA256(k))
		}
		for _, l := range stale {
			k, _ := ssh.ParsePublicKey(l.blob)
			lines = append(lines, "  removed: "+k.Type()+" "+ssh.FingerprintSHA256(k))
		}
		ans, err := h.ask(fmt.Sprintf("The server %s has updated its host keys:\n%s\nAccept updated hostkeys? (yes/no): ", name, strings.Join(lines, "\n")))
		if err != nil || !strings.EqualFold(strings.TrimSpace(ans), "yes") {
			return
		}
	}
	if len(stale) > 0 {
		if err := removeKnownLines(h.user[0], stale); err != nil {
			h.note(fmt.Sprintf("warning: could not remove deprecated host keys from %s: %v", h.user[0], err))
			return
		}
		for _, l := range stale {
			k, _ := ssh.ParsePublicKey(l.blob)
			h.note(fmt.Sprintf("Deprecated hostkey removed: %s %s (for %s from %s)", k.Type(), ssh.FingerprintSHA256(k), name, h.user[0]))
		}
	}
	for _, k := range keys {
		if err := h.record(hostport, k); err != nil {
			h.note(fmt.Sprintf("warning: could not record the host key: %v", err))
			return
		}
		h.note(fmt.Sprintf("Learned new hostkey: %s %s (recorded for %s in %s)", k.Type(), ssh.FingerprintSHA256(k), name, h.user[0]))
	}
}
