package sshconfig

import "strings"

// knownKeywords is OpenSSH's client keyword list (ssh_config(5) as of
// OpenSSH 9.x/10.x), plus deprecated and unsupported keywords that ssh
// accepts and ignores. All lower case. Keywords outside this list are
// kept (available through Get) but produce a warning.
var knownKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`
addkeystoagent addressfamily batchmode bindaddress bindinterface
canonicaldomains canonicalizefallbacklocal canonicalizehostname
canonicalizemaxdots canonicalizepermittedcnames casignaturealgorithms
certificatefile channeltimeout checkhostip ciphers clearallforwardings
compression connectionattempts connecttimeout controlmaster controlpath
controlpersist dynamicforward enableescapecommandline enablesshkeysign
escapechar exitonforwardfailure fingerprinthash forkafterauthentication
forwardagent forwardx11 forwardx11timeout forwardx11trusted gatewayports
globalknownhostsfile gssapiauthentication gssapidelegatecredentials
hashknownhosts host hostbasedacceptedalgorithms hostbasedauthentication
hostkeyalgorithms hostkeyalias hostname identitiesonly identityagent
identityfile ignoreunknown include ipqos kbdinteractiveauthentication
kbdinteractivedevices kexalgorithms knownhostscommand localcommand
localforward loglevel logverbose macs match nohostauthenticationforlocalhost
numberofpasswordprompts obscurekeystroketiming passwordauthentication
permitlocalcommand permitremoteopen pkcs11provider port
preferredauthentications proxycommand proxyjump proxyusefdpass
pubkeyacceptedalgorithms pubkeyauthentication rekeylimit remotecommand
remoteforward requesttty requiredrsasize revokedhostkeys
securitykeyprovider sendenv serveralivecountmax serveraliveinterval
sessiontype setenv smartcarddevice stdinnull streamlocalbindmask
streamlocalbindunlink stricthostkeychecking syslogfacility tag tcpkeepalive
tunnel tunneldevice updatehostkeys user userknownhostsfile verifyhostkeydns
versionaddendum visualhostkey xauthlocation warnweakcrypto refuseconnection
cipher protocol rsaauthentication rhostsrsaauthentication rhostsauthentication
compressionlevel useroaming usersh fallbacktorsh useprivilegedport
globalknownhostsfile2 userknownhostsfile2 kerberosauthentication
kerberostgtpassing afstokenpassing gssapikeyexchange gssapiclientidentity
gssapiserveridentity gssapirenewalforcesrekey gssapitrustdns
gssapikexalgorithms`) {
		knownKeywords[k] = true
	}
	for k := range aliases {
		knownKeywords[k] = true
	}
}

// aliases maps deprecated keyword spellings to the keyword OpenSSH
// treats them as.
var aliases = map[string]string{
	"challengeresponseauthentication": "kbdinteractiveauthentication",
	"skeyauthentication":              "kbdinteractiveauthentication",
	"tisauthentication":               "kbdinteractiveauthentication",
	"dsaauthentication":               "pubkeyauthentication",
	"pubkeyacceptedkeytypes":          "pubkeyacceptedalgorithms",
	"hostbasedkeytypes":               "hostbasedacceptedalgorithms",
	"identityfile2":                   "identityfile",
	"keepalive":                       "tcpkeepalive",
}

// Known reports whether OpenSSH's client knows keyword (any case;
// deprecated aliases included).
func Known(keyword string) bool { return knownKeywords[strings.ToLower(keyword)] }

// Keywords returns every keyword Known accepts, lower case, aliases
// included, in no particular order.
func Keywords() []string {
	out := make([]string, 0, len(knownKeywords))
	for k := range knownKeywords {
		out = append(out, k)
	}
	return out
}

// accumulating keywords collect every value from every applicable line,
// in order; all other keywords take the first value obtained.
var accumulating = map[string]bool{
	"identityfile":    true,
	"certificatefile": true,
	"localforward":    true,
	"remoteforward":   true,
	"dynamicforward":  true,
	"sendenv":         true,
}

// dedupKeywords drop a value identical to one already collected (ssh
// does this for identity and certificate files and for forwardings).
var dedupKeywords = map[string]bool{
	"identityfile":    true,
	"certificatefile": true,
	"localforward":    true,
	"remoteforward":   true,
	"dynamicforward":  true,
}

// rawKeywords take the remainder of the line verbatim (after the
// keyword and its separator), as ssh does for commands.
var rawKeywords = map[string]bool{
	"proxycommand":      true,
	"localcommand":      true,
	"remotecommand":     true,
	"knownhostscommand": true,
}

// singleArg keywords take exactly one argument; a second one is an
// error, as in ssh. Other keywords accept any number of arguments here.
var singleArg = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`
port user hostname identityfile certificatefile identitiesonly identityagent
stricthostkeychecking forwardagent forwardx11 forwardx11trusted
serveraliveinterval serveralivecountmax connecttimeout ciphers kexalgorithms
macs hostkeyalgorithms requesttty passwordauthentication
kbdinteractiveauthentication pubkeyauthentication batchmode loglevel
proxyjump hostkeyalias dynamicforward compression connectionattempts
numberofpasswordprompts ignoreunknown exitonforwardfailure tcpkeepalive
checkhostip hashknownhosts canonicalizemaxdots`) {
		singleArg[k] = true
	}
}

// flagKeywords are yes/no keywords whose values are checked at parse
// time; the map value lists extra accepted words beyond yes/no/true/false.
var flagKeywords = map[string][]string{
	"batchmode":                    nil,
	"identitiesonly":               nil,
	"forwardx11":                   nil,
	"forwardx11trusted":            nil,
	"passwordauthentication":       nil,
	"kbdinteractiveauthentication": nil,
	"pubkeyauthentication":         {"unbound", "host-bound"},
	"stricthostkeychecking":        {"ask", "accept-new", "off"},
	"requesttty":                   {"force", "auto"},
	"compression":                  nil,
	"exitonforwardfailure":         nil,
	"tcpkeepalive":                 nil,
	"checkhostip":                  nil,
	"hashknownhosts":               nil,
}

var logLevels = map[string]bool{
	"quiet": true, "fatal": true, "error": true, "info": true, "verbose": true,
	"debug": true, "debug1": true, "debug2": true, "debug3": true,
}

// canonical returns the lower-case canonical form of a keyword.
func canonical(kw string) string {
	kw = strings.ToLower(kw)
	if a, ok := aliases[kw]; ok {
		return a
	}
	return kw
}

// Accumulates reports whether every applicable value of keyword counts
// (IdentityFile, CertificateFile, LocalForward, RemoteForward,
// DynamicForward, SendEnv) rather than only the first.
func Accumulates(keyword string) bool { return accumulating[canonical(keyword)] }
