package sshtap

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestAgentChannel(t *testing.T) {
	got := make(chan []byte, 1)
	handler := func(ch *Channel) {
		defer ch.Close()
		b, _ := io.ReadAll(ch)
		got <- b
	}
	for _, tc := range []struct {
		name      string
		requested bool
		handler   func(*Channel)
		ok        bool
	}{
		{"accepted", true, handler, true},
		{"not-requested", false, handler, false},
		{"no-handler", true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := handshakePair(t, &Config{AgentHandler: tc.handler}, nil)
			if tc.requested {
				p.client.noteAgentRequested()
			}
			ch, err := p.server.OpenChannel(fwdContext(t), "auth-agent@openssh.com", nil)
			if !tc.ok {
				var oe *OpenChannelError
				if !errors.As(err, &oe) || oe.Reason != OpenProhibited {
					t.Fatalf("open: %v, want OpenProhibited", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer ch.Close()
			// An agent request: uint32 length, byte SSH_AGENTC_REQUEST_IDENTITIES (11).
			msg := []byte{0, 0, 0, 1, 11}
			if _, err := ch.Write(msg); err != nil {
				t.Fatal(err)
			}
			ch.CloseWrite()
			select {
			case b := <-got:
				if string(b) != string(msg) {
					t.Errorf("handler read %q", b)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler got nothing")
			}
		})
	}
}
