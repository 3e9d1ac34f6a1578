package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sshtap/internal/sshconfig"
)

// openssh92Keywords reads every client keyword OpenSSH 9.2 knows.
func openssh92Keywords(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "openssh-9.2-keywords.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 122 {
		t.Fatalf("%d keywords in the OpenSSH 9.2 list, want 122", len(out))
	}
	return out
}

// canonicalKeyword is the keyword sshconfig files a line under (aliases
// resolved).
func canonicalKeyword(t *testing.T, kw string) string {
	t.Helper()
	switch kw {
	case "host", "match", "include":
		return kw
	}
	c, err := sshconfig.Parse(strings.NewReader(kw+" "+sample(kw)+"\n"), "-o", sshconfig.ParseOptions{})
	if err != nil {
		t.Fatalf("%s: %v", kw, err)
	}
	st := c.Lookup("h").Settings()
	if len(st) != 1 {
		t.Fatalf("%s: %d settings", kw, len(st))
	}
	return st[0].Keyword
}

// TestKeywordTableComplete: every keyword OpenSSH 9.2 knows, and every
// keyword the config parser knows, has a class; an alias has its
// keyword's class.
func TestKeywordTableComplete(t *testing.T) {
	kws := openssh92Keywords(t)
	for _, kw := range append(kws, sshconfig.Keywords()...) {
		rule, ok := keywordTable[kw]
		if !ok || rule.class == 0 || rule.why == "" {
			t.Errorf("keyword %s is not classified", kw)
			continue
		}
		if !sshconfig.Known(kw) {
			t.Errorf("keyword %s is unknown to the config parser", kw)
		}
		if rule.optional && rule.class != kwRefused {
			t.Errorf("keyword %s: only refused keywords can be optional", kw)
		}
		if canon := canonicalKeyword(t, kw); canon != kw && keywordTable[canon].class != rule.class {
			t.Errorf("alias %s is %d, its keyword %s is %d", kw, rule.class, canon, keywordTable[canon].class)
		}
	}
	for kw := range keywordTable {
		if !sshconfig.Known(kw) {
			t.Errorf("table entry %s is not a keyword OpenSSH knows", kw)
		}
	}
}

// keywordSample is a value for each keyword that the parser accepts and
// that, for refused keywords, asks for the feature sshtap lacks. Keywords
// not listed take "yes".
var keywordSample = map[string]string{
	"hostname": "127.0.0.1", "port": "2222", "user": "u", "connecttimeout": "5s",
	"refuseconnection": "no", "userknownhostsfile": "none", "globalknownhostsfile": "none",
	"stricthostkeychecking": "accept-new", "updatehostkeys": "no",
	"hostkeyalgorithms": "ssh-ed25519", "kexalgorithms": "curve25519-sha256", "ciphers": "aes128-ctr",
	"macs": "hmac-sha2-256", "pubkeyacceptedalgorithms": "ssh-ed25519", "pubkeyacceptedkeytypes": "+ssh-ed25519",
	"rekeylimit": "1G 1h", "serveraliveinterval": "10", "serveralivecountmax": "2",
	"identityfile": "~/.ssh/k", "identityfile2": "~/.ssh/k2", "identityagent": "none",
	"numberofpasswordprompts": "2", "preferredauthentications": "publickey,password",
	"forwardagent": "no", "forwardx11": "no", "xauthlocation": "/usr/bin/xauth",
	"localforward": "4000 127.0.0.1:22", "remoteforward": "4000 127.0.0.1:22", "requesttty": "no",
	"sendenv": "LANG LC_*", "setenv": "A=b", "sessiontype": "none",
	"host": "*", "match": "all", "include": "/nonexistent/sshtap-include", "ignoreunknown": "Foo*",

	"proxyjump": "bastion", "proxycommand": "nc %h %p", "dynamicforward": "1080", "escapechar": "~",
	"addressfamily": "inet", "bindaddress": "127.0.0.1", "bindinterface": "lo", "connectionattempts": "3",
	"tcpkeepalive": "no", "keepalive": "no", "hostkeyalias": "other", "revokedhostkeys": "~/.ssh/krl",
	"knownhostscommand": "/bin/true %H", "casignaturealgorithms": "ssh-ed25519", "requiredrsasize": "2048",
	"certificatefile": "~/.ssh/c", "kbdinteractivedevices": "pam", "pkcs11provider": "/lib/p11.so",
	"smartcarddevice": "/dev/sc", "securitykeyprovider": "/lib/sk.so", "permitremoteopen": "localhost:80",
	"streamlocalbindmask": "0177", "remotecommand": "ls", "channeltimeout": "session=5m",

	"loglevel": "debug", "canonicalizemaxdots": "2", "ipqos": "lowdelay", "fingerprinthash": "md5",
	"controlmaster": "auto", "controlpath": "~/.ssh/cm-%C", "controlpersist": "10m", "localcommand": "echo hi",
	"protocol": "2", "cipher": "blowfish", "compressionlevel": "6",
}

func sample(kw string) string {
	if v, ok := keywordSample[kw]; ok {
		return v
	}
	return "yes"
}

// resolveWith resolves host h with -o options, a user config file and a
// system-wide file (each "" for none) in a fresh home.
func resolveWith(t *testing.T, opts []string, userCfg, systemCfg string) (*settings, error) {
	t.Helper()
	home := t.TempDir()
	env := map[string]string{"HOME": home, "USER": "me", "SSHTAP_SYSTEM_CONFIG": "none"}
	if userCfg != "" {
		os.Mkdir(filepath.Join(home, ".ssh"), 0o700)
		if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(userCfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if systemCfg != "" {
		p := filepath.Join(home, "ssh_config")
		if err := os.WriteFile(p, []byte(systemCfg), 0o600); err != nil {
			t.Fatal(err)
		}
		env["SSHTAP_SYSTEM_CONFIG"] = p
	}
	var args []string
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	f, rest, err := parseClientArgs(append(args, "h"))
	if err != nil {
		t.Fatal(err)
	}
	return resolve(f, rest, func(k string) string { return env[k] })
}

// TestKeywordBehaviour: each keyword OpenSSH 9.2 knows behaves as its class
// says, given with -o, in the user's file and in the system-wide file:
// supported ones are accepted without a note; ignored and obsolete ones
// with exactly one note naming them; refused ones are an error naming the keyword, its value and where it was, except
// for the values that ask for what sshtap does anyway, in blocks that do
// not apply, and (for optional ones) in the system-wide file.
func TestKeywordBehaviour(t *testing.T) {
	for _, kw := range openssh92Keywords(t) {
		rule := keywordTable[kw]
		t.Run(kw, func(t *testing.T) {
			v := sample(kw)
			opt := kw + "=" + v
			line := kw + " " + v + "\n"
			switch kw {
			case "host", "match", "include", "ignoreunknown":
				// Structure: only meaningful in a file.
				if _, err := resolveWith(t, nil, line+"  Port 2222\n", ""); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				return
			}
			switch rule.class {
			case kwSupported:
				for _, src := range [][3]string{{"-o", opt}, {"file", line}, {"system", line}} {
					s, err := resolveIn(t, src)
					if err != nil {
						t.Fatalf("%s %q: %v", src[0], src[1], err)
					}
					if len(s.configNotes) != 0 {
						t.Errorf("%s %q: notes %q", src[0], src[1], s.configNotes)
					}
				}
			case kwIgnored, kwObsolete:
				for _, src := range [][3]string{{"-o", opt}, {"file", line}, {"system", line}} {
					s, err := resolveIn(t, src)
					if err != nil {
						t.Fatalf("%s %q: %v", src[0], src[1], err)
					}
					if len(s.configNotes) != 1 || !strings.Contains(s.configNotes[0], "ignoring "+kw) || !strings.Contains(s.configNotes[0], v) || !strings.Contains(s.configNotes[0], rule.why) {
						t.Errorf("%s %q: notes %q, want one naming it", src[0], src[1], s.configNotes)
					}
				}
			case kwRefused:
				if slices.Contains(rule.accept, strings.ToLower(v)) {
					t.Fatalf("sample value %q is one the table accepts", v)
				}
				want := "is not supported"
				_, err := resolveWith(t, []string{opt}, "", "")
				if err == nil || !strings.Contains(err.Error(), "-o: ssh_config keyword "+opt+" "+want) {
					t.Errorf("-o %s: error %v, want one naming it", opt, err)
				}
				_, err = resolveWith(t, nil, "# a comment\nHost h\n  "+line, "")
				if err == nil || !strings.Contains(err.Error(), ".ssh/config:3: ssh_config keyword "+kw+" "+v+" "+want) {
					t.Errorf("config %q: error %v, want one naming it", line, err)
				}
				s, err := resolveWith(t, nil, "", line)
				switch {
				case rule.optional && (err != nil || len(s.configNotes) != 1 || !strings.Contains(s.configNotes[0], kw+" "+v)):
					t.Errorf("system-wide %q: %v, want one note", line, err)
				case !rule.optional && (err == nil || !strings.Contains(err.Error(), "ssh_config:1: ssh_config keyword "+kw+" "+v)):
					t.Errorf("system-wide %q: error %v, want one naming it", line, err)
				}
				// A block that does not apply is not checked.
				if _, err := resolveWith(t, nil, "Host other\n  "+line, "Match user nobody\n  "+line); err != nil {
					t.Errorf("%q in blocks that do not apply: %v", line, err)
				}
				// The values that ask for what sshtap does anyway pass
				// silently, and win over a refused value that comes later.
				for _, ok := range rule.accept {
					s, err := resolveWith(t, []string{kw + "=" + ok}, line, line)
					if err != nil || len(s.configNotes) != 0 {
						t.Errorf("%s %s: %v, notes %q", kw, ok, err, s.configNotes)
					}
				}
			default:
				t.Fatalf("class %d", rule.class)
			}
		})
	}
}

// resolveIn resolves with one setting given as src[0] ("-o", "file",
// "system") with text src[1].
func resolveIn(t *testing.T, src [3]string) (*settings, error) {
	t.Helper()
	switch src[0] {
	case "-o":
		return resolveWith(t, []string{src[1]}, "", "")
	case "file":
		return resolveWith(t, nil, src[1], "")
	}
	return resolveWith(t, nil, "", src[1])
}

// TestKeywordsUnknownAndUndecided: a keyword OpenSSH does not know is an
// error naming it unless IgnoreUnknown covers it; a Match criterion
// sshtap cannot evaluate is an error when the block could apply.
func TestKeywordsUnknownAndUndecided(t *testing.T) {
	if _, err := resolveWith(t, []string{"Frobnicate=yes"}, "", ""); err == nil || !strings.Contains(err.Error(), "Frobnicate=yes is unknown") {
		t.Errorf("unknown -o: %v", err)
	}
	if _, err := resolveWith(t, nil, "Host h\n  UseKeychain yes\n", ""); err == nil || !strings.Contains(err.Error(), "config:2: ssh_config keyword UseKeychain yes is unknown") {
		t.Errorf("unknown in a file: %v", err)
	}
	s, err := resolveWith(t, nil, "IgnoreUnknown UseKeychain\nHost h\n  UseKeychain yes\n", "")
	if err != nil || len(s.configNotes) != 1 || !strings.Contains(s.configNotes[0], "UseKeychain yes") {
		t.Errorf("IgnoreUnknown: %v, notes %q", err, s.configNotes)
	}
	if _, err := resolveWith(t, nil, "Match host h exec \"true\"\n  ProxyJump bastion\n", ""); err == nil || !strings.Contains(err.Error(), "config:1: Match exec") {
		t.Errorf("Match exec that may apply: %v", err)
	}
	if _, err := resolveWith(t, nil, "Match host other exec \"true\"\n  ProxyJump bastion\n", ""); err != nil {
		t.Errorf("Match exec ruled out by host: %v", err)
	}
}

// TestKeywordsSystemWide: Debian's /etc/ssh/ssh_config works (GSSAPI is
// noted, SendEnv and HashKnownHosts honoured); the user's file and -o win
// over it; -F skips it, as in ssh.
func TestKeywordsSystemWide(t *testing.T) {
	debian := "Include /etc/ssh/ssh_config.d/*.conf\nHost *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n    GSSAPIAuthentication yes\n"
	s, err := resolveWith(t, nil, "", debian)
	if err != nil {
		t.Fatal(err)
	}
	if !s.hashKnownHosts || !slices.Equal(s.sendEnv, []string{"LANG", "LC_*"}) {
		t.Errorf("hashKnownHosts %v, sendEnv %q", s.hashKnownHosts, s.sendEnv)
	}
	if len(s.configNotes) != 1 || !strings.Contains(s.configNotes[0], "GSSAPIAuthentication yes") {
		t.Errorf("notes %q", s.configNotes)
	}
	// "SendEnv -pattern" removes what came before it: the user's own
	// patterns, not the system-wide file's, which is read after.
	s, err = resolveWith(t, []string{"GSSAPIAuthentication=no"}, "HashKnownHosts no\nSendEnv FOO LC_X\nSendEnv -F*\n", debian)
	if err != nil || s.hashKnownHosts || len(s.configNotes) != 0 || !slices.Equal(s.sendEnv, []string{"LC_X", "LANG", "LC_*"}) {
		t.Errorf("user settings first: %v, hash %v, notes %q, sendEnv %q", err, s.hashKnownHosts, s.configNotes, s.sendEnv)
	}
	// The system file's refusals are errors for keywords that are not
	// optional.
	if _, err := resolveWith(t, nil, "", "Host *\n  Tunnel yes\n"); err == nil || !strings.Contains(err.Error(), "Tunnel yes") {
		t.Errorf("system-wide Tunnel yes: %v", err)
	}
}

// TestKeywordsHonoured: the keywords this table added support for take
// effect.
func TestKeywordsHonoured(t *testing.T) {
	s, err := resolveWith(t, []string{"SetEnv=A=1 B=2 A=3", "SessionType=none", "XAuthLocation=~/bin/xauth"},
		"SetEnv C=4\nClearAllForwardings yes\nLocalForward 4000 127.0.0.1:22\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]string{{"A", "1"}, {"B", "2"}}; !slices.Equal(s.setEnv, want) {
		t.Errorf("setEnv %q, want %q (the first line, first value of a name)", s.setEnv, want)
	}
	if !s.noCommand || len(s.locals) != 0 || !strings.HasSuffix(s.xauth, "/bin/xauth") || strings.HasPrefix(s.xauth, "~") {
		t.Errorf("noCommand %v, locals %v, xauth %q", s.noCommand, s.locals, s.xauth)
	}
	if _, err := resolveWith(t, []string{"RefuseConnection=yes"}, "", ""); err == nil || !strings.Contains(err.Error(), "RefuseConnection") {
		t.Errorf("RefuseConnection yes: %v", err)
	}
	if _, err := resolveWith(t, []string{"ForwardX11=yes", "ForwardX11Trusted=no"}, "", ""); err == nil || !strings.Contains(err.Error(), "ForwardX11Trusted no") {
		t.Errorf("untrusted X11: %v", err)
	}
	if _, err := resolveWith(t, []string{"SessionType=subsystem"}, "", ""); err == nil || !strings.Contains(err.Error(), "SessionType subsystem") {
		t.Errorf("SessionType subsystem: %v", err)
	}
	c := &client{app: &app{environ: func() []string { return []string{"LANG=C", "LC_ALL=x", "LCX=no", "HOME=/h"} }}, s: &settings{sendEnv: []string{"LANG", "LC_*"}, setEnv: [][2]string{{"A", "1"}}}}
	if got, want := c.envToSend(), [][2]string{{"LANG", "C"}, {"LC_ALL", "x"}, {"A", "1"}}; !slices.Equal(got, want) {
		t.Errorf("envToSend %q, want %q", got, want)
	}
}

// TestKeywordsCLI: the command reports a refused keyword from -o and from
// a file by name and exits 255; an ignored one prints one note under -v
// and nothing without it.
func TestKeywordsCLI(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	os.WriteFile(cfg, []byte("Host *\n  GSSAPIAuthentication yes\n"), 0o600)
	env := []string{"HOME=" + home, "USER=me"}
	r := runBin(t, 30*time.Second, env, "", "-F", cfg, "127.0.0.1", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "sshtap: "+cfg+":2: ssh_config keyword GSSAPIAuthentication yes is not supported") {
		t.Errorf("config: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runBin(t, 30*time.Second, env, "", "-F", "none", "-o", "Tunnel=point-to-point", "127.0.0.1", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "sshtap: -o: ssh_config keyword Tunnel=point-to-point is not supported") {
		t.Errorf("-o: exit %d, stderr %q", r.code, r.stderr)
	}
	port := strconv.Itoa(freeTCPPort(t)) // nothing listens: the run ends at connect
	for _, verbose := range []bool{false, true} {
		args := []string{"-F", "none", "-o", "VisualHostKey=yes", "-p", port, "127.0.0.1", "true"}
		if verbose {
			args = append([]string{"-v"}, args...)
		}
		r = runBin(t, 30*time.Second, env, "", args...)
		n := strings.Count(r.stderr, "VisualHostKey")
		if r.code != 255 || !strings.Contains(r.stderr, "connection refused") || (verbose && n != 1) || (!verbose && n != 0) {
			t.Errorf("-v %v: exit %d, %d lines naming it, stderr %q", verbose, r.code, n, r.stderr)
		}
	}
}
