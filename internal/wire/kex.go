package wire

import "math/big"

// Key exchange messages: RFC 4253 §7.1 and §7.3 (KEXINIT, NEWKEYS), §8
// (fixed-group DH), RFC 5656 §7.1 (ECDH, also used by curve25519 and the
// sntrup761/mlkem768 hybrids), RFC 4419 §5 (group exchange). []byte fields
// alias the payload passed to Unmarshal; *big.Int values and names are
// copies; trailing bytes are ignored. On error Unmarshal returns a
// *DecodeError and leaves the receiver unchanged. Range checks on DH values
// (1 < e < p-1) and point formats belong to the kex package.

// KexInit is SSH_MSG_KEXINIT (RFC 4253 §7.1):
//
//	byte         SSH_MSG_KEXINIT
//	byte[16]     cookie (random bytes)
//	name-list    kex_algorithms
//	name-list    server_host_key_algorithms
//	name-list    encryption_algorithms_client_to_server
//	name-list    encryption_algorithms_server_to_client
//	name-list    mac_algorithms_client_to_server
//	name-list    mac_algorithms_server_to_client
//	name-list    compression_algorithms_client_to_server
//	name-list    compression_algorithms_server_to_client
//	name-list    languages_client_to_server
//	name-list    languages_server_to_client
//	boolean      first_kex_packet_follows
//	uint32       0 (reserved for future extension)
//
// The exchange hash uses the exact payload bytes (I_C, I_S), never a
// re-marshalled KexInit.
type KexInit struct {
	Cookie                                           [16]byte
	KexAlgos, HostKeyAlgos                           []string
	CiphersClientServer, CiphersServerClient         []string
	MACsClientServer, MACsServerClient               []string
	CompressionClientServer, CompressionServerClient []string
	LanguagesClientServer, LanguagesServerClient     []string
	FirstKexFollows                                  bool
	Reserved                                         uint32
}

// Marshal appends the payload to b. It does not allocate when b has room.
func (m *KexInit) Marshal(b []byte) []byte {
	b = append(b, MsgKexInit)
	b = append(b, m.Cookie[:]...)
	b = AppendNameList(b, m.KexAlgos)
	b = AppendNameList(b, m.HostKeyAlgos)
	b = AppendNameList(b, m.CiphersClientServer)
	b = AppendNameList(b, m.CiphersServerClient)
	b = AppendNameList(b, m.MACsClientServer)
	b = AppendNameList(b, m.MACsServerClient)
	b = AppendNameList(b, m.CompressionClientServer)
	b = AppendNameList(b, m.CompressionServerClient)
	b = AppendNameList(b, m.LanguagesClientServer)
	b = AppendNameList(b, m.LanguagesServerClient)
	b = AppendBool(b, m.FirstKexFollows)
	return AppendUint32(b, m.Reserved)
}

// Unmarshal decodes p. Every name-list is read with Reader.NameListSkipEmpty:
// empty names, which RFC 4251 §5 forbids ("A name MUST have a non-zero
// length") but libssh 0.10 sends as a trailing comma, are dropped rather
// than failing the key exchange, as OpenSSH's sshd tolerates them; a NUL
// byte still fails. Empty lists decode as nil. The decoded lists are for
// negotiation only: the exchange hash uses the payload as received (RFC 4253
// §8 I_C, I_S), so dropping names changes nothing there. RFC 4253 §7.1
// does not let the reserved field be rejected ("reserved for future
// extension"), so its value is returned as sent. Trailing bytes are ignored.
func (m *KexInit) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexInit)
	var k KexInit
	copy(k.Cookie[:], r.Field("cookie").Fixed(16))
	k.KexAlgos = r.Field("kex_algorithms").NameListSkipEmpty()
	k.HostKeyAlgos = r.Field("server_host_key_algorithms").NameListSkipEmpty()
	k.CiphersClientServer = r.Field("encryption_algorithms_client_to_server").NameListSkipEmpty()
	k.CiphersServerClient = r.Field("encryption_algorithms_server_to_client").NameListSkipEmpty()
	k.MACsClientServer = r.Field("mac_algorithms_client_to_server").NameListSkipEmpty()
	k.MACsServerClient = r.Field("mac_algorithms_server_to_client").NameListSkipEmpty()
	k.CompressionClientServer = r.Field("compression_algorithms_client_to_server").NameListSkipEmpty()
	k.CompressionServerClient = r.Field("compression_algorithms_server_to_client").NameListSkipEmpty()
	k.LanguagesClientServer = r.Field("languages_client_to_server").NameListSkipEmpty()
	k.LanguagesServerClient = r.Field("languages_server_to_client").NameListSkipEmpty()
	k.FirstKexFollows = r.Field("first_kex_packet_follows").Bool()
	k.Reserved = r.Field("reserved").Uint32()
	if err := r.Err(); err != nil {
		return err
	}
	*m = k
	return nil
}

// NewKeys is SSH_MSG_NEWKEYS (RFC 4253 §7.3): "This message consists of a
// single byte." It has no Unmarshal: a received one is recognised by its
// message number.
type NewKeys struct{}

// Marshal appends the payload to b.
func (m *NewKeys) Marshal(b []byte) []byte { return append(b, MsgNewKeys) }

// KexECDHInit is SSH_MSG_KEX_ECDH_INIT (RFC 5656 §7.1), also the
// curve25519 (RFC 8731 §3), sntrup761x25519 and mlkem768x25519
// SSH_MSG_KEX_HYBRID_INIT:
//
//	byte     SSH_MSG_KEX_ECDH_INIT
//	string   Q_C, client's ephemeral public key octet string
type KexECDHInit struct {
	ClientPub []byte // aliases the payload after Unmarshal
}

// Marshal appends the payload to b.
func (m *KexECDHInit) Marshal(b []byte) []byte {
	b = append(b, MsgKexECDHInit)
	return AppendBytes(b, m.ClientPub)
}

// Unmarshal decodes p. The key's length and format are not checked here.
func (m *KexECDHInit) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexECDHInit)
	q := r.Field("Q_C").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	m.ClientPub = q
	return nil
}

// KexECDHReply is SSH_MSG_KEX_ECDH_REPLY (RFC 5656 §7.1), also the
// hybrid KEX_HYBRID_REPLY:
//
//	byte     SSH_MSG_KEX_ECDH_REPLY
//	string   K_S, server's public host key
//	string   Q_S, server's ephemeral public key octet string
//	string   the signature on the exchange hash
type KexECDHReply struct {
	HostKey, ServerPub, Signature []byte // alias the payload after Unmarshal
}

// Marshal appends the payload to b.
func (m *KexECDHReply) Marshal(b []byte) []byte {
	b = append(b, MsgKexECDHReply)
	b = AppendBytes(b, m.HostKey)
	b = AppendBytes(b, m.ServerPub)
	return AppendBytes(b, m.Signature)
}

// Unmarshal decodes p.
func (m *KexECDHReply) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexECDHReply)
	ks := r.Field("K_S").Bytes()
	qs := r.Field("Q_S").Bytes()
	sig := r.Field("signature").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	*m = KexECDHReply{HostKey: ks, ServerPub: qs, Signature: sig}
	return nil
}

// KexDHInit is SSH_MSG_KEXDH_INIT (RFC 4253 §8):
//
//	byte      SSH_MSG_KEXDH_INIT
//	mpint     e
type KexDHInit struct {
	E *big.Int
}

// Marshal appends the payload to b (a nil E encodes as zero).
func (m *KexDHInit) Marshal(b []byte) []byte {
	b = append(b, MsgKexDHInit)
	return AppendMpint(b, m.E)
}

// Unmarshal decodes p.
func (m *KexDHInit) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexDHInit)
	e := r.Field("e").Mpint()
	if err := r.Err(); err != nil {
		return err
	}
	m.E = e
	return nil
}

// KexDHReply is SSH_MSG_KEXDH_REPLY (RFC 4253 §8):
//
//	byte      SSH_MSG_KEXDH_REPLY
//	string    server public host key and certificates (K_S)
//	mpint     f
//	string    signature of H
type KexDHReply struct {
	HostKey   []byte // aliases the payload after Unmarshal
	F         *big.Int
	Signature []byte // aliases the payload after Unmarshal
}

// Marshal appends the payload to b (a nil F encodes as zero).
func (m *KexDHReply) Marshal(b []byte) []byte {
	return appendDHReply(b, MsgKexDHReply, m.HostKey, m.F, m.Signature)
}

// Unmarshal decodes p.
func (m *KexDHReply) Unmarshal(p []byte) error {
	ks, f, sig, err := parseDHReply(p, MsgKexDHReply)
	if err != nil {
		return err
	}
	*m = KexDHReply{HostKey: ks, F: f, Signature: sig}
	return nil
}

// appendDHReply and parseDHReply encode the fields shared by KEXDH_REPLY
// (RFC 4253 §8) and KEX_DH_GEX_REPLY (RFC 4419 §5), which differ only in
// the message number: string K_S, mpint f, string signature of H.
func appendDHReply(b []byte, t byte, hostKey []byte, f *big.Int, sig []byte) []byte {
	b = append(b, t)
	b = AppendBytes(b, hostKey)
	b = AppendMpint(b, f)
	return AppendBytes(b, sig)
}

func parseDHReply(p []byte, t byte) (hostKey []byte, f *big.Int, sig []byte, err error) {
	r := NewReader(p)
	r.Expect(t)
	hostKey = r.Field("K_S").Bytes()
	f = r.Field("f").Mpint()
	sig = r.Field("signature").Bytes()
	if err := r.Err(); err != nil {
		return nil, nil, nil, err
	}
	return hostKey, f, sig, nil
}

// KexDHGexRequest is SSH_MSG_KEY_DH_GEX_REQUEST (RFC 4419 §5):
//
//	byte    SSH_MSG_KEY_DH_GEX_REQUEST
//	uint32  min, minimal size in bits of an acceptable group
//	uint32  n, preferred size in bits of the group the server will send
//	uint32  max, maximal size in bits of an acceptable group
type KexDHGexRequest struct {
	Min, N, Max uint32
}

// Marshal appends the payload to b.
func (m *KexDHGexRequest) Marshal(b []byte) []byte {
	b = append(b, MsgKexDHGexRequest)
	b = AppendUint32(b, m.Min)
	b = AppendUint32(b, m.N)
	return AppendUint32(b, m.Max)
}

// Unmarshal decodes p. The ordering min <= n <= max is the server's check
// (kex package), not done here.
func (m *KexDHGexRequest) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexDHGexRequest)
	lo := r.Field("min").Uint32()
	n := r.Field("n").Uint32()
	hi := r.Field("max").Uint32()
	if err := r.Err(); err != nil {
		return err
	}
	*m = KexDHGexRequest{Min: lo, N: n, Max: hi}
	return nil
}

// KexDHGexRequestOld is SSH_MSG_KEX_DH_GEX_REQUEST_OLD (RFC 4419 §5,
// "for backward compatibility"):
//
//	byte    SSH_MSG_KEX_DH_GEX_REQUEST_OLD
//	uint32  n, preferred size in bits of the group the server will send
//
// Only the server decodes it (the client sends KexDHGexRequest), so it has
// no Marshal.
type KexDHGexRequestOld struct {
	N uint32
}

// Unmarshal decodes p.
func (m *KexDHGexRequestOld) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexDHGexRequestOld)
	n := r.Field("n").Uint32()
	if err := r.Err(); err != nil {
		return err
	}
	m.N = n
	return nil
}

// KexDHGexGroup is SSH_MSG_KEX_DH_GEX_GROUP (RFC 4419 §5):
//
//	byte    SSH_MSG_KEX_DH_GEX_GROUP
//	mpint   p, safe prime
//	mpint   g, generator for subgroup in GF(p)
type KexDHGexGroup struct {
	P, G *big.Int
}

// Marshal appends the payload to b (nil values encode as zero).
func (m *KexDHGexGroup) Marshal(b []byte) []byte {
	b = append(b, MsgKexDHGexGroup)
	b = AppendMpint(b, m.P)
	return AppendMpint(b, m.G)
}

// Unmarshal decodes p. Group size and primality checks belong to the kex
// package.
func (m *KexDHGexGroup) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexDHGexGroup)
	pp := r.Field("p").Mpint()
	g := r.Field("g").Mpint()
	if err := r.Err(); err != nil {
		return err
	}
	*m = KexDHGexGroup{P: pp, G: g}
	return nil
}

// KexDHGexInit is SSH_MSG_KEX_DH_GEX_INIT (RFC 4419 §5):
//
//	byte    SSH_MSG_KEX_DH_GEX_INIT
//	mpint   e
type KexDHGexInit struct {
	E *big.Int
}

// Marshal appends the payload to b (a nil E encodes as zero).
func (m *KexDHGexInit) Marshal(b []byte) []byte {
	b = append(b, MsgKexDHGexInit)
	return AppendMpint(b, m.E)
}

// Unmarshal decodes p.
func (m *KexDHGexInit) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgKexDHGexInit)
	e := r.Field("e").Mpint()
	if err := r.Err(); err != nil {
		return err
	}
	m.E = e
	return nil
}

// KexDHGexReply is SSH_MSG_KEX_DH_GEX_REPLY (RFC 4419 §5):
//
//	byte    SSH_MSG_KEX_DH_GEX_REPLY
//	string  server public host key and certificates (K_S)
//	mpint   f
//	string  signature of H
type KexDHGexReply struct {
	HostKey   []byte // aliases the payload after Unmarshal
	F         *big.Int
	Signature []byte // aliases the payload after Unmarshal
}

// Marshal appends the payload to b (a nil F encodes as zero).
func (m *KexDHGexReply) Marshal(b []byte) []byte {
	return appendDHReply(b, MsgKexDHGexReply, m.HostKey, m.F, m.Signature)
}

// Unmarshal decodes p.
func (m *KexDHGexReply) Unmarshal(p []byte) error {
	ks, f, sig, err := parseDHReply(p, MsgKexDHGexReply)
	if err != nil {
		return err
	}
	*m = KexDHGexReply{HostKey: ks, F: f, Signature: sig}
	return nil
}
