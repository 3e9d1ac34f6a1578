package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// The sshtap client against sshd with HostCertificate: a known_hosts
// holding only the CA's @cert-authority line lets it in under
// StrictHostKeyChecking=yes; an expired certificate, one for another
// name, one from another CA, a revoked host key and a revoked CA are each
// refused with their own message. A known_hosts with the plain key only
// still works against the same server (the certificate falls back to its
// key, as with ssh).
func TestClientHostCertificateSSHD(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh-keygen")
	ca := testpeer.NewKey(t, testpeer.KeyEd25519)
	otherCA := testpeer.NewKey(t, testpeer.KeyEd25519)
	hostKey := testpeer.NewKey(t, testpeer.KeyEd25519)
	start := func(principals, validity string) *testpeer.SSHD {
		cert := testpeer.SignHostKey(t, ca, hostKey, "sshd "+principals+" "+validity, principals, validity)
		return testpeer.StartSSHD(t, testpeer.SSHDOptions{HostKeys: []*testpeer.Key{hostKey},
			Config: []string{"HostCertificate " + cert.Path}})
	}
	good := start("127.0.0.1,localhost", "-5m:+1h")
	expired := start("127.0.0.1", "20200101:20200102")
	elsewhere := start("db.example,10.0.0.1", "-5m:+1h")

	run := func(t *testing.T, d *testpeer.SSHD, knownHosts []string, extra ...string) result {
		t.Helper()
		home := peerHome(t, d, false)
		kh := filepath.Join(home, ".ssh", "known_hosts")
		if err := os.WriteFile(kh, []byte(strings.Join(knownHosts, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-p", strconv.Itoa(d.Port), "-o", "StrictHostKeyChecking=yes"}, extra...)
		return runDetached(t, 30*time.Second, []string{"HOME=" + home}, append(args, "root@127.0.0.1", "echo ran")...)
	}
	trusted := ca.CertAuthorityLine("*")
	hostFP := ssh.FingerprintSHA256(hostKey.PublicKey)

	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		r := run(t, good, []string{trusted}, "-v")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"host certificate ssh-ed25519-cert-v01@openssh.com " + hostFP, "accepted: signed by CA ssh-ed25519 " + ssh.FingerprintSHA256(ca.PublicKey), "known_hosts:1"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
		}
	})
	t.Run("plain key only", func(t *testing.T) {
		t.Parallel()
		r := run(t, good, []string{hostKey.KnownHostsLine(good.Addr)}, "-v")
		if r.code != 0 || r.stdout != "ran\n" || strings.Contains(r.stderr, "warning") {
			t.Fatalf("exit %d, stdout %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		// The server presented its certificate (certificate algorithms
		// come first for a known key type, as in OpenSSH's default order).
		if !strings.Contains(r.stderr, "is not trusted for [127.0.0.1]:"+strconv.Itoa(good.Port)+"; checking its plain key instead") {
			t.Errorf("no note of the certificate set aside:\n%s", r.stderr)
		}
	})
	for _, tc := range []struct {
		name  string
		d     *testpeer.SSHD
		known []string
		wants []string
	}{
		{"expired", expired, []string{trusted}, []string{"has expired: valid from 2020-01-01", "no ssh-ed25519 host key is known for [127.0.0.1]:" + strconv.Itoa(expired.Port)}},
		{"wrong principal", elsewhere, []string{trusted}, []string{`is not valid for the name "127.0.0.1": its principals are ["db.example" "10.0.0.1"]`}},
		{"wrong CA", good, []string{otherCA.CertAuthorityLine("*")}, []string{"signed by CA ssh-ed25519 " + ssh.FingerprintSHA256(ca.PublicKey) + ") is not trusted: no @cert-authority line"}},
		{"revoked host key", good, []string{trusted, "@revoked * " + hostKey.AuthorizedKey}, []string{"the ssh-ed25519 key " + hostFP + " certified by the host certificate", "is marked as revoked in ", "known_hosts:2"}},
		{"revoked CA", good, []string{trusted, "@revoked * " + ca.AuthorizedKey}, []string{"the certificate authority ssh-ed25519 key " + ssh.FingerprintSHA256(ca.PublicKey), "is marked as revoked in ", "known_hosts:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.d, tc.known)
			wantFail(t, r, append(tc.wants, "Host key verification failed")...)
			if r.stdout != "" {
				t.Errorf("the command ran: %q", r.stdout)
			}
		})
	}
}
