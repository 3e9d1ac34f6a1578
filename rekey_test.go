package sshtap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
)

// rkPayload is one numbered IGNORE payload of a stream: seq (8 bytes),
// flags (1 byte, 1 = last), body, SHA-256 of everything before it.
func rkPayload(rng *mrand.Rand, seq uint64, last bool, maxBody int) []byte {
	body := make([]byte, rng.IntN(maxBody+1))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	b := binary.BigEndian.AppendUint64(nil, seq)
	flag := byte(0)
	if last {
		flag = 1
	}
	b = append(b, flag)
	b = append(b, body...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// rkCheck verifies one payload and returns its sequence number and flag.
func rkCheck(p []byte) (seq uint64, last bool, err error) {
	if len(p) < 8+1+sha256.Size {
		return 0, false, fmt.Errorf("payload of %d bytes is too short", len(p))
	}
	n := len(p) - sha256.Size
	if sum := sha256.Sum256(p[:n]); !bytes.Equal(sum[:], p[n:]) {
		return 0, false, fmt.Errorf("payload %d: checksum mismatch", binary.BigEndian.Uint64(p))
	}
	return binary.BigEndian.Uint64(p), p[8] == 1, nil
}

// rkStream sends numbered payloads from one Conn and checks them as
// IgnoreEvents on the other.
type rkStream struct {
	name     string
	from, to *Conn
	sub      *Subscription
	sent     atomic.Uint64
	bytes    atomic.Uint64
	sendErr  chan error
	recvErr  chan error
	received atomic.Uint64
	progress chan struct{} // cap 1: the receiver advanced
}

// rkStartStream starts a sender that sends at least min payloads and then
// goes on until stop is closed, ending with a payload flagged last, and a
// receiver that checks every payload arrives once, in order, intact. With
// window > 0 the sender keeps at most window payloads unreceived.
func rkStartStream(t *testing.T, ctx context.Context, name string, from, to *Conn, min, maxBody, window int, stop <-chan struct{}) *rkStream {
	t.Helper()
	s := &rkStream{
		name: name, from: from, to: to,
		sub:      to.SubscribeBuffer(ctx, KindIgnore, 1<<16),
		sendErr:  make(chan error, 1),
		recvErr:  make(chan error, 1),
		progress: make(chan struct{}, 1),
	}
	seed := mrand.Uint64()
	go func() {
		rng := mrand.New(mrand.NewPCG(seed, 1))
		for seq := uint64(0); ; seq++ {
			last := false
			if int(seq) >= min-1 {
				select {
				case <-stop:
					last = true
				default:
				}
			}
			for window > 0 && s.sent.Load()-s.received.Load() >= uint64(window) {
				select {
				case <-s.progress:
				case <-ctx.Done():
					s.sendErr <- fmt.Errorf("%s: waiting for the receiver: %w", name, ctx.Err())
					return
				}
			}
			p := rkPayload(rng, seq, last, maxBody)
			if err := from.SendIgnore(ctx, p); err != nil {
				s.sendErr <- fmt.Errorf("%s: SendIgnore %d: %w", name, seq, err)
				return
			}
			s.sent.Add(1)
			s.bytes.Add(uint64(len(p)))
			if last {
				s.sendErr <- nil
				return
			}
		}
	}()
	go func() {
		next := uint64(0)
		for ev := range s.sub.Events() {
			switch ev := ev.(type) {
			case *IgnoreEvent:
				seq, last, err := rkCheck(ev.Data)
				if err != nil {
					s.recvErr <- fmt.Errorf("%s: %w", name, err)
					return
				}
				if seq != next {
					s.recvErr <- fmt.Errorf("%s: got payload %d, want %d (lost, duplicated or reordered)", name, seq, next)
					return
				}
				next++
				s.received.Store(next)
				select {
				case s.progress <- struct{}{}:
				default:
				}
				if last {
					s.recvErr <- nil
					return
				}
			case *LaggedEvent:
				s.recvErr <- fmt.Errorf("%s: subscription lagged by %d events (test receiver too slow)", name, ev.Dropped)
				return
			case *ClosedEvent:
				s.recvErr <- fmt.Errorf("%s: connection ended after %d payloads: %v", name, next, ev.Err)
				return
			}
		}
	}()
	return s
}

// wait waits for both ends of the stream and checks the counts.
func (s *rkStream) wait(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, ch := range []chan error{s.sendErr, s.recvErr} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-timer.C:
			t.Fatalf("%s: timed out: sent %d, received %d", s.name, s.sent.Load(), s.received.Load())
		}
	}
	if s.sent.Load() != s.received.Load() {
		t.Fatalf("%s: sent %d payloads, received %d", s.name, s.sent.Load(), s.received.Load())
	}
	s.sub.Close()
}

// rkKexCounter counts KexEvents of one Conn in the background.
type rkKexCounter struct {
	sub             *Subscription
	mu              sync.Mutex
	initial, rekeys int
	notStrict       int
	ch              chan struct{} // cap 1: a KexEvent arrived
	done            chan struct{}
}

func rkCountKex(ctx context.Context, c *Conn) *rkKexCounter {
	k := &rkKexCounter{sub: c.SubscribeBuffer(ctx, KindKex, 4096), ch: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for ev := range k.sub.Events() {
			if ke, ok := ev.(*KexEvent); ok {
				k.mu.Lock()
				if ke.Initial {
					k.initial++
				} else {
					k.rekeys++
				}
				if !ke.Strict {
					k.notStrict++
				}
				k.mu.Unlock()
				select {
				case k.ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return k
}

func (k *rkKexCounter) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rekeys
}

// waitFor waits until at least n rekey KexEvents were counted.
func (k *rkKexCounter) waitFor(t *testing.T, name string, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for k.count() < n {
		select {
		case <-k.ch:
		case <-deadline.C:
			t.Fatalf("%s: %d rekey KexEvents after %v, want %d", name, k.count(), d, n)
		}
	}
}

func (k *rkKexCounter) close() {
	k.sub.Close()
	<-k.done
}

// TestRekeyManyUnderTraffic streams checksummed IGNOREs both ways while 50
// rekeys run, started by the client, by the server and by both at once.
func TestRekeyManyUnderTraffic(t *testing.T) {
	for _, ciph := range []string{cipher.Chacha20Poly1305, cipher.AES128GCM, cipher.AES256CTR} {
		t.Run(ciph, func(t *testing.T) {
			t.Parallel()
			tc := TransportConfig{Ciphers: []string{ciph}, MACs: []string{cipher.HMACSHA256ETM}, RekeyInterval: -1}
			p := handshakePair(t, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
			defer ck.close()
			defer sk.close()

			stop := make(chan struct{})
			c2s := rkStartStream(t, ctx, "c->s", p.client, p.server, 200, 1500, 0, stop)
			s2c := rkStartStream(t, ctx, "s->c", p.server, p.client, 200, 1500, 0, stop)

			// A simultaneous round is one exchange when the two KEXINITs
			// cross, or two when one side's whole exchange finishes before
			// the other side's Rekey call starts (legitimate under load), so
			// the expected count is tracked round by round.
			const rounds = 50
			var want uint64
			for i := range rounds {
				var callers []*Conn
				switch i % 3 {
				case 0:
					callers = []*Conn{p.client}
				case 1:
					callers = []*Conn{p.server}
				case 2: // both sides call Rekey at once: their KEXINITs usually cross
					callers = []*Conn{p.client, p.server}
				}
				errs := make(chan error, len(callers))
				for _, c := range callers {
					go func() { errs <- c.Rekey(ctx) }()
				}
				for range callers {
					if err := <-errs; err != nil {
						t.Fatalf("round %d: Rekey: %v", i, err)
					}
				}
				// Every Rekey call returned, so each exchange of this round
				// has finished on its initiator's side at least; both sides
				// must then agree on the count before the next round starts.
				target := max(p.client.Stats().Rekeys, p.server.Stats().Rekeys)
				if target <= want || target-want > uint64(len(callers)) {
					t.Fatalf("round %d: rekey count went from %d to %d with %d Rekey calls", i, want, target, len(callers))
				}
				want = target
				ck.waitFor(t, "client", int(want), 20*time.Second)
				sk.waitFor(t, "server", int(want), 20*time.Second)
			}
			close(stop)
			c2s.wait(t, 30*time.Second)
			s2c.wait(t, 30*time.Second)

			for _, side := range []struct {
				name string
				c    *Conn
				k    *rkKexCounter
			}{{"client", p.client, ck}, {"server", p.server, sk}} {
				if n := uint64(side.k.count()); n != want {
					t.Errorf("%s: %d rekey KexEvents, want %d", side.name, n, want)
				}
				if n := side.c.Stats().Rekeys; n != want {
					t.Errorf("%s: Stats().Rekeys = %d, want %d", side.name, n, want)
				}
				side.k.mu.Lock()
				if side.k.notStrict != 0 {
					t.Errorf("%s: %d KexEvents without strict kex", side.name, side.k.notStrict)
				}
				side.k.mu.Unlock()
				if !side.c.Strict() {
					t.Errorf("%s: Strict() false after rekeys", side.name)
				}
				if err := side.c.Err(); err != nil {
					t.Errorf("%s: connection failed: %v", side.name, err)
				}
			}
			if c2s.sent.Load() < 200 || s2c.sent.Load() < 200 {
				t.Errorf("streams too short: %d and %d payloads", c2s.sent.Load(), s2c.sent.Load())
			}
		})
	}
}

// TestRekeyStrictSurvivesRekeys: strict kex resets the sequence numbers at
// every NEWKEYS; chacha20-poly1305 uses the sequence number as its nonce,
// so a connection that still works after 20 rekeys proves both sides reset
// in step every time.
func TestRekeyStrictSurvivesRekeys(t *testing.T) {
	tc := TransportConfig{Ciphers: []string{cipher.Chacha20Poly1305}, RekeyInterval: -1}
	p := handshakePair(t, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
	if !p.client.Strict() || !p.server.Strict() {
		t.Fatalf("strict kex not negotiated between sshtap peers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	csub := p.client.Subscribe(ctx, KindIgnore)
	ssub := p.server.Subscribe(ctx, KindIgnore)
	const rekeys = 20
	for i := range rekeys {
		c := p.client
		if i%2 == 1 {
			c = p.server
		}
		if err := c.Rekey(ctx); err != nil {
			t.Fatalf("rekey %d: %v", i, err)
		}
		// Packets between rekeys, both ways, so the sequence numbers are
		// not all zero when the next reset comes.
		for _, from := range []*Conn{p.client, p.server} {
			if err := from.SendIgnore(ctx, []byte{byte(i)}); err != nil {
				t.Fatalf("SendIgnore after rekey %d: %v", i, err)
			}
		}
	}
	for _, s := range []struct {
		name string
		sub  *Subscription
	}{{"client", csub}, {"server", ssub}} {
		var got []byte
		collect(t, s.sub, 10*time.Second, func(e Event) bool {
			if ie, ok := e.(*IgnoreEvent); ok && len(ie.Data) == 1 {
				got = append(got, ie.Data[0])
			}
			return len(got) == rekeys
		})
		for i := range rekeys {
			if i >= len(got) || got[i] != byte(i) {
				t.Fatalf("%s received IGNOREs %v, want 0..%d in order", s.name, got, rekeys-1)
			}
		}
		s.sub.Close()
	}
	mxTraffic(t, p, "after 20 strict rekeys", 5)
	if _, err := p.client.Ping(ctx); err != nil {
		t.Fatalf("Ping after 20 rekeys: %v", err)
	}
	if !p.client.Strict() || !p.server.Strict() {
		t.Errorf("strict kex no longer reported after rekeys")
	}
}

// TestRekeyByBytes: a small RekeyBytes makes the data itself trigger
// rekeys, in both directions, without losing a payload.
//
// IGNORE may be sent during a key exchange (RFC 4253 §7.1), still under the
// old keys, so an unthrottled IGNORE stream overshoots the budget while the
// exchange is in flight; the streams here keep at most window payloads
// unreceived so that each rekey completes promptly.
func TestRekeyByBytes(t *testing.T) {
	const limit = 64 << 10
	tc := TransportConfig{RekeyBytes: limit, RekeyInterval: -1}
	p := handshakePair(t, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
	defer ck.close()
	defer sk.close()

	stop := make(chan struct{})
	close(stop) // just send min payloads
	const n, maxBody, window = 400, 4096, 4
	c2s := rkStartStream(t, ctx, "c->s", p.client, p.server, n, maxBody, window, stop)
	s2c := rkStartStream(t, ctx, "s->c", p.server, p.client, n, maxBody, window, stop)
	c2s.wait(t, 40*time.Second)
	s2c.wait(t, 40*time.Second)

	// Each direction carries about n*maxBody/2 = 800 KiB. Every exchange
	// renews the keys of both directions, so there are at least
	// max(c2s, s2c)/(limit+overshoot) rekeys, the overshoot (what is sent
	// while an exchange is in flight) being well under another limit, and
	// at most (c2s+s2c)/limit (plus one in flight at the end): not a rekey
	// storm.
	most := max(c2s.bytes.Load(), s2c.bytes.Load())
	total := c2s.bytes.Load() + s2c.bytes.Load()
	lo := int(most / (2 * limit))
	hi := int(total/limit) + 2
	if lo < 3 {
		t.Fatalf("test sent too little data: %d bytes", total)
	}
	got := ck.count()
	if got < lo || got > hi {
		t.Errorf("client: %d automatic rekeys for %d+%d bytes with RekeyBytes %d, want %d..%d", got, c2s.bytes.Load(), s2c.bytes.Load(), limit, lo, hi)
	}
	sk.waitFor(t, "server", got, 10*time.Second)
	if cs, ss := p.client.Stats().Rekeys, p.server.Stats().Rekeys; int(cs) != got || cs != ss {
		t.Errorf("Stats().Rekeys: client %d, server %d; client KexEvents %d", cs, ss, got)
	}
	t.Logf("%d automatic rekeys for %d+%d bytes (bounds %d..%d)", got, c2s.bytes.Load(), s2c.bytes.Load(), lo, hi)
}

// TestRekeyByInterval: a small RekeyInterval makes the connection rekey by
// itself while idle.
func TestRekeyByInterval(t *testing.T) {
	for _, side := range []string{"client", "server", "both"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			var ccfg Config
			var scfg ServerConfig
			ccfg.RekeyInterval, scfg.RekeyInterval = -1, -1
			if side != "server" {
				ccfg.RekeyInterval = 50 * time.Millisecond
			}
			if side != "client" {
				scfg.RekeyInterval = 50 * time.Millisecond
			}
			p := handshakePair(t, &ccfg, &scfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
			defer ck.close()
			defer sk.close()
			ck.waitFor(t, "client", 3, 15*time.Second)
			sk.waitFor(t, "server", 3, 15*time.Second)
			mxTraffic(t, p, "timed rekeys", 2)
		})
	}
}

// TestRekeyNoIntervalNoRekey: with RekeyInterval negative and the default
// byte budget, nothing rekeys by itself.
func TestRekeyNoAutomaticRekey(t *testing.T) {
	tc := TransportConfig{RekeyInterval: -1}
	p := handshakePair(t, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
	mxTraffic(t, p, "idle", 20)
	// A Ping round trip after the traffic flushes anything in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := p.client.Stats().Rekeys + p.server.Stats().Rekeys; n != 0 {
		t.Errorf("%d rekeys without a reason", n)
	}
}

// rkSwitchSigner is an ed25519 host key that becomes another key once
// switched: a server whose host key changes between key exchanges.
type rkSwitchSigner struct {
	keys     [2]ssh.Signer
	switched atomic.Bool
}

func (s *rkSwitchSigner) cur() ssh.Signer {
	if s.switched.Load() {
		return s.keys[1]
	}
	return s.keys[0]
}
func (s *rkSwitchSigner) PublicKey() ssh.PublicKey { return s.cur().PublicKey() }
func (s *rkSwitchSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return s.cur().Sign(r, data)
}

// TestRekeyHostKeyChange: a rekey must present the host key of the first
// key exchange (RFC 4253 §9 keeps the session bound to it); the client
// refuses a different one and says so.
func TestRekeyHostKeyChange(t *testing.T) {
	var sw rkSwitchSigner
	for i := range sw.keys {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if sw.keys[i], err = ssh.NewSignerFromKey(k); err != nil {
			t.Fatal(err)
		}
	}
	var callbacks atomic.Int32
	ccfg := &Config{NoAuth: true, HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error {
		callbacks.Add(1)
		return nil
	}}
	scfg := &ServerConfig{HostKeys: []ssh.Signer{&sw}}
	p := handshakePair(t, ccfg, scfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Same key: fine, and the callback is not asked again.
	if err := p.client.Rekey(ctx); err != nil {
		t.Fatalf("rekey with the same host key: %v", err)
	}
	if n := callbacks.Load(); n != 1 {
		t.Errorf("HostKeyCallback called %d times, want once (initial kex only)", n)
	}
	ssub := p.server.Subscribe(ctx, KindDisconnect)
	sw.switched.Store(true)
	err := p.client.Rekey(ctx)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("rekey with a changed host key: %v, want a *HostKeyError", err)
	}
	if !errors.As(p.client.Err(), &hke) {
		t.Errorf("client Err() = %v, want the *HostKeyError", p.client.Err())
	}
	if !bytes.Equal(p.client.HostKey(), sw.keys[0].PublicKey().Marshal()) {
		t.Errorf("client HostKey() changed")
	}
	// The server hears HOST_KEY_NOT_VERIFIABLE (or at least the end).
	evs := collect(t, ssub, 10*time.Second, func(e Event) bool { _, ok := e.(*ClosedEvent); return ok })
	for _, e := range evs {
		if d, ok := e.(*DisconnectEvent); ok && (!d.Remote || d.Reason != DisconnectHostKeyNotVerifiable) {
			t.Errorf("server DisconnectEvent %+v, want a remote HOST_KEY_NOT_VERIFIABLE", d)
		}
	}
	if p.server.Wait() == nil {
		t.Errorf("server still alive after the client refused its host key")
	}
}
