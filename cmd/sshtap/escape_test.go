package main

import (
	"fmt"
	"strings"
	"testing"
)

// trace renders the filter's steps for comparison: sent bytes as they
// are, shown text in {}, actions in <>, a command line as <command:...>.
// Adjacent sends (and adjacent shows) are merged: how a run is split into
// steps is not behaviour.
func trace(steps []escapeStep) string {
	var b strings.Builder
	last := escapeAction(-1)
	for _, s := range steps {
		switch s.action {
		case escSend:
			if last == escShow {
				b.WriteString("}")
			}
			b.Write(s.data)
		case escShow:
			if last != escShow {
				b.WriteString("{")
			}
			b.Write(s.data)
		default:
			if last == escShow {
				b.WriteString("}")
			}
			name := map[escapeAction]string{escDisconnect: "disconnect", escSuspend: "suspend", escList: "list", escCommand: "command"}[s.action]
			if s.action == escCommand {
				name += ":" + string(s.data)
			}
			b.WriteString("<" + name + ">")
		}
		last = s.action
	}
	if last == escShow {
		b.WriteString("}")
	}
	return b.String()
}

func TestEscapeFilter(t *testing.T) {
	help := newEscapeFilter('~', true).help()
	for _, tc := range []struct {
		name     string
		char     byte
		noCmd    bool     // EnableEscapeCommandline no
		in       []string // chunks, as reads from the terminal return them
		want     string
		wantLine bool // the filter is left reading a command line
	}{
		{name: "plain", in: []string{"ls -l\r"}, want: "ls -l\r"},
		{name: "disconnect-at-start", in: []string{"~."}, want: "{~.\r\n}<disconnect>"},
		{name: "disconnect-after-cr", in: []string{"echo hi\r~."}, want: "echo hi\r{~.\r\n}<disconnect>"},
		{name: "disconnect-after-lf", in: []string{"x\n~."}, want: "x\n{~.\r\n}<disconnect>"},
		{name: "split-across-reads", in: []string{"a\r", "~", "."}, want: "a\r{~.\r\n}<disconnect>"},
		{name: "not-after-newline", in: []string{"a~."}, want: "a~."},
		{name: "mid-line", in: []string{"echo ~.\r"}, want: "echo ~.\r"},
		{name: "tilde-tilde", in: []string{"~~"}, want: "~"},
		{name: "tilde-tilde-then-not-newline", in: []string{"~~~."}, want: "~~."},
		{name: "unknown-escape", in: []string{"~x"}, want: "~x"},
		{name: "unknown-split", in: []string{"~", "xy"}, want: "~xy"},
		{name: "tilde-cr-is-newline", in: []string{"~\r~."}, want: "~\r{~.\r\n}<disconnect>"},
		{name: "suspend", in: []string{"~\x1a"}, want: "{~^Z [suspend sshtap]\r\n}<suspend>"},
		{name: "list-then-another", in: []string{"\r~#~."}, want: "\r{~#\r\n}<list>{~.\r\n}<disconnect>"},
		{name: "list-then-data", in: []string{"~#ab"}, want: "{~#\r\n}<list>ab"},
		{name: "help", in: []string{"~?"}, want: "{" + help + "}"},
		{name: "command", in: []string{"~C-L 8080:h:80\r"}, want: "{\r\nsshtap> -L 8080:h:80\r\n}<command:-L 8080:h:80>"},
		{name: "command-split", in: []string{"~", "C", "-D", " 1080", "\r", "x"},
			want: "{\r\nsshtap> -D 1080\r\n}<command:-D 1080>x"},
		{name: "command-edit", in: []string{"~C-Lx\x7f 1\x08\x0822\r"},
			want: "{\r\nsshtap> -Lx\b \b 1\b \b\b \b22\r\n}<command:-L22>"},
		{name: "command-kill-line", in: []string{"~Cabc\x15-KD 1\r"},
			want: "{\r\nsshtap> abc\b \b\b \b\b \b-KD 1\r\n}<command:-KD 1>"},
		{name: "command-cancel", in: []string{"~C-L\x03ls\r"}, want: "{\r\nsshtap> -L\r\n}ls\r"},
		{name: "command-eof-on-empty", in: []string{"~C\x04~."}, want: "{\r\nsshtap> \r\n~.\r\n}<disconnect>"},
		{name: "command-controls-dropped", in: []string{"~Ca\x01\tb\r"}, want: "{\r\nsshtap> ab\r\n}<command:ab>"},
		{name: "command-then-escape", in: []string{"~C\r~."}, want: "{\r\nsshtap> \r\n}<command:>{~.\r\n}<disconnect>"},
		{name: "command-disabled", noCmd: true, in: []string{"~Cx"}, want: "{~C\r\ncommandline disabled\r\n}x"},
		{name: "other-char", char: '%', in: []string{"~.\r%."}, want: "~.\r{%.\r\n}<disconnect>"},
		{name: "control-char", char: 0x1d, in: []string{"\x1d."}, want: "{^].\r\n}<disconnect>"},
		{name: "control-char-twice", char: 0x1d, in: []string{"\x1d\x1d"}, want: "\x1d"},
		{name: "partial-escape-pending", in: []string{"ab\r~"}, want: "ab\r"},
		{name: "partial-command-pending", in: []string{"~C-L"}, want: "{\r\nsshtap> -L}", wantLine: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			char := tc.char
			if char == 0 {
				char = '~'
			}
			f := newEscapeFilter(char, !tc.noCmd)
			var steps []escapeStep
			for _, chunk := range tc.in {
				for _, s := range f.feed([]byte(chunk)) {
					// Sent data may alias the input: copy, as the caller
					// uses it before the next read.
					s.data = append([]byte(nil), s.data...)
					steps = append(steps, s)
				}
			}
			if got := trace(steps); got != tc.want {
				t.Errorf("in %q:\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if f.inCommand != tc.wantLine {
				t.Errorf("reading a command line: %v, want %v", f.inCommand, tc.wantLine)
			}
		})
	}
}

// A command line stops growing at maxCommandLine; the filter's memory is
// bounded whatever is typed.
func TestEscapeCommandLineBounded(t *testing.T) {
	f := newEscapeFilter('~', true)
	f.feed([]byte("~C"))
	long := strings.Repeat("x", 3*maxCommandLine)
	f.feed([]byte(long))
	steps := f.feed([]byte("\r"))
	var line []byte
	for _, s := range steps {
		if s.action == escCommand {
			line = s.data
		}
	}
	if len(line) != maxCommandLine {
		t.Errorf("command line of %d bytes, want it cut at %d", len(line), maxCommandLine)
	}
}

func TestEscapeHelp(t *testing.T) {
	h := newEscapeFilter('~', true).help()
	for _, w := range []string{"~?\r\n", " ~.   - terminate connection\r\n", " ~C ", " ~^Z ", " ~# ", " ~~   - send the escape character", "only recognized immediately after newline"} {
		if !strings.Contains(h, w) {
			t.Errorf("help lacks %q:\n%s", w, h)
		}
	}
	if strings.Contains(strings.ReplaceAll(h, "\r\n", ""), "\n") {
		t.Errorf("help has a bare LF (the terminal is raw):\n%q", h)
	}
	if h := newEscapeFilter('~', false).help(); strings.Contains(h, "~C") {
		t.Errorf("help shows ~C with the command line disabled:\n%s", h)
	}
	if h := newEscapeFilter(0x1d, true).help(); !strings.Contains(h, " ^].   - terminate") {
		t.Errorf("help for ^] :\n%s", h)
	}
}

func TestParseEscapeChar(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"~", '~'}, {"%", '%'}, {"^]", 0x1d}, {"^A", 1}, {"^@", 0}, {"^_", 0x1f}, {"^a", 1}, {"none", noEscape}, {"^", '^'},
	} {
		got, err := parseEscapeChar(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseEscapeChar(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "ab", "^1", "^?", "^]x", "None", "^\x80"} {
		if got, err := parseEscapeChar(bad); err == nil {
			t.Errorf("parseEscapeChar(%q) = %d, want an error", bad, got)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("error %q does not name %q", err, bad)
		}
	}
}
