package sshtap

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// textLike is compressible data: lines of words, as logs or source are.
func textLike(n int) []byte {
	var b bytes.Buffer
	words := strings.Fields("the quick brown fox jumps over the lazy dog while sshtap compresses every packet of this connection")
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[i%len(words)])
		if i%11 == 10 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// Data through a compressed connection, both methods, both directions,
// across a rekey: it arrives intact and the compressed side is smaller.
func TestCompression(t *testing.T) {
	for _, method := range []string{CompressionZlibSSH, CompressionZlib} {
		t.Run(method, func(t *testing.T) {
			ccfg := &Config{}
			ccfg.Compression = []string{method, CompressionNone}
			scfg := &ServerConfig{}
			scfg.Compression = []string{CompressionNone, CompressionZlibSSH, CompressionZlib}
			scfg.ChannelHandlers = map[string]func(*NewChannel){"echo": echoHandler(t)}
			p := handshakePair(t, ccfg, scfg)
			ctx := tctx(t)
			for _, c := range []*Conn{p.client, p.server} {
				a := c.Algorithms()
				if a.ClientToServer.Compression != method || a.ServerToClient.Compression != method {
					t.Fatalf("negotiated %+v", a)
				}
			}
			ch, err := p.client.OpenChannel(ctx, "echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			data := textLike(4 << 20)
			for round := range 2 {
				go func() { ch.Write(data) }()
				got := make([]byte, len(data))
				if _, err := io.ReadFull(ch, got); err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
					t.Fatalf("round %d: echo differs (%v)", round, err)
				}
				if round == 0 {
					if err := p.client.Rekey(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			ch.Close()
			st := p.client.Stats()
			if st.BytesWritten > uint64(len(data)) || st.CompressedOut == 0 || st.UncompressedOut < uint64(2*len(data)) ||
				st.CompressedIn == 0 || st.UncompressedIn < uint64(2*len(data)) {
				t.Errorf("stats %+v for 2 x %d bytes each way", st, len(data))
			}
			t.Logf("%s: %d payload bytes out as %d (ratio %.1f)", method, st.UncompressedOut, st.CompressedOut, float64(st.UncompressedOut)/float64(st.CompressedOut))
		})
	}
}

// A compressed payload that inflates beyond the maximum packet size ends
// the connection with a *CompressionError and DISCONNECT COMPRESSION_ERROR.
func TestCompressionBomb(t *testing.T) {
	ccfg := &Config{}
	ccfg.Compression = []string{CompressionZlib}
	scfg := &ServerConfig{}
	scfg.Compression = []string{CompressionZlib}
	scfg.MaxPacket = 64 << 10
	p := handshakePair(t, ccfg, scfg)
	ctx := tctx(t)
	// An IGNORE of 1 MiB of zeros compresses to about a kilobyte; the
	// client's own limit is larger, so it sends it.
	p.client.cfg.MaxPacket = 4 << 20
	if err := p.client.SendIgnore(ctx, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	err := waitEnd(t, p.server, 10*time.Second)
	var ce *CompressionError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "maximum packet size") {
		t.Fatalf("server ended with %v", err)
	}
	var de *DisconnectError
	if err := p.client.Wait(); !errors.As(err, &de) || de.Reason != DisconnectCompressionError {
		t.Fatalf("client ended with %v", err)
	}
}

// The decoder against compress/zlib's encoder: random and text-like data
// at every level, split into packets at flush points, decodes to what was
// compressed, one packet at a time.
func TestInflateMatchesZlib(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for level := -2; level <= 9; level++ {
		var in bytes.Buffer
		zw, err := zlib.NewWriterLevel(&in, level)
		if err != nil {
			t.Fatal(err)
		}
		f := newInflater(1 << 20)
		for i := range 40 {
			var p []byte
			switch i % 3 {
			case 0:
				p = textLike(rnd.IntN(70000))
			case 1:
				p = make([]byte, rnd.IntN(5000))
				for j := range p {
					p[j] = byte(rnd.Uint32())
				}
			default:
				p = bytes.Repeat([]byte{byte(i)}, rnd.IntN(40000))
			}
			in.Reset()
			zw.Write(p)
			zw.Flush()
			got, err := f.decompress(bytes.Clone(in.Bytes()))
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("level %d packet %d: %d bytes of %d, %v", level, i, len(got), len(p), err)
			}
		}
		f.close()
	}
}

// FuzzInflate feeds the decoder arbitrary bytes as packets: it fails
// cleanly, never produces more than its bound, and never panics.
func FuzzInflate(f *testing.F) {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write(textLike(3000))
	zw.Flush()
	f.Add(b.Bytes(), uint8(7))
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00}, uint8(1))
	f.Add([]byte{0x78, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		in := newInflater(4096)
		defer in.close()
		k := min(int(cut), len(data))
		for _, p := range [][]byte{data[:k], data[k:]} {
			out, err := in.decompress(p)
			if err != nil {
				var ce *CompressionError
				if !errors.As(err, &ce) {
					t.Fatalf("error %T %v", err, err)
				}
				return
			}
			if len(out) > 4096 {
				t.Fatalf("%d bytes out, bound 4096", len(out))
			}
		}
	})
}

// BenchmarkCompression: one channel's upload of text-like data (32 KiB
// writes over net.Pipe, aes128-gcm) without and with compression, and of
// random data with compression (the worst case). It reports the process's
// CPU seconds per GiB of payload (both ends, in this process) beside
// MB/s; the wire bytes per payload byte show the ratio.
//
//	go test -run '^$' -bench Compression -benchtime 256x .
func BenchmarkCompression(b *testing.B) {
	text := textLike(32 << 10)
	random := make([]byte, 32<<10)
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	for _, bc := range []struct {
		name   string
		method string
		data   []byte
	}{
		{"text/none", CompressionNone, text},
		{"text/zlib", CompressionZlib, text},
		{"random/zlib", CompressionZlib, random},
	} {
		b.Run(bc.name, func(b *testing.B) {
			got := make(chan *Channel, 1)
			ccfg, scfg := &Config{}, &ServerConfig{}
			for _, tc := range []*TransportConfig{&ccfg.TransportConfig, &scfg.TransportConfig} {
				tc.Ciphers = []string{"aes128-gcm@openssh.com"}
				tc.Compression = []string{bc.method}
			}
			scfg.ChannelHandlers = map[string]func(*NewChannel){"sink": acceptInto(got)}
			cEnd, sEnd := net.Pipe()
			p := handshakeOver(b, cEnd, sEnd, ccfg, scfg)
			cch, sch := openPair(b, p, got, "sink")
			drained := make(chan error, 1)
			go func() {
				_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{sch}, make([]byte, 64<<10))
				drained <- err
			}()
			b.SetBytes(int64(len(bc.data)))
			before := p.client.Stats().BytesWritten
			cpu0 := processCPU()
			b.ResetTimer()
			for range b.N {
				if _, err := cch.Write(bc.data); err != nil {
					b.Fatal(err)
				}
			}
			cch.CloseWrite()
			if err := <-drained; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			payload := float64(b.N) * float64(len(bc.data))
			b.ReportMetric((processCPU()-cpu0).Seconds()/(payload/(1<<30)), "cpu-s/GiB")
			b.ReportMetric(float64(p.client.Stats().BytesWritten-before)/payload, "wire-B/B")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
