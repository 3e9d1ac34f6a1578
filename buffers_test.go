package sshtap

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"sshtap/packet"
)

// chunkReader serves its chunks, one Read per chunk at most (a chunk
// larger than the Read's buffer takes several), and records the size of
// every buffer it was given.
type chunkReader struct {
	chunks [][]byte
	sizes  []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func (r *chunkReader) Write(p []byte) (int, error) { return len(p), nil }

// TestReadBufferFollowsTraffic: reads that fill the read buffer double it
// up to maxReadBuffer; once traffic is light again (a drained buffer after
// a short read), the Conn waits in Read with its small buffer.
func TestReadBufferFollowsTraffic(t *testing.T) {
	var pw packet.Writer // "none" cipher, as before the first NEWKEYS
	ignore := func(n int) []byte {
		return pw.AppendPacket(nil, append([]byte{2, 0, 0, 0, 0}, make([]byte, n)...))
	}
	var bulk []byte
	for range 64 {
		bulk = append(bulk, ignore(16<<10)...)
	}
	r := &chunkReader{chunks: [][]byte{bulk, ignore(100)}}
	c := newConn(r, &TransportConfig{})
	for i := range 65 {
		p, _, err := c.readPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		want := 16<<10 + 5
		if i == 64 {
			want = 105
		}
		if len(p) != want {
			t.Fatalf("packet %d: %d bytes, want %d", i, len(p), want)
		}
	}
	if _, _, err := c.readPacket(); err == nil {
		t.Fatal("no error at the end of the stream")
	}
	if r.sizes[0] != smallReadBuffer {
		t.Errorf("first read into %d bytes, want the small buffer (%d)", r.sizes[0], smallReadBuffer)
	}
	if m := slices.Max(r.sizes); m != maxReadBuffer {
		t.Errorf("largest read buffer %d, want %d after reads that filled it", m, maxReadBuffer)
	}
	// The last Read (the one that met EOF) came after the short read of
	// the IGNORE: back to the small buffer.
	if last := r.sizes[len(r.sizes)-1]; last != smallReadBuffer {
		t.Errorf("read buffer once traffic got light: %d bytes, want %d (reads: %v)", last, smallReadBuffer, r.sizes)
	}
}

// TestWriteBufferDroppedWhenLight: after two short writes in a row, a
// write buffer that grew for long ones is given up; one short write between
// long ones (a window adjustment) keeps it, and a small one is kept.
func TestWriteBufferDroppedWhenLight(t *testing.T) {
	c := newConn(&chunkReader{}, &TransportConfig{})
	write := func(n, capacity int) {
		t.Helper()
		if cap(c.wbuf) < capacity {
			c.wbuf = make([]byte, 0, capacity)
		}
		c.wbuf = append(c.wbuf[:0], bytes.Repeat([]byte{1}, n)...)
		if err := c.writeOut(); err != nil {
			t.Fatal(err)
		}
	}
	write(60<<10, 64<<10)
	write(100, 0)
	if cap(c.wbuf) != 64<<10 {
		t.Fatalf("write buffer dropped after one short write between long ones")
	}
	write(60<<10, 0)
	write(100, 0)
	write(100, 0)
	if c.wbuf != nil {
		t.Errorf("write buffer of %d bytes kept after two short writes", cap(c.wbuf))
	}
	write(100, maxIdleBuffer)
	write(100, 0)
	write(100, 0)
	if cap(c.wbuf) != maxIdleBuffer {
		t.Errorf("small write buffer dropped")
	}
}

// writeCounter counts the Writes on a stream.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	return w.Conn.Write(p)
}

// uploadWrites writes size bytes with one Write to the stdin of a session
// whose server allows packets of maxPacket bytes and counts them, and
// returns the number of Writes on the client's stream that the Write took.
func uploadWrites(t *testing.T, maxPacket, size int) int64 {
	t.Helper()
	a, b := net.Pipe()
	cw := &writeCounter{Conn: a}
	p := handshakeOver(t, cw, b, nil, &ServerConfig{
		TransportConfig: TransportConfig{ChannelMaxPacket: maxPacket},
		SessionHandler: func(s *ServerSession) {
			n, _ := io.Copy(io.Discard, s)
			fmt.Fprint(s, n)
			s.Exit(0)
		},
	})
	s, err := p.client.NewSession(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Start("count"); err != nil {
		t.Fatal(err)
	}
	before := cw.writes.Load()
	if n, err := in.Write(make([]byte, size)); n != size || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	writes := cw.writes.Load() - before
	in.Close()
	if err := s.Wait(); err != nil || out.String() != fmt.Sprint(size) {
		t.Fatalf("server read %q bytes, %v", out.String(), err)
	}
	return writes
}

// TestLargeWriteBatched: one large Channel.Write is framed into packets of
// the peer's maximum packet size and written with one Write on the stream
// per maxWriteBatch bytes, not one per packet.
func TestLargeWriteBatched(t *testing.T) {
	const size = 4 << 20
	writes := uploadWrites(t, 16<<10, size)
	// 256 packets of 16 KiB; at most one Write per 256 KiB, plus the
	// window adjustments and other queued messages that go with them.
	if max := int64(size/(256<<10)) * 2; writes > max {
		t.Fatalf("%d Writes on the stream for %d packets of data, want at most %d", writes, size/(16<<10), max)
	}
}

// TestTinyMaxPacketBatches: a peer that allows 1-byte packets gets them in
// batches of maxBatchPackets per Write, not one Write framing a whole
// batch's bytes as tens of thousands of packets at once.
func TestTinyMaxPacketBatches(t *testing.T) {
	const size = 16 << 10
	if writes := uploadWrites(t, 1, size); writes < size/16 {
		t.Fatalf("%d Writes on the stream for %d one-byte packets: more than 16 packets per Write", writes, size)
	}
}
