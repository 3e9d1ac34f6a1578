package sshtap

// The hostile-client suite: slow-loris at every stage before
// authentication and floods after it, against a Server on loopback. Each
// test checks that the Server's memory stays bounded, that stalled
// connections end within the login grace time, and that an honest client
// is served meanwhile. The default run uses a 1 s grace time and 200
// stalled sockets; SSHTAP_HOSTILE_HEAVY=1 runs 1,200 sockets and a 1 GiB
// IGNORE flood and logs the figures (go test -v -run Hostile).

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sshtap/internal/wire"
	"sshtap/kex"
)

func hostileHeavy() bool { return os.Getenv("SSHTAP_HOSTILE_HEAVY") == "1" }

// clientKexInit is an honest client's first KEXINIT packet.
func clientKexInit(t testing.TB) []byte {
	t.Helper()
	prop, err := (&TransportConfig{}).proposal(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := prop.KexInit(kex.Client, true, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return plainPacket(m.Marshal(nil))
}

// rss returns the process's resident set in bytes (Linux), or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// honestLogin logs in and runs a command.
func honestLogin(ctx context.Context, addr string) error {
	c, err := dialTest(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.Output("echo honest")
	if err != nil || string(out) != "honest\n" {
		return fmt.Errorf("command: %q, %v", out, err)
	}
	return nil
}

// Slow-loris at every stage before authentication: each stalled
// connection ends within the grace time (plus a second), its error names
// the stage, and an honest client logs in while they stall.
func TestHostileStalledLogins(t *testing.T) {
	const grace = time.Second
	perStage := 29 // 7 stages, 203 sockets
	if hostileHeavy() {
		perStage = 172                     // 1,204 sockets
		need := uint64(7*perStage*2 + 256) // both ends of every socket
		if limit, ok := raiseNoFile(need); !ok {
			t.Skipf("the heavy variant needs %d file descriptors; the limit is %d", need, limit)
		}
	}
	cfg := passwordServerConfig(t)
	cfg.LoginGraceTime = grace
	var mu sync.Mutex
	stages := map[string]error{} // by the client's address
	s := &Server{
		Config:      cfg,
		MaxStartups: MaxStartups{Full: -1}, // this test is about the grace time
		ConnState: func(c *Conn, st ConnState) {
			if st == StateClosed && !c.Authenticated() {
				mu.Lock()
				stages[c.RemoteAddr().String()] = c.Err()
				mu.Unlock()
			}
		},
	}
	addr := testServer(t, s)
	kexinit := clientKexInit(t)
	version := []byte("SSH-2.0-hostile_test\r\n")
	raw := []struct {
		stage  LoginStage
		prefix []byte
	}{
		{StageVersion, nil},
		{StageVersion, []byte("SSH-2.0-half")},
		{StageKex, version},
		{StageKex, append(append([]byte{}, version...), kexinit[:len(kexinit)/2]...)},
		{StageKex, append(append([]byte{}, version...), kexinit...)},
	}
	heap0, rss0 := heapInUse(), rss()
	start := time.Now()
	type stalled struct {
		nc    net.Conn
		stage LoginStage
	}
	var all []stalled
	for _, r := range raw {
		for range perStage {
			all = append(all, stalled{stalledSocket(t, addr, r.prefix), r.stage})
		}
	}
	// Clients that complete the key exchange (and, for the second kind,
	// the service request) and then say nothing.
	ctx := tctx(t)
	for _, noAuth := range []bool{false, true} {
		for range perStage {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &Config{HostKeyCallback: insecure, NoServiceRequest: !noAuth, NoAuth: noAuth}
			c := ClientConn(nc, cfg)
			if err := c.Handshake(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			all = append(all, stalled{nc, StageAuth})
		}
	}
	connected := time.Since(start)

	// An honest login while every one of them is still there.
	if err := honestLogin(ctx, addr); err != nil {
		t.Fatalf("honest login among %d stalled connections: %v", len(all), err)
	}
	loggedIn := time.Since(start)
	peak := heapInUse()

	// Every stalled socket is closed by the server: reads end with EOF
	// (raw sockets) or an error (the Conns, whose transport reads too).
	var wg sync.WaitGroup
	var last sync.Mutex
	var lastEnd time.Duration
	for _, st := range all {
		wg.Go(func() {
			st.nc.SetReadDeadline(time.Now().Add(grace + 10*time.Second))
			io.Copy(io.Discard, st.nc)
			last.Lock()
			lastEnd = max(lastEnd, time.Since(start))
			last.Unlock()
		})
	}
	wg.Wait()
	// The Conn clients' own reads see the end first; wait for the Server's
	// record of each.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(stages)
		mu.Unlock()
		if n >= len(all) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Within a second of the grace time; the race detector slows the
	// teardown of hundreds of connections, so it gets two more.
	slack := time.Second
	if benchRaceEnabled() {
		slack += 2 * time.Second
	}
	if lastEnd > connected+grace+slack {
		t.Errorf("the last stalled connection ended %v after the first connect (connecting took %v, grace %v)", lastEnd, connected, grace)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, st := range all {
		err := stages[st.nc.LocalAddr().String()]
		var ge *LoginGraceError
		if !errors.As(err, &ge) || ge.Stage != st.stage {
			t.Errorf("connection stalled in the %v ended with %v", st.stage, err)
			break
		}
	}
	t.Logf("%d stalled connections: connected in %v, honest login done at %v, all closed by %v; heap %+d KB at the peak (%.1f KB per connection), RSS %+d KB",
		len(all), connected.Round(time.Millisecond), loggedIn.Round(time.Millisecond), lastEnd.Round(time.Millisecond),
		(peak-heap0)>>10, float64(peak-heap0)/1024/float64(len(all)), (rss()-rss0)>>10)
}

// A flood of large IGNORE packets while the event subscriber never reads:
// the events hold at most MaxEventData bytes each, so the server's heap
// stays small, and another client is served meanwhile.
func TestHostileIgnoreFloodBlockedSubscriber(t *testing.T) {
	total := int64(64 << 20)
	if hostileHeavy() {
		total = 1 << 30
	}
	subs := make(chan *Subscription, 8)
	s := &Server{
		Config: passwordServerConfig(t),
		ConnState: func(c *Conn, st ConnState) {
			if st == StateNew {
				// A subscriber that never reads, with a large buffer.
				subs <- c.SubscribeBuffer(context.Background(), KindIgnore, 1024)
			}
		},
	}
	addr, c := serveAndDial(t, s)
	ctx := tctx(t)
	heap0, rss0 := heapInUse(), rss()
	chunk := make([]byte, 32<<10)
	start := time.Now()
	for sent := int64(0); sent < total; sent += int64(len(chunk)) {
		if err := c.SendIgnore(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Ping(ctx); err != nil { // everything sent was read
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := honestLogin(ctx, addr); err != nil {
		t.Fatalf("honest login during the flood: %v", err)
	}
	grown := heapInUse() - heap0
	sub := <-subs
	held := 0
	for len(sub.Events()) > 0 {
		ev := <-sub.Events()
		if ig, ok := ev.(*IgnoreEvent); ok {
			held++
			if len(ig.Data) > MaxEventData || ig.Length != len(chunk) {
				t.Fatalf("event holds %d bytes of %d", len(ig.Data), ig.Length)
			}
		}
	}
	// 1024 events of at most 256 bytes; with whole 32 KiB payloads the
	// same subscription would hold 32 MiB.
	if grown > 8<<20 {
		t.Errorf("heap grew by %d KB during the flood", grown>>10)
	}
	if held < 1000 {
		t.Errorf("the blocked subscription holds %d events, want it full", held)
	}
	t.Logf("%d MiB of IGNORE in %v (%.0f MB/s) with a blocked subscriber holding %d events: heap %+d KB, RSS %+d KB",
		total>>20, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds()/1e6, held, grown>>10, (rss()-rss0)>>10)
	sub.Close()
}

// Floods after authentication: channel opens far past MaxSessions, window
// adjustments by the ten thousand, pipelined global requests, key exchanges
// back to back. Each is
// refused or absorbed, and the connection and the server keep working.
func TestHostileFloodsAfterAuth(t *testing.T) {
	s := &Server{Config: passwordServerConfig(t)}
	s.Config.PeerKexLimit = 3
	addr, c := serveAndDial(t, s)
	ctx := tctx(t)
	heap0 := heapInUse()

	t.Run("session-opens", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		opened, refused := 0, 0
		for range 2000 {
			wg.Go(func() {
				_, err := c.OpenChannel(ctx, "session", nil)
				var oe *OpenChannelError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					opened++
				case errors.As(err, &oe) && oe.Reason == OpenResourceShortage:
					refused++
				default:
					t.Errorf("open: %v", err)
				}
			})
		}
		wg.Wait()
		if opened != DefaultMaxSessions || refused != 2000-DefaultMaxSessions {
			t.Errorf("%d sessions opened and %d refused, want %d and the rest", opened, refused, DefaultMaxSessions)
		}
	})

	t.Run("window-adjusts", func(t *testing.T) {
		ch, err := c.OpenChannel(ctx, "session", nil) // refused: the sessions are all taken
		if err == nil {
			ch.Close()
			t.Fatal("an 11th session opened")
		}
		// Window adjustments for one of the open channels: absorbed
		// without a reply each, until the window would pass 2^32 - 1.
		c.mux.mu.Lock()
		var target *Channel
		for _, ch := range c.mux.chans {
			target = ch
			break
		}
		c.mux.mu.Unlock()
		adj := (&wire.ChannelWindowAdjust{Recipient: target.remoteID, Bytes: 1}).Marshal(nil)
		for range 20000 {
			if err := c.writePacket(ctx, adj); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("after 20,000 window adjustments: %v", err)
		}
	})

	t.Run("global-requests", func(t *testing.T) {
		// Unknown requests are answered at once; the client reads the
		// answers, so the server's queue stays short and it keeps serving.
		var wg sync.WaitGroup
		for range 2000 {
			wg.Go(func() {
				if ok, _, err := c.SendGlobalRequest(ctx, "flood@hostile", true, nil); ok || err != nil {
					t.Errorf("global request: %v, %v", ok, err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("rekeys", func(t *testing.T) {
		// A second connection starts key exchanges back to back: the
		// server answers PeerKexLimit of them (3 here, refilled one every
		// 20 s), then disconnects it.
		r, err := dialTest(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n := 0
		for ; n < 10; n++ {
			if r.Rekey(ctx) != nil {
				break
			}
		}
		var de *DisconnectError
		if err := waitEnd(t, r, 10*time.Second); n != 3 || !errors.As(err, &de) || de.Reason != DisconnectProtocolError {
			t.Fatalf("%d key exchanges answered, then %v; want 3 and PROTOCOL_ERROR", n, err)
		}
	})

	if err := honestLogin(ctx, addr); err != nil {
		t.Fatalf("honest login after the floods: %v", err)
	}
	if grown := heapInUse() - heap0; grown > 16<<20 {
		t.Errorf("heap grew by %d KB", grown>>10)
	}
	// The flooding connection itself still works.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
