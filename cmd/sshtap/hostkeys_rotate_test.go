package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestStaleHostKeys: which recorded keys UpdateHostKeys removes, and the
// records it refuses to touch (OpenSSH clientloop.c's rules).
func TestStaleHostKeys(t *testing.T) {
	const hostport = "server.example:2222"
	name := knownhosts.Normalize(hostport)
	current, old, other := newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey()
	announced := [][]byte{current.Marshal()}
	line := func(host string, k ssh.PublicKey) string { return knownhosts.Line([]string{host}, k) }
	for _, tc := range []struct {
		name       string
		user       string // first user known_hosts file
		user2      string // second one
		wantOK     bool
		wantStale  int
		wantRemain []ssh.PublicKey
	}{
		{"nothing stale", line(name, current) + "\n", "", true, 0, nil},
		{"plain stale", "# comment\n" + line(name, current) + "\n" + line(name, old) + "\n" + line("elsewhere", other) + "\n", "", true, 1, []ssh.PublicKey{current, other}},
		{"hashed stale", line(knownhosts.HashHostname(name), old) + "\n" + line(name, current) + "\n", "", true, 1, []ssh.PublicKey{current}},
		{"wildcard", line(name, current) + "\n" + "[server.*]:2222 " + strings.TrimPrefix(line("x", old), "x ") + "\n", "", true, 0, nil},
		{"complex for this host", line(name, current) + "\n" + line(name+",a,b", old) + "\n", "", false, 0, nil},
		{"revoked line", line(name, current) + "\n@revoked " + line(name, old) + "\n", "", false, 0, nil},
		{"announced key under another name", line(name, current) + "\n" + line(name, old) + "\n" + line("alias", current) + "\n", "", false, 0, nil},
		{"stale key under another name", line(name, current) + "\n" + line(name, old) + "\n" + line("alias", old) + "\n", "", false, 0, nil},
		{"stale key in the second file", line(name, current) + "\n", line(name, old) + "\n", false, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := []string{filepath.Join(dir, "known_hosts"), filepath.Join(dir, "known_hosts2")}
			if err := os.WriteFile(files[0], []byte(tc.user), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(files[1], []byte(tc.user2), 0o600); err != nil {
				t.Fatal(err)
			}
			h := &hostKeyChecker{user: files}
			stale, ok := h.staleHostKeys(hostport, announced)
			if ok != tc.wantOK || len(stale) != tc.wantStale {
				t.Fatalf("ok %v, %d stale; want %v, %d", ok, len(stale), tc.wantOK, tc.wantStale)
			}
			if len(stale) == 0 {
				return
			}
			if err := removeKnownLines(files[0], stale); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), strings.Fields(line("x", old))[2]) {
				t.Errorf("the stale key is still there:\n%s", data)
			}
			for _, k := range tc.wantRemain {
				if !strings.Contains(string(data), strings.Fields(line("x", k))[2]) {
					t.Errorf("a key that stays was removed:\n%s", data)
				}
			}
			if strings.HasPrefix(tc.user, "#") && !strings.HasPrefix(string(data), "# comment\n") {
				t.Errorf("the comment was not kept:\n%s", data)
			}
		})
	}
}
