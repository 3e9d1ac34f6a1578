// Package kex implements the SSH-2 key exchange: KEXINIT construction and
// algorithm negotiation (RFC 4253 §7.1), the key exchange methods as
// message-driven state machines, the exchange hash H, host key signatures on H
// and key derivation (RFC 4253 §7.2).
//
// Nothing in this package starts a goroutine or performs I/O: callers feed
// received method messages (types 30..49) to an [Exchange] and send what it
// returns. Values returned by this package never alias caller input unless a
// comment says so.
//
// Concurrency and lifetimes: the package-level functions (Negotiate,
// GuessWrong, DeriveKey, HostKeyAlgorithms, ParseModuli, Proposal.KexInit)
// keep no state and are safe for concurrent use. An Exchange is used by one
// goroutine for one key exchange and is then discarded; a rekey starts a new
// Exchange with new Params. NewExchange copies the byte slices of Params, so
// packet buffers may be reused right away; messages passed to Handle are not
// retained.
//
// Supported methods: mlkem768x25519-sha256, sntrup761x25519-sha512 (and the
// @openssh.com alias; Streamlined NTRU Prime in kex/internal/sntrup761),
// curve25519-sha256 (and the @libssh.org alias), ecdh-sha2-nistp256/384/521, diffie-hellman-group-exchange-sha256,
// diffie-hellman-group14-sha256, diffie-hellman-group16-sha512,
// diffie-hellman-group18-sha512, and the legacy SHA-1 methods
// diffie-hellman-group14-sha1, diffie-hellman-group1-sha1 and
// diffie-hellman-group-exchange-sha1, which are in SupportedKexAlgos but
// never in DefaultKexAlgos (IsLegacy). ExpandAlgorithms resolves configured
// algorithm lists with OpenSSH's "+", "-" and "^" modifiers.
package kex
