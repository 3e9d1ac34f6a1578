package sshtap

// A DEFLATE decoder (RFC 1951) for the peer's compressed payloads, written
// for the packet stream: it emits every byte as soon as it is decoded, so a
// packet's payload is complete when the decoder asks for the next packet's
// bytes, whatever block the sender's flush left open (OpenSSH flushes with
// Z_PARTIAL_FLUSH, an empty fixed-code block whose last bits travel in the
// next packet). compress/flate keeps a Huffman block's output until the
// block ends or its window fills, which such a flush never makes it do.
//
// It runs on the inflater's coroutine: readBits blocks (yields) for input.

import (
	"errors"
	"fmt"
)

const windowSize = 1 << 15 // RFC 1951 §2: distances up to 32768

// huffman is a canonical Huffman code (RFC 1951 §3.2.2): how many codes of
// each length, and the symbols in code order.
type huffman struct {
	count  [16]uint16
	symbol []uint16
}

// build makes the code from the code lengths of symbols 0..len(lengths)-1.
// It refuses over-subscribed sets; incomplete ones are allowed (RFC 1951
// permits a single distance code), and decoding a missing code fails.
func (h *huffman) build(lengths []uint8) error {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return errors.New("over-subscribed Huffman code")
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	if cap(h.symbol) < len(lengths) {
		h.symbol = make([]uint16, len(lengths))
	}
	h.symbol = h.symbol[:len(lengths)]
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	return nil
}

// RFC 1951 §3.2.5: lengths 3..258 and distances 1..32768 as a base and a
// number of extra bits.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// RFC 1951 §3.2.7: the order in which code length code lengths come.
	clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// fixedLit and fixedDist are the fixed codes (RFC 1951 §3.2.6).
var fixedLit, fixedDist = func() (*huffman, *huffman) {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	lit, dist := &huffman{}, &huffman{}
	lit.build(l[:])
	dist.build(d[:])
	return lit, dist
}()

// decoder is the state of one DEFLATE stream.
type decoder struct {
	src    *inflater
	bits   uint32
	nbits  uint
	window [windowSize]byte
	wpos   int
	filled bool // the window has wrapped: every distance up to 32768 is valid

	lit, dist, cl huffman
	lengths       [320]uint8
}

func (d *decoder) need(n uint) error {
	for d.nbits < n {
		b, err := d.src.ReadByte()
		if err != nil {
			return err
		}
		d.bits |= uint32(b) << d.nbits
		d.nbits += 8
	}
	return nil
}

func (d *decoder) readBits(n uint) (uint32, error) {
	if err := d.need(n); err != nil {
		return 0, err
	}
	v := d.bits & (1<<n - 1)
	d.bits >>= n
	d.nbits -= n
	return v, nil
}

// decode reads one symbol of h (codes are packed starting with their most
// significant bit, RFC 1951 §3.1.1).
func (d *decoder) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := d.readBits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		n := int(h.count[l])
		if code-first < n {
			return int(h.symbol[index+code-first]), nil
		}
		index += n
		first = (first + n) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

func (d *decoder) emit(b byte) error {
	d.window[d.wpos] = b
	d.wpos++
	if d.wpos == windowSize {
		d.wpos, d.filled = 0, true
	}
	f := d.src
	if len(f.out) >= f.max {
		return errInflatesTooFar(f.max)
	}
	f.out = append(f.out, b)
	return nil
}

func errInflatesTooFar(max int) error {
	return &CompressionError{Msg: fmt.Sprintf("a packet inflates beyond the maximum packet size (%d bytes)", max)}
}

// run decodes blocks until the stream ends or fails.
func (d *decoder) run() error {
	for {
		hdr, err := d.readBits(3)
		if err != nil {
			return err
		}
		switch hdr >> 1 {
		case 0:
			err = d.stored()
		case 1:
			err = d.codes(fixedLit, fixedDist)
		case 2:
			if err = d.dynamic(); err == nil {
				err = d.codes(&d.lit, &d.dist)
			}
		default:
			err = errors.New("invalid block type 3")
		}
		if err != nil {
			return err
		}
		if hdr&1 == 1 {
			return errStreamEnd
		}
	}
}

var errStreamEnd = errors.New("end of the compressed stream")

// stored copies a stored block (RFC 1951 §3.2.4).
func (d *decoder) stored() error {
	d.bits >>= d.nbits % 8 // to a byte boundary
	d.nbits -= d.nbits % 8
	v, err := d.readBits(32)
	if err != nil {
		return err
	}
	n, nn := v&0xffff, v>>16
	if n != ^nn&0xffff {
		return errors.New("stored block length check failed")
	}
	for range n {
		b, err := d.readBits(8)
		if err != nil {
			return err
		}
		if err := d.emit(byte(b)); err != nil {
			return err
		}
	}
	return nil
}

// dynamic reads the code definitions of a dynamic block (RFC 1951 §3.2.7).
func (d *decoder) dynamic() error {
	v, err := d.readBits(14)
	if err != nil {
		return err
	}
	nlit, ndist, nclen := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlit > 286 || ndist > 30 {
		return errors.New("too many length or distance codes")
	}
	var cl [19]uint8
	for i := range nclen {
		b, err := d.readBits(3)
		if err != nil {
			return err
		}
		cl[clOrder[i]] = uint8(b)
	}
	if err := d.cl.build(cl[:]); err != nil {
		return err
	}
	lengths := d.lengths[:nlit+ndist]
	for i := 0; i < len(lengths); {
		sym, err := d.decode(&d.cl)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep uint32
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return errors.New("repeat with no previous length")
			}
			val = lengths[i-1]
			rep, err = d.readBits(2)
			rep += 3
		case 17:
			rep, err = d.readBits(3)
			rep += 3
		default:
			rep, err = d.readBits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > len(lengths) {
			return errors.New("code lengths overflow")
		}
		for range rep {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return errors.New("no end-of-block code")
	}
	if err := d.lit.build(lengths[:nlit]); err != nil {
		return err
	}
	return d.dist.build(lengths[nlit:])
}

// codes decodes a Huffman-coded block (RFC 1951 §3.2.5).
func (d *decoder) codes(lit, dist *huffman) error {
	for {
		sym, err := d.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			if err := d.emit(byte(sym)); err != nil {
				return err
			}
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return errors.New("invalid length code")
		}
		sym -= 257
		e, err := d.readBits(uint(lengthExtra[sym]))
		if err != nil {
			return err
		}
		length := int(lengthBase[sym]) + int(e)
		ds, err := d.decode(dist)
		if err != nil {
			return err
		}
		if ds > 29 {
			return errors.New("invalid distance code")
		}
		e, err = d.readBits(uint(distExtra[ds]))
		if err != nil {
			return err
		}
		distance := int(distBase[ds]) + int(e)
		if !d.filled && distance > d.wpos {
			return errors.New("distance before the start of the stream")
		}
		if err := d.copyBack(distance, length); err != nil {
			return err
		}
	}
}

// copyBack emits length bytes starting distance back in the window, in
// runs that neither wrap nor overlap what they copy (a match longer than
// its distance repeats itself, run after run).
func (d *decoder) copyBack(distance, length int) error {
	f := d.src
	if len(f.out)+length > f.max {
		return errInflatesTooFar(f.max)
	}
	for length > 0 {
		from := (d.wpos - distance) & (windowSize - 1)
		n := min(length, distance, windowSize-from, windowSize-d.wpos)
		run := d.window[from : from+n]
		f.out = append(f.out, run...)
		copy(d.window[d.wpos:], run)
		d.wpos += n
		if d.wpos == windowSize {
			d.wpos, d.filled = 0, true
		}
		length -= n
	}
	return nil
}
