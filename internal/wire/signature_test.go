package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func signatureCases() []Signature {
	return []Signature{
		{Format: "ssh-ed25519", Blob: bytes.Repeat([]byte{0x5a}, 64)},
		{Format: "rsa-sha2-512", Blob: []byte{}},
		// OpenSSH PROTOCOL.u2f: "byte flags, uint32 counter" after the blob.
		{Format: "sk-ssh-ed25519@openssh.com", Blob: []byte("sig"), Rest: []byte{0x01, 0, 0, 0, 7}},
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	for _, s := range signatureCases() {
		t.Run(s.Format, func(t *testing.T) {
			prefix := []byte("prefix")
			enc := AppendSignature(prefix, s)
			if !bytes.HasPrefix(enc, prefix) {
				t.Fatal("AppendSignature did not append")
			}
			enc = enc[len(prefix):]
			got, err := ParseSignature(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, s) {
				t.Errorf("parsed %#v\nwant %#v", got, s)
			}
			if re := AppendSignature(nil, got); !bytes.Equal(re, enc) {
				t.Errorf("re-encoded %x\nwant %x", re, enc)
			}
		})
	}
}

// Exact encodings, written out by hand from RFC 4253 §6.6 and OpenSSH
// PROTOCOL.u2f.
func TestSignatureEncoding(t *testing.T) {
	tests := []struct {
		name string
		s    Signature
		want string
	}{
		{"plain", Signature{Format: "a", Blob: []byte{1, 2}}, "00000001 61 00000002 0102"},
		{"empty", Signature{}, "00000000 00000000"},
		{"rest", Signature{Format: "s", Blob: []byte{9}, Rest: []byte{1, 0, 0, 0, 2}}, "00000001 73 00000001 09 01 00000002"},
	}
	for _, tt := range tests {
		if got, want := AppendSignature(nil, tt.s), unhex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("%s: AppendSignature = %x, want %x", tt.name, got, want)
		}
	}
}

func TestParseSignature(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Signature
		field   string // of the DecodeError, "" when none is expected
		wantErr error
	}{
		{"no rest", "00000001 61 00000001 62", Signature{Format: "a", Blob: []byte("b")}, "", nil},
		{"rest kept", "00000001 61 00000001 62 0100000003", Signature{Format: "a", Blob: []byte("b"), Rest: []byte{1, 0, 0, 0, 3}}, "", nil},
		{"empty input", "", Signature{}, "signature format identifier", ErrShort},
		{"format only", "00000001 61", Signature{}, "signature blob", ErrShort},
		{"blob length beyond data", "00000001 61 00000005 6262", Signature{}, "signature blob", ErrShort},
		{"huge format length", "ffffffff 61", Signature{}, "signature format identifier", ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignature(unhex(t, tt.in))
			if tt.wantErr != nil {
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, tt.wantErr) || de.Field != tt.field || de.Msg != 0 {
					t.Fatalf("err = %#v, want %v in %q", err, tt.wantErr, tt.field)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseSignatureAliasing(t *testing.T) {
	enc := AppendSignature(nil, Signature{Format: "f", Blob: []byte("b"), Rest: []byte("r")})
	s, err := ParseSignature(enc)
	if err != nil {
		t.Fatal(err)
	}
	enc[len(enc)-2] = 'B'
	enc[len(enc)-1] = 'R'
	if string(s.Blob) != "B" || string(s.Rest) != "R" {
		t.Errorf("Blob %q, Rest %q: want them to alias the input", s.Blob, s.Rest)
	}
	if cap(s.Blob) != len(s.Blob) {
		t.Error("Blob capacity extends into Rest")
	}
}

func FuzzSignature(f *testing.F) {
	fuzzPayload(f, ParseSignature,
		func(s *Signature, b []byte) []byte { return AppendSignature(b, *s) },
		signatureCases()...)
}
