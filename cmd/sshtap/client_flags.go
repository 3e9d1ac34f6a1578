package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"sshtap"
	"sshtap/cipher"
	"sshtap/kex"
)

const clientUsage = "sshtap [-AaCNqTtXY] [-p port] [-l user] [-i identity] [-F config] [-o option] [-L spec] [-R spec] [-D [bind:]port] [-e char] [-J destination] [-W host:port] [--json] [--events file] [--only kinds] [--except kinds] [user@]host [command...]"

// clientFlags is the command line of `sshtap [flags] [user@]host [command]`.
type clientFlags struct {
	port, user, configFile string
	identities             []string
	options                []string // -o Keyword=value, in order
	agentFwd, noAgentFwd   bool     // -A, -a
	x11, x11Trusted        bool     // -X, -Y
	noX11                  bool     // -x
	compress               bool     // -C
	locals, remotes        []string // -L, -R
	dynamics               []string // -D
	escapeChar             string   // -e
	tty                    int      // -t count
	noTTY                  bool     // -T
	noCommand              bool     // -N
	quiet                  bool     // -q
	verbose                bool     // -v: notes about what sshtap does (identities tried, ...)
	version                bool     // -V
	help                   bool     // -h, --help
	jump                   string   // -J: jump hosts, comma-separated
	jumpSet                bool     // -J was given (its value may be empty)
	stdioForward           string   // -W host:port

	events eventFlags

	rekeyEvery   string // bytes (with K/M/G suffix) or a duration
	keepalive    string // duration
	macPolicy    string // disconnect, discard, accept
	kex, ciphers string
	macs, hkAlgs string
}

func (f *clientFlags) opts() []opt {
	o := []opt{
		stringOpt('p', "", &f.port),
		stringOpt('l', "", &f.user),
		listOpt('i', "", &f.identities),
		stringOpt('F', "", &f.configFile),
		listOpt('o', "", &f.options),
		flagOpt('A', "", &f.agentFwd),
		flagOpt('a', "", &f.noAgentFwd),
		flagOpt('X', "", &f.x11),
		flagOpt('Y', "", &f.x11Trusted),
		flagOpt('x', "", &f.noX11),
		flagOpt('C', "", &f.compress),
		listOpt('L', "", &f.locals),
		listOpt('R', "", &f.remotes),
		listOpt('D', "", &f.dynamics),
		stringOpt('e', "", &f.escapeChar),
		{short: 't', set: func(string) error { f.tty++; return nil }},
		flagOpt('T', "", &f.noTTY),
		flagOpt('N', "", &f.noCommand),
		flagOpt('q', "", &f.quiet),
		flagOpt('v', "", &f.verbose),
		flagOpt('V', "version", &f.version),
		flagOpt('h', "help", &f.help),
		stringOpt(0, "rekey-every", &f.rekeyEvery),
		stringOpt(0, "keepalive", &f.keepalive),
		stringOpt(0, "mac-policy", &f.macPolicy),
		stringOpt(0, "kex", &f.kex),
		stringOpt(0, "ciphers", &f.ciphers),
		stringOpt('c', "", &f.ciphers),
		stringOpt(0, "macs", &f.macs),
		stringOpt('m', "", &f.macs),
		stringOpt(0, "hostkey-algos", &f.hkAlgs),
		{short: 'J', arg: true, set: func(v string) error {
			// As ssh: one -J, its hops separated by commas.
			if f.jumpSet {
				return errors.New("only one -J is allowed (separate jump hosts with commas)")
			}
			f.jump, f.jumpSet = v, true
			return nil
		}},
		stringOpt('W', "", &f.stdioForward),
	}
	return append(o, f.events.opts()...)
}

// parseDestination splits [user@]host or ssh://[user@]host[:port].
func parseDestination(d string) (user, host string, port int, err error) {
	if rest, ok := strings.CutPrefix(d, "ssh://"); ok {
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			user, rest = rest[:i], rest[i+1:]
		}
		if strings.ContainsAny(rest, "/?#") {
			// ssh(1): an ssh:// URI names no path.
			return "", "", 0, fmt.Errorf("%q: an ssh:// destination takes no path", d)
		}
		host = rest
		if h, p, ok := cutPort(rest); ok {
			n, perr := parsePort(p)
			if perr != nil {
				return "", "", 0, perr
			}
			host, port = h, n
		}
	} else {
		host = d
		if i := strings.LastIndexByte(d, '@'); i >= 0 {
			user, host = d[:i], d[i+1:]
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return "", "", 0, fmt.Errorf("no host in %q", d)
	}
	return user, host, port, nil
}

// validHostname is ssh's check of the destination host given on its
// command line (readconf.c ssh_valid_hostname), made before the name can
// reach a ProxyCommand's %h or %n, which sh -c reads: no leading '-', no
// whitespace or control character and none of '`"$\;&<>|(){},.
func validHostname(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("'`\"$\\;&<>|(){},", c) >= 0 {
			return false
		}
	}
	return true
}

// validRemoteUser is ssh's check of a remote user name given on its
// command line (readconf.c ssh_valid_ruser), for %r: no leading '-', no
// control character, none of '`";&<>|(){}, no '-' right after whitespace
// and no '\' at the end. '$' and spaces are allowed (Windows domains,
// LDAP names).
func validRemoteUser(s string) bool {
	if strings.HasPrefix(s, "-") || strings.HasSuffix(s, "\\") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || strings.IndexByte("'`\";&<>|(){}", c) >= 0 {
			return false
		}
		if isSpace(c) && i+1 < len(s) && s[i+1] == '-' {
			return false
		}
	}
	return true
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// cutPort splits host:port and [v6]:port in a URL authority.
func cutPort(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]:")
		if i < 0 {
			return s, "", false
		}
		return s[1:i], s[i+2:], true
	}
	if strings.Count(s, ":") != 1 {
		return s, "", false
	}
	h, p, _ := strings.Cut(s, ":")
	return h, p, true
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// parseRekeyEvery reads --rekey-every: a byte count with an optional K, M or
// G suffix (powers of 1024), or a Go duration ("30s").
func parseRekeyEvery(s string) (bytes uint64, every time.Duration, err error) {
	if d, derr := time.ParseDuration(s); derr == nil {
		if d <= 0 {
			return 0, 0, fmt.Errorf("%q: the interval must be positive", s)
		}
		return 0, d, nil
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is neither a size (1G, 512M, 65536) nor a duration (30s)", s)
	}
	if n < 16 {
		return 0, 0, fmt.Errorf("%q: rekeying after fewer than 16 bytes would never end", s)
	}
	return n, 0, nil
}

// parseSize reads a byte count with an optional K, M or G suffix (also
// accepting the ssh_config RekeyLimit spelling).
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func parseMACPolicy(s string) (func(sshtap.MACMismatch) sshtap.MACVerdict, error) {
	var v sshtap.MACVerdict
	switch s {
	case "disconnect":
		return nil, nil // the library default
	case "discard":
		v = sshtap.MACDiscard
	case "accept":
		v = sshtap.MACAccept
	default:
		return nil, fmt.Errorf("%q is not disconnect, discard or accept", s)
	}
	return func(sshtap.MACMismatch) sshtap.MACVerdict { return v }, nil
}

// algorithmList resolves an algorithm list option with OpenSSH's modifiers
// (kex.ExpandAlgorithms, the library's parser): a plain list replaces the
// defaults, "+a,b" appends, "-a,b" removes (wildcards * and ? allowed) and
// "^a,b" puts them first; every name must be supported, and a wildcard
// outside "-" stands for default names only (legacy ones are named in
// full). An empty spec
// gives nil, which leaves the library its defaults.
func algorithmList(spec string, defaults, supported []string) ([]string, error) {
	if spec == "" {
		return nil, nil
	}
	return kex.ExpandAlgorithms([]string{spec}, defaults, supported)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// supportedLists are the algorithm names each list option accepts.
var (
	supportedKex     = kex.SupportedKexAlgos
	supportedHostKey = kex.SupportedHostKeyAlgos
	supportedCiphers = cipher.SupportedCiphers
	supportedMACs    = cipher.SupportedMACs
)
