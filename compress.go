package sshtap

// Payload compression: "zlib" (RFC 4253 §6.2) and "zlib@openssh.com"
// (OpenSSH PROTOCOL §1.3: the same, delayed until user authentication
// succeeded). Each direction is one zlib stream from one key exchange to
// the next, flushed at the end of every packet: RFC 4253 §6.2 "The
// compression context is initialized after each key exchange, and is
// passed from one packet to the next".
//
// The inflater runs a DEFLATE decoder (inflate.go) as a coroutine
// (iter.Pull) fed one packet at a time: the decoder asks for more input
// only once it has produced everything the packet's bytes encode, whatever
// the sender's flush mode, and nothing waits on the network.

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
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
	defer func() {
		// A decoder bug must not take the process down with it.
		if r := recover(); r != nil {
			f.err = &CompressionError{Msg: fmt.Sprint("decoder failure: ", r)}
		}
	}()
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

// authSucceeded reports whether zlib@openssh.com may run: OpenSSH
// PROTOCOL §1.3 starts it "after the server has sent a
// SSH_MSG_USERAUTH_SUCCESS", the client once it has received it. The
// server goes by the success having been sealed (authSent), not by the
// Conn's authenticated flag, which is set a moment before.
func (c *Conn) authSucceeded() bool {
	if c.isClient {
		return c.authenticated.Load()
	}
	return c.authSent.Load()
}

// Write side (writeSem held).

// setWriteCompression applies the method negotiated for our direction
// when our NEWKEYS goes out. RFC 4253 §6.2: "The compression context is
// initialized after each key exchange": every method starts a new stream.
func (c *Conn) setWriteCompression(method string) {
	c.wz, c.wzDelayed = nil, false
	switch {
	case method == CompressionZlib, method == CompressionZlibSSH && c.authSucceeded():
		c.wz = newDeflater()
	case method == CompressionZlibSSH:
		c.wzDelayed = true
	}
}

// appendPacket seals payload onto wbuf, compressed when compression is on
// for our direction. writeSem held.
func (c *Conn) appendPacket(payload []byte) {
	t := payload[0]
	if c.wzDelayed && c.isClient && c.authenticated.Load() {
		// The client compresses once it has received USERAUTH_SUCCESS
		// (the transport goroutine marked it).
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
	if !c.isClient && t == wire.MsgUserAuthSuccess {
		// The server compresses what follows its USERAUTH_SUCCESS, and
		// decompresses what the client sends once it has it: the transport
		// goroutine starts with the next packet it reads (the client sends
		// nothing between its last request and the success). Marked
		// whatever our direction's method, for the client's.
		c.authSent.Store(true)
		if c.wzDelayed {
			c.wzDelayed = false
			c.wz = newDeflater()
		}
	}
}

// Read side (transport goroutine).

// setReadCompression applies the method negotiated for the peer's
// direction once its NEWKEYS arrived, with a new stream (RFC 4253 §6.2).
func (c *Conn) setReadCompression(method string) {
	if c.rz != nil {
		c.rz.close()
	}
	c.rz, c.rzDelayed = nil, false
	switch {
	case method == CompressionZlib, method == CompressionZlibSSH && c.authSucceeded():
		c.rz = newInflater(c.cfg.maxPacket())
	case method == CompressionZlibSSH:
		c.rzDelayed = true
	}
}

// inflate returns the payload of a packet read, decompressing it when
// compression is on for the peer's direction.
func (c *Conn) inflate(p []byte) ([]byte, error) {
	if c.rzDelayed && c.authSucceeded() {
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
