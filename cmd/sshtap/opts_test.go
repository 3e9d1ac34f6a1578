package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
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
