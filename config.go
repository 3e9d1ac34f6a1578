package sshtap

import (
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/kex"
	"sshtap/packet"
)

// TransportConfig holds the transport settings shared by clients and servers.
// The zero value is usable: every empty field takes its documented default.
// A config must not be modified while a Conn uses it.
type TransportConfig struct {
	// KexAlgorithms, HostKeyAlgorithms, Ciphers and MACs are the algorithm
	// lists offered, most preferred first. Empty means the defaults
	// (kex.DefaultKexAlgos, kex.DefaultHostKeyAlgos, cipher.DefaultCiphers,
	// cipher.DefaultMACs). A list may use OpenSSH's modifiers
	// (kex.ExpandAlgorithms): []string{"+aes128-cbc"} is the defaults plus
	// aes128-cbc, "-" removes names or patterns from the defaults and "^"
	// puts names first. Legacy algorithms (kex.IsLegacy, cipher.IsLegacy:
	// SHA-1 key exchange and ssh-rsa, CBC ciphers, hmac-md5,
	// hmac-sha1-96) are never in the defaults and are offered only when
	// named here in full: a pattern such as "aes*" stands for default
	// names only. Unknown names are an error at handshake time.
	//
	// On a server, HostKeyAlgorithms is further limited to what its
	// HostKeys can serve; naming ssh-rsa (or its certificate form) here
	// offers SHA-1 signatures with an RSA host key, as AllowSHA1RSA does.
	KexAlgorithms     []string
	HostKeyAlgorithms []string
	Ciphers           []string
	MACs              []string

	// MACPolicy decides what happens to an inbound packet whose MAC or AEAD
	// tag fails. It runs on the transport goroutine, which reads nothing
	// until it returns: it should return quickly. It may call Close,
	// Disconnect and the Conn's getters; a call that waits for the peer
	// (Ping, Rekey, a request with a reply) cannot complete before the
	// policy returns. Nil means always MACDisconnect. With a legacy CBC
	// cipher and a classic (non-ETM) MAC, the verdict is always
	// MACDisconnect, reported only once the largest packet's worth of bytes
	// has arrived, as for a bad packet length (cipher.LengthOracle).
	MACPolicy func(MACMismatch) MACVerdict

	// RekeyBytes starts a new key exchange after this many bytes in either
	// direction. Zero means the RFC 4344 §3.2 limit for the cipher
	// (2^32 blocks for AES, 1 GiB otherwise), capped at 1 GiB as RFC 4253 §9
	// recommends. Rekeying also happens after 2^31 packets (RFC 4344 §3.1).
	RekeyBytes uint64
	// RekeyInterval starts a new key exchange after this much time since
	// the last one. Zero means one hour (RFC 4253 §9); negative disables it.
	RekeyInterval time.Duration

	// MaxPacket is the largest inbound packet_length accepted. Zero means
	// 256 KiB, as OpenSSH.
	MaxPacket int

	// Version is the software version part of our identification string
	// ("SSH-2.0-" + Version). Empty means "sshtap_0.1".
	Version string

	// Rand is the source of randomness. Nil means crypto/rand.
	Rand io.Reader

	// EventBuffer is the default subscription buffer. Zero means
	// DefaultEventBuffer.
	EventBuffer int

	// ChannelWindow is the receive window advertised for each channel
	// (RFC 4254 §5.2), which bounds the data buffered per channel. Zero
	// means DefaultChannelWindow; it is capped at 2^32-1.
	ChannelWindow int
	// ChannelMaxPacket is the largest data packet the peer may send on a
	// channel. Zero means DefaultChannelMaxPacket, or 32 KiB when the peer
	// is OpenSSH (whose RekeyLimit accounting starts key exchanges early by
	// the size of its packets, so larger ones cost extra key exchanges);
	// it is capped to fit MaxPacket. What we send never exceeds the peer's
	// own maximum.
	ChannelMaxPacket int

	// ChannelHandlers handle the peer's channel opens by channel type
	// (RFC 4254 §5.1), each call in its own goroutine; the handler must
	// call Accept or Reject (from any goroutine) before it returns: an
	// open it leaves undecided is rejected with OpenProhibited when it
	// returns (see NewChannel). Types without a handler are rejected with
	// OpenUnknownChannelType. Built-in handlers (such as "session" on a
	// server) take precedence.
	ChannelHandlers map[string]func(*NewChannel)

	// ChannelOpenTimeout bounds how long a peer's channel open waits for
	// its handler's Accept or Reject: then it is rejected with
	// OpenResourceShortage, and Accept and Reject return an error. It
	// applies to built-in handlers too (a forwarded connection that no
	// Listener Accept takes, an X11 open nobody decides). Zero means
	// DefaultChannelOpenTimeout; negative means no bound (an open then
	// waits as long as its handler runs).
	ChannelOpenTimeout time.Duration

	// Compression lists the compression methods offered, in order of
	// preference: CompressionZlibSSH ("zlib@openssh.com", which starts once
	// user authentication succeeded), CompressionZlib ("zlib", from the
	// key exchange on) and CompressionNone. Nil means "none". A server
	// that lists "none" first compresses when the client prefers it, as
	// sshd does ("none,zlib@openssh.com"). A payload that inflates beyond
	// MaxPacket ends the connection with a *CompressionError. With
	// compression on, a MACPolicy verdict other than MACDisconnect is not
	// followed: a packet missing from (or corrupt in) the stream would
	// spoil every later one.
	Compression []string

	// PeerKexLimit bounds the key exchanges the peer starts: at most this
	// many a minute (and as many at once) among those that follow less
	// than 256 KiB of traffic since the previous exchange; past it the
	// peer is disconnected (PROTOCOL_ERROR). Exchanges after more traffic,
	// as OpenSSH's RekeyLimit starts them, are not counted, unless the
	// connection uses a finite-field Diffie-Hellman group (whose cost no
	// traffic pays for). Zero means
	// DefaultPeerKexLimit on a server and no limit on a client; negative
	// means no limit.
	PeerKexLimit int

	// MaxChannels bounds the channels the peer has open at once on this
	// connection, its opens still waiting for a decision included; more
	// opens are refused with OpenResourceShortage. Zero means
	// DefaultMaxChannels on a server and no bound on a client; negative
	// means no bound. Pending opens stay bounded at 256 either way.
	MaxChannels int

	// GlobalRequestHandler handles the peer's global requests (RFC 4254 §4)
	// that are not handled built-in. It runs off the transport goroutine,
	// one request at a time in arrival order, so it may block (channel
	// data keeps flowing; requests arriving meanwhile wait, up to 64, then
	// are refused) and may call any Conn method, Close included. It must
	// Reply when WantReply is set (later, from any goroutine, is fine);
	// replies go out in request order. Nil refuses them (REQUEST_FAILURE).
	GlobalRequestHandler func(*Request)
}

// Config configures a client connection.
type Config struct {
	TransportConfig

	// HostKeyCallback checks the server's host key; it is required.
	// knownhosts.New returns a suitable one; ssh.InsecureIgnoreHostKey
	// accepts any key. It is called on the transport goroutine, during the
	// first key exchange, with the address given to Dial (or Config.Addr)
	// and the remote address of the underlying connection when it has one.
	// It may block (say, to ask a user) and may call Close or Disconnect;
	// calls that wait for the handshake cannot complete before it returns.
	HostKeyCallback ssh.HostKeyCallback

	// Addr is the "host:port" passed to HostKeyCallback when the connection
	// is made by NewClientConn or Client rather than Dial.
	Addr string

	// NoServiceRequest makes the handshake stop after the key exchange
	// instead of requesting the "ssh-userauth" service.
	NoServiceRequest bool

	// NoAuth makes the handshake stop once the server accepted the
	// "ssh-userauth" service, without authenticating: a transport-only
	// connection, for probing servers (no connection protocol is possible).
	NoAuth bool

	// User is the user name to authenticate as.
	User string

	// Auth are the authentication methods, tried in order (each only if
	// the server still lists it), after "none".
	Auth []AuthMethod

	// PublicKeyAlgorithms are the signature algorithms publickey
	// authentication may use (OpenSSH's PubkeyAcceptedAlgorithms), with
	// the modifiers of TransportConfig.Ciphers: "+ssh-rsa" lets RSA keys
	// sign with SHA-1 for servers that know nothing better. A certificate
	// counts as the algorithm of its key. Empty means no restriction
	// beyond never choosing ssh-rsa for a key that can sign rsa-sha2-*;
	// names outside SupportedPublicKeyAlgorithms are an error.
	PublicKeyAlgorithms []string

	// BannerCallback, if set, is called with each SSH_MSG_USERAUTH_BANNER
	// message (they are also published as *AuthBannerEvent). It runs on
	// the goroutine that called Handshake (or Dial), during user
	// authentication, and may call any Conn method, Close included.
	BannerCallback func(message string)

	// KeepAlive configures keepalive probes (keepalive@openssh.com or
	// ping@openssh.com), like OpenSSH's ServerAliveInterval and
	// ServerAliveCountMax; the zero value sends none. See KeepAlive.
	KeepAlive KeepAlive

	// X11Timeout bounds how long an *X11OpenEvent waits for Accept or
	// Reject before it is rejected. Zero means DefaultX11Timeout.
	// TransportConfig.ChannelOpenTimeout bounds it too.
	X11Timeout time.Duration

	// AgentHandler serves forwarded agent connections
	// ("auth-agent@openssh.com" channels, after Session.RequestAgentForwarding):
	// it gets each channel on its own goroutine and owns it. Nil rejects
	// agent opens.
	AgentHandler func(ch *Channel)
}

// ServerConfig configures a server connection.
type ServerConfig struct {
	TransportConfig

	// HostKeys are the server's host keys; at least one is required.
	// ssh.Signer values from ssh.ParsePrivateKey or ssh.NewSignerFromKey
	// work as they are; certificate signers (ssh.NewCertSigner) offer the
	// *-cert-v01@openssh.com algorithms.
	HostKeys []ssh.Signer

	// PublicKeyAlgorithms are the signature algorithms accepted for
	// publickey authentication and announced in server-sig-algs (RFC 8308
	// §3.1), with the modifiers of TransportConfig.Ciphers; a certificate
	// counts as the algorithm of its key. Empty means
	// DefaultServerPublicKeyAlgorithms; "+ssh-rsa" also accepts SHA-1 RSA
	// signatures from old clients.
	PublicKeyAlgorithms []string

	// AllowSHA1RSA also offers the legacy ssh-rsa (SHA-1) host key
	// signature algorithm (as does naming it in HostKeyAlgorithms).
	AllowSHA1RSA bool

	// GexGroups are the groups offered for diffie-hellman-group-exchange
	// (see kex.ParseModuli for /etc/ssh/moduli). Nil means the RFC 3526
	// groups built into package kex.
	GexGroups []kex.GexGroup

	// NoClientAuth lets clients in without authentication ("none"
	// succeeds).
	NoClientAuth bool

	// PasswordCallback, PublicKeyCallback and KeyboardInteractiveCallback
	// decide the password, publickey and keyboard-interactive methods
	// (RFC 4252 §7, §8, RFC 4256); a nil callback disables its method.
	// They run on the goroutine that called Handshake (NewServerConn) and
	// may block and call any Conn method, Close included.
	PasswordCallback            func(meta ConnMetadata, password []byte) (*Permissions, error)
	PublicKeyCallback           func(meta ConnMetadata, key ssh.PublicKey) (*Permissions, error)
	KeyboardInteractiveCallback func(meta ConnMetadata, challenge KeyboardInteractiveChallenge) (*Permissions, error)

	// Banner is sent to the client before the first authentication reply.
	Banner string

	// ForwardPermission decides forwarding requests from the client: kind
	// is "direct-tcpip" or "direct-streamlocal" (addr is the target
	// "host:port" or socket path), "tcpip-forward" or "streamlocal-forward"
	// (addr is what the server would listen on). It runs on its own
	// goroutine. Nil denies everything.
	ForwardPermission func(meta ConnMetadata, kind string, addr string) bool

	// MaxAuthTries is the number of failed authentication attempts after
	// which the server disconnects. Zero means 6 (OpenSSH's default).
	MaxAuthTries int

	// MaxSessions bounds the "session" channels a client has open at once
	// on one connection (pending ones included); more are refused with
	// OpenResourceShortage. Zero means DefaultMaxSessions (OpenSSH's
	// MaxSessions); negative means no bound other than MaxChannels.
	MaxSessions int

	// LoginGraceTime bounds the time from the Conn's creation (ServerConn;
	// for a Server, the accept) to a successful authentication: version
	// exchange, first key exchange and user authentication. A client
	// still short of it then is disconnected and the Conn's error is a
	// *LoginGraceError naming the stage it stalled in. Zero means two
	// minutes (OpenSSH's default).
	LoginGraceTime time.Duration

	// SessionHandler serves "session" channels (RFC 4254 §6): it is called
	// in its own goroutine for each session once the client asked for a
	// shell, a command or a subsystem. Nil rejects session opens
	// (administratively prohibited).
	SessionHandler func(s *ServerSession)

	// AllowSessionRequest, if set, decides each session request before it
	// is granted: typ is "pty-req", "x11-req", "auth-agent-req@openssh.com",
	// "env", "shell", "exec" or "subsystem", and detail the environment
	// variable's name, the command, or the subsystem's name ("" for the
	// others). A refused request is answered CHANNEL_FAILURE (RFC 4254
	// §5.4) and leaves the session as it was; a refused shell, exec or
	// subsystem does not start the handler, and the client may ask again.
	// It runs on the session channel's request goroutine (see
	// Channel.HandleRequests), one request at a time: it may block (other
	// channels keep flowing) and may call any Conn method, Close included.
	// For env,
	// detail is the name only. It applies to sessions served through
	// SessionHandler, not to raw "session" channels taken with
	// TransportConfig.ChannelHandlers. Nil grants every well-formed request.
	AllowSessionRequest func(meta ConnMetadata, typ, detail string) bool

	// NoHostKeyAnnouncement turns off hostkeys-00@openssh.com: by default
	// a server sends all its host keys after user authentication, as sshd
	// does, so that clients can learn new ones (OpenSSH's UpdateHostKeys)
	// and have them proven (hostkeys-prove-00@openssh.com, always
	// answered).
	NoHostKeyAnnouncement bool

	// Preamble lines are sent before the identification string
	// (RFC 4253 §4.2 allows servers to do so); clients report them as
	// BannerLineEvents. They must not start with "SSH-".
	Preamble []string
}

func (c *TransportConfig) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *TransportConfig) version() string {
	v := "sshtap_0.1"
	if c.Version != "" {
		v = c.Version
	}
	return "SSH-2.0-" + v
}

// Defaults for TransportConfig.MaxChannels and ServerConfig.MaxSessions.
const (
	DefaultMaxChannels = 1024
	DefaultMaxSessions = 10
	// DefaultPeerKexLimit is TransportConfig.PeerKexLimit's default.
	DefaultPeerKexLimit = 30
)

func (c *TransportConfig) peerKexLimit(isClient bool) int {
	switch {
	case c.PeerKexLimit < 0, c.PeerKexLimit == 0 && isClient:
		return 0
	case c.PeerKexLimit == 0:
		return DefaultPeerKexLimit
	}
	return c.PeerKexLimit
}

func (c *TransportConfig) maxChannels(isClient bool) int {
	switch {
	case c.MaxChannels < 0, c.MaxChannels == 0 && isClient:
		return math.MaxInt
	case c.MaxChannels == 0:
		return DefaultMaxChannels
	}
	return c.MaxChannels
}

func (c *ServerConfig) maxSessions() int {
	switch {
	case c.MaxSessions < 0:
		return math.MaxInt
	case c.MaxSessions == 0:
		return DefaultMaxSessions
	}
	return c.MaxSessions
}

func (c *TransportConfig) maxPacket() int {
	if c.MaxPacket > 0 {
		return c.MaxPacket
	}
	return packet.DefaultMaxPacket
}

func (c *TransportConfig) rekeyInterval() time.Duration {
	switch {
	case c.RekeyInterval < 0:
		return 0
	case c.RekeyInterval == 0:
		return time.Hour
	}
	return c.RekeyInterval
}

// rekeyBytes is the byte budget of one set of keys.
func (c *TransportConfig) rekeyBytes() uint64 {
	if c.RekeyBytes > 0 {
		return c.RekeyBytes
	}
	// RFC 4344 §3.2: 2^(L/4) blocks for an L-bit block cipher; AES (L=128)
	// allows 2^32 blocks of 16 bytes. RFC 4253 §9 recommends 1 GB, which is
	// the smaller, so it is the default for every cipher, as OpenSSH does
	// for chacha20-poly1305 (block size 8).
	return 1 << 30
}

func orDefault(list, def []string) []string {
	if len(list) > 0 {
		return list
	}
	return def
}

// expandAlgorithms resolves one configured algorithm list (field names it
// in the error).
func expandAlgorithms(field string, spec, def, supported []string) ([]string, error) {
	l, err := kex.ExpandAlgorithms(spec, def, supported)
	if err != nil {
		return nil, fmt.Errorf("sshtap: %s: %w", field, err)
	}
	return l, nil
}

// DefaultPublicKeyAlgorithms are the signature algorithms a client's
// publickey authentication chooses from when Config.PublicKeyAlgorithms
// is set with a modifier; SupportedPublicKeyAlgorithms adds the legacy
// ssh-rsa (SHA-1).
var (
	DefaultPublicKeyAlgorithms = []string{
		ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
	SupportedPublicKeyAlgorithms = append(slices.Clone(DefaultPublicKeyAlgorithms), ssh.KeyAlgoRSA)
)

// DefaultServerPublicKeyAlgorithms are the signature algorithms a server
// accepts for publickey authentication by default;
// SupportedServerPublicKeyAlgorithms adds the legacy ssh-rsa (SHA-1).
var (
	DefaultServerPublicKeyAlgorithms = []string{
		ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
	SupportedServerPublicKeyAlgorithms = append(slices.Clone(DefaultServerPublicKeyAlgorithms), ssh.KeyAlgoRSA)
)

// publicKeyAlgorithms resolves ServerConfig.PublicKeyAlgorithms.
func (c *ServerConfig) publicKeyAlgorithms() ([]string, error) {
	return expandAlgorithms("PublicKeyAlgorithms", c.PublicKeyAlgorithms, DefaultServerPublicKeyAlgorithms, SupportedServerPublicKeyAlgorithms)
}

func (c *TransportConfig) hostKeyAlgorithms() ([]string, error) {
	return expandAlgorithms("HostKeyAlgorithms", c.HostKeyAlgorithms, kex.DefaultHostKeyAlgos, kex.SupportedHostKeyAlgos)
}

func (c *TransportConfig) proposal(hostKeyAlgos []string) (*kex.Proposal, error) {
	kx, err := expandAlgorithms("KexAlgorithms", c.KexAlgorithms, kex.DefaultKexAlgos, kex.SupportedKexAlgos)
	if err != nil {
		return nil, err
	}
	ciphers, err := expandAlgorithms("Ciphers", c.Ciphers, cipher.DefaultCiphers, cipher.SupportedCiphers)
	if err != nil {
		return nil, err
	}
	macs, err := expandAlgorithms("MACs", c.MACs, cipher.DefaultMACs, cipher.SupportedMACs)
	if err != nil {
		return nil, err
	}
	return &kex.Proposal{
		Kex:         kx,
		HostKey:     hostKeyAlgos,
		Ciphers:     ciphers,
		MACs:        macs,
		Compression: orDefault(c.Compression, []string{CompressionNone}),
	}, nil
}
