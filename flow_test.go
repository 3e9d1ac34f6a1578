package sshtap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"sshtap/internal/testpeer"
	"sshtap/internal/wire"
)

// acceptInto returns a channel handler that accepts every open and hands
// the channel to the test.
func acceptInto(got chan<- *Channel) func(*NewChannel) {
	return func(nc *NewChannel) {
		ch, err := nc.Accept()
		if err != nil {
			return
		}
		got <- ch
	}
}

// openPair opens a channel from the client of p; the server side comes from
// got (see acceptInto).
func openPair(t testing.TB, p pair, got <-chan *Channel, typ string) (client, server *Channel) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.client.OpenChannel(ctx, typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		return c, s
	case <-ctx.Done():
		t.Fatal("server never got the channel")
	}
	return nil, nil
}

// flowSnapshot reads a channel's flow counters.
func flowSnapshot(ch *Channel) (st flowStats, lwin, consumed uint32, buffered int) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.st, ch.lwin, ch.consumed, ch.data.n + ch.ext.n
}

// streamSource writes n pseudo-random bytes (seeded) to w in chunks of
// varied size and returns their hash.
func streamSource(w io.Writer, n int64, seed uint64) ([32]byte, error) {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for n > 0 {
		k := int64(1 + r.IntN(len(buf)))
		k = min(k, n)
		chunk := buf[:k]
		for i := 0; i+8 <= len(chunk); i += 8 {
			v := r.Uint64()
			chunk[i], chunk[i+1], chunk[i+2], chunk[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			chunk[i+4], chunk[i+5], chunk[i+6], chunk[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
		}
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return [32]byte{}, err
		}
		n -= k
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

func flowVolume() int64 {
	if testing.Short() || benchRaceEnabled() {
		return 256 << 20
	}
	return 1 << 30
}

// TestChannelFlowControlSlowReader streams through one channel to a reader
// that reads small pieces and pauses on command. At every pause the test
// waits until the sender filled the window and checks that it stopped
// there: the receiver never buffers more than the window, the sender never
// had more in flight than its credit, and its credit never exceeds what the
// receiver granted. The data arrives intact.
func TestChannelFlowControlSlowReader(t *testing.T) {
	cases := []struct {
		name           string
		window, packet int
		volume         int64
		pauseEvery     int
	}{
		{"default", 0, 0, flowVolume(), 512},
		{"small", 64 << 10, 16 << 10, 64 << 20, 128},
		{"odd", 100003, 7001, 32 << 20, 64},
		{"tiny", 4096, 1000, 4 << 20, 64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan *Channel, 1)
			p := chanPair(t, map[string]func(*NewChannel){"sink": acceptInto(got)}, func(c *Config, s *ServerConfig) {
				s.ChannelWindow, s.ChannelMaxPacket = tc.window, tc.packet
				c.ChannelWindow, c.ChannelMaxPacket = tc.window, tc.packet
			})
			cch, sch := openPair(t, p, got, "sink")
			window := int(sch.lwinSize)

			type result struct {
				sum [32]byte
				err error
			}
			sent := make(chan result, 1)
			go func() {
				sum, err := streamSource(cch, tc.volume, 7)
				if err == nil {
					err = cch.CloseWrite()
				}
				sent <- result{sum, err}
			}()

			tokens := make(chan struct{})
			paused := make(chan struct{})
			recvd := make(chan result, 1)
			go func() {
				h := sha256.New()
				r := rand.New(rand.NewPCG(1, 2))
				buf := make([]byte, 64<<10)
				for reads := 1; ; reads++ {
					n, err := sch.Read(buf[:1+r.IntN(len(buf))])
					h.Write(buf[:n])
					if err == io.EOF {
						var sum [32]byte
						h.Sum(sum[:0])
						recvd <- result{sum, nil}
						return
					}
					if err != nil {
						recvd <- result{err: err}
						return
					}
					if reads%tc.pauseEvery == 0 {
						paused <- struct{}{}
						<-tokens
					}
				}
			}()

			check := func(full bool) {
				t.Helper()
				cst, _, _, _ := flowSnapshot(cch)
				sst, lwin, consumed, buffered := flowSnapshot(sch)
				if cst.sent > cst.credit {
					t.Fatalf("sender framed %d bytes with a credit of %d", cst.sent, cst.credit)
				}
				if cst.credit > sst.granted {
					t.Fatalf("sender credited %d bytes, receiver granted %d", cst.credit, sst.granted)
				}
				if sst.received > sst.granted {
					t.Fatalf("receiver got %d bytes, granted %d", sst.received, sst.granted)
				}
				if buffered > window || sst.maxBuffer > window {
					t.Fatalf("receiver buffered %d (max %d), window %d", buffered, sst.maxBuffer, window)
				}
				if int(lwin)+buffered+int(consumed) != window {
					t.Fatalf("window accounting: lwin %d + buffered %d + consumed %d != %d", lwin, buffered, consumed, window)
				}
				if full && lwin != 0 {
					t.Fatalf("paused reader, sender blocked, yet %d bytes of window unused", lwin)
				}
			}
			pauses := 0
			for {
				select {
				case <-paused:
					pauses++
					// The reader is paused: the sender must fill the window
					// exactly and stop (or finish its data).
					deadline := time.Now().Add(20 * time.Second)
					for {
						_, lwin, _, _ := flowSnapshot(sch)
						if lwin == 0 || len(sent) > 0 {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("the sender did not fill the window (%d left) while the reader paused", lwin)
						}
						runtime.Gosched()
					}
					check(len(sent) == 0)
					tokens <- struct{}{}
				case r := <-recvd:
					if r.err != nil {
						t.Fatal(r.err)
					}
					s := <-sent
					if s.err != nil {
						t.Fatal(s.err)
					}
					if s.sum != r.sum {
						t.Fatal("data corrupted")
					}
					check(false)
					t.Logf("%d MiB, window %d, max packet %d, %d pauses", tc.volume>>20, window, cch.pmax, pauses)
					return
				}
			}
		})
	}
}

// TestChannelManyConcurrent runs 64 echo channels at once over one Conn.
func TestChannelManyConcurrent(t *testing.T) {
	p := chanPair(t, map[string]func(*NewChannel){"echo": echoHandler(t)}, nil)
	size := 1 << 20
	if testing.Short() || benchRaceEnabled() {
		size = 256 << 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(p.client, size+i, uint64(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	waitNoChannels(t, p.client)
	waitNoChannels(t, p.server)
}

func echoOnce(c *Conn, size int, seed uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, err := c.OpenChannel(ctx, "echo", nil)
	if err != nil {
		return err
	}
	defer ch.Close()
	done := make(chan error, 1)
	var want [32]byte
	go func() {
		var err error
		want, err = streamSource(ch, int64(size), seed)
		if err == nil {
			err = ch.CloseWrite()
		}
		done <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, ch)
	if err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	if n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("channel %d: echo of %d bytes came back as %d different bytes", ch.LocalID(), size, n)
	}
	// Wait for the server's CLOSE so the ids are free when we return.
	if err := ch.Close(); err != nil {
		return err
	}
	select {
	case <-ch.closedByPeer():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// waitNoChannels waits until c's channel table is empty (the peer's CLOSE
// may still be on its way).
func waitNoChannels(t testing.TB, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mux.mu.Lock()
		n := len(c.mux.chans)
		c.mux.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d channels still allocated", n)
		}
		runtime.Gosched()
	}
}

// TestChannelDataZeroAllocs: in steady state a 32 KiB Write on one side and
// the Read of it on the other allocate nothing, transport goroutines, window
// adjustments and writer goroutines included.
func TestChannelDataZeroAllocs(t *testing.T) {
	if benchRaceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"sink": acceptInto(got)}, nil)
	cch, sch := openPair(t, p, got, "sink")
	wbuf := make([]byte, 32<<10)
	rbuf := make([]byte, 32<<10)
	step := func() {
		if _, err := cch.Write(wbuf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(sch, rbuf); err != nil {
			t.Fatal(err)
		}
	}
	for range 300 { // warm up: buffers reach their steady size
		step()
	}
	if n := testing.AllocsPerRun(500, step); n != 0 {
		t.Fatalf("%v allocations per 32 KiB Write+Read", n)
	}
	// The other direction too.
	step = func() {
		if _, err := sch.Write(wbuf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cch, rbuf); err != nil {
			t.Fatal(err)
		}
	}
	for range 300 {
		step()
	}
	if n := testing.AllocsPerRun(500, step); n != 0 {
		t.Fatalf("%v allocations per 32 KiB Write+Read (server to client)", n)
	}
}

// TestChannelPeerOverrunsWindow: a peer that sends more than the window we
// advertised is a protocol error (it would make us buffer without bound).
func TestChannelPeerOverrunsWindow(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"sink": acceptInto(got)}, func(c *Config, s *ServerConfig) {
		s.ChannelWindow, s.ChannelMaxPacket = 64<<10, 32<<10
	})
	cch, _ := openPair(t, p, got, "sink")
	if cch.pmax != 32<<10 || cch.pwin != 64<<10 {
		t.Fatalf("peer window %d, max packet %d", cch.pwin, cch.pmax)
	}
	ctx := tctx(t)
	data := make([]byte, 40<<10)
	// Bypass Channel.Write's flow control.
	for range 2 {
		if err := p.client.writeChannelData(ctx, cch.RemoteID(), 0, data); err != nil {
			break
		}
	}
	err := p.server.Wait()
	var pv *ProtocolViolation
	if !errors.As(err, &pv) {
		t.Fatalf("server ended with %v, want a protocol violation", err)
	}
	t.Log(err)
	var de *DisconnectError
	if err := p.client.Wait(); !errors.As(err, &de) || de.Reason != DisconnectProtocolError {
		t.Fatalf("client ended with %v, want the server's PROTOCOL_ERROR disconnect", err)
	}
}

// TestChannelWindowAdjustOverflow: RFC 4254 §5.2 caps a window at 2^32-1.
func TestChannelWindowAdjustOverflow(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"sink": acceptInto(got)}, nil)
	cch, _ := openPair(t, p, got, "sink")
	adj := (&wire.ChannelWindowAdjust{Recipient: cch.RemoteID(), Bytes: 1<<32 - 1}).Marshal(nil)
	if err := p.client.writePacket(tctx(t), adj); err != nil {
		t.Fatal(err)
	}
	var pv *ProtocolViolation
	if err := p.server.Wait(); !errors.As(err, &pv) {
		t.Fatalf("server ended with %v, want a protocol violation", err)
	}
}

// TestChannelWindowBoundary: writes split by the window and the peer's max
// packet; a write exactly filling the window does not block.
func TestChannelWindowBoundary(t *testing.T) {
	got := make(chan *Channel, 1)
	p := chanPair(t, map[string]func(*NewChannel){"sink": acceptInto(got)}, func(c *Config, s *ServerConfig) {
		s.ChannelWindow, s.ChannelMaxPacket = 10000, 3000
	})
	cch, sch := openPair(t, p, got, "sink")
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if n, err := cch.Write(data); n != len(data) || err != nil {
		t.Fatalf("write %d, %v", n, err)
	}
	cch.mu.Lock()
	pwin := cch.pwin
	cch.mu.Unlock()
	if pwin != 0 {
		t.Fatalf("window left %d, want 0", pwin)
	}
	// The next write waits until the reader consumed half the window.
	done := make(chan error, 1)
	go func() {
		_, err := cch.Write(data[:1])
		done <- err
	}()
	rb := make([]byte, 10001)
	if _, err := io.ReadFull(sch, rb[:5000]); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(sch, rb[5000:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rb[:10000], data) || rb[10000] != data[0] {
		t.Fatal("data corrupted")
	}
}

// BenchmarkChannelThroughput measures one channel's throughput (32 KiB
// writes, a reader draining the other end) over net.Pipe for several
// window and max packet sizes, with AES-128-GCM and chacha20-poly1305.
func BenchmarkChannelThroughput(b *testing.B) {
	for _, cipherName := range []string{"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"} {
		for _, window := range []int{1 << 20, 2 << 20, 4 << 20, 8 << 20} {
			for _, packet := range []int{32 << 10, 64 << 10, 128 << 10} {
				name := fmt.Sprintf("%s/window=%dMiB/packet=%dKiB", cipherName[:6], window>>20, packet>>10)
				b.Run(name, func(b *testing.B) {
					benchChannel(b, cipherName, window, packet, false)
				})
			}
		}
	}
}

// BenchmarkChannelThroughputTCP is BenchmarkChannelThroughput over loopback
// TCP for the default settings and the extremes.
func BenchmarkChannelThroughputTCP(b *testing.B) {
	for _, window := range []int{2 << 20, 4 << 20, 8 << 20} {
		for _, packet := range []int{32 << 10, 128 << 10} {
			b.Run(fmt.Sprintf("window=%dMiB/packet=%dKiB", window>>20, packet>>10), func(b *testing.B) {
				benchChannel(b, "aes128-gcm@openssh.com", window, packet, true)
			})
		}
	}
}

func benchChannel(b *testing.B, cipherName string, window, packet int, tcp bool) {
	if tcp {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		sc := <-accepted
		ln.Close()
		benchChannelOver(b, cipherName, window, packet, cc, sc)
		return
	}
	cEnd, sEnd := net.Pipe()
	benchChannelOver(b, cipherName, window, packet, cEnd, sEnd)
}

func benchChannelOver(b *testing.B, cipherName string, window, packet int, cEnd, sEnd net.Conn) {
	got := make(chan *Channel, 1)
	ccfg, scfg := &Config{}, &ServerConfig{}
	for _, tc := range []*TransportConfig{&ccfg.TransportConfig, &scfg.TransportConfig} {
		tc.Ciphers = []string{cipherName}
		tc.ChannelWindow, tc.ChannelMaxPacket = window, packet
	}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"sink": acceptInto(got)}
	p := handshakeOver(b, cEnd, sEnd, ccfg, scfg)
	cch, sch := openPair(b, p, got, "sink")
	drained := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{sch}, buf)
		drained <- err
	}()
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cch.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	cch.CloseWrite()
	if err := <-drained; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// TestChannelCloseUnblocksWriter: Close (or CloseWrite) from another
// goroutine ends a Write waiting for window space, without waiting for it.
func TestChannelCloseUnblocksWriter(t *testing.T) {
	got := make(chan *Channel, 2)
	p := chanPair(t, map[string]func(*NewChannel){"x": acceptInto(got)}, func(c *Config, s *ServerConfig) {
		s.ChannelWindow = 16 << 10
	})
	for _, closeWrite := range []bool{false, true} {
		cch, _ := openPair(t, p, got, "x")
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			close(started)
			_, err := cch.Write(make([]byte, 64<<10))
			done <- err
		}()
		<-started
		// Wait until the writer used the window up.
		for {
			cch.mu.Lock()
			pwin := cch.pwin
			cch.mu.Unlock()
			if pwin == 0 {
				break
			}
			runtime.Gosched()
		}
		want := ErrChannelClosed
		if closeWrite {
			want = ErrWriteClosed
			cch.CloseWrite()
		} else {
			cch.Close()
		}
		if err := <-done; !errors.Is(err, want) {
			t.Fatalf("blocked write after close (CloseWrite %v): %v", closeWrite, err)
		}
	}
}

// TestInteropChannelFlow streams data through "cat" on OpenSSH's sshd and
// dropbear over raw session channels, with our default window and a small
// one: the peers silently drop data sent over their window or maximum
// packet, so an intact echo shows we respect both, and their adjustments
// of our small window show ours is handled.
func TestInteropChannelFlow(t *testing.T) {
	type peer struct {
		name       string
		addr, user string
		key        *testpeer.Key
	}
	start := map[string]func(t *testing.T) peer{
		"sshd": func(t *testing.T) peer {
			testpeer.Require(t, "sshd")
			d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
			return peer{"sshd", d.Addr, d.User, d.ClientKey()}
		},
		"dropbear": func(t *testing.T) peer {
			testpeer.Require(t, "dropbear")
			d := testpeer.StartDropbear(t, testpeer.DropbearOptions{})
			return peer{"dropbear", d.Addr, d.User, d.ClientKey()}
		},
	}
	for _, name := range []string{"sshd", "dropbear"} {
		t.Run(name, func(t *testing.T) {
			pr := start[name](t)
			for _, w := range []struct{ window, packet int }{{0, 0}, {48 << 10, 8 << 10}} {
				t.Run(fmt.Sprintf("window=%d", w.window), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					cfg := &Config{User: pr.user, Auth: []AuthMethod{PublicKeys(pr.key.Signer)}, HostKeyCallback: insecure}
					cfg.ChannelWindow, cfg.ChannelMaxPacket = w.window, w.packet
					c, err := Dial(ctx, "tcp", pr.addr, cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					ch, err := c.OpenChannel(ctx, "session", nil)
					if err != nil {
						t.Fatal(err)
					}
					var reqMu sync.Mutex
					var names []string
					ch.HandleRequests(func(r *Request) {
						reqMu.Lock()
						names = append(names, r.Type)
						reqMu.Unlock()
						r.Reply(false, nil)
					})
					ch.mu.Lock()
					pwin, pmax := ch.pwin, ch.pmax
					ch.mu.Unlock()
					t.Logf("%s: initial window %d, max packet %d", pr.name, pwin, pmax)
					exec := (&wire.ExecReq{Command: "cat"}).Append(nil)
					if ok, err := ch.SendRequest(ctx, "exec", true, exec); !ok || err != nil {
						t.Fatalf("exec: %v, %v", ok, err)
					}
					size := int64(64 << 20)
					if testing.Short() {
						size = 8 << 20
					}
					sent := make(chan error, 1)
					var want [32]byte
					go func() {
						var err error
						want, err = streamSource(ch, size, 3)
						if err == nil {
							err = ch.CloseWrite()
						}
						sent <- err
					}()
					h := sha256.New()
					n, err := io.Copy(h, ch)
					if err != nil {
						t.Fatal(err)
					}
					if err := <-sent; err != nil {
						t.Fatal(err)
					}
					if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
						t.Fatalf("cat echoed %d of %d bytes, intact: %v", n, size, bytes.Equal(h.Sum(nil), want[:]))
					}
					<-ch.closedByPeer()
					ch.Close()
					reqMu.Lock()
					t.Logf("requests from the peer: %v", names)
					reqMu.Unlock()
					st, _, _, _ := flowSnapshot(ch)
					if st.maxBuffer > int(ch.lwinSize) {
						t.Fatalf("buffered %d with a window of %d", st.maxBuffer, ch.lwinSize)
					}
				})
			}
		})
	}
}

// BenchmarkChannelThroughputLatency is BenchmarkChannelThroughput over a
// link with 5 ms of one-way delay (10 ms round trip), where a window caps
// throughput at window/RTT (the bandwidth-delay product).
func BenchmarkChannelThroughputLatency(b *testing.B) {
	for _, window := range []int{1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("window=%dMiB", window>>20), func(b *testing.B) {
			cEnd, sEnd := latencyLink(5 * time.Millisecond)
			benchChannelOver(b, "aes128-gcm@openssh.com", window, 128<<10, cEnd, sEnd)
		})
	}
}

// latencyLink returns the two ends of a link delivering what is written to
// one end at the other d later (with unbounded buffering in between). Its
// goroutines end when both ends are closed.
func latencyLink(d time.Duration) (net.Conn, net.Conn) {
	c, cr := net.Pipe()
	s, sr := net.Pipe()
	delayRelay(sr, cr, d)
	delayRelay(cr, sr, d)
	return c, s
}

func delayRelay(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	q := make(chan chunk, 1<<14)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer dst.Close()
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		for c := range q {
			if w := time.Until(c.at); w > 0 {
				t.Reset(w)
				<-t.C
			}
			if _, err := dst.Write(c.b); err != nil {
				for range q {
				}
				return
			}
		}
	}()
}
