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
// flags (1 byte, 1 = last), body (of random length, its bytes rkBody's),
// SHA-256 of everything before it.
func rkPayload(rng *mrand.Rand, seq uint64, last bool, maxBody int) []byte {
	body := make([]byte, rng.IntN(maxBody+1))
	for i := range body {
		body[i] = rkBody(seq, i)
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

// rkBody is byte i of payload seq's body.
func rkBody(seq uint64, i int) byte { return byte(seq*131 + uint64(i)*7 + uint64(i>>8)) }

// rkCheck verifies one payload (of length bytes; an event carries its first
// MaxEventData bytes) and returns its sequence number and flag. A whole
// payload is checked by its checksum, a cut one by its body bytes.
func rkCheck(p []byte, length int) (seq uint64, last bool, err error) {
	if len(p) < 8+1+sha256.Size {
		return 0, false, fmt.Errorf("payload of %d bytes is too short", len(p))
	}
	seq = binary.BigEndian.Uint64(p)
	if length == len(p) {
		n := len(p) - sha256.Size
		if sum := sha256.Sum256(p[:n]); !bytes.Equal(sum[:], p[n:]) {
			return 0, false, fmt.Errorf("payload %d: checksum mismatch", seq)
		}
	} else {
		body := p[9:min(len(p), length-sha256.Size)]
		for i, b := range body {
			if b != rkBody(seq, i) {
				return 0, false, fmt.Errorf("payload %d: body byte %d is %#x", seq, i, b)
			}
		}
	}
	return seq, p[8] == 1, nil
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
				seq, last, err := rkCheck(ev.Data, ev.Length)
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
			tc := TransportConfig{Ciphers: []string{ciph}, MACs: []string{cipher.HMACSHA256ETM}, RekeyInterval: -1, PeerKexLimit: -1}
			p := handshakePair(t, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
			defer ck.close()
			defer sk.close()

			// The streams keep at most 1024 payloads unreceived: far fewer
			// than the receivers' subscriptions hold, so that a receiver
			// starved of CPU for a while cannot lag.
			stop := make(chan struct{})
			c2s := rkStartStream(t, ctx, "c->s", p.client, p.server, 200, 1500, 1024, stop)
			s2c := rkStartStream(t, ctx, "s->c", p.server, p.client, 200, 1500, 1024, stop)

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
	ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
	defer ck.close()
	defer sk.close()
	const rekeys = 20
	for i := range rekeys {
		c := p.client
		if i%2 == 1 {
			c = p.server
		}
		if err := c.Rekey(ctx); err != nil {
			t.Fatalf("rekey %d: %v", i, err)
		}
		// Rekey returns once the exchange is over on its caller's side;
		// the peer may still wait for the caller's NEWKEYS, and a Rekey
		// it made then would join that exchange instead of starting the
		// next one. Both sides count it before the next round.
		ck.waitFor(t, "client", i+1, 10*time.Second)
		sk.waitFor(t, "server", i+1, 10*time.Second)
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
	if c, s := p.client.Stats().Rekeys, p.server.Stats().Rekeys; c != rekeys || s != rekeys {
		t.Errorf("Stats().Rekeys: client %d, server %d; want %d", c, s, rekeys)
	}
}

// TestRekeyByBytes: a small RekeyBytes makes the data itself trigger
// rekeys, in both directions, without losing a byte, and no set of keys
// carries much more than its budget.
//
// The data flows on a channel, both ways at once. A key exchange holds
// CHANNEL_DATA and WINDOW_ADJUST back until NEWKEYS (RFC 4253 §7.1), so
// the protocol, not timing, bounds what one set of keys carries past the
// budget: the batch of packets whose sealing crossed it (at most one data
// packet and a few small ones queued with it), the key exchange messages,
// and what was written after our NEWKEYS while the peer's was still on its
// way, which the peer's held WINDOW_ADJUSTs keep within the channel window
// (itself under the budget). IGNORE, which an exchange does not hold, would
// make that overshoot depend on how long each exchange takes;
// TestRekeyManyUnderTraffic covers IGNOREs during rekeys.
func TestRekeyByBytes(t *testing.T) {
	const (
		limit  = 64 << 10
		window = 32 << 10
		maxPkt = 8 << 10
		volume = 1 << 20 // each way
		// What one set of keys may carry past limit: a data packet with
		// its framing, and a generous allowance for the control messages
		// sealed with it and the key exchange messages.
		slack = maxPkt + 16<<10
	)
	got := make(chan *Channel, 1)
	ccfg, scfg := &Config{}, &ServerConfig{}
	for _, tc := range []*TransportConfig{&ccfg.TransportConfig, &scfg.TransportConfig} {
		tc.RekeyBytes, tc.RekeyInterval = limit, -1
		tc.ChannelWindow, tc.ChannelMaxPacket = window, maxPkt
	}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"rekey": acceptInto(got)}
	p := handshakePair(t, ccfg, scfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
	defer ck.close()
	defer sk.close()
	cch, sch := openPair(t, p, got, "rekey")
	defer cch.Close()
	defer sch.Close()

	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	send := func(ch *Channel, seed uint64, out chan<- result) {
		sum, err := streamSource(ch, volume, seed)
		if err == nil {
			err = ch.CloseWrite()
		}
		out <- result{sum, volume, err}
	}
	recv := func(ch *Channel, out chan<- result) {
		sum, n, err := sinkHash(ch)
		out <- result{sum, n, err}
	}
	sentC, sentS, gotC, gotS := make(chan result, 1), make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go send(cch, 1, sentC)
	go send(sch, 2, sentS)
	go recv(cch, gotC)
	go recv(sch, gotS)
	var rs [4]result
	for i, ch := range []chan result{sentC, sentS, gotC, gotS} {
		select {
		case rs[i] = <-ch:
		case <-ctx.Done():
			t.Fatalf("streams stalled (stats client %+v, server %+v)", p.client.Stats(), p.server.Stats())
		}
		if rs[i].err != nil {
			t.Fatalf("stream %d: %v", i, rs[i].err)
		}
	}
	if rs[0].sum != rs[3].sum || rs[3].n != volume || rs[1].sum != rs[2].sum || rs[2].n != volume {
		t.Fatalf("data lost or corrupted: server received %d bytes, client %d", rs[3].n, rs[2].n)
	}

	// Everything either side queued went out before the PING or the PONG,
	// so an exchange it started is in flight now; none can start after it.
	if _, err := p.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	n := kexSettled(t, p, 20*time.Second)
	ck.waitFor(t, "client", int(n), 10*time.Second)
	sk.waitFor(t, "server", int(n), 10*time.Second)
	if c, s := ck.count(), sk.count(); c != int(n) || s != int(n) {
		t.Errorf("rekey KexEvents: client %d, server %d; Stats().Rekeys %d", c, s, n)
	}

	// Each exchange was started by a set of keys of one direction that
	// had carried limit bytes, and ended it: at most the bytes of both
	// directions over limit. Each direction's volume went through n+1
	// sets of keys carrying at most limit+slack bytes each.
	cst, sst := p.client.Stats(), p.server.Stats()
	hi := (cst.BytesRead + sst.BytesRead) / limit
	lo := uint64((volume+limit+slack-1)/(limit+slack)) - 1
	if n < lo || n > hi {
		t.Errorf("%d automatic rekeys for %d bytes each way (%d and %d on the wire) with RekeyBytes %d, want %d..%d",
			n, volume, sst.BytesRead, cst.BytesRead, limit, lo, hi)
	}
	t.Logf("%d automatic rekeys (bounds %d..%d)", n, lo, hi)
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
	tc := TransportConfig{RekeyInterval: -1, PeerKexLimit: -1}
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
