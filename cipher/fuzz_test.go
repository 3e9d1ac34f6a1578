package cipher

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzOpen feeds peer bytes to DecryptLength and Open of every cipher/MAC
// pair (chosen by which) with fixed keys and fresh state. Open must not
// panic, must not modify its input, must return a body of the packet's body
// length, and may report ok only for bytes a fresh Sealer with the same
// keys and sequence number reproduces exactly (so forgeries are caught).
// Seeds live in testdata/fuzz/FuzzOpen.
func FuzzOpen(f *testing.F) {
	combos := allCombos()
	f.Fuzz(func(t *testing.T, which uint8, seq uint32, data []byte) {
		c := combos[int(which)%len(combos)]
		s, o := c.pair(t, 99)
		orig := bytes.Clone(data)
		var l uint32
		if len(data) >= o.HeadSize() {
			l = o.DecryptLength(seq, data[:o.HeadSize()])
		}
		body, ok := o.Open(seq, nil, data)
		if !bytes.Equal(data, orig) {
			t.Fatal("Open modified its input")
		}
		if len(data) < o.HeadSize()+o.TagSize() {
			if ok || len(body) != 0 {
				t.Fatalf("short input: %d bytes, ok=%v", len(body), ok)
			}
			return
		}
		if want := len(data) - 4 - o.TagSize(); len(body) != want {
			t.Fatalf("body is %d bytes, want %d", len(body), want)
		}
		if !ok {
			return
		}
		pkt := binary.BigEndian.AppendUint32(nil, l)
		pkt = append(pkt, body...)
		if again := s.Seal(seq, pkt); !bytes.Equal(again, data) {
			t.Fatalf("%v: Open accepted bytes the Sealer does not produce", c)
		}
	})
}
