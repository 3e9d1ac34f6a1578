package eventfmt

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"sshtap"
)

// A jump host's lines carry its name and place: a "hop" and "hop_index"
// field in NDJSON, a "[hop N name]" prefix in the human format; the
// destination's lines are as they were (no hop field).
func TestHopSource(t *testing.T) {
	hop := Source{Hop: "bastion", HopIndex: 1}
	ev := &sshtap.PingEvent{Header: hdr(), RTT: 1234567}
	var b bytes.Buffer
	w := New(&b, Options{JSON: true, Start: start, Show: sshtap.KindAll})
	if err := w.EventFrom(hop, ev); err != nil {
		t.Fatal(err)
	}
	m := decode(t, b.String())
	if m["hop"] != "bastion" || m["hop_index"] != 1.0 || m["kind"] != "ping" {
		t.Errorf("hop event: %v", m)
	}
	if _, ok := m["conn"]; ok {
		t.Errorf("hop event has a conn field: %v", m)
	}
	b.Reset()
	w.NoteFrom(hop, "connected")
	if m := decode(t, b.String()); m["hop"] != "bastion" || m["hop_index"] != 1.0 || m["kind"] != "note" {
		t.Errorf("hop note: %v", m)
	}
	b.Reset()
	w.WriteSummaryFrom(hop, new(Summary), sshtap.Stats{}, 0)
	if m := decode(t, b.String()); m["hop"] != "bastion" || m["hop_index"] != 1.0 || m["kind"] != "summary" {
		t.Errorf("hop summary: %v", m)
	}
	b.Reset()
	w.Event("", ev)
	m = decode(t, b.String())
	for _, f := range []string{"hop", "hop_index", "conn"} {
		if _, ok := m[f]; ok {
			t.Errorf("the destination's event has a %s field: %v", f, m)
		}
	}

	// Human format.
	got := render(t, Options{}, "", ev)
	b.Reset()
	New(&b, Options{Start: start, Show: sshtap.KindAll}).EventFrom(hop, ev)
	if want := strings.Replace(got, " ping", " [hop 1 bastion] ping", 1); b.String() != want {
		t.Errorf("human hop line %q, want %q", b.String(), want)
	}
	b.Reset()
	New(&b, Options{Start: start, Show: sshtap.KindAll}).WriteSummaryFrom(Source{Hop: "b", HopIndex: 2}, new(Summary), sshtap.Stats{}, 0)
	if !strings.HasPrefix(b.String(), "summary [hop 2 b] after ") {
		t.Errorf("human hop summary %q", b.String())
	}
	// A hop name is the user's, but it is escaped like everything else.
	b.Reset()
	New(&b, Options{Start: start, Show: sshtap.KindAll}).EventFrom(Source{Hop: hostile, HopIndex: 3}, &sshtap.ClosedEvent{Header: hdr(), Err: errors.New("x")})
	if strings.Count(b.String(), "\n") != 1 || strings.ContainsAny(b.String(), "\x1b\r") {
		t.Errorf("a hostile hop name made %q", b.String())
	}
}
