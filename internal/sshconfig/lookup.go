package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Flag is a tri-state yes/no setting.
type Flag int8

// Flag values. Unset means no applicable line set the keyword.
const (
	Unset Flag = iota
	Yes
	No
)

// Or returns the flag's value, or def when it is Unset.
func (f Flag) Or(def bool) bool {
	switch f {
	case Yes:
		return true
	case No:
		return false
	}
	return def
}

// Host holds the settings that apply to one host. Fields are filled
// from the first value obtained for each keyword (ssh's rule); list
// fields accumulate over all applicable lines. String fields are ""
// when unset; values are as written unless noted.
type Host struct {
	// Name is the host as passed to Lookup (ssh's %n, original host).
	Name string
	// HostName is the HostName setting with %h and %% expanded,
	// lowercased as ssh does; Name lowercased when unset.
	HostName string
	Port     int    // 0 if unset
	User     string // "" if unset

	IdentityFile       []string // unexpanded; see IdentityFiles
	CertificateFile    []string // unexpanded
	IdentitiesOnly     Flag
	IdentityAgent      string
	UserKnownHostsFile []string // the first UserKnownHostsFile line's files, unexpanded; see KnownHostsFiles

	// StrictHostKeyChecking is lower case: yes, no, ask, accept-new,
	// off, true or false as written.
	StrictHostKeyChecking string
	// ForwardAgent is as written: yes, no, true, false, a socket path
	// or an environment variable reference.
	ForwardAgent      string
	ForwardX11        Flag
	ForwardX11Trusted Flag

	ServerAliveInterval int // seconds; 0 if unset
	ServerAliveCountMax int // -1 if unset
	ConnectTimeout      int // seconds; 0 if unset

	// Algorithm lists, raw, including any leading +, - or ^.
	Ciphers, KexAlgorithms, MACs, HostKeyAlgorithms string

	LocalForward  []string // each line's arguments joined by one space
	RemoteForward []string
	SendEnv       []string

	ProxyJump    string
	ProxyCommand string // raw remainder of the line

	// RequestTTY is lower case: yes, no, force, auto, true or false.
	RequestTTY                   string
	PasswordAuthentication       Flag
	KbdInteractiveAuthentication Flag
	// PubkeyAuthentication is Yes for yes/true/unbound/host-bound.
	PubkeyAuthentication Flag
	BatchMode            Flag
	LogLevel             string // upper case, e.g. "DEBUG2"

	// Undecided lists the Match blocks whose other criteria held for
	// this host but which use a criterion this package cannot evaluate
	// (exec, final, localnetwork, tagged), each as "file:line: Match
	// criterion". They were treated as not matching; ssh might have
	// applied them.
	Undecided []string

	home, localUser string
	settings        []Setting
	first           map[string]string   // keyword -> first value
	firstArgs       map[string][]string // keyword -> first line's arguments
	multi           map[string][]string // accumulating keyword -> values
	seen            map[string]map[string]bool
}

// Get returns the first value obtained for keyword (case-insensitive;
// deprecated aliases accepted), with multiple arguments joined by one
// space. For accumulating keywords (IdentityFile, CertificateFile,
// LocalForward, RemoteForward, DynamicForward, SendEnv) it returns the
// first of the values; use GetAll for all of them.
func (h *Host) Get(keyword string) (string, bool) {
	kw := canonical(keyword)
	if accumulating[kw] {
		if v := h.multi[kw]; len(v) > 0 {
			return v[0], true
		}
		return "", false
	}
	v, ok := h.first[kw]
	return v, ok
}

// GetAll returns every value of an accumulating keyword, or the first
// line's arguments for any other keyword.
func (h *Host) GetAll(keyword string) []string {
	kw := canonical(keyword)
	if accumulating[kw] {
		return append([]string(nil), h.multi[kw]...)
	}
	return append([]string(nil), h.firstArgs[kw]...)
}

// Setting is one keyword line that took effect for a host: the first
// value of a keyword, or one value of an accumulating keyword.
type Setting struct {
	Keyword string // canonical, lower case (aliases resolved)
	Written string // the keyword as written in the file
	Value   string // arguments joined by one space, or the raw remainder
	Args    []string
	File    string
	Line    int
	// Known reports whether OpenSSH knows the keyword; Ignored whether an
	// unknown keyword was covered by an IgnoreUnknown pattern.
	Known, Ignored bool
}

// Settings returns the lines that took effect, in the order they were
// obtained. Host, Match, Include and lines that lost to an earlier
// value are not included.
func (h *Host) Settings() []Setting { return append([]Setting(nil), h.settings...) }

type evalState struct {
	host  string // as typed
	h     *Host
	final bool // the final pass: only blocks that match in it alone apply
}

// Lookup returns the settings that apply to host, the name the user
// typed. Semantics:
//   - Host lines match their whitespace-separated patterns ('*', '?',
//     leading '!' negation) against host as typed, case-sensitively
//     (as ssh's first pass does); a matching negated pattern excludes
//     the block whatever the other patterns say.
//   - Match host matches the HostName obtained so far (with %h
//     expanded), or host if none; Match originalhost matches host.
//     Both use comma-separated pattern lists, case-insensitively.
//     Match user matches the User obtained so far, or the local user;
//     Match localuser matches ParseOptions.LocalUser. Match all always
//     matches. Criteria are ANDed; '!' negates one. Blocks with
//     unsupported criteria never match.
//   - Lines before the first Host/Match apply to every host; an
//     Include inside a non-matching block contributes nothing, and a
//     Host/Match inside an included file does not affect the including
//     file's state after the Include.
//   - The first value obtained for a keyword wins; ProxyJump and
//     ProxyCommand exclude each other (whichever comes first), except
//     that ProxyJump none excludes no ProxyCommand.
//   - ssh's built-in defaults are not applied (Port stays 0, User "",
//     IdentityFile nil when unset), and there is no hostname
//     canonicalization.
//   - A Match block that says "final" asks for a final pass after the
//     first, as in ssh: Match canonical and Match final hold there only,
//     so their settings fill what the first pass left unset.
func (c *Config) Lookup(host string) *Host {
	h := &Host{
		Name: host, ServerAliveCountMax: -1,
		home: c.home, localUser: c.localUser,
		first:     map[string]string{},
		firstArgs: map[string][]string{},
		multi:     map[string][]string{},
		seen:      map[string]map[string]bool{},
	}
	st := &evalState{host: host, h: h}
	c.eval(c.items, st, false)
	if c.finalPass {
		// Only what applies in the final pass alone is new there; the
		// rest was applied by the first pass, and first-obtained-wins
		// keeps its values.
		st.final = true
		c.eval(c.items, st, false)
	}
	h.fill()
	return h
}

// eval applies items. postCanon says the items are inside a block (or an
// Include of one) that matches in the final pass only; in the final pass
// only such items are applied.
func (c *Config) eval(items []item, st *evalState, postCanon bool) {
	active, blockPost := true, postCanon
	for i := range items {
		it := &items[i]
		switch it.kind {
		case kHost:
			active, blockPost = hostMatches(it.args, st.host), postCanon
		case kMatch:
			active, blockPost = c.matchMatches(it, st), postCanon || it.postCanon
		case kInclude:
			if active {
				for _, f := range it.files {
					c.eval(f, st, blockPost)
				}
			}
		case kSetting:
			if active && blockPost == st.final {
				st.h.apply(it)
			}
		}
	}
}

func hostMatches(pats []string, host string) bool {
	ok := false
	for _, p := range pats {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(host, p) {
			if neg {
				return false
			}
			ok = true
		}
	}
	return ok
}

func (c *Config) matchMatches(it *item, st *evalState) bool {
	if it.matchNever {
		return false
	}
	if (it.postCanon && !st.final) || (it.notPostCanon && st.final) {
		return false
	}
	if it.matchAll && len(it.undecided) == 0 {
		return true
	}
	for _, cr := range it.criteria {
		var r bool
		switch cr.name {
		case "host":
			target := st.host
			if hn, ok := st.h.first["hostname"]; ok {
				target = expandPercent(hn, map[byte]string{'h': st.host})
			}
			r = matchPatternList(target, cr.arg, true) == 1
		case "originalhost":
			r = matchPatternList(st.host, cr.arg, true) == 1
		case "user":
			u, ok := st.h.first["user"]
			if !ok {
				u = c.localUser
			}
			r = matchPatternList(u, cr.arg, false) == 1
		case "localuser":
			r = matchPatternList(c.localUser, cr.arg, false) == 1
		}
		if r == cr.negate {
			return false
		}
	}
	if len(it.undecided) > 0 {
		if st.final && !it.postCanon {
			return false // reported by the first pass
		}
		st.h.Undecided = append(st.h.Undecided, fmt.Sprintf("%s:%d: Match %s", it.file, it.line, strings.Join(it.undecided, " ")))
		return false
	}
	return true
}

func (h *Host) apply(it *item) {
	kw := it.keyword
	if accumulating[kw] {
		if dedupKeywords[kw] {
			seen := h.seen[kw]
			if seen == nil {
				seen = map[string]bool{}
				h.seen[kw] = seen
			}
			if seen[it.value] {
				return
			}
			seen[it.value] = true
		}
		h.multi[kw] = append(h.multi[kw], it.value)
		h.record(it)
		return
	}
	if _, ok := h.first[kw]; ok {
		return
	}
	// ProxyJump and ProxyCommand exclude each other (readconf.c): a
	// ProxyJump other than none is obtained only when no ProxyCommand
	// was, and it hides a later ProxyCommand; ProxyJump none hides
	// nothing but a later ProxyJump.
	switch kw {
	case "proxycommand":
		if pj, ok := h.first["proxyjump"]; ok && !strings.EqualFold(pj, "none") {
			return
		}
	case "proxyjump":
		if _, ok := h.first["proxycommand"]; ok && !strings.EqualFold(it.value, "none") {
			return
		}
	}
	h.first[kw] = it.value
	h.firstArgs[kw] = it.args
	h.record(it)
}

func (h *Host) record(it *item) {
	h.settings = append(h.settings, Setting{
		Keyword: it.keyword, Written: it.written, Value: it.value, Args: it.args,
		File: it.file, Line: it.line, Known: knownKeywords[it.keyword], Ignored: it.ignored,
	})
}

func flagOf(v string, ok bool) Flag {
	if !ok {
		return Unset
	}
	switch strings.ToLower(v) {
	case "no", "false":
		return No
	}
	return Yes
}

func (h *Host) fill() {
	f := func(k string) Flag { v, ok := h.first[k]; return flagOf(v, ok) }
	if hn, ok := h.first["hostname"]; ok {
		h.HostName = strings.ToLower(expandPercent(hn, map[byte]string{'h': h.Name}))
	} else {
		h.HostName = strings.ToLower(h.Name)
	}
	if v, ok := h.first["port"]; ok {
		h.Port, _ = parsePort(v)
	}
	h.User = h.first["user"]
	h.IdentityFile = h.multi["identityfile"]
	h.CertificateFile = h.multi["certificatefile"]
	h.IdentitiesOnly = f("identitiesonly")
	h.IdentityAgent = h.first["identityagent"]
	h.UserKnownHostsFile = h.firstArgs["userknownhostsfile"]
	h.StrictHostKeyChecking = strings.ToLower(h.first["stricthostkeychecking"])
	h.ForwardAgent = h.first["forwardagent"]
	h.ForwardX11 = f("forwardx11")
	h.ForwardX11Trusted = f("forwardx11trusted")
	if v, ok := h.first["serveraliveinterval"]; ok {
		h.ServerAliveInterval, _ = parseTime(v)
	}
	if v, ok := h.first["serveralivecountmax"]; ok {
		h.ServerAliveCountMax, _ = strconv.Atoi(v)
	}
	if v, ok := h.first["connecttimeout"]; ok {
		h.ConnectTimeout, _ = parseTime(v)
	}
	h.Ciphers = h.first["ciphers"]
	h.KexAlgorithms = h.first["kexalgorithms"]
	h.MACs = h.first["macs"]
	h.HostKeyAlgorithms = h.first["hostkeyalgorithms"]
	h.LocalForward = h.multi["localforward"]
	h.RemoteForward = h.multi["remoteforward"]
	h.SendEnv = h.multi["sendenv"]
	h.ProxyJump = h.first["proxyjump"]
	h.ProxyCommand = h.first["proxycommand"]
	h.RequestTTY = strings.ToLower(h.first["requesttty"])
	h.PasswordAuthentication = f("passwordauthentication")
	h.KbdInteractiveAuthentication = f("kbdinteractiveauthentication")
	h.PubkeyAuthentication = f("pubkeyauthentication")
	h.BatchMode = f("batchmode")
	h.LogLevel = strings.ToUpper(h.first["loglevel"])
}

// Tokens supplies values for percent tokens that the configuration
// cannot provide. Empty fields fall back as documented.
type Tokens struct {
	Home       string // %d and "~"; default ParseOptions.Home
	LocalUser  string // %u; default ParseOptions.LocalUser
	UID        string // %i
	LocalHost  string // %l (full local host name); %L is its first label
	RemoteUser string // %r override (e.g. ssh -l); default User, then the local user
	Port       int    // %p override (e.g. ssh -p); default Port, then 22
	HostName   string // %h override (the name finally connected to); default HostName
	// Getenv, if set, expands ${NAME} references; otherwise they are
	// left as written.
	Getenv func(name string) string
}

// Expand performs ssh's "~" and percent-token expansion on s for this
// host (as for IdentityFile, CertificateFile, UserKnownHostsFile,
// IdentityAgent). Tokens: %% %, %C hash of %l%h%p%r%j, %d home,
// %h HostName, %i UID, %j ProxyJump, %k HostKeyAlias or original host,
// %L short local host, %l local host, %n original host, %p port,
// %r remote user, %u local user. Unknown tokens are left as written
// (ssh would reject them).
func (h *Host) Expand(s string, t Tokens) string {
	home := t.Home
	if home == "" {
		home = h.home
	}
	lu := t.LocalUser
	if lu == "" {
		lu = h.localUser
	}
	ru := t.RemoteUser
	if ru == "" {
		ru = h.User
	}
	if ru == "" {
		ru = lu
	}
	port := t.Port
	if port == 0 {
		port = h.Port
	}
	if port == 0 {
		port = 22
	}
	ps := strconv.Itoa(port)
	hostName := t.HostName
	if hostName == "" {
		hostName = h.HostName
	}
	short := t.LocalHost
	if i := strings.IndexByte(short, '.'); i >= 0 {
		short = short[:i]
	}
	alias := h.first["hostkeyalias"]
	if alias == "" {
		alias = h.Name
	}
	sum := sha1.Sum([]byte(t.LocalHost + hostName + ps + ru + h.ProxyJump))
	m := map[byte]string{
		'C': hex.EncodeToString(sum[:]), 'd': home, 'h': hostName,
		'i': t.UID, 'j': h.ProxyJump, 'k': alias, 'L': short,
		'l': t.LocalHost, 'n': h.Name, 'p': ps, 'r': ru, 'u': lu,
	}
	s = expandTilde(s, home)
	if t.Getenv != nil {
		s = expandEnv(s, t.Getenv)
	}
	return expandPercent(s, m)
}

// IdentityFiles returns IdentityFile with Expand applied to each.
func (h *Host) IdentityFiles(t Tokens) []string { return h.expandAll(h.IdentityFile, t) }

// KnownHostsFiles returns UserKnownHostsFile with Expand applied to each.
func (h *Host) KnownHostsFiles(t Tokens) []string { return h.expandAll(h.UserKnownHostsFile, t) }

func (h *Host) expandAll(in []string, t Tokens) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = h.Expand(s, t)
	}
	return out
}

// expandPercent replaces %x tokens found in m and %% with %; other
// tokens and a trailing lone % are kept as written.
func expandPercent(s string, m map[byte]string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		n := s[i+1]
		if n == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		if v, ok := m[n]; ok {
			b.WriteString(v)
			i++
			continue
		}
		b.WriteByte('%')
	}
	return b.String()
}

// expandEnv replaces ${NAME} with getenv(NAME); an unterminated
// reference is kept as written.
func expandEnv(s string, getenv func(string) string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(getenv(s[i+2 : i+2+j]))
		s = s[i+3+j:]
	}
}
