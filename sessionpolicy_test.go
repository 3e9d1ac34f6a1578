package sshtap

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAllowSessionRequest: requests the policy refuses get CHANNEL_FAILURE
// and change nothing; the session goes on with what was granted, and the
// policy sees each request's type and detail.
func TestAllowSessionRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	policy := func(meta ConnMetadata, typ, detail string) bool {
		mu.Lock()
		seen = append(seen, typ+":"+detail)
		mu.Unlock()
		switch typ {
		case "pty-req", "subsystem":
			return false
		case "env":
			return strings.HasPrefix(detail, "LC_")
		case "exec":
			return detail != "forbidden"
		}
		return true
	}
	p := handshakePair(t, nil, &ServerConfig{SessionHandler: testSessionHandler, AllowSessionRequest: policy})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s, err := p.client.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Error("pty-req granted")
	}
	if err := s.Setenv("SECRET", "x"); err == nil {
		t.Error("env SECRET granted")
	}
	if err := s.Setenv("LC_ALL", "C"); err != nil {
		t.Errorf("env LC_ALL refused: %v", err)
	}
	if err := s.RequestSubsystem("echo"); err == nil {
		t.Error("subsystem granted")
	}
	if err := s.Start("forbidden"); err == nil {
		t.Error("exec forbidden granted")
	}
	if _, err := s.Output("forbidden"); err == nil {
		t.Error("exec forbidden granted to Output")
	}
	if _, err := s.CombinedOutput("forbidden"); err == nil {
		t.Error("exec forbidden granted to CombinedOutput")
	}
	// After refusals the session can still start, with only what was
	// granted.
	out, err := s.Output("env")
	if err != nil {
		t.Fatalf("exec env after refusals: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "LC_ALL=C" {
		t.Errorf("environment %q, want only LC_ALL=C", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"pty-req:", "env:SECRET", "env:LC_ALL", "subsystem:echo", "exec:forbidden", "exec:forbidden", "exec:forbidden", "exec:env"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("policy saw %v, want %v", seen, want)
	}
}
