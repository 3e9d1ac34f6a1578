package main

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestRequiredRSASize: RequiredRSASize is resolved (default 1024, never
// below it, a value that is not a number refused), a smaller RSA host key ends the check with an error
// naming the sizes, and keys of other types or large enough pass.
func TestRequiredRSASize(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home, "USER": "me", "SSHTAP_SYSTEM_CONFIG": "none"}
	get := func(k string) string { return env[k] }
	for _, tc := range []struct {
		args []string
		want int
		err  string
	}{
		{[]string{"h"}, 1024, ""},
		{[]string{"-o", "RequiredRSASize=2048", "h"}, 2048, ""},
		{[]string{"-o", "RequiredRSASize=512", "h"}, 1024, ""}, // OpenSSH's floor
		{[]string{"-o", "RequiredRSASize=-1", "h"}, 1024, ""},
		{[]string{"-o", "RequiredRSASize=big", "h"}, 0, "RequiredRSASize"},
	} {
		f, rest, err := parseClientArgs(append([]string{"-F", "none"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		s, err := resolve(f, rest, get)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want one naming %s", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || s.requiredRSASize != tc.want {
			t.Errorf("%q: %d (%v), want %d", tc.args, s.requiredRSASize, err, tc.want)
		}
	}

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPub, _ := ssh.NewPublicKey(&small.PublicKey)
	h := &hostKeyChecker{mode: checkNo, minRSABits: 2048}
	err = h.check("h:22", fakeAddr("h:22"), smallPub)
	if err == nil || !strings.Contains(err.Error(), "1024 bits is below RequiredRSASize 2048") {
		t.Errorf("1024-bit RSA host key with RequiredRSASize 2048: %v", err)
	}
	h.minRSABits = 1024
	if err := h.check("h:22", fakeAddr("h:22"), smallPub); err != nil {
		t.Errorf("1024-bit RSA host key with RequiredRSASize 1024: %v", err)
	}
	if why := rsaTooSmall(newEd25519Signer(t).PublicKey(), 4096); why != "" {
		t.Errorf("ed25519 key refused: %s", why)
	}
}
