package socks

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse feeds the same bytes to every decoder and checks their
// contract: no panic; an error is ErrIncomplete, a *FormatError or (SOCKS
// 5 requests) an *AddressTypeError, and leaves the input as rest; a
// success consumes a prefix of at most MaxHandshake bytes, and decodes the
// same with more bytes after it; ErrIncomplete never happens on a full
// MaxHandshake buffer.
func FuzzParse(f *testing.F) {
	for _, seed := range [][]byte{
		{5, 1, 0},
		{5, 2, 0, 2, 5, 1, 0, 3, 1, 'h', 0, 80},
		[]byte("\x05\x01\x00\x03\x0bexample.com\x00\x50"),
		{5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90},
		{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb},
		{5, 1, 0, 9},
		[]byte("\x04\x01\x00\x50\x7f\x00\x00\x01fred\x00"),
		[]byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00example.com\x00"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		type parser func([]byte) (any, []byte, error)
		parsers := map[string]parser{
			"greeting": func(b []byte) (any, []byte, error) { g, r, err := ParseGreeting(b); return string(g.Methods), r, err },
			"request4": func(b []byte) (any, []byte, error) { return ParseRequest4(b) },
			"request5": func(b []byte) (any, []byte, error) { return ParseRequest5(b) },
		}
		for name, parse := range parsers {
			v, rest, err := parse(data)
			if err != nil {
				var fe *FormatError
				var ae *AddressTypeError
				if !errors.Is(err, ErrIncomplete) && !errors.As(err, &fe) && !(name == "request5" && errors.As(err, &ae)) {
					t.Fatalf("%s: error %T %v", name, err, err)
				}
				if !bytes.Equal(rest, data) {
					t.Fatalf("%s: rest after an error is not the input", name)
				}
				if errors.Is(err, ErrIncomplete) && len(data) >= MaxHandshake {
					t.Fatalf("%s: incomplete after %d bytes", name, len(data))
				}
				continue
			}
			n := len(data) - len(rest)
			if n <= 0 || n > MaxHandshake || !bytes.Equal(data[n:], rest) {
				t.Fatalf("%s: consumed %d of %d bytes", name, n, len(data))
			}
			if r, ok := v.(Request); ok && r.Host == "" {
				t.Fatalf("%s: decoded an empty host", name)
			}
			more := append(append([]byte{}, data...), 0xee, 0xff)
			v2, rest2, err := parse(more)
			if err != nil || v2 != v || !bytes.Equal(rest2, append(append([]byte{}, rest...), 0xee, 0xff)) {
				t.Fatalf("%s: with bytes appended: %v %v, want %v", name, v2, err, v)
			}
		}
	})
}
