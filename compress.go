package sshtap

// Payload compression: "zlib" (RFC 4253 §6.2) and "zlib@openssh.com"
// (OpenSSH PROTOCOL §1.3: the same, delayed until user authentication
// succeeded). Each direction is one zlib stream for the life of the
// connection (key exchanges do not restart it), flushed at the end of
// every packet: RFC 4253 §6.2 "the compression context is initialized
// after each key exchange, and is passed from one packet to the next".
//
// The inflater runs a DEFLATE decoder (inflate.go) as a coroutine
// (iter.Pull) fed one packet at a time: the decoder asks for more input
// only once it has produced everything the packet's bytes encode, whatever
// the sender's flush mode, and nothing waits on the network.

import (
	"bytes"
	"compress/zlib"
	"errors"
	"iter"

	"sshtap/internal/wire"
)

// Compression method names.
const (
	CompressionNone    = "none"
	CompressionZlib    = "zlib"
	CompressionZlibSSH = "zlib@openssh.com" // delayed until authenticated
)

// CompressionError is the error of a Conn whose peer sent a compressed
// payload that does not decompress, or that inflates beyond the maximum
// packet size.
type CompressionError struct {
	Msg string
	Err error
}

func (e *CompressionError) Error() string {
	if e.Err != nil {
		return "sshtap: decompression: " + e.Msg + ": " + e.Err.Error()
	}
	return "sshtap: decompression: " + e.Msg
}

func (e *CompressionError) Unwrap() error { return e.Err }

// deflater compresses one direction's payloads.
type deflater struct {
	zw  *zlib.Writer
	out bytes.Buffer
}

func newDeflater() *deflater {
	d := &deflater{}
	d.zw, _ = zlib.NewWriterLevel(&d.out, 6) // OpenSSH's level
	return d
}

// compress returns payload compressed, in a buffer reused by the next call.
func (d *deflater) compress(payload []byte) []byte {
	d.out.Reset()
	d.zw.Write(payload)
	d.zw.Flush() // Z_SYNC_FLUSH: the packet carries everything so far
	return d.out.Bytes()
}

// inflater decompresses one direction's payloads.
type inflater struct {
	in    []byte // the packet being decompressed; consumed by ReadByte
	out   []byte // its payload
	max   int
	err   error
	yield func(struct{}) bool
	next  func() (struct{}, bool)
	stop  func()
}

func newInflater(max int) *inflater {
	f := &inflater{max: max}
	f.next, f.stop = iter.Pull(f.run)
	return f
}

// errInflaterStopped ends the coroutine when the Conn ends.
var errInflaterStopped = errors.New("sshtap: inflater stopped")

// run is the coroutine: it inflates the stream, yielding whenever it needs
// the next packet.
func (f *inflater) run(yield func(struct{}) bool) {
	f.yield = yield
	err := f.zlibHeader()
	if err == nil {
		d := &decoder{src: f}
		err = d.run()
	}
	if !errors.Is(err, errInflaterStopped) {
		f.err = err
	}
}

// zlibHeader checks the stream's RFC 1950 header: deflate, a 32 KiB
// window at most, no preset dictionary (which SSH never uses).
func (f *inflater) zlibHeader() error {
	cmf, err := f.ReadByte()
	if err != nil {
		return err
	}
	flg, err := f.ReadByte()
	if err != nil {
		return err
	}
	switch {
	case cmf&0x0f != 8, cmf>>4 > 7:
		return errors.New("not a deflate stream")
	case (uint16(cmf)<<8|uint16(flg))%31 != 0:
		return errors.New("bad zlib header check")
	case flg&0x20 != 0:
		return errors.New("zlib preset dictionary")
	}
	return nil
}

// ReadByte feeds the decoder the packet's bytes; at the end of them it
// hands control back until the next packet.
func (f *inflater) ReadByte() (byte, error) {
	if err := f.wait(); err != nil {
		return 0, err
	}
	b := f.in[0]
	f.in = f.in[1:]
	return b, nil
}

func (f *inflater) wait() error {
	for len(f.in) == 0 {
		if !f.yield(struct{}{}) {
			return errInflaterStopped
		}
	}
	return nil
}

// decompress returns the payload p carries, valid until the next call.
func (f *inflater) decompress(p []byte) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.in, f.out = p, f.out[:0]
	if _, ok := f.next(); !ok && f.err == nil {
		f.err = errStreamEnd
	}
	if f.err != nil {
		var ce *CompressionError
		if !errors.As(f.err, &ce) {
			f.err = &CompressionError{Msg: "corrupt zlib stream", Err: f.err}
		}
		return nil, f.err
	}
	if len(f.in) > 0 {
		f.err = &CompressionError{Msg: "data after the end of the zlib stream"}
		return nil, f.err
	}
	return f.out, nil
}

// close ends the coroutine.
func (f *inflater) close() { f.stop() }

// compressionMethods is the proposal's list: Compression, or for a server
// "none,zlib@openssh.com" as sshd offers it (compression when a client
// asks), for a client "none".
func (c *TransportConfig) compressionMethods(isClient bool) []string {
	if len(c.Compression) > 0 {
		return c.Compression
	}
	if isClient {
		return []string{CompressionNone}
	}
	return []string{CompressionNone, CompressionZlibSSH}
}

// Write side (writeSem held).

// setWriteCompression applies the method negotiated for our direction
// when our NEWKEYS goes out.
func (c *Conn) setWriteCompression(method string) {
	c.wzDelayed = false
	switch method {
	case CompressionZlib:
		if c.wz == nil {
			c.wz = newDeflater()
		}
	case CompressionZlibSSH:
		if c.wz == nil {
			if c.authenticated.Load() {
				c.wz = newDeflater()
			} else {
				c.wzDelayed = true
			}
		}
	default:
		c.wz = nil
	}
}

// appendPacket seals payload onto wbuf, compressed when compression is on
// for our direction. writeSem held.
func (c *Conn) appendPacket(payload []byte) {
	t := payload[0]
	if c.wzDelayed && c.isClient && c.authenticated.Load() {
		// OpenSSH PROTOCOL §1.3: the client compresses once it has
		// received USERAUTH_SUCCESS (the transport goroutine marked it).
		c.wzDelayed = false
		c.wz = newDeflater()
	}
	if c.wz != nil {
		n := len(payload)
		payload = c.wz.compress(payload)
		c.zOut[0].Add(uint64(n))
		c.zOut[1].Add(uint64(len(payload)))
	}
	c.wbuf = c.pw.AppendPacket(c.wbuf, payload)
	c.packetsOut.Add(1)
	if c.wzDelayed && !c.isClient && t == wire.MsgUserAuthSuccess {
		// The server compresses what follows its USERAUTH_SUCCESS. The
		// client's packets after it come compressed too: the transport
		// goroutine decompresses from the next one it reads (the client
		// sends nothing between its last request and the success).
		c.wzDelayed = false
		c.wz = newDeflater()
		c.rzStart.Store(true)
	}
}

// Read side (transport goroutine).

// setReadCompression applies the method negotiated for the peer's
// direction once its NEWKEYS arrived.
func (c *Conn) setReadCompression(method string) {
	c.rzDelayed = false
	switch method {
	case CompressionZlib:
		if c.rz == nil {
			c.rz = newInflater(c.cfg.maxPacket())
		}
	case CompressionZlibSSH:
		if c.rz == nil {
			if c.authenticated.Load() {
				c.rz = newInflater(c.cfg.maxPacket())
			} else {
				c.rzDelayed = true
			}
		}
	default:
		if c.rz != nil {
			c.rz.close()
			c.rz = nil
		}
	}
}

// inflate returns the payload of a packet read, decompressing it when
// compression is on for the peer's direction.
func (c *Conn) inflate(p []byte) ([]byte, error) {
	if c.rzDelayed && (c.rzStart.Load() || c.isClient && c.authenticated.Load()) {
		c.rzDelayed = false
		c.rz = newInflater(c.cfg.maxPacket())
	}
	if c.rz == nil {
		return p, nil
	}
	out, err := c.rz.decompress(p)
	if err != nil {
		return nil, c.abort(err, DisconnectCompressionError, err.Error())
	}
	c.zIn[0].Add(uint64(len(out)))
	c.zIn[1].Add(uint64(len(p)))
	return out, nil
}
