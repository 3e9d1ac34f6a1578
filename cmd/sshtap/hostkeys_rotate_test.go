package main

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sshtap/kex"
)

// TestStaleHostKeys: which recorded keys UpdateHostKeys removes, and the
// records it refuses to touch (OpenSSH clientloop.c's rules).
func TestStaleHostKeys(t *testing.T) {
	const hostport = "server.example:2222"
	name := knownhosts.Normalize(hostport)
	current, old, other := newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey()
	announced := []ssh.PublicKey{current}
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
		{"wildcard line for this host", line(name, current) + "\n" + "[server.*]:2222 " + strings.TrimPrefix(line("x", old), "x ") + "\n", "", false, 0, nil},
		{"wildcard CA line for this host", "@cert-authority [*.example]:2222 " + strings.TrimPrefix(line("x", other), "x ") + "\n" + line(name, current) + "\n" + line(name, old) + "\n", "", false, 0, nil},
		{"wildcard line for other hosts", line(name, current) + "\n" + line(name, old) + "\n" + "*.other.example " + strings.TrimPrefix(line("x", other), "x ") + "\n", "", true, 1, []ssh.PublicKey{current, other}},
		{"current key not on record", line(name, old) + "\n", "", false, 0, nil},
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
			stale, ok := h.staleHostKeys(hostport, current.Marshal(), announced)
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

// TestAnnouncedKeys: certificates and junk are skipped, a duplicate spoils
// the announcement, and an announcement with nothing usable is refused, so
// that it can never make every recorded key look deprecated.
func TestAnnouncedKeys(t *testing.T) {
	a, b := newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey()
	cert := &ssh.Certificate{Key: a, CertType: ssh.HostCert, ValidPrincipals: []string{"server.example"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, newEd25519Signer(t)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		blobs [][]byte
		want  int
		ok    bool
	}{
		{"empty", nil, 0, false},
		{"junk only", [][]byte{[]byte("junk")}, 0, false},
		{"certificate only", [][]byte{cert.Marshal()}, 0, false},
		{"two keys, junk and a certificate", [][]byte{a.Marshal(), []byte("junk"), cert.Marshal(), b.Marshal()}, 2, true},
		{"duplicate", [][]byte{a.Marshal(), b.Marshal(), a.Marshal()}, 0, false},
	} {
		keys, ok := announcedKeys(tc.blobs, kex.DefaultHostKeyAlgos)
		if ok != tc.ok || len(keys) != tc.want {
			t.Errorf("%s: %d keys, ok %v; want %d, %v", tc.name, len(keys), ok, tc.want, tc.ok)
		}
	}
}

// TestRemoveKnownLinesChecksContent: a file rewritten between the planning
// and the removal (here: its first line dropped, so every index moved) is
// left alone instead of losing another host's line.
func TestRemoveKnownLinesChecksContent(t *testing.T) {
	cur, old, victim := newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey(), newEd25519Signer(t).PublicKey()
	file := filepath.Join(t.TempDir(), "known_hosts")
	text := knownhosts.Line([]string{"server.example"}, cur) + "\n" + knownhosts.Line([]string{"server.example"}, old) + "\n" +
		knownhosts.Line([]string{"bank.example"}, victim) + "\n"
	if err := os.WriteFile(file, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	h := &hostKeyChecker{user: []string{file}}
	stale, ok := h.staleHostKeys("server.example:22", cur.Marshal(), []ssh.PublicKey{cur})
	if !ok || len(stale) != 1 {
		t.Fatalf("ok %v, %d stale", ok, len(stale))
	}
	changed := strings.SplitN(text, "\n", 2)[1]
	if err := os.WriteFile(file, []byte(changed), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := removeKnownLines(file, stale); err != errKnownHostsChanged {
		t.Fatalf("removeKnownLines on a changed file: %v", err)
	}
	if data, _ := os.ReadFile(file); string(data) != changed {
		t.Fatalf("the file was modified:\n%s", data)
	}
	// Unchanged: removed, permissions kept, no temporary file left.
	if err := os.WriteFile(file, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := removeKnownLines(file, stale); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), strings.Fields(knownhosts.Line([]string{"x"}, old))[2]) || !strings.Contains(string(data), "bank.example") {
		t.Fatalf("wrong lines removed:\n%s", data)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after the rewrite, want 0640", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1", len(entries))
	}
}

// TestAnnouncedKeysHostKeyAlgorithms: keys of a type HostKeyAlgorithms
// leaves out are neither learned nor kept (OpenSSH's
// key_accepted_by_hostkeyalgs); an RSA key counts as allowed by any RSA
// signature algorithm.
func TestAnnouncedKeysHostKeyAlgorithms(t *testing.T) {
	ed := newEd25519Signer(t).PublicKey()
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := ssh.NewPublicKey(&rk.PublicKey)
	blobs := [][]byte{ed.Marshal(), rsaKey.Marshal()}
	for _, tc := range []struct {
		algos []string
		want  []string
	}{
		{[]string{kex.HostKeyED25519}, []string{ssh.KeyAlgoED25519}},
		{[]string{kex.HostKeyRSASHA512}, []string{ssh.KeyAlgoRSA}},
		{kex.DefaultHostKeyAlgos, []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSA}},
		{[]string{kex.HostKeyECDSA256}, nil},
	} {
		keys, ok := announcedKeys(blobs, tc.algos)
		var got []string
		for _, k := range keys {
			got = append(got, k.Type())
		}
		if !slices.Equal(got, tc.want) || ok != (len(tc.want) > 0) {
			t.Errorf("HostKeyAlgorithms %v: %v (ok %v), want %v", tc.algos, got, ok, tc.want)
		}
	}
}
