package eventfmt

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"sshtap"
)

// ANSI SGR sequences used when Options.Color is set.
const (
	colReset   = "\x1b[0m"
	colBold    = "\x1b[1m"
	colDim     = "\x1b[2m"
	colRed     = "\x1b[31m"
	colGreen   = "\x1b[32m"
	colYellow  = "\x1b[33m"
	colBlue    = "\x1b[34m"
	colMagenta = "\x1b[35m"
	colCyan    = "\x1b[36m"
)

// kindColors gives every kind its category colour. A test checks that every
// kind of sshtap.KindAll has one.
var kindColors = map[sshtap.Kind]string{
	sshtap.KindIgnore:        colBlue,
	sshtap.KindDebug:         colBlue,
	sshtap.KindBannerLine:    colBlue,
	sshtap.KindAuthBanner:    colBlue,
	sshtap.KindDisconnect:    colRed,
	sshtap.KindMACMismatch:   colRed,
	sshtap.KindClosed:        colRed,
	sshtap.KindLagged:        colYellow,
	sshtap.KindUnimplemented: colYellow,
	sshtap.KindKexStart:      colCyan,
	sshtap.KindKex:           colCyan,
	sshtap.KindExtInfo:       colCyan,
	sshtap.KindHostKeys:      colCyan,
	sshtap.KindHostKeyProof:  colCyan,
	sshtap.KindUserAuth:      colMagenta,
	sshtap.KindAgentRequest:  colMagenta,
	sshtap.KindX11Open:       colMagenta,
	sshtap.KindGlobalRequest: colMagenta,
	sshtap.KindPing:          colGreen,
}

// kindColor is the colour of ev's kind; a closed event without an error (a
// clean end) is not an error and is not red.
func kindColor(ev sshtap.Event) string {
	if c, ok := ev.(*sshtap.ClosedEvent); ok && closeError(c.Err) == nil {
		return colGreen
	}
	if d, ok := ev.(*sshtap.DisconnectEvent); ok && !d.Remote && d.Reason == sshtap.DisconnectByApplication {
		return kindColors[sshtap.KindKex] // our own normal goodbye
	}
	if ua, ok := ev.(*sshtap.UserAuthEvent); ok {
		switch {
		case ua.Result == sshtap.AuthSuccess:
			return colGreen
		case ua.Method == "none" && ua.Err == "":
			// The "none" request that asks for the method list (RFC
			// 4252 §5.2) is expected to fail.
			return kindColors[sshtap.KindUserAuth]
		case ua.Result == sshtap.AuthFailure:
			return colRed
		}
	}
	return kindColors[ev.Kind()]
}

// humanPrefix writes "+1.234s [conn] [hop N name] kind    " into w.buf.
func (w *Writer) humanPrefix(since time.Duration, src Source, kind, color string) {
	b := &w.buf
	w.paint(colDim, formatElapsed(since))
	b.WriteByte(' ')
	if label := src.label(); label != "" {
		w.paint(colBold, label)
		b.WriteByte(' ')
	}
	w.paint(color, kind)
	b.WriteString(strings.Repeat(" ", max(1, kindWidth+1-len(kind))))
}

// paint writes s, in colour when the Writer uses colour.
func (w *Writer) paint(color, s string) {
	if w.o.Color && color != "" {
		w.buf.WriteString(color)
		w.buf.WriteString(s)
		w.buf.WriteString(colReset)
		return
	}
	w.buf.WriteString(s)
}

// formatElapsed renders a time since start as "+1.234s".
func formatElapsed(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%d.%03ds", sign, d/time.Second, (d%time.Second)/time.Millisecond)
}

// formatDur renders a short duration with about two significant decimals:
// "850µs", "8.1ms", "1.250s".
func formatDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDur(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", int64(d))
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
}

// formatBytes renders a byte count in binary units: "512 B", "3.2 KiB".
func formatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// maxText is how many bytes of a peer-provided free text the human format
// shows; the NDJSON format always carries the whole text.
const maxText = 512

// safeRune reports whether r can be shown as is: printable (letters, marks,
// numbers, punctuation, symbols, ASCII space). Control characters, ESC,
// line and paragraph separators, bidi overrides and other format characters
// are not.
func safeRune(r rune) bool {
	return r != utf8.RuneError && unicode.IsPrint(r)
}

// escapeTo writes s with every unsafe rune or invalid byte escaped Go-style
// (\n, \x1b, \u202e), and backslashes doubled so that escapes cannot be
// faked. With quote, a double quote is escaped too.
func escapeTo(b *strings.Builder, s string, quote bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"' && quote:
			b.WriteString(`\"`)
		case safeRune(r):
			b.WriteString(s[i : i+size])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
		i += size
	}
}

// clean escapes s for the human format without quoting it (error strings,
// notes, addresses).
func clean(s string) string {
	var b strings.Builder
	escapeTo(&b, s, false)
	return b.String()
}

// quote renders peer free text for the human format: double-quoted, escaped,
// and cut after maxText bytes.
func quote(s string) string {
	s, cut := cutText(s)
	var b strings.Builder
	b.WriteByte('"')
	escapeTo(&b, s, true)
	b.WriteByte('"')
	b.WriteString(cut)
	return b.String()
}

// cutText cuts s after maxText bytes, at a rune boundary, and returns what
// to append to say so ("...(2000 bytes)").
func cutText(s string) (string, string) {
	if len(s) <= maxText {
		return s, ""
	}
	end := maxText
	for end > maxText-utf8.UTFMax && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end], fmt.Sprintf("...(%d bytes)", len(s))
}

// token renders a peer-provided short word (an algorithm or method name, a
// user name): as is when it is non-empty printable text without spaces or
// quotes, quoted otherwise, so that it always reads as one field.
func token(s string) string {
	if s == "" || len(s) > maxText {
		return quote(s)
	}
	for _, r := range s {
		if !safeRune(r) || r == ' ' || r == '"' || r == '\\' || unicode.IsSpace(r) {
			return quote(s)
		}
	}
	return s
}

func tokens(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = token(s)
	}
	return strings.Join(out, ",")
}

// humanDetails renders what follows the kind on an event's line.
func humanDetails(ev sshtap.Event) string {
	var f []string
	add := func(s ...string) { f = append(f, s...) }
	switch ev := ev.(type) {
	case *sshtap.IgnoreEvent:
		add(fmt.Sprintf("len=%d", ev.Length))
		if len(ev.Data) > 0 {
			add(preview(ev.Data))
		}
	case *sshtap.DebugEvent:
		if ev.AlwaysDisplay {
			add("always-display")
		}
		add(quote(ev.Message))
		if ev.Length > len(ev.Message) {
			add(fmt.Sprintf("len=%d", ev.Length))
		}
		if ev.Language != "" {
			add("lang=" + token(ev.Language))
		}
	case *sshtap.DisconnectEvent:
		add(side(ev.Remote), fmt.Sprintf("reason=%d (%s)", uint32(ev.Reason), reasonName(ev.Reason)), quote(ev.Message))
		if ev.Language != "" {
			add("lang=" + token(ev.Language))
		}
	case *sshtap.MACMismatchEvent:
		add(fmt.Sprintf("seq=%d len=%d", ev.Seq, ev.Length), token(ev.Cipher))
		if ev.MAC != "" {
			add(token(ev.MAC))
		}
		add(ev.Mode.String())
		if !ev.LengthAuthenticated {
			add("bad-length")
		}
		add("verdict=" + ev.Verdict.String())
	case *sshtap.KexStartEvent:
		add(initial(ev.Initial), "by="+side(ev.Remote))
	case *sshtap.KexEvent:
		a := ev.Algorithms
		add(initial(ev.Initial), token(a.Kex), token(a.HostKey))
		if ki := describeKey(ev.HostKey); ki.Fingerprint != "" {
			add(ki.Fingerprint)
		}
		add("c2s", direction(a.ClientToServer), "s2c", direction(a.ServerToClient))
		if ev.Strict {
			add("strict")
		}
		add("(" + formatDur(ev.Duration) + ")")
	case *sshtap.BannerLineEvent:
		add(quote(ev.Line))
	case *sshtap.UnimplementedEvent:
		add(side(ev.Remote), fmt.Sprintf("seq=%d", ev.Seq))
		if !ev.Remote {
			add(fmt.Sprintf("type=%d", ev.Type))
		}
	case *sshtap.ExtInfoEvent:
		if len(ev.Extensions) == 0 {
			add("(none)")
		}
		for _, x := range ev.Extensions {
			v, hex := extValue(x.Value)
			if hex {
				v = "0x" + v
			} else {
				v = token(v)
			}
			add(token(x.Name) + "=" + v)
		}
	case *sshtap.PingEvent:
		add("rtt=" + formatDur(ev.RTT))
	case *sshtap.X11OpenEvent:
		add("from " + clean(net.JoinHostPort(ev.OriginAddr, strconv.FormatUint(uint64(ev.OriginPort), 10))))
	case *sshtap.LaggedEvent:
		add(fmt.Sprintf("dropped=%d", ev.Dropped))
	case *sshtap.ClosedEvent:
		if err := closeError(ev.Err); err == nil {
			add("closed")
		} else {
			msg, cut := cutText(err.Error())
			add(clean(msg) + cut)
		}
	case *sshtap.AuthBannerEvent:
		add(quote(ev.Message))
		if ev.Language != "" {
			add("lang=" + token(ev.Language))
		}
	case *sshtap.UserAuthEvent:
		add(token(ev.User), token(ev.Method))
		if ev.Algorithm != "" {
			add(token(ev.Algorithm))
		}
		add(ev.Result.String())
		if len(ev.Remaining) > 0 {
			add("remaining=" + tokens(ev.Remaining))
		}
		if ev.Err != "" {
			add("error=" + quote(ev.Err))
		}
	case *sshtap.HostKeysEvent:
		add(fmt.Sprintf("n=%d", len(ev.Keys)))
		addKeys(add, ev.Keys)
	case *sshtap.HostKeyProofEvent:
		if ev.Proven {
			add("proven")
		} else {
			add("unproven")
		}
		add(fmt.Sprintf("n=%d", len(ev.Keys)))
		addKeys(add, ev.Keys)
		if ev.Err != "" {
			add("error=" + quote(ev.Err))
		}
	case *sshtap.GlobalRequestEvent:
		add(token(ev.Name))
		if ev.WantReply {
			add("want-reply")
		}
		if ev.Handled {
			add("handled")
		} else {
			add("unhandled")
		}
	case *sshtap.AgentRequestEvent:
		add(token(ev.Request))
		if ev.Key != "" {
			add(token(ev.Key))
		}
		if ev.Extension != "" {
			add(token(ev.Extension))
		}
		if ev.Flags != 0 {
			add("flags=" + signFlags(ev.Flags))
		}
		if ev.Allowed {
			add("allowed")
		} else {
			add("denied")
		}
		if ev.Err != "" {
			add("error=" + quote(ev.Err))
		}
	default:
		add(unrendered(ev))
	}
	return strings.Join(f, " ")
}

// unrendered describes an event type this package does not know; tests
// check that no kind of sshtap.KindAll ends up here.
func unrendered(ev sshtap.Event) string { return fmt.Sprintf("(unrendered %T)", ev) }

func side(remote bool) string {
	if remote {
		return "remote"
	}
	return "local"
}

func initial(b bool) string {
	if b {
		return "initial"
	}
	return "rekey"
}

// reasonName is a disconnect reason for people: "by-application".
func reasonName(r sshtap.DisconnectReason) string {
	return strings.ReplaceAll(strings.ToLower(r.String()), "_", "-")
}

// direction renders one direction's algorithms: the cipher, "+mac" unless
// AEAD, and "+compression" unless none.
func direction(d sshtap.DirectionAlgorithms) string {
	s := token(d.Cipher)
	if d.MAC != "" {
		s += "+" + token(d.MAC)
	}
	if d.Compression != "" && d.Compression != "none" {
		s += "+" + token(d.Compression)
	}
	return s
}

// signFlags names SSH_AGENT_SIGN flags (draft-miller-ssh-agent §4.5.1).
func signFlags(f uint32) string {
	var names []string
	for _, n := range []struct {
		bit  uint32
		name string
	}{{2, "rsa-sha2-256"}, {4, "rsa-sha2-512"}} {
		if f&n.bit != 0 {
			names = append(names, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", f))
	}
	return strings.Join(names, "|")
}

// previewLen is how many bytes of SSH_MSG_IGNORE data the human format shows.
const previewLen = 32

// preview shows the start of binary data as a quoted, escaped string.
func preview(data []byte) string {
	s := data
	if len(s) > previewLen {
		s = s[:previewLen]
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	b.WriteByte('"')
	if len(data) > previewLen {
		b.WriteString("...")
	}
	return b.String()
}

// humanSummary writes the exit summary block into w.buf.
func (w *Writer) humanSummary(src Source, s summarySnapshot, st sshtap.Stats, elapsed time.Duration) {
	b := &w.buf
	head := "summary"
	if label := src.label(); label != "" {
		head += " " + label
	}
	w.paint(colBold, head)
	fmt.Fprintf(b, " after %s\n", formatDur(elapsed))
	row := func(label, value string) {
		fmt.Fprintf(b, "  %-8s %s\n", label, value)
	}
	row("bytes", fmt.Sprintf("%s in (%d), %s out (%d)", formatBytes(st.BytesRead), st.BytesRead, formatBytes(st.BytesWritten), st.BytesWritten))
	row("rekeys", strconv.FormatUint(st.Rekeys, 10))
	if st.CompressedOut > 0 || st.CompressedIn > 0 {
		row("zlib", fmt.Sprintf("in %s, out %s (payload / compressed)", ratio(st.UncompressedIn, st.CompressedIn), ratio(st.UncompressedOut, st.CompressedOut)))
	}
	if s.pings > 0 {
		row("rtt", fmt.Sprintf("min %s  avg %s  max %s  (%s)", formatDur(s.rttMin), formatDur(s.rttAvg), formatDur(s.rttMax), plural(s.pings, "ping")))
	} else {
		row("rtt", "no pings")
	}
	if s.dropped > 0 {
		row("dropped", plural(int(min(s.dropped, 1<<62)), "event")+" (subscription full)")
	}
	ks := sortedKinds(s.counts)
	if len(ks) == 0 {
		row("events", "none")
		return
	}
	row("events", fmt.Sprintf("%d in total", s.total))
	const perRow = 3
	cell := kindWidth + 6
	line := ""
	for i, k := range ks {
		if i > 0 && i%perRow == 0 {
			row("", strings.TrimRight(line, " "))
			line = ""
		}
		c := fmt.Sprintf("%s %d", k, s.counts[k])
		line += c + strings.Repeat(" ", max(2, cell-len(c)))
	}
	row("", strings.TrimRight(line, " "))
}

// plural renders "1 ping", "3 pings".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Clean escapes a peer-supplied string for printing on one line of a
// terminal, as the human format does: control characters (line breaks
// included), ESC, bidi overrides and invalid UTF-8 are shown escaped.
func Clean(s string) string { return clean(s) }

// ratio formats a compression ratio.
func ratio(plain, compressed uint64) string {
	if compressed == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", float64(plain)/float64(compressed))
}

// addKeys adds "type fingerprint" for each key blob, comma-separated.
func addKeys(add func(...string), keys [][]byte) {
	for i, k := range keys {
		ki := describeKey(k)
		s := ki.Fingerprint
		if ki.Type != "" {
			s = token(ki.Type) + " " + s
		} else if s == "" {
			s = "(empty)"
		}
		if i < len(keys)-1 {
			s += ","
		}
		add(s)
	}
}
