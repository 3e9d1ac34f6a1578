package packet

import (
	"bytes"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"sshtap/cipher"
)

var roundTripSizes = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 23, 24, 31, 32, 33,
	100, 255, 256, 1000, 1023, 4096, 32768, 35000, 100000}

// checkFraming verifies the RFC 4253 §6 layout of a packet as the Writer
// produced it, using the Writer's cached mode.
func checkFraming(t *testing.T, w *Writer, wire []byte, payloadLen int) {
	t.Helper()
	total := len(wire) - w.tag
	covered := total
	if !lengthCoversAlign(w.mode) {
		covered -= lenSize
	}
	if covered%w.align != 0 {
		t.Errorf("payload %d: %d aligned bytes, not a multiple of %d", payloadLen, covered, w.align)
	}
	pad := total - lenSize - 1 - payloadLen
	if pad < minPadding || pad > maxPadding || pad >= minPadding+w.align {
		t.Errorf("payload %d: padding %d", payloadLen, pad)
	}
	if lengthCoversAlign(w.mode) && total < minPacket {
		t.Errorf("payload %d: packet of %d bytes", payloadLen, total)
	}
	if w.sealer == nil {
		if got := binary.BigEndian.Uint32(wire); int(got) != total-lenSize {
			t.Errorf("packet_length %d, want %d", got, total-lenSize)
		}
		if int(wire[lenSize]) != pad {
			t.Errorf("padding_length %d, want %d", wire[lenSize], pad)
		}
	}
	if over := len(wire) - payloadLen; over > w.MaxOverhead() {
		t.Errorf("overhead %d > MaxOverhead %d", over, w.MaxOverhead())
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			var stream []byte
			for i, n := range roundTripSizes {
				start := len(stream)
				p := payloadOf(n, byte(i))
				stream = w.AppendPacket(stream, p)
				checkFraming(t, w, stream[start:], n)
			}
			for i, n := range roundTripSizes {
				if r.Need() != r.head {
					t.Fatalf("Need %d before packet %d, want %d", r.Need(), i, r.head)
				}
				p, m, err := r.Next(stream)
				if err != nil || m == 0 {
					t.Fatalf("packet %d: n=%d err=%v", i, m, err)
				}
				if !bytes.Equal(p, payloadOf(n, byte(i))) {
					t.Fatalf("packet %d: payload mismatch (%d bytes, want %d)", i, len(p), n)
				}
				stream = stream[m:]
			}
			if len(stream) != 0 {
				t.Fatalf("%d bytes left over", len(stream))
			}
			if w.Seq() != uint32(len(roundTripSizes)) || r.Seq() != w.Seq() {
				t.Fatalf("seq writer %d reader %d", w.Seq(), r.Seq())
			}
			if cap(r.plain) > r.maxPacket() {
				t.Fatalf("plaintext buffer %d > MaxPacket", cap(r.plain))
			}
		})
	}
}

func TestThreePacketsInOneBuffer(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			var buf []byte
			sizes := []int{50, 0, 2000}
			for i, n := range sizes {
				buf = w.AppendPacket(buf, payloadOf(n, byte(i)))
			}
			partial := w.AppendPacket(nil, payloadOf(10, 9))
			buf = append(buf, partial[:len(partial)-1]...)
			for i := 0; ; i++ {
				p, n, err := r.Next(buf)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					if i != len(sizes) {
						t.Fatalf("stopped after %d packets", i)
					}
					if p != nil || r.Need() != len(partial) || len(buf) != len(partial)-1 {
						t.Fatalf("partial: payload %v, Need %d, left %d, packet %d", p, r.Need(), len(buf), len(partial))
					}
					break
				}
				if !bytes.Equal(p, payloadOf(sizes[i], byte(i))) {
					t.Fatalf("packet %d: payload mismatch", i)
				}
				buf = buf[n:]
			}
			buf = append(buf, partial[len(partial)-1])
			if p, n, err := r.Next(buf); err != nil || n != len(buf) || !bytes.Equal(p, payloadOf(10, 9)) {
				t.Fatalf("last packet: n=%d err=%v", n, err)
			}
		})
	}
}

// TestSplitPoints feeds a packet cut at every point: the partial call must
// report (nil, 0, nil) with the right Need, and the completed packet must
// give the same payload, with the stream still in sync for the next packet.
func TestSplitPoints(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			p1, p2 := payloadOf(77, 1), payloadOf(5, 2)
			var plen int
			for i := 0; ; i++ {
				w, r := s.newPair(t)
				cnt := wrapCounting(r)
				buf := w.AppendPacket(nil, p1)
				plen = len(buf)
				buf = w.AppendPacket(buf, p2)
				if i > plen {
					break
				}
				part := bytes.Clone(buf[:i])
				p, n, err := r.Next(part)
				if i < plen {
					if p != nil || n != 0 || err != nil {
						t.Fatalf("split %d: got %d bytes, n=%d, err=%v", i, len(p), n, err)
					}
					want := plen
					if i < r.head {
						want = r.head
					}
					if r.Need() != want {
						t.Fatalf("split %d: Need %d, want %d", i, r.Need(), want)
					}
					p, n, err = r.Next(buf) // the rest arrived; buffer moved
				}
				if err != nil || n != plen || !bytes.Equal(p, p1) {
					t.Fatalf("split %d: n=%d/%d err=%v", i, n, plen, err)
				}
				if cnt != nil && cnt.decrypts != 1 {
					t.Fatalf("split %d: DecryptLength called %d times", i, cnt.decrypts)
				}
				if p, n, err = r.Next(buf[n:]); err != nil || n != len(buf)-plen || !bytes.Equal(p, p2) {
					t.Fatalf("split %d: next packet n=%d err=%v", i, n, err)
				}
			}
		})
	}
}

// TestByteByByte delivers a stream one byte at a time into a buffer that
// is reallocated on every call.
func TestByteByByte(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			cnt := wrapCounting(r)
			sizes := []int{3, 300, 0, 40}
			var stream []byte
			for i, n := range sizes {
				stream = w.AppendPacket(stream, payloadOf(n, byte(i)))
			}
			var pending []byte
			got := 0
			for _, c := range stream {
				pending = append(bytes.Clone(pending), c)
				p, n, err := r.Next(pending)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					if r.Need() <= len(pending) {
						t.Fatalf("Need %d with %d bytes pending", r.Need(), len(pending))
					}
					continue
				}
				if n != len(pending) || !bytes.Equal(p, payloadOf(sizes[got], byte(got))) {
					t.Fatalf("packet %d: n=%d pending=%d", got, n, len(pending))
				}
				pending = pending[n:]
				got++
			}
			if got != len(sizes) {
				t.Fatalf("got %d packets", got)
			}
			if cnt != nil && cnt.decrypts != len(sizes) {
				t.Fatalf("DecryptLength called %d times for %d packets", cnt.decrypts, len(sizes))
			}
		})
	}
}

func wrapCounting(r *Reader) *countingOpener {
	if r.opener == nil {
		return nil
	}
	c := &countingOpener{Opener: r.opener}
	r.SetOpener(c)
	return c
}

func TestSequenceNumbers(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			roundTrip := func(i int) error {
				t.Helper()
				buf := w.AppendPacket(nil, payloadOf(20, byte(i)))
				p, n, err := r.Next(buf)
				if n != len(buf) {
					t.Fatalf("packet %d: n=%d of %d, err=%v", i, n, len(buf), err)
				}
				if err == nil && !bytes.Equal(p, payloadOf(20, byte(i))) {
					t.Fatalf("packet %d: payload mismatch", i)
				}
				return err
			}
			for i := range 3 {
				if w.Seq() != uint32(i) || r.Seq() != uint32(i) {
					t.Fatalf("before packet %d: seq %d/%d", i, w.Seq(), r.Seq())
				}
				if err := roundTrip(i); err != nil {
					t.Fatal(err)
				}
			}
			// Wrap around 2^32 (RFC 4253 §6.4).
			w.seq, r.seq = math.MaxUint32-1, math.MaxUint32-1
			for i := range 4 {
				if err := roundTrip(i); err != nil {
					t.Fatalf("near wrap, packet %d: %v", i, err)
				}
			}
			if w.Seq() != 2 || r.Seq() != 2 {
				t.Fatalf("after wrap: seq %d/%d, want 2", w.Seq(), r.Seq())
			}
			// Strict kex: both sides reset.
			w.ResetSeq()
			r.ResetSeq()
			if w.Seq() != 0 || r.Seq() != 0 {
				t.Fatal("ResetSeq did not reset")
			}
			if err := roundTrip(0); err != nil {
				t.Fatal(err)
			}
			// A one-sided reset shows up as an authentication failure, or
			// as a garbled length when the length key depends on the
			// sequence number.
			w.ResetSeq()
			buf := w.AppendPacket(nil, payloadOf(20, 1))
			if s.seqInMAC() && r.LengthOracle() {
				wantDiscarded(t, r, buf, w.tag)
				return
			}
			_, n, err := r.Next(buf)
			var ae *AuthError
			var le *LengthError
			switch {
			case !s.seqInMAC():
				if err != nil || n != len(buf) {
					t.Fatalf("one-sided reset: n=%d err=%v", n, err)
				}
			case s.seqInLength() && errors.As(err, &le):
				if n != 0 || le.Seq != 1 || !le.Encrypted {
					t.Fatalf("one-sided reset: n=%d err=%+v", n, le)
				}
				return
			case !errors.As(err, &ae):
				t.Fatalf("one-sided reset: err %v, want AuthError", err)
			case ae.Seq != 1 || n != len(buf):
				t.Fatalf("AuthError.Seq %d, n=%d", ae.Seq, n)
			}
			if r.Seq() != 2 || w.Seq() != 1 {
				t.Fatalf("seq %d/%d after one-sided reset", w.Seq(), r.Seq())
			}
		})
	}
}

// TestCorruption flips bytes in the length, body and tag of the first of
// two packets.
func TestCorruption(t *testing.T) {
	type corruption struct {
		name   string
		offset func(plen, tag int) int
		bit    byte
		want   string // "length" or "auth"
	}
	cases := []corruption{
		{"length-high", func(int, int) int { return 0 }, 0x80, "length"},
		{"length-huge", func(int, int) int { return 1 }, 0x10, "length"},
		{"length-odd", func(int, int) int { return 3 }, 0x01, "length"},
		{"padding-length", func(int, int) int { return 4 }, 0xff, "auth"},
		{"payload", func(int, int) int { return 9 }, 0x04, "auth"},
		{"last-body", func(plen, tag int) int { return plen - tag - 1 }, 0x01, "auth"},
		{"tag-first", func(plen, tag int) int { return plen - tag }, 0x01, "auth"},
		{"tag-last", func(plen, tag int) int { return plen - 1 }, 0x80, "auth"},
	}
	p1, p2 := payloadOf(100, 1), payloadOf(33, 2)
	for _, s := range allSuites() {
		if s.none() {
			continue // nothing to authenticate; see TestNoneCorruption
		}
		for _, c := range cases {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				w, r := s.newPair(t)
				buf := w.AppendPacket(nil, p1)
				plen := len(buf)
				buf = w.AppendPacket(buf, p2)
				buf[c.offset(plen, w.tag)] ^= c.bit
				if r.LengthOracle() {
					wantDiscarded(t, r, buf, w.tag)
					return
				}
				p, n, err := r.Next(buf)
				if p != nil {
					t.Fatalf("payload returned with err %v", err)
				}
				want := c.want
				cbc := slices.Contains([]string{cipher.AES128CBC, cipher.AES192CBC, cipher.AES256CBC, cipher.TripleDESCBC}, s.cipher)
				if cbc && w.mode == cipher.ModeClassic && c.offset(plen, w.tag) < w.align {
					// RFC 4253 §6.3 CBC: a flipped bit anywhere in the
					// first cipher block garbles the whole decrypted
					// block, packet_length included.
					want = "length"
				}
				switch want {
				case "length":
					var le *LengthError
					if !errors.As(err, &le) || n != 0 {
						t.Fatalf("n=%d err=%v, want LengthError and n=0", n, err)
					}
					if le.Seq != 0 || le.Mode != w.mode || le.Max != DefaultMaxPacket {
						t.Fatalf("LengthError %+v", le)
					}
					if wantEnc := w.mode == cipher.ModeClassic || s.cipher == cipher.Chacha20Poly1305 ||
						(s.cipher == "" && w.mode == cipher.ModeAEAD); le.Encrypted != wantEnc {
						t.Fatalf("Encrypted %v, want %v", le.Encrypted, wantEnc)
					}
					// Sticky.
					if _, n2, err2 := r.Next(buf); n2 != 0 || err2 != err {
						t.Fatalf("second call: n=%d err=%v", n2, err2)
					}
				case "auth":
					var ae *AuthError
					if !errors.As(err, &ae) || n != plen {
						t.Fatalf("n=%d/%d err=%v, want AuthError", n, plen, err)
					}
					if ae.Seq != 0 || ae.Mode != w.mode || int(ae.Length) != plen-lenSize-w.tag {
						t.Fatalf("AuthError %+v", ae)
					}
					if len(ae.Payload) > plen {
						t.Fatalf("AuthError.Payload of %d bytes", len(ae.Payload))
					}
					if c.name[:3] == "tag" && !bytes.Equal(ae.Payload, p1) {
						t.Fatalf("tag flip changed the unauthenticated payload")
					}
					if r.Seq() != 1 {
						t.Fatalf("seq %d after AuthError", r.Seq())
					}
					p, n, err = r.Next(buf[n:])
					if cbc && c.name == "last-body" {
						// CBC chains packets (RFC 4253 §6.3): the flipped
						// last block is the next packet's IV, so the flip
						// reaches its first block.
						if err == nil && bytes.Equal(p, p2) {
							t.Fatal("the next packet survived a flip in its IV")
						}
						return
					}
					// The stream is still in sync.
					if err != nil || n != len(buf)-plen || !bytes.Equal(p, p2) {
						t.Fatalf("next packet: n=%d err=%v", n, err)
					}
				}
			})
		}
	}
}

func TestNoneCorruption(t *testing.T) {
	w := &Writer{}
	buf := w.AppendPacket(nil, payloadOf(30, 0))
	plen := binary.BigEndian.Uint32(buf)

	r := &Reader{}
	bad := bytes.Clone(buf)
	bad[lenSize] = 3
	_, n, err := r.Next(bad)
	var pe *PaddingError
	if !errors.As(err, &pe) || n != 0 || *pe != (PaddingError{Seq: 0, Padding: 3, Length: plen}) {
		t.Fatalf("padding 3: n=%d err=%v", n, err)
	}
	if r.Seq() != 0 {
		t.Fatalf("seq advanced to %d on PaddingError", r.Seq())
	}

	r = &Reader{}
	bad = bytes.Clone(buf)
	bad[lenSize] = byte(plen)
	if _, n, err = r.Next(bad); !errors.As(err, &pe) || n != 0 || pe.Padding != plen {
		t.Fatalf("padding = length: n=%d err=%v", n, err)
	}

	r = &Reader{}
	bad = bytes.Clone(buf)
	bad[3] ^= 4 // 4+length no longer a multiple of 8
	var le *LengthError
	if _, n, err = r.Next(bad); !errors.As(err, &le) || n != 0 || le.Encrypted || le.Length != plen^4 {
		t.Fatalf("misaligned: n=%d err=%v", n, err)
	}
}

// TestPaddingErrors seals packets with bad padding_length under valid tags.
func TestPaddingErrors(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			for _, tc := range []struct {
				pad     func(length int) int
				wantErr bool
			}{
				{func(int) int { return 0 }, true},
				{func(int) int { return 3 }, true},
				{func(l int) int { return l }, true},
				{func(l int) int { return l - 1 }, false}, // empty payload: legal framing
				{func(int) int { return 4 }, false},
			} {
				w, r := s.newPair(t)
				length := 2 * w.align
				if lengthCoversAlign(w.mode) {
					length -= lenSize
				}
				pkt := make([]byte, lenSize+length, lenSize+length+w.tag)
				binary.BigEndian.PutUint32(pkt, uint32(length))
				pad := tc.pad(length)
				pkt[lenSize] = byte(pad)
				if w.sealer != nil {
					pkt = w.sealer.Seal(0, pkt)
				}
				p, n, err := r.Next(pkt)
				if !tc.wantErr {
					if err != nil || n != len(pkt) || len(p) != length-1-pad {
						t.Fatalf("pad %d: n=%d err=%v payload %d", pad, n, err, len(p))
					}
					continue
				}
				var pe *PaddingError
				if !errors.As(err, &pe) || n != 0 || pe.Padding != uint32(pad) || pe.Length != uint32(length) || pe.Seq != 0 {
					t.Fatalf("pad %d: n=%d err=%v", pad, n, err)
				}
				if _, n, err2 := r.Next(pkt); n != 0 || err2 != err {
					t.Fatalf("not sticky: n=%d err=%v", n, err2)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	// A length field straight from the error message example.
	r := &Reader{}
	buf := binary.BigEndian.AppendUint32(nil, 16777512)
	_, n, err := r.Next(buf)
	var le *LengthError
	if !errors.As(err, &le) || n != 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if want := "sshtap: packet: bad packet length 16777512 (seq 0, none)"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err, want)
	}

	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			r.MaxPacket = 1024
			ok := w.AppendPacket(nil, payloadOf(1000, 0))
			big := w.AppendPacket(nil, payloadOf(1100, 0))
			if _, n, err := r.Next(ok); err != nil || n != len(ok) {
				t.Fatalf("1000-byte payload: n=%d err=%v", n, err)
			}
			if r.LengthOracle() {
				wantDiscarded(t, r, big, w.tag)
				return
			}
			_, n, err := r.Next(big[:r.head]) // the head alone suffices
			var le *LengthError
			if !errors.As(err, &le) || n != 0 || le.Max != 1024 || le.Seq != 1 || int(le.Length) != len(big)-lenSize-w.tag {
				t.Fatalf("n=%d err=%v", n, err)
			}
			if cap(r.plain) > 1024 {
				t.Fatalf("plaintext buffer grew to %d", cap(r.plain))
			}
		})
	}
}

func TestShortLength(t *testing.T) {
	for _, l := range []uint32{0, 1, 4} {
		r := &Reader{}
		buf := binary.BigEndian.AppendUint32(nil, l)
		var le *LengthError
		if _, n, err := r.Next(buf); !errors.As(err, &le) || n != 0 || le.Length != l {
			t.Fatalf("length %d: n=%d err=%v", l, n, err)
		}
	}
}

func TestStats(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			var want Stats
			for i, n := range []int{0, 10, 1000, 32768} {
				buf := w.AppendPacket(nil, payloadOf(n, byte(i)))
				want.Packets++
				want.Bytes += uint64(len(buf))
				framed := len(buf) - w.tag
				want.Blocks += uint64((framed + w.align - 1) / w.align)
				if _, _, err := r.Next(buf); err != nil {
					t.Fatal(err)
				}
			}
			// A packet that fails authentication counts too (except with
			// CBC in classic mode, where it ends the connection).
			if !s.none() && !r.LengthOracle() {
				buf := w.AppendPacket(nil, payloadOf(64, 0))
				buf[len(buf)-1] ^= 1
				want.Packets++
				want.Bytes += uint64(len(buf))
				want.Blocks += uint64((len(buf) - w.tag + w.align - 1) / w.align)
				if _, _, err := r.Next(buf); err == nil {
					t.Fatal("no AuthError")
				}
			}
			if w.Stats() != want || r.Stats() != want {
				t.Fatalf("stats writer %+v reader %+v, want %+v", w.Stats(), r.Stats(), want)
			}
			se, op := w.sealer, r.opener
			w.SetSealer(se)
			r.SetOpener(op)
			if w.Stats() != (Stats{}) || r.Stats() != (Stats{}) {
				t.Fatal("Set* did not reset Stats")
			}
			if w.Seq() == 0 || r.Seq() == 0 {
				t.Fatal("Set* reset the sequence number")
			}
		})
	}
}

func TestErrorStrings(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&LengthError{Seq: 5, Length: 16777512, Mode: cipher.ModeAEAD, Encrypted: true}, "sshtap: packet: bad packet length 16777512 (seq 5, aead)"},
		{&LengthError{Seq: 1, Length: 13, Mode: cipher.ModeETM}, "sshtap: packet: bad packet length 13 (seq 1, etm)"},
		{&LengthError{Seq: 1, Length: 13, Mode: cipher.ModeClassic, Encrypted: true}, "sshtap: packet: bad packet length 13 (seq 1, classic)"},
		{&LengthError{Seq: 0, Length: 3, Mode: cipher.ModeClassic}, "sshtap: packet: bad packet length 3 (seq 0, none)"},
		{&AuthError{Seq: 7, Length: 32, Mode: cipher.ModeETM}, "sshtap: packet: message authentication failed (seq 7, length 32, etm)"},
		{&PaddingError{Seq: 2, Padding: 3, Length: 28}, "sshtap: packet: bad padding length 3 (seq 2, packet length 28)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestPaddingIsRandom(t *testing.T) {
	w := &Writer{}
	a := w.AppendPacket(nil, nil)
	b := w.AppendPacket(nil, nil)
	if bytes.Equal(a[5:], b[5:]) {
		t.Fatal("two packets with identical padding")
	}
	w2 := &Writer{}
	if c := w2.AppendPacket(nil, nil); bytes.Equal(a[5:], c[5:]) {
		t.Fatal("two Writers produce the same padding")
	}
}

// TestInPlacePayload frames a payload already placed in dst's spare
// capacity, and payloads overlapping dst in other ways.
func TestInPlacePayload(t *testing.T) {
	w, r := noneSuite.newPair(t)
	want := payloadOf(300, 5)
	buf := make([]byte, 7, 1024)
	spare := buf[:cap(buf)]
	copy(spare[7+5:], want)
	out := w.AppendPacket(buf, spare[7+5:7+5+300])
	if p, _, err := r.Next(out[7:]); err != nil || !bytes.Equal(p, want) {
		t.Fatalf("in place: err %v", err)
	}
	copy(spare[7:], want) // overlapping the header
	out = w.AppendPacket(buf, spare[7:7+300])
	if p, _, err := r.Next(out[7:]); err != nil || !bytes.Equal(p, want) {
		t.Fatalf("overlapping header: err %v", err)
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, s := range allSuites() {
		t.Run(s.name, func(t *testing.T) {
			w, r := s.newPair(t)
			payload := payloadOf(32<<10, 1)
			buf := make([]byte, 0, len(payload)+w.MaxOverhead())
			allocs := testing.AllocsPerRun(100, func() {
				buf = w.AppendPacket(buf[:0], payload)
			})
			if allocs != 0 {
				t.Errorf("AppendPacket: %v allocs per packet", allocs)
			}
			// Reads: one warm-up packet sizes the plaintext buffer.
			w, r = s.newPair(t)
			var stream []byte
			for range 101 {
				stream = w.AppendPacket(stream, payload)
			}
			allocs = testing.AllocsPerRun(100, func() {
				p, n, err := r.Next(stream)
				if err != nil || len(p) != len(payload) {
					panic("read failed")
				}
				stream = stream[n:]
			})
			if allocs != 0 {
				t.Errorf("Next: %v allocs per packet", allocs)
			}
			// Write and read through one reused buffer.
			w, r = s.newPair(t)
			allocs = testing.AllocsPerRun(100, func() {
				buf = w.AppendPacket(buf[:0], payload)
				if _, _, err := r.Next(buf); err != nil {
					panic(err)
				}
			})
			if allocs != 0 {
				t.Errorf("write+read: %v allocs per packet", allocs)
			}
		})
	}
}

func benchSuites() []suite {
	out := []suite{noneSuite}
	if realAvailable() {
		out = append(out,
			realSuite(cipher.Chacha20Poly1305, ""),
			realSuite(cipher.AES128GCM, ""),
			realSuite(cipher.AES256GCM, ""),
			realSuite(cipher.AES128CTR, cipher.HMACSHA256ETM),
			realSuite(cipher.AES128CTR, cipher.HMACSHA256),
			realSuite(cipher.AES256CTR, cipher.HMACSHA512ETM),
		)
	} else {
		out = append(out, fakeSuites()...)
	}
	return out
}

// BenchmarkWriteRead seals and opens 32 KiB payloads through one reused
// buffer.
func BenchmarkWriteRead(b *testing.B) {
	for _, s := range benchSuites() {
		b.Run(s.name, func(b *testing.B) {
			w, r := s.newPair(b)
			payload := payloadOf(32<<10, 1)
			buf := make([]byte, 0, len(payload)+w.MaxOverhead())
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				buf = w.AppendPacket(buf[:0], payload)
				if _, _, err := r.Next(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// newTestReader is a Reader with MaxPacket and the cipher and MAC named,
// keyed with zeros.
func newTestReader(t *testing.T, cipherName, macName string, maxPacket int) *Reader {
	t.Helper()
	o, err := cipher.NewOpener(cipherName, macName, make([]byte, 16), make([]byte, 16), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	r := &Reader{MaxPacket: maxPacket}
	r.SetOpener(o)
	return r
}

// cbcFirstBlock is the first block a peer would deliver for a
// packet_length of plainLen (aes128-cbc, newTestReader's zero keys): a
// spliced block of an earlier packet decrypts to what it pleases.
func cbcFirstBlock(plainLen uint32) []byte {
	var p [16]byte
	binary.BigEndian.PutUint32(p[:], plainLen)
	b, _ := aes.NewCipher(make([]byte, 16))
	c := make([]byte, 16)
	stdcipher.NewCBCEncrypter(b, make([]byte, 16)).CryptBlocks(c, p[:])
	return c
}

// wantFatalDiscard checks the outcome of a length oracle's discard: n == 0
// and a LengthError or AuthError.
func wantFatalDiscard(t *testing.T, n int, err error) {
	t.Helper()
	var le *LengthError
	var ae *AuthError
	if n != 0 || !(errors.As(err, &le) || errors.As(err, &ae)) {
		t.Fatalf("n=%d err=%v, want a fatal LengthError or AuthError", n, err)
	}
}

// TestCBCLengthOracle: with CBC in classic mode a spliced first block
// decrypts to a length the peer chooses; a length out of bounds, a
// misaligned one and a plausible one with a bad MAC must all end the same
// way, after the same number of bytes (CVE-2008-5161), while other modes
// report a bad length at once.
func TestCBCLengthOracle(t *testing.T) {
	want := lenSize + DefaultMaxPacket + 32
	for _, plainLen := range []uint32{60, 61, 0x41424344, 3} {
		r := newTestReader(t, cipher.AES128CBC, cipher.HMACSHA256, 0)
		if !r.LengthOracle() {
			t.Fatal("aes128-cbc with hmac-sha2-256 is not flagged as a length oracle")
		}
		buf := append(cbcFirstBlock(plainLen), make([]byte, want)...)
		// Every prefix short of want bytes asks for more, whatever the
		// length decrypted to (a plausible one first waits for its packet,
		// whose MAC then fails).
		for _, n := range []int{16, 100, want - 1} {
			if p, used, err := r.Next(buf[:n]); p != nil || used != 0 || err != nil {
				t.Fatalf("length %d, %d bytes: p=%v n=%d err=%v; want a request for more", plainLen, n, p != nil, used, err)
			}
		}
		if r.Need() != want {
			t.Fatalf("length %d: Need %d, want %d", plainLen, r.Need(), want)
		}
		_, used, err := r.Next(buf[:want])
		wantFatalDiscard(t, used, err)
		if _, _, again := r.Next(buf); again != err {
			t.Fatalf("length %d: error not sticky: %v", plainLen, again)
		}
	}
	// ETM and CTR keep reporting a bad length at once.
	for _, c := range [][2]string{{cipher.AES128CBC, cipher.HMACSHA256ETM}, {cipher.AES128CTR, cipher.HMACSHA256}} {
		if newTestReader(t, c[0], c[1], 0).LengthOracle() {
			t.Fatalf("%s+%s flagged as a length oracle", c[0], c[1])
		}
	}
}

// wantDiscarded checks how a length-oracle Reader (CBC in classic mode)
// reports a corrupt packet at the start of buf: nothing before the largest
// packet's worth of bytes has arrived, then a fatal LengthError or
// AuthError with n == 0.
func wantDiscarded(t *testing.T, r *Reader, buf []byte, tag int) {
	t.Helper()
	target := lenSize + r.maxPacket() + tag
	if p, n, err := r.Next(buf[:min(len(buf), target-1)]); p != nil || n != 0 || err != nil {
		t.Fatalf("p=%v n=%d err=%v before the discard completed", p != nil, n, err)
	}
	_, n, err := r.Next(append(buf, make([]byte, target)...))
	wantFatalDiscard(t, n, err)
}

// TestCBCDiscardBounded: with a MaxPacket far above the default, a CBC
// length oracle still waits for no more than a default packet's worth of
// bytes (OpenSSH's PACKET_MAX_SIZE), so a peer cannot make the reader hold
// up to MaxPacket of garbage.
func TestCBCDiscardBounded(t *testing.T) {
	r := newTestReader(t, cipher.AES128CBC, cipher.HMACSHA256, 64<<20)
	head := make([]byte, 16) // decrypts to some length; most are bad
	for i := range head {
		head[i] = byte(i * 37)
	}
	if _, _, err := r.Next(head); err != nil {
		t.Fatal(err)
	}
	if need := r.Need(); need > lenSize+DefaultMaxPacket+32 {
		t.Fatalf("Need %d with MaxPacket 64 MiB, want at most a default packet", need)
	}
}

// TestCBCOracleLargeMaxPacket: with a MaxPacket above the default, a length
// oracle refuses lengths above the default too, so that every bad first
// block ends at the same byte count: a plausible large length must not
// keep the reader waiting for its packet.
func TestCBCOracleLargeMaxPacket(t *testing.T) {
	target := lenSize + DefaultMaxPacket + 32
	for _, plainLen := range []uint32{0x41424344, 512<<10 - 4} {
		r := newTestReader(t, cipher.AES128CBC, cipher.HMACSHA256, 1<<20)
		buf := append(cbcFirstBlock(plainLen), make([]byte, 2<<20)...)
		if _, _, err := r.Next(buf[:target-1]); err != nil {
			t.Fatalf("length %#x: error %v before %d bytes", plainLen, err, target)
		}
		if _, _, err := r.Next(buf[:target]); err == nil {
			t.Errorf("length %#x: no error after %d bytes (Need %d)", plainLen, target, r.Need())
		}
	}
}
