package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sshtap"
	"sshtap/cipher"
	"sshtap/internal/sshconfig"
	"sshtap/kex"
)

// settings is everything a client connection uses, resolved from the
// command line, -o options, the ssh_config file and defaults, in that order
// of precedence (ssh's: the first value obtained wins).
type settings struct {
	host           string // as typed: matched against Host blocks
	hostname       string // to connect to
	port           int
	user           string
	identities     []string
	explicit       map[string]bool
	identitiesOnly bool
	identityAgent  string // "" = SSH_AUTH_SOCK, "none" = no agent
	knownHosts     []string
	globalKnown    []string
	check          string
	hashKnownHosts bool
	forwardAgent   bool
	forwardX11     bool
	compression    bool   // -C, Compression yes
	updateHostKeys string // UpdateHostKeys: "yes", "no" or "ask"
	keepAlive      time.Duration
	keepAliveMax   int
	connectTimeout time.Duration
	kex, ciphers   []string
	macs, hkAlgs   []string
	// hkOwnOrder: HostKeyAlgorithms is a plain list or a ^list, whose
	// order the key types on record for the host do not change (OpenSSH's
	// use_known_hosts_order is off then).
	hkOwnOrder      bool
	pubkeyAlgs      []string
	caSigAlgs       []string // CASignatureAlgorithms; nil: defaultCASignatureAlgorithms
	locals          []forwardSpec
	remotes         []forwardSpec
	dynamics        []forwardSpec // -D, DynamicForward: listen fields only
	escapeChar      int           // EscapeChar, -e: a byte or noEscape
	escapeCmdLine   bool          // EnableEscapeCommandline: ~C available
	batch           bool
	pubkey          bool
	password        bool
	kbdInt          bool
	passwordTurns   int
	preferred       []string
	requestTTY      string // auto, yes, no, force
	rekeyBytes      uint64
	rekeyInterval   time.Duration
	macPolicy       func(sshtap.MACMismatch) sshtap.MACVerdict
	command         string
	noCommand       bool
	requiredRSASize int // RequiredRSASize: smallest RSA key accepted, host or user
	quiet, verbose  bool
	home            string
	sendEnv         []string    // SendEnv patterns, "-pattern" removals applied
	setEnv          [][2]string // SetEnv name, value pairs
	xauth           string      // XAuthLocation: the xauth program
	configNotes     []string    // ignored keywords, shown under -v
	jumps           []string    // ProxyJump or -J: the jump hosts as written, first connected first
	proxyCommand    string      // ProxyCommand, tokens expanded; "" = none
	stdioForward    string      // -W host:port
	configFile      string      // -F: the jump hosts' settings come from it too
}

// lookup finds a keyword's value: -o options first, then the config file,
// then the system-wide file (ssh's order). opts is always set (from no
// options at all, an empty configuration); file and system are nil when
// not read.
type lookup struct {
	opts, file, system *sshconfig.Host
}

// hosts returns the sources that were read, in precedence order.
func (l lookup) hosts() []*sshconfig.Host {
	var out []*sshconfig.Host
	for _, h := range []*sshconfig.Host{l.opts, l.file, l.system} {
		if h != nil {
			out = append(out, h)
		}
	}
	return out
}

func (l lookup) get(kw string) (string, bool) {
	for _, h := range l.hosts() {
		if v, ok := h.Get(kw); ok {
			return v, true
		}
	}
	return "", false
}

// first returns a keyword's arguments from the first place that sets it.
func (l lookup) first(kw string) []string {
	for _, h := range l.hosts() {
		if _, ok := h.Get(kw); ok {
			return h.GetAll(kw)
		}
	}
	return nil
}

// all returns a repeatable keyword's values: -o ones, then the files'.
func (l lookup) all(kw string) []string {
	var out []string
	for _, h := range l.hosts() {
		out = append(out, h.GetAll(kw)...)
	}
	return out
}

func (l lookup) yes(kw string, def bool) (bool, error) {
	v, ok := l.get(kw)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not yes or no", kw, v)
}

// resolve turns the command line into settings. getenv gives HOME, USER and
// SSH_AUTH_SOCK (tests set their own).
func resolve(f *clientFlags, rest []string, getenv func(string) string) (*settings, error) {
	bad := func(format string, a ...any) error {
		return &usageError{msg: fmt.Sprintf(format, a...), usage: clientUsage}
	}
	if len(rest) == 0 {
		return nil, bad("no destination given")
	}
	destUser, host, destPort, err := parseDestination(rest[0])
	if err != nil {
		return nil, bad("%v", err)
	}
	// ssh(1) checks the host and user of its command line before they
	// can reach a ProxyCommand's %h, %n and %r, which sh -c reads.
	if !validHostname(host) {
		return nil, bad("%q: hostname contains invalid characters", host)
	}
	s := &settings{host: host, home: getenv("HOME"), explicit: map[string]bool{}, quiet: f.quiet, verbose: f.verbose, noCommand: f.noCommand}
	if s.home == "" {
		if u, err := user.Current(); err == nil {
			s.home = u.HomeDir
		}
	}
	s.command = strings.Join(rest[1:], " ")

	// -o options come first, each one line, as ssh reads them (with
	// none, an empty configuration: its Host still expands tokens).
	var l lookup
	popts := sshconfig.ParseOptions{Home: s.home, LocalUser: getenv("USER")}
	oc, err := sshconfig.ParseCommandLine(f.options, popts)
	if err != nil {
		var pe *sshconfig.Error
		if errors.As(err, &pe) && pe.Line >= 1 && pe.Line <= len(f.options) {
			msg := pe.Err.Error()
			if pe.Msg != "" {
				msg += ": " + pe.Msg
			}
			return nil, bad("-o %q: %s", f.options[pe.Line-1], msg)
		}
		return nil, bad("-o: %v", err)
	}
	l.opts = oc.Lookup(host)
	cfgPath := f.configFile
	if cfgPath == "" {
		cfgPath = filepath.Join(s.home, ".ssh", "config")
	}
	if cfgPath != "none" {
		fc, err := sshconfig.ParseFile(cfgPath, popts)
		switch {
		case err == nil:
			l.file = fc.Lookup(host)
		case errors.Is(err, fs.ErrNotExist) && f.configFile == "":
		default:
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	// As ssh, the system-wide file is read unless -F names a file.
	if sysPath := systemConfigPath(getenv); f.configFile == "" && sysPath != "none" {
		sysOpts := popts
		sysOpts.System = true
		sc, err := sshconfig.ParseFile(sysPath, sysOpts)
		switch {
		case err == nil:
			l.system = sc.Lookup(host)
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	// Every keyword that takes effect is honoured, noted as ignored
	// (under -v) or refused: none is dropped silently.
	s.configNotes, err = checkKeywords([]configSource{{host: l.opts}, {host: l.file}, {host: l.system, system: true}})
	if err != nil {
		return nil, err
	}
	if v, ok := l.get("refuseconnection"); ok && isYes(v) {
		return nil, fmt.Errorf("connection to %s refused by RefuseConnection in the configuration", host)
	}

	// Host, port, user.
	// HostName, %h expanded, from the first place that sets it.
	s.hostname = host
	for _, h := range l.hosts() {
		if _, ok := h.Get("hostname"); ok {
			s.hostname = h.HostName
			break
		}
	}
	s.port = 22
	if v, ok := l.get("port"); ok {
		if s.port, err = parsePort(v); err != nil {
			return nil, bad("Port: %v", err)
		}
	}
	if destPort != 0 {
		s.port = destPort
	}
	if f.port != "" {
		if s.port, err = parsePort(f.port); err != nil {
			return nil, bad("-p: %v", err)
		}
	}
	s.user = getenv("USER")
	if s.user == "" {
		if u, err := user.Current(); err == nil {
			s.user = u.Username
		}
	}
	if v, ok := l.get("user"); ok {
		s.user = v
	}
	if destUser != "" {
		s.user = destUser
	}
	if f.user != "" {
		s.user = f.user
	}
	// A User written in a config file is taken as written, as ssh takes
	// it; one from -l, user@host or -o is checked.
	if _, fromOpts := l.opts.Get("user"); (f.user != "" || destUser != "" || fromOpts) && !validRemoteUser(s.user) {
		return nil, bad("%q: remote username contains invalid characters", s.user)
	}

	// "~" and %-tokens (ssh_config(5) TOKENS) with the final host, port
	// and user.
	tok := sshconfig.Tokens{Home: s.home, LocalUser: getenv("USER"), RemoteUser: s.user, Port: s.port, HostName: s.hostname}
	tokens := func(p string) string { return l.opts.Expand(p, tok) }

	// Identities: -i first, then IdentityFile, then the defaults (when
	// neither gave any).
	for _, i := range f.identities {
		p := tokens(i)
		s.identities = append(s.identities, p)
		s.explicit[p] = true
	}
	for _, i := range l.all("identityfile") {
		p := tokens(i)
		s.identities = append(s.identities, p)
		s.explicit[p] = true
	}
	if len(s.identities) == 0 {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			s.identities = append(s.identities, filepath.Join(s.home, ".ssh", n))
		}
	}
	if s.identitiesOnly, err = l.yes("identitiesonly", false); err != nil {
		return nil, bad("%v", err)
	}
	if v, ok := l.get("identityagent"); ok {
		s.identityAgent = tokens(v)
		if strings.EqualFold(v, "none") {
			s.identityAgent = "none"
		}
	}

	// Known hosts. UpdateHostKeys defaults to yes unless UserKnownHostsFile
	// was set, as in ssh_config(5).
	s.updateHostKeys = "yes"
	if v, ok := l.get("updatehostkeys"); ok {
		switch strings.ToLower(v) {
		case "yes", "true":
			s.updateHostKeys = "yes"
		case "no", "false":
			s.updateHostKeys = "no"
		case "ask":
			s.updateHostKeys = "ask"
		default:
			return nil, bad("UpdateHostKeys: %q is not yes, no or ask", v)
		}
	} else if len(l.first("userknownhostsfile")) > 0 {
		s.updateHostKeys = "no"
	}
	s.knownHosts = []string{filepath.Join(s.home, ".ssh", "known_hosts"), filepath.Join(s.home, ".ssh", "known_hosts2")}
	if v := l.first("userknownhostsfile"); len(v) > 0 {
		s.knownHosts = nil
		for _, list := range v {
			for _, p := range strings.Fields(list) {
				s.knownHosts = append(s.knownHosts, tokens(p))
			}
		}
	}
	s.globalKnown = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	if v := l.first("globalknownhostsfile"); len(v) > 0 {
		s.globalKnown = nil
		for _, list := range v {
			s.globalKnown = append(s.globalKnown, strings.Fields(list)...)
		}
	}
	// "none" names no file (ssh_config(5)).
	s.knownHosts = withoutNone(s.knownHosts)
	s.globalKnown = withoutNone(s.globalKnown)
	s.check = checkAsk
	if v, ok := l.get("stricthostkeychecking"); ok {
		if s.check, err = parseCheckMode(v); err != nil {
			return nil, bad("%v", err)
		}
	}
	if s.hashKnownHosts, err = l.yes("hashknownhosts", false); err != nil {
		return nil, bad("%v", err)
	}
	if s.batch, err = l.yes("batchmode", false); err != nil {
		return nil, bad("%v", err)
	}

	if s.compression, err = l.yes("compression", false); err != nil {
		return nil, bad("%v", err)
	}
	s.compression = s.compression || f.compress

	// Forwarding.
	if s.forwardAgent, err = l.yes("forwardagent", false); err != nil {
		return nil, bad("%v", err)
	}
	s.forwardAgent = (s.forwardAgent || f.agentFwd) && !f.noAgentFwd
	if s.forwardX11, err = l.yes("forwardx11", false); err != nil {
		return nil, bad("%v", err)
	}
	s.forwardX11 = (s.forwardX11 || f.x11 || f.x11Trusted) && !f.noX11
	if v, ok := l.get("forwardx11trusted"); ok && s.forwardX11 && !f.x11Trusted && !isYes(v) {
		return nil, fmt.Errorf("ForwardX11Trusted %s: untrusted X11 forwarding is not supported by sshtap (its X11 forwarding is trusted, as with -Y)", v)
	}
	s.xauth = "xauth"
	if v, ok := l.get("xauthlocation"); ok {
		s.xauth = tokens(v)
	}
	for _, fw := range []struct {
		flag, keyword string
		specs         []string
		dst           *[]forwardSpec
	}{
		{"-L", "LocalForward", f.locals, &s.locals},
		{"-R", "RemoteForward", f.remotes, &s.remotes},
	} {
		for _, spec := range fw.specs {
			fs, err := parseForward(spec)
			if err != nil {
				return nil, bad("%s %s: %v", fw.flag, spec, err)
			}
			*fw.dst = append(*fw.dst, fs)
		}
		// In ssh_config the listen and connect parts are two arguments:
		// "LocalForward [bind:]port host:hostport".
		for _, v := range l.all(strings.ToLower(fw.keyword)) {
			fs, err := parseForward(strings.Join(strings.Fields(v), ":"))
			if err != nil {
				return nil, fmt.Errorf("config: %s %s: %v", fw.keyword, v, err)
			}
			*fw.dst = append(*fw.dst, fs)
		}
	}

	for _, spec := range f.dynamics {
		fs, err := parseDynamicForward(spec)
		if err != nil {
			return nil, bad("-D %s: %v", spec, err)
		}
		s.dynamics = append(s.dynamics, fs)
	}
	for _, v := range l.all("dynamicforward") {
		fs, err := parseDynamicForward(v)
		if err != nil {
			return nil, fmt.Errorf("config: DynamicForward %s: %v", v, err)
		}
		s.dynamics = append(s.dynamics, fs)
	}

	// Escape sequences (ssh(1) ESCAPE CHARACTERS): -e wins over
	// EscapeChar. The ~C command line is on unless EnableEscapeCommandline
	// says no (OpenSSH 9.2 turned it off by default for its sandbox,
	// which sshtap does not have).
	s.escapeChar = '~'
	if v, ok := l.get("escapechar"); ok {
		if s.escapeChar, err = parseEscapeChar(v); err != nil {
			return nil, bad("EscapeChar: %v", err)
		}
	}
	if f.escapeChar != "" {
		if s.escapeChar, err = parseEscapeChar(f.escapeChar); err != nil {
			return nil, bad("-e: %v", err)
		}
	}
	if s.escapeCmdLine, err = l.yes("enableescapecommandline", true); err != nil {
		return nil, bad("%v", err)
	}
	if v, ok := l.get("clearallforwardings"); ok && isYes(v) {
		// As ssh: the command line's forwards go too.
		s.locals, s.remotes, s.dynamics = nil, nil, nil
	}

	// Liveness and timing.
	s.keepAliveMax = 3
	if v, ok := l.get("serveralivecountmax"); ok {
		if s.keepAliveMax, err = strconv.Atoi(v); err != nil || s.keepAliveMax < 1 {
			return nil, bad("ServerAliveCountMax %q is not a positive number", v)
		}
	}
	if v, ok := l.get("serveraliveinterval"); ok {
		d, err := sshconfig.ParseTime(v)
		if err != nil {
			return nil, bad("ServerAliveInterval %q is not a time (30, 30s, 1m)", v)
		}
		s.keepAlive = d
	}
	if f.keepalive != "" {
		d, err := time.ParseDuration(f.keepalive)
		if err != nil || d <= 0 {
			return nil, bad("--keepalive %q is not a positive duration (e.g. 5s)", f.keepalive)
		}
		s.keepAlive = d
	}
	if v, ok := l.get("connecttimeout"); ok {
		d, err := sshconfig.ParseTime(v)
		if err != nil {
			return nil, bad("ConnectTimeout %q is not a time (10, 10s, 1m)", v)
		}
		s.connectTimeout = d
	}
	if f.rekeyEvery != "" {
		if s.rekeyBytes, s.rekeyInterval, err = parseRekeyEvery(f.rekeyEvery); err != nil {
			return nil, bad("--rekey-every: %v", err)
		}
	} else if v, ok := l.get("rekeylimit"); ok {
		fields := strings.Fields(v)
		if fields[0] != "default" {
			if s.rekeyBytes, err = parseSize(fields[0]); err != nil {
				return nil, bad("RekeyLimit: %v", err)
			}
		}
		if len(fields) > 1 && fields[1] != "none" && fields[1] != "default" {
			if s.rekeyInterval, err = sshconfig.ParseTime(fields[1]); err != nil {
				return nil, bad("RekeyLimit: %v", err)
			}
		}
	}
	if f.macPolicy != "" {
		if s.macPolicy, err = parseMACPolicy(f.macPolicy); err != nil {
			return nil, bad("--mac-policy: %v", err)
		}
	}

	// Algorithms: the flag, else the config keyword.
	for _, a := range []struct {
		flag, kw       string
		def, supported []string
		dst            *[]string
	}{
		{f.kex, "kexalgorithms", kex.DefaultKexAlgos, supportedKex, &s.kex},
		{f.ciphers, "ciphers", cipher.DefaultCiphers, supportedCiphers, &s.ciphers},
		{f.macs, "macs", cipher.DefaultMACs, supportedMACs, &s.macs},
		{f.hkAlgs, "hostkeyalgorithms", kex.DefaultHostKeyAlgos, supportedHostKey, &s.hkAlgs},
	} {
		spec := a.flag
		if spec == "" {
			spec, _ = l.get(a.kw)
		}
		if spec, err = s.implementedSpec(a.kw, spec, a.supported); err != nil {
			return nil, bad("%v", err)
		}
		if *a.dst, err = algorithmList(spec, a.def, a.supported); err != nil {
			return nil, bad("%s: %v", a.kw, err)
		}
		if a.kw == "hostkeyalgorithms" {
			spec = strings.TrimSpace(spec)
			s.hkOwnOrder = spec != "" && spec[0] != '+' && spec[0] != '-'
		}
	}
	if v, ok := l.get("pubkeyacceptedalgorithms"); ok {
		// A certificate's name stands for its key's signature algorithm:
		// sshtap offers a certificate with the algorithms its key may use.
		if v, err = s.implementedSpec("pubkeyacceptedalgorithms", foldCertAlgorithms(v), sshtap.SupportedPublicKeyAlgorithms); err != nil {
			return nil, bad("%v", err)
		}
		if s.pubkeyAlgs, err = algorithmList(v, sshtap.DefaultPublicKeyAlgorithms, sshtap.SupportedPublicKeyAlgorithms); err != nil {
			return nil, bad("pubkeyacceptedalgorithms: %v", err)
		}
	}
	if v, ok := l.get("casignaturealgorithms"); ok {
		if v, err = s.implementedSpec("casignaturealgorithms", v, supportedCASignatureAlgorithms); err != nil {
			return nil, bad("%v", err)
		}
		if s.caSigAlgs, err = algorithmList(v, defaultCASignatureAlgorithms, supportedCASignatureAlgorithms); err != nil {
			return nil, bad("casignaturealgorithms: %v", err)
		}
	}

	// Authentication.
	if s.pubkey, err = l.yes("pubkeyauthentication", true); err != nil {
		return nil, bad("%v", err)
	}
	if s.password, err = l.yes("passwordauthentication", true); err != nil {
		return nil, bad("%v", err)
	}
	if s.kbdInt, err = l.yes("kbdinteractiveauthentication", true); err != nil {
		return nil, bad("%v", err)
	}
	s.requiredRSASize = defaultRequiredRSASize
	if v, ok := l.get("requiredrsasize"); ok {
		if s.requiredRSASize, err = strconv.Atoi(v); err != nil {
			return nil, bad("RequiredRSASize %q is not a number of bits", v)
		}
		// OpenSSH takes any number and never goes below its own floor of
		// 1024 bits (sshkey_check_rsa_length).
		s.requiredRSASize = max(s.requiredRSASize, defaultRequiredRSASize)
	}
	s.passwordTurns = 3
	if v, ok := l.get("numberofpasswordprompts"); ok {
		if s.passwordTurns, err = strconv.Atoi(v); err != nil || s.passwordTurns < 1 {
			return nil, bad("NumberOfPasswordPrompts %q is not a positive number", v)
		}
	}
	if v, ok := l.get("preferredauthentications"); ok {
		s.preferred = splitList(v)
	}
	s.requestTTY = "auto"
	if v, ok := l.get("requesttty"); ok {
		s.requestTTY = strings.ToLower(v)
	}
	if v, ok := l.get("sessiontype"); ok && !s.noCommand {
		switch strings.ToLower(v) {
		case "none":
			s.noCommand = true
		case "default":
		default:
			return nil, bad("SessionType %s is not supported (default or none)", v)
		}
	}
	if s.sendEnv, err = sendEnvPatterns(l.all("sendenv")); err != nil {
		return nil, bad("%v", err)
	}
	seen := map[string]bool{}
	for _, kv := range l.first("setenv") {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, bad("SetEnv %q: want NAME=value", kv)
		}
		if !seen[name] {
			seen[name] = true
			s.setEnv = append(s.setEnv, [2]string{name, value})
		}
	}
	switch {
	case f.noTTY:
		s.requestTTY = "no"
	case f.tty >= 2:
		s.requestTTY = "force"
	case f.tty == 1:
		s.requestTTY = "yes"
	}
	s.configFile = f.configFile
	if err := s.resolveProxy(f, l); err != nil {
		return nil, err
	}
	return s, nil
}

// systemConfigPath is the system-wide ssh_config: SSHTAP_SYSTEM_CONFIG
// when set ("none" for none), else ssh's /etc/ssh/ssh_config.
func systemConfigPath(getenv func(string) string) string {
	if p := getenv("SSHTAP_SYSTEM_CONFIG"); p != "" {
		return p
	}
	return "/etc/ssh/ssh_config"
}

func isYes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true
	}
	return false
}

// sendEnvPatterns collects SendEnv patterns in order (each line's values
// separated by spaces); "-pattern" removes the patterns collected so far
// that it matches, as in ssh_config(5).
func sendEnvPatterns(lines []string) ([]string, error) {
	var out []string
	for _, line := range lines {
		for _, p := range strings.Fields(line) {
			if strings.Contains(p, "=") {
				return nil, fmt.Errorf("SendEnv %q: invalid environment name", p)
			}
			if rm, ok := strings.CutPrefix(p, "-"); ok {
				out = slices.DeleteFunc(out, func(q string) bool { return sshconfig.MatchPattern(q, rm) })
				continue
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func withoutNone(files []string) []string {
	var out []string
	for _, f := range files {
		if !strings.EqualFold(f, "none") {
			out = append(out, f)
		}
	}
	return out
}

// forwardSpec is one -L or -R: listen on listenNet/listenAddr, connect to
// dialNet/dialAddr on the other side.
type forwardSpec struct {
	listenNet, listenAddr string
	dialNet, dialAddr     string
	spec                  string
}

// parseForward reads ssh's forwarding specs:
//
//	[bind_address:]port:host:hostport
//	[bind_address:]port:remote_socket
//	local_socket:host:hostport
//	local_socket:remote_socket
//
// IPv6 addresses go in brackets. A missing bind address means localhost.
func parseForward(spec string) (forwardSpec, error) {
	fs := forwardSpec{spec: spec}
	parts, err := splitForward(spec)
	if err != nil {
		return fs, err
	}
	isSock := func(p string) bool { return strings.Contains(p, "/") }
	var listen, dial []string
	switch {
	case len(parts) >= 2 && isSock(parts[len(parts)-1]):
		listen, dial = parts[:len(parts)-1], parts[len(parts)-1:]
	case len(parts) >= 3:
		listen, dial = parts[:len(parts)-2], parts[len(parts)-2:]
	default:
		return fs, errors.New("want [bind_address:]port:host:hostport")
	}
	switch {
	case len(listen) == 1 && isSock(listen[0]):
		fs.listenNet, fs.listenAddr = "unix", listen[0]
	case len(listen) == 1:
		if _, err := strconv.ParseUint(listen[0], 10, 16); err != nil {
			return fs, fmt.Errorf("bad listen port %q", listen[0])
		}
		fs.listenNet, fs.listenAddr = "tcp", "localhost:"+listen[0]
	case len(listen) == 2:
		if _, err := strconv.ParseUint(listen[1], 10, 16); err != nil {
			return fs, fmt.Errorf("bad listen port %q", listen[1])
		}
		bind := listen[0]
		if bind == "*" {
			bind = ""
		}
		fs.listenNet, fs.listenAddr = "tcp", joinHostPort(bind, listen[1])
	default:
		return fs, errors.New("too many fields")
	}
	if len(dial) == 1 {
		fs.dialNet, fs.dialAddr = "unix", dial[0]
	} else {
		if _, err := parsePort(dial[1]); err != nil {
			return fs, err
		}
		fs.dialNet, fs.dialAddr = "tcp", joinHostPort(dial[0], dial[1])
	}
	return fs, nil
}

func joinHostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

// splitForward splits on colons outside brackets.
func splitForward(spec string) ([]string, error) {
	var parts []string
	var cur strings.Builder
	depth := 0
	for _, r := range spec {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
			if depth < 0 {
				return nil, errors.New("unbalanced ]")
			}
		case r == ':' && depth == 0:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced [")
	}
	return append(parts, cur.String()), nil
}
