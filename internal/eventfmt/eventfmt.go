// Package eventfmt renders sshtap events for people (one line per event,
// time since connect, optional colour) and for programs (NDJSON with stable
// field names), and keeps the per-connection summary printed at exit.
//
// It is pure: no goroutines, no network. A Writer and a Summary are safe for
// concurrent use.
//
// Whatever a peer sends, one event is exactly one line in both formats: the
// human format escapes control characters, invalid UTF-8 and other
// non-printable runes in every peer-provided string, and NDJSON relies on
// encoding/json, which escapes them inside JSON strings. The NDJSON schema is
// documented in cmd/sshtap/EVENTS.md.
package eventfmt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"sshtap"
)

// Options say how a Writer renders.
type Options struct {
	JSON  bool        // NDJSON instead of the human format
	Color bool        // ANSI colour in the human format (the caller decides: a tty and no NO_COLOR)
	Start time.Time   // the human format shows the time since Start
	Show  sshtap.Kind // kinds to print; others are skipped (0 prints nothing)
}

// Writer renders events to an io.Writer, one line (or one JSON object) per
// call, never interleaving lines of concurrent callers.
//
// Notes (Writer.Note) and summaries are not event kinds and are written
// whatever Options.Show says. A zero Options.Start is replaced by the time of
// the first line written.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	o      Options
	buf    bytes.Buffer
	starts map[string]time.Time // per-connection starts (SetConnStart)
}

// SetConnStart makes the elapsed time of conn's lines count from start
// instead of Options.Start: a server showing many clients times each from
// its own connect. ForgetConn drops it.
func (w *Writer) SetConnStart(conn string, start time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.starts == nil {
		w.starts = map[string]time.Time{}
	}
	w.starts[conn] = start
}

// HasConnStart reports whether SetConnStart was called for conn (and not
// forgotten since).
func (w *Writer) HasConnStart(conn string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.starts[conn]
	return ok
}

// ForgetConn drops conn's start, so that a long-running server keeps no
// state for connections that ended.
func (w *Writer) ForgetConn(conn string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.starts, conn)
}

// New returns a Writer rendering to w.
func New(w io.Writer, o Options) *Writer { return &Writer{w: w, o: o} }

// Source says which connection a line belongs to.
type Source struct {
	// Conn names the connection when the command has several (serve:
	// "#N HOST:PORT"); "" when there is only one.
	Conn string
	// Hop names a jump host's connection (ProxyJump, -J) as the user
	// wrote the host; "" for the connection to the destination itself.
	Hop string
	// HopIndex is the jump host's place on the way, from 1 for the
	// first connection made; 0 when Hop is "".
	HopIndex int
}

// label is the human format's "[conn] [hop N name]" ("" when neither).
func (src Source) label() string {
	var parts []string
	if src.Conn != "" {
		parts = append(parts, "["+clean(src.Conn)+"]")
	}
	if src.Hop != "" {
		parts = append(parts, fmt.Sprintf("[hop %d %s]", src.HopIndex, clean(src.Hop)))
	}
	return strings.Join(parts, " ")
}

// Event renders ev if its kind is shown. conn names the connection the event
// belongs to ("" when there is only one).
func (w *Writer) Event(conn string, ev sshtap.Event) error {
	return w.EventFrom(Source{Conn: conn}, ev)
}

// EventFrom renders ev, an event of src's connection, if its kind is shown.
func (w *Writer) EventFrom(src Source, ev sshtap.Event) error {
	if ev == nil || ev.Kind()&w.o.Show == 0 {
		return nil
	}
	t := ev.When()
	if t.IsZero() {
		t = time.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	start := w.startLocked(src.Conn, t)
	if w.o.JSON {
		if err := writeJSON(&w.buf, jsonEvent(common(src, ev.Kind().String(), t, t.Sub(start)), ev)); err != nil {
			return err
		}
	} else {
		w.humanPrefix(t.Sub(start), src, ev.Kind().String(), kindColor(ev))
		w.buf.WriteString(humanDetails(ev))
		w.buf.WriteByte('\n')
		if kx, ok := ev.(*sshtap.KexEvent); ok && len(kx.Legacy) > 0 {
			// A second line, so that the weak algorithms stand out.
			w.humanPrefix(t.Sub(start), src, "warning", colYellow)
			w.paint(colYellow, "legacy algorithm negotiated (weak, enabled by configuration): "+tokens(kx.Legacy))
			w.buf.WriteByte('\n')
		}
	}
	return w.flushLocked()
}

// Note renders a line that is not a library event (e.g. "connected to
// host:22", "listening on ..."): kind "note" in NDJSON.
func (w *Writer) Note(conn, msg string) error {
	return w.NoteFrom(Source{Conn: conn}, msg)
}

// NoteFrom renders a note about src's connection.
func (w *Writer) NoteFrom(src Source, msg string) error {
	t := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	start := w.startLocked(src.Conn, t)
	if w.o.JSON {
		if err := writeJSON(&w.buf, &noteJSON{common(src, "note", t, t.Sub(start)), msg}); err != nil {
			return err
		}
	} else {
		w.humanPrefix(t.Sub(start), src, "note", colBold)
		w.buf.WriteString(clean(msg))
		w.buf.WriteByte('\n')
	}
	return w.flushLocked()
}

// startLocked returns conn's start (SetConnStart), else Options.Start,
// setting it to t when it is zero.
func (w *Writer) startLocked(conn string, t time.Time) time.Time {
	if st, ok := w.starts[conn]; ok {
		return st
	}
	if w.o.Start.IsZero() {
		w.o.Start = t
	}
	return w.o.Start
}

// flushLocked writes the rendered line with one Write call.
func (w *Writer) flushLocked() error {
	n, err := w.w.Write(w.buf.Bytes())
	if err == nil && n < w.buf.Len() {
		err = io.ErrShortWrite
	}
	return err
}

// ParseKinds parses a comma-separated list of kind names as Kind.String
// spells them ("kex,ping,mac-mismatch"); "all" selects every kind. Spaces
// around names are ignored; an empty list, an empty name or an unknown name
// is an error that lists the valid names.
func ParseKinds(list string) (sshtap.Kind, error) {
	var k sshtap.Kind
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "all" {
			k |= sshtap.KindAll
			continue
		}
		one, ok := kindByName[name]
		if !ok {
			what := fmt.Sprintf("unknown event kind %q", name)
			if name == "" {
				what = "empty event kind"
			}
			return 0, fmt.Errorf("%s (valid: %s, all)", what, strings.Join(KindNames(), ", "))
		}
		k |= one
	}
	return k, nil
}

// KindNames returns the name of every kind, in the order of their bits.
func KindNames() []string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.String())
	}
	return names
}

// Kinds returns every single kind of sshtap.KindAll, in the order of their bits.
func Kinds() []sshtap.Kind {
	var ks []sshtap.Kind
	for all := uint64(sshtap.KindAll); all != 0; all &= all - 1 {
		ks = append(ks, sshtap.Kind(1)<<bits.TrailingZeros64(all))
	}
	return ks
}

var kindByName = func() map[string]sshtap.Kind {
	m := map[string]sshtap.Kind{}
	for _, k := range Kinds() {
		m[k.String()] = k
	}
	return m
}()

// kindWidth is the width the kind column is padded to.
var kindWidth = func() int {
	n := len("summary")
	for _, k := range Kinds() {
		n = max(n, len(k.String()))
	}
	return n
}()

// Summary accumulates what the exit summary reports for one connection:
// events per kind and ping round trips. The zero value is ready to use.
type Summary struct {
	mu      sync.Mutex
	counts  map[sshtap.Kind]int
	pings   int
	rttSum  time.Duration
	rttMin  time.Duration
	rttMax  time.Duration
	dropped uint64
}

// Add counts ev (a PingEvent also adds its RTT, a LaggedEvent the number of
// events dropped).
func (s *Summary) Add(ev sshtap.Event) {
	if ev == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[sshtap.Kind]int{}
	}
	s.counts[ev.Kind()]++
	switch ev := ev.(type) {
	case *sshtap.PingEvent:
		if s.pings == 0 || ev.RTT < s.rttMin {
			s.rttMin = ev.RTT
		}
		if s.pings == 0 || ev.RTT > s.rttMax {
			s.rttMax = ev.RTT
		}
		s.pings++
		s.rttSum += ev.RTT
	case *sshtap.LaggedEvent:
		s.dropped += ev.Dropped
	}
}

// summarySnapshot is a consistent copy of a Summary.
type summarySnapshot struct {
	counts                 map[sshtap.Kind]int
	total                  int
	pings                  int
	rttMin, rttAvg, rttMax time.Duration
	dropped                uint64
}

func (s *Summary) snapshot() summarySnapshot {
	var snap summarySnapshot
	snap.counts = map[sshtap.Kind]int{}
	if s == nil {
		return snap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.counts {
		snap.counts[k] = n
		snap.total += n
	}
	snap.pings, snap.dropped = s.pings, s.dropped
	if s.pings > 0 {
		snap.rttMin, snap.rttMax = s.rttMin, s.rttMax
		snap.rttAvg = s.rttSum / time.Duration(s.pings)
	}
	return snap
}

// WriteSummary renders the exit summary of one connection: counts per kind,
// bytes each way and rekeys from st, RTT min/avg/max, and how long the
// connection lasted. In JSON it is one object of kind "summary".
func (w *Writer) WriteSummary(conn string, s *Summary, st sshtap.Stats, elapsed time.Duration) error {
	return w.WriteSummaryFrom(Source{Conn: conn}, s, st, elapsed)
}

// WriteSummaryFrom writes the exit summary of src's connection.
func (w *Writer) WriteSummaryFrom(src Source, s *Summary, st sshtap.Stats, elapsed time.Duration) error {
	snap := s.snapshot()
	t := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	w.startLocked(src.Conn, t)
	if w.o.JSON {
		if err := writeJSON(&w.buf, summaryToJSON(src, t, snap, st, elapsed)); err != nil {
			return err
		}
	} else {
		w.humanSummary(src, snap, st, elapsed)
	}
	return w.flushLocked()
}

// fingerprint returns the SHA256 fingerprint of a public key blob as
// ssh-keygen -l prints it. It hashes the blob as sent, so it is defined even
// for a blob that does not parse.
func fingerprint(blob []byte) string {
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// sortedKinds returns the kinds of counts in bit order; kinds outside
// sshtap.KindAll (which the library never publishes) come last.
func sortedKinds(counts map[sshtap.Kind]int) []sshtap.Kind {
	ks := make([]sshtap.Kind, 0, len(counts))
	for k, n := range counts {
		if n > 0 {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

// closeError is the error worth reporting in a ClosedEvent: nil for a clean
// end, that is a local Close or Disconnect (which the library reports as
// errors matching net.ErrClosed), else err: a remote disconnect, an I/O,
// protocol or keepalive failure.
func closeError(err error) error {
	var de *sshtap.DisconnectError
	if err == nil || (errors.Is(err, net.ErrClosed) && !(errors.As(err, &de) && de.Remote)) {
		return nil
	}
	return err
}
