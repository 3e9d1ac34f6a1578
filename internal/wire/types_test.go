package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bigHex(t testing.TB, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return n
}

func TestAppendScalars(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"bool false", AppendBool(nil, false), "00"},
		{"bool true", AppendBool(nil, true), "01"},
		{"uint32", AppendUint32(nil, 0x29b7f4aa), "29 b7 f4 aa"},
		{"uint64", AppendUint64(nil, 0x0102030405060708), "01 02 03 04 05 06 07 08"},
		// RFC 4251 §5: "the string "testing" is represented as 00 00 00 07 t e s t i n g".
		{"string", AppendString(nil, "testing"), "00 00 00 07 74 65 73 74 69 6e 67"},
		{"string empty", AppendString(nil, ""), "00 00 00 00"},
		{"bytes", AppendBytes(nil, []byte{1, 2}), "00 00 00 02 01 02"},
		{"bytes nil", AppendBytes(nil, nil), "00 00 00 00"},
		{"appends", AppendUint32([]byte{0xff}, 1), "ff 00 00 00 01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("got %x, want %x", tt.got, want)
			}
		})
	}
}

// RFC 4251 §5 name-list examples.
func TestAppendNameList(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{nil, "00 00 00 00"},
		{[]string{}, "00 00 00 00"},
		{[]string{"zlib"}, "00 00 00 04 7a 6c 69 62"},
		{[]string{"zlib", "none"}, "00 00 00 09 7a 6c 69 62 2c 6e 6f 6e 65"},
	}
	for _, tt := range tests {
		if got, want := AppendNameList(nil, tt.names), unhex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("AppendNameList(%q) = %x, want %x", tt.names, got, want)
		}
	}
}

// The examples of RFC 4251 §5 (mpint).
var mpintVectors = []struct {
	value string // hex, may be negative
	enc   string
}{
	{"0", "00 00 00 00"},
	{"9a378f9b2e332a7", "00 00 00 08 09 a3 78 f9 b2 e3 32 a7"},
	{"80", "00 00 00 02 00 80"},
	{"-1234", "00 00 00 02 ed cc"},
	{"-deadbeef", "00 00 00 05 ff 21 52 41 11"},
}

func TestMpintRFCVectors(t *testing.T) {
	for _, tt := range mpintVectors {
		t.Run(tt.value, func(t *testing.T) {
			n := bigHex(t, tt.value)
			want := unhex(t, tt.enc)
			if got := AppendMpint(nil, n); !bytes.Equal(got, want) {
				t.Errorf("AppendMpint = %x, want %x", got, want)
			}
			r := NewReader(want)
			got := r.Mpint()
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if got.Cmp(n) != 0 || r.Len() != 0 {
				t.Errorf("Mpint() = %x (left %d), want %x", got, r.Len(), n)
			}
			if n.Sign() >= 0 {
				if got := AppendMpintBytes(nil, n.Bytes()); !bytes.Equal(got, want) {
					t.Errorf("AppendMpintBytes = %x, want %x", got, want)
				}
			}
		})
	}
}

func TestAppendMpintNil(t *testing.T) {
	if got := AppendMpint(nil, nil); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("AppendMpint(nil) = %x", got)
	}
}

func TestAppendMpintBytes(t *testing.T) {
	tests := []struct{ mag, want string }{
		{"", "00 00 00 00"},
		{"00", "00 00 00 00"},
		{"00 00 00", "00 00 00 00"},
		{"01", "00 00 00 01 01"},
		{"00 7f", "00 00 00 01 7f"},
		{"80", "00 00 00 02 00 80"},
		{"00 00 ff 01", "00 00 00 03 00 ff 01"},
	}
	for _, tt := range tests {
		if got, want := AppendMpintBytes(nil, unhex(t, tt.mag)), unhex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("AppendMpintBytes(%s) = %x, want %x", tt.mag, got, want)
		}
	}
}

// Boundary values: ±2^k and ±(2^k-1) around every byte boundary.
func TestMpintRoundTripBoundaries(t *testing.T) {
	var vals []*big.Int
	for k := 0; k <= 80; k++ {
		p := new(big.Int).Lsh(big.NewInt(1), uint(k))
		pm := new(big.Int).Sub(p, big.NewInt(1))
		for _, v := range []*big.Int{p, pm} {
			vals = append(vals, v, new(big.Int).Neg(v))
		}
	}
	for _, v := range vals {
		enc := AppendMpint(nil, v)
		body := enc[4:]
		// RFC 4251 §5: "Unnecessary leading bytes with the value 0 or 255
		// MUST NOT be included."
		if len(body) >= 2 && (body[0] == 0 && body[1]&0x80 == 0 || body[0] == 0xff && body[1]&0x80 != 0) {
			t.Errorf("%v: non-minimal encoding %x", v, enc)
		}
		if (v.Sign() < 0) != (len(body) > 0 && body[0]&0x80 != 0) {
			t.Errorf("%v: sign bit wrong in %x", v, enc)
		}
		r := NewReader(enc)
		if got := r.Mpint(); r.Err() != nil || got.Cmp(v) != 0 {
			t.Errorf("%v: decoded %v, %v", v, got, r.Err())
		}
	}
}

func TestMpintDecode(t *testing.T) {
	huge := AppendUint32(nil, MaxMpintBits/8+2)
	huge = append(huge, 0x01)
	huge = append(huge, make([]byte, MaxMpintBits/8+1)...)
	maxPos := AppendMpint(nil, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), MaxMpintBits), big.NewInt(1)))
	over := AppendMpint(nil, new(big.Int).Lsh(big.NewInt(1), MaxMpintBits))
	maxNeg := AppendMpint(nil, new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), MaxMpintBits-1)))
	overNeg := AppendMpint(nil, new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), MaxMpintBits)))
	padded := AppendUint32(nil, 3000)
	padded = append(padded, make([]byte, 2999)...)
	padded = append(padded, 5)

	tests := []struct {
		name    string
		in      []byte
		want    string // hex value; "" with err
		wantErr error
	}{
		{"non-minimal zero", unhex(t, "00 00 00 02 00 00"), "0", nil},
		{"non-minimal positive", unhex(t, "00 00 00 03 00 00 01"), "1", nil},
		{"non-minimal negative", unhex(t, "00 00 00 03 ff ff 80"), "-80", nil},
		{"minus one", unhex(t, "00 00 00 01 ff"), "-1", nil},
		{"ff ff is -1", unhex(t, "00 00 00 02 ff ff"), "-1", nil},
		{"leading zeros beyond bound", padded, "5", nil},
		{"max bits", maxPos, "", nil},
		{"max negative bits", maxNeg, "", nil},
		{"too large", over, "", ErrTooLarge},
		{"too large negative", overNeg, "", ErrTooLarge},
		{"huge magnitude", huge, "", ErrTooLarge},
		{"short length", unhex(t, "00 00 00"), "", ErrShort},
		{"short data", unhex(t, "00 00 00 02 01"), "", ErrShort},
		{"huge declared length", unhex(t, "ff ff ff ff 01"), "", ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			got := r.Mpint()
			err := r.Err()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("got %v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && got.Cmp(bigHex(t, tt.want)) != 0 {
				t.Errorf("got %x, want %s", got, tt.want)
			}
			if got.BitLen() > MaxMpintBits {
				t.Errorf("bitlen %d", got.BitLen())
			}
		})
	}
}

func TestNameListDecode(t *testing.T) {
	many := func(n int) []byte {
		return AppendString(nil, strings.Repeat("a,", n-1)+"a")
	}
	tests := []struct {
		name    string
		in      []byte
		want    []string
		wantErr error
	}{
		{"empty list", unhex(t, "00 00 00 00"), nil, nil},
		{"one", AppendString(nil, "zlib"), []string{"zlib"}, nil},
		{"two", AppendString(nil, "zlib,none"), []string{"zlib", "none"}, nil},
		{"non-ascii accepted", AppendString(nil, "a\xffb"), []string{"a\xffb"}, nil},
		{"max entries", many(MaxNameListEntries), slices.Repeat([]string{"a"}, MaxNameListEntries), nil},
		{"lone comma", AppendString(nil, ","), nil, ErrEmptyName},
		{"leading comma", AppendString(nil, ",a"), nil, ErrEmptyName},
		{"trailing comma", AppendString(nil, "a,"), nil, ErrEmptyName},
		{"double comma", AppendString(nil, "a,,b"), nil, ErrEmptyName},
		{"nul", AppendString(nil, "a\x00"), nil, ErrBadName},
		{"too many", many(MaxNameListEntries + 1), nil, ErrTooMany},
		{"short", unhex(t, "00 00 00 05 61"), nil, ErrShort},
		{"no length", unhex(t, "00 00"), nil, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			got := r.NameList()
			err := r.Err()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err == nil {
				if re := AppendNameList(nil, got); !bytes.Equal(re, tt.in) {
					t.Errorf("re-encoded %x, want %x", re, tt.in)
				}
			}
		})
	}
}

// TestNameListSkipEmpty: stray commas are dropped instead of failing (what
// libssh 0.10 sends in KEXINIT), every other NameList check stays.
func TestNameListSkipEmpty(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{"empty list", "", nil, nil},
		{"two", "zlib,none", []string{"zlib", "none"}, nil},
		{"lone comma", ",", nil, nil},
		{"commas only", ",,,", nil, nil},
		{"leading comma", ",a", []string{"a"}, nil},
		{"trailing comma", "aes256-ctr,aes128-ctr,", []string{"aes256-ctr", "aes128-ctr"}, nil},
		{"double comma", "a,,b", []string{"a", "b"}, nil},
		{"all three", ",a,,b,", []string{"a", "b"}, nil},
		{"non-ascii accepted", ",a\xffb,", []string{"a\xffb"}, nil},
		{"nul", "a,\x00,", nil, ErrBadName},
		{"nul after empty name", ",a\x00", nil, ErrBadName},
		{"max names with empties", strings.Repeat("a,,", MaxNameListEntries), slices.Repeat([]string{"a"}, MaxNameListEntries), nil},
		{"too many", strings.Repeat(",a", MaxNameListEntries+1), nil, ErrTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(AppendString(nil, tt.in))
			got := r.Field("list").NameListSkipEmpty()
			err := r.Err()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err == nil && r.Len() != 0 {
				t.Errorf("%d bytes left unread", r.Len())
			}
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) || de.Field != "list" {
					t.Errorf("err = %#v, want a DecodeError for field list", err)
				}
			}
		})
	}
}
