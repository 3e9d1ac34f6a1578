package kex

import (
	"io"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

// plainSigner hides the AlgorithmSigner methods of a signer.
type plainSigner struct{ s ssh.Signer }

func (p plainSigner) PublicKey() ssh.PublicKey { return p.s.PublicKey() }
func (p plainSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return p.s.Sign(r, data)
}

func TestHostKeyAlgorithms(t *testing.T) {
	rs := fixture(t, "rsa-sha2-512").signer
	restricted, err := ssh.NewSignerWithAlgorithms(rs.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSASHA256})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    ssh.Signer
		sha1 bool
		want []string
	}{
		{"ed25519", fixture(t, "ed25519").signer, true, []string{HostKeyED25519}},
		{"ecdsa384", fixture(t, "ecdsa384").signer, false, []string{HostKeyECDSA384}},
		{"rsa", rs, false, []string{HostKeyRSASHA512, HostKeyRSASHA256}},
		{"rsa with sha1", rs, true, []string{HostKeyRSASHA512, HostKeyRSASHA256, HostKeyRSA}},
		{"rsa plain signer", plainSigner{rs}, true, []string{HostKeyRSA}},
		{"rsa plain signer no sha1", plainSigner{rs}, false, nil},
		{"rsa restricted", restricted, true, []string{HostKeyRSASHA256}},
		{"ed25519 cert", fixture(t, "ed25519-cert").signer, false, []string{HostKeyED25519Cert}},
		{"rsa cert", fixture(t, "rsa-sha2-512-cert").signer, false, []string{HostKeyRSASHA512Cert, HostKeyRSASHA256Cert}},
		{"rsa cert sha1", fixture(t, "rsa-sha2-512-cert").signer, true, []string{HostKeyRSASHA512Cert, HostKeyRSASHA256Cert, HostKeyRSACert}},
		{"nil", nil, true, nil},
	} {
		if got := HostKeyAlgorithms(tc.s, tc.sha1); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSignatureAlgorithm(t *testing.T) {
	for algo, want := range map[string]string{
		HostKeyRSASHA512Cert: "rsa-sha2-512",
		HostKeyRSACert:       "ssh-rsa",
		HostKeyED25519Cert:   "ssh-ed25519",
		HostKeyECDSA521:      "ecdsa-sha2-nistp521",
		HostKeyRSASHA256:     "rsa-sha2-256",
	} {
		if got, ok := SignatureAlgorithm(algo); !ok || got != want {
			t.Errorf("%s: %s", algo, got)
		}
	}
	if _, ok := SignatureAlgorithm("ssh-dss"); ok {
		t.Error("ssh-dss supported")
	}
	for _, a := range SupportedHostKeyAlgos {
		if _, ok := SignatureAlgorithm(a); !ok {
			t.Errorf("%s has no entry", a)
		}
	}
}

// The full exchange works with SHA-1 RSA when explicitly chosen, and a
// plain (non-Algorithm) signer can serve ssh-rsa.
func TestExchangeSSHRSA(t *testing.T) {
	rs := fixture(t, "rsa-sha2-512").signer
	for _, s := range []ssh.Signer{rs, plainSigner{rs}} {
		cr, sr := run(t, Curve25519SHA256, hostKey{"rsa", HostKeyRSA, s}, nil)
		if string(cr.H) != string(sr.H) {
			t.Fatal("H differs")
		}
	}
}

// A signer whose signature name does not match what was asked for is a
// local configuration error, not something to send.
type lyingSigner struct{ ssh.Signer }

func (l lyingSigner) SignWithAlgorithm(r io.Reader, data []byte, algo string) (*ssh.Signature, error) {
	return l.Signer.(ssh.AlgorithmSigner).SignWithAlgorithm(r, data, ssh.KeyAlgoRSASHA256)
}

func TestServerSignerMismatch(t *testing.T) {
	rs := fixture(t, "rsa-sha2-512").signer
	cp, sp := testParams(t, Curve25519SHA256, hostKey{"rsa", HostKeyRSASHA512, rs})
	sp.HostKey = lyingSigner{rs}
	c, s := newPair(t, cp, sp)
	_, _, _, serr := pump(c, s, hooks{})
	if _, ok := serr.(*ConfigError); !ok {
		t.Fatalf("server error %v, want *ConfigError", serr)
	}
}
