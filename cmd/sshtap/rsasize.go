package main

import (
	"crypto/rsa"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// defaultRequiredRSASize is OpenSSH 9.2's RequiredRSASize default.
const defaultRequiredRSASize = 1024

// rsaBits returns the modulus size of an RSA key, or of the RSA key inside
// a certificate, and false for other key types.
func rsaBits(key ssh.PublicKey) (int, bool) {
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return 0, false
	}
	pub, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0, false
	}
	return pub.N.BitLen(), true
}

// rsaTooSmall says why key is below min bits (ssh_config RequiredRSASize:
// "User authentication keys smaller than this limit will be ignored.
// Servers that present host keys smaller than this limit will cause the
// connection to be terminated."), or "" when it is not an RSA key or is
// large enough.
func rsaTooSmall(key ssh.PublicKey, min int) string {
	if bits, ok := rsaBits(key); ok && bits < min {
		return fmt.Sprintf("RSA key of %d bits is below RequiredRSASize %d", bits, min)
	}
	return ""
}
