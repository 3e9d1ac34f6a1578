package kex

import "crypto"

// DeriveKey implements RFC 4253 §7.2: "Initial IV client to server:
// HASH(K || H || "A" || session_id)" and so on for letters A..F, where K is
// the shared secret encoded as in the exchange hash (Result.K, length prefix
// included), H the exchange hash of this key exchange and session_id the H of
// the first one. "If the key length needed is longer than the output of the
// HASH, the key is extended by computing HASH of the concatenation of K and H
// and the entire key so far, and appending the resulting bytes":
//
//	K1 = HASH(K || H || X || session_id)
//	K2 = HASH(K || H || K1)
//	K3 = HASH(K || H || K1 || K2)
//	key = K1 || K2 || K3 || ...
//
// It returns the first n bytes. Outputs for the same inputs are
// prefix-consistent.
func DeriveKey(h crypto.Hash, K, H, sessionID []byte, letter byte, n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	hh := h.New()
	size := hh.Size()
	out := make([]byte, 0, (n+size-1)/size*size)
	hh.Write(K)
	hh.Write(H)
	hh.Write([]byte{letter})
	hh.Write(sessionID)
	out = hh.Sum(out)
	for len(out) < n {
		hh.Reset()
		hh.Write(K)
		hh.Write(H)
		hh.Write(out)
		out = hh.Sum(out)
	}
	return out[:n:n]
}
