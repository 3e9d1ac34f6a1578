package wire

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// Seeds live in testdata/fuzz/FuzzXxx; a few are also added here so each
// target has seeds even without the corpus directory.

// FuzzReader drives the Reader with a sequence of reads chosen by ops over
// data and checks the sticky-error contract and encode/decode agreement.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, AppendMpint(AppendNameList(AppendString([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, "s"), []string{"a", "b"}), mustBig("-deadbeef")))
	f.Add([]byte{6, 7, 8}, []byte("\x00\x00\x00\x01,\x00\x00\x00\x02\xff\xff"))
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		r := NewReader(data)
		var firstErr error
		for _, op := range ops {
			before := r.Len()
			failedBefore := r.Err() != nil
			var zero bool
			switch op % 11 {
			case 0:
				zero = r.Byte() == 0
			case 1:
				zero = !r.Bool()
			case 2:
				zero = r.Uint32() == 0
			case 3:
				zero = r.Uint64() == 0
			case 4:
				zero = r.String() == ""
			case 5:
				v := r.Bytes()
				zero = v == nil
				if v != nil && before-r.Len() != 4+len(v) {
					t.Fatalf("Bytes consumed %d for %d bytes", before-r.Len(), len(v))
				}
			case 6:
				// Bit 4 of op picks the variant that drops empty names.
				var names []string
				if op&0x10 != 0 {
					names = r.NameListSkipEmpty()
				} else {
					names = r.NameList()
				}
				zero = names == nil
				if r.Err() == nil {
					// Either way the names re-encode to a list the strict
					// NameList accepts: no empty name survives.
					enc := AppendNameList(nil, names)
					rr := NewReader(enc)
					if again := rr.NameList(); rr.Err() != nil || !slices.Equal(again, names) {
						t.Fatalf("name-list %q does not round-trip: %v", names, rr.Err())
					}
				}
			case 7:
				n := r.Mpint()
				zero = n == nil
				if n != nil {
					if n.BitLen() > MaxMpintBits {
						t.Fatalf("mpint of %d bits accepted", n.BitLen())
					}
					rr := NewReader(AppendMpint(nil, n))
					if again := rr.Mpint(); rr.Err() != nil || again.Cmp(n) != 0 || rr.Len() != 0 {
						t.Fatalf("mpint %x does not round-trip: %v", n, rr.Err())
					}
				}
			case 8:
				zero = r.Fixed(int(op>>4)-2) == nil // includes negative lengths
			case 9:
				zero = r.Rest() == nil
			case 10:
				zero = !r.Expect(op >> 4)
			}
			if r.Len() > before {
				t.Fatalf("Len grew from %d to %d", before, r.Len())
			}
			if err := r.Err(); err != nil {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("Err() = %T, want *DecodeError", err)
				}
				if firstErr == nil {
					firstErr = err
				} else if err != firstErr {
					t.Fatalf("error changed from %v to %v", firstErr, err)
				}
				if r.Len() != 0 {
					t.Fatalf("Len = %d after failure", r.Len())
				}
				if failedBefore && !zero {
					t.Fatalf("op %d returned a non-zero value after failure", op%11)
				}
			}
		}
	})
}

// fuzzMessage checks that decoding arbitrary input never panics, reports
// only *DecodeError, and that anything accepted re-encodes to a payload
// that decodes to the same value and re-encodes identically.
func fuzzMessage[T any, PT interface {
	*T
	message
}](f *testing.F, seeds ...message) {
	for _, s := range seeds {
		enc := s.Marshal(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		orig := bytes.Clone(p)
		m := PT(new(T))
		if err := m.Unmarshal(p); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		if !bytes.Equal(p, orig) {
			t.Fatal("Unmarshal modified its input")
		}
		enc := m.Marshal(nil)
		m2 := PT(new(T))
		if err := m2.Unmarshal(enc); err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %#v to %#v", m, m2)
		}
		if enc2 := m2.Marshal(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding unstable: %x vs %x", enc, enc2)
		}
	})
}

// seedsFor returns the msgCases values of the given message number whose
// type matches T.
func seedsFor[T any](num byte) []message {
	var out []message
	for _, c := range msgCases() {
		if reflect.TypeOf(c.msg) == reflect.TypeFor[*T]() && c.num == num {
			out = append(out, c.msg)
		}
	}
	return out
}

func FuzzDisconnect(f *testing.F) {
	fuzzMessage[Disconnect](f, seedsFor[Disconnect](MsgDisconnect)...)
}

func FuzzIgnore(f *testing.F) { fuzzMessage[Ignore](f, seedsFor[Ignore](MsgIgnore)...) }

func FuzzUnimplemented(f *testing.F) {
	fuzzMessage[Unimplemented](f, seedsFor[Unimplemented](MsgUnimplemented)...)
}

func FuzzDebug(f *testing.F) { fuzzMessage[Debug](f, seedsFor[Debug](MsgDebug)...) }

func FuzzServiceRequest(f *testing.F) {
	fuzzMessage[ServiceRequest](f, seedsFor[ServiceRequest](MsgServiceRequest)...)
}

func FuzzServiceAccept(f *testing.F) {
	fuzzMessage[ServiceAccept](f, seedsFor[ServiceAccept](MsgServiceAccept)...)
}

func FuzzExtInfo(f *testing.F) { fuzzMessage[ExtInfo](f, seedsFor[ExtInfo](MsgExtInfo)...) }

func FuzzKexInit(f *testing.F) { fuzzMessage[KexInit](f, seedsFor[KexInit](MsgKexInit)...) }

func FuzzKexECDHInit(f *testing.F) {
	fuzzMessage[KexECDHInit](f, seedsFor[KexECDHInit](MsgKexECDHInit)...)
}

func FuzzKexECDHReply(f *testing.F) {
	fuzzMessage[KexECDHReply](f, seedsFor[KexECDHReply](MsgKexECDHReply)...)
}

func FuzzKexDHInit(f *testing.F) { fuzzMessage[KexDHInit](f, seedsFor[KexDHInit](MsgKexDHInit)...) }

func FuzzKexDHReply(f *testing.F) {
	fuzzMessage[KexDHReply](f, seedsFor[KexDHReply](MsgKexDHReply)...)
}

func FuzzKexDHGexRequest(f *testing.F) {
	fuzzMessage[KexDHGexRequest](f, seedsFor[KexDHGexRequest](MsgKexDHGexRequest)...)
}

func FuzzKexDHGexRequestOld(f *testing.F) {
	fuzzMessage[KexDHGexRequestOld](f, seedsFor[KexDHGexRequestOld](MsgKexDHGexRequestOld)...)
}

func FuzzKexDHGexGroup(f *testing.F) {
	fuzzMessage[KexDHGexGroup](f, seedsFor[KexDHGexGroup](MsgKexDHGexGroup)...)
}

func FuzzKexDHGexInit(f *testing.F) {
	fuzzMessage[KexDHGexInit](f, seedsFor[KexDHGexInit](MsgKexDHGexInit)...)
}

func FuzzKexDHGexReply(f *testing.F) {
	fuzzMessage[KexDHGexReply](f, seedsFor[KexDHGexReply](MsgKexDHGexReply)...)
}

func FuzzPing(f *testing.F) { fuzzMessage[Ping](f, seedsFor[Ping](MsgPing)...) }

func FuzzPong(f *testing.F) { fuzzMessage[Pong](f, seedsFor[Pong](MsgPong)...) }
