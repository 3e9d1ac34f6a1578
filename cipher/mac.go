package cipher

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// macInfo describes one MAC name: an HMAC (newH set) or UMAC (umac set).
type macInfo struct {
	name   string
	newH   func() hash.Hash
	umac   bool
	keyLen int // RFC 6668 §2 / RFC 4253 §6.4: key length = digest length; UMAC: 16
	size   int // tag length
	etm    bool
}

var macs = map[string]macInfo{
	// RFC 6668 §2: "hmac-sha2-256 ... digest length = 32 bytes, key length
	// = 32 bytes"; "hmac-sha2-512 ... digest length = 64 bytes, key length =
	// 64 bytes". RFC 4253 §6.4: "hmac-sha1 ... digest length = key length =
	// 20". The -etm@openssh.com forms (PROTOCOL §1.5) use the same
	// primitives over different input.
	HMACSHA256:    {name: HMACSHA256, newH: sha256.New, keyLen: 32, size: 32},
	HMACSHA512:    {name: HMACSHA512, newH: sha512.New, keyLen: 64, size: 64},
	HMACSHA1:      {name: HMACSHA1, newH: sha1.New, keyLen: 20, size: 20},
	HMACSHA256ETM: {name: HMACSHA256ETM, newH: sha256.New, keyLen: 32, size: 32, etm: true},
	HMACSHA512ETM: {name: HMACSHA512ETM, newH: sha512.New, keyLen: 64, size: 64, etm: true},
	HMACSHA1ETM:   {name: HMACSHA1ETM, newH: sha1.New, keyLen: 20, size: 20, etm: true},
	// OpenSSH PROTOCOL §1.1 and mac.c: UMAC (RFC 4418) with a 128-bit key
	// and a 64- or 128-bit tag.
	UMAC64:     {name: UMAC64, umac: true, keyLen: 16, size: 8},
	UMAC128:    {name: UMAC128, umac: true, keyLen: 16, size: 16},
	UMAC64ETM:  {name: UMAC64ETM, umac: true, keyLen: 16, size: 8, etm: true},
	UMAC128ETM: {name: UMAC128ETM, umac: true, keyLen: 16, size: 16, etm: true},
	// Legacy. RFC 4253 §6.4: "hmac-sha1-96 ... first 96 bits of HMAC-SHA1
	// (digest length = 12, key length = 20)" and "hmac-md5 ... HMAC-MD5
	// (digest length = key length = 16)".
	HMACSHA196: {name: HMACSHA196, newH: sha1.New, keyLen: 20, size: 12},
	HMACMD5:    {name: HMACMD5, newH: md5.New, keyLen: 16, size: 16},
}

// packetMAC is one direction's MAC state, reused for every packet. A packet's
// tag is begin(seq), write of the MAC input (one or more pieces), then
// appendSum or verify; none of them allocates once the state exists.
type packetMAC interface {
	// begin starts the tag of the packet with sequence number seq.
	begin(seq uint32)
	// write adds p to the MAC input.
	write(p []byte)
	// appendSum appends the tag to b, which must have the tag size in
	// spare capacity to avoid allocating.
	appendSum(b []byte) []byte
	// verify reports in constant time whether tag equals the tag of the
	// input written since begin.
	verify(tag []byte) bool
}

func newPacketMAC(mi macInfo, key []byte) (packetMAC, error) {
	if mi.umac {
		return newUMACMAC(key, mi.size)
	}
	return newHMACMAC(mi, key), nil
}

// hmacMAC computes "MAC(key, sequence_number || data)" (RFC 4253 §6.4)
// with one HMAC instance created once and Reset per packet, so computing a tag
// allocates nothing.
type hmacMAC struct {
	h    hash.Hash
	size int // tag length; below the digest length for hmac-sha1-96
	seq  [4]byte
	sum  [64]byte // largest tag (hmac-sha2-512)
}

func newHMACMAC(mi macInfo, key []byte) *hmacMAC {
	m := &hmacMAC{h: hmac.New(mi.newH, key), size: mi.size}
	// crypto/hmac saves the keyed inner and outer hash states on the first
	// Reset; doing it here keeps that one-time allocation out of the first
	// packet.
	m.h.Reset()
	return m
}

// begin resets the MAC and writes the sequence number, "uint32
// sequence_number" (RFC 4253 §6.4).
func (m *hmacMAC) begin(seq uint32) {
	m.h.Reset()
	binary.BigEndian.PutUint32(m.seq[:], seq)
	m.h.Write(m.seq[:])
}

func (m *hmacMAC) write(p []byte) { m.h.Write(p) }

// appendSum appends the tag to b, which must have the tag size in spare
// capacity to avoid allocating. A truncated MAC (hmac-sha1-96) appends the
// first size bytes of the digest.
func (m *hmacMAC) appendSum(b []byte) []byte {
	if m.size == m.h.Size() {
		return m.h.Sum(b)
	}
	return append(b, m.h.Sum(m.sum[:0])[:m.size]...)
}

func (m *hmacMAC) verify(tag []byte) bool {
	sum := m.h.Sum(m.sum[:0])[:m.size]
	return subtle.ConstantTimeCompare(sum, tag) == 1
}
