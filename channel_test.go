package sshtap

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"sshtap/internal/wire"
)

// echoHandler accepts channels and echoes data back, stderr to stderr;
// it closes the write side on EOF and the channel when both streams ended.
func echoHandler(t testing.TB) func(*NewChannel) {
	return func(nc *NewChannel) {
		ch, err := nc.Accept()
		if err != nil {
			return
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			io.Copy(ch, ch)
		}()
		go func() {
			defer wg.Done()
			io.Copy(ch.Stderr(), ch.Stderr())
		}()
		wg.Wait()
		ch.CloseWrite()
		ch.Close()
	}
}

// chanPair returns a connected pair whose server runs handlers.
func chanPair(t testing.TB, handlers map[string]func(*NewChannel), tweak func(c *Config, s *ServerConfig)) pair {
	t.Helper()
	ccfg := &Config{}
	scfg := &ServerConfig{}
	scfg.ChannelHandlers = handlers
	if tweak != nil {
		tweak(ccfg, scfg)
	}
	return handshakePair(t, ccfg, scfg)
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestChannelEcho(t *testing.T) {
	p := chanPair(t, map[string]func(*NewChannel){"echo": echoHandler(t)}, nil)
	ch, err := p.client.OpenChannel(tctx(t), "echo", []byte("extra"))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Type() != "echo" || string(ch.ExtraData()) != "extra" {
		t.Fatalf("type %q extra %q", ch.Type(), ch.ExtraData())
	}
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	errData := make([]byte, 100<<10+3)
	rand.Read(errData)
	var got, gotErr []byte
	var rg, wg sync.WaitGroup
	rg.Add(2)
	go func() {
		defer rg.Done()
		got, _ = io.ReadAll(ch)
	}()
	go func() {
		defer rg.Done()
		gotErr, _ = io.ReadAll(ch.Stderr())
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := ch.Stderr().Write(errData); err != nil {
			t.Error(err)
		}
	}()
	if n, err := ch.Write(data); err != nil || n != len(data) {
		t.Fatalf("write: %d, %v", n, err)
	}
	wg.Wait()
	if err := ch.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rg.Wait()
	if !bytes.Equal(got, data) || !bytes.Equal(gotErr, errData) {
		t.Fatalf("echo mismatch: %d/%d data, %d/%d stderr", len(got), len(data), len(gotErr), len(errData))
	}
	if _, err := ch.Write([]byte("x")); !errors.Is(err, ErrWriteClosed) && err != io.EOF {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestChannelOpenReject(t *testing.T) {
	handlers := map[string]func(*NewChannel){
		"refuse": func(nc *NewChannel) {
			if string(nc.ExtraData()) != "why" || nc.Type() != "refuse" {
				nc.Reject(OpenProhibited, "bad extra")
				return
			}
			nc.Reject(OpenConnectFailed, "nope")
		},
		"session": acceptInto(make(chan *Channel, 8)),
	}
	p := chanPair(t, handlers, nil)
	ctx := tctx(t)
	var oe *OpenChannelError
	_, err := p.client.OpenChannel(ctx, "refuse", []byte("why"))
	if !errors.As(err, &oe) || oe.Reason != OpenConnectFailed || oe.Message != "nope" {
		t.Fatalf("refused open: %v", err)
	}
	_, err = p.client.OpenChannel(ctx, "no-such-type", nil)
	if !errors.As(err, &oe) || oe.Reason != OpenUnknownChannelType {
		t.Fatalf("unknown type: %v", err)
	}
	if oe.Reason.String() != "UNKNOWN_CHANNEL_TYPE" || OpenFailureReason(9).String() != "UNKNOWN(9)" {
		t.Fatalf("reason names: %s %s", oe.Reason, OpenFailureReason(9))
	}
	// Sessions open until the client sends no-more-sessions@openssh.com.
	ch, err := p.client.OpenChannel(ctx, "session", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.Close()
	if _, _, err := p.client.SendGlobalRequest(ctx, "no-more-sessions@openssh.com", false, nil); err != nil {
		t.Fatal(err)
	}
	_, err = p.client.OpenChannel(ctx, "session", nil)
	if !errors.As(err, &oe) || oe.Reason != OpenProhibited {
		t.Fatalf("session after no-more-sessions: %v", err)
	}
	// Refused opens free their ids at once.
	p.client.mux.mu.Lock()
	n := len(p.client.mux.chans)
	p.client.mux.mu.Unlock()
	if n > 1 {
		t.Fatalf("%d channel ids held after refusals", n)
	}
	// Accept or Reject only once.
	dec := make(chan error, 2)
	p.server.registerChannelHandler("twice", func(nc *NewChannel) {
		nc.Reject(OpenResourceShortage, "full")
		_, err := nc.Accept()
		dec <- err
		dec <- nc.Reject(OpenProhibited, "")
	})
	_, err = p.client.OpenChannel(ctx, "twice", nil)
	if !errors.As(err, &oe) || oe.Reason != OpenResourceShortage {
		t.Fatalf("twice: %v", err)
	}
	if e1, e2 := <-dec, <-dec; e1 == nil || e2 == nil {
		t.Fatalf("second decisions: %v, %v", e1, e2)
	}
}

// TestChannelBuiltinHandlers: built-in handlers (registered per Conn or per
// package) take precedence over TransportConfig.ChannelHandlers.
func TestChannelBuiltinHandlers(t *testing.T) {
	calls := make(chan string, 4)
	p := chanPair(t, map[string]func(*NewChannel){
		"x": func(nc *NewChannel) { calls <- "config"; nc.Reject(OpenProhibited, "config") },
	}, nil)
	ctx := tctx(t)
	var oe *OpenChannelError
	if _, err := p.client.OpenChannel(ctx, "x", nil); !errors.As(err, &oe) || oe.Message != "config" {
		t.Fatalf("config handler: %v", err)
	}
	p.server.registerChannelHandler("x", func(nc *NewChannel) { nc.Reject(OpenProhibited, "builtin") })
	if _, err := p.client.OpenChannel(ctx, "x", nil); !errors.As(err, &oe) || oe.Message != "builtin" {
		t.Fatalf("builtin handler: %v", err)
	}
	p.server.registerChannelHandler("x", nil)
	if _, err := p.client.OpenChannel(ctx, "x", nil); !errors.As(err, &oe) || oe.Message != "config" {
		t.Fatalf("after unregistering: %v", err)
	}
	if p.server.builtinChannelHandler("x") != nil {
		t.Fatal("builtin handler still set")
	}
}

// TestChannelEOF: RFC 4254 §5.3 EOF semantics — Read returns io.EOF after
// the buffered data once the peer sent EOF, while writing still works.
func TestChannelEOF(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, nil)
	cch, sch := openPair(t, p, got, "x")
	if _, err := sch.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := sch.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := sch.CloseWrite(); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("second CloseWrite: %v", err)
	}
	if _, err := sch.Write([]byte("x")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	if _, err := sch.Stderr().Write([]byte("x")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("stderr write after CloseWrite: %v", err)
	}
	b, err := io.ReadAll(cch)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	for range 2 {
		if n, err := cch.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("read after EOF: %d, %v", n, err)
		}
	}
	if n, err := cch.Stderr().Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("stderr read after EOF: %d, %v", n, err)
	}
	// The other direction is still open, and requests still work.
	if _, err := cch.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	cch.CloseWrite()
	b, err = io.ReadAll(sch)
	if err != nil || string(b) != "world" {
		t.Fatalf("read %q, %v", b, err)
	}
	sch.HandleRequests(func(r *Request) { r.Reply(true, nil) })
	if ok, err := cch.SendRequest(tctx(t), "after-eof", true, nil); !ok || err != nil {
		t.Fatalf("request after EOF: %v, %v", ok, err)
	}
	cch.Close()
	sch.Close()
	waitNoChannels(t, p.client)
	waitNoChannels(t, p.server)
}

// TestChannelClose: either side's Close ends the channel for both, the
// peer's reads see EOF, writes fail, and both ids are freed.
func TestChannelClose(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, nil)
	for _, clientCloses := range []bool{true, false} {
		cch, sch := openPair(t, p, got, "x")
		closer, other := cch, sch
		if !clientCloses {
			closer, other = sch, cch
		}
		// A reader blocked on the other side wakes with EOF.
		readErr := make(chan error, 1)
		go func() {
			_, err := other.Read(make([]byte, 1))
			readErr <- err
		}()
		if _, err := closer.Write([]byte("lost?")); err != nil {
			t.Fatal(err)
		}
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
		if err := closer.Close(); !errors.Is(err, ErrChannelClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := closer.Read(make([]byte, 1)); !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("read after Close: %v", err)
		}
		if _, err := closer.Write([]byte("x")); !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("write after Close: %v", err)
		}
		if _, err := closer.SendRequest(tctx(t), "x", true, nil); !errors.Is(err, ErrChannelClosed) {
			t.Fatalf("request after Close: %v", err)
		}
		<-other.closedByPeer()
		<-other.closedContext().Done()
		<-closer.closedByPeer()
		if err := <-readErr; err != nil && err != io.EOF {
			t.Fatalf("peer's blocked read: %v", err)
		}
		// Data sent before CLOSE is still readable, then EOF.
		b, err := io.ReadAll(other)
		if err != nil || (string(b) != "lost?" && string(b) != "ost?") {
			t.Fatalf("peer read %q, %v", b, err)
		}
		if _, err := other.Write([]byte("x")); err != io.EOF {
			t.Fatalf("write to a channel the peer closed: %v", err)
		}
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
		waitNoChannels(t, p.client)
		waitNoChannels(t, p.server)
	}
}

// TestChannelRequests: requests with and without replies, replies given
// out of order from other goroutines still go out in request order, held
// requests before HandleRequests, refusal by default.
func TestChannelRequests(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, nil)
	cch, sch := openPair(t, p, got, "x")
	ctx := tctx(t)

	// Sent before the server set a handler: held, then delivered in order.
	if _, err := cch.SendRequest(ctx, "early-1", false, []byte("p1")); err != nil {
		t.Fatal(err)
	}
	if _, err := cch.SendRequest(ctx, "early-2", false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 16
	reqs := make(chan *Request, n+8)
	sch.HandleRequests(func(r *Request) { reqs <- r })
	for i, want := range []string{"early-1", "early-2"} {
		r := <-reqs
		if r.Type != want || r.WantReply || (i == 0 && string(r.Payload) != "p1") {
			t.Fatalf("request %d: %+v", i, r)
		}
		if err := r.Reply(true, nil); err != nil {
			t.Fatalf("reply to a request without want_reply: %v", err)
		}
	}

	// n concurrent requests wanting replies; the server answers them in
	// reverse order, each from its own goroutine. Request "r<i>" succeeds
	// when i is even.
	type res struct {
		i   int
		ok  bool
		err error
	}
	results := make(chan res, n)
	for i := range n {
		go func() {
			ok, err := cch.SendRequest(ctx, fmt.Sprintf("r%d", i), true, nil)
			results <- res{i, ok, err}
		}()
	}
	var all []*Request
	for range n {
		all = append(all, <-reqs)
	}
	var wg sync.WaitGroup
	release := make([]chan struct{}, n)
	for k := range all {
		release[k] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release[k]
			var i int
			fmt.Sscanf(all[k].Type, "r%d", &i)
			if err := all[k].Reply(i%2 == 0, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	for k := n - 1; k >= 0; k-- {
		close(release[k])
	}
	wg.Wait()
	for range n {
		r := <-results
		if r.err != nil || r.ok != (r.i%2 == 0) {
			t.Fatalf("request r%d: %v, %v", r.i, r.ok, r.err)
		}
	}
	if err := all[0].Reply(true, nil); !errors.Is(err, ErrAlreadyReplied) {
		t.Fatalf("second reply: %v", err)
	}

	// A nil handler refuses (RFC 4254 §5.4: SSH_MSG_CHANNEL_FAILURE).
	sch.HandleRequests(nil)
	if ok, err := cch.SendRequest(ctx, "refused", true, nil); ok || err != nil {
		t.Fatalf("refused request: %v, %v", ok, err)
	}

	// A request pending when the peer closes fails.
	sch.HandleRequests(func(r *Request) { go sch.Close() })
	if _, err := cch.SendRequest(ctx, "never-answered", true, nil); err == nil {
		t.Fatal("request answered by a CLOSE succeeded")
	}
	cch.Close()
	waitNoChannels(t, p.client)
	waitNoChannels(t, p.server)
}

// TestChannelRequestCancel: a cancelled SendRequest returns; the late reply
// is matched to it, not to the next request.
func TestChannelRequestCancel(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, nil)
	cch, sch := openPair(t, p, got, "x")
	reqs := make(chan *Request, 4)
	sch.HandleRequests(func(r *Request) { reqs <- r })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cch.SendRequest(ctx, "slow", true, nil)
		done <- err
	}()
	slow := <-reqs
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	res := make(chan bool, 1)
	go func() {
		ok, _ := cch.SendRequest(tctx(t), "next", true, nil)
		res <- ok
	}()
	next := <-reqs
	slow.Reply(false, nil)
	next.Reply(true, nil)
	if !<-res {
		t.Fatal("the late reply to the cancelled request was given to the next one")
	}
}

func TestGlobalRequests(t *testing.T) {
	sreqs := make(chan *Request, 8)
	p := chanPair(t, nil, func(c *Config, s *ServerConfig) {
		s.GlobalRequestHandler = func(r *Request) { sreqs <- r }
		// The test sends its own hostkeys-00 below; the server's
		// announcement after authentication could land after Subscribe.
		s.NoHostKeyAnnouncement = true
	})
	ctx := tctx(t)
	sub := p.client.Subscribe(ctx, KindHostKeys|KindGlobalRequest)
	defer sub.Close()

	// Handled by the server's handler, with reply data, replied later from
	// another goroutine; out of order replies still match.
	type res struct {
		ok   bool
		data []byte
		err  error
	}
	r1, r2 := make(chan res, 1), make(chan res, 1)
	go func() {
		ok, data, err := p.client.SendGlobalRequest(ctx, "first", true, []byte("a"))
		r1 <- res{ok, data, err}
	}()
	first := <-sreqs
	go func() {
		ok, data, err := p.client.SendGlobalRequest(ctx, "second", true, nil)
		r2 <- res{ok, data, err}
	}()
	second := <-sreqs
	if first.Type != "first" || string(first.Payload) != "a" || !first.WantReply || second.Type != "second" {
		t.Fatalf("requests %+v %+v", first, second)
	}
	go second.Reply(true, []byte("two"))
	go first.Reply(true, []byte("one"))
	if r := <-r1; !r.ok || string(r.data) != "one" || r.err != nil {
		t.Fatalf("first: %+v", r)
	}
	if r := <-r2; !r.ok || string(r.data) != "two" || r.err != nil {
		t.Fatalf("second: %+v", r)
	}
	// Without want_reply.
	if ok, data, err := p.client.SendGlobalRequest(ctx, "quiet", false, nil); ok || data != nil || err != nil {
		t.Fatalf("quiet: %v %q %v", ok, data, err)
	}
	if r := <-sreqs; r.Type != "quiet" || r.WantReply {
		t.Fatalf("quiet: %+v", r)
	}
	// keepalive@openssh.com is answered with a failure, as OpenSSH does.
	if ok, _, err := p.client.SendGlobalRequest(ctx, "keepalive@openssh.com", true, nil); ok || err != nil {
		t.Fatalf("keepalive: %v, %v", ok, err)
	}
	// The client has no handler: unknown requests fail (RFC 4254 §4).
	if ok, _, err := p.server.SendGlobalRequest(ctx, "unknown@example.com", true, nil); ok || err != nil {
		t.Fatalf("unknown: %v, %v", ok, err)
	}
	// hostkeys-00@openssh.com becomes a HostKeysEvent.
	k1, k2 := testEd25519.PublicKey().Marshal(), []byte("other-key")
	hk := (&wire.HostKeys{Keys: [][]byte{k1, k2}}).Append(nil)
	if _, _, err := p.server.SendGlobalRequest(ctx, "hostkeys-00@openssh.com", false, hk); err != nil {
		t.Fatal(err)
	}
	var names []string
	var keys *HostKeysEvent
	collect(t, sub, 10*time.Second, func(ev Event) bool {
		switch ev := ev.(type) {
		case *GlobalRequestEvent:
			names = append(names, fmt.Sprintf("%s/%v/%v", ev.Name, ev.WantReply, ev.Handled))
			return ev.Name == "hostkeys-00@openssh.com"
		case *HostKeysEvent:
			keys = ev
		}
		return false
	})
	if keys == nil || len(keys.Keys) != 2 || !bytes.Equal(keys.Keys[0], k1) || !bytes.Equal(keys.Keys[1], k2) {
		t.Fatalf("host keys event: %+v", keys)
	}
	want := []string{"unknown@example.com/true/false", "hostkeys-00@openssh.com/false/true"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("global request events %v, want %v", names, want)
	}
	// A registered built-in handler takes precedence.
	p.server.registerGlobalHandler("tcpip-forward", func(r *Request) { r.Reply(true, []byte{0, 0, 0, 42}) })
	if ok, data, err := p.client.SendGlobalRequest(ctx, "tcpip-forward", true, nil); !ok || len(data) != 4 || data[3] != 42 || err != nil {
		t.Fatalf("tcpip-forward: %v %v %v", ok, data, err)
	}
}

func TestChannelDeadlines(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, func(c *Config, s *ServerConfig) {
		s.ChannelWindow = 64 << 10
	})
	cch, sch := openPair(t, p, got, "x")
	// A deadline in the past fails at once, even with data buffered.
	if _, err := sch.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(cch, buf[:1]); err != nil {
		t.Fatal(err)
	}
	cch.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := cch.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
	cch.SetReadDeadline(time.Time{})
	if n, err := cch.Read(buf); n != 3 || err != nil {
		t.Fatalf("read after clearing the deadline: %d, %v", n, err)
	}
	// A deadline that passes while blocked wakes the reader.
	cch.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := cch.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read: %v", err)
	}
	if _, err := cch.Stderr().Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked stderr read: %v", err)
	}
	// Extending the deadline from another goroutine while blocked.
	cch.SetDeadline(time.Now().Add(time.Hour))
	readDone := make(chan error, 1)
	go func() {
		_, err := cch.Read(buf)
		readDone <- err
	}()
	cch.SetReadDeadline(time.Now().Add(-time.Second))
	if err := <-readDone; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a deadline moved into the past: %v", err)
	}
	cch.SetDeadline(time.Time{})

	// Writes block once the peer's window (64 KiB) is used up, until the
	// write deadline.
	cch.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := cch.Write(make([]byte, 100<<10))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != 64<<10 {
		t.Fatalf("write into a full window: %d, %v", n, err)
	}
	if _, err := cch.Write(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past deadline: %v", err)
	}
	cch.SetWriteDeadline(time.Time{})
	wdone := make(chan error, 1)
	go func() {
		_, err := cch.Write(make([]byte, 1000))
		wdone <- err
	}()
	if _, err := io.ReadFull(sch, make([]byte, 64<<10+1000)); err != nil {
		t.Fatal(err)
	}
	if err := <-wdone; err != nil {
		t.Fatal(err)
	}
}

// TestChannelConnCloseFailsChannels: when the Conn ends, every channel's
// blocked and later calls fail with the Conn's error; nothing leaks.
func TestChannelConnCloseFailsChannels(t *testing.T) {
	got := make(chan *Channel, 4)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, func(c *Config, s *ServerConfig) {
		s.ChannelWindow = 32 << 10
	})
	var cchs, schs []*Channel
	for range 3 {
		c, s := openPair(t, p, got, "x")
		cchs, schs = append(cchs, c), append(schs, s)
	}
	// A blocked reader, a writer blocked on the window, and a request
	// waiting for its reply.
	readErr, writeErr, reqErr := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := cchs[0].Read(make([]byte, 1))
		readErr <- err
	}()
	go func() {
		_, err := cchs[1].Write(make([]byte, 64<<10))
		writeErr <- err
	}()
	schs[2].HandleRequests(func(r *Request) {}) // never answers
	go func() {
		_, err := cchs[2].SendRequest(context.Background(), "x", true, nil)
		reqErr <- err
	}()
	// Global request waiting too.
	greq := make(chan *Request, 1)
	p.server.registerGlobalHandler("hang", func(r *Request) { greq <- r })
	gErr := make(chan error, 1)
	go func() {
		_, _, err := p.client.SendGlobalRequest(context.Background(), "hang", true, nil)
		gErr <- err
	}()
	<-greq
	p.client.Close()
	for name, ch := range map[string]chan error{"read": readErr, "write": writeErr, "request": reqErr, "global": gErr} {
		if err := <-ch; !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: %v, want the Conn's error", name, err)
		}
	}
	for _, ch := range cchs {
		if _, err := ch.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after the Conn closed: %v", err)
		}
		<-ch.closedByPeer()
	}
	if _, err := p.client.OpenChannel(context.Background(), "x", nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("open after the Conn closed: %v", err)
	}
	// The server's channels fail with the server's error.
	p.server.Wait()
	for _, ch := range schs {
		// Buffered data first, then the error (io.Copy hides io.EOF).
		if _, err := io.Copy(io.Discard, ch); err == nil {
			t.Errorf("server read after the Conn ended: %v", err)
		}
	}
}

// TestChannelOpenCancelled: an open abandoned by its context is closed
// when the confirmation finally arrives, freeing both ids.
func TestChannelOpenCancelled(t *testing.T) {
	ncs := make(chan *NewChannel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"slow": func(nc *NewChannel) {
		ncs <- nc
		<-nc.done // the test decides; returning would reject
	}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.client.OpenChannel(ctx, "slow", nil)
		done <- err
	}()
	nc := <-ncs
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled open: %v", err)
	}
	sch, err := nc.Accept()
	if err != nil {
		t.Fatal(err)
	}
	<-sch.closedByPeer()
	sch.Close()
	waitNoChannels(t, p.client)
	waitNoChannels(t, p.server)
}

// TestChannelUnknownRecipient: a message for a channel we do not have is a
// protocol error (as in OpenSSH).
func TestChannelUnknownRecipient(t *testing.T) {
	p := chanPair(t, nil, nil)
	msg := (&wire.ChannelEOF{Recipient: 77}).Marshal(nil)
	if err := p.client.writePacket(tctx(t), msg); err != nil {
		t.Fatal(err)
	}
	var pv *ProtocolViolation
	if err := p.server.Wait(); !errors.As(err, &pv) {
		t.Fatalf("server ended with %v", err)
	}
}

// TestChannelHeldRequestsBound: requests held for a handler not set yet are
// bounded; the excess is refused.
func TestChannelHeldRequestsBound(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, nil)
	cch, sch := openPair(t, p, got, "x")
	ctx := tctx(t)
	for i := range maxHeldRequests {
		if _, err := cch.SendRequest(ctx, fmt.Sprint(i), false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := cch.SendRequest(ctx, "one too many", true, nil); ok || err != nil {
		t.Fatalf("request over the bound: %v, %v", ok, err)
	}
	var n int
	sch.HandleRequests(func(r *Request) {
		if r.Type != fmt.Sprint(n) {
			t.Errorf("request %d is %q", n, r.Type)
		}
		n++
	})
	if n != maxHeldRequests {
		t.Fatalf("%d held requests delivered", n)
	}
}

// TestChannelExtendedDataCodes: extended data of an unknown type is dropped
// and its window given back; data before the confirmation is an error.
func TestChannelExtendedDataCodes(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, func(c *Config, s *ServerConfig) {
		s.ChannelWindow, s.ChannelMaxPacket = 64<<10, 16<<10
	})
	cch, sch := openPair(t, p, got, "x")
	ctx := tctx(t)
	junk := make([]byte, 16<<10)
	for range 3 { // 48 KiB of type 2: over half the window, given back
		if err := p.client.writeChannelData(ctx, cch.RemoteID(), 2, junk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cch.Write([]byte("marker")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	if n, err := sch.Read(b); err != nil || string(b[:n]) != "marker" {
		t.Fatalf("read %q, %v", b[:n], err)
	}
	// 32 KiB came back with a WINDOW_ADJUST; the rest waits as consumed.
	st, lwin, consumed, buffered := flowSnapshot(sch)
	if st.granted != 96<<10 || buffered != 0 || lwin+consumed != 64<<10 {
		t.Fatalf("granted %d, lwin %d, consumed %d, buffered %d after dropped extended data", st.granted, lwin, consumed, buffered)
	}
	// A CHANNEL_DATA for a channel still opening is a protocol error.
	ncs := make(chan *NewChannel, 1)
	p.server.registerChannelHandler("slow", func(nc *NewChannel) {
		ncs <- nc
		<-nc.done // never decided: the Conn ends first
	})
	go p.client.OpenChannel(context.Background(), "slow", nil)
	<-ncs
	p.client.mux.mu.Lock()
	var opening uint32
	for id, ch := range p.client.mux.chans {
		if ch.Type() == "slow" {
			opening = id
		}
	}
	p.client.mux.mu.Unlock()
	msg := wire.AppendChannelDataHeader(nil, opening, 1)
	msg = append(msg, 'x')
	if err := p.server.writePacket(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var pv *ProtocolViolation
	if err := p.client.Wait(); !errors.As(err, &pv) {
		t.Fatalf("client ended with %v", err)
	}
}

// TestChannelReplyAfterClose: the answer to a request our Close abandoned
// may cross our CLOSE; it is not an error.
func TestChannelReplyAfterClose(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, nil)
	cch, sch := openPair(t, p, got, "x")
	reqs := make(chan *Request, 1)
	sch.HandleRequests(func(r *Request) { reqs <- r })
	done := make(chan error, 1)
	go func() {
		_, err := cch.SendRequest(context.Background(), "slow", true, nil)
		done <- err
	}()
	r := <-reqs
	cch.Close()
	if err := <-done; !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("request abandoned by Close: %v", err)
	}
	// The server answers before it handles our CLOSE (the transport
	// goroutine is the one that would process it: Reply from here races
	// with it either way, and both orders must be fine).
	r.Reply(true, nil)
	<-cch.closedByPeer()
	if err := p.client.Err(); err != nil {
		t.Fatal(err)
	}
	// The Conn still works.
	if ok, _, err := p.client.SendGlobalRequest(tctx(t), "ping?", true, nil); ok || err != nil {
		t.Fatalf("after: %v, %v", ok, err)
	}
}
