package kex

import "sshtap/internal/wire"

// Algorithms is the outcome of negotiation. MACCS/MACSC are "" when the
// cipher of that direction is AEAD.
type Algorithms struct {
	Kex, HostKey                                                   string
	CipherCS, CipherSC, MACCS, MACSC, CompressionCS, CompressionSC string
}

// firstMatch implements the rule shared by every list in RFC 4253 §7.1: "The
// chosen algorithm MUST be the first algorithm on the client's name-list that
// is also on the server's name-list." Pseudo-algorithms are never chosen.
func firstMatch(client, server []string) (string, bool) {
	for _, c := range client {
		if IsPseudo(c) {
			continue
		}
		if Has(server, c) {
			return c, true
		}
	}
	return "", false
}

// Negotiate picks the algorithms per RFC 4253 §7.1 from the client's and the
// server's KEXINIT (the roles, not "ours" and "theirs").
//
//   - kex: "iterate over client's kex algorithms, one at a time. Choose the first
//     algorithm that satisfies the following conditions: + the server also
//     supports the algorithm, ... + if the algorithm requires a
//     signature-capable host key, there is a signature-capable algorithm on the
//     server's server_host_key_algorithms that is also supported by the
//     client." Every method here needs a signature-capable host key, and every
//     host key algorithm name is treated as signature-capable.
//   - host key, ciphers, MACs, compression: the first client entry the server
//     also lists, separately per direction. Language lists are not negotiated.
//   - MACs are not negotiated for an AEAD cipher (OpenSSH PROTOCOL §1.6 for
//     AES-GCM, PROTOCOL.chacha20poly1305): the MAC lists need not overlap.
//   - Pseudo-algorithms (ext-info-*, kex-strict-*, kexguess2) are skipped.
//
// On failure it returns a *NegotiationError naming the list and both offers;
// RFC 4253 §7.1 says the connection then fails (DISCONNECT reason 3,
// KEY_EXCHANGE_FAILED).
func Negotiate(client, server *wire.KexInit) (*Algorithms, error) {
	a := &Algorithms{}
	var ok bool
	// Every method here needs a signature-capable host key, so the kex choice
	// reduces to the first common kex name, provided some host key algorithm
	// is common at all. When none is, the failure is reported as "host key",
	// which names the lists that actually do not overlap.
	if a.Kex, ok = firstMatch(client.KexAlgos, server.KexAlgos); !ok {
		return nil, &NegotiationError{What: "kex", Client: client.KexAlgos, Server: server.KexAlgos}
	}
	hk, ok := firstMatch(client.HostKeyAlgos, server.HostKeyAlgos)
	if !ok {
		return nil, &NegotiationError{What: "host key", Client: client.HostKeyAlgos, Server: server.HostKeyAlgos}
	}
	a.HostKey = hk
	type dir struct {
		out            *string
		what           string
		client, server []string
	}
	for _, d := range []dir{
		{&a.CipherCS, "cipher c2s", client.CiphersClientServer, server.CiphersClientServer},
		{&a.CipherSC, "cipher s2c", client.CiphersServerClient, server.CiphersServerClient},
	} {
		if *d.out, ok = firstMatch(d.client, d.server); !ok {
			return nil, &NegotiationError{What: d.what, Client: d.client, Server: d.server}
		}
	}
	for _, d := range []struct {
		dir
		cipher string
	}{
		{dir{&a.MACCS, "mac c2s", client.MACsClientServer, server.MACsClientServer}, a.CipherCS},
		{dir{&a.MACSC, "mac s2c", client.MACsServerClient, server.MACsServerClient}, a.CipherSC},
	} {
		if IsAEAD(d.cipher) {
			continue // the AEAD tag authenticates the packet; no MAC is used
		}
		if *d.out, ok = firstMatch(d.client, d.server); !ok {
			return nil, &NegotiationError{What: d.what, Client: d.client, Server: d.server}
		}
	}
	for _, d := range []dir{
		{&a.CompressionCS, "compression c2s", client.CompressionClientServer, server.CompressionClientServer},
		{&a.CompressionSC, "compression s2c", client.CompressionServerClient, server.CompressionServerClient},
	} {
		if *d.out, ok = firstMatch(d.client, d.server); !ok {
			return nil, &NegotiationError{What: d.what, Client: d.client, Server: d.server}
		}
	}
	return a, nil
}

// GuessWrong reports whether a first_kex_packet_follows guess must be
// discarded: some side set first_kex_packet_follows and the guess was wrong.
// RFC 4253 §7: "the guess is considered wrong if the kex algorithm and/or the
// host key algorithm is guessed wrong (server and client have different
// preferred algorithm)". Like OpenSSH (kex.c proposals_match) and x/crypto,
// only the first entries of kex_algorithms and server_host_key_algorithms are
// compared. A guess over an empty list is wrong. The caller then silently
// ignores the next kex packet from the guessing side ("the next packet MUST be
// silently ignored").
func GuessWrong(client, server *wire.KexInit) bool {
	if !client.FirstKexFollows && !server.FirstKexFollows {
		return false
	}
	return !sameFirst(client.KexAlgos, server.KexAlgos) ||
		!sameFirst(client.HostKeyAlgos, server.HostKeyAlgos)
}

func sameFirst(a, b []string) bool {
	return len(a) > 0 && len(b) > 0 && a[0] == b[0]
}
