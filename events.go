package sshtap

import (
	"fmt"
	"slices"
	"time"

	"sshtap/cipher"
	"sshtap/kex"
)

// Kind is a set of event kinds, used to choose what a Subscription receives.
// Kinds combine with |.
type Kind uint64

// Event kinds. LaggedEvent and ClosedEvent are delivered to every
// subscription whatever its kinds.
const (
	KindIgnore        Kind = 1 << iota // *IgnoreEvent
	KindDebug                          // *DebugEvent
	KindDisconnect                     // *DisconnectEvent
	KindMACMismatch                    // *MACMismatchEvent
	KindKexStart                       // *KexStartEvent
	KindKex                            // *KexEvent
	KindBannerLine                     // *BannerLineEvent
	KindUnimplemented                  // *UnimplementedEvent
	KindExtInfo                        // *ExtInfoEvent
	KindPing                           // *PingEvent
	KindX11Open                        // *X11OpenEvent
	KindLagged                         // *LaggedEvent (always delivered)
	KindClosed                         // *ClosedEvent (always delivered)
	KindAuthBanner                     // *AuthBannerEvent
	KindUserAuth                       // *UserAuthEvent
	KindHostKeys                       // *HostKeysEvent
	KindGlobalRequest                  // *GlobalRequestEvent
	KindAgentRequest                   // *AgentRequestEvent (published by agent proxies)
	KindHostKeyProof                   // *HostKeyProofEvent

	// KindAll selects every kind.
	KindAll Kind = 1<<iota - 1
)

var kindNames = []string{
	"ignore", "debug", "disconnect", "mac-mismatch", "kex-start", "kex", "banner-line",
	"unimplemented", "ext-info", "ping", "x11-open", "lagged", "closed",
	"auth-banner", "user-auth", "host-keys", "global-request", "agent-request",
	"host-key-proof",
}

// String names a single kind ("debug") or lists a set ("debug|kex").
func (k Kind) String() string {
	if k == 0 {
		return "none"
	}
	s := ""
	for i, n := range kindNames {
		if k&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	if rest := k &^ KindAll; rest != 0 {
		if s != "" {
			s += "|"
		}
		s += fmt.Sprintf("%#x", uint64(rest))
	}
	return s
}

// Event is one thing that happened on a connection. The set is sealed: every
// Event is one of the *XxxEvent types of this package. Events are immutable
// copies; nothing in them aliases a packet buffer.
type Event interface {
	Kind() Kind
	// When is the time the event happened.
	When() time.Time
	sealed()
}

// Header is embedded in every event.
type Header struct {
	Time time.Time
}

// When returns the event's time.
func (h *Header) When() time.Time { return h.Time }
func (*Header) sealed()           {}

// MaxEventData is how much of a peer's IGNORE data or DEBUG message an
// event carries: a peer may send them as large as a packet, as often as it
// likes, and a slow subscriber must not make the Conn hold all of it.
const MaxEventData = 256

// IgnoreEvent reports an SSH_MSG_IGNORE received from the peer (RFC 4253
// §11.2).
type IgnoreEvent struct {
	Header
	// Data is the ignored data, without its length prefix: all of it, or
	// its first MaxEventData bytes when Length is larger.
	Data   []byte
	Length int // the data's length on the wire
}

// DebugEvent reports an SSH_MSG_DEBUG received from the peer (RFC 4253
// §11.3).
type DebugEvent struct {
	Header
	AlwaysDisplay bool
	// Message is the message, or its first MaxEventData bytes (cut at a
	// UTF-8 character boundary) when Length is larger.
	Message  string
	Length   int // the message's length on the wire
	Language string
}

// DisconnectEvent reports an SSH_MSG_DISCONNECT, received (Remote) or sent by
// this side (RFC 4253 §11.1).
type DisconnectEvent struct {
	Header
	Reason   DisconnectReason
	Message  string
	Language string
	Remote   bool
}

// MACVerdict is what the MAC policy decides for a packet whose MAC or AEAD
// tag did not verify.
type MACVerdict uint8

const (
	// MACDisconnect sends SSH_MSG_DISCONNECT with reason MAC_ERROR and ends the
	// connection with a *MACError. It is the default.
	MACDisconnect MACVerdict = iota
	// MACDiscard drops the packet and keeps the connection. The inbound
	// sequence number and the cipher state still advance.
	MACDiscard
	// MACAccept processes the packet as if it were authentic.
	MACAccept
)

func (v MACVerdict) String() string {
	switch v {
	case MACDisconnect:
		return "disconnect"
	case MACDiscard:
		return "discard"
	case MACAccept:
		return "accept"
	}
	return fmt.Sprintf("MACVerdict(%d)", uint8(v))
}

// MACMismatch describes an inbound packet that failed authentication. It is
// what Config.MACPolicy decides on.
//
// What the verdicts can mean depends on the mode:
//
//   - Classic Encrypt-and-MAC (aes*-ctr with hmac-*): the packet, length
//     included, was decrypted before the MAC over the plaintext was checked.
//     MACAccept delivers that plaintext; MACDiscard drops it. Either way the CTR
//     keystream stays in step because the whole packet was consumed.
//   - Encrypt-then-MAC (*-etm@openssh.com): the length travels in clear and
//     the MAC covers it and the ciphertext. MACAccept decrypts the body anyway;
//     MACDiscard skips it, the CTR keystream still advancing.
//   - AEAD (chacha20-poly1305@openssh.com, aes*-gcm@openssh.com): the tag
//     covers length and body. MACAccept decrypts without authentication;
//     MACDiscard drops it; the GCM invocation counter still advances.
//
// In every mode the packet was framed with a length that was used before the
// tag could be checked. If the corruption hit the length itself, the framing
// of this packet and of the stream after it is lost: MACDiscard or MACAccept then
// lead to a later failure, usually a bad packet length. A length that is
// invalid outright (too large, misaligned) is reported with
// LengthAuthenticated false; no tag could be checked, the policy is not
// consulted and the verdict is always MACDisconnect.
type MACMismatch struct {
	Seq    uint32 // inbound sequence number of the packet
	Length uint32 // packet_length as read from the wire (after decryption)
	Cipher string
	MAC    string // "" for AEAD ciphers
	Mode   cipher.Mode
	// LengthAuthenticated is true when a tag covering the framed length was
	// computed and did not match; false when the length itself was invalid.
	LengthAuthenticated bool
}

// MACMismatchEvent reports a packet that failed authentication and what the
// policy decided.
type MACMismatchEvent struct {
	Header
	MACMismatch
	Verdict MACVerdict
}

// Algorithms are the algorithms negotiated by a key exchange.
type Algorithms struct {
	Kex            string
	HostKey        string
	ClientToServer DirectionAlgorithms
	ServerToClient DirectionAlgorithms
}

// Legacy lists the negotiated algorithms that are legacy (kex.IsLegacy,
// cipher.IsLegacy: SHA-1 key exchange and ssh-rsa, CBC ciphers, hmac-md5,
// hmac-sha1-96), which are negotiated only when configured: the kex
// method, the host key algorithm, then each direction's cipher and MAC,
// each name once. Nil when there is none.
func (a Algorithms) Legacy() []string {
	var out []string
	for _, n := range []string{a.Kex, a.HostKey, a.ClientToServer.Cipher, a.ClientToServer.MAC,
		a.ServerToClient.Cipher, a.ServerToClient.MAC} {
		if (kex.IsLegacy(n) || cipher.IsLegacy(n)) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// DirectionAlgorithms are the algorithms protecting one direction.
type DirectionAlgorithms struct {
	Cipher      string
	MAC         string // "" for AEAD ciphers, which need none
	Compression string
}

// KexStartEvent reports that a key exchange began: this side sent or
// received the first KEXINIT of a new exchange.
type KexStartEvent struct {
	Header
	Initial bool // the first key exchange of the connection
	Remote  bool // the peer's KEXINIT came first
}

// KexEvent reports a completed key exchange: both NEWKEYS were exchanged and
// the new keys protect both directions.
type KexEvent struct {
	Header
	Initial    bool
	Strict     bool // strict kex (kex-strict-*-v00@openssh.com) is in force
	Algorithms Algorithms
	Duration   time.Duration // from the first KEXINIT to the peer's NEWKEYS
	HostKey    []byte        // the server's host key blob (K_S)
	// Legacy names the negotiated algorithms that are legacy
	// (Algorithms.Legacy); nil when there is none.
	Legacy []string
}

// BannerLineEvent reports a line the server sent before its identification
// string (RFC 4253 §4.2), such as OpenSSH's "Exceeded MaxStartups".
type BannerLineEvent struct {
	Header
	Line string // without the line terminator
}

// UnimplementedEvent reports an SSH_MSG_UNIMPLEMENTED: received from the
// peer (Remote, naming our packet Seq) or sent by this side for a message
// type it does not know (Type).
type UnimplementedEvent struct {
	Header
	Seq    uint32
	Type   byte // the unknown message type (local only)
	Remote bool
}

// ExtInfoEvent reports the peer's SSH_MSG_EXT_INFO (RFC 8308).
type ExtInfoEvent struct {
	Header
	Extensions []Extension
}

// Extension is one EXT_INFO entry.
type Extension struct {
	Name  string
	Value []byte
}

// PingEvent reports a completed ping@openssh.com round trip.
type PingEvent struct {
	Header
	RTT time.Duration
}

// LaggedEvent says that Dropped events were dropped since the previous event
// because the subscription was full.
type LaggedEvent struct {
	Header
	Dropped uint64
}

// ClosedEvent is the last event of every subscription. Err says why it
// ended: a *DisconnectError for a peer disconnect, the I/O or protocol error,
// net.ErrClosed for a local close, or the subscription context's error.
type ClosedEvent struct {
	Header
	Err error
}

// AuthBannerEvent reports an SSH_MSG_USERAUTH_BANNER (RFC 4252 §5.4). The
// message is as sent; filter control characters before displaying it.
type AuthBannerEvent struct {
	Header
	Message  string
	Language string
}

// AuthResult is the outcome of one user authentication attempt.
type AuthResult uint8

const (
	AuthFailure AuthResult = iota
	AuthPartialSuccess
	AuthSuccess
)

func (r AuthResult) String() string {
	switch r {
	case AuthFailure:
		return "failure"
	case AuthPartialSuccess:
		return "partial-success"
	case AuthSuccess:
		return "success"
	}
	return fmt.Sprintf("AuthResult(%d)", uint8(r))
}

// UserAuthEvent reports one user authentication attempt (RFC 4252): on a
// client, each request it made; on a server, each request it decided. An
// accepted publickey query (answered PK_OK) is not an attempt; a rejected
// one is reported as a failure, since it counts against MaxAuthTries.
type UserAuthEvent struct {
	Header
	User      string
	Method    string // "none", "password", "publickey", "keyboard-interactive", ...
	Algorithm string // publickey: the signature algorithm
	Result    AuthResult
	Remaining []string // the methods that can continue, after a failure
	Err       string   // on a server, why a callback refused (not sent to the client); on a client, why a key could not sign
}

// HostKeysEvent reports the host keys a server announced after
// authentication (hostkeys-00@openssh.com), for host key rotation.
type HostKeysEvent struct {
	Header
	Keys [][]byte // key blobs, as sent
}

// HostKeyProofEvent reports the outcome of Conn.ProveHostKeys
// (hostkeys-prove-00@openssh.com): the keys the client asked the server to
// prove and whether every signature checked out. Err says why not; only
// proven keys may be trusted.
type HostKeyProofEvent struct {
	Header
	Keys   [][]byte // key blobs asked about, in the request's order
	Proven bool
	Err    string
}

// GlobalRequestEvent reports a global request from the peer (RFC 4254 §4)
// and whether it was handled.
type GlobalRequestEvent struct {
	Header
	Name      string
	WantReply bool
	Handled   bool
}

// AgentRequestEvent reports one ssh-agent request that came over a
// forwarded agent channel (auth-agent@openssh.com) and what was done with
// it. Package agentproxy publishes them through Conn.NotifyAgentRequest.
type AgentRequestEvent struct {
	Header
	Request   string // "list", "sign", "add", "remove", "remove-all", "lock", "unlock", "extension", "unknown"
	Key       string // SHA256 fingerprint of the key concerned, if any
	Flags     uint32 // sign flags (SSH_AGENT_RSA_SHA2_256 = 2, _512 = 4)
	Extension string // extension name (e.g. session-bind@openssh.com)
	Allowed   bool   // false: the policy denied it and SSH_AGENT_FAILURE was sent
	Err       string // the backing agent's error, if any
}

// NotifyAgentRequest publishes ev to the Conn's subscriptions that want
// KindAgentRequest; it never blocks. It is the hook through which an agent
// proxy serving this Conn's forwarded agent channels (package agentproxy)
// reports their requests. A zero ev.Time is set to now.
func (c *Conn) NotifyAgentRequest(ev AgentRequestEvent) {
	if !c.hub.wants(KindAgentRequest) {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	c.hub.publish(&ev)
}

func (*AgentRequestEvent) Kind() Kind  { return KindAgentRequest }
func (*AuthBannerEvent) Kind() Kind    { return KindAuthBanner }
func (*UserAuthEvent) Kind() Kind      { return KindUserAuth }
func (*HostKeysEvent) Kind() Kind      { return KindHostKeys }
func (*HostKeyProofEvent) Kind() Kind  { return KindHostKeyProof }
func (*GlobalRequestEvent) Kind() Kind { return KindGlobalRequest }
func (*IgnoreEvent) Kind() Kind        { return KindIgnore }
func (*DebugEvent) Kind() Kind         { return KindDebug }
func (*DisconnectEvent) Kind() Kind    { return KindDisconnect }
func (*MACMismatchEvent) Kind() Kind   { return KindMACMismatch }
func (*KexStartEvent) Kind() Kind      { return KindKexStart }
func (*KexEvent) Kind() Kind           { return KindKex }
func (*BannerLineEvent) Kind() Kind    { return KindBannerLine }
func (*UnimplementedEvent) Kind() Kind { return KindUnimplemented }
func (*ExtInfoEvent) Kind() Kind       { return KindExtInfo }
func (*PingEvent) Kind() Kind          { return KindPing }
func (*LaggedEvent) Kind() Kind        { return KindLagged }
func (*ClosedEvent) Kind() Kind        { return KindClosed }
