package eventfmt

import (
	"golang.org/x/crypto/ssh"
)

// keyInfo describes a public key blob: its type (the blob's algorithm name,
// "" when the blob does not parse) and its SHA256 fingerprint.
type keyInfo struct {
	Type        string
	Fingerprint string
}

// describeKey parses blob as an SSH public key. A blob that does not parse
// still gets a fingerprint: the hash of the bytes as sent.
func describeKey(blob []byte) keyInfo {
	if len(blob) == 0 {
		return keyInfo{}
	}
	pk, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return keyInfo{Fingerprint: fingerprint(blob)}
	}
	return keyInfo{Type: pk.Type(), Fingerprint: ssh.FingerprintSHA256(pk)}
}
