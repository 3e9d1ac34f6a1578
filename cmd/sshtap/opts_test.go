package main

import (
	"slices"
	"testing"
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
