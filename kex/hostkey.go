package kex

import (
	"io"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

// hostKeyAlgo describes one host key algorithm: the key (or certificate)
// blob type K_S must carry, and the plain signature algorithm whose name the
// signature on H carries (PROTOCOL.certkeys: signatures made with a certified
// key are plain signatures; RFC 8332 §3: the rsa-sha2-* key blob is "ssh-rsa").
type hostKeyAlgo struct{ keyType, sigAlgo string }

var hostKeyAlgos = map[string]hostKeyAlgo{
	HostKeyED25519:       {ssh.KeyAlgoED25519, ssh.KeyAlgoED25519},
	HostKeyECDSA256:      {ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA256},
	HostKeyECDSA384:      {ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA384},
	HostKeyECDSA521:      {ssh.KeyAlgoECDSA521, ssh.KeyAlgoECDSA521},
	HostKeyRSASHA512:     {ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA512},
	HostKeyRSASHA256:     {ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA256},
	HostKeyRSA:           {ssh.KeyAlgoRSA, ssh.KeyAlgoRSA},
	HostKeyED25519Cert:   {ssh.CertAlgoED25519v01, ssh.KeyAlgoED25519},
	HostKeyECDSA256Cert:  {ssh.CertAlgoECDSA256v01, ssh.KeyAlgoECDSA256},
	HostKeyECDSA384Cert:  {ssh.CertAlgoECDSA384v01, ssh.KeyAlgoECDSA384},
	HostKeyECDSA521Cert:  {ssh.CertAlgoECDSA521v01, ssh.KeyAlgoECDSA521},
	HostKeyRSASHA512Cert: {ssh.CertAlgoRSAv01, ssh.KeyAlgoRSASHA512},
	HostKeyRSASHA256Cert: {ssh.CertAlgoRSAv01, ssh.KeyAlgoRSASHA256},
	HostKeyRSACert:       {ssh.CertAlgoRSAv01, ssh.KeyAlgoRSA},
}

// SignatureAlgorithm returns the plain signature algorithm used on H for a
// host key algorithm ("rsa-sha2-512-cert-v01@openssh.com" -> "rsa-sha2-512"),
// and whether the host key algorithm is supported.
func SignatureAlgorithm(hostKeyAlgo string) (string, bool) {
	a, ok := hostKeyAlgos[hostKeyAlgo]
	return a.sigAlgo, ok
}

// HostKeyAlgorithms lists, in DefaultHostKeyAlgos order, the host key
// algorithms that s can serve: an RSA key gives rsa-sha2-512 and rsa-sha2-256
// (these need an ssh.AlgorithmSigner) and, with allowSHA1, ssh-rsa; a
// certificate signer (ssh.NewCertSigner) gives the -cert-v01@openssh.com
// forms. An ssh.MultiAlgorithmSigner is restricted to its Algorithms(). Key
// types this package does not support give nil.
func HostKeyAlgorithms(s ssh.Signer, allowSHA1 bool) []string {
	if s == nil {
		return nil
	}
	keyType := s.PublicKey().Type()
	_, algoSigner := s.(ssh.AlgorithmSigner)
	multi, isMulti := s.(ssh.MultiAlgorithmSigner)
	var out []string
	for _, name := range SupportedHostKeyAlgos {
		a := hostKeyAlgos[name]
		if a.keyType != keyType {
			continue
		}
		if a.sigAlgo == ssh.KeyAlgoRSA && !allowSHA1 {
			continue
		}
		// A plain Signer signs RSA with its own default (SHA-1 for x/crypto
		// keys), so the SHA-2 variants need SignWithAlgorithm.
		if !algoSigner && (a.sigAlgo == ssh.KeyAlgoRSASHA256 || a.sigAlgo == ssh.KeyAlgoRSASHA512) {
			continue
		}
		if isMulti && !Has(multi.Algorithms(), a.sigAlgo) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// signH signs the exchange hash with the server's host key for the
// negotiated algorithm and returns the signature blob
// (RFC 4253 §6.6: string signature format identifier, string blob).
func signH(s ssh.Signer, algo string, rnd io.Reader, h []byte) ([]byte, error) {
	a, ok := hostKeyAlgos[algo]
	if !ok {
		return nil, &ConfigError{Reason: "unsupported host key algorithm " + algo}
	}
	if t := s.PublicKey().Type(); t != a.keyType {
		return nil, &ConfigError{Reason: "host key of type " + t + " cannot serve " + algo}
	}
	var sig *ssh.Signature
	var err error
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		sig, err = as.SignWithAlgorithm(rnd, h, a.sigAlgo)
	} else {
		sig, err = s.Sign(rnd, h)
	}
	if err != nil {
		return nil, &ConfigError{Reason: "signing H with " + algo + ": " + err.Error()}
	}
	if sig.Format != a.sigAlgo {
		return nil, &ConfigError{Reason: "host key signer made a " + sig.Format + " signature, need " + a.sigAlgo}
	}
	return wire.AppendSignature(nil, wire.Signature{Format: sig.Format, Blob: sig.Blob, Rest: sig.Rest}), nil
}

// verifyH parses K_S and checks the server's signature on H with the
// negotiated host key algorithm. RFC 4253 §8: "The client ... verifies the
// signature on H"; RFC 8332 §3 and the protocol digest: the name inside the
// signature blob must equal the negotiated algorithm (for certificates, the
// underlying plain algorithm), so a server cannot downgrade rsa-sha2-512 to
// ssh-rsa.
func verifyH(algo string, keyBlob, sigBlob, h []byte) (ssh.PublicKey, error) {
	a, ok := hostKeyAlgos[algo]
	if !ok {
		return nil, &SignatureError{Algorithm: algo, Reason: "unsupported host key algorithm"}
	}
	key, err := ssh.ParsePublicKey(keyBlob)
	if err != nil {
		return nil, &SignatureError{Algorithm: algo, Reason: "cannot parse host key", Err: err}
	}
	if key.Type() != a.keyType {
		return nil, &SignatureError{Algorithm: algo, Reason: "host key type " + key.Type() + " does not suit the negotiated algorithm"}
	}
	ws, err := wire.ParseSignature(sigBlob)
	if err != nil {
		return nil, &SignatureError{Algorithm: algo, Reason: "malformed signature", Err: err}
	}
	if ws.Rest != nil {
		// Host key algorithms here have no trailing signature fields (only
		// sk-* keys do); OpenSSH rejects trailing data too.
		return nil, &SignatureError{Algorithm: algo, Reason: "trailing bytes after signature"}
	}
	if ws.Format != a.sigAlgo {
		return nil, &SignatureError{Algorithm: algo, Reason: "signature algorithm " + ws.Format + ", want " + a.sigAlgo}
	}
	if err := key.Verify(h, &ssh.Signature{Format: ws.Format, Blob: ws.Blob}); err != nil {
		return nil, &SignatureError{Algorithm: algo, Reason: "invalid signature", Err: err}
	}
	return key, nil
}
