package sshtap

import (
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// failingSigner is a key whose signing fails (an agent that refuses, a
// passphrase not given).
type failingSigner struct{ ssh.Signer }

func (failingSigner) Sign(io.Reader, []byte) (*ssh.Signature, error) {
	return nil, errors.New("user declined")
}

// TestAuthSkipsKeyThatCannotSign: a key the server would accept but that
// fails to sign is passed over, with a UserAuthEvent saying why; the next
// key is tried.
func TestAuthSkipsKeyThatCannotSign(t *testing.T) {
	testKeys(t)
	bad, good := testEd25519, testECDSA256
	r := runAuth(t, &Config{User: "k", Auth: []AuthMethod{PublicKeys(failingSigner{bad}, good)}},
		&ServerConfig{PublicKeyCallback: authAcceptKeys(bad.PublicKey(), good.PublicKey())})
	if r.cerr != nil {
		t.Fatalf("client: %v", r.cerr)
	}
	var sawFailure bool
	for _, e := range authEvents(r.cev) {
		if e.Result == AuthFailure && strings.Contains(e.Err, "user declined") {
			sawFailure = true
		}
	}
	if !sawFailure {
		t.Errorf("no client user-auth event for the key that could not sign: %+v", authEvents(r.cev))
	}
}

// TestAuthErrorCarriesSignFailure: when every key fails to sign, the
// AuthError says why (and unwraps to the signer's error).
func TestAuthErrorCarriesSignFailure(t *testing.T) {
	testKeys(t)
	r := runAuth(t, &Config{User: "k", Auth: []AuthMethod{PublicKeys(failingSigner{testEd25519})}},
		&ServerConfig{PublicKeyCallback: authAcceptKeys(testEd25519.PublicKey())})
	var ae *AuthError
	if !errors.As(r.cerr, &ae) || ae.Err == nil || !strings.Contains(r.cerr.Error(), "user declined") {
		t.Fatalf("client error %v, want an AuthError naming the signing failure", r.cerr)
	}
}
