// Package sshconfig reads OpenSSH client configuration files
// (ssh_config(5)) and answers, for a host name typed by the user, which
// settings apply, following ssh's own rules closely.
//
// The package is pure: it starts no goroutines, never touches the
// network and never executes anything (Match exec is not run). File
// access happens only in ParseFile and for Include, through the
// ParseOptions.ReadFile and ParseOptions.Glob hooks.
//
// Parsing semantics (as OpenSSH):
//   - Keywords are case-insensitive. A line is "keyword args..." or
//     "keyword=args..."; whitespace around a single '=' is skipped.
//   - Arguments are split on spaces and tabs; single or double quotes
//     group text; a backslash escapes a quote, a backslash, or (outside
//     quotes) a space; an argument starting with '#' begins a comment.
//     Lines whose keyword starts with '#' and blank lines are ignored.
//   - ProxyCommand, LocalCommand, RemoteCommand and KnownHostsCommand
//     take the rest of the line verbatim (quotes and any trailing '#'
//     text included), as ssh does.
//   - A keyword without an argument, an unterminated quote, extra
//     arguments after a single-argument keyword, a bad Port, a bad
//     yes/no value for the typed flag keywords, a bad number or time,
//     and Include nesting over MaxDepth or forming a cycle are errors
//     (*Error, carrying file:line). Errors in non-matching blocks are
//     errors too, as in ssh.
//   - Unknown keywords are accepted and kept for Host.Get; keywords not
//     in OpenSSH's list (and not covered by an IgnoreUnknown pattern seen
//     earlier) add an entry to Config.Warnings.
//   - Inputs are bounded: a line over MaxLineLen bytes, a file over
//     MaxFileSize bytes, more than MaxTotalSize bytes or MaxFiles files
//     read through Includes are errors.
package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Limits on input size.
const (
	MaxLineLen   = 64 << 10 // longest accepted line, in bytes
	MaxFileSize  = 1 << 20  // largest accepted file, in bytes
	MaxTotalSize = 8 << 20  // total bytes read across a file and its Includes
	MaxFiles     = 256      // files read across a file and its Includes
	DefaultDepth = 16       // default Include nesting limit (OpenSSH's)
)

// Sentinel errors; an *Error wraps one of these (or an I/O error), so
// errors.Is works.
var (
	ErrSyntax       = errors.New("syntax error")
	ErrNoArgument   = errors.New("missing argument")
	ErrQuote        = errors.New("unterminated quote")
	ErrBadValue     = errors.New("invalid value")
	ErrLineTooLong  = errors.New("line too long")
	ErrFileTooLarge = errors.New("file too large")
	ErrIncludeDepth = errors.New("include depth exceeded")
	ErrIncludeCycle = errors.New("include cycle")
	ErrTooMuchInput = errors.New("too much input through Include")
)

// Error is a parse error located at File:Line (Line is 0 for errors
// about a whole file, such as it being missing or too large).
type Error struct {
	File string
	Line int
	Msg  string // human-readable detail
	Err  error  // one of the Err* sentinels, or an I/O error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Msg == "" {
		return loc + ": " + e.Err.Error()
	}
	return loc + ": " + e.Err.Error() + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// ParseOptions controls parsing. The zero value is usable.
type ParseOptions struct {
	// Home is the user's home directory, used for "~" and to resolve
	// relative Include paths (against Home/.ssh). If empty, "~" is
	// left unexpanded and relative Includes resolve against ".ssh".
	Home string
	// LocalUser is the local user name, used for Match localuser, for
	// Match user when no User was obtained, and for %u / %r tokens.
	LocalUser string
	// System marks a system-wide file: relative Includes then resolve
	// against /etc/ssh instead of Home/.ssh.
	System bool
	// ReadFile reads a file (for ParseFile and Include); nil means
	// reading with os.Open, stopping after MaxFileSize+1 bytes so that
	// e.g. "Include /dev/zero" fails cleanly.
	ReadFile func(name string) ([]byte, error)
	// Glob expands an Include pattern (after ~ expansion and making it
	// absolute); nil means filepath.Glob. Matches are read in the
	// order returned.
	Glob func(pattern string) ([]string, error)
	// MaxDepth bounds Include nesting; 0 means DefaultDepth (16).
	MaxDepth int
}

type itemKind uint8

const (
	kSetting itemKind = iota
	kHost
	kMatch
	kInclude
)

type criterion struct {
	name   string // lower case: host, originalhost, user, localuser
	negate bool
	arg    string
}

type item struct {
	kind    itemKind
	file    string
	line    int
	keyword string   // canonical keyword (kSetting)
	written string   // the keyword as written (kSetting)
	ignored bool     // unknown keyword covered by IgnoreUnknown (kSetting)
	args    []string // arguments (kSetting, kHost patterns)
	value   string   // joined args, or raw remainder for raw keywords
	// kMatch
	matchAll   bool
	matchNever bool // the block can never match (Match !all)
	// postCanon is set for "canonical" and "final": the block matches in
	// the final pass only (notPostCanon: "!canonical", "!final", in the
	// first pass only). "final" also asks for a final pass
	// (Config.finalPass).
	postCanon, notPostCanon bool
	undecided               []string // criteria this package cannot evaluate (exec, localnetwork, ...)
	criteria                []criterion
	// kInclude
	files [][]item
}

// Config is a parsed configuration file with its Includes resolved.
// It is immutable after parsing and safe for concurrent Lookups.
type Config struct {
	// Warnings lists non-fatal problems, each prefixed "file:line: ":
	// unsupported Match criteria (the block never matches) and
	// keywords unknown to OpenSSH.
	Warnings []string

	items     []item
	home      string
	localUser string
	finalPass bool // a Match block says "final": Lookup makes a final pass
}

type parser struct {
	opts    ParseOptions
	cfg     *Config
	stack   []string // files being parsed, for cycle detection
	total   int
	nfiles  int
	ignored []string // the first IgnoreUnknown pattern list, if seen
	dropped int      // warnings not recorded
}

// Parse parses one configuration file's contents read from r. path
// names the file in errors and warnings and for Include cycle
// detection. Includes are resolved immediately (see ParseOptions).
func Parse(r io.Reader, path string, opts ParseOptions) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return parseData(data, path, opts)
}

// ParseFile reads and parses the file at path. A missing file yields
// an *Error wrapping fs.ErrNotExist. ParseOptions.ReadFile, if set, is
// used to read it.
func ParseFile(path string, opts ParseOptions) (*Config, error) {
	read := opts.ReadFile
	if read == nil {
		read = readFileBounded
	}
	data, err := read(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return parseData(data, path, opts)
}

// ParseCommandLine parses options given on ssh's command line (-o): each
// is one configuration line and applies to every host. As in ssh, Host,
// Match and Include are refused there ("... directive not supported as a
// command-line option"), and so is an option holding a line break, which
// a file would read as several lines. Errors are *Error with File "-o"
// and Line the option's position (1 for the first); IgnoreUnknown in one
// option covers the options after it.
func ParseCommandLine(options []string, opts ParseOptions) (*Config, error) {
	p := &parser{opts: opts, cfg: &Config{home: opts.Home, localUser: opts.LocalUser}}
	for i, o := range options {
		n := i + 1
		if len(o) > MaxLineLen {
			return nil, &Error{File: "-o", Line: n, Err: ErrLineTooLong, Msg: fmt.Sprintf("over %d bytes", MaxLineLen)}
		}
		if strings.IndexByte(o, '\n') >= 0 {
			return nil, lineErr("-o", n, ErrSyntax, "a line break in an option")
		}
		if kw, _, ok := splitKeyword(o); ok {
			switch k := canonical(kw); k {
			case "host", "match", "include":
				return nil, lineErr("-o", n, ErrSyntax, "%s directive not supported as a command-line option", strings.ToUpper(k[:1])+k[1:])
			}
		}
		it, ok, err := p.parseLine(o, "-o", n, 0)
		if err != nil {
			return nil, err
		}
		if ok {
			p.cfg.items = append(p.cfg.items, it)
		}
	}
	return p.cfg, nil
}

func readFileBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

func parseData(data []byte, path string, opts ParseOptions) (*Config, error) {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultDepth
	}
	if opts.ReadFile == nil {
		opts.ReadFile = readFileBounded
	}
	if opts.Glob == nil {
		opts.Glob = filepath.Glob
	}
	p := &parser{opts: opts, cfg: &Config{home: opts.Home, localUser: opts.LocalUser}}
	items, err := p.parseFile(data, path, 0)
	if err != nil {
		return nil, err
	}
	p.cfg.items = items
	return p.cfg, nil
}

// MaxWarnings bounds Config.Warnings; further warnings are counted in
// a final entry.
const MaxWarnings = 100

func (p *parser) warnf(file string, line int, format string, a ...any) {
	if len(p.cfg.Warnings) >= MaxWarnings {
		p.dropped++
		p.cfg.Warnings[MaxWarnings-1] = fmt.Sprintf("(%d more warnings not shown)", p.dropped+1)
		return
	}
	p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, a...))
}

func (p *parser) parseFile(data []byte, path string, depth int) ([]item, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Err: ErrFileTooLarge, Msg: fmt.Sprintf("over %d bytes", MaxFileSize)}
	}
	p.total += len(data)
	p.nfiles++
	if p.total > MaxTotalSize || p.nfiles > MaxFiles {
		return nil, &Error{File: path, Err: ErrTooMuchInput,
			Msg: fmt.Sprintf("limits are %d bytes and %d files", MaxTotalSize, MaxFiles)}
	}
	p.stack = append(p.stack, absPath(path))
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()

	var items []item
	lineno := 0
	for len(data) > 0 {
		lineno++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(line) > MaxLineLen {
			return nil, &Error{File: path, Line: lineno, Err: ErrLineTooLong, Msg: fmt.Sprintf("over %d bytes", MaxLineLen)}
		}
		it, ok, err := p.parseLine(string(line), path, lineno, depth)
		if err != nil {
			return nil, err
		}
		if ok {
			items = append(items, it)
		}
	}
	return items, nil
}

func lineErr(file string, line int, err error, format string, a ...any) error {
	return &Error{File: file, Line: line, Err: err, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) parseLine(line, file string, n, depth int) (item, bool, error) {
	kwRaw, rest, ok := splitKeyword(line)
	if !ok {
		return item{}, false, nil
	}
	kw := canonical(kwRaw)
	if rest == "" {
		return item{}, false, lineErr(file, n, ErrNoArgument, "no argument after keyword %q", kwRaw)
	}
	args, ok := splitArgs(rest)
	if !ok {
		return item{}, false, lineErr(file, n, ErrQuote, "invalid quotes")
	}
	it := item{file: file, line: n, keyword: kw, written: kwRaw, args: args}
	if rawKeywords[kw] {
		it.value = rest
		return it, true, nil
	}
	if len(args) == 0 {
		// Only a comment followed the keyword.
		return item{}, false, lineErr(file, n, ErrNoArgument, "no argument after keyword %q", kwRaw)
	}
	if singleArg[kw] && len(args) > 1 {
		return item{}, false, lineErr(file, n, ErrSyntax, "keyword %s: extra arguments at end of line", kwRaw)
	}
	it.value = strings.Join(args, " ")
	switch kw {
	case "host":
		for _, a := range args {
			if a == "" {
				return item{}, false, lineErr(file, n, ErrSyntax, "Host: empty pattern")
			}
		}
		it.kind = kHost
		return it, true, nil
	case "match":
		it.kind = kMatch
		if err := p.parseMatch(&it); err != nil {
			return item{}, false, err
		}
		return it, true, nil
	case "include":
		it.kind = kInclude
		if err := p.parseInclude(&it, depth); err != nil {
			return item{}, false, err
		}
		return it, true, nil
	}
	if err := validate(kw, args); err != nil {
		return item{}, false, lineErr(file, n, ErrBadValue, "%s %q: %v", kwRaw, it.value, err)
	}
	if kw == "ignoreunknown" && p.ignored == nil {
		// First value wins, as for other keywords.
		p.ignored = []string{args[0]}
	}
	if !knownKeywords[kw] {
		if it.ignored = p.isIgnored(kw); !it.ignored {
			p.warnf(file, n, "unknown keyword %q (kept)", kwRaw)
		}
	}
	return it, true, nil
}

func (p *parser) isIgnored(kw string) bool {
	for _, l := range p.ignored {
		if matchPatternList(kw, l, true) == 1 {
			return true
		}
	}
	return false
}

// validate checks values of the keywords whose syntax this package
// interprets.
func validate(kw string, args []string) error {
	v := args[0]
	lv := strings.ToLower(v)
	if extra, ok := flagKeywords[kw]; ok {
		switch lv {
		case "yes", "no", "true", "false":
			return nil
		}
		for _, e := range extra {
			if lv == e {
				return nil
			}
		}
		if len(extra) > 0 {
			return fmt.Errorf("expected yes, no, %s", strings.Join(extra, ", "))
		}
		return errors.New("expected yes or no")
	}
	switch kw {
	case "port":
		if _, err := parsePort(v); err != nil {
			return err
		}
	case "serveralivecountmax", "connectionattempts", "numberofpasswordprompts", "canonicalizemaxdots":
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return errors.New("expected a non-negative integer")
		}
	case "serveraliveinterval", "connecttimeout":
		if _, err := parseTime(v); err != nil {
			return err
		}
	case "loglevel":
		if !logLevels[lv] {
			return errors.New("unknown log level")
		}
	case "localforward":
		if len(args) != 2 {
			return errors.New("expected two arguments")
		}
	case "remoteforward":
		if len(args) > 2 {
			return errors.New("expected one or two arguments")
		}
	}
	return nil
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("bad port number")
	}
	return n, nil
}

// parseTime parses an ssh time value: a sequence of numbers each with
// an optional unit s, m, h, d or w (any case); a bare number is seconds.
// It returns seconds.
func parseTime(v string) (int, error) {
	if v == "" {
		return 0, errors.New("empty time")
	}
	total := 0
	for v != "" {
		i := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, errors.New("bad time value")
		}
		n, _ := strconv.Atoi(v[:i])
		v = v[i:]
		mult := 1
		if v != "" {
			switch v[0] {
			case 's', 'S':
			case 'm', 'M':
				mult = 60
			case 'h', 'H':
				mult = 3600
			case 'd', 'D':
				mult = 86400
			case 'w', 'W':
				mult = 604800
			default:
				return 0, errors.New("bad time unit")
			}
			v = v[1:]
		}
		total += n * mult
		if total > 1<<31-1 {
			return 0, errors.New("time value too large")
		}
	}
	return total, nil
}

var knownCriteria = map[string]bool{"all": true, "host": true, "originalhost": true, "user": true, "localuser": true}

// parseMatch parses a Match line. Supported criteria: all, host,
// originalhost, user, localuser, each optionally negated with '!'.
// "canonical" and "final" hold in the final pass only, which Lookup makes
// when a block says "final" (ssh's readconf.c: without hostname
// canonicalization, "Match final" asks for a final pass, in which both
// criteria hold; Red Hat's crypto policies sit in a "Match final all"
// block). Any other criterion (exec, localnetwork, tagged, ...) is
// recorded as undecided: when the supported criteria hold, Lookup treats
// the block as not matching and reports it in Host.Undecided, with a
// warning; the argument of a criterion that takes one is skipped.
func (p *parser) parseMatch(it *item) error {
	args := it.args
	for i := 0; i < len(args); i++ {
		a := strings.ToLower(args[i])
		neg := strings.HasPrefix(a, "!")
		name := strings.TrimPrefix(a, "!")
		switch name {
		case "all":
			for _, o := range args {
				switch strings.ToLower(o) {
				case "all", "!all", "canonical", "!canonical", "final", "!final":
				default:
					return lineErr(it.file, it.line, ErrSyntax, "Match all cannot be combined with other criteria")
				}
			}
			it.matchAll = true
			if neg {
				it.matchNever = true
			}
			continue
		case "canonical", "final":
			if neg {
				it.notPostCanon = true
			} else {
				it.postCanon = true
			}
			if name == "final" {
				p.cfg.finalPass = true
			}
			continue
		}
		if i+1 >= len(args) || args[i+1] == "" {
			return lineErr(it.file, it.line, ErrNoArgument, "Match %s requires an argument", name)
		}
		arg := args[i+1]
		i++
		if !knownCriteria[name] {
			it.undecided = append(it.undecided, a)
			p.warnf(it.file, it.line, "Match %s is not supported; block treated as not matching", name)
			continue
		}
		it.criteria = append(it.criteria, criterion{name: name, negate: neg, arg: arg})
	}
	return nil
}

func (p *parser) parseInclude(it *item, depth int) error {
	if depth+1 > p.opts.MaxDepth {
		return lineErr(it.file, it.line, ErrIncludeDepth, "more than %d levels", p.opts.MaxDepth)
	}
	for _, a := range it.args {
		pat := expandTilde(a, p.opts.Home)
		if !filepath.IsAbs(pat) {
			base := filepath.Join(p.opts.Home, ".ssh")
			if p.opts.System {
				base = "/etc/ssh"
			}
			pat = filepath.Join(base, pat)
		}
		names, err := p.opts.Glob(pat)
		if err != nil {
			return lineErr(it.file, it.line, ErrSyntax, "Include %q: %v", a, err)
		}
		for _, name := range names {
			clean := absPath(name)
			for _, s := range p.stack {
				if s == clean {
					return lineErr(it.file, it.line, ErrIncludeCycle, "%s includes itself", clean)
				}
			}
			data, err := p.opts.ReadFile(name)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return lineErr(it.file, it.line, err, "Include %s", name)
			}
			sub, err := p.parseFile(data, name, depth+1)
			if err != nil {
				return err
			}
			it.files = append(it.files, sub)
		}
	}
	return nil
}

// absPath returns path made absolute and clean, for cycle detection;
// if the working directory is unknown it returns the cleaned path.
func absPath(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return filepath.Clean(path)
}

// expandTilde replaces a leading "~" or "~/" with home (when home is
// non-empty). "~user" forms are left unchanged.
func expandTilde(s, home string) string {
	if home == "" || !strings.HasPrefix(s, "~") {
		return s
	}
	if s == "~" {
		return home
	}
	if strings.HasPrefix(s, "~/") {
		return strings.TrimSuffix(home, "/") + s[1:]
	}
	return s
}

// ParseTime parses an ssh_config time value ("30", "30s", "1m30s",
// "1h", "2d", "1w"; a bare number is seconds).
func ParseTime(v string) (time.Duration, error) {
	n, err := parseTime(v)
	return time.Duration(n) * time.Second, err
}
