package kex

import "slices"

// Key exchange method names.
const (
	Curve25519SHA256       = "curve25519-sha256"            // RFC 8731
	Curve25519SHA256LibSSH = "curve25519-sha256@libssh.org" // RFC 8731 §3 (pre-standard alias)
	ECDHP256               = "ecdh-sha2-nistp256"           // RFC 5656
	ECDHP384               = "ecdh-sha2-nistp384"           // RFC 5656
	ECDHP521               = "ecdh-sha2-nistp521"           // RFC 5656
	DHGroup1SHA1           = "diffie-hellman-group1-sha1"   // RFC 4253 §8.1 (legacy, opt-in only)
	DHGroup14SHA1          = "diffie-hellman-group14-sha1"  // RFC 4253 §8.2 (legacy, opt-in only)
	DHGroup14SHA256        = "diffie-hellman-group14-sha256"
	DHGroup16SHA512        = "diffie-hellman-group16-sha512"
	DHGroup18SHA512        = "diffie-hellman-group18-sha512"
	DHGexSHA256            = "diffie-hellman-group-exchange-sha256" // RFC 4419, RFC 8270
	DHGexSHA1              = "diffie-hellman-group-exchange-sha1"   // RFC 4419 (legacy, opt-in only)
	MLKEM768X25519         = "mlkem768x25519-sha256"                // draft-ietf-sshm-mlkem-hybrid-kex
	// Sntrup761X25519 and its older alias are the Streamlined NTRU Prime
	// hybrid (draft-josefsson-ntruprime-ssh; OpenSSH 9.0's default).
	Sntrup761X25519        = "sntrup761x25519-sha512"
	Sntrup761X25519OpenSSH = "sntrup761x25519-sha512@openssh.com"
)

// Pseudo-algorithms that may appear in kex_algorithms of the first KEXINIT.
// They are never negotiated (RFC 8308 §2.1; OpenSSH PROTOCOL strict kex).
const (
	ExtInfoC = "ext-info-c"
	ExtInfoS = "ext-info-s"
	StrictC  = "kex-strict-c-v00@openssh.com"
	StrictS  = "kex-strict-s-v00@openssh.com"
	// KexGuess2 is dropbear's first_kex_packet_follows extension. sshtap does
	// not implement it; Negotiate skips it like the other pseudo names.
	KexGuess2 = "kexguess2@matt.ucc.asn.au"
)

// Host key algorithm names (RFC 8709, RFC 5656, RFC 8332, PROTOCOL.certkeys).
const (
	HostKeyED25519       = "ssh-ed25519"
	HostKeyECDSA256      = "ecdsa-sha2-nistp256"
	HostKeyECDSA384      = "ecdsa-sha2-nistp384"
	HostKeyECDSA521      = "ecdsa-sha2-nistp521"
	HostKeyRSASHA512     = "rsa-sha2-512"
	HostKeyRSASHA256     = "rsa-sha2-256"
	HostKeyRSA           = "ssh-rsa" // SHA-1; opt-in only
	HostKeyED25519Cert   = "ssh-ed25519-cert-v01@openssh.com"
	HostKeyECDSA256Cert  = "ecdsa-sha2-nistp256-cert-v01@openssh.com"
	HostKeyECDSA384Cert  = "ecdsa-sha2-nistp384-cert-v01@openssh.com"
	HostKeyECDSA521Cert  = "ecdsa-sha2-nistp521-cert-v01@openssh.com"
	HostKeyRSASHA512Cert = "rsa-sha2-512-cert-v01@openssh.com"
	HostKeyRSASHA256Cert = "rsa-sha2-256-cert-v01@openssh.com"
	HostKeyRSACert       = "ssh-rsa-cert-v01@openssh.com" // SHA-1; opt-in only
)

// DefaultKexAlgos is the default kex_algorithms preference order.
var DefaultKexAlgos = []string{
	MLKEM768X25519,
	Sntrup761X25519, Sntrup761X25519OpenSSH,
	Curve25519SHA256, Curve25519SHA256LibSSH,
	ECDHP256, ECDHP384, ECDHP521,
	DHGexSHA256,
	DHGroup16SHA512, DHGroup18SHA512, DHGroup14SHA256,
}

// SupportedKexAlgos lists every method NewExchange accepts: the defaults,
// then the legacy SHA-1 methods.
var SupportedKexAlgos = append(slices.Clone(DefaultKexAlgos), legacyKexAlgos...)

// legacyKexAlgos and legacyHostKeyAlgos are the names IsLegacy reports:
// methods and signature algorithms built on SHA-1 (and, for group1, a
// 1024-bit group), kept for old peers and offered only when named in a
// configuration.
var (
	legacyKexAlgos     = []string{DHGroup14SHA1, DHGexSHA1, DHGroup1SHA1}
	legacyHostKeyAlgos = []string{HostKeyRSACert, HostKeyRSA}
)

// IsLegacy reports whether name is a legacy kex method or host key (or
// public key) signature algorithm: supported for old peers, never in
// DefaultKexAlgos or DefaultHostKeyAlgos. It is the one list of such
// names in this package; cipher.IsLegacy has the ciphers and MACs.
func IsLegacy(name string) bool {
	return Has(legacyKexAlgos, name) || Has(legacyHostKeyAlgos, name)
}

// DefaultHostKeyAlgos is the default server_host_key_algorithms preference
// order: certificates first, as OpenSSH orders them.
var DefaultHostKeyAlgos = []string{
	HostKeyED25519Cert,
	HostKeyECDSA256Cert, HostKeyECDSA384Cert, HostKeyECDSA521Cert,
	HostKeyRSASHA512Cert, HostKeyRSASHA256Cert,
	HostKeyED25519,
	HostKeyECDSA256, HostKeyECDSA384, HostKeyECDSA521,
	HostKeyRSASHA512, HostKeyRSASHA256,
}

// SupportedHostKeyAlgos adds the SHA-1 RSA algorithms, which must be enabled
// explicitly.
var SupportedHostKeyAlgos = append(slices.Clone(DefaultHostKeyAlgos), legacyHostKeyAlgos...)

// aeadCiphers are the cipher names whose MAC negotiation is skipped
// (OpenSSH PROTOCOL.chacha20poly1305, PROTOCOL §1.6 for AES-GCM). kex and
// cipher never import each other, so the list is kept here.
var aeadCiphers = []string{
	"chacha20-poly1305@openssh.com",
	"aes128-gcm@openssh.com",
	"aes256-gcm@openssh.com",
}

// IsAEAD reports whether MAC negotiation is skipped for cipherName.
func IsAEAD(cipherName string) bool { return Has(aeadCiphers, cipherName) }

// IsPseudo reports whether name is a pseudo-algorithm that signals a feature
// in kex_algorithms and is never negotiated.
func IsPseudo(name string) bool {
	switch name {
	case ExtInfoC, ExtInfoS, StrictC, StrictS, KexGuess2:
		return true
	}
	return false
}

// Has reports whether names contains name (exact, case-sensitive match:
// RFC 4251 §6 algorithm names are case-sensitive).
func Has(names []string, name string) bool { return slices.Contains(names, name) }

// Role says which side of the connection an Exchange or KEXINIT is for.
type Role uint8

const (
	Client Role = iota
	Server
)

func (r Role) String() string {
	switch r {
	case Client:
		return "client"
	case Server:
		return "server"
	}
	return "Role(?)"
}
