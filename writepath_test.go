package sshtap

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// pushVolume is what each end writes in the both-ends-push tests.
const pushVolume = 64 << 20

// pushBothWays streams n bytes each way through one channel at once and
// checks both arrive intact: both ends' writers fill their socket while the
// transport goroutines must still get window adjusts (and, with a small
// RekeyBytes, whole key exchanges) through.
func pushBothWays(t *testing.T, p pair, got <-chan *Channel, n int64) {
	t.Helper()
	cch, sch := openPair(t, p, got, "push")
	type result struct {
		sum [32]byte
		err error
	}
	send := func(ch *Channel, seed uint64, out chan<- result) {
		sum, err := streamSource(ch, n, seed)
		if err == nil {
			err = ch.CloseWrite()
		}
		out <- result{sum, err}
	}
	recv := func(ch *Channel, out chan<- result) {
		sum, k, err := sinkHash(ch)
		if err == nil && k != n {
			err = fmt.Errorf("received %d bytes, want %d", k, n)
		}
		out <- result{sum, err}
	}
	sentC, sentS, gotC, gotS := make(chan result, 1), make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go send(cch, 1, sentC)
	go send(sch, 2, sentS)
	go recv(cch, gotC)
	go recv(sch, gotS)
	timeout := time.After(3 * time.Minute)
	var rs [4]result
	for i, ch := range []chan result{sentC, sentS, gotC, gotS} {
		select {
		case rs[i] = <-ch:
		case <-timeout:
			t.Fatalf("stalled: client wrote %v, server wrote %v (stats client %+v server %+v)",
				len(sentC) == 0, len(sentS) == 0, p.client.Stats(), p.server.Stats())
		}
		if rs[i].err != nil {
			t.Fatalf("stream %d: %v", i, rs[i].err)
		}
	}
	if rs[0].sum != rs[3].sum || rs[1].sum != rs[2].sum {
		t.Fatal("data corrupted in transit")
	}
	cch.Close()
	sch.Close()
}

// sinkHash reads r to EOF and returns the SHA-256 of what it read.
func sinkHash(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 64<<10))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, err
}

// pushConfigs are small windows (many WINDOW_ADJUSTs from the transport
// goroutine's side of the Conn) and a small rekey limit (key exchanges in
// the middle of the traffic).
func pushConfigs(got chan<- *Channel) (*Config, *ServerConfig) {
	ccfg, scfg := &Config{}, &ServerConfig{}
	for _, tc := range []*TransportConfig{&ccfg.TransportConfig, &scfg.TransportConfig} {
		tc.ChannelWindow = 64 << 10
		tc.ChannelMaxPacket = 16 << 10
		tc.RekeyBytes = 8 << 20
	}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"push": acceptInto(got)}
	return ccfg, scfg
}

// TestBothEndsPushNetPipe: over net.Pipe every write waits for the peer's
// read, the harshest stream for a transport that writes on the caller's
// goroutine.
func TestBothEndsPushNetPipe(t *testing.T) {
	got := make(chan *Channel, 1)
	ccfg, scfg := pushConfigs(got)
	p := handshakePair(t, ccfg, scfg)
	pushBothWays(t, p, got, pushVolume)
	if p.client.Stats().Rekeys == 0 || p.server.Stats().Rekeys == 0 {
		t.Errorf("no rekey during the transfer: client %+v server %+v", p.client.Stats(), p.server.Stats())
	}
}

// TestBothEndsPushSmallSocketBuffers: loopback TCP with 32 KiB socket
// buffers, half the 64 KiB window (each side's socket fills before
// its peer's window closes). Smaller buffers are not used: on Linux
// loopback, buffers of 16 KiB and less can stall TCP itself for minutes
// (both ends waiting in poll with data unsent), whatever the program does.
func TestBothEndsPushSmallSocketBuffers(t *testing.T) {
	a, b := tcpPairSmallBuffers(t, 32<<10)
	got := make(chan *Channel, 1)
	ccfg, scfg := pushConfigs(got)
	p := handshakeOver(t, a, b, ccfg, scfg)
	pushBothWays(t, p, got, pushVolume)
}

// tcpPairSmallBuffers returns both ends of a loopback TCP connection whose
// socket buffers are size bytes.
func tcpPairSmallBuffers(t *testing.T, size int) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	for _, c := range []net.Conn{a, b} {
		tc := c.(*net.TCPConn)
		tc.SetReadBuffer(size)
		tc.SetWriteBuffer(size)
	}
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// TestInteropBothEndsPushSSHD: 64 MiB into cat on a real sshd while its
// output comes back, with sshd rekeying every 8 MiB.
func TestInteropBothEndsPushSSHD(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{"RekeyLimit 8M"}})
	c, _ := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), 0)
	s := ioSession(t, c)
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	sent, recvd := make(chan result, 1), make(chan result, 1)
	go func() {
		sum, err := streamSource(stdin, pushVolume, 3)
		if err == nil {
			err = stdin.Close()
		}
		sent <- result{sum, pushVolume, err}
	}()
	go func() {
		sum, n, err := sinkHash(stdout)
		recvd <- result{sum, n, err}
	}()
	timeout := time.After(3 * time.Minute)
	var rs [2]result
	for i, ch := range []chan result{sent, recvd} {
		select {
		case rs[i] = <-ch:
		case <-timeout:
			t.Fatalf("stalled (stats %+v)", c.Stats())
		}
		if rs[i].err != nil {
			t.Fatal(rs[i].err)
		}
	}
	if rs[0].sum != rs[1].sum || rs[1].n != pushVolume {
		t.Fatalf("cat returned %d bytes, not what was sent", rs[1].n)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Rekeys == 0 {
		t.Error("sshd never rekeyed")
	}
}

// The openWrites race: a rekey in flight while the Conn ends (the peer
// disconnects, a local Close, a write error) closed the round's writesOpen
// twice ("close of closed channel"). Each ending runs rekeyEndingRounds
// times under -race.
const rekeyEndingRounds = 1000

func rekeyEndingPair(t *testing.T) (pair, *failingWriter) {
	a, b := net.Pipe()
	fw := &failingWriter{Conn: a}
	p, cerr, serr := tryHandshake(fw, b, nil, nil, 20*time.Second)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: %v / %v", cerr, serr)
	}
	return p, fw
}

// failingWriter fails every Write once armed.
type failingWriter struct {
	net.Conn
	mu   sync.Mutex
	fail bool
}

func (f *failingWriter) arm() {
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
}

func (f *failingWriter) Write(b []byte) (int, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return 0, errors.New("injected write failure")
	}
	return f.Conn.Write(b)
}

func TestRekeyWhileEnding(t *testing.T) {
	rounds := rekeyEndingRounds
	if testing.Short() {
		rounds = 100
	}
	endings := map[string]func(p pair, fw *failingWriter){
		"peer-disconnect": func(p pair, _ *failingWriter) { p.server.Disconnect(DisconnectByApplication, "bye") },
		"local-close":     func(p pair, _ *failingWriter) { p.client.Close() },
		"write-error":     func(_ pair, fw *failingWriter) { fw.arm() },
	}
	for name, end := range endings {
		t.Run(name, func(t *testing.T) {
			for range rounds {
				p, fw := rekeyEndingPair(t)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				sub := p.client.Subscribe(ctx, KindKexStart)
				rekeyed := make(chan error, 2)
				go func() { rekeyed <- p.client.Rekey(ctx) }()
				go func() { rekeyed <- p.server.Rekey(ctx) }()
				// End while the exchange is in flight, at a varying stage.
				<-sub.Events()
				for range rand.IntN(400) {
					runtime.Gosched()
				}
				end(p, fw)
				p.client.Close()
				p.server.Close()
				for range 2 {
					if err := <-rekeyed; err != nil && ctx.Err() != nil {
						t.Fatalf("Rekey did not return after the Conn ended: %v", err)
					}
				}
				if p.client.Err() == nil || p.server.Err() == nil {
					t.Fatalf("still alive after Close: %v / %v", p.client.Err(), p.server.Err())
				}
				cancel()
			}
		})
	}
}

// TestWriteDeadlineWhileWriteLockHeld: a Channel.Write that waits for the
// write lock (another writer stuck on a full stream) ends at its deadline
// with os.ErrDeadlineExceeded, nothing framed, and the window it had taken
// given back.
func TestWriteDeadlineWhileWriteLockHeld(t *testing.T) {
	got := make(chan *Channel, 1)
	scfg := &ServerConfig{}
	scfg.ChannelHandlers = map[string]func(*NewChannel){"x": acceptInto(got)}
	p := handshakePair(t, nil, scfg)
	cch, sch := openPair(t, p, got, "x")
	before, _, _, _ := flowSnapshot(cch)
	p.client.writeSem <- struct{}{} // a writer stuck in Write
	cch.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := cch.Write([]byte("never framed"))
	<-p.client.writeSem
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %v, want os.ErrDeadlineExceeded", err)
	}
	if after, _, _, _ := flowSnapshot(cch); after.sent != before.sent {
		t.Fatalf("sent %d bytes before, %d after a write that framed nothing", before.sent, after.sent)
	}
	cch.SetWriteDeadline(time.Time{})
	if _, err := cch.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(sch, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
