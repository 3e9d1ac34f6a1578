package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape sequences, as ssh(1) ESCAPE CHARACTERS describes them: when a pty
// is in use, the escape character (~ unless EscapeChar or -e says
// otherwise) typed right after a newline, or first in the session,
// introduces a command for sshtap instead of data for the remote side.

// noEscape is the escape character "none": no escape sequences.
const noEscape = -1

// parseEscapeChar reads -e and EscapeChar as ssh does: a single character,
// "^X" for the control character X&31 (X from '@' to DEL), or "none".
func parseEscapeChar(s string) (int, error) {
	switch {
	case len(s) == 2 && s[0] == '^' && s[1] >= 64 && s[1] < 128:
		return int(s[1] & 31), nil
	case len(s) == 1:
		return int(s[0]), nil
	case s == "none":
		return noEscape, nil
	}
	return 0, fmt.Errorf("bad escape character %q (a character, ^X or none)", s)
}

// escapeName shows an escape character: itself when printable, ^X for a
// control character.
func escapeName(c byte) string {
	switch {
	case c < 0x20:
		return "^" + string(rune(c+64))
	case c == 0x7f:
		return "^?"
	}
	return string(rune(c))
}

// escapeAction is one step of the filter's output, in order.
type escapeAction int

const (
	escSend       escapeAction = iota // data goes to the remote side
	escShow                           // data is shown on the local terminal only
	escDisconnect                     // ~. : end the connection
	escSuspend                        // ~^Z: suspend sshtap (SIGTSTP), terminal restored
	escList                           // ~# : list forwards and forwarded connections
	escCommand                        // ~C : data is the command line typed
)

type escapeStep struct {
	action escapeAction
	data   []byte
}

// maxCommandLine bounds what ~C collects; further typing is dropped.
const maxCommandLine = 512

// escapeFilter is the escape-sequence state machine: keyboard bytes in,
// steps out (bytes to send, text to show, actions). It does no I/O and
// knows nothing of terminals. It is not safe for concurrent use: the one
// goroutine copying stdin to the session owns it.
type escapeFilter struct {
	char        byte
	commandLine bool // ~C available (EnableEscapeCommandline)

	afterNewline bool // the last byte sent was CR or LF, or nothing was sent yet
	pending      bool // the escape character was typed after a newline
	inCommand    bool // reading a ~C command line
	line         []byte
}

func newEscapeFilter(char byte, commandLine bool) *escapeFilter {
	return &escapeFilter{char: char, commandLine: commandLine, afterNewline: true}
}

// feed runs the filter over p. The escSend steps' data may alias p: the
// caller uses them before the next feed.
func (f *escapeFilter) feed(p []byte) []escapeStep {
	var steps []escapeStep
	show := func(s string) { steps = append(steps, escapeStep{action: escShow, data: []byte(s)}) }
	act := func(a escapeAction) { steps = append(steps, escapeStep{action: a}) }
	esc := escapeName(f.char)
	start := 0 // p[start:i] are plain bytes not yet in a step
	flush := func(end int) {
		if end > start {
			steps = append(steps, escapeStep{action: escSend, data: p[start:end]})
		}
	}
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case f.inCommand:
			f.commandByte(ch, &steps)
			start = i + 1
			continue
		case f.pending:
			f.pending = false
			handled := true
			switch ch {
			case '.':
				show(esc + ".\r\n")
				act(escDisconnect)
			case 'Z' - 64:
				show(esc + "^Z [suspend sshtap]\r\n")
				act(escSuspend)
			case '#':
				show(esc + "#\r\n")
				act(escList)
			case '?':
				show(f.help())
			case 'C':
				if !f.commandLine {
					show(esc + "C\r\ncommandline disabled\r\n")
					break
				}
				f.inCommand = true
				f.line = f.line[:0]
				show("\r\nsshtap> ")
			default:
				handled = false
			}
			if handled {
				// As in ssh, the newline state stays: another escape
				// may follow at once.
				start = i + 1
				continue
			}
			if ch != f.char {
				// Not an escape: the escape character goes through, then
				// this byte as any other. (~~ sends the second ~ only.)
				steps = append(steps, escapeStep{action: escSend, data: []byte{f.char}})
			}
		case f.afterNewline && ch == f.char:
			flush(i)
			f.pending = true
			start = i + 1
			continue
		}
		f.afterNewline = ch == '\r' || ch == '\n'
	}
	flush(len(p))
	return steps
}

// commandByte is one byte typed on the ~C command line: the filter echoes
// it (the terminal is raw) and edits the line; Enter ends it.
func (f *escapeFilter) commandByte(ch byte, steps *[]escapeStep) {
	show := func(s string) { *steps = append(*steps, escapeStep{action: escShow, data: []byte(s)}) }
	switch ch {
	case '\r', '\n':
		f.inCommand = false
		show("\r\n")
		*steps = append(*steps, escapeStep{action: escCommand, data: append([]byte(nil), f.line...)})
	case 0x7f, 0x08: // DEL, ^H: erase the last character
		if len(f.line) > 0 {
			_, n := utf8.DecodeLastRune(f.line)
			f.line = f.line[:len(f.line)-n]
			show("\b \b")
		}
	case 0x15: // ^U: erase the line
		show(strings.Repeat("\b \b", utf8.RuneCount(f.line)))
		f.line = f.line[:0]
	case 0x03, 0x1b: // ^C, ESC: give up
		f.inCommand = false
		show("\r\n")
	case 0x04: // ^D: give up on an empty line
		if len(f.line) == 0 {
			f.inCommand = false
			show("\r\n")
		}
	default:
		if ch < 0x20 || len(f.line) >= maxCommandLine {
			return
		}
		f.line = append(f.line, ch)
		show(string([]byte{ch}))
	}
}

// help is the text ~? shows.
func (f *escapeFilter) help() string {
	e := escapeName(f.char)
	var b strings.Builder
	fmt.Fprintf(&b, "%s?\r\nSupported escape sequences:\r\n", e)
	for _, l := range [][2]string{
		{".", "terminate connection"},
		{"C", "open a command line (-L, -R, -D, -KL, -KR, -KD; -h for help)"},
		{"^Z", "suspend sshtap"},
		{"#", "list forwarded connections"},
		{"?", "this message"},
		{e, "send the escape character by typing it twice"},
	} {
		if l[0] == "C" && !f.commandLine {
			continue
		}
		fmt.Fprintf(&b, " %s%-3s - %s\r\n", e, l[0], l[1])
	}
	b.WriteString("(Note that escapes are only recognized immediately after newline.)\r\n")
	return b.String()
}
