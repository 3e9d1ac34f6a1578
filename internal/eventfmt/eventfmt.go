// Package eventfmt renders sshtap events for people (one line per event,
// time since connect, optional colour) and for programs (NDJSON with stable
// field names), and keeps the per-connection summary printed at exit.
//
// It is pure: no goroutines, no network. A Writer and a Summary are safe for
// concurrent use.
package eventfmt

import (
	"fmt"
	"io"
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
type Writer struct {
	mu sync.Mutex
	w  io.Writer
	o  Options
}

// New returns a Writer rendering to w.
func New(w io.Writer, o Options) *Writer { return &Writer{w: w, o: o} }

// Event renders ev if its kind is shown. conn names the connection the event
// belongs to ("" when there is only one).
func (w *Writer) Event(conn string, ev sshtap.Event) error {
	if ev.Kind()&w.o.Show == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := fmt.Fprintf(w.w, "%s %s %T\n", conn, ev.Kind(), ev) // STUB: replaced by the real renderer
	return err
}

// Note renders a line that is not a library event (e.g. "connected to
// host:22", "listening on ..."): kind "note" in NDJSON.
func (w *Writer) Note(conn, msg string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := fmt.Fprintf(w.w, "%s note %s\n", conn, msg) // STUB
	return err
}

// ParseKinds parses a comma-separated list of kind names as Kind.String
// spells them ("kex,ping,mac-mismatch"); "all" selects every kind.
func ParseKinds(list string) (sshtap.Kind, error) {
	return sshtap.KindAll, nil // STUB
}

// Summary accumulates what the exit summary reports for one connection:
// events per kind and ping round trips. The zero value is ready to use.
type Summary struct {
	mu     sync.Mutex
	counts map[sshtap.Kind]int
}

// Add counts ev (a PingEvent also adds its RTT).
func (s *Summary) Add(ev sshtap.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[sshtap.Kind]int{}
	}
	s.counts[ev.Kind()]++
}

// WriteSummary renders the exit summary of one connection: counts per kind,
// bytes each way and rekeys from st, RTT min/avg/max, and how long the
// connection lasted. In JSON it is one object of kind "summary".
func (w *Writer) WriteSummary(conn string, s *Summary, st sshtap.Stats, elapsed time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := fmt.Fprintf(w.w, "%s summary %v %+v %v\n", conn, s.counts, st, elapsed) // STUB
	return err
}
