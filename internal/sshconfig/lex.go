package sshconfig

import "strings"

// splitKeyword splits a configuration line into its keyword and the
// remainder, following OpenSSH's rules: leading and trailing whitespace
// is ignored, the keyword ends at whitespace or at a single '=', and
// whitespace around that '=' is skipped. A line that is empty or whose
// keyword starts with '#' yields ok == false.
func splitKeyword(line string) (keyword, rest string, ok bool) {
	line = strings.TrimRight(line, " \t\r\n\f")
	line = strings.TrimLeft(line, " \t\r\n")
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t\r\n=")
	if i < 0 {
		return line, "", true
	}
	keyword, rest = line[:i], line[i:]
	sawEq := false
	if rest[0] == '=' {
		sawEq = true
		rest = rest[1:]
	}
	rest = strings.TrimLeft(rest, " \t\r\n")
	if !sawEq && rest != "" && rest[0] == '=' {
		rest = strings.TrimLeft(rest[1:], " \t\r\n")
	}
	return keyword, rest, true
}

// splitArgs splits s into arguments the way OpenSSH's argv_split does
// with comment termination: arguments are separated by spaces or tabs;
// a '#' at the start of an argument ends the line; single or double
// quotes group text (and may appear mid-argument); a backslash escapes a
// following quote, backslash, or (outside quotes) space. ok is false on
// an unterminated quote.
func splitArgs(s string) (args []string, ok bool) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if c == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c = s[i]
			if c == '\\' && i+1 < len(s) {
				n := s[i+1]
				if n == '\'' || n == '"' || n == '\\' || (quote == 0 && n == ' ') {
					i++
					b.WriteByte(n)
					continue
				}
				b.WriteByte(c)
				continue
			}
			if quote == 0 && (c == ' ' || c == '\t') {
				break
			}
			if quote == 0 && (c == '"' || c == '\'') {
				quote = c
				continue
			}
			if quote != 0 && c == quote {
				quote = 0
				continue
			}
			b.WriteByte(c)
		}
		if quote != 0 {
			return nil, false
		}
		args = append(args, b.String())
	}
	return args, true
}

// maxMatchLen is the longest string Host and Match patterns are
// matched against (NI_MAXHOST); longer strings never match. With it,
// matching costs at most O(maxMatchLen * len(p)).
const maxMatchLen = 1025

// matchPattern reports whether s matches the glob pattern p, in which
// '*' matches any run of characters and '?' any single byte. The match
// is case-sensitive.
func matchPattern(s, p string) bool {
	if len(s) > maxMatchLen || len(p)-strings.Count(p, "*") > len(s) {
		return false
	}
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			for pi < len(p) && p[pi] == '*' {
				pi++
			}
			star = pi
			mark = si
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case star >= 0:
			pi = star
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchPatternList implements OpenSSH's match_pattern_list: list is a
// comma-separated set of patterns, each optionally negated with '!'.
// It returns 1 if some positive pattern matches and no negated one
// does, -1 if a negated pattern matches, and 0 otherwise. With fold,
// both s and the patterns are compared case-insensitively.
func matchPatternList(s, list string, fold bool) int {
	if fold {
		s = strings.ToLower(s)
		list = strings.ToLower(list)
	}
	got := 0
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// MatchPattern reports whether s matches the ssh glob pattern p ('*' any
// run of characters, '?' any one byte; case-sensitive), as Host lines and
// algorithm lists ("-hmac-sha1*") use them.
func MatchPattern(s, p string) bool { return matchPattern(s, p) }
