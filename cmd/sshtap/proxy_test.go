package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestResolveProxy: which of ProxyJump, ProxyCommand, -J and -o applies,
// as ssh decides it.
func TestResolveProxy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte(`Host jumpfirst
  ProxyJump a,b
  ProxyCommand nc %h %p
Host cmdfirst
  HostName 10.0.0.1
  User u
  Port 2022
  ProxyCommand nc %h %p # %r %n %%
  ProxyJump a
Host jumpnone
  ProxyJump none
Host cmdnone
  ProxyCommand none
  ProxyJump a
Host badtoken
  ProxyCommand nc %x
Host stdio
  ProxyCommand -
Host *
  ProxyJump z
`), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	for _, tc := range []struct {
		args  []string
		jumps []string
		cmd   string
		err   string
	}{
		{args: []string{"jumpfirst"}, jumps: []string{"a", "b"}},
		{args: []string{"cmdfirst"}, cmd: "nc 10.0.0.1 2022 # u cmdfirst %"},
		{args: []string{"-l", "v", "-p", "22", "cmdfirst"}, cmd: "nc 10.0.0.1 22 # v cmdfirst %"},
		{args: []string{"jumpnone"}},
		{args: []string{"cmdnone"}},
		{args: []string{"other"}, jumps: []string{"z"}},
		// The command line wins over the file.
		{args: []string{"-J", "x@y:2200", "jumpfirst"}, jumps: []string{"x@y:2200"}},
		{args: []string{"-J", "x", "cmdfirst"}, jumps: []string{"x"}},
		{args: []string{"-o", "ProxyJump=x,ssh://u@y:2", "cmdfirst"}, jumps: []string{"x", "ssh://u@y:2"}},
		{args: []string{"-o", "ProxyCommand=nc %h", "jumpfirst"}, cmd: "nc jumpfirst"},
		{args: []string{"-o", "ProxyCommand=none", "jumpfirst"}},
		// ProxyJump none on the command line leaves the file's ProxyCommand.
		{args: []string{"-J", "none", "cmdfirst"}, cmd: "nc 10.0.0.1 2022 # u cmdfirst %"},
		{args: []string{"-J", "none", "jumpfirst"}},
		// Refused.
		{args: []string{"-J", "x", "-o", "ProxyJump=y", "h"}, err: "-J and -o ProxyJump"},
		{args: []string{"-J", "x", "-o", "ProxyCommand=nc %h %p", "h"}, err: "-J and -o ProxyCommand"},
		{args: []string{"-J", "x", "-J", "y", "h"}, err: "only one -J"},
		{args: []string{"-J", "a,,b", "h"}, err: "empty jump host"},
		{args: []string{"-J", "", "h"}, err: "invalid -J argument"},
		{args: []string{"-J", " ", "h"}, err: "invalid -J argument"},
		{args: []string{"-J", ",", "h"}, err: "invalid -J argument"},
		{args: []string{"-J", "", "-J", "x", "h"}, err: "only one -J"},
		{args: []string{"-J", "a;rm", "h"}, err: "not a valid host name"},
		{args: []string{"-J", "a:99999", "h"}, err: "bad port"},
		{args: []string{"badtoken"}, err: "unknown token %x"},
		{args: []string{"stdio"}, err: "ProxyCommand -"},
		{args: []string{"-W", "h", "x"}, err: "want host:port"},
		{args: []string{"-W", "h:22", "x", "uname"}, err: "no remote command"},
	} {
		f, rest, err := parseClientArgs(append([]string{"-F", cfg}, tc.args...))
		var s *settings
		if err == nil {
			s, err = resolve(f, rest, func(k string) string { return env[k] })
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(s.jumps, tc.jumps) || s.proxyCommand != tc.cmd {
			t.Errorf("%q: jumps %q, ProxyCommand %q; want %q, %q", tc.args, s.jumps, s.proxyCommand, tc.jumps, tc.cmd)
		}
	}

	// -W clears the forwardings and the pty, as ssh's ClearAllForwardings.
	f, rest, _ := parseClientArgs([]string{"-F", "none", "-W", "[::1]:22", "-L", "1:h:2", "-A", "-t", "x"})
	s, err := resolve(f, rest, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.stdioForward != "[::1]:22" || len(s.locals) != 0 || s.forwardAgent || s.requestTTY != "no" {
		t.Errorf("-W: %q, locals %v, agent %v, tty %q", s.stdioForward, s.locals, s.forwardAgent, s.requestTTY)
	}
}

func TestParseJumpHost(t *testing.T) {
	for _, tc := range []struct {
		in, user, host string
		port           int
	}{
		{"h", "", "h", 0},
		{"u@h", "u", "h", 0},
		{"u@h:2222", "u", "h", 2222},
		{"[::1]:22", "", "::1", 22},
		{"ssh://u@h:23", "u", "h", 23},
		{"ssh://h", "", "h", 0},
		{" h ", "", "h", 0},
	} {
		u, h, p, err := parseJumpHost(tc.in)
		if err != nil || u != tc.user || h != tc.host || p != tc.port {
			t.Errorf("parseJumpHost(%q) = %q %q %d %v, want %q %q %d", tc.in, u, h, p, err, tc.user, tc.host, tc.port)
		}
	}
	for _, bad := range []string{"", "-oProxyCommand=x", "h:0", "u u@h", "ssh://h/path?", "$(id)"} {
		if _, _, _, err := parseJumpHost(bad); err == nil {
			t.Errorf("parseJumpHost(%q) accepted", bad)
		}
	}
}

// TestPlanHops: each hop's settings come from the config under its own
// name; the first hop's own ProxyJump is followed, later hops' are not;
// loops are refused.
func TestPlanHops(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte(`Host outer
  HostName 10.0.0.9
  ProxyJump none
Host bastion
  HostName 10.0.0.1
  User ops
  Port 2201
  ProxyJump outer
  IdentityFile ~/bastion_key
Host inner
  HostName 10.0.0.2
  ProxyJump elsewhere
Host loop
  ProxyJump loop2
Host loop2
  ProxyJump loop
Host self
  HostName 10.0.0.3
  ProxyJump self
`), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	plan := func(args ...string) ([]*settings, error) {
		f, rest, err := parseClientArgs(append([]string{"-F", cfg}, args...))
		if err != nil {
			return nil, err
		}
		s, err := resolve(f, rest, func(k string) string { return env[k] })
		if err != nil {
			return nil, err
		}
		c := &client{app: &app{getenv: func(k string) string { return env[k] }}, s: s}
		return c.planHops(s, 0)
	}
	chain, err := plan("-J", "bastion,root@inner:2", "-i", "/k", "target")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range chain {
		got = append(got, endpoint(h))
	}
	if want := []string{"me@10.0.0.9:22", "ops@10.0.0.1:2201", "root@10.0.0.2:2"}; !slices.Equal(got, want) {
		t.Errorf("hops %q, want %q", got, want)
	}
	if len(chain) == 3 && (!slices.Equal(chain[1].identities, []string{filepath.Join(dir, "bastion_key")}) || len(chain[2].jumps) != 0) {
		t.Errorf("bastion identities %q (-i is the destination's only), inner's jumps %q", chain[1].identities, chain[2].jumps)
	}
	for _, args := range [][]string{{"loop"}, {"self"}, {"-J", "bastion,bastion", "x"}} {
		if _, err := plan(args...); err == nil || !strings.Contains(err.Error(), "loop") {
			t.Errorf("%q: %v, want a loop refused", args, err)
		}
	}
}

// TestResolveRefusesShellMetacharacters: a destination host or a user
// given on the command line with shell metacharacters is refused before
// it can reach a ProxyCommand's %h, %n or %r (ssh(1): "hostname contains
// invalid characters", "remote username contains invalid characters"). A
// HostName or User written in the config is taken as written, as ssh
// takes it.
func TestResolveRefusesShellMetacharacters(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	marker := filepath.Join(dir, "ran")
	os.WriteFile(cfg, []byte(`Host literal
  HostName 10.0.0.1
  User a$b
Host *
  ProxyCommand nc %h %p # %r %n
`), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"x$(touch " + marker + ")"}, "hostname contains invalid characters"},
		{[]string{"x&touch " + marker + "&"}, "hostname contains invalid characters"},
		{[]string{"x;id"}, "hostname contains invalid characters"},
		{[]string{"a b"}, "hostname contains invalid characters"},
		{[]string{"a\nb"}, "hostname contains invalid characters"},
		{[]string{"--", "-oProxyCommand=id"}, "hostname contains invalid characters"},
		{[]string{"a,b"}, "hostname contains invalid characters"},
		{[]string{"ssh://u@h/path"}, "path"},
		{[]string{"u`id`@h"}, "remote username contains invalid characters"},
		{[]string{"-l", "u$(id)", "h"}, "remote username contains invalid characters"},
		{[]string{"-l", "-oProxyCommand=id", "h"}, "remote username contains invalid characters"},
		{[]string{"-l", `u\`, "h"}, "remote username contains invalid characters"},
		{[]string{"-l", "u -x", "h"}, "remote username contains invalid characters"},
		{[]string{"-o", "User=u|id", "h"}, "remote username contains invalid characters"},
		{[]string{"-J", "j$(id)", "h"}, "not a valid host name"},
		{[]string{"-J", "u;id@j", "h"}, "not a valid user name"},
	} {
		f, rest, err := parseClientArgs(append([]string{"-F", cfg}, tc.args...))
		if err == nil {
			var s *settings
			if s, err = resolve(f, rest, func(k string) string { return env[k] }); err == nil {
				t.Errorf("%q: accepted, ProxyCommand %q", tc.args, s.proxyCommand)
				continue
			}
		}
		if !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a command in the host name ran")
	}
	// What ssh accepts: '$' in a user name (only ssh_valid_hostname
	// refuses it), '*' and '?' in a host name, and the config's own
	// values.
	for _, tc := range []struct {
		args []string
		cmd  string
	}{
		{[]string{"-l", "u$x", "h"}, "nc h 22 # u$x h"},
		{[]string{"-l", "dom\\u", "h*"}, "nc h* 22 # dom\\u h*"},
		{[]string{"literal"}, "nc 10.0.0.1 22 # a$b literal"},
	} {
		f, rest, err := parseClientArgs(append([]string{"-F", cfg}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		s, err := resolve(f, rest, func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if s.proxyCommand != tc.cmd {
			t.Errorf("%q: ProxyCommand %q, want %q", tc.args, s.proxyCommand, tc.cmd)
		}
	}
}

// TestValidHostnameAndUser: ssh's character sets, one character at a
// time.
func TestValidHostnameAndUser(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := "a" + string(rune(c)) + "b"
		if c >= 0x80 {
			s = "a" + string([]byte{byte(c)}) + "b"
		}
		wantHost := !strings.ContainsRune("'`\"$\\;&<>|(){},", rune(c)) && c > ' ' && c != 0x7f
		if got := validHostname(s); got != wantHost {
			t.Errorf("validHostname(%q) = %v, want %v", s, got, wantHost)
		}
		wantUser := !strings.ContainsRune("'`\";&<>|(){}", rune(c)) && (c >= ' ' && c != 0x7f)
		if got := validRemoteUser(s); got != wantUser {
			t.Errorf("validRemoteUser(%q) = %v, want %v", s, got, wantUser)
		}
	}
	for _, tc := range []struct {
		user string
		ok   bool
	}{
		{"-u", false}, {"u -x", false}, {"u\\", false}, {"u\\x", true}, {"u x", true}, {"u-x", true}, {"", true},
	} {
		if got := validRemoteUser(tc.user); got != tc.ok {
			t.Errorf("validRemoteUser(%q) = %v, want %v", tc.user, got, tc.ok)
		}
	}
	if validHostname("-h") || !validHostname("h-") {
		t.Errorf("validHostname: a leading '-' must be refused, a later one accepted")
	}
}

// TestResolveProxySystemConfig: a ProxyJump or ProxyCommand of the
// system-wide ssh_config applies when the command line and the user's
// file set neither; the first source that sets one wins.
func TestResolveProxySystemConfig(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "ssh_config")
	os.WriteFile(sys, []byte(`Host a
  ProxyJump bastion
Host b
  ProxyCommand nc %h %p
Host c d
  ProxyJump sysjump
Host none
  ProxyJump none
  ProxyCommand nc sys %h
`), 0o600)
	os.MkdirAll(filepath.Join(dir, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(dir, ".ssh", "config"), []byte(`Host c
  ProxyCommand nc user %h
Host none
  ProxyCommand none
`), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me", "SSHTAP_SYSTEM_CONFIG": sys}
	for _, tc := range []struct {
		args  []string
		jumps []string
		cmd   string
	}{
		{args: []string{"a"}, jumps: []string{"bastion"}},
		{args: []string{"b"}, cmd: "nc b 22"},
		// The user's file comes first.
		{args: []string{"c"}, cmd: "nc user c"},
		{args: []string{"none"}},
		{args: []string{"d"}, jumps: []string{"sysjump"}},
		// The command line comes first; its ProxyJump none leaves the
		// files' ProxyCommand.
		{args: []string{"-J", "x", "b"}, jumps: []string{"x"}},
		{args: []string{"-o", "ProxyCommand=nc cl %h", "a"}, cmd: "nc cl a"},
		{args: []string{"-o", "ProxyCommand=none", "a"}},
		{args: []string{"-J", "none", "b"}, cmd: "nc b 22"},
		{args: []string{"-J", "none", "a"}},
	} {
		f, rest, err := parseClientArgs(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		s, err := resolve(f, rest, func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(s.jumps, tc.jumps) || s.proxyCommand != tc.cmd {
			t.Errorf("%q: jumps %q, ProxyCommand %q; want %q, %q", tc.args, s.jumps, s.proxyCommand, tc.jumps, tc.cmd)
		}
	}
}

// TestResolveProxyJumpNoneInFile: a ProxyJump none in the file, or on the
// command line, leaves a later ProxyCommand of the file in force, as in
// ssh.
func TestResolveProxyJumpNoneInFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host t\n  ProxyJump none\nHost *\n  ProxyCommand nc %h %p\n"), 0o600)
	env := map[string]string{"HOME": dir, "USER": "me"}
	for _, args := range [][]string{{"t"}, {"-o", "ProxyJump=none", "other"}, {"-J", "none", "t"}} {
		f, rest, err := parseClientArgs(append([]string{"-F", cfg}, args...))
		if err != nil {
			t.Fatal(err)
		}
		s, err := resolve(f, rest, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if want := "nc " + rest[0] + " 22"; s.proxyCommand != want || len(s.jumps) != 0 {
			t.Errorf("%q: jumps %q, ProxyCommand %q; want the file's %q", args, s.jumps, s.proxyCommand, want)
		}
	}
}
