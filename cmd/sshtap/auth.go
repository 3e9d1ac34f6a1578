package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap"
	"sshtap/internal/eventfmt"
)

// authPlan is what the client may authenticate with.
type authPlan struct {
	user, host   string
	agent        agent.ExtendedAgent // nil without an agent
	identities   []string            // key files, in order
	explicit     map[string]bool     // given with -i: complain when unreadable
	identOnly    bool                // IdentitiesOnly: agent keys only when they match a file
	pubkey       bool
	password     bool
	kbdInt       bool
	passwordTurn int // NumberOfPasswordPrompts
	minRSABits   int // RequiredRSASize: smaller RSA keys are skipped
	preferred    []string
	prompt       *prompter
	note         func(string)
	// unsafe, if set and true, refuses password and keyboard-interactive
	// answers: the host key changed and was accepted anyway.
	unsafe func() bool

	mu      sync.Mutex
	offered []string // "ED25519 SHA256:... (agent)" etc., for the failure message
}

// methods builds Config.Auth: publickey (agent keys, then key files, each
// loaded only when reached), keyboard-interactive, password, in the
// PreferredAuthentications order when given.
func (p *authPlan) methods() []sshtap.AuthMethod {
	byName := map[string][]sshtap.AuthMethod{}
	if p.pubkey {
		if p.agent != nil {
			byName["publickey"] = append(byName["publickey"], sshtap.PublicKeysCallback(p.agentSigners))
		}
		if len(p.identities) > 0 {
			byName["publickey"] = append(byName["publickey"], sshtap.PublicKeysCallback(p.fileSigners))
		}
	}
	canAsk := p.prompt.available()
	if p.kbdInt && canAsk {
		// As ssh: NumberOfPasswordPrompts tries for each.
		for range max(p.passwordTurn, 1) {
			byName["keyboard-interactive"] = append(byName["keyboard-interactive"], sshtap.KeyboardInteractive(p.challenge))
		}
	}
	if p.password && canAsk {
		for range max(p.passwordTurn, 1) {
			byName["password"] = append(byName["password"], sshtap.PasswordCallback(p.askPassword))
		}
	}
	order := p.preferred
	if len(order) == 0 {
		order = []string{"publickey", "keyboard-interactive", "password"}
	}
	var out []sshtap.AuthMethod
	for _, name := range order {
		out = append(out, byName[name]...)
	}
	return out
}

func (p *authPlan) offer(desc string) {
	p.mu.Lock()
	p.offered = append(p.offered, desc)
	p.mu.Unlock()
	p.note("offering public key: " + desc)
}

// agentSigners lists the agent's keys (with IdentitiesOnly, only those
// whose public key is among the identity files').
func (p *authPlan) agentSigners() ([]ssh.Signer, error) {
	signers, err := p.agent.Signers()
	if err != nil {
		p.note(fmt.Sprintf("agent: %v (skipping its keys)", err))
		return nil, nil
	}
	var out []ssh.Signer
	for _, s := range signers {
		if p.identOnly && !p.hasIdentityFileFor(s.PublicKey()) {
			continue
		}
		if why := rsaTooSmall(s.PublicKey(), p.minRSABits); why != "" {
			p.note(fmt.Sprintf("skipping agent key %s: %s", ssh.FingerprintSHA256(s.PublicKey()), why))
			continue
		}
		p.offer(fmt.Sprintf("%s %s (agent)", keyTypeName(s.PublicKey()), ssh.FingerprintSHA256(s.PublicKey())))
		out = append(out, s)
	}
	return out, nil
}

func (p *authPlan) hasIdentityFileFor(pub ssh.PublicKey) bool {
	for _, f := range p.identities {
		if k, err := readPublicKey(f); err == nil && bytes.Equal(k.Marshal(), pub.Marshal()) {
			return true
		}
	}
	return false
}

// fileSigners loads each identity file, asking for passphrases when a key
// is encrypted (three tries, as ssh). Unreadable default files are skipped
// quietly; files given with -i are reported. Keys the agent already
// offered are not offered twice.
func (p *authPlan) fileSigners() ([]ssh.Signer, error) {
	var agentKeys [][]byte
	if p.agent != nil {
		if ks, err := p.agent.List(); err == nil {
			for _, k := range ks {
				agentKeys = append(agentKeys, k.Marshal())
			}
		}
	}
	var out []ssh.Signer
	for _, f := range p.identities {
		s, err := p.loadKey(f)
		if err != nil {
			if p.explicit[f] || !errors.Is(err, fs.ErrNotExist) {
				p.note(fmt.Sprintf("warning: identity file %s: %v", f, err))
			}
			continue
		}
		pub := s.PublicKey().Marshal()
		dup := false
		for _, k := range agentKeys {
			if bytes.Equal(k, pub) {
				dup = true
			}
		}
		if dup {
			continue
		}
		if why := rsaTooSmall(s.PublicKey(), p.minRSABits); why != "" {
			p.note(fmt.Sprintf("warning: skipping identity file %s: %s", f, why))
			continue
		}
		// A certificate next to the key (key-cert.pub) is offered first.
		if cert, err := readCertificate(f + "-cert.pub"); err == nil {
			if cs, err := ssh.NewCertSigner(cert, s); err == nil {
				p.offer(fmt.Sprintf("%s-CERT %s (%s-cert.pub)", keyTypeName(s.PublicKey()), ssh.FingerprintSHA256(s.PublicKey()), f))
				out = append(out, cs)
			}
		}
		p.offer(fmt.Sprintf("%s %s (%s)", keyTypeName(s.PublicKey()), ssh.FingerprintSHA256(s.PublicKey()), f))
		out = append(out, s)
	}
	return out, nil
}

// loadKey reads a private key. An encrypted key whose public half is known
// (OpenSSH keys carry it in clear; older formats need the .pub file) comes
// back as a lazySigner: its passphrase is asked only when the server has
// accepted the key and a signature is needed, as ssh does, so an encrypted
// key that is never used never prompts.
func (p *authPlan) loadKey(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return s, err
	}
	pub := missing.PublicKey
	if pub == nil {
		pub, _ = readPublicKey(path)
	}
	if pub != nil {
		return &lazySigner{pub: pub, load: func() (ssh.Signer, error) { return p.decrypt(path, pem) }}, nil
	}
	return p.decrypt(path, pem)
}

// decrypt asks for the passphrase of an encrypted key (three tries).
func (p *authPlan) decrypt(path string, pem []byte) (ssh.Signer, error) {
	for range 3 {
		pass, err := p.prompt.ask(fmt.Sprintf("Enter passphrase for key '%s': ", path), false)
		if err != nil {
			return nil, fmt.Errorf("encrypted key and %w", err)
		}
		if pass == "" {
			return nil, errors.New("no passphrase given")
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, x509.IncorrectPasswordError) {
			return nil, err
		}
	}
	return nil, errors.New("bad passphrase (3 tries)")
}

func readPublicKey(privPath string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(privPath + ".pub")
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	return k, err
}

func readCertificate(path string) (*ssh.Certificate, error) {
	k, err := readPublicKey(strings.TrimSuffix(path, ".pub"))
	if err != nil {
		return nil, err
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("not a certificate")
	}
	return c, nil
}

// errUnsafeHost refuses to send secrets to a host whose key changed.
var errUnsafeHost = errors.New("password and keyboard-interactive authentication are disabled: the host key changed (accepted only because StrictHostKeyChecking=no)")

func (p *authPlan) askPassword() (string, error) {
	if p.unsafe != nil && p.unsafe() {
		return "", errUnsafeHost
	}
	pass, err := p.prompt.ask(fmt.Sprintf("%s@%s's password: ", p.user, p.host), false)
	if err != nil {
		return "", err
	}
	return pass, nil
}

// challenge answers keyboard-interactive rounds on the terminal (RFC 4256
// §3.3: show name and instruction, then each prompt, echoing as told).
func (p *authPlan) challenge(name, instruction string, questions []string, echos []bool) ([]string, error) {
	if p.unsafe != nil && p.unsafe() {
		return nil, errUnsafeHost
	}
	if name != "" {
		p.prompt.say(sanitizeLine(name) + "\n")
	}
	if instruction != "" {
		p.prompt.say(sanitizeLine(instruction) + "\n")
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		a, err := p.prompt.ask(sanitizeLine(q), echos[i])
		if err != nil {
			return nil, err
		}
		answers[i] = a
	}
	return answers, nil
}

// sanitizeLine removes control characters a server could use to rewrite
// the terminal (RFC 4256 §3.3 asks clients to filter them): C0 and C1
// controls but tab and newline, DEL, and the bidirectional overrides that
// reorder what is shown.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0),
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return -1
		}
		return r
	}, s)
}

// authFailure explains a *sshtap.AuthError: what the server allows and what
// was tried.
func (p *authPlan) authFailure(e *sshtap.AuthError) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s: Permission denied (%s).", p.user, p.host, eventfmt.Clean(strings.Join(e.Remaining, ",")))
	fmt.Fprintf(&b, "\n  tried: %s", strings.Join(e.Tried, ", "))
	p.mu.Lock()
	offered := slices.Clone(p.offered)
	p.mu.Unlock()
	if len(offered) > 0 {
		fmt.Fprintf(&b, "\n  public keys offered: %s", strings.Join(offered, "; "))
	} else if slices.Contains(e.Remaining, "publickey") {
		b.WriteString("\n  no public key was available (no agent keys, no readable identity file)")
	}
	if e.Err != nil {
		fmt.Fprintf(&b, "\n  last problem: %s", eventfmt.Clean(strings.TrimPrefix(e.Err.Error(), "sshtap: ")))
	}
	if !p.prompt.available() && (slices.Contains(e.Remaining, "password") || slices.Contains(e.Remaining, "keyboard-interactive")) {
		b.WriteString("\n  password and keyboard-interactive were not tried: no terminal to ask on (or BatchMode); SSH_ASKPASS can supply them")
	}
	return errors.New(b.String())
}

// lazySigner is an encrypted key known by its public half: it is decrypted
// (asking for the passphrase) on the first signature. Offering it to the
// server (the publickey query) needs only the public key.
type lazySigner struct {
	pub  ssh.PublicKey
	load func() (ssh.Signer, error)

	once sync.Once
	s    ssh.Signer
	err  error
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lazySigner) signer() (ssh.Signer, error) {
	l.once.Do(func() { l.s, l.err = l.load() })
	return l.s, l.err
}

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s, err := l.signer()
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s, err := l.signer()
	if err != nil {
		return nil, err
	}
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	if algorithm == "" || algorithm == l.pub.Type() {
		return s.Sign(rand, data)
	}
	return nil, fmt.Errorf("key cannot sign with %s", algorithm)
}

// Algorithms are what the decrypted key will be able to sign with: the
// rsa-sha2 forms for RSA keys (x/crypto's RSA signers support them).
func (l *lazySigner) Algorithms() []string {
	if l.pub.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{l.pub.Type()}
}
