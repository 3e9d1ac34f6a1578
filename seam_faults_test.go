package sshtap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/internal/wire"
)

// sfUnitStarts returns the start offsets of the units of a stream (lines up
// to the identification string, then packets; after NEWKEYS, packets whose
// length is in clear and that carry an encTag-byte tag) as far as they can
// be told from the bytes in all. If a unit's start is not in the result,
// every byte of all lies before it.
func sfUnitStarts(all []byte, encTag int) []int {
	starts := []int{0}
	pos := 0
	for {
		i := bytes.IndexByte(all[pos:], '\n')
		if i < 0 {
			return starts
		}
		line := all[pos : pos+i+1]
		pos += i + 1
		starts = append(starts, pos)
		if bytes.HasPrefix(line, []byte("SSH-")) {
			break
		}
	}
	enc := false
	for len(all)-pos >= 4 {
		size := 4 + int(binary.BigEndian.Uint32(all[pos:]))
		next := enc
		if enc {
			size += encTag
		} else if pos+5 < len(all) && all[pos+5] == wire.MsgNewKeys {
			next = true
		}
		// If the type byte is not here yet, neither is the next header,
		// so the loop ends before next matters.
		pos += size
		starts = append(starts, pos)
		enc = next
	}
	return starts
}

// sfCut is a stream end whose reads stop with io.EOF at a chosen point of
// the incoming stream, as if the peer had closed it there; writes go on
// (TCP half-close), so the reader's error is deterministic. The point is
// byte off of unit (see sfUnitStarts), or, after arm, off bytes past
// everything received so far.
type sfCut struct {
	net.Conn
	encTag    int
	unit, off int

	mu        sync.Mutex
	all       []byte
	delivered int
	cutAt     int // -1 while unknown
	armed     bool
}

func newSFCut(c net.Conn, encTag, unit, off int) *sfCut {
	return &sfCut{Conn: c, encTag: encTag, unit: unit, off: off, cutAt: -1}
}

// arm cuts off bytes after what has arrived so far (the unit is ignored).
func (c *sfCut) arm(off int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.off, c.unit = true, off, -1
}

func (c *sfCut) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.cutAt >= 0 && c.delivered >= c.cutAt {
			c.mu.Unlock()
			return 0, io.EOF
		}
		limit := len(c.all)
		if c.cutAt >= 0 {
			limit = min(limit, c.cutAt)
		}
		if c.delivered < limit {
			n := copy(b, c.all[c.delivered:limit])
			c.delivered += n
			c.mu.Unlock()
			return n, nil
		}
		c.mu.Unlock()
		var tmp [32 << 10]byte
		n, err := c.Conn.Read(tmp[:])
		c.mu.Lock()
		if c.armed && c.cutAt < 0 {
			c.cutAt = len(c.all) + c.off
		}
		c.all = append(c.all, tmp[:n]...)
		if c.cutAt < 0 && c.unit >= 0 {
			if st := sfUnitStarts(c.all, c.encTag); len(st) > c.unit {
				c.cutAt = st[c.unit] + c.off
			}
		}
		c.mu.Unlock()
		if n == 0 && err != nil {
			return 0, err
		}
	}
}

// sfWaitEnd waits for a Conn's goroutines to end.
func sfWaitEnd(t *testing.T, name string, c *Conn, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: goroutines still running %v after the failure", name, d)
		return nil
	}
}

type sfWant int

const (
	sfVersion    sfWant = iota // *VersionError
	sfVersionEOF               // *VersionError wrapping io.EOF
	sfEOF                      // io.EOF at a packet boundary, not a VersionError
	sfUnexpected               // io.ErrUnexpectedEOF: cut inside a packet
)

func sfCheck(t *testing.T, who string, err error, want sfWant) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", who)
	}
	if !strings.HasPrefix(err.Error(), "sshtap: ") {
		t.Errorf("%s: error %q is not an sshtap: message", who, err)
	}
	var ve *VersionError
	isVE := errors.As(err, &ve)
	switch want {
	case sfVersion:
		if !isVE {
			t.Errorf("%s: error %v, want a *VersionError", who, err)
		}
	case sfVersionEOF:
		if !isVE || !errors.Is(err, io.EOF) {
			t.Errorf("%s: error %v, want a *VersionError wrapping io.EOF", who, err)
		}
	case sfEOF:
		if isVE || !errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: error %v, want io.EOF (between packets)", who, err)
		}
	case sfUnexpected:
		if isVE || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: error %v, want io.ErrUnexpectedEOF (inside a packet)", who, err)
		}
	}
}

// TestSeamTruncatedStream cuts the real server's output (and, separately,
// the real client's) at many points of the handshake: every cut ends in a
// clear error on the side reading it, never a hang or panic.
func TestSeamTruncatedStream(t *testing.T) {
	// AES-GCM keeps the length in clear, so the cut can find the ends of
	// encrypted packets too.
	tc := TransportConfig{Ciphers: []string{cipher.AES128GCM}, KexAlgorithms: []string{"curve25519-sha256"}, RekeyInterval: -1}
	// Server to client: 0 version line, 1 KEXINIT, 2 ECDH reply, 3 NEWKEYS,
	// 4 EXT_INFO, 5 SERVICE_ACCEPT. Client to server: 0 version line,
	// 1 KEXINIT, 2 ECDH init, 3 NEWKEYS, then encrypted.
	cases := []struct {
		side      string // whose input is cut
		unit, off int
		want      sfWant
	}{
		{"client", 0, 0, sfVersionEOF},
		{"client", 0, 5, sfVersion},
		{"client", 0, 19, sfVersion}, // the LF is missing
		{"client", 1, 0, sfEOF},
		{"client", 1, 2, sfUnexpected},
		{"client", 1, 40, sfUnexpected},
		{"client", 2, 0, sfEOF},
		{"client", 2, 30, sfUnexpected},
		{"client", 3, 0, sfEOF},
		{"client", 3, 8, sfUnexpected},
		{"client", 4, 0, sfEOF},
		{"client", 4, 10, sfUnexpected},
		{"client", 5, 0, sfEOF},
		{"client", 5, 7, sfUnexpected},
		{"server", 0, 0, sfVersionEOF},
		{"server", 0, 9, sfVersion},
		{"server", 1, 0, sfEOF},
		{"server", 1, 100, sfUnexpected},
		{"server", 2, 0, sfEOF},
		{"server", 2, 3, sfUnexpected},
		{"server", 3, 0, sfEOF},
		{"server", 3, 12, sfUnexpected},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/unit%d+%d", c.side, c.unit, c.off), func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			var crw, srw io.ReadWriter = a, b
			if c.side == "client" {
				crw = newSFCut(a, 16, c.unit, c.off)
			} else {
				srw = newSFCut(b, 16, c.unit, c.off)
			}
			p, cerr, serr := tryHandshake(crw, srw, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc}, 20*time.Second)
			// Both Conns exist whatever the errors (tryHandshake never
			// returns nil ones); the errors are what this test checks.
			t.Cleanup(func() { p.client.Close(); p.server.Close() })
			err, other := cerr, serr
			if c.side == "server" {
				err, other = serr, cerr
			}
			sfCheck(t, c.side, err, c.want)
			if other == nil {
				// Cut late enough, the other side may finish its handshake;
				// it must still see the end of the connection.
				other = sfWaitEnd(t, "other side", map[string]*Conn{"client": p.server, "server": p.client}[c.side], 10*time.Second)
			}
			if other == nil {
				t.Errorf("other side did not fail")
			}
			for _, x := range []*Conn{p.client, p.server} {
				sfWaitEnd(t, "conn", x, 10*time.Second)
			}
		})
	}
}

// TestSeamTruncatedAfterHandshake cuts the server's output after the
// handshake, at a packet boundary and inside a packet.
func TestSeamTruncatedAfterHandshake(t *testing.T) {
	tc := TransportConfig{Ciphers: []string{cipher.AES128GCM}, RekeyInterval: -1}
	for _, c := range []struct {
		off  int
		want sfWant
	}{{0, sfEOF}, {1, sfUnexpected}, {30, sfUnexpected}} {
		t.Run(fmt.Sprint(c.off), func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			cut := newSFCut(a, 16, 1<<30, 0)
			p := handshakeOver(t, cut, b, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
			sub := p.client.Subscribe(context.Background(), KindClosed)
			cut.arm(c.off)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The server's write may fail: the client, cut off in the
			// middle of it, hangs up before net.Pipe took all of it (how
			// much one client read takes depends on its read buffer's
			// state).
			sent := make(chan error, 1)
			go func() { sent <- p.server.SendIgnore(ctx, bytes.Repeat([]byte("x"), 200)) }()
			err := sfWaitEnd(t, "client", p.client, 10*time.Second)
			<-sent
			sfCheck(t, "client", err, c.want)
			evs := collect(t, sub, 5*time.Second, func(e Event) bool { _, ok := e.(*ClosedEvent); return ok })
			if ce := evs[len(evs)-1].(*ClosedEvent); ce.Err != err {
				t.Errorf("ClosedEvent.Err = %v, want the Conn's error %v", ce.Err, err)
			}
			if !errors.Is(p.client.SendIgnore(ctx, nil), err) {
				t.Errorf("SendIgnore after the failure does not return the sticky error")
			}
		})
	}
}

// sfWantDeadline checks a handshake that a stalled peer made time out.
func sfWantDeadline(t *testing.T, c *Conn, err error, start time.Time, timeout time.Duration) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handshake error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el < timeout || el > timeout+5*time.Second {
		t.Errorf("handshake returned after %v with a %v deadline", el, timeout)
	}
	sfWaitEnd(t, "conn", c, 10*time.Second)
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want the deadline error", c.Err())
	}
}

// TestSeamStalledPeer: a peer that stops answering cannot hold the
// handshake beyond its context (x/crypto/ssh's NewClientConn takes none and
// waits on such a peer until the connection's own deadline, if any).
func TestSeamStalledPeer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	peers := []struct {
		name string
		// run plays the peer on its end of the pipe until the end is closed.
		run    func(t *testing.T, end net.Conn) error
		client bool // the sshtap side under test is a client
	}{
		{"reads-nothing", func(t *testing.T, end net.Conn) error { return nil }, true},
		{"reads-never-answers", func(t *testing.T, end net.Conn) error {
			_, err := io.Copy(io.Discard, end)
			return err
		}, true},
		{"version-only", func(t *testing.T, end net.Conn) error {
			if _, err := end.Write([]byte("SSH-2.0-stall\r\n")); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, end)
			return err
		}, true},
		{"stalls-mid-kex", func(t *testing.T, end net.Conn) error {
			p := hpNew(t, end, true)
			if err := p.write(append(p.versionLine(), p.packet(p.kexInitPayload())...)); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, end)
			return err
		}, true},
		{"server/reads-nothing", func(t *testing.T, end net.Conn) error { return nil }, false},
		{"server/stalls-after-kexinit", func(t *testing.T, end net.Conn) error {
			p := hpNew(t, end, false)
			if err := p.write(append(p.versionLine(), p.packet(p.kexInitPayload())...)); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, end)
			return err
		}, false},
	}
	for _, pc := range peers {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			testKeys(t)
			a, b := net.Pipe()
			defer b.Close()
			peerDone := hpGo(func() error { return pc.run(t, b) })
			var c *Conn
			if pc.client {
				c = ClientConn(a, &Config{NoAuth: true, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
			} else {
				c = ServerConn(a, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}})
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			var err error
			if pc.client {
				err = c.Handshake(ctx)
			} else {
				err = serverKeyed(ctx, c)
			}
			sfWantDeadline(t, c, err, start, timeout)
			b.Close()
			peerDone()
		})
	}
}

// TestSeamFuncReadWriterStalled: a Recv that would block forever is
// interrupted when the handshake's context ends; NewClientConn closes the
// adapter (and so calls CloseFunc) on failure.
func TestSeamFuncReadWriterStalled(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, client := range []bool{true, false} {
		t.Run(map[bool]string{true: "client", false: "server"}[client], func(t *testing.T) {
			t.Parallel()
			testKeys(t)
			var sent atomic.Int64
			var closed atomic.Int32
			f := &FuncReadWriter{
				Send:      func(b []byte) (int, error) { sent.Add(int64(len(b))); return len(b), nil },
				Recv:      func(b []byte) (int, error) { return 0, ErrWouldBlock },
				CloseFunc: func() error { closed.Add(1); return nil },
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			var c *Conn
			var err error
			if client {
				c = ClientConn(f, &Config{NoAuth: true, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
				err = c.Handshake(ctx)
				// NewClientConn's promise, through the same path.
				if _, err2 := NewClientConn(ctx, &FuncReadWriter{Send: f.Send, Recv: f.Recv, CloseFunc: f.CloseFunc}, &Config{NoAuth: true, HostKeyCallback: ssh.InsecureIgnoreHostKey()}); !errors.Is(err2, context.DeadlineExceeded) {
					t.Errorf("NewClientConn error = %v", err2)
				}
			} else {
				c = ServerConn(f, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}})
				err = c.Handshake(ctx)
			}
			sfWantDeadline(t, c, err, start, timeout)
			if sent.Load() == 0 {
				t.Errorf("nothing was sent (the identification string should have been)")
			}
			want := int32(1)
			if client {
				want = 2
			}
			if n := closed.Load(); n != want {
				t.Errorf("CloseFunc called %d times, want %d (once per failed Conn)", n, want)
			}
		})
	}
}

// sfHalf is a stream that yields data and then io.EOF, and swallows
// writes: a peer that sent data and closed its side.
type sfHalf struct {
	r io.Reader
}

func (h *sfHalf) Read(b []byte) (int, error)  { return h.r.Read(b) }
func (h *sfHalf) Write(b []byte) (int, error) { return len(b), nil }

// TestSeamPeerClosesAfterVersion: the peer sends its identification string
// and hangs up: the version exchange succeeded, so the error is the
// stream's end, not a version error.
func TestSeamPeerClosesAfterVersion(t *testing.T) {
	for _, client := range []bool{true, false} {
		name := map[bool]string{true: "client", false: "server"}[client]
		t.Run(name, func(t *testing.T) {
			testKeys(t)
			rw := &sfHalf{r: strings.NewReader("SSH-2.0-hangup\r\n")}
			var c *Conn
			if client {
				c = ClientConn(rw, &Config{NoAuth: true, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
			} else {
				c = ServerConn(rw, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Handshake(ctx)
			sfCheck(t, name, err, sfEOF)
			if !strings.Contains(err.Error(), "closed by peer") {
				t.Errorf("error %q does not say the peer closed", err)
			}
			if got := c.ServerVersion(); client && got != "SSH-2.0-hangup" {
				t.Errorf("ServerVersion() = %q", got)
			}
			sfWaitEnd(t, name, c, 10*time.Second)
		})
	}
	t.Run("pipe", func(t *testing.T) {
		// Over a net.Pipe the close also fails our writes; either way it is
		// the stream's end, not a version error.
		a, b := net.Pipe()
		go func() {
			b.Write([]byte("SSH-2.0-hangup\r\n"))
			b.Close()
		}()
		c := ClientConn(a, &Config{NoAuth: true, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.Handshake(ctx)
		var ve *VersionError
		if errors.As(err, &ve) || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)) {
			t.Errorf("error = %v, want the stream's end", err)
		}
		sfWaitEnd(t, "client", c, 10*time.Second)
	})
}

// sfFlaky adapts one end of a net.Pipe into a FuncReadWriter whose Send and
// Recv randomly would block, take only part of a write or return a short
// read.
func sfFlaky(end net.Conn, seed uint64) *FuncReadWriter {
	var sendRng, recvRng = mrand.New(mrand.NewPCG(seed, 1)), mrand.New(mrand.NewPCG(seed, 2))
	return &FuncReadWriter{
		Backoff: time.Microsecond,
		Send: func(b []byte) (int, error) {
			switch sendRng.IntN(4) {
			case 0:
				return 0, ErrWouldBlock
			case 1: // short write, "more later"
				n, err := end.Write(b[:1+sendRng.IntN(len(b))])
				if err == nil {
					err = ErrWouldBlock
				}
				return n, err
			case 2:
				return end.Write(b[:1+sendRng.IntN(len(b))])
			}
			return end.Write(b)
		},
		Recv: func(b []byte) (int, error) {
			switch recvRng.IntN(4) {
			case 0:
				return 0, ErrWouldBlock
			case 1:
				return 0, nil // treated as would block
			case 2: // short read, possibly with a would-block hint
				n, err := end.Read(b[:1+recvRng.IntN(len(b))])
				if err == nil && recvRng.IntN(2) == 0 {
					err = ErrWouldBlock
				}
				return n, err
			}
			return end.Read(b)
		},
		CloseFunc: end.Close,
	}
}

// TestSeamFuncReadWriterFlaky: a full handshake, rekeys from both sides and
// IGNORE traffic over FuncReadWriters that would block at random and move
// bytes in random pieces.
func TestSeamFuncReadWriterFlaky(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			p := handshakeOver(t, sfFlaky(a, seed), sfFlaky(b, seed+100), &Config{NoAuth: true}, &ServerConfig{})
			mxTraffic(t, p, "flaky", 5)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ck, sk := rkCountKex(ctx, p.client), rkCountKex(ctx, p.server)
			defer ck.close()
			defer sk.close()
			for i, c := range []*Conn{p.client, p.server} {
				if err := c.Rekey(ctx); err != nil {
					t.Fatal(err)
				}
				// Rekey joins an exchange in flight: let both sides finish
				// this one before starting the next.
				ck.waitFor(t, "client", i+1, 20*time.Second)
				sk.waitFor(t, "server", i+1, 20*time.Second)
			}
			mxTraffic(t, p, "flaky after rekeys", 5)
			if _, err := p.client.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if r, s := p.client.Stats().Rekeys, p.server.Stats().Rekeys; r != 2 || s != 2 {
				t.Errorf("Stats().Rekeys = %d (client), %d (server), want 2", r, s)
			}
		})
	}
}
