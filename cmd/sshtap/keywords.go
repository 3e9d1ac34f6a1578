package main

import (
	"fmt"
	"slices"
	"strings"

	"sshtap/internal/sshconfig"
)

// keywordClass is what sshtap does with an ssh_config keyword (from a
// config file or -o).
type keywordClass uint8

const (
	// kwSupported keywords are honoured; keywordRule.why says where.
	kwSupported keywordClass = iota + 1
	// kwIgnored keywords change nothing about where or how sshtap's
	// connection is made (display, logging, or settings that only matter
	// with a refused keyword): accepted, with a note under -v.
	kwIgnored
	// kwObsolete keywords are ones OpenSSH itself accepts and ignores
	// (deprecated or unsupported there): accepted, with a note under -v.
	kwObsolete
	// kwRefused keywords are an error naming them, unless the value is
	// one of keywordRule.accept (what sshtap does anyway: "no", "none").
	kwRefused
)

// keywordRule is one keywordTable entry.
type keywordRule struct {
	class keywordClass
	// why is where a supported keyword is handled, or why a keyword is
	// ignored or refused (shown in the note or error).
	why string
	// accept lists the values (lower case) of a refused keyword that ask
	// for what sshtap does anyway, usually the feature turned off; they
	// are accepted silently.
	accept []string
	// optional marks a refused keyword that only enables behaviour a
	// connection does without (another authentication method, an extra
	// lookup). In the system-wide file it gets a note under -v instead of
	// an error, so a distribution's defaults (GSSAPIAuthentication yes)
	// do not stop every connection.
	optional bool
}

// keywordTable classifies every client keyword OpenSSH knows (all of
// OpenSSH 9.2's, aliases and deprecated names included, and the newer
// ones sshconfig knows), lower case. A keyword OpenSSH knows that is
// missing here is refused; one OpenSSH does not know is an error, as in
// ssh, unless an IgnoreUnknown pattern covers it.
var keywordTable = map[string]keywordRule{
	// Structure.
	"host":          {class: kwSupported, why: "sshconfig: Host blocks"},
	"match":         {class: kwSupported, why: "sshconfig: Match all, host, originalhost, user, localuser; other criteria are refused when they could apply"},
	"include":       {class: kwSupported, why: "sshconfig: Include"},
	"ignoreunknown": {class: kwSupported, why: "sshconfig: unknown keywords it covers get a note under -v"},

	// Where to connect.
	"hostname":                    {class: kwSupported, why: "resolve: hostname"},
	"port":                        {class: kwSupported, why: "resolve: port"},
	"user":                        {class: kwSupported, why: "resolve: user"},
	"connecttimeout":              {class: kwSupported, why: "resolve: connectTimeout"},
	"refuseconnection":            {class: kwSupported, why: "resolve: an error, as in ssh"},
	"proxyjump":                   {class: kwSupported, why: "resolveProxy: jump hosts, each an sshtap Conn through the previous one"},
	"proxycommand":                {class: kwSupported, why: "resolveProxy: the command's stdin and stdout carry the connection"},
	"proxyusefdpass":              {class: kwRefused, why: "sshtap does not take a socket from a ProxyCommand", accept: []string{"no"}},
	"addressfamily":               {class: kwRefused, why: "sshtap connects to any address family", accept: []string{"any"}},
	"bindaddress":                 {class: kwRefused, why: "sshtap does not choose the local address"},
	"bindinterface":               {class: kwRefused, why: "sshtap does not choose the local interface"},
	"connectionattempts":          {class: kwRefused, why: "sshtap connects once", accept: []string{"1"}},
	"canonicalizehostname":        {class: kwRefused, why: "sshtap does not canonicalize host names", accept: []string{"no"}},
	"canonicaldomains":            {class: kwIgnored, why: "only used with CanonicalizeHostname, which is refused"},
	"canonicalizefallbacklocal":   {class: kwIgnored, why: "only used with CanonicalizeHostname, which is refused"},
	"canonicalizemaxdots":         {class: kwIgnored, why: "only used with CanonicalizeHostname, which is refused"},
	"canonicalizepermittedcnames": {class: kwIgnored, why: "only used with CanonicalizeHostname, which is refused"},
	"tcpkeepalive":                {class: kwRefused, why: "sshtap's connections always use TCP keepalives", accept: []string{"yes", "true"}},
	"ipqos":                       {class: kwIgnored, why: "traffic class marking only"},
	"controlmaster":               {class: kwIgnored, why: "sshtap neither uses nor offers a shared connection: each run makes and checks its own"},
	"controlpath":                 {class: kwIgnored, why: "sshtap neither uses nor offers a shared connection: each run makes and checks its own"},
	"controlpersist":              {class: kwIgnored, why: "sshtap neither uses nor offers a shared connection: each run makes and checks its own"},
	"forkafterauthentication":     {class: kwRefused, why: "sshtap stays in the foreground", accept: []string{"no"}},
	"channeltimeout":              {class: kwRefused, why: "sshtap does not close idle channels", accept: []string{"none"}},
	"obscurekeystroketiming":      {class: kwRefused, why: "sshtap sends keystrokes as typed", accept: []string{"no"}},

	// Host keys.
	"userknownhostsfile":               {class: kwSupported, why: "resolve: knownHosts"},
	"globalknownhostsfile":             {class: kwSupported, why: "resolve: globalKnown"},
	"stricthostkeychecking":            {class: kwSupported, why: "resolve: check"},
	"hashknownhosts":                   {class: kwSupported, why: "resolve: hashKnownHosts"},
	"updatehostkeys":                   {class: kwSupported, why: "resolve: updateHostKeys"},
	"hostkeyalgorithms":                {class: kwSupported, why: "resolve: hkAlgs"},
	"hostkeyalias":                     {class: kwRefused, why: "sshtap looks host keys up under the host name"},
	"checkhostip":                      {class: kwRefused, why: "sshtap does not check the address in known_hosts", accept: []string{"no"}},
	"verifyhostkeydns":                 {class: kwRefused, why: "sshtap does not look up SSHFP records", accept: []string{"no"}, optional: true},
	"nohostauthenticationforlocalhost": {class: kwRefused, why: "sshtap checks localhost's key like any other", accept: []string{"no"}},
	"revokedhostkeys":                  {class: kwRefused, why: "sshtap reads revocations only from @revoked lines", accept: []string{"none"}},
	"knownhostscommand":                {class: kwRefused, why: "sshtap reads only known_hosts files", accept: []string{"none"}},
	"casignaturealgorithms":            {class: kwSupported, why: "resolve: caSigAlgs"},
	"requiredrsasize":                  {class: kwSupported, why: "resolve: requiredRSASize; smaller RSA host keys end the connection, smaller RSA user keys are skipped"},
	"visualhostkey":                    {class: kwIgnored, why: "display only: sshtap prints fingerprints, no ASCII art"},
	"fingerprinthash":                  {class: kwIgnored, why: "display only: sshtap shows SHA256 fingerprints"},

	// Algorithms and the transport.
	"kexalgorithms":            {class: kwSupported, why: "resolve: kex"},
	"ciphers":                  {class: kwSupported, why: "resolve: ciphers"},
	"macs":                     {class: kwSupported, why: "resolve: macs"},
	"pubkeyacceptedalgorithms": {class: kwSupported, why: "resolve: pubkeyAlgs"},
	"pubkeyacceptedkeytypes":   {class: kwSupported, why: "alias of PubkeyAcceptedAlgorithms"},
	"compression":              {class: kwSupported, why: "resolve: compression"},
	"rekeylimit":               {class: kwSupported, why: "resolve: rekeyBytes, rekeyInterval"},
	"serveraliveinterval":      {class: kwSupported, why: "resolve: keepAlive"},
	"serveralivecountmax":      {class: kwSupported, why: "resolve: keepAliveMax"},
	"warnweakcrypto":           {class: kwIgnored, why: "warnings only: sshtap warns after the kex event when a legacy algorithm was negotiated"},

	// Authentication.
	"identityfile":                    {class: kwSupported, why: "resolve: identities"},
	"identityfile2":                   {class: kwSupported, why: "alias of IdentityFile"},
	"identitiesonly":                  {class: kwSupported, why: "resolve: identitiesOnly"},
	"identityagent":                   {class: kwSupported, why: "resolve: identityAgent"},
	"batchmode":                       {class: kwSupported, why: "resolve: batch"},
	"pubkeyauthentication":            {class: kwSupported, why: "resolve: pubkey"},
	"dsaauthentication":               {class: kwSupported, why: "alias of PubkeyAuthentication"},
	"passwordauthentication":          {class: kwSupported, why: "resolve: password"},
	"kbdinteractiveauthentication":    {class: kwSupported, why: "resolve: kbdInt"},
	"challengeresponseauthentication": {class: kwSupported, why: "alias of KbdInteractiveAuthentication"},
	"skeyauthentication":              {class: kwSupported, why: "alias of KbdInteractiveAuthentication"},
	"tisauthentication":               {class: kwSupported, why: "alias of KbdInteractiveAuthentication"},
	"numberofpasswordprompts":         {class: kwSupported, why: "resolve: passwordTurns"},
	"preferredauthentications":        {class: kwSupported, why: "resolve: preferred"},
	"certificatefile":                 {class: kwRefused, why: "sshtap offers only the -cert.pub next to a key"},
	"kbdinteractivedevices":           {class: kwRefused, why: "sshtap asks for the server's default devices"},
	"gssapiauthentication":            {class: kwRefused, why: "sshtap has no GSSAPI authentication", accept: []string{"no", "false"}, optional: true},
	"gssapidelegatecredentials":       {class: kwRefused, why: "sshtap has no GSSAPI authentication", accept: []string{"no", "false"}, optional: true},
	"gssapikeyexchange":               {class: kwRefused, why: "sshtap has no GSSAPI key exchange", accept: []string{"no", "false"}, optional: true},
	"gssapiclientidentity":            {class: kwIgnored, why: "only used with GSSAPI authentication, which is refused"},
	"gssapiserveridentity":            {class: kwIgnored, why: "only used with GSSAPI authentication, which is refused"},
	"gssapirenewalforcesrekey":        {class: kwIgnored, why: "only used with GSSAPI key exchange, which is refused"},
	"gssapitrustdns":                  {class: kwIgnored, why: "only used with GSSAPI authentication, which is refused"},
	"gssapikexalgorithms":             {class: kwIgnored, why: "only used with GSSAPI key exchange, which is refused"},
	"hostbasedauthentication":         {class: kwRefused, why: "sshtap has no host-based authentication", accept: []string{"no", "false"}, optional: true},
	"enablesshkeysign":                {class: kwRefused, why: "sshtap has no host-based authentication", accept: []string{"no", "false"}, optional: true},
	"hostbasedacceptedalgorithms":     {class: kwIgnored, why: "only used with HostbasedAuthentication, which is refused"},
	"hostbasedkeytypes":               {class: kwIgnored, why: "only used with HostbasedAuthentication, which is refused"},
	"pkcs11provider":                  {class: kwRefused, why: "sshtap loads no PKCS#11 provider (keys in an agent work)", accept: []string{"none"}},
	"smartcarddevice":                 {class: kwRefused, why: "sshtap loads no PKCS#11 provider (keys in an agent work)", accept: []string{"none"}},
	"securitykeyprovider":             {class: kwRefused, why: "sshtap uses no FIDO middleware (keys in an agent work)", accept: []string{"internal"}},
	"addkeystoagent":                  {class: kwRefused, why: "sshtap does not add keys to the agent", accept: []string{"no", "false"}, optional: true},

	// Forwarding.
	"forwardagent":          {class: kwSupported, why: "resolve: forwardAgent"},
	"forwardx11":            {class: kwSupported, why: "resolve: forwardX11"},
	"forwardx11trusted":     {class: kwSupported, why: "resolve: sshtap's X11 forwarding is trusted; no with X11 forwarding is refused"},
	"forwardx11timeout":     {class: kwIgnored, why: "only used for untrusted X11 forwarding, which sshtap does not do"},
	"xauthlocation":         {class: kwSupported, why: "resolve: xauth"},
	"localforward":          {class: kwSupported, why: "resolve: locals"},
	"remoteforward":         {class: kwSupported, why: "resolve: remotes"},
	"dynamicforward":        {class: kwSupported, why: "resolve: dynamics; dynamic.go serves SOCKS"},
	"clearallforwardings":   {class: kwSupported, why: "resolve: clears locals, remotes and dynamics"},
	"exitonforwardfailure":  {class: kwSupported, why: "forward.go: a forward that cannot be set up always ends sshtap"},
	"gatewayports":          {class: kwRefused, why: "sshtap's local forwards listen on localhost unless given a bind address", accept: []string{"no", "false"}},
	"permitremoteopen":      {class: kwRefused, why: "sshtap does not filter remote opens", accept: []string{"any"}},
	"streamlocalbindmask":   {class: kwRefused, why: "sshtap creates Unix sockets with the process umask"},
	"streamlocalbindunlink": {class: kwRefused, why: "sshtap does not remove existing Unix sockets", accept: []string{"no", "false"}},
	"tunnel":                {class: kwRefused, why: "sshtap has no tun/tap forwarding", accept: []string{"no", "false"}},
	"tunneldevice":          {class: kwIgnored, why: "only used with Tunnel, which is refused"},

	// The session.
	"requesttty":              {class: kwSupported, why: "resolve: requestTTY"},
	"sendenv":                 {class: kwSupported, why: "resolve: sendEnv; session.go sends matching variables"},
	"setenv":                  {class: kwSupported, why: "resolve: setEnv; session.go sends them"},
	"sessiontype":             {class: kwSupported, why: "resolve: none is -N; subsystem is refused"},
	"remotecommand":           {class: kwRefused, why: "give the command on the command line", accept: []string{"none"}},
	"stdinnull":               {class: kwRefused, why: "sshtap always reads stdin; redirect it from /dev/null", accept: []string{"no", "false"}},
	"escapechar":              {class: kwSupported, why: "resolve: escapeChar; escape.go"},
	"enableescapecommandline": {class: kwSupported, why: "resolve: escapeCmdLine (~C)"},
	"localcommand":            {class: kwIgnored, why: "only run with PermitLocalCommand, which is refused"},
	"permitlocalcommand":      {class: kwRefused, why: "sshtap runs no local command", accept: []string{"no", "false"}},
	"tag":                     {class: kwIgnored, why: "only read by Match tagged, which is refused"},

	// Logging.
	"loglevel":        {class: kwIgnored, why: "logging only: use -q and -v"},
	"logverbose":      {class: kwIgnored, why: "logging only: use -v"},
	"syslogfacility":  {class: kwIgnored, why: "logging only: sshtap does not log to syslog"},
	"versionaddendum": {class: kwIgnored, why: "a server keyword"},

	// Keywords OpenSSH itself accepts and ignores.
	"protocol":                {class: kwObsolete, why: "ignored by OpenSSH: SSH-2 only"},
	"cipher":                  {class: kwObsolete, why: "deprecated in OpenSSH (SSH-1)"},
	"fallbacktorsh":           {class: kwObsolete, why: "deprecated in OpenSSH"},
	"globalknownhostsfile2":   {class: kwObsolete, why: "deprecated in OpenSSH"},
	"userknownhostsfile2":     {class: kwObsolete, why: "deprecated in OpenSSH"},
	"rhostsauthentication":    {class: kwObsolete, why: "deprecated in OpenSSH"},
	"useroaming":              {class: kwObsolete, why: "deprecated in OpenSSH"},
	"usersh":                  {class: kwObsolete, why: "deprecated in OpenSSH"},
	"useprivilegedport":       {class: kwObsolete, why: "deprecated in OpenSSH"},
	"afstokenpassing":         {class: kwObsolete, why: "unsupported in OpenSSH"},
	"kerberosauthentication":  {class: kwObsolete, why: "unsupported in OpenSSH"},
	"kerberostgtpassing":      {class: kwObsolete, why: "unsupported in OpenSSH"},
	"rsaauthentication":       {class: kwObsolete, why: "unsupported in OpenSSH (SSH-1)"},
	"rhostsrsaauthentication": {class: kwObsolete, why: "unsupported in OpenSSH (SSH-1)"},
	"compressionlevel":        {class: kwObsolete, why: "unsupported in OpenSSH (SSH-1)"},
	"keepalive":               {class: kwRefused, why: "alias of TCPKeepAlive: sshtap's connections always use TCP keepalives", accept: []string{"yes", "true"}},
}

// configSource is one place settings come from, in precedence order: the
// -o options, the user's file (or -F), the system-wide file.
type configSource struct {
	host   *sshconfig.Host
	system bool // the system-wide file: optional keywords get a note, not an error
}

// keywordError is a setting sshtap refuses.
type keywordError struct {
	where   string // "-o" or "file:line"
	setting string // keyword and value as written
	msg     string
}

func (e *keywordError) Error() string {
	return fmt.Sprintf("%s: ssh_config keyword %s %s", e.where, e.setting, e.msg)
}

// checkKeywords applies keywordTable to the settings that take effect
// across srcs (the first value of a keyword wins across sources, as in
// ssh; every value of a repeatable one counts). It returns the notes to
// show under -v, or an error naming the first refused setting. Lines in
// blocks that do not apply to the host, and values that lost to an
// earlier one, are not checked.
func checkKeywords(srcs []configSource) (notes []string, err error) {
	taken := map[string]bool{}
	for _, src := range srcs {
		if src.host == nil {
			continue
		}
		for _, u := range src.host.Undecided {
			return nil, fmt.Errorf("%s: sshtap cannot evaluate this criterion, and the block may apply to %s", u, src.host.Name)
		}
		for _, st := range src.host.Settings() {
			if !sshconfig.Accumulates(st.Keyword) {
				if taken[st.Keyword] {
					continue
				}
				taken[st.Keyword] = true
			}
			note, err := checkSetting(st, src.system)
			if err != nil {
				return nil, err
			}
			if note != "" {
				notes = append(notes, note)
			}
		}
	}
	return notes, nil
}

// checkSetting classifies one setting: "" and nil when it is honoured or
// an accepted value, a note, or a *keywordError.
func checkSetting(st sshconfig.Setting, system bool) (note string, err error) {
	where := st.File
	setting := st.Written + " " + st.Value
	if st.File == "-o" {
		setting = st.Written + "=" + st.Value
	} else {
		where = fmt.Sprintf("%s:%d", st.File, st.Line)
	}
	ignoring := func(why string) string {
		return fmt.Sprintf("config: ignoring %s (%s): %s", setting, where, why)
	}
	if !st.Known {
		if st.Ignored {
			return ignoring("unknown keyword covered by IgnoreUnknown"), nil
		}
		return "", &keywordError{where, setting, "is unknown (a typo? IgnoreUnknown lists keywords to skip)"}
	}
	rule, ok := keywordTable[st.Keyword]
	if !ok {
		return "", &keywordError{where, setting, "is not supported by sshtap"}
	}
	switch rule.class {
	case kwSupported:
		return "", nil
	case kwIgnored, kwObsolete:
		return ignoring(rule.why), nil
	}
	if slices.Contains(rule.accept, strings.ToLower(st.Value)) {
		return "", nil
	}
	msg := "is not supported by sshtap: " + rule.why
	if system && rule.optional {
		return ignoring(strings.TrimPrefix(msg, "is ")), nil
	}
	return "", &keywordError{where, setting, msg}
}
