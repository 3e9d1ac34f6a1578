package testpeer

import (
	"regexp"
	"strconv"
	"strings"
)

// Proposal is one KEXINIT proposal as printed by OpenSSH at debug2
// ("debug2: local client KEXINIT proposal", "debug2: peer server KEXINIT
// proposal", and in sshd's log "peer client ..."/"local server ...").
type Proposal struct {
	Kex, HostKey                     []string
	CiphersCtoS, CiphersStoC         []string
	MACsCtoS, MACsStoC               []string
	CompressionCtoS, CompressionStoC []string
	LanguagesCtoS, LanguagesStoC     []string
	FirstKexFollows                  bool
}

// Negotiation is what one key exchange chose, from the debug1 lines
//
//	kex: algorithm: K
//	kex: host key algorithm: H
//	kex: server->client cipher: C MAC: M compression: Z
//	kex: client->server cipher: C MAC: M compression: Z
//
// MAC is "<implicit>" for AEAD ciphers (chacha20-poly1305, AES-GCM).
type Negotiation struct {
	Kex, HostKey                         string
	CipherCtoS, MACCtoS, CompressionCtoS string
	CipherStoC, MACStoC, CompressionStoC string
}

// Disconnect is a received SSH_MSG_DISCONNECT as ssh logs it:
// "Received disconnect from 127.0.0.1 port 22022:2: Too many authentication failures".
type Disconnect struct {
	Reason  int
	Message string
}

// SSHLog is what [ParseSSHLog] found in an OpenSSH -vvv (client) or
// LogLevel DEBUG3 (sshd) log.
type SSHLog struct {
	// RemoteVersion is the peer's software version ("OpenSSH_9.2p1
	// Debian-2+deb12u10", "dropbear_2022.83").
	RemoteVersion string
	// LocalProposal and PeerProposal are the first KEXINIT proposals.
	LocalProposal, PeerProposal *Proposal
	// Kex has one entry per key exchange (initial, then re-keys).
	Kex []Negotiation
	// ServerHostKey is "TYPE FINGERPRINT" from "Server host key: ...".
	ServerHostKey string
	// ServiceAccepted: "SSH2_MSG_SERVICE_ACCEPT received".
	ServiceAccepted bool
	// AuthMethods is the last "Authentications that can continue: ..." list.
	AuthMethods []string
	// Authenticated and AuthMethod: `Authenticated to HOST ([HOST]:PORT) using "publickey".`
	Authenticated bool
	AuthMethod    string
	// Sent and Received are the message numbers of "debug3: send packet:
	// type N" / "debug3: receive packet: type N", in order.
	Sent, Received []int
	// RemoteDebug are the texts of SSH_MSG_DEBUG messages ("debug1: Remote: ...").
	RemoteDebug []string
	// Disconnect is the received SSH_MSG_DISCONNECT, if any.
	Disconnect *Disconnect
	// NegotiationFailure is the text after "Unable to negotiate with HOST
	// port N: ", e.g. "no matching cipher found. Their offer: ...".
	NegotiationFailure string
	// ExitStatus is from "debug1: Exit status N"; -1 if absent.
	ExitStatus int
}

var (
	reDisconnect = regexp.MustCompile(`^Received disconnect from .* port \d+:(\d+): ?(.*)$`)
	reNegFail    = regexp.MustCompile(`^Unable to negotiate with .* port \d+: (.*)$`)
	reDirection  = regexp.MustCompile(`^(server->client|client->server) cipher: (\S+) MAC: (\S+) compression: (\S+)$`)
	reAuthed     = regexp.MustCompile(`^Authenticated to .* using "([^"]+)"\.$`)
)

// ParseSSHLog parses an OpenSSH log: the client's -vvv stderr, or sshd's
// DEBUG3 log (whose " [preauth]" suffixes are ignored).
func ParseSSHLog(log string) *SSHLog {
	l := &SSHLog{ExitStatus: -1}
	var cur *Proposal // proposal being read
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		line = strings.TrimSuffix(strings.TrimRight(line, " "), " [preauth]")
		line = strings.TrimRight(line, " ")
		msg := line
		for _, p := range []string{"debug1: ", "debug2: ", "debug3: "} {
			if m, ok := strings.CutPrefix(line, p); ok {
				msg = m
				break
			}
		}
		if cur != nil && parseProposalLine(cur, msg) {
			continue
		}
		cur = nil
		switch {
		case strings.HasSuffix(msg, "KEXINIT proposal"):
			p := &Proposal{}
			switch {
			case strings.HasPrefix(msg, "local ") && l.LocalProposal == nil:
				l.LocalProposal, cur = p, p
			case strings.HasPrefix(msg, "peer ") && l.PeerProposal == nil:
				l.PeerProposal, cur = p, p
			}
		case strings.HasPrefix(msg, "Remote protocol version "):
			if _, v, ok := strings.Cut(msg, "remote software version "); ok {
				l.RemoteVersion = v
			}
		case strings.HasPrefix(msg, "kex: algorithm: "):
			l.Kex = append(l.Kex, Negotiation{Kex: strings.TrimPrefix(msg, "kex: algorithm: ")})
		case strings.HasPrefix(msg, "kex: host key algorithm: ") && len(l.Kex) > 0:
			l.Kex[len(l.Kex)-1].HostKey = strings.TrimPrefix(msg, "kex: host key algorithm: ")
		case strings.HasPrefix(msg, "kex: ") && len(l.Kex) > 0:
			if m := reDirection.FindStringSubmatch(strings.TrimPrefix(msg, "kex: ")); m != nil {
				n := &l.Kex[len(l.Kex)-1]
				if m[1] == "client->server" {
					n.CipherCtoS, n.MACCtoS, n.CompressionCtoS = m[2], m[3], m[4]
				} else {
					n.CipherStoC, n.MACStoC, n.CompressionStoC = m[2], m[3], m[4]
				}
			}
		case strings.HasPrefix(msg, "Server host key: "):
			l.ServerHostKey = strings.TrimPrefix(msg, "Server host key: ")
		case msg == "SSH2_MSG_SERVICE_ACCEPT received":
			l.ServiceAccepted = true
		case strings.HasPrefix(msg, "Authentications that can continue: "):
			l.AuthMethods = splitList(strings.TrimPrefix(msg, "Authentications that can continue: "))
		case strings.HasPrefix(msg, "send packet: type "):
			if n, err := strconv.Atoi(strings.TrimPrefix(msg, "send packet: type ")); err == nil {
				l.Sent = append(l.Sent, n)
			}
		case strings.HasPrefix(msg, "receive packet: type "):
			if n, err := strconv.Atoi(strings.TrimPrefix(msg, "receive packet: type ")); err == nil {
				l.Received = append(l.Received, n)
			}
		case strings.HasPrefix(msg, "Remote: "):
			l.RemoteDebug = append(l.RemoteDebug, strings.TrimPrefix(msg, "Remote: "))
		case strings.HasPrefix(msg, "Exit status "):
			if n, err := strconv.Atoi(strings.TrimPrefix(msg, "Exit status ")); err == nil {
				l.ExitStatus = n
			}
		default:
			if m := reAuthed.FindStringSubmatch(msg); m != nil {
				l.Authenticated, l.AuthMethod = true, m[1]
			} else if m := reDisconnect.FindStringSubmatch(msg); m != nil && l.Disconnect == nil {
				reason, _ := strconv.Atoi(m[1])
				l.Disconnect = &Disconnect{Reason: reason, Message: m[2]}
			} else if m := reNegFail.FindStringSubmatch(msg); m != nil {
				l.NegotiationFailure = m[1]
			}
		}
	}
	return l
}

// parseProposalLine fills one field of p from a proposal line and reports
// whether msg was one.
func parseProposalLine(p *Proposal, msg string) bool {
	if v, ok := strings.CutPrefix(msg, "first_kex_follows "); ok {
		p.FirstKexFollows = strings.TrimSpace(v) == "1"
		return true
	}
	if strings.HasPrefix(msg, "reserved ") {
		return true
	}
	name, val, ok := strings.Cut(msg, ": ")
	if !ok {
		name, ok = strings.CutSuffix(msg, ":")
		if !ok {
			return false
		}
	}
	list := splitList(val)
	switch name {
	case "KEX algorithms":
		p.Kex = list
	case "host key algorithms":
		p.HostKey = list
	case "ciphers ctos":
		p.CiphersCtoS = list
	case "ciphers stoc":
		p.CiphersStoC = list
	case "MACs ctos":
		p.MACsCtoS = list
	case "MACs stoc":
		p.MACsStoC = list
	case "compression ctos":
		p.CompressionCtoS = list
	case "compression stoc":
		p.CompressionStoC = list
	case "languages ctos":
		p.LanguagesCtoS = list
	case "languages stoc":
		p.LanguagesStoC = list
	default:
		return false
	}
	return true
}

func splitList(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ReachedUserAuth reports whether the connection got past key exchange
// into user authentication: the service was accepted, the server listed
// authentication methods, or a USERAUTH reply (51, 52, 60) arrived.
func (l *SSHLog) ReachedUserAuth() bool {
	if l.ServiceAccepted || len(l.AuthMethods) > 0 || l.Authenticated {
		return true
	}
	for _, t := range l.Received {
		if t == 51 || t == 52 || t == 60 {
			return true
		}
	}
	return false
}

// FirstKex returns the initial key exchange's negotiation (zero if none).
func (l *SSHLog) FirstKex() Negotiation {
	if len(l.Kex) == 0 {
		return Negotiation{}
	}
	return l.Kex[0]
}
