package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var (
	testFakeCookie = []byte("fake-cookie-0123")
	testRealCookie = []byte("real-cookie-4567")
)

// x11SetupBytes builds an X11 connection setup request in the given byte
// order with an authorization name and data.
func x11SetupBytes(order byte, name string, data []byte) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if order == 'B' {
		bo = binary.BigEndian
	}
	b := make([]byte, 12)
	b[0] = order
	bo.PutUint16(b[2:], 11)
	bo.PutUint16(b[6:], uint16(len(name)))
	bo.PutUint16(b[8:], uint16(len(data)))
	b = append(b, name...)
	b = append(b, make([]byte, pad4(len(name))-len(name))...)
	b = append(b, data...)
	return append(b, make([]byte, pad4(len(data))-len(data))...)
}

// TestX11Setup: the fake cookie is replaced by the real one in either byte
// order (or removed when there is none); anything else is refused.
func TestX11Setup(t *testing.T) {
	for _, order := range []byte{'l', 'B'} {
		in := x11SetupBytes(order, x11AuthProto, testFakeCookie)
		setup, err := readX11Setup(bytes.NewReader(in))
		if err != nil || !bytes.Equal(setup, in) {
			t.Fatalf("%c: read %q, %v", order, setup, err)
		}
		out, err := substituteCookie(setup, testFakeCookie, testRealCookie)
		if err != nil || !bytes.Equal(out, x11SetupBytes(order, x11AuthProto, testRealCookie)) {
			t.Errorf("%c: substituted %q, %v", order, out, err)
		}
		out, err = substituteCookie(setup, testFakeCookie, nil)
		if err != nil || len(out) != 12 || out[6] != 0 || out[7] != 0 || out[8] != 0 || out[9] != 0 {
			t.Errorf("%c: without a real cookie %q, %v", order, out, err)
		}
	}
	for name, in := range map[string][]byte{
		"wrong cookie":     x11SetupBytes('l', x11AuthProto, []byte("guessed-cookie-0")),
		"other protocol":   x11SetupBytes('l', "XDM-AUTHORIZATION-1", testFakeCookie),
		"no authorization": x11SetupBytes('l', "", nil),
	} {
		setup, err := readX11Setup(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := substituteCookie(setup, testFakeCookie, testRealCookie); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, in := range map[string][]byte{
		"bad byte order": append([]byte{'x'}, x11SetupBytes('l', x11AuthProto, testFakeCookie)[1:]...),
		"truncated":      x11SetupBytes('l', x11AuthProto, testFakeCookie)[:20],
		"short header":   {'l', 0, 11},
	} {
		if _, err := readX11Setup(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

// FuzzX11Setup feeds the X11 connection setup parser, which reads what a
// remote X client sent through the server, arbitrary bytes: it must not
// panic, and a substituted setup must parse again and carry the real
// cookie.
func FuzzX11Setup(f *testing.F) {
	f.Add(x11SetupBytes('l', x11AuthProto, testFakeCookie))
	f.Add(x11SetupBytes('B', x11AuthProto, testFakeCookie))
	f.Add(x11SetupBytes('l', x11AuthProto, []byte("guessed")))
	f.Fuzz(func(t *testing.T, in []byte) {
		setup, err := readX11Setup(bytes.NewReader(in))
		if err != nil {
			return
		}
		out, err := substituteCookie(setup, testFakeCookie, testRealCookie)
		if err != nil {
			return
		}
		again, err := readX11Setup(bytes.NewReader(out))
		if err != nil || !bytes.Equal(again, out) || !bytes.Contains(out, testRealCookie) {
			t.Fatalf("substituted setup %q does not parse back (%v)", out, err)
		}
	})
}
