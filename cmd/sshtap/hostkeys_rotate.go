package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Following a server's host keys as ssh's UpdateHostKeys does (OpenSSH
// clientloop.c, client_input_hostkeys and hostkeys_find): the keys a server
// announces after authentication that are not on record are learned once
// proven, and the keys recorded for the host in the user's known_hosts file
// that it no longer announces are removed. Nothing changes unless the
// records are simple: the key this connection was verified with is on a
// plain line of a user file (not only in the global file, not a
// certificate), no @cert-authority or @revoked line and no wildcard or long
// host list covers the host, and no key concerned is also on record under
// another name.

// knownLine is one parsed known_hosts line.
type knownLine struct {
	file    string
	index   int    // line number from 0
	text    string // the line as read, to check before removing it
	marker  string // "@cert-authority", "@revoked" or ""
	hosts   string
	blob    []byte // the key's wire blob
	matches bool   // the host patterns cover this host
}

// readKnownLines parses the known_hosts files for name. Comments, blank
// lines and lines that do not parse are skipped.
func readKnownLines(files []string, name string) []knownLine {
	var out []knownLine
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			l := knownLine{file: file, index: i, text: line}
			if strings.HasPrefix(f[0], "@") {
				l.marker, f = f[0], f[1:]
			}
			if len(f) < 3 {
				continue
			}
			blob, err := base64.StdEncoding.DecodeString(f[2])
			if err != nil {
				continue
			}
			l.hosts, l.blob = f[0], blob
			// OpenSSH's match_hostname: patterns, negation, hashed names.
			l.matches = (&knownAuthority{patterns: strings.Split(l.hosts, ",")}).matches([]string{name})
			out = append(out, l)
		}
	}
	return out
}

// complexHostField is OpenSSH's hostspec_is_complex: wildcards, negation,
// or more than two names, which ssh itself never writes.
func complexHostField(field string) bool {
	return strings.ContainsAny(field, "*?!") || strings.Count(field, ",") > 1
}

// announcedKeys parses the blobs of a hostkeys-00@openssh.com announcement
// as OpenSSH's client does: keys that do not parse, certificates and keys
// of a type HostKeyAlgorithms (algos) does not allow are skipped
// (clientloop.c, key_accepted_by_hostkeyalgs); a key announced twice
// spoils the whole announcement (ok false), as does an announcement with
// no usable key. As in OpenSSH, a recorded key of a type left out counts
// as no longer announced.
func announcedKeys(blobs [][]byte, algos []string) (keys []ssh.PublicKey, ok bool) {
	for _, b := range blobs {
		k, err := ssh.ParsePublicKey(b)
		if err != nil {
			continue
		}
		if _, cert := k.(*ssh.Certificate); cert || !keyTypeAllowed(k, algos) {
			continue
		}
		for _, seen := range keys {
			if bytes.Equal(seen.Marshal(), b) {
				return nil, false
			}
		}
		keys = append(keys, k)
	}
	return keys, len(keys) > 0
}

// staleHostKeys returns the lines of the first user known_hosts file that
// record a key for this host that the server did not announce, and whether
// the records allow an update at all (see the top of this file). current
// is the host key this connection was verified with.
func (h *hostKeyChecker) staleHostKeys(hostport string, current []byte, announced []ssh.PublicKey) (stale []knownLine, ok bool) {
	if len(h.user) == 0 {
		return nil, false
	}
	isAnnounced := func(blob []byte) bool {
		for _, k := range announced {
			if bytes.Equal(k.Marshal(), blob) {
				return true
			}
		}
		return false
	}
	lines := readKnownLines(h.user, knownhosts.Normalize(hostport))
	currentOnRecord := false
	for _, l := range lines {
		if !l.matches {
			// A key of this host recorded under another name: updating one
			// name would make the records disagree.
			if isAnnounced(l.blob) {
				return nil, false
			}
			continue
		}
		if l.marker != "" || complexHostField(l.hosts) {
			return nil, false
		}
		if bytes.Equal(l.blob, current) {
			currentOnRecord = true
		}
		if !isAnnounced(l.blob) {
			if l.file != h.user[0] {
				return nil, false
			}
			if _, err := ssh.ParsePublicKey(l.blob); err != nil {
				return nil, false
			}
			stale = append(stale, l)
		}
	}
	if !currentOnRecord {
		// Verified through the global file (OpenSSH: "host key found in
		// GlobalKnownHostsFile; disabling UpdateHostkeys") or not through
		// a plain line at all.
		return nil, false
	}
	// A deprecated key that also stands for another name stays.
	for _, s := range stale {
		for _, l := range lines {
			if !l.matches && bytes.Equal(l.blob, s.blob) {
				return nil, false
			}
		}
	}
	return stale, true
}

// errKnownHostsChanged reports a known_hosts file that changed between the
// reading that planned a removal and the removal.
var errKnownHostsChanged = errors.New("the file changed meanwhile; nothing removed")

// removeKnownLines rewrites file without the given lines, keeping
// everything else byte for byte. Each line must still be at its index with
// its text, or nothing is removed (another program may have rewritten the
// file meanwhile). The new content goes to a fresh temporary file in the
// same directory, with the old file's permissions, synced, then renamed
// over the old one, so a crash leaves one or the other.
func removeKnownLines(file string, drop []knownLine) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	gone := map[int]bool{}
	for _, l := range drop {
		if l.index >= len(lines) || lines[l.index] != l.text {
			return errKnownHostsChanged
		}
		gone[l.index] = true
	}
	var out []string
	for i, line := range lines {
		if !gone[i] {
			out = append(out, line)
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	_, err = tmp.WriteString(strings.Join(out, "\n"))
	if err == nil {
		err = tmp.Chmod(st.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// keyTypeAllowed reports whether a host key algorithm in algos uses keys of
// k's type: its own name, or for an RSA key rsa-sha2-256, rsa-sha2-512 or
// ssh-rsa.
func keyTypeAllowed(k ssh.PublicKey, algos []string) bool {
	if k.Type() == ssh.KeyAlgoRSA {
		return slices.ContainsFunc(algos, func(a string) bool {
			return a == ssh.KeyAlgoRSA || a == ssh.KeyAlgoRSASHA256 || a == ssh.KeyAlgoRSASHA512
		})
	}
	return slices.Contains(algos, k.Type())
}
