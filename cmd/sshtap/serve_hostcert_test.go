package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// sshtap serve --host-cert: OpenSSH's ssh, trusting only the CA
// (@cert-authority), connects with StrictHostKeyChecking=yes to the
// ed25519 and the RSA certificate, and refuses the server when another CA
// is trusted; stdout describes each certificate.
func TestServeHostCertificate(t *testing.T) {
	testpeer.Require(t, "ssh", "ssh-keygen")
	ca := testpeer.NewKey(t, testpeer.KeyEd25519)
	ed := testpeer.NewKey(t, testpeer.KeyEd25519)
	rsa := testpeer.NewKey(t, testpeer.KeyRSA3072)
	edCert := testpeer.SignHostKey(t, ca, ed, "ed-host", "127.0.0.1,localhost", "-5m:+1h")
	rsaCert := testpeer.SignHostKey(t, ca, rsa, "rsa-host", "127.0.0.1", "")
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--no-auth",
		"--host-key", ed.Path, "--host-key", rsa.Path, "--host-cert", rsaCert.Path, "--host-cert", edCert.Path)

	lines := []string{r.hkLine}
	for len(lines) < 4 {
		select {
		case l := <-r.stdout.lines:
			lines = append(lines, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("stdout lines so far %q", lines)
		}
	}
	caFP := ssh.FingerprintSHA256(ca.PublicKey)
	for i, want := range [][]string{
		{"host key ssh-ed25519 " + ssh.FingerprintSHA256(ed.PublicKey)},
		{"host key ssh-rsa " + ssh.FingerprintSHA256(rsa.PublicKey)},
		{"host certificate ssh-rsa-cert-v01@openssh.com " + ssh.FingerprintSHA256(rsa.PublicKey), rsaCert.Path,
			`ID "rsa-host"`, "principals 127.0.0.1,", "CA ssh-ed25519 " + caFP, "valid forever"},
		{"host certificate ssh-ed25519-cert-v01@openssh.com " + ssh.FingerprintSHA256(ed.PublicKey), edCert.Path,
			`ID "ed-host"`, "principals 127.0.0.1,localhost,", "valid from "},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("stdout line %d %q lacks %q", i+2, lines[i], w)
			}
		}
	}

	knownHosts := func(line string) string {
		p := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trusted := knownHosts(ca.CertAuthorityLine("127.0.0.1,[127.0.0.1]:*"))
	for _, algo := range []string{"ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-512-cert-v01@openssh.com"} {
		res := testpeer.SSHClient{Addr: r.addr, KnownHosts: trusted, Command: []string{"echo in"},
			Options: []string{"StrictHostKeyChecking=yes", "HostKeyAlgorithms=" + algo}}.Run(t)
		if res.ExitCode != 0 || res.Stdout != "in\n" || !strings.Contains(res.Stderr, "host certificate") {
			t.Errorf("%s with the CA trusted: %s", algo, res)
		}
	}
	other := testpeer.NewKey(t, testpeer.KeyEd25519)
	res := testpeer.SSHClient{Addr: r.addr, KnownHosts: knownHosts(other.CertAuthorityLine("*")), Command: []string{"echo in"},
		Options: []string{"StrictHostKeyChecking=yes"}}.Run(t)
	if res.ExitCode != 255 || res.Stdout != "" || !strings.Contains(res.Stderr, "Host key verification failed") {
		t.Errorf("another CA trusted: %s", res)
	}
}

// --host-cert files that cannot be served are refused before listening,
// naming the file.
func TestServeHostCertificateErrors(t *testing.T) {
	testpeer.Require(t, "ssh-keygen")
	ca := testpeer.NewKey(t, testpeer.KeyEd25519)
	host := testpeer.NewKey(t, testpeer.KeyEd25519)
	stranger := testpeer.NewKey(t, testpeer.KeyEd25519)
	strangerCert := testpeer.SignHostKey(t, ca, stranger, "stranger", "127.0.0.1", "")

	userCert := &ssh.Certificate{Key: host.PublicKey, CertType: ssh.UserCert, KeyId: "u",
		ValidPrincipals: []string{"root"}, ValidBefore: ssh.CertTimeInfinity}
	if err := userCert.SignCert(rand.Reader, ca.Signer); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	userCertPath := filepath.Join(dir, "user-cert.pub")
	if err := os.WriteFile(userCertPath, ssh.MarshalAuthorizedKey(userCert), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"another key's", strangerCert.Path, "certifies ssh-ed25519 key " + ssh.FingerprintSHA256(stranger.PublicKey) + ", which is not the key of any --host-key"},
		{"user certificate", userCertPath, "is a user certificate"},
		{"plain key", host.PublicPath, "holds a plain ssh-ed25519 key, not a certificate"},
		{"missing", filepath.Join(dir, "none"), "host certificate: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runServeInProcess(t, nil, "--listen", "127.0.0.1:0", "--no-auth", "--host-key", host.Path, "--host-cert", tc.file)
			if code != exitError || !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 255, the file and %q", code, stderr, tc.want)
			}
			if strings.Contains(stdout, "listening on") {
				t.Errorf("stdout %q: a failed run must not claim to listen", stdout)
			}
		})
	}
}
