package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Removing host keys a server no longer announces, as ssh's UpdateHostKeys
// does (OpenSSH clientloop.c): a key recorded for exactly this host in the
// user's known_hosts file that is not among the keys the server announced
// after authentication is deprecated, and its line is removed, but only
// when the host's records are plain (no @cert-authority or @revoked line,
// no wildcard or long host list for it) and none of the keys concerned
// also appears under another name. Anything less simple is left alone.

// knownLine is one parsed known_hosts line.
type knownLine struct {
	file    string
	index   int    // line number from 0
	marker  string // "@cert-authority", "@revoked" or ""
	hosts   string
	blob    []byte // the key's wire blob; nil for a line that does not parse
	matches bool   // the host field names this host
}

// readKnownLines parses the user known_hosts files for name. Comments,
// blank lines and lines that do not parse are skipped.
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
			l := knownLine{file: file, index: i}
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
			l.matches = hostFieldMatches(l.hosts, name)
			out = append(out, l)
		}
	}
	return out
}

// hostFieldMatches reports whether a known_hosts host field names name
// itself: as a plain entry or a hashed one (|1|salt|hash, HMAC-SHA1 of the
// name keyed by the salt). Patterns are matched literally here; a field
// with wildcards is complex and never updated.
func hostFieldMatches(field, name string) bool {
	for _, h := range strings.Split(field, ",") {
		if h == name {
			return true
		}
		if salt, sum, ok := parseHashedHost(h); ok {
			m := hmac.New(sha1.New, salt)
			m.Write([]byte(name))
			if hmac.Equal(m.Sum(nil), sum) {
				return true
			}
		}
	}
	return false
}

func parseHashedHost(h string) (salt, sum []byte, ok bool) {
	rest, found := strings.CutPrefix(h, "|1|")
	if !found {
		return nil, nil, false
	}
	s, hs, found := strings.Cut(rest, "|")
	if !found {
		return nil, nil, false
	}
	salt, err1 := base64.StdEncoding.DecodeString(s)
	sum, err2 := base64.StdEncoding.DecodeString(hs)
	return salt, sum, err1 == nil && err2 == nil
}

// complexHostField is OpenSSH's hostspec_is_complex: wildcards, negation,
// or more than two names, which ssh itself never writes.
func complexHostField(field string) bool {
	return strings.ContainsAny(field, "*?!") || strings.Count(field, ",") > 1
}

// staleHostKeys returns the lines of the first user known_hosts file that
// record a key for this host that the server did not announce, and whether
// the records are simple enough to update at all.
func (h *hostKeyChecker) staleHostKeys(hostport string, announced [][]byte) (stale []knownLine, ok bool) {
	if len(h.user) == 0 {
		return nil, false
	}
	name := knownhosts.Normalize(hostport)
	lines := readKnownLines(h.user, name)
	isAnnounced := func(blob []byte) bool {
		for _, a := range announced {
			if bytes.Equal(a, blob) {
				return true
			}
		}
		return false
	}
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

// removeKnownLines rewrites file without the given lines (indexes from
// readKnownLines), keeping everything else byte for byte. The new content
// goes to a temporary file renamed over the old one, so a crash leaves one
// or the other.
func removeKnownLines(file string, drop []knownLine) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	gone := map[int]bool{}
	for _, l := range drop {
		gone[l.index] = true
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		if !gone[i] {
			out = append(out, line)
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	tmp := file + ".sshtap-tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(out, "\n")), st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
