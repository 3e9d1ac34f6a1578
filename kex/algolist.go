package kex

import (
	"fmt"
	"slices"
	"strings"
)

// UnknownAlgorithmError reports a name in an algorithm list that is not
// among the supported ones, or a pattern that matches none of them.
type UnknownAlgorithmError struct {
	Name      string   // the name or pattern as written
	Supported []string // what the list accepts
}

func (e *UnknownAlgorithmError) Error() string {
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
// character): outside "-" a pattern stands for the matching supported
// names in the order of supported. Every name must be in supported and
// every pattern must match one, or the result is an
// *UnknownAlgorithmError; duplicates are dropped, the first kept. An empty
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
		for _, s := range supported {
			if matchAlgorithm(n, s) {
				matched = true
				if op != '-' {
					names = append(names, s)
				}
			}
		}
		if !matched {
			return nil, &UnknownAlgorithmError{Name: n, Supported: slices.Clone(supported)}
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
