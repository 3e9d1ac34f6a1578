package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"sshtap/cipher"
)

// flipper corrupts one byte of the next Write after it is armed. The Conn's
// writer goroutine writes whole batches, so after the handshake a single
// SendIgnore arrives as one Write holding exactly that packet.
type flipper struct {
	net.Conn
	mu    sync.Mutex
	armed bool
	off   int
	mask  byte
}

func (f *flipper) arm(off int, mask byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.off, f.mask = true, off, mask
}

func (f *flipper) Write(b []byte) (int, error) {
	f.mu.Lock()
	if f.armed && f.off < len(b) {
		b = append([]byte(nil), b...)
		b[f.off] ^= f.mask
		f.armed = false
	}
	f.mu.Unlock()
	return f.Conn.Write(b)
}

var macModes = []struct {
	name, cipher, mac string
	mode              cipher.Mode
}{
	{"classic", cipher.AES128CTR, cipher.HMACSHA256, cipher.ModeClassic},
	{"etm", cipher.AES128CTR, cipher.HMACSHA256ETM, cipher.ModeETM},
	{"aead-chacha", cipher.Chacha20Poly1305, "", cipher.ModeAEAD},
	{"aead-gcm", cipher.AES128GCM, "", cipher.ModeAEAD},
}

// macPair connects a client whose inbound stream (server to client) passes
// through a flipper, with the given policy on the client.
func macPair(t *testing.T, ciph, mac string, policy func(MACMismatch) MACVerdict) (pair, *flipper) {
	t.Helper()
	a, b := net.Pipe()
	f := &flipper{Conn: b}
	cfg := &Config{NoAuth: true}
	cfg.Ciphers = []string{ciph}
	if mac != "" {
		cfg.MACs = []string{mac}
	}
	cfg.MACPolicy = policy
	return handshakeOver(t, a, f, cfg, nil), f
}

// A byte flip in a packet body, in each mode, fires MACMismatchEvent and the
// verdict does what it says: Disconnect ends the conn with *MACError and
// sends DISCONNECT MAC_ERROR; Discard drops the packet and the next one
// arrives; Accept delivers the corrupted packet.
func TestMACPolicyVerdicts(t *testing.T) {
	for _, m := range macModes {
		for _, verdict := range []MACVerdict{MACDisconnect, MACDiscard, MACAccept} {
			t.Run(m.name+"/"+verdict.String(), func(t *testing.T) {
				var calls []MACMismatch
				var mu sync.Mutex
				policy := func(mm MACMismatch) MACVerdict {
					mu.Lock()
					defer mu.Unlock()
					calls = append(calls, mm)
					return verdict
				}
				p, f := macPair(t, m.cipher, m.mac, policy)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				sub := p.client.Subscribe(ctx, KindMACMismatch|KindIgnore)
				srvSub := p.server.Subscribe(ctx, KindDisconnect)
				sent := bytes.Repeat([]byte("A"), 64)
				// Offset 20: past the 4-byte length, padding length, type
				// and the data's length prefix: byte 10 of the data, in
				// every mode.
				f.arm(20, 0x01)
				if err := p.server.SendIgnore(ctx, sent); err != nil {
					t.Fatal(err)
				}
				next := []byte("after the corrupted packet")
				if err := p.server.SendIgnore(ctx, next); err != nil && verdict != MACDisconnect {
					t.Fatal(err)
				}
				evs := collect(t, sub, 5*time.Second, func(e Event) bool {
					ig, ok := e.(*IgnoreEvent)
					return ok && bytes.Equal(ig.Data, next) || e.Kind() == KindClosed
				})
				mme, ok := evs[0].(*MACMismatchEvent)
				if !ok {
					t.Fatalf("first event %#v, want MACMismatchEvent", evs[0])
				}
				if mme.Verdict != verdict || mme.Mode != m.mode || mme.Cipher != m.cipher || mme.MAC != m.mac || !mme.LengthAuthenticated {
					t.Fatalf("event %+v", mme)
				}
				mu.Lock()
				if len(calls) != 1 || calls[0] != mme.MACMismatch {
					t.Fatalf("policy calls %+v, event %+v", calls, mme.MACMismatch)
				}
				mu.Unlock()
				var wantFailures [3]uint64
				wantFailures[verdict] = 1
				if got := p.client.Stats().MACFailures; got != wantFailures {
					t.Errorf("Stats().MACFailures = %v, want %v", got, wantFailures)
				}
				switch verdict {
				case MACDisconnect:
					var me *MACError
					if err := p.client.Wait(); !errors.As(err, &me) || me.Seq != mme.Seq {
						t.Fatalf("client error %v, want *MACError", err)
					}
					if last := evs[len(evs)-1]; last.Kind() != KindClosed {
						t.Fatalf("events %v", evs)
					}
					d := collect(t, srvSub, 5*time.Second, func(e Event) bool { return e.Kind() == KindDisconnect })
					if de := d[0].(*DisconnectEvent); de.Reason != DisconnectMACError || !de.Remote {
						t.Fatalf("server got %+v, want remote MAC_ERROR", de)
					}
				case MACDiscard:
					if len(evs) != 2 || !bytes.Equal(evs[1].(*IgnoreEvent).Data, next) {
						t.Fatalf("events %v: want the mismatch, then only the next packet", evs)
					}
					if err := p.client.Err(); err != nil {
						t.Fatal(err)
					}
				case MACAccept:
					if len(evs) != 3 {
						t.Fatalf("events %v: want mismatch, corrupted packet, next packet", evs)
					}
					want := bytes.Clone(sent)
					want[10] ^= 0x01
					if got := evs[1].(*IgnoreEvent).Data; !bytes.Equal(got, want) {
						t.Fatalf("accepted data %q, want %q (one flipped bit)", got, want)
					}
				}
				if verdict != MACDisconnect {
					// The stream stays in step: a ping round trip works.
					if _, err := p.client.Ping(ctx); err != nil {
						t.Fatalf("after %v: %v", verdict, err)
					}
				}
			})
		}
	}
}

// A corrupted length field cannot be rescued: the policy is not consulted,
// the event says LengthAuthenticated=false with verdict Disconnect, and the
// connection ends with *MACError.
func TestMACPolicyCorruptedLength(t *testing.T) {
	for _, m := range macModes {
		t.Run(m.name, func(t *testing.T) {
			consulted := false
			p, f := macPair(t, m.cipher, m.mac, func(MACMismatch) MACVerdict { consulted = true; return MACAccept })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sub := p.client.Subscribe(ctx, KindMACMismatch)
			f.arm(0, 0x80) // top bit of packet_length (encrypted or not)
			p.server.SendIgnore(ctx, []byte("x"))
			evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindClosed })
			mme, ok := evs[0].(*MACMismatchEvent)
			if !ok || mme.LengthAuthenticated || mme.Verdict != MACDisconnect || mme.Mode != m.mode {
				t.Fatalf("events %v (%+v)", evs, evs[0])
			}
			var me *MACError
			if err := p.client.Wait(); !errors.As(err, &me) || me.LengthAuthenticated {
				t.Fatalf("error %v", err)
			}
			if consulted {
				t.Fatal("policy consulted for an invalid length")
			}
			t.Log(p.client.Err())
		})
	}
}

// Without a policy the default is Disconnect.
func TestMACPolicyDefaultIsDisconnect(t *testing.T) {
	p, f := macPair(t, cipher.AES128GCM, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.arm(30, 0x10)
	p.server.SendIgnore(ctx, bytes.Repeat([]byte{1}, 100))
	var me *MACError
	if err := p.client.Wait(); !errors.As(err, &me) {
		t.Fatalf("error %v, want *MACError", err)
	}
	if s := me.Error(); s == "" || !bytes.Contains([]byte(s), []byte("aes128-gcm@openssh.com")) {
		t.Fatalf("message %q does not name the cipher", s)
	}
}

func TestMACVerdictString(t *testing.T) {
	for v, want := range map[MACVerdict]string{MACDisconnect: "disconnect", MACDiscard: "discard", MACAccept: "accept", 9: "MACVerdict(9)"} {
		if got := fmt.Sprint(v); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}

// With CBC in classic mode the policy's Discard is not followed: a bad MAC
// ends the connection like a bad length, only once the largest packet's
// worth of bytes has arrived, with the same DISCONNECT (CVE-2008-5161;
// cipher.LengthOracle).
func TestMACPolicyCBCClassicDisconnects(t *testing.T) {
	var sent []string // the DISCONNECT message the client sent, per case
	for _, tc := range []struct {
		name string
		off  int
	}{
		{"bad MAC", 40},   // inside the body of the next packet
		{"bad length", 2}, // its first block, packet_length included
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			f := &flipper{Conn: b}
			ccfg := &Config{NoAuth: true}
			ccfg.Ciphers, ccfg.MACs = []string{cipher.AES128CBC}, []string{cipher.HMACSHA256}
			ccfg.MACPolicy = func(MACMismatch) MACVerdict { return MACDiscard }
			scfg := &ServerConfig{}
			scfg.Ciphers, scfg.MACs = []string{cipher.AES128CBC}, []string{cipher.HMACSHA256}
			p := handshakeOver(t, a, f, ccfg, scfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub := p.client.Subscribe(ctx, KindMACMismatch)
			ssub := p.server.Subscribe(ctx, KindDisconnect)
			f.arm(tc.off, 0x10)
			if err := p.server.SendIgnore(ctx, bytes.Repeat([]byte{1}, 100)); err != nil {
				t.Fatal(err)
			}
			// The client waits for the largest packet's worth of bytes
			// before it gives up; keep sending until it does.
			done := make(chan struct{})
			go func() {
				defer close(done)
				for p.server.SendIgnore(ctx, make([]byte, 16<<10)) == nil {
				}
			}()
			defer func() { <-done }()
			ended := make(chan error, 1)
			go func() { ended <- p.client.Wait() }()
			var me *MACError
			select {
			case err := <-ended:
				if !errors.As(err, &me) {
					t.Fatalf("error %v, want *MACError", err)
				}
			case <-ctx.Done():
				p.client.Close()
				<-ended
				t.Fatal("the connection went on after a bad packet with CBC in classic mode")
			}
			evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindClosed })
			mme, ok := evs[0].(*MACMismatchEvent)
			if !ok || mme.Verdict != MACDisconnect {
				t.Fatalf("events %v, want a mismatch with verdict disconnect", evs)
			}
			if wantLength := tc.off < 16; mme.LengthAuthenticated == wantLength {
				t.Fatalf("mismatch %+v: the flip did not reach the check it is for", mme.MACMismatch)
			}
			if st := p.client.Stats(); st.BytesRead < 256<<10 {
				t.Errorf("gave up after %d bytes, before the largest packet's worth", st.BytesRead)
			}
			for _, e := range collect(t, ssub, 5*time.Second, func(e Event) bool { return e.Kind() == KindClosed }) {
				if d, ok := e.(*DisconnectEvent); ok && d.Remote {
					sent = append(sent, d.Message)
				}
			}
		})
	}
	// The DISCONNECT must not tell a bad length from a bad MAC.
	if len(sent) != 2 || sent[0] != sent[1] {
		t.Errorf("DISCONNECT messages %q, want one message for both", sent)
	}
}
