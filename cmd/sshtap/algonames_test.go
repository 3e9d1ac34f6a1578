package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRedHatCryptoPolicy: a system-wide configuration in the shape Red Hat
// ships (a "Match final all" block including the crypto-policies file,
// which names sk-* and certificate algorithms, CASignatureAlgorithms and
// RequiredRSASize) is honoured: the names sshtap does not implement are
// left out with a -v note each, the rest applies.
func TestRedHatCryptoPolicy(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "openssh.config")
	writeFile(t, policy, `Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes128-gcm@openssh.com,aes128-ctr
MACs hmac-sha2-256-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha1,umac-128@openssh.com,hmac-sha2-512
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
PubkeyAcceptedKeyTypes ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com
HostKeyAlgorithms ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-512
CASignatureAlgorithms ecdsa-sha2-nistp256,sk-ecdsa-sha2-nistp256@openssh.com,ssh-ed25519,sk-ssh-ed25519@openssh.com,rsa-sha2-256,rsa-sha2-512
RequiredRSASize 2048
`)
	system := filepath.Join(dir, "ssh_config")
	writeFile(t, system, "Host *\n    SendEnv LANG\nMatch final all\n    Include "+policy+"\n")
	env := map[string]string{"HOME": dir, "USER": "me", "SSHTAP_SYSTEM_CONFIG": system}
	f, rest, err := parseClientArgs([]string{"h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := resolve(f, rest, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the crypto policy is refused: %v", err)
	}
	if s.requiredRSASize != 2048 || !slices.Equal(s.ciphers[:2], []string{"aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}) || s.kex[0] != "curve25519-sha256" {
		t.Errorf("policy not applied: RequiredRSASize %d, ciphers %v, kex %v", s.requiredRSASize, s.ciphers, s.kex)
	}
	if slices.Contains(s.pubkeyAlgs, "rsa-sha2-256-cert-v01@openssh.com") || !slices.Contains(s.pubkeyAlgs, "rsa-sha2-256") {
		t.Errorf("certificate names not folded into their signature algorithms: %v", s.pubkeyAlgs)
	}
	notes := strings.Join(s.configNotes, "\n")
	if !strings.Contains(notes, "hostkeyalgorithms: sk-ecdsa-sha2-nistp256@openssh.com is not implemented") {
		t.Errorf("no note for the unimplemented host key algorithm:\n%s", notes)
	}
}

// TestAlgorithmNamesOnlyUnimplemented: a plain list naming only algorithms
// sshtap lacks is an error (nothing would be left to offer), asking to add
// one with "+" is an error naming it, and a name no ssh knows stays an
// error.
func TestAlgorithmNamesOnlyUnimplemented(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir(), "USER": "me", "SSHTAP_SYSTEM_CONFIG": "none"}
	for _, tc := range []struct{ opt, err string }{
		{"MACs=hmac-md5-96", "implements none"},
		{"HostKeyAlgorithms=ssh-dss", "implements none"},
		{"MACs=hmac-whirlpool", "hmac-whirlpool"},
		{"MACs=+hmac-md5-96", `"hmac-md5-96"`},
		{"MACs=hmac-sha2-256,hmac-md5-96", ""},
	} {
		f, rest, err := parseClientArgs([]string{"-F", "none", "-o", tc.opt, "h"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = resolve(f, rest, func(k string) string { return env[k] })
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.opt, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want one containing %q", tc.opt, err, tc.err)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFoldCertAlgorithms: certificate names stand for their key's
// signature algorithm, except the SHA-1 RSA one, which never turns on
// ssh-rsa for plain keys.
func TestFoldCertAlgorithms(t *testing.T) {
	for in, want := range map[string]string{
		"rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-512": "rsa-sha2-512",
		"ssh-ed25519-cert-v01@openssh.com":               "ssh-ed25519",
		"sk-ssh-ed25519-cert-v01@openssh.com":            "sk-ssh-ed25519@openssh.com",
		"ssh-rsa-cert-v01@openssh.com,ssh-ed25519":       "ssh-ed25519",
		"+ecdsa-sha2-nistp256-cert-v01@openssh.com":      "+ecdsa-sha2-nistp256",
		"ssh-ed25519,ssh-*-cert-v01@openssh.com":         "ssh-ed25519,ssh-*-cert-v01@openssh.com",
	} {
		if got := foldCertAlgorithms(in); got != want {
			t.Errorf("foldCertAlgorithms(%q) = %q, want %q", in, got, want)
		}
	}
}
