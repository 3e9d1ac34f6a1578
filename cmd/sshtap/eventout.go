package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"sshtap"
	"sshtap/internal/eventfmt"
)

// eventFlags are the options every subcommand shares for the event stream.
type eventFlags struct {
	json      bool
	file      string
	only      string
	except    string
	color     string // auto (default), always, never
	noSummary bool
}

func (f *eventFlags) opts() []opt {
	return []opt{
		flagOpt(0, "json", &f.json),
		stringOpt(0, "events", &f.file),
		stringOpt(0, "only", &f.only),
		stringOpt(0, "except", &f.except),
		stringOpt(0, "color", &f.color),
		flagOpt(0, "no-summary", &f.noSummary),
	}
}

// eventOutput is where events and the exit summary go: stderr, or the
// --events file or fifo.
type eventOutput struct {
	w       *eventfmt.Writer
	tty     *rawAwareWriter // set when the events go to a terminal
	file    *os.File        // the --events file, closed by close
	start   time.Time
	summary bool
}

// openEvents sets up the event output from the flags. Colour is used only
// when the output is a terminal, --color is not never and NO_COLOR is unset
// or empty (https://no-color.org), or when --color always.
func (a *app) openEvents(f *eventFlags, usage string) (*eventOutput, error) {
	show := sshtap.KindAll
	if f.only != "" {
		k, err := eventfmt.ParseKinds(f.only)
		if err != nil {
			return nil, &usageError{msg: "--only: " + err.Error(), usage: usage}
		}
		show = k
	}
	if f.except != "" {
		k, err := eventfmt.ParseKinds(f.except)
		if err != nil {
			return nil, &usageError{msg: "--except: " + err.Error(), usage: usage}
		}
		show &^= k
	}
	out := &eventOutput{start: time.Now(), summary: !f.noSummary}
	var w io.Writer = a.stderr
	if f.file != "" {
		// O_TRUNC is ignored for a fifo; opening one blocks until a reader
		// opens it, which is what a user watching it expects. A new file
		// is private (0600): events name hosts, users and keys.
		file, err := os.OpenFile(f.file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		out.file, w = file, file
	}
	if isTerminal(w) {
		out.tty = &rawAwareWriter{w: w}
		w = out.tty
	}
	color := false
	switch f.color {
	case "", "auto":
		color = isTerminal(w) && a.getenv("NO_COLOR") == ""
	case "always":
		color = true
	case "never":
	default:
		return nil, &usageError{msg: fmt.Sprintf("--color: %q is not auto, always or never", f.color), usage: usage}
	}
	out.w = eventfmt.New(w, eventfmt.Options{JSON: f.json, Color: color && !f.json, Start: out.start, Show: show})
	return out, nil
}

func isTerminal(w io.Writer) bool {
	if r, ok := w.(*rawAwareWriter); ok {
		w = r.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(fdOf(f))
}

// setRaw tells the event output that the terminal it writes to is in raw
// mode (an interactive session), so lines end in CRLF.
func (out *eventOutput) setRaw(raw bool) {
	if out.tty != nil {
		out.tty.raw.Store(raw)
	}
}

// rawAwareWriter writes events to a terminal that an interactive session
// may have put in raw mode, where a bare LF would not return the cursor:
// then every LF is written as CRLF. Each Write is one event line. While a
// question is asked on the terminal (hold), lines wait, so that they do not
// land in the middle of a password prompt.
type rawAwareWriter struct {
	w   io.Writer
	raw atomic.Bool

	mu      sync.Mutex
	held    bool
	pending bytes.Buffer
}

// maxHeld bounds what waits behind a question; beyond it lines are written
// anyway.
const maxHeld = 1 << 20

func (r *rawAwareWriter) Write(p []byte) (int, error) {
	if r.raw.Load() && bytes.Contains(p, []byte{'\n'}) {
		p = bytes.ReplaceAll(p, []byte{'\n'}, []byte{'\r', '\n'})
	}
	n := len(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held && r.pending.Len()+len(p) <= maxHeld {
		r.pending.Write(p)
		return n, nil
	}
	if _, err := r.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// hold makes lines wait until release.
func (r *rawAwareWriter) hold() {
	r.mu.Lock()
	r.held = true
	r.mu.Unlock()
}

// release writes the lines that waited and lets the next ones through.
func (r *rawAwareWriter) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = false
	if r.pending.Len() > 0 {
		r.w.Write(r.pending.Bytes())
		r.pending.Reset()
	}
}

// holdForPrompt is the prompter's hook: while a question is asked on the
// terminal, events written to that terminal wait.
func (out *eventOutput) holdForPrompt(asking bool) {
	if out.tty == nil {
		return
	}
	if asking {
		out.tty.hold()
	} else {
		out.tty.release()
	}
}

// watch subscribes to every kind of c's events and renders them until c's
// ClosedEvent, counting each in sum. Call it before c's handshake so nothing
// is missed. The returned channel is closed after the last event was
// rendered. The subscription ends with c, not with a context: the last
// events of a cancelled run (the disconnect, closed) are still shown. A
// labelled connection (conn != "", as in serve) is timed from now; finish
// forgets it.
func (out *eventOutput) watch(c *sshtap.Conn, conn string, sum *eventfmt.Summary) <-chan struct{} {
	return out.watchFrom(c, eventfmt.Source{Conn: conn}, sum)
}

// watchFrom is watch for the connection src names (a jump host's, say).
func (out *eventOutput) watchFrom(c *sshtap.Conn, src eventfmt.Source, sum *eventfmt.Summary) <-chan struct{} {
	if conn := src.Conn; conn != "" && !out.w.HasConnStart(conn) {
		out.w.SetConnStart(conn, time.Now())
	}
	sub := c.SubscribeBuffer(context.Background(), sshtap.KindAll, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range sub.Events() {
			sum.Add(ev)
			out.w.EventFrom(src, ev)
		}
	}()
	return done
}

// finish writes the exit summary of one connection (unless --no-summary);
// elapsed is how long the connection lasted.
func (out *eventOutput) finish(conn string, sum *eventfmt.Summary, st sshtap.Stats, elapsed time.Duration) {
	out.finishFrom(eventfmt.Source{Conn: conn}, sum, st, elapsed)
}

// finishFrom is finish for the connection src names.
func (out *eventOutput) finishFrom(src eventfmt.Source, sum *eventfmt.Summary, st sshtap.Stats, elapsed time.Duration) {
	if out.summary {
		out.w.WriteSummaryFrom(src, sum, st, elapsed)
	}
	if src.Conn != "" {
		out.w.ForgetConn(src.Conn)
	}
}

// drainTimeout is how long the end of a run waits for the event output to
// take the last events before giving up on a reader that stopped reading.
const drainTimeout = 2 * time.Second

// drain waits for a watch to render its last event. When the --events
// file or fifo does not take them within drainTimeout (a reader that
// stopped reading), its writes are cut short, so that sshtap still exits;
// the lines not taken are lost.
func (out *eventOutput) drain(watched <-chan struct{}) {
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-watched:
		return
	case <-t.C:
	}
	if out.file != nil {
		out.file.SetWriteDeadline(time.Now())
	}
	<-watched
}

// close releases held lines and closes the --events file.
func (out *eventOutput) close() {
	if out.tty != nil {
		out.tty.release()
	}
	if out.file != nil {
		out.file.Close()
	}
}
