package sshtap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// OpenSSH's ssh, whose known_hosts holds nothing but an @cert-authority
// line, connects with StrictHostKeyChecking=yes to a Server presenting host
// certificates signed by ssh-keygen -s -h (ed25519, and RSA with
// rsa-sha2-256 and -512 certificate algorithms), and refuses the same
// server when the line names another CA.
func TestInteropHostCertificateOpenSSHClient(t *testing.T) {
	testpeer.Require(t, "ssh", "ssh-keygen")
	ca := testpeer.NewKey(t, testpeer.KeyEd25519)
	otherCA := testpeer.NewKey(t, testpeer.KeyEd25519)
	ed := testpeer.NewKey(t, testpeer.KeyEd25519)
	rsa := testpeer.NewKey(t, testpeer.KeyRSA3072)
	edCert := testpeer.SignHostKey(t, ca, ed, "ed host", "127.0.0.1", "-5m:+1h")
	rsaCert := testpeer.SignHostKey(t, ca, rsa, "rsa host", "127.0.0.1", "-5m:+1h")
	s := &Server{Config: &ServerConfig{
		HostKeys:       []ssh.Signer{ed.Signer, rsa.Signer, edCert.Signer(t, ed), rsaCert.Signer(t, rsa)},
		NoClientAuth:   true,
		SessionHandler: func(ss *ServerSession) { ss.Write([]byte("hello\n")) },
	}}
	addr := testServer(t, s)
	knownHosts := func(line string) string {
		p := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trusted := knownHosts(ca.CertAuthorityLine("*"))
	for _, tc := range []struct{ algo, certType, fp string }{
		{"", "ssh-ed25519-cert-v01@openssh.com", ssh.FingerprintSHA256(ed.PublicKey)},
		{"rsa-sha2-256-cert-v01@openssh.com", "ssh-rsa-cert-v01@openssh.com", ssh.FingerprintSHA256(rsa.PublicKey)},
		{"rsa-sha2-512-cert-v01@openssh.com", "ssh-rsa-cert-v01@openssh.com", ssh.FingerprintSHA256(rsa.PublicKey)},
	} {
		name := tc.algo
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			opts := []string{"StrictHostKeyChecking=yes"}
			if tc.algo != "" {
				opts = append(opts, "HostKeyAlgorithms="+tc.algo)
			}
			res := testpeer.SSHClient{Addr: addr, KnownHosts: trusted, Options: opts, Command: []string{"true"}}.Run(t)
			if res.ExitCode != 0 || res.Stdout != "hello\n" {
				t.Fatalf("ssh with the CA trusted: %s", res)
			}
			for _, want := range []string{
				"Server host certificate: " + tc.certType + " " + tc.fp,
				"matches the " + map[bool]string{true: "ED25519-CERT", false: "RSA-CERT"}[tc.algo == ""] + " host certificate",
			} {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("ssh's log lacks %q:\n%s", want, res.Stderr)
				}
			}
			if tc.algo != "" && !strings.Contains(res.Stderr, "host key algorithm: "+tc.algo) {
				t.Errorf("ssh did not negotiate %s:\n%s", tc.algo, res.Stderr)
			}
		})
	}
	t.Run("wrong CA", func(t *testing.T) {
		res := testpeer.SSHClient{Addr: addr, KnownHosts: knownHosts(otherCA.CertAuthorityLine("*")),
			Options: []string{"StrictHostKeyChecking=yes"}, Command: []string{"true"}}.Run(t)
		if res.ExitCode != 255 || res.Stdout != "" || !strings.Contains(res.Stderr, "Host key verification failed") {
			t.Fatalf("ssh with another CA trusted: %s", res)
		}
	})
}
