package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"sshtap/cipher"
	"sshtap/internal/wire"
	"sshtap/kex"
)

// Events sent by one side arrive as typed events at the other, both ways.
func TestEventsIgnoreDebugBothWays(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx := context.Background()
	for _, dir := range []struct {
		name     string
		from, to *Conn
	}{{"server-to-client", p.server, p.client}, {"client-to-server", p.client, p.server}} {
		t.Run(dir.name, func(t *testing.T) {
			sub := dir.to.Subscribe(ctx, KindIgnore|KindDebug)
			defer sub.Close()
			if err := dir.from.SendIgnore(ctx, []byte("padding\x00bytes")); err != nil {
				t.Fatal(err)
			}
			if err := dir.from.SendDebug(ctx, true, "hello from "+dir.name); err != nil {
				t.Fatal(err)
			}
			evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindDebug })
			if len(evs) != 2 {
				t.Fatalf("got %d events, want 2: %v", len(evs), evs)
			}
			ig, ok := evs[0].(*IgnoreEvent)
			if !ok || string(ig.Data) != "padding\x00bytes" {
				t.Fatalf("first event = %#v, want IgnoreEvent with the data", evs[0])
			}
			db, ok := evs[1].(*DebugEvent)
			if !ok || !db.AlwaysDisplay || db.Message != "hello from "+dir.name || db.Language != "" {
				t.Fatalf("second event = %#v", evs[1])
			}
			if db.When().IsZero() || db.When().Before(ig.When()) {
				t.Errorf("event times out of order: %v then %v", ig.When(), db.When())
			}
		})
	}
}

// A disconnect sent by one side arrives as a remote DisconnectEvent, and the
// subscription then ends with ClosedEvent carrying a *DisconnectError.
func TestEventsDisconnect(t *testing.T) {
	for _, serverSends := range []bool{true, false} {
		t.Run(fmt.Sprintf("server-sends=%v", serverSends), func(t *testing.T) {
			p := handshakePair(t, nil, nil)
			from, to := p.client, p.server
			if serverSends {
				from, to = p.server, p.client
			}
			sub := to.Subscribe(context.Background(), KindDisconnect)
			local := from.Subscribe(context.Background(), KindDisconnect)
			if err := from.Disconnect(DisconnectTooManyConnections, "go away"); err != nil {
				t.Fatal(err)
			}
			evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindClosed })
			if len(evs) != 2 {
				t.Fatalf("got %v, want DisconnectEvent then ClosedEvent", evs)
			}
			d, ok := evs[0].(*DisconnectEvent)
			if !ok || d.Reason != DisconnectTooManyConnections || d.Message != "go away" || !d.Remote {
				t.Fatalf("got %#v", evs[0])
			}
			var de *DisconnectError
			if ce := evs[1].(*ClosedEvent); !errors.As(ce.Err, &de) || !de.Remote || de.Reason != 12 {
				t.Fatalf("ClosedEvent.Err = %v, want remote *DisconnectError reason 12", ce.Err)
			}
			if _, ok := <-sub.Events(); ok {
				t.Fatal("channel not closed after ClosedEvent")
			}
			if err := to.Wait(); !errors.As(err, &de) {
				t.Fatalf("Wait = %v", err)
			}
			// The sender sees its own disconnect as a local event, and its
			// error matches net.ErrClosed.
			evs = collect(t, local, 5*time.Second, func(e Event) bool { return e.Kind() == KindClosed })
			if d, ok := evs[0].(*DisconnectEvent); !ok || d.Remote || d.Reason != DisconnectTooManyConnections {
				t.Fatalf("local events = %v", evs)
			}
			if err := from.Err(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("sender Err = %v, want net.ErrClosed match", err)
			}
			if d.Reason.String() != "TOO_MANY_CONNECTIONS" {
				t.Errorf("reason name %q", d.Reason.String())
			}
		})
	}
}

// Rule 2 of the package doc: a full subscription drops the newest events,
// counts them, and yields one LaggedEvent before the next delivered event;
// at the end it yields LaggedEvent then ClosedEvent.
func TestEventsLaggedThenClosed(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx := context.Background()
	sub := p.client.SubscribeBuffer(ctx, KindIgnore, 4)
	probe := p.client.Subscribe(ctx, KindIgnore) // tells us when all 10 arrived
	for i := range 10 {
		if err := p.server.SendIgnore(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	collect(t, probe, 5*time.Second, func(e Event) bool { return e.(*IgnoreEvent).Data[0] == 9 })
	if got := sub.Dropped(); got != 6 {
		t.Fatalf("Dropped = %d, want 6", got)
	}
	// Drain: the four oldest events, in order.
	for i := range 4 {
		ev := <-sub.Events()
		if ig, ok := ev.(*IgnoreEvent); !ok || ig.Data[0] != byte(i) {
			t.Fatalf("event %d = %#v", i, ev)
		}
	}
	// The next event is preceded by LaggedEvent{6}.
	if err := p.server.SendIgnore(ctx, []byte{42}); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindIgnore })
	if len(evs) != 2 || evs[0].(*LaggedEvent).Dropped != 6 || evs[1].(*IgnoreEvent).Data[0] != 42 {
		t.Fatalf("got %v, want LaggedEvent{6} then the ignore", evs)
	}
	// Overfill again, then close the conn: LaggedEvent, then ClosedEvent.
	for i := range 8 {
		p.server.SendIgnore(ctx, []byte{byte(100 + i)})
	}
	collect(t, probe, 5*time.Second, func(e Event) bool { ig, ok := e.(*IgnoreEvent); return ok && ig.Data[0] == 107 })
	p.client.Close()
	var tail []Event
	for ev := range sub.Events() {
		tail = append(tail, ev)
	}
	n := len(tail)
	if n < 2 {
		t.Fatalf("tail = %v", tail)
	}
	lag, ok1 := tail[n-2].(*LaggedEvent)
	closed, ok2 := tail[n-1].(*ClosedEvent)
	if !ok1 || !ok2 || lag.Dropped != 4 {
		t.Fatalf("tail = %v, want ..., LaggedEvent{4}, ClosedEvent", tail)
	}
	if !errors.Is(closed.Err, net.ErrClosed) {
		t.Fatalf("ClosedEvent.Err = %v, want net.ErrClosed", closed.Err)
	}
	if got := sub.Dropped(); got != 10 {
		t.Fatalf("cumulative Dropped = %d, want 10", got)
	}
}

// Rule 3: every ending is exactly one ClosedEvent, last: for a subscription
// closed locally, for a cancelled context, for Conn.Close.
func TestEventsEveryEndingLooksTheSame(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	byCtx := p.client.Subscribe(ctx, KindAll)
	byClose := p.client.Subscribe(context.Background(), KindAll)
	byConn := p.client.Subscribe(context.Background(), KindAll)
	cancel()
	// The context's end is delivered asynchronously (context.AfterFunc):
	// drain that subscription before closing the Conn.
	var ctxEvents []Event
	for ev := range byCtx.Events() {
		ctxEvents = append(ctxEvents, ev)
	}
	byClose.Close()
	byClose.Close() // idempotent
	p.client.Close()
	for _, c := range []struct {
		name string
		sub  *Subscription
		want error
	}{{"ctx", byCtx, context.Canceled}, {"close", byClose, net.ErrClosed}, {"conn", byConn, net.ErrClosed}} {
		var evs []Event
		for ev := range c.sub.Events() {
			evs = append(evs, ev)
		}
		if c.sub == byCtx {
			evs = ctxEvents
		}
		closed := 0
		for _, ev := range evs {
			if ev.Kind() == KindClosed {
				closed++
			}
		}
		last, ok := evs[len(evs)-1].(*ClosedEvent)
		if closed != 1 || !ok || !errors.Is(last.Err, c.want) {
			t.Errorf("%s: events %v, want exactly one final ClosedEvent with %v", c.name, evs, c.want)
		}
	}
}

// Rule 4: subscriptions start no goroutines, even with cancellable contexts.
func TestEventsNoGoroutinePerSubscription(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := runtime.NumGoroutine()
	subs := make([]*Subscription, 200)
	for i := range subs {
		subs[i] = p.client.Subscribe(ctx, KindAll)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines %d -> %d after 200 subscriptions", before, after)
	}
	cancel()
	for _, s := range subs {
		for range s.Events() {
		}
	}
}

// Rule 5: a subscription made before the handshake sees its events; one on
// an ended Conn holds only the ClosedEvent.
func TestEventsSubscribeBeforeHandshakeAndAfterClose(t *testing.T) {
	testKeys(t)
	a, b := net.Pipe()
	c := ClientConn(a, &Config{})
	c.ccfg.HostKeyCallback = insecure
	s := ServerConn(b, &ServerConfig{HostKeys: allHostKeys(t)[:1], NoClientAuth: true})
	sub := c.Subscribe(context.Background(), KindKexStart|KindKex|KindExtInfo)
	ssub := s.Subscribe(context.Background(), KindKex)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Handshake(ctx) }()
	if err := c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindExtInfo })
	var start *KexStartEvent
	var kx *KexEvent
	var ext *ExtInfoEvent
	for _, ev := range evs {
		switch ev := ev.(type) {
		case *KexStartEvent:
			start = ev
		case *KexEvent:
			kx = ev
		case *ExtInfoEvent:
			ext = ev
		}
	}
	if start == nil || !start.Initial || kx == nil || !kx.Initial || !kx.Strict || ext == nil {
		t.Fatalf("events = %v", evs)
	}
	if kx.Algorithms != c.Algorithms() || kx.Algorithms.Kex == "" || kx.Duration <= 0 || !bytes.Equal(kx.HostKey, c.HostKey()) {
		t.Fatalf("KexEvent = %+v, conn algorithms %+v", kx, c.Algorithms())
	}
	names := map[string]string{}
	for _, e := range ext.Extensions {
		names[e.Name] = string(e.Value)
	}
	if names["ping@openssh.com"] != "0" || names["server-sig-algs"] == "" {
		t.Fatalf("ext-info = %v", names)
	}
	if se := collect(t, ssub, 5*time.Second, func(e Event) bool { return e.Kind() == KindKex }); se[0].(*KexEvent).Algorithms != kx.Algorithms {
		t.Fatal("server and client disagree on algorithms")
	}
	c.Close()
	s.Close()
	late := c.Subscribe(context.Background(), KindAll)
	var got []Event
	for ev := range late.Events() {
		got = append(got, ev)
	}
	if len(got) != 1 || !errors.Is(got[0].(*ClosedEvent).Err, net.ErrClosed) {
		t.Fatalf("late subscription got %v", got)
	}
}

// Rule 6: event payloads are copies: later packets do not change earlier
// events' data.
func TestEventsPayloadsAreCopies(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx := context.Background()
	sub := p.client.Subscribe(ctx, KindIgnore)
	const n = 50
	for i := range n {
		if err := p.server.SendIgnore(ctx, bytes.Repeat([]byte{byte(i)}, 300)); err != nil {
			t.Fatal(err)
		}
	}
	var evs []Event
	for len(evs) < n {
		evs = append(evs, collect(t, sub, 5*time.Second, func(Event) bool { return true })...)
	}
	for i, ev := range evs {
		if !bytes.Equal(ev.(*IgnoreEvent).Data, bytes.Repeat([]byte{byte(i)}, MaxEventData)) {
			t.Fatalf("event %d data changed after later packets", i)
		}
	}
}

// A peer's IGNORE data and DEBUG message are as large as a packet allows;
// events carry their first MaxEventData bytes and the length, and a DEBUG
// message is cut at a character boundary.
func TestEventsBoundedPayloads(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx := context.Background()
	sub := p.client.Subscribe(ctx, KindIgnore|KindDebug)
	defer sub.Close()
	big := bytes.Repeat([]byte("0123456789"), 10000)
	if err := p.server.SendIgnore(ctx, big); err != nil {
		t.Fatal(err)
	}
	msg := "x" + strings.Repeat("é", 20000) // 2-byte runes from offset 1: byte 256 falls inside one
	if err := p.server.SendDebug(ctx, false, msg); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 5*time.Second, func(e Event) bool { return e.Kind() == KindDebug })
	ig := evs[0].(*IgnoreEvent)
	if ig.Length != len(big) || !bytes.Equal(ig.Data, big[:MaxEventData]) || cap(ig.Data) > 2*MaxEventData {
		t.Errorf("ignore event: length %d, %d bytes (cap %d), want %d and the first %d", ig.Length, len(ig.Data), cap(ig.Data), len(big), MaxEventData)
	}
	db := evs[len(evs)-1].(*DebugEvent)
	if db.Length != len(msg) || db.Message != msg[:MaxEventData-1] || !utf8.ValidString(db.Message) {
		t.Errorf("debug event: length %d, message of %d bytes, want %d and the first %d", db.Length, len(db.Message), len(msg), MaxEventData-1)
	}
}

// Rule 1: the publisher never blocks on a subscriber that does not read,
// and kinds nobody asked for cost no allocation.
func TestEventsPublisherNeverBlocks(t *testing.T) {
	p := handshakePair(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stuck := p.client.SubscribeBuffer(context.Background(), KindAll, 1)
	defer stuck.Close()
	for i := range 200 {
		if err := p.server.SendIgnore(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The client's transport goroutine still answers: a ping round trip
	// works while the subscription holds one event.
	if _, err := p.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if stuck.Dropped() < 199 {
		t.Fatalf("Dropped = %d, want >= 199", stuck.Dropped())
	}
}

func TestEventsUnwantedKindsCostNothing(t *testing.T) {
	p := handshakePair(t, nil, nil)
	sub := p.client.Subscribe(context.Background(), KindKex) // not ignore, not debug
	defer sub.Close()
	ignore := (&wire.Ignore{Data: []byte("abc")}).Marshal(nil)
	debug := (&wire.Debug{Message: "x", Language: "en"}).Marshal(nil)
	for _, payload := range [][]byte{ignore, debug} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := p.client.handleGeneric(payload); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s with no subscriber: %v allocs, want 0", wire.MsgName(payload[0]), allocs)
		}
	}
	if p.client.hub.wants(KindIgnore | KindDebug) {
		t.Fatal("hub wants kinds nobody subscribed to")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindDebug:               "debug",
		KindIgnore | KindKex:    "ignore|kex",
		KindMACMismatch:         "mac-mismatch",
		KindClosed:              "closed",
		0:                       "none",
		KindX11Open | (1 << 40): "x11-open|0x10000000000",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint64(k), got, want)
		}
	}
}

// TestAlgorithmsLegacy: Legacy names exactly the legacy algorithms of a
// negotiation, in order, each once.
func TestAlgorithmsLegacy(t *testing.T) {
	a := Algorithms{Kex: kex.Curve25519SHA256, HostKey: kex.HostKeyED25519,
		ClientToServer: DirectionAlgorithms{Cipher: cipher.Chacha20Poly1305},
		ServerToClient: DirectionAlgorithms{Cipher: cipher.AES128CTR, MAC: cipher.HMACSHA1}}
	if l := a.Legacy(); l != nil {
		t.Fatalf("modern algorithms: Legacy = %v", l)
	}
	a = Algorithms{Kex: kex.DHGexSHA1, HostKey: kex.HostKeyRSA,
		ClientToServer: DirectionAlgorithms{Cipher: cipher.AES128CBC, MAC: cipher.HMACSHA196},
		ServerToClient: DirectionAlgorithms{Cipher: cipher.AES128CBC, MAC: cipher.HMACSHA256}}
	if l := a.Legacy(); !slices.Equal(l, []string{kex.DHGexSHA1, kex.HostKeyRSA, cipher.AES128CBC, cipher.HMACSHA196}) {
		t.Fatalf("Legacy = %v", l)
	}
}
