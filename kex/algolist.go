package kex

import (
	"fmt"
	"slices"
	"strings"
)

// UnknownAlgorithmError reports a name in an algorithm list that is not
// among the supported ones, or a pattern that matches none of them (or,
// outside a "-" list, none of the defaults).
type UnknownAlgorithmError struct {
	Name      string   // the name or pattern as written
	Supported []string // what the list accepts
	// Literal, for a pattern that matches only supported names outside
	// the defaults, lists those names: they are offered only when
	// written out in full.
	Literal []string
}

func (e *UnknownAlgorithmError) Error() string {
	if len(e.Literal) > 0 {
		return fmt.Sprintf("pattern %q matches only %s, which must be named in full to be offered", e.Name, strings.Join(e.Literal, ","))
	}
	return fmt.Sprintf("unsupported algorithm %q (supported: %s)", e.Name, strings.Join(e.Supported, ","))
}

// ExpandAlgorithms resolves an algorithm list as configured into the names
// to offer, with OpenSSH's modifiers (ssh_config(5), sshd_config(5), for
// Ciphers, MACs, KexAlgorithms, HostKeyAlgorithms and
// PubkeyAcceptedAlgorithms). spec is a list of names and comma-separated
// name-lists, read as one comma-separated list; its first character
// decides:
//
//   - "+a,b" appends a and b to defaults;
//   - "-a,b" removes from defaults every name matching a or b;
//   - "^a,b" puts a and b at the head of defaults;
//   - anything else is the list itself.
//
// Names may be patterns with '*' (any run of characters) and '?' (one
// character). In a "-" list a pattern removes every default it matches.
// Elsewhere it stands for the matching names of defaults, in the order of
// supported, and never for a supported name outside defaults: the legacy
// algorithms (IsLegacy, cipher.IsLegacy) and others offered only on
// request must be written out, so "aes*" does not bring in the CBC
// ciphers nor "diffie-hellman-*" the SHA-1 key exchanges. (OpenSSH's ssh
// and sshd refuse patterns outright in such Ciphers, MACs and
// KexAlgorithms lists, and let HostKeyAlgorithms and
// PubkeyAcceptedAlgorithms patterns match legacy names too.) Every name
// must be in supported and every pattern must match one (outside "-", a
// default one), or the result is an *UnknownAlgorithmError; duplicates
// are dropped, the first kept. An empty
// spec gives defaults (a copy); a spec that leaves nothing is an error.
// The result never aliases the arguments.
func ExpandAlgorithms(spec, defaults, supported []string) ([]string, error) {
	joined := strings.TrimSpace(strings.Join(spec, ","))
	if joined == "" {
		return slices.Clone(defaults), nil
	}
	op := joined[0]
	if op == '+' || op == '-' || op == '^' {
		joined = joined[1:]
	} else {
		op = 0
	}
	var names []string
	for _, n := range strings.Split(joined, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !isPattern(n) {
			if !slices.Contains(supported, n) {
				return nil, &UnknownAlgorithmError{Name: n, Supported: slices.Clone(supported)}
			}
			names = append(names, n)
			continue
		}
		matched := false
		var literal []string // matched names outside defaults
		for _, s := range supported {
			switch {
			case !matchAlgorithm(n, s):
			case op != '-' && !slices.Contains(defaults, s):
				literal = append(literal, s)
			default:
				matched = true
				if op != '-' {
					names = append(names, s)
				}
			}
		}
		if !matched {
			return nil, &UnknownAlgorithmError{Name: n, Supported: slices.Clone(supported), Literal: literal}
		}
		if op == '-' {
			names = append(names, n)
		}
	}
	var out []string
	switch op {
	case '+':
		out = append(slices.Clone(defaults), names...)
	case '^':
		out = append(names, defaults...)
	case '-':
		for _, d := range defaults {
			if !slices.ContainsFunc(names, func(p string) bool { return matchAlgorithm(p, d) }) {
				out = append(out, d)
			}
		}
	default:
		out = names
	}
	dedup := make([]string, 0, len(out))
	for _, n := range out {
		if !slices.Contains(dedup, n) {
			dedup = append(dedup, n)
		}
	}
	if len(dedup) == 0 {
		return nil, fmt.Errorf("algorithm list %q leaves no algorithm", strings.Join(spec, ","))
	}
	return dedup, nil
}

func isPattern(s string) bool { return strings.ContainsAny(s, "*?") }

// matchAlgorithm reports whether name matches pattern, where '*' matches
// any run of characters and '?' any one (OpenSSH match_pattern).
func matchAlgorithm(pattern, name string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			pattern = strings.TrimLeft(pattern, "*")
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchAlgorithm(pattern, name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if name == "" {
				return false
			}
		default:
			if name == "" || name[0] != pattern[0] {
				return false
			}
		}
		pattern, name = pattern[1:], name[1:]
	}
	return name == ""
}
