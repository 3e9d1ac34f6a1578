package sshtap

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"sshtap/cipher"
	"sshtap/internal/wire"
	"sshtap/kex"
)

// Tests for peers whose KEXINIT name-lists carry empty names: libssh 0.10
// clients end each list with a comma ("aes256-ctr,aes128-ctr,"), which
// RFC 4251 §5 forbids ("A name MUST have a non-zero length") but OpenSSH's
// sshd tolerates. sshtap drops the empty names for negotiation and hashes
// the KEXINIT exactly as received.

// klShapes are the ways a test spoils the lists of the hand peer's KEXINIT.
var klShapes = []struct {
	name string
	edit func(names []string) string
}{
	{"trailing", func(n []string) string { return strings.Join(n, ",") + "," }},
	{"leading-and-doubled", func(n []string) string { return "," + strings.Join(n, ",,") }},
}

// klKexInit builds the hand peer's initial KEXINIT with every one of its
// ten name-lists (languages included) written by edit, and records it as
// the payload the peer hashes. The lists offer two ciphers and two MACs so
// that the negotiated ones show whose order won.
func klKexInit(p *hpPeer, edit func(names []string) string) []byte {
	role := kex.Client
	if p.server {
		role = kex.Server
	}
	prop := kex.Proposal{
		Kex:     []string{kex.Curve25519SHA256, kex.ECDHP256},
		HostKey: []string{kex.HostKeyED25519},
		Ciphers: []string{cipher.AES256CTR, cipher.AES128CTR},
		MACs:    []string{cipher.HMACSHA256ETM, cipher.HMACSHA256},
	}
	m, err := prop.KexInit(role, true, nil)
	if err != nil {
		p.t.Fatalf("hand peer KEXINIT: %v", err)
	}
	b := append([]byte{wire.MsgKexInit}, m.Cookie[:]...)
	for _, l := range [][]string{
		m.KexAlgos, m.HostKeyAlgos, m.CiphersClientServer, m.CiphersServerClient,
		m.MACsClientServer, m.MACsServerClient, m.CompressionClientServer, m.CompressionServerClient,
		m.LanguagesClientServer, m.LanguagesServerClient,
	} {
		b = wire.AppendString(b, edit(l))
	}
	b = wire.AppendBool(b, false)
	p.ourInit = wire.AppendUint32(b, 0)
	return p.ourInit
}

func klWantAlgorithms(t *testing.T, who string, c *Conn, want Algorithms) {
	t.Helper()
	if got := c.Algorithms(); got != want {
		t.Errorf("%s: Algorithms() = %+v\nwant %+v", who, got, want)
	}
	// The strict kex marker is found among the stray commas too.
	if !c.Strict() {
		t.Errorf("%s: Strict() = false, the peer's KEXINIT offers it", who)
	}
}

// TestKexInitStrayCommasServer: a client KEXINIT with empty names in every
// list (libssh 0.10's trailing comma, and leading and doubled commas) is
// accepted by the server; the handshake completes through NEWKEYS,
// EXT_INFO (the client's ext-info-c is seen) and SERVICE_ACCEPT under the
// new keys, which both sides could only derive from the same exchange hash
// over the KEXINIT as sent.
func TestKexInitStrayCommasServer(t *testing.T) {
	for _, shape := range klShapes {
		t.Run(shape.name, func(t *testing.T) {
			gotExtInfo := false
			cli := func(p *hpPeer) error {
				p.version = "SSH-2.0-libssh_0.10.6"
				if err := p.keyExchange(klKexInit(p, shape.edit)); err != nil {
					return err
				}
				if err := p.writePacket((&wire.ServiceRequest{Service: "ssh-userauth"}).Marshal(nil)); err != nil {
					return err
				}
				for {
					pl, err := p.readPacketSkip()
					if err != nil {
						return fmt.Errorf("hand client: waiting for SERVICE_ACCEPT: %w", err)
					}
					switch pl[0] {
					case wire.MsgExtInfo:
						gotExtInfo = true
					case wire.MsgServiceAccept:
						return nil
					default:
						return fmt.Errorf("hand client: got %s, want SERVICE_ACCEPT", wire.MsgName(pl[0]))
					}
				}
			}
			s, _, serr, cerr := hpServerAgainst(t, nil, cli, nil)
			if serr != nil || cerr != nil {
				t.Fatalf("handshake: server %v, hand client %v", serr, cerr)
			}
			// The client's order wins (RFC 4253 §7.1).
			dir := DirectionAlgorithms{Cipher: cipher.AES256CTR, MAC: cipher.HMACSHA256ETM, Compression: "none"}
			klWantAlgorithms(t, "server", s, Algorithms{Kex: kex.Curve25519SHA256, HostKey: kex.HostKeyED25519, ClientToServer: dir, ServerToClient: dir})
			if !gotExtInfo {
				t.Error("no EXT_INFO: the server missed ext-info-c in the client's kex_algorithms")
			}
		})
	}
}

// TestKexInitStrayCommasClient: the client accepts the same lists from a
// server and completes its handshake.
func TestKexInitStrayCommasClient(t *testing.T) {
	for _, shape := range klShapes {
		t.Run(shape.name, func(t *testing.T) {
			srv := func(p *hpPeer) error {
				if err := p.keyExchange(klKexInit(p, shape.edit)); err != nil {
					return err
				}
				return p.serveService()
			}
			c, _, cerr, serr := hpClientAgainst(t, nil, srv, nil)
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
			}
			// sshtap's default order wins: AES-128-CTR comes before
			// AES-256-CTR in cipher.DefaultCiphers.
			dir := DirectionAlgorithms{Cipher: cipher.AES128CTR, MAC: cipher.HMACSHA256ETM, Compression: "none"}
			klWantAlgorithms(t, "client", c, Algorithms{Kex: kex.Curve25519SHA256, HostKey: kex.HostKeyED25519, ClientToServer: dir, ServerToClient: dir})
		})
	}
}

// TestKexInitNulStillRejected: dropping empty names does not loosen the
// other name-list check: a NUL byte in a peer's list fails the handshake
// ("Terminating null characters MUST NOT be used", RFC 4251 §5).
func TestKexInitNulStillRejected(t *testing.T) {
	cli := func(p *hpPeer) error {
		nul := func(n []string) string { return strings.Join(n, ",") + ",\x00" }
		if err := p.write(append(p.versionLine(), p.packet(klKexInit(p, nul))...)); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, p.rw) // until the server hangs up
		return err
	}
	_, _, serr, _ := hpServerAgainst(t, nil, cli, nil)
	if !errors.Is(serr, wire.ErrBadName) {
		t.Fatalf("server error = %v, want one wrapping wire.ErrBadName", serr)
	}
}
