package sshtap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"sshtap/cipher"
)

// One sample of every kind, and a field of each that its JSON log shows.
func slogSamples() map[Kind]struct {
	ev    Event
	field string
	want  any
} {
	h := Header{Time: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	type s = struct {
		ev    Event
		field string
		want  any
	}
	return map[Kind]s{
		KindIgnore:        {&IgnoreEvent{Header: h, Data: bytes.Repeat([]byte{0xab}, 40), Length: 1000}, "data_hex", strings.Repeat("ab", 32)},
		KindDebug:         {&DebugEvent{Header: h, AlwaysDisplay: true, Message: "hi \"there\"", Length: 10}, "message", "hi \"there\""},
		KindDisconnect:    {&DisconnectEvent{Header: h, Reason: DisconnectByApplication, Message: "bye", Remote: true}, "reason_name", DisconnectByApplication.String()},
		KindMACMismatch:   {&MACMismatchEvent{Header: h, MACMismatch: MACMismatch{Seq: 7, Length: 32, Cipher: "aes128-gcm@openssh.com", Mode: cipher.ModeAEAD}, Verdict: MACDiscard}, "verdict", "discard"},
		KindKexStart:      {&KexStartEvent{Header: h, Initial: true}, "initial", true},
		KindKex:           {&KexEvent{Header: h, Algorithms: Algorithms{Kex: "diffie-hellman-group1-sha1"}, HostKey: []byte("blob"), Duration: time.Millisecond, Legacy: []string{"diffie-hellman-group1-sha1"}}, "legacy", []any{"diffie-hellman-group1-sha1"}},
		KindBannerLine:    {&BannerLineEvent{Header: h, Line: "hello"}, "line", "hello"},
		KindUnimplemented: {&UnimplementedEvent{Header: h, Seq: 3, Type: 200}, "type", 200.0},
		KindExtInfo:       {&ExtInfoEvent{Header: h, Extensions: []Extension{{Name: "server-sig-algs", Value: []byte("ssh-ed25519")}}}, "extensions", map[string]any{"server-sig-algs": "ssh-ed25519"}},
		KindPing:          {&PingEvent{Header: h, RTT: 2 * time.Millisecond}, "rtt", 2e6},
		KindX11Open:       {&X11OpenEvent{Header: h, OriginAddr: "127.0.0.1", OriginPort: 6010}, "origin_port", 6010.0},
		KindLagged:        {&LaggedEvent{Header: h, Dropped: 5}, "dropped", 5.0},
		KindClosed:        {&ClosedEvent{Header: h, Err: errors.New("gone")}, "err", "gone"},
		KindAuthBanner:    {&AuthBannerEvent{Header: h, Message: "welcome\n"}, "message", "welcome\n"},
		KindUserAuth:      {&UserAuthEvent{Header: h, User: "u", Method: "password", Result: AuthFailure, Remaining: []string{"publickey"}}, "result", "failure"},
		KindHostKeys:      {&HostKeysEvent{Header: h, Keys: [][]byte{[]byte("blob")}}, "keys", []any{fingerprint([]byte("blob"))}},
		KindHostKeyProof:  {&HostKeyProofEvent{Header: h, Keys: [][]byte{[]byte("blob")}, Proven: true}, "proven", true},
		KindGlobalRequest: {&GlobalRequestEvent{Header: h, Name: "keepalive@openssh.com", WantReply: true}, "name", "keepalive@openssh.com"},
		KindAgentRequest:  {&AgentRequestEvent{Header: h, Request: "sign", Allowed: true}, "request", "sign"},
	}
}

// Every kind logs through slog.NewJSONHandler as its kind and fields.
func TestEventsLogValue(t *testing.T) {
	samples := slogSamples()
	for i := range kindNames {
		k := Kind(1) << i
		smp, ok := samples[k]
		if !ok {
			t.Errorf("no sample for kind %v", k)
			continue
		}
		var b bytes.Buffer
		slog.New(slog.NewJSONHandler(&b, nil)).Info("ev", "event", smp.ev)
		var rec map[string]any
		if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
			t.Fatalf("%v: %v: %s", k, err, b.String())
		}
		ev, _ := rec["event"].(map[string]any)
		if ev["kind"] != k.String() {
			t.Errorf("%v: logged as %s", k, b.String())
			continue
		}
		if got, _ := json.Marshal(ev[smp.field]); string(got) != mustJSON(smp.want) {
			t.Errorf("%v: %s = %s, want %s (%s)", k, smp.field, got, mustJSON(smp.want), b.String())
		}
	}
	// Binary data: a prefix and the whole length.
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("ev", "event", samples[KindIgnore].ev)
	if !strings.Contains(b.String(), `"data_len":1000`) {
		t.Errorf("ignore: %s", b.String())
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Subscription.Log logs a Conn's events until it closes and returns why.
func TestSubscriptionLog(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx := context.Background()
	var b syncBuf
	l := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sub := p.client.Subscribe(ctx, KindIgnore|KindDebug|KindDisconnect)
	done := make(chan error, 1)
	go func() { done <- sub.Log(l) }()
	p.server.SendIgnore(ctx, []byte("pad"))
	p.server.SendDebug(ctx, false, "note")
	p.server.Disconnect(DisconnectByApplication, "done here")
	err := <-done
	var de *DisconnectError
	if !errors.As(err, &de) || !de.Remote {
		t.Fatalf("Log returned %v", err)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var rec struct {
			Msg, Level string
			Event      map[string]any
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, rec.Msg+"/"+rec.Level)
	}
	if got := strings.Join(kinds, " "); got != "ignore/DEBUG debug/INFO disconnect/INFO closed/INFO" {
		t.Errorf("logged %s", got)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
