package sshconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse(strings.NewReader(src), "cfg", ParseOptions{Home: "/home/u", LocalUser: "lu"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestLookupTable(t *testing.T) {
	tests := []struct {
		name, src, host string
		check           func(t *testing.T, h *Host)
	}{
		{"first value wins", "Host a\n Port 1\n Port 2\nHost *\n Port 3\n User x\n", "a", func(t *testing.T, h *Host) {
			if h.Port != 1 || h.User != "x" {
				t.Errorf("port %d user %q", h.Port, h.User)
			}
		}},
		{"defaults after specific", "Host web\n User alice\nHost *\n User root\n Port 2200\n", "db", func(t *testing.T, h *Host) {
			if h.User != "root" || h.Port != 2200 {
				t.Errorf("user %q port %d", h.User, h.Port)
			}
		}},
		{"global lines apply", "Port 10\nHost x\n Port 20\n", "x", func(t *testing.T, h *Host) {
			if h.Port != 10 {
				t.Errorf("port %d", h.Port)
			}
		}},
		{"negation excludes", "Host *.example.com !bad.example.com\n User good\nHost *\n User other\n", "bad.example.com", func(t *testing.T, h *Host) {
			if h.User != "other" {
				t.Errorf("user %q", h.User)
			}
		}},
		{"negation others match", "Host *.example.com !bad.example.com\n User good\n", "ok.example.com", func(t *testing.T, h *Host) {
			if h.User != "good" {
				t.Errorf("user %q", h.User)
			}
		}},
		{"negation alone never matches", "Host !foo\n User n\n", "bar", func(t *testing.T, h *Host) {
			if h.User != "" {
				t.Errorf("user %q", h.User)
			}
		}},
		{"multiple patterns and ?", "Host alpha b?ta\n User m\n", "beta", func(t *testing.T, h *Host) {
			if h.User != "m" {
				t.Errorf("user %q", h.User)
			}
		}},
		{"host match case-sensitive", "Host Foo\n User m\n", "foo", func(t *testing.T, h *Host) {
			if h.User != "" {
				t.Errorf("user %q", h.User)
			}
		}},
		{"equals syntax", "Host=x\nPort=2222\nUser = bob\nHostName =real.example\nConnectTimeout= 1m\n", "x", func(t *testing.T, h *Host) {
			if h.Port != 2222 || h.User != "bob" || h.HostName != "real.example" || h.ConnectTimeout != 60 {
				t.Errorf("%+v", h)
			}
		}},
		{"keyword case", "HOSTNAME Real\nporT 5\n", "x", func(t *testing.T, h *Host) {
			if h.HostName != "real" || h.Port != 5 {
				t.Errorf("%q %d", h.HostName, h.Port)
			}
		}},
		{"quotes", "IdentityFile \"/path with space/id\"\nUserKnownHostsFile \"/a b\" '/c d' e\\ f\n", "x", func(t *testing.T, h *Host) {
			if !reflect.DeepEqual(h.IdentityFile, []string{"/path with space/id"}) {
				t.Errorf("%q", h.IdentityFile)
			}
			if !reflect.DeepEqual(h.UserKnownHostsFile, []string{"/a b", "/c d", "e f"}) {
				t.Errorf("%q", h.UserKnownHostsFile)
			}
		}},
		{"comments", "# c\n\n   # indented\nUser a # trailing\n", "x", func(t *testing.T, h *Host) {
			if h.User != "a" {
				t.Errorf("%q", h.User)
			}
		}},
		{"identityfile accumulates and dedups", "Host x\n IdentityFile ~/a\nHost *\n IdentityFile ~/b\n IdentityFile ~/a\n", "x", func(t *testing.T, h *Host) {
			if !reflect.DeepEqual(h.IdentityFile, []string{"~/a", "~/b"}) {
				t.Errorf("%q", h.IdentityFile)
			}
		}},
		{"forwards accumulate", "LocalForward 1 h:1\nLocalForward 2 h:2\nRemoteForward 3 h:3\nSendEnv A\nSendEnv B C\n", "x", func(t *testing.T, h *Host) {
			if !reflect.DeepEqual(h.LocalForward, []string{"1 h:1", "2 h:2"}) || !reflect.DeepEqual(h.RemoteForward, []string{"3 h:3"}) {
				t.Errorf("%q %q", h.LocalForward, h.RemoteForward)
			}
			if !reflect.DeepEqual(h.SendEnv, []string{"A", "B C"}) {
				t.Errorf("%q", h.SendEnv)
			}
			if got := h.GetAll("localforward"); len(got) != 2 {
				t.Errorf("GetAll %q", got)
			}
		}},
		{"userknownhostsfile first line wins", "UserKnownHostsFile /a /b\nUserKnownHostsFile /c\n", "x", func(t *testing.T, h *Host) {
			if !reflect.DeepEqual(h.UserKnownHostsFile, []string{"/a", "/b"}) {
				t.Errorf("%q", h.UserKnownHostsFile)
			}
		}},
		{"hostname token", "Host *\n HostName %h.internal%%\n", "Box", func(t *testing.T, h *Host) {
			if h.HostName != "box.internal%" || h.Name != "Box" {
				t.Errorf("%q %q", h.HostName, h.Name)
			}
		}},
		{"hostname default", "", "Box", func(t *testing.T, h *Host) {
			if h.HostName != "box" || h.Port != 0 || h.ServerAliveCountMax != -1 {
				t.Errorf("%+v", h)
			}
		}},
		{"typed fields", `
IdentitiesOnly yes
IdentityAgent none
StrictHostKeyChecking Accept-New
ForwardAgent /tmp/sock
ForwardX11 no
ForwardX11Trusted true
ServerAliveInterval 1m30s
ServerAliveCountMax 0
Ciphers +aes128-cbc
KexAlgorithms -diffie-hellman-group1-sha1
MACs ^hmac-sha1
HostKeyAlgorithms ssh-ed25519
RequestTTY force
PasswordAuthentication no
ChallengeResponseAuthentication no
PubkeyAuthentication host-bound
BatchMode yes
LogLevel debug2
ProxyJump j1,j2
ProxyCommand nc %h %p
`, "x", func(t *testing.T, h *Host) {
			want := Host{IdentitiesOnly: Yes, IdentityAgent: "none", StrictHostKeyChecking: "accept-new",
				ForwardAgent: "/tmp/sock", ForwardX11: No, ForwardX11Trusted: Yes, ServerAliveInterval: 90,
				Ciphers: "+aes128-cbc", KexAlgorithms: "-diffie-hellman-group1-sha1", MACs: "^hmac-sha1",
				HostKeyAlgorithms: "ssh-ed25519", RequestTTY: "force", PasswordAuthentication: No,
				KbdInteractiveAuthentication: No, PubkeyAuthentication: Yes, BatchMode: Yes, LogLevel: "DEBUG2",
				ProxyJump: "j1,j2"}
			got := *h
			if got.ServerAliveCountMax != 0 || got.ProxyCommand != "" {
				t.Errorf("countmax %d proxycommand %q", got.ServerAliveCountMax, got.ProxyCommand)
			}
			want.Name, want.HostName, want.home, want.localUser = got.Name, got.HostName, got.home, got.localUser
			want.first, want.firstArgs, want.multi, want.seen, want.ServerAliveCountMax = got.first, got.firstArgs, got.multi, got.seen, got.ServerAliveCountMax
			want.settings = got.settings
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		}},
		{"proxycommand raw", "ProxyCommand  nc \"%h\" %p # hi\n", "x", func(t *testing.T, h *Host) {
			if h.ProxyCommand != `nc "%h" %p # hi` {
				t.Errorf("%q", h.ProxyCommand)
			}
		}},
		{"get unknown keyword", "FrobnicateLevel 7 8\nAddKeysToAgent yes\n", "x", func(t *testing.T, h *Host) {
			if v, ok := h.Get("frobnicatelevel"); !ok || v != "7 8" {
				t.Errorf("%q %v", v, ok)
			}
			if v, ok := h.Get("ADDKEYSTOAGENT"); !ok || v != "yes" {
				t.Errorf("%q %v", v, ok)
			}
			if _, ok := h.Get("compression"); ok {
				t.Error("unset keyword found")
			}
		}},
		{"match all", "Host x\n User a\nMatch all\n User b\n Port 7\n", "y", func(t *testing.T, h *Host) {
			if h.User != "b" || h.Port != 7 {
				t.Errorf("%q %d", h.User, h.Port)
			}
		}},
		{"match host uses hostname", "Host short\n HostName long.example.com\nMatch host *.example.com\n User m\n", "short", func(t *testing.T, h *Host) {
			if h.User != "m" {
				t.Errorf("%q", h.User)
			}
		}},
		{"match host list and negation", "Match host a,b,!c\n User m\n", "b", func(t *testing.T, h *Host) {
			if h.User != "m" {
				t.Errorf("%q", h.User)
			}
		}},
		{"match negated criterion", "Match !host a\n User m\n", "a", func(t *testing.T, h *Host) {
			if h.User != "" {
				t.Errorf("%q", h.User)
			}
		}},
		{"match originalhost", "HostName other\nMatch originalhost FOO\n Port 9\n", "foo", func(t *testing.T, h *Host) {
			if h.Port != 9 {
				t.Errorf("%d", h.Port)
			}
		}},
		{"match user and localuser", "Match user lu localuser lu\n Port 9\nUser z\nMatch user z\n Port 10\n", "h", func(t *testing.T, h *Host) {
			if h.Port != 9 {
				t.Errorf("%d", h.Port)
			}
		}},
		{"match user obtained", "User z\nMatch user z\n Port 10\n", "h", func(t *testing.T, h *Host) {
			if h.Port != 10 {
				t.Errorf("%d", h.Port)
			}
		}},
		{"unsupported match not applied", "Match exec \"touch /tmp/x\"\n User bad\nMatch final all\n Port 2\nMatch canonical host *\n Port 3\nMatch tagged t\n Port 4\n", "h", func(t *testing.T, h *Host) {
			// final holds (ssh's final pass applies the block);
			// canonical never matches (no canonicalization pass); the
			// others might have, and are reported.
			if h.User != "" || h.Port != 2 {
				t.Errorf("%q %d", h.User, h.Port)
			}
			want := []string{"cfg:1: Match exec", "cfg:7: Match tagged"}
			if !reflect.DeepEqual(h.Undecided, want) {
				t.Errorf("Undecided %q, want %q", h.Undecided, want)
			}
		}},
		{"final pass fills what the first left unset", "Match final all\n Ciphers aes256-ctr\n Port 7\nHost h\n Ciphers aes128-ctr\nMatch !final\n User first\nMatch canonical\n User second\n", "h", func(t *testing.T, h *Host) {
			// As ssh: the Host h line wins over the earlier final block
			// (first pass), the final block fills Port; !final holds in
			// the first pass, canonical in the final one only.
			if v, _ := h.Get("ciphers"); v != "aes128-ctr" || h.Port != 7 || h.User != "first" {
				t.Errorf("ciphers %q port %d user %q", v, h.Port, h.User)
			}
		}},
		{"undecided match ruled out by another criterion", "Match host other exec true\n Port 2\nMatch !originalhost h final\n Port 3\nMatch final host h\n Ciphers aes128-ctr\n", "h", func(t *testing.T, h *Host) {
			if v, _ := h.Get("ciphers"); v != "aes128-ctr" {
				t.Errorf("Match final host h not applied: Ciphers %q", v)
			}
			if h.Port != 0 || len(h.Undecided) != 0 {
				t.Errorf("port %d, Undecided %q", h.Port, h.Undecided)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, tc.src).Lookup(tc.host))
		})
	}
}

// TestSettings: the lines that took effect, with their place and the
// keyword as written; lines that lost to an earlier value are absent.
func TestSettings(t *testing.T) {
	c := mustParse(t, "Host h\n ChallengeResponseAuthentication no\n SendEnv A\n IgnoreUnknown Foo*\n FooBar 1\nHost other\n GSSAPIAuthentication yes\nHost *\n KbdInteractiveAuthentication yes\n SendEnv B\n Bogus 2\n")
	var got []string
	for _, s := range c.Lookup("h").Settings() {
		got = append(got, fmt.Sprintf("%s:%d %s(%s)=%q known=%v ignored=%v", s.File, s.Line, s.Keyword, s.Written, s.Value, s.Known, s.Ignored))
	}
	want := []string{
		`cfg:2 kbdinteractiveauthentication(ChallengeResponseAuthentication)="no" known=true ignored=false`,
		`cfg:3 sendenv(SendEnv)="A" known=true ignored=false`,
		`cfg:4 ignoreunknown(IgnoreUnknown)="Foo*" known=true ignored=false`,
		`cfg:5 foobar(FooBar)="1" known=false ignored=true`,
		`cfg:10 sendenv(SendEnv)="B" known=true ignored=false`,
		`cfg:11 bogus(Bogus)="2" known=false ignored=false`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Settings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !Known("KeepAlive") || !Known("pubkeyacceptedkeytypes") || Known("add") || Known("bogus") {
		t.Error("Known disagrees with OpenSSH's keyword list")
	}
}

func TestWarnings(t *testing.T) {
	c := mustParse(t, "Match exec true\n User x\nNotAKeyword 1\nIgnoreUnknown Foo*\nFooBar 2\nUseKeychain yes\n")
	w := strings.Join(c.Warnings, "\n")
	for _, s := range []string{"cfg:1: Match exec", "cfg:3: unknown keyword \"NotAKeyword\"", "cfg:6: unknown keyword"} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings %q lack %q", w, s)
		}
	}
	if strings.Contains(w, "FooBar") || len(c.Warnings) != 3 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

func TestExpand(t *testing.T) {
	c := mustParse(t, "Host srv\n HostName srv.example\n User bob\n Port 2022\n IdentityFile ~/.ssh/id_%h_%r_%p\n IdentityFile %d/%u/%n/%%/%k/%L/%l/%i/%j/%q\n IdentityFile ${HOME}/x\n UserKnownHostsFile ~/kh_%C\n")
	h := c.Lookup("srv")
	got := h.IdentityFiles(Tokens{LocalHost: "me.local", UID: "1000", Getenv: func(n string) string { return "<" + n + ">" }})
	want := []string{"/home/u/.ssh/id_srv.example_bob_2022", "/home/u/lu/srv/%/srv/me/me.local/1000//%q", "<HOME>/x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = h.IdentityFiles(Tokens{RemoteUser: "over", Port: 1, Home: "/h"})
	if got[0] != "/h/.ssh/id_srv.example_over_1" || got[2] != "${HOME}/x" {
		t.Errorf("%q", got)
	}
	kh := h.KnownHostsFiles(Tokens{})
	if len(kh) != 1 || len(kh[0]) != len("/home/u/kh_")+40 {
		t.Errorf("%q", kh)
	}
	// Defaults: remote user falls back to local user, port to 22.
	h = mustParse(t, "").Lookup("a")
	if s := h.Expand("%r@%h:%p", Tokens{}); s != "lu@a:22" {
		t.Errorf("%q", s)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		src  string
		err  error
		line int
	}{
		{"Host x\n  Port\n", ErrNoArgument, 2},
		{"Port=\n", ErrNoArgument, 1},
		{"User # only comment\n", ErrNoArgument, 1},
		{"\n\nUser \"abc\n", ErrQuote, 3},
		{"Port 0\n", ErrBadValue, 1},
		{"Port 65536\n", ErrBadValue, 1},
		{"Host nomatch\n Port abc\n", ErrBadValue, 2},
		{"Port 22 23\n", ErrSyntax, 1},
		{"BatchMode maybe\n", ErrBadValue, 1},
		{"ServerAliveInterval 5x\n", ErrBadValue, 1},
		{"LogLevel loud\n", ErrBadValue, 1},
		{"LocalForward 80\n", ErrBadValue, 1},
		{"Match all host x\n", ErrSyntax, 1},
		{"Match host\n", ErrNoArgument, 1},
		{"Match all user x\n", ErrSyntax, 1},
		{"Host \"\"\n", ErrSyntax, 1},
		{"User " + strings.Repeat("a", MaxLineLen) + "\n", ErrLineTooLong, 1},
	}
	for _, tc := range tests {
		_, err := Parse(strings.NewReader(tc.src), "f.conf", ParseOptions{})
		var pe *Error
		if !errors.As(err, &pe) || !errors.Is(err, tc.err) || pe.Line != tc.line || pe.File != "f.conf" {
			t.Errorf("%.40q: got %v, want %v at line %d", tc.src, err, tc.err, tc.line)
			continue
		}
		if want := "f.conf:" + string(rune('0'+tc.line)) + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	_, err := Parse(strings.NewReader(strings.Repeat("# x\n", MaxFileSize/4+1)), "big", ParseOptions{})
	if !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("big file: %v", err)
	}
	_, err = ParseFile("/nonexistent/dir/config", ParseOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestProxyJumpProxyCommandExclusion: readconf.c's rules for the two
// keywords: a ProxyJump other than none hides a later ProxyCommand, any
// ProxyCommand hides a later ProxyJump other than none, and ProxyJump none
// hides nothing but a later ProxyJump.
func TestProxyJumpProxyCommandExclusion(t *testing.T) {
	for _, tc := range []struct {
		src       string
		jump, cmd string
	}{
		{"ProxyJump j\nProxyCommand nc %h\n", "j", ""},
		{"ProxyCommand nc %h\nProxyJump j\n", "", "nc %h"},
		{"ProxyCommand none\nProxyJump j\n", "", "none"},
		{"ProxyJump none\nProxyCommand nc %h\n", "none", "nc %h"},
		{"Host t\n ProxyJump none\nHost *\n ProxyCommand nc %h %p\n", "none", "nc %h %p"},
		{"ProxyCommand nc %h\nProxyJump none\n", "none", "nc %h"},
		{"ProxyJump none\nProxyJump j\nProxyCommand nc\n", "none", "nc"},
		{"ProxyJump NONE\nProxyCommand nc\n", "NONE", "nc"},
	} {
		h := mustParse(t, tc.src).Lookup("t")
		if h.ProxyJump != tc.jump || h.ProxyCommand != tc.cmd {
			t.Errorf("%q: ProxyJump %q, ProxyCommand %q; want %q, %q", tc.src, h.ProxyJump, h.ProxyCommand, tc.jump, tc.cmd)
		}
	}
}

// TestParseCommandLine: each option is one line applying to every host;
// Host, Match, Include and line breaks are refused, located by the
// option's position.
func TestParseCommandLine(t *testing.T) {
	c, err := ParseCommandLine([]string{"User=u", "Port 2022", "ProxyCommand nc %h # c", "IgnoreUnknown Foo*", "FooBar x"}, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Lookup("any")
	if h.User != "u" || h.Port != 2022 || h.ProxyCommand != "nc %h # c" || len(c.Warnings) != 0 {
		t.Errorf("user %q port %d ProxyCommand %q warnings %q", h.User, h.Port, h.ProxyCommand, c.Warnings)
	}
	for _, tc := range []struct {
		opts []string
		line int
		msg  string
	}{
		{[]string{"User u", "Host x"}, 2, "Host directive not supported as a command-line option"},
		{[]string{"HOST=x"}, 1, "Host directive not supported"},
		{[]string{" match all"}, 1, "Match directive not supported as a command-line option"},
		{[]string{"Include /nonexistent/*"}, 1, "Include directive not supported as a command-line option"},
		{[]string{"User u\nPort 1"}, 1, "line break"},
		{[]string{"Port 1", "User u\n"}, 2, "line break"},
		{[]string{"Port x"}, 1, "Port"},
	} {
		_, err := ParseCommandLine(tc.opts, ParseOptions{})
		var pe *Error
		if !errors.As(err, &pe) || pe.File != "-o" || pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
			t.Errorf("%q: error %v, want -o:%d saying %q", tc.opts, err, tc.line, tc.msg)
		}
	}
}
