package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sshtap/cipher"
	"sshtap/kex"
)

// TestParseClientArgs: getopt bundling and attached values, options after
// the destination, and the command keeping its own flags.
func TestParseClientArgs(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		rest     []string
		port     string
		ids      []string
		agentFwd bool
		tty      int
	}{
		{[]string{"-p2222", "host", "ls", "-l"}, []string{"host", "ls", "-l"}, "2222", nil, false, 0},
		{[]string{"host", "-p", "2222", "-At", "ls", "-l"}, []string{"host", "ls", "-l"}, "2222", nil, true, 1},
		{[]string{"-i", "a", "-ib", "host", "--", "-x"}, []string{"host", "-x"}, "", []string{"a", "b"}, false, 0},
		{[]string{"-tt", "host"}, []string{"host"}, "", nil, false, 2},
		{[]string{"host", "--", "-p", "1"}, []string{"host", "-p", "1"}, "", nil, false, 0},
	} {
		f, rest, err := parseClientArgs(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(rest, tc.rest) || f.port != tc.port || !slices.Equal(f.identities, tc.ids) || f.agentFwd != tc.agentFwd || f.tty != tc.tty {
			t.Errorf("%q: rest %q port %q ids %q -A %v -t %d", tc.args, rest, f.port, f.identities, f.agentFwd, f.tty)
		}
	}
	for _, bad := range [][]string{{"-Z", "host"}, {"host", "-p"}, {"--json=1", "host"}, {"--events"}} {
		if _, _, err := parseClientArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestResolveConfig: ssh_config forms that ssh accepts resolve as ssh
// resolves them: two-argument LocalForward/RemoteForward, time values with
// units, and "none" for known_hosts files.
func TestResolveConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte(`Host h
  HostName 127.0.0.1
  LocalForward 40102 127.0.0.1:40022
  RemoteForward 127.0.0.1:0 /tmp/sock
  ConnectTimeout 5s
  ServerAliveInterval 1m
  UserKnownHostsFile none
  GlobalKnownHostsFile none
  IdentityFile ~/keys/%r@%h:%p-%n
`), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	f, rest, err := parseClientArgs([]string{"-F", cfg, "h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := resolve(f, rest, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(s.locals) != 1 || s.locals[0].listenAddr != "localhost:40102" || s.locals[0].dialAddr != "127.0.0.1:40022" {
		t.Errorf("LocalForward = %+v", s.locals)
	}
	if len(s.remotes) != 1 || s.remotes[0].listenAddr != "127.0.0.1:0" || s.remotes[0].dialNet != "unix" || s.remotes[0].dialAddr != "/tmp/sock" {
		t.Errorf("RemoteForward = %+v", s.remotes)
	}
	if s.connectTimeout != 5*time.Second || s.keepAlive != time.Minute {
		t.Errorf("ConnectTimeout %v, ServerAliveInterval %v", s.connectTimeout, s.keepAlive)
	}
	if len(s.knownHosts) != 0 || len(s.globalKnown) != 0 {
		t.Errorf("known hosts files %q %q, want none", s.knownHosts, s.globalKnown)
	}
	if s.hostname != "127.0.0.1" || s.user != "me" {
		t.Errorf("hostname %q user %q", s.hostname, s.user)
	}
	// Tokens take the final user and port (-l, -p win over the config).
	f, rest, _ = parseClientArgs([]string{"-F", cfg, "-l", "you", "-p", "2200", "h"})
	if s, err = resolve(f, rest, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "keys", "you@127.0.0.1:2200-h"); !slices.Contains(s.identities, want) {
		t.Errorf("identities %q, want %q", s.identities, want)
	}
}

// TestAlgorithmList: OpenSSH's list forms against the defaults.
func TestAlgorithmList(t *testing.T) {
	def := []string{"a-1", "a-2", "b-1"}
	sup := []string{"a-1", "a-2", "b-1", "c-1"}
	for spec, want := range map[string][]string{
		"c-1,a-1": {"c-1", "a-1"},
		"+c-1":    {"a-1", "a-2", "b-1", "c-1"},
		"^c-1":    {"c-1", "a-1", "a-2", "b-1"},
		"-a-*":    {"b-1"},
		"-?-1":    {"a-2"},
		"":        nil,
	} {
		got, err := algorithmList(spec, def, sup)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q, %v; want %q", spec, got, err, want)
		}
	}
	for _, bad := range []string{"d-1", "+d-1", ","} {
		if _, err := algorithmList(bad, def, sup); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestResolveLegacyAlgorithms: -o, -c/-m, the flags and the config file
// take OpenSSH's "+list" to add legacy algorithms to the defaults; an
// unknown name is an error naming it; the config file loses to -o.
func TestResolveLegacyAlgorithms(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host h\n  KexAlgorithms +diffie-hellman-group1-sha1\n  Ciphers +3des-cbc\n"), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	run := func(args ...string) (*settings, error) {
		t.Helper()
		f, rest, err := parseClientArgs(append(append([]string{"-F", cfg}, args...), "h"))
		if err != nil {
			t.Fatal(err)
		}
		return resolve(f, rest, func(k string) string { return env[k] })
	}
	s, err := run("-o", "Ciphers=+aes128-cbc", "-m", "^hmac-md5", "-o", "HostKeyAlgorithms=+ssh-rsa",
		"-o", "PubkeyAcceptedAlgorithms=+ssh-rsa")
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(cipher.DefaultCiphers), cipher.AES128CBC); !slices.Equal(s.ciphers, want) {
		t.Errorf("Ciphers = %q, want %q", s.ciphers, want)
	}
	if want := append([]string{cipher.HMACMD5}, cipher.DefaultMACs...); !slices.Equal(s.macs, want) {
		t.Errorf("MACs = %q, want %q", s.macs, want)
	}
	if want := append(slices.Clone(kex.DefaultKexAlgos), kex.DHGroup1SHA1); !slices.Equal(s.kex, want) {
		t.Errorf("KexAlgorithms from the config file = %q, want %q", s.kex, want)
	}
	if s.hkAlgs[len(s.hkAlgs)-1] != kex.HostKeyRSA || !slices.Contains(s.pubkeyAlgs, "ssh-rsa") {
		t.Errorf("HostKeyAlgorithms %q, PubkeyAcceptedAlgorithms %q", s.hkAlgs, s.pubkeyAlgs)
	}
	if s, err = run("-c", "aes256-cbc", "--kex", "diffie-hellman-group-exchange-sha1"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.ciphers, []string{cipher.AES256CBC}) || !slices.Equal(s.kex, []string{kex.DHGexSHA1}) {
		t.Errorf("-c/--kex: ciphers %q kex %q", s.ciphers, s.kex)
	}
	for _, args := range [][]string{{"-c", "+blowfish-cbc"}, {"-o", "MACs=hmac-ripemd160"}, {"-o", "PubkeyAcceptedAlgorithms=+ssh-dss"}} {
		_, err := run(args...)
		name := strings.TrimPrefix(strings.SplitN(args[1], "=", 2)[len(strings.SplitN(args[1], "=", 2))-1], "+")
		if err == nil || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%q: err = %v, want one naming %q", args, err, name)
		}
	}
}

// TestResolveOptionLines: each -o is one configuration line, as ssh reads
// it: Host, Match and Include are refused there, and so is a line break
// inside one.
func TestResolveOptionLines(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "included")
	os.WriteFile(inc, []byte("ProxyCommand nc %h %p\n"), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	for _, tc := range []struct {
		opts []string
		err  string
	}{
		{[]string{"Include " + inc}, "Include directive not supported as a command-line option"},
		{[]string{"Host x"}, "Host directive not supported as a command-line option"},
		{[]string{"Host nomatch", "StrictHostKeyChecking yes"}, "Host directive not supported"},
		{[]string{"Match all"}, "Match directive not supported as a command-line option"},
		{[]string{"  match=host h"}, "Match directive not supported"},
		{[]string{"User=a\nPort 5"}, "line break"},
		{[]string{"StrictHostKeyChecking yes\nHost x"}, "line break"},
	} {
		args := []string{"-F", "none"}
		for _, o := range tc.opts {
			args = append(args, "-o", o)
		}
		f, rest, err := parseClientArgs(append(args, "h"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := resolve(f, rest, func(k string) string { return env[k] })
		if err == nil {
			t.Errorf("%q: accepted (ProxyCommand %q, StrictHostKeyChecking %q)", tc.opts, s.proxyCommand, s.check)
			continue
		}
		if !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one saying %q", tc.opts, err, tc.err)
		}
	}
	// Each -o applies, whatever the others say.
	f, rest, err := parseClientArgs([]string{"-F", "none", "-o", "StrictHostKeyChecking yes", "-o", "Port=2022", "-o", "ProxyCommand nc %h %p # x", "h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := resolve(f, rest, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.check != checkYes || s.port != 2022 || s.proxyCommand != "nc h 2022 # x" {
		t.Errorf("StrictHostKeyChecking %q, port %d, ProxyCommand %q", s.check, s.port, s.proxyCommand)
	}
}
