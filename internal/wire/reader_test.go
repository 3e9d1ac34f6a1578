package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestReaderScalars(t *testing.T) {
	in := unhex(t, "ab 00 02 29 b7 f4 aa 01 02 03 04 05 06 07 08 00 00 00 07 74 65 73 74 69 6e 67 00 00 00 01 58 de ad")
	r := NewReader(in)
	if got := r.Byte(); got != 0xab {
		t.Errorf("Byte = %x", got)
	}
	if got := r.Bool(); got {
		t.Errorf("Bool(00) = true")
	}
	// RFC 4251 §5: "All non-zero values MUST be interpreted as TRUE".
	if got := r.Bool(); !got {
		t.Errorf("Bool(02) = false")
	}
	if got := r.Uint32(); got != 0x29b7f4aa {
		t.Errorf("Uint32 = %x", got)
	}
	if got := r.Uint64(); got != 0x0102030405060708 {
		t.Errorf("Uint64 = %x", got)
	}
	if got := r.String(); got != "testing" {
		t.Errorf("String = %q", got)
	}
	b := r.Bytes()
	if !bytes.Equal(b, []byte("X")) {
		t.Errorf("Bytes = %q", b)
	}
	if &b[0] != &in[30] {
		t.Errorf("Bytes does not alias the input")
	}
	if cap(b) != 1 {
		t.Errorf("Bytes cap = %d, want 1 (appending must not clobber the input)", cap(b))
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d", r.Len())
	}
	if got := r.Rest(); !bytes.Equal(got, []byte{0xde, 0xad}) || r.Len() != 0 {
		t.Errorf("Rest = %x, Len %d", got, r.Len())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderEmptyString(t *testing.T) {
	r := NewReader([]byte{0, 0, 0, 0})
	if b := r.Bytes(); b == nil || len(b) != 0 || r.Err() != nil {
		t.Errorf("Bytes() = %#v, %v; want empty non-nil", b, r.Err())
	}
}

func TestReaderShort(t *testing.T) {
	tests := []struct {
		name string
		in   string
		read func(r *Reader)
	}{
		{"byte", "", func(r *Reader) { r.Byte() }},
		{"bool", "", func(r *Reader) { r.Bool() }},
		{"uint32", "00 00 01", func(r *Reader) { r.Uint32() }},
		{"uint64", "00 00 00 00 00 00 01", func(r *Reader) { r.Uint64() }},
		{"string length", "00 00 00", func(r *Reader) { _ = r.String() }},
		{"string data", "00 00 00 03 61 62", func(r *Reader) { _ = r.String() }},
		{"bytes data", "00 00 00 03 61 62", func(r *Reader) { r.Bytes() }},
		{"huge length", "ff ff ff ff 61", func(r *Reader) { r.Bytes() }},
		{"huge length string", "80 00 00 00 61", func(r *Reader) { _ = r.String() }},
		{"namelist", "00 00 00 03 61", func(r *Reader) { r.NameList() }},
		{"mpint", "00 00 00 03 61", func(r *Reader) { r.Mpint() }},
		{"fixed", "01 02", func(r *Reader) { r.Fixed(3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(unhex(t, tt.in))
			tt.read(&r)
			var de *DecodeError
			if err := r.Err(); !errors.As(err, &de) || !errors.Is(err, ErrShort) {
				t.Fatalf("Err() = %v, want *DecodeError wrapping ErrShort", err)
			}
			if r.Len() != 0 {
				t.Errorf("Len after failure = %d", r.Len())
			}
		})
	}
}

// A huge declared length must not allocate or slice out of range.
func TestReaderHugeLengthNoAlloc(t *testing.T) {
	in := unhex(t, "ff ff ff f0 61 62 63")
	allocs := testing.AllocsPerRun(100, func() {
		r := NewReader(in)
		_ = r.String()
		r = NewReader(in)
		_ = r.NameList()
		r = NewReader(in)
		_ = r.Bytes()
	})
	// Only the *DecodeError values may be allocated (one per failed read).
	if allocs > 3 {
		t.Errorf("allocs = %v, want <= 3", allocs)
	}
}

func TestReaderSticky(t *testing.T) {
	in := unhex(t, "00 00 00 09 00 00 00 01 41 ff ff ff ff ff ff ff ff")
	r := NewReader(in)
	r.Field("first").Bytes()
	r.Uint32()
	if r.Err() != nil || r.Len() != 0 {
		t.Fatalf("Err %v, Len %d", r.Err(), r.Len())
	}
	r.Field("second").Fixed(100)
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "second" || !errors.Is(err, ErrShort) {
		t.Fatalf("err = %#v", err)
	}
	// Later reads return zero values and keep the first error.
	if r.Byte() != 0 || r.Bool() || r.Uint32() != 0 || r.Uint64() != 0 || r.String() != "" ||
		r.Bytes() != nil || r.NameList() != nil || r.Mpint() != nil || r.Fixed(0) != nil || r.Rest() != nil {
		t.Error("read after failure returned a non-zero value")
	}
	if r.Err() != err {
		t.Errorf("error changed: %v", r.Err())
	}
	r.Fail("other", ErrTooMany)
	if r.Err() != err {
		t.Errorf("Fail replaced the first error")
	}
}

// A Field name labels one read only.
func TestReaderFieldOneRead(t *testing.T) {
	r := NewReader([]byte{0, 0, 0, 1, 0})
	r.Field("a").Uint32()
	r.Uint32()
	var de *DecodeError
	if !errors.As(r.Err(), &de) || de.Field != "uint32" {
		t.Fatalf("err = %v, want field uint32", r.Err())
	}
}

func TestReaderFixed(t *testing.T) {
	in := []byte{1, 2, 3}
	r := NewReader(in)
	if got := r.Fixed(0); got == nil || len(got) != 0 {
		t.Errorf("Fixed(0) = %#v", got)
	}
	if got := r.Fixed(2); !bytes.Equal(got, []byte{1, 2}) || &got[0] != &in[0] {
		t.Errorf("Fixed(2) = %x", got)
	}
	r.Fixed(-1)
	if !errors.Is(r.Err(), ErrNegative) {
		t.Errorf("Fixed(-1): %v", r.Err())
	}
}

func TestReaderZero(t *testing.T) {
	var r Reader
	if r.Len() != 0 || r.Rest() != nil || r.Err() != nil {
		t.Fatal("zero Reader not empty")
	}
	r.Uint32()
	if !errors.Is(r.Err(), ErrShort) {
		t.Fatal(r.Err())
	}
}

func TestReaderExpect(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		ok      bool
		wantErr error
		msg     string
	}{
		{"match", []byte{MsgKexInit, 1}, true, nil, ""},
		{"empty", nil, false, ErrShort, "sshtap: wire: SSH_MSG_KEXINIT: message number: short buffer"},
		{"mismatch", []byte{MsgNewKeys}, false, ErrMsgNumber, "sshtap: wire: SSH_MSG_KEXINIT: message number: unexpected message number SSH_MSG_NEWKEYS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			if ok := r.Expect(MsgKexInit); ok != tt.ok {
				t.Errorf("Expect = %v", ok)
			}
			err := r.Err()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && err.Error() != tt.msg {
				t.Errorf("Error() = %q, want %q", err, tt.msg)
			}
			if tt.ok && r.Len() != 1 {
				t.Errorf("Len = %d", r.Len())
			}
		})
	}
}

func TestDecodeErrorString(t *testing.T) {
	tests := []struct {
		err  *DecodeError
		want string
	}{
		{&DecodeError{Msg: MsgDisconnect, Field: "description", Err: ErrShort}, "sshtap: wire: SSH_MSG_DISCONNECT: description: short buffer"},
		{&DecodeError{Field: "uint32", Err: ErrShort}, "sshtap: wire: uint32: short buffer"},
		{&DecodeError{Msg: 200, Err: ErrShort}, "sshtap: wire: unknown(200): short buffer"},
		{&DecodeError{}, "sshtap: wire: malformed"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	// Without Field, the data type names the failing read.
	r := NewReader([]byte{0, 0})
	r.SetMsg(MsgIgnore)
	r.Uint32()
	if got, want := r.Err().Error(), "sshtap: wire: SSH_MSG_IGNORE: uint32: short buffer"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMsgName(t *testing.T) {
	tests := []struct {
		t    byte
		want string
	}{
		{MsgDisconnect, "SSH_MSG_DISCONNECT"},
		{MsgExtInfo, "SSH_MSG_EXT_INFO"},
		{MsgNewCompress, "SSH_MSG_NEWCOMPRESS"},
		{MsgKexInit, "SSH_MSG_KEXINIT"},
		{MsgNewKeys, "SSH_MSG_NEWKEYS"},
		{MsgKexDHInit, "SSH_MSG_KEXDH_INIT"},
		{MsgKexDHGexRequest, "SSH_MSG_KEX_DH_GEX_REQUEST"},
		{MsgUserAuthRequest, "SSH_MSG_USERAUTH_REQUEST"},
		{MsgUserAuthPKOK, "SSH_MSG_USERAUTH_PK_OK"},
		{MsgUserAuthGSSAPIMIC, "SSH_MSG_USERAUTH_GSSAPI_MIC"},
		{MsgGlobalRequest, "SSH_MSG_GLOBAL_REQUEST"},
		{MsgChannelData, "SSH_MSG_CHANNEL_DATA"},
		{MsgChannelFailure, "SSH_MSG_CHANNEL_FAILURE"},
		{MsgPing, "SSH_MSG_PING"},
		{MsgPong, "SSH_MSG_PONG"},
		{0, "unknown(0)"},
		{62, "unknown(62)"},
		{200, "unknown(200)"},
		{255, "unknown(255)"},
	}
	for _, tt := range tests {
		if got := MsgName(tt.t); got != tt.want {
			t.Errorf("MsgName(%d) = %q, want %q", tt.t, got, tt.want)
		}
	}
}
