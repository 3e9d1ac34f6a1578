// Package cipher implements the SSH-2 packet protection algorithms that sshtap
// negotiates: chacha20-poly1305@openssh.com, aes128-gcm@openssh.com,
// aes256-gcm@openssh.com, and aes128/192/256-ctr combined with
// umac-64@openssh.com, umac-128@openssh.com (UMAC, RFC 4418), hmac-sha2-256,
// hmac-sha2-512 or hmac-sha1, in classic Encrypt-and-MAC order or in their
// -etm@openssh.com (Encrypt-then-MAC) forms. For old peers it also has the
// legacy aes128/192/256-cbc and 3des-cbc ciphers and the hmac-sha1-96 and
// hmac-md5 MACs (IsLegacy), which are never offered unless configured.
//
// The package is pure byte-in/byte-out: it starts no goroutines and does no
// I/O. A Sealer protects outbound packets, an Opener authenticates and
// decrypts inbound ones. Both carry per-direction cipher state (the CTR
// keystream position, the GCM invocation counter, reusable HMAC state and
// scratch buffers), so a Sealer or Opener must be used by one goroutine at a
// time; the packet layer owns one of each per direction. Nothing allocates per
// packet once the caller's buffers are large enough.
//
// # Modes
//
//   - ModeClassic (RFC 4253 §6): "mac = MAC(key, sequence_number ||
//     unencrypted_packet)" and the whole packet, including packet_length, is
//     encrypted. The receiver must decrypt the first cipher block to learn the
//     length (Opener.DecryptLength), and the MAC covers plaintext, so a
//     receiver can only check it after decrypting.
//   - ModeETM (OpenSSH PROTOCOL §1.5): packet_length is sent in clear, only
//     padding_length || payload || padding is encrypted, and "mac =
//     MAC(key, sequence_number || packet_length || encrypted_packet)", so the
//     receiver authenticates before it decrypts.
//
// For UMAC, "MAC(key, sequence_number || data)" above means UMAC(key, nonce =
// sequence_number, data): the sequence number is the nonce, not hashed.
//   - ModeAEAD: chacha20-poly1305@openssh.com (PROTOCOL.chacha20poly1305:
//     packet_length encrypted with its own key, Poly1305 over the encrypted
//     length and payload) and aes*-gcm@openssh.com (RFC 5647 as amended by
//     OpenSSH PROTOCOL §1.6: packet_length in clear as the additional
//     authenticated data). The MAC algorithm negotiated beside an AEAD cipher
//     is ignored.
//
// # Sequence numbers
//
// Seal and Open take the packet's sequence number (RFC 4253 §6.4), which the
// HMACs authenticate and chacha20-poly1305 and UMAC use as their nonce (UMAC:
// the sequence number as a 64-bit big-endian integer, not part of the hashed
// message, as OpenSSH's mac.c does). AES-GCM does
// not use it: its nonce carries its own invocation counter (RFC 5647 §7.1),
// which advances once per Seal or Open and is not reset by a strict-KEX
// sequence-number reset.
//
// # Tag mismatches
//
// Open never hides the decryption: on a mismatch it still returns the body
// as decrypted and advances its state as if the packet were authentic, so a
// caller may discard the packet and carry on, or even accept it. What that
// means differs by mode, and in every mode the packet_length used to frame
// the packet is covered by the tag, so a mismatch may mean the length itself
// was corrupted and the next packet's framing is wrong:
//
//   - classic: the MAC is over the plaintext; the body is the CTR
//     decryption of what arrived.
//   - etm: the MAC is over the ciphertext as received; the body is its CTR
//     decryption.
//   - CBC (classic or etm): the body is the CBC decryption of what arrived,
//     and the chain goes on from the last ciphertext block as received
//     (RFC 4253 §6.3), so a corrupted last block also garbles the first
//     block of the next packet (in classic mode its length).
//   - aead: the tag covers the (encrypted or clear) length and the
//     ciphertext; for chacha20-poly1305 the length was decrypted with its
//     own key, for AES-GCM it was sent in clear. The body is the keystream
//     decryption of what arrived.
package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/des"
	"fmt"
	"slices"
)

// Mode is how a cipher and MAC protect a packet.
type Mode uint8

const (
	// ModeClassic is Encrypt-and-MAC (RFC 4253 §6.4): the length is
	// encrypted, the MAC is computed over the plaintext.
	ModeClassic Mode = iota
	// ModeETM is -etm@openssh.com: the length is in clear, the MAC is
	// computed over the ciphertext.
	ModeETM
	// ModeAEAD is chacha20-poly1305@openssh.com and aes*-gcm@openssh.com.
	ModeAEAD
)

// String returns "classic", "etm" or "aead".
func (m Mode) String() string {
	switch m {
	case ModeClassic:
		return "classic"
	case ModeETM:
		return "etm"
	case ModeAEAD:
		return "aead"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Algorithm names as they appear in SSH_MSG_KEXINIT name-lists.
const (
	Chacha20Poly1305 = "chacha20-poly1305@openssh.com"
	AES128GCM        = "aes128-gcm@openssh.com"
	AES256GCM        = "aes256-gcm@openssh.com"
	AES128CTR        = "aes128-ctr"
	AES192CTR        = "aes192-ctr"
	AES256CTR        = "aes256-ctr"

	// Legacy CBC ciphers (RFC 4253 §6.3), supported but never offered
	// unless configured; see IsLegacy.
	AES128CBC    = "aes128-cbc"
	AES192CBC    = "aes192-cbc"
	AES256CBC    = "aes256-cbc"
	TripleDESCBC = "3des-cbc"

	HMACSHA256    = "hmac-sha2-256"
	HMACSHA512    = "hmac-sha2-512"
	HMACSHA1      = "hmac-sha1"
	HMACSHA256ETM = "hmac-sha2-256-etm@openssh.com"
	HMACSHA512ETM = "hmac-sha2-512-etm@openssh.com"
	HMACSHA1ETM   = "hmac-sha1-etm@openssh.com"
	UMAC64        = "umac-64@openssh.com"
	UMAC128       = "umac-128@openssh.com"
	UMAC64ETM     = "umac-64-etm@openssh.com"
	UMAC128ETM    = "umac-128-etm@openssh.com"

	// Legacy MACs (RFC 4253 §6.4, RFC 2104), supported but never offered
	// unless configured; see IsLegacy.
	HMACSHA196 = "hmac-sha1-96"
	HMACMD5    = "hmac-md5"
)

// DefaultCiphers is the cipher preference list sshtap offers by default.
var DefaultCiphers = []string{Chacha20Poly1305, AES128GCM, AES256GCM, AES128CTR, AES192CTR, AES256CTR}

// DefaultMACs is the MAC preference list sshtap offers by default: OpenSSH
// 9.2's default order without the SHA-1 MACs. hmac-sha1 and hmac-sha1-etm
// are supported but not offered unless configured.
var DefaultMACs = []string{UMAC64ETM, UMAC128ETM, HMACSHA256ETM, HMACSHA512ETM, UMAC64, UMAC128, HMACSHA256, HMACSHA512}

// SupportedCiphers lists every cipher NewSealer and NewOpener accept: the
// defaults, then the legacy CBC ciphers.
var SupportedCiphers = append(slices.Clone(DefaultCiphers), legacyCiphers...)

// SupportedMACs lists every MAC NewSealer and NewOpener accept: the
// defaults, hmac-sha1 in both orders, then the legacy MACs.
var SupportedMACs = append(append(slices.Clone(DefaultMACs), HMACSHA1ETM, HMACSHA1), legacyMACs...)

// legacyCiphers and legacyMACs are the names IsLegacy reports: algorithms
// kept for old peers (CBC mode's padding-oracle history, 64-bit 3DES
// blocks, MD5 and 96-bit truncated SHA-1 tags) that must be named in a
// configuration to be offered.
var (
	legacyCiphers = []string{AES128CBC, AES192CBC, AES256CBC, TripleDESCBC}
	legacyMACs    = []string{HMACSHA196, HMACMD5}
)

// IsLegacy reports whether name is a legacy cipher or MAC: supported for
// old peers, never in DefaultCiphers or DefaultMACs. It is the one list of
// such names in this package.
func IsLegacy(name string) bool {
	return slices.Contains(legacyCiphers, name) || slices.Contains(legacyMACs, name)
}

// cipherInfo describes one cipher name.
type cipherInfo struct {
	keyLen, ivLen int
	aead          bool
	chacha        bool // chacha20-poly1305@openssh.com; otherwise AES
	gcm           bool
	// newBlock is set for the CBC ciphers (RFC 4253 §6.3).
	newBlock func(key []byte) (stdcipher.Block, error)
}

var ciphers = map[string]cipherInfo{
	// PROTOCOL.chacha20poly1305: "The chacha20-poly1305@openssh.com cipher
	// requires 512 bits of key material" and no IV.
	Chacha20Poly1305: {keyLen: 64, aead: true, chacha: true},
	// RFC 5647 §7.1 / PROTOCOL §1.6: a 12-byte IV (4-byte fixed field and
	// 8-byte invocation counter).
	AES128GCM: {keyLen: 16, ivLen: 12, aead: true, gcm: true},
	AES256GCM: {keyLen: 32, ivLen: 12, aead: true, gcm: true},
	// RFC 4344 §4: the IV is the initial 128-bit counter value X.
	AES128CTR: {keyLen: 16, ivLen: 16},
	AES192CTR: {keyLen: 24, ivLen: 16},
	AES256CTR: {keyLen: 32, ivLen: 16},
	// RFC 4253 §6.3: AES in CBC mode with 128, 192 or 256-bit keys and the
	// 128-bit block as IV; "3des-cbc" with a 168-bit key (24 bytes with
	// the DES parity bits) and a 64-bit block.
	AES128CBC: {keyLen: 16, ivLen: 16, newBlock: aes.NewCipher},
	AES192CBC: {keyLen: 24, ivLen: 16, newBlock: aes.NewCipher},
	AES256CBC: {keyLen: 32, ivLen: 16, newBlock: aes.NewCipher},
	// RFC 4253 §6.3 "3des-cbc ... three-key 3DES (encrypt-decrypt-encrypt),
	// where the first 8 bytes of the key are used for the first
	// encryption, the next 8 bytes for the decryption, and the following
	// 8 bytes for the final encryption", which is crypto/des's TripleDES
	// key layout.
	TripleDESCBC: {keyLen: 24, ivLen: 8, newBlock: des.NewTripleDESCipher},
}

// IsAEAD reports whether cipherName is an AEAD cipher, for which the
// negotiated MAC is ignored.
func IsAEAD(cipherName string) bool {
	return ciphers[cipherName].aead
}

// Sizes returns what the KDF must produce for this cipher/MAC pair (macName
// ignored for AEAD): the encryption key, IV and integrity key lengths in
// bytes. Unknown names give *UnsupportedError.
func Sizes(cipherName, macName string) (keyLen, ivLen, macKeyLen int, err error) {
	ci, ok := ciphers[cipherName]
	if !ok {
		return 0, 0, 0, &UnsupportedError{Kind: "cipher", Name: cipherName}
	}
	if ci.aead {
		return ci.keyLen, ci.ivLen, 0, nil
	}
	mi, ok := macs[macName]
	if !ok {
		return 0, 0, 0, &UnsupportedError{Kind: "mac", Name: macName}
	}
	return ci.keyLen, ci.ivLen, mi.keyLen, nil
}

// UnsupportedError reports a cipher or MAC name this package does not
// implement. Kind is "cipher" or "mac".
type UnsupportedError struct {
	Kind string
	Name string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("sshtap: cipher: unsupported %s %q", e.Kind, e.Name)
}

// KeySizeError reports key material of the wrong length passed to NewSealer
// or NewOpener. What is "key", "iv" or "mac key"; Name is the algorithm.
type KeySizeError struct {
	Name string
	What string
	Got  int
	Want int
}

func (e *KeySizeError) Error() string {
	return fmt.Sprintf("sshtap: cipher: %s: %s is %d bytes, want %d", e.Name, e.What, e.Got, e.Want)
}

// Sealer protects outbound packets for one direction. It is not safe for
// concurrent use: it keeps cipher state across packets and must be used by
// one goroutine (the packet writer).
type Sealer interface {
	Mode() Mode
	// BlockSize is the padding alignment unit: 8 for chacha20-poly1305, 16
	// for AES.
	BlockSize() int
	// TagSize is how many bytes Seal appends.
	TagSize() int
	// Seal protects pkt in place and appends the tag. pkt is the plaintext packet:
	// uint32 packet_length || byte padding_length || payload || padding, already aligned
	// per Mode (classic: whole packet; ETM/AEAD: without the 4 length bytes). It returns pkt
	// extended by TagSize bytes, reusing pkt's capacity when it suffices. Zero allocations
	// when cap(pkt) >= len(pkt)+TagSize().
	//
	// pkt comes from the local packet layer, never from the peer; an AEAD
	// Sealer panics if pkt is shorter than its 4-byte length field rather
	// than return bytes it could not protect.
	Seal(seq uint32, pkt []byte) []byte
}

// Opener authenticates and decrypts inbound packets for one direction. It is
// not safe for concurrent use: it keeps cipher state across packets and must
// be used by one goroutine (the packet reader).
type Opener interface {
	Mode() Mode
	BlockSize() int
	TagSize() int
	// HeadSize is how many leading bytes DecryptLength needs: 4 for ETM and AEAD, BlockSize for classic.
	HeadSize() int
	// DecryptLength returns packet_length from the first HeadSize bytes of a packet without
	// modifying head. Classic mode keeps the decrypted first block internally for Open, so it
	// must be called exactly once per packet, before Open.
	DecryptLength(seq uint32, head []byte) uint32
	// Open authenticates and decrypts pkt = the whole packet as received (4-byte length field
	// or first block, the rest, the tag). It writes the plaintext body
	// (padding_length || payload || padding) to dst[:0] (dst must not overlap pkt; capacity is
	// reused; zero allocations when big enough) and returns it. ok reports whether the tag
	// matched. When it did not, body still holds the unauthenticated decryption and the
	// cipher state (CTR counter, GCM invocation counter) advances exactly as for an authentic
	// packet, so the stream stays in sync. pkt is not modified.
	//
	// "Big enough" is cap(dst) >= len(body) for every cipher. A pkt shorter
	// than HeadSize+TagSize returns (dst[:0], false) without touching state;
	// the packet layer rejects such lengths before calling Open.
	Open(seq uint32, dst, pkt []byte) (body []byte, ok bool)
}

// NewSealer returns a Sealer for the negotiated cipher and MAC with key
// material from the RFC 4253 §7.2 KDF. Lengths must match Sizes exactly,
// except that iv is ignored for chacha20-poly1305 (it has none) and macName
// and macKey are ignored for AEAD ciphers.
func NewSealer(cipherName, macName string, key, iv, macKey []byte) (Sealer, error) {
	ci, mi, err := lookup(cipherName, macName, key, iv, macKey)
	if err != nil {
		return nil, err
	}
	switch {
	case ci.chacha:
		return newChachaSealer(key), nil
	case ci.gcm:
		g, err := newGCM(key, iv)
		if err != nil {
			return nil, err
		}
		return (*gcmSealer)(g), nil
	case ci.newBlock != nil:
		return newCBCSealer(ci, key, iv, mi, macKey)
	default:
		return newCTRSealer(key, iv, mi, macKey)
	}
}

// NewOpener returns an Opener for the negotiated cipher and MAC; the
// arguments are as for NewSealer.
func NewOpener(cipherName, macName string, key, iv, macKey []byte) (Opener, error) {
	ci, mi, err := lookup(cipherName, macName, key, iv, macKey)
	if err != nil {
		return nil, err
	}
	switch {
	case ci.chacha:
		return newChachaOpener(key), nil
	case ci.gcm:
		g, err := newGCM(key, iv)
		if err != nil {
			return nil, err
		}
		return (*gcmOpener)(g), nil
	case ci.newBlock != nil:
		return newCBCOpener(ci, key, iv, mi, macKey)
	default:
		return newCTROpener(key, iv, mi, macKey)
	}
}

func lookup(cipherName, macName string, key, iv, macKey []byte) (cipherInfo, macInfo, error) {
	ci, ok := ciphers[cipherName]
	if !ok {
		return ci, macInfo{}, &UnsupportedError{Kind: "cipher", Name: cipherName}
	}
	if len(key) != ci.keyLen {
		return ci, macInfo{}, &KeySizeError{Name: cipherName, What: "key", Got: len(key), Want: ci.keyLen}
	}
	if !ci.chacha && len(iv) != ci.ivLen {
		return ci, macInfo{}, &KeySizeError{Name: cipherName, What: "iv", Got: len(iv), Want: ci.ivLen}
	}
	if ci.aead {
		return ci, macInfo{}, nil
	}
	mi, ok := macs[macName]
	if !ok {
		return ci, mi, &UnsupportedError{Kind: "mac", Name: macName}
	}
	if len(macKey) != mi.keyLen {
		return ci, mi, &KeySizeError{Name: macName, What: "mac key", Got: len(macKey), Want: mi.keyLen}
	}
	return ci, mi, nil
}

// grow returns b extended by n bytes, reusing b's capacity when it suffices
// and otherwise copying b into a new array.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

// resize returns a slice of length n backed by dst's array when cap(dst) >= n,
// and a new array otherwise. Contents are unspecified.
func resize(dst []byte, n int) []byte {
	if cap(dst) >= n {
		return dst[:n]
	}
	return make([]byte, n)
}
