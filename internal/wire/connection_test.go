package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// connCases holds at least one non-trivial value per connection protocol
// message type.
func connCases() []msgCase {
	return []msgCase{
		{"GlobalRequest", MsgGlobalRequest, &GlobalRequest{Name: RequestTCPIPForward, WantReply: true, Data: (&TCPIPForward{Addr: "localhost", Port: 0}).Append(nil)}, func() message { return new(GlobalRequest) }},
		{"GlobalRequestNoData", MsgGlobalRequest, &GlobalRequest{Name: RequestKeepalive, WantReply: true, Data: []byte{}}, func() message { return new(GlobalRequest) }},
		{"RequestSuccess", MsgRequestSuccess, &RequestSuccess{Data: (&TCPIPForwardReply{Port: 40000}).Append(nil)}, func() message { return new(RequestSuccess) }},
		{"RequestSuccessNoData", MsgRequestSuccess, &RequestSuccess{Data: []byte{}}, func() message { return new(RequestSuccess) }},
		{"RequestFailure", MsgRequestFailure, &RequestFailure{}, func() message { return new(RequestFailure) }},
		{"ChannelOpen", MsgChannelOpen, &ChannelOpen{Type: ChannelTypeSession, Sender: 0, Window: 2 << 20, MaxPacket: 32 << 10, Extra: []byte{}}, func() message { return new(ChannelOpen) }},
		{"ChannelOpenDirectTCPIP", MsgChannelOpen, &ChannelOpen{Type: ChannelTypeDirectTCPIP, Sender: 3, Window: 1, MaxPacket: 0xffffffff,
			Extra: (&DirectTCPIP{Host: "example.com", Port: 443, OriginAddr: "127.0.0.1", OriginPort: 55555}).Append(nil)}, func() message { return new(ChannelOpen) }},
		{"ChannelOpenConfirm", MsgChannelOpenConfirm, &ChannelOpenConfirm{Recipient: 3, Sender: 7, Window: 2 << 20, MaxPacket: 32 << 10, Extra: []byte{}}, func() message { return new(ChannelOpenConfirm) }},
		{"ChannelOpenConfirmExtra", MsgChannelOpenConfirm, &ChannelOpenConfirm{Recipient: 1, Sender: 2, Window: 3, MaxPacket: 4, Extra: []byte("x")}, func() message { return new(ChannelOpenConfirm) }},
		{"ChannelOpenFailure", MsgChannelOpenFailure, &ChannelOpenFailure{Recipient: 3, Reason: OpenConnectFailed, Message: "connect failed: Connection refused", Language: "en"}, func() message { return new(ChannelOpenFailure) }},
		{"ChannelWindowAdjust", MsgChannelWindowAdjust, &ChannelWindowAdjust{Recipient: 9, Bytes: 0x7fffffff}, func() message { return new(ChannelWindowAdjust) }},
		{"ChannelData", MsgChannelData, &ChannelData{Recipient: 1, Data: []byte("hello\n")}, func() message { return new(ChannelData) }},
		{"ChannelDataEmpty", MsgChannelData, &ChannelData{Recipient: 0xffffffff, Data: []byte{}}, func() message { return new(ChannelData) }},
		{"ChannelExtendedData", MsgChannelExtendedData, &ChannelExtendedData{Recipient: 1, Code: ExtendedDataStderr, Data: []byte("error\n")}, func() message { return new(ChannelExtendedData) }},
		{"ChannelEOF", MsgChannelEOF, &ChannelEOF{Recipient: 5}, func() message { return new(ChannelEOF) }},
		{"ChannelClose", MsgChannelClose, &ChannelClose{Recipient: 6}, func() message { return new(ChannelClose) }},
		{"ChannelRequest", MsgChannelRequest, &ChannelRequest{Recipient: 2, Type: RequestExec, WantReply: true, Data: (&ExecReq{Command: "ls -l"}).Append(nil)}, func() message { return new(ChannelRequest) }},
		{"ChannelRequestShell", MsgChannelRequest, &ChannelRequest{Recipient: 2, Type: RequestShell, WantReply: false, Data: []byte{}}, func() message { return new(ChannelRequest) }},
		{"ChannelSuccess", MsgChannelSuccess, &ChannelSuccess{Recipient: 8}, func() message { return new(ChannelSuccess) }},
		{"ChannelFailure", MsgChannelFailure, &ChannelFailure{Recipient: 0}, func() message { return new(ChannelFailure) }},
	}
}

func TestConnectionMessages(t *testing.T) { testMessages(t, connCases()) }

// Exact encodings, written out by hand from the RFC 4254 layouts.
func TestConnectionMessageEncodings(t *testing.T) {
	testEncodings(t, []struct {
		name string
		msg  message
		want string
	}{
		{"GlobalRequest", &GlobalRequest{Name: "n", WantReply: true, Data: []byte{7}}, "50 00000001 6e 01 07"},
		{"RequestSuccess", &RequestSuccess{Data: []byte{0, 0, 0x9c, 0x40}}, "51 00009c40"},
		{"RequestSuccessNil", &RequestSuccess{}, "51"},
		{"RequestFailure", &RequestFailure{}, "52"},
		{"ChannelOpen", &ChannelOpen{Type: "session", Sender: 1, Window: 0x200000, MaxPacket: 0x8000}, "5a 00000007 73657373696f6e 00000001 00200000 00008000"},
		{"ChannelOpenConfirm", &ChannelOpenConfirm{Recipient: 1, Sender: 2, Window: 3, MaxPacket: 4, Extra: []byte{5}}, "5b 00000001 00000002 00000003 00000004 05"},
		{"ChannelOpenFailure", &ChannelOpenFailure{Recipient: 1, Reason: OpenAdministrativelyProhibited, Message: "m", Language: ""}, "5c 00000001 00000001 00000001 6d 00000000"},
		{"ChannelWindowAdjust", &ChannelWindowAdjust{Recipient: 1, Bytes: 0x10000}, "5d 00000001 00010000"},
		{"ChannelData", &ChannelData{Recipient: 1, Data: []byte("ab")}, "5e 00000001 00000002 6162"},
		{"ChannelExtendedData", &ChannelExtendedData{Recipient: 1, Code: 1, Data: []byte("e")}, "5f 00000001 00000001 00000001 65"},
		{"ChannelEOF", &ChannelEOF{Recipient: 2}, "60 00000002"},
		{"ChannelClose", &ChannelClose{Recipient: 2}, "61 00000002"},
		{"ChannelRequest", &ChannelRequest{Recipient: 2, Type: "shell", WantReply: true}, "62 00000002 00000005 7368656c6c 01"},
		{"ChannelSuccess", &ChannelSuccess{Recipient: 3}, "63 00000003"},
		{"ChannelFailure", &ChannelFailure{Recipient: 3}, "64 00000003"},
	})
}

func TestChannelDataAliasing(t *testing.T) {
	enc := (&ChannelData{Recipient: 1, Data: []byte("abc")}).Marshal(nil)
	enc = append(enc, "next"...)
	var m ChannelData
	if err := m.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	enc[ChannelDataHeaderLen] = 'X'
	if string(m.Data) != "Xbc" {
		t.Errorf("Data = %q, want it to alias the payload", m.Data)
	}
	if cap(m.Data) != 3 {
		t.Errorf("cap(Data) = %d, want 3 (appending must not overwrite the payload)", cap(m.Data))
	}
}

// The fast paths agree with Unmarshal on every prefix of every case, also
// with trailing bytes and wrong message numbers, and return the same
// errors.
func TestChannelFastPaths(t *testing.T) {
	var inputs [][]byte
	for _, tc := range connCases() {
		enc := tc.msg.Marshal(nil)
		for i := 0; i <= len(enc); i++ {
			inputs = append(inputs, enc[:i:i])
		}
		inputs = append(inputs, append(bytes.Clone(enc), "trailing"...))
	}
	inputs = append(inputs, unhex(t, "5e 00000001 ffffffff 00"), unhex(t, "5f 00000001 00000002 80000000"))
	for _, p := range inputs {
		var d ChannelData
		errD := d.Unmarshal(p)
		rec, data, err := ParseChannelData(p)
		if !reflect.DeepEqual(err, errD) || (err == nil && (rec != d.Recipient || !bytes.Equal(data, d.Data) || cap(data) != len(data) || data == nil)) {
			t.Errorf("ParseChannelData(%x) = %d, %q, %v; Unmarshal: %+v, %v", p, rec, data, err, d, errD)
		}
		if err != nil && (rec != 0 || data != nil) {
			t.Errorf("ParseChannelData(%x) returned values with %v", p, err)
		}

		var x ChannelExtendedData
		errX := x.Unmarshal(p)
		rec, code, data, err := ParseChannelExtendedData(p)
		if !reflect.DeepEqual(err, errX) || (err == nil && (rec != x.Recipient || code != x.Code || !bytes.Equal(data, x.Data) || cap(data) != len(data) || data == nil)) {
			t.Errorf("ParseChannelExtendedData(%x) = %d, %d, %q, %v; Unmarshal: %+v, %v", p, rec, code, data, err, x, errX)
		}
		if err != nil && (rec != 0 || code != 0 || data != nil) {
			t.Errorf("ParseChannelExtendedData(%x) returned values with %v", p, err)
		}

		var w ChannelWindowAdjust
		errW := w.Unmarshal(p)
		rec, n, err := ParseWindowAdjust(p)
		if !reflect.DeepEqual(err, errW) || (err == nil && (rec != w.Recipient || n != w.Bytes)) {
			t.Errorf("ParseWindowAdjust(%x) = %d, %d, %v; Unmarshal: %+v, %v", p, rec, n, err, w, errW)
		}
		if err != nil && (rec != 0 || n != 0) {
			t.Errorf("ParseWindowAdjust(%x) returned values with %v", p, err)
		}
	}
}

func TestRecipientOf(t *testing.T) {
	for _, tc := range connCases() {
		enc := tc.msg.Marshal(nil)
		rec, ok := RecipientOf(enc)
		var want uint32
		wantOK := true
		switch m := tc.msg.(type) {
		case *ChannelOpenConfirm:
			want = m.Recipient
		case *ChannelOpenFailure:
			want = m.Recipient
		case *ChannelWindowAdjust:
			want = m.Recipient
		case *ChannelData:
			want = m.Recipient
		case *ChannelExtendedData:
			want = m.Recipient
		case *ChannelEOF:
			want = m.Recipient
		case *ChannelClose:
			want = m.Recipient
		case *ChannelRequest:
			want = m.Recipient
		case *ChannelSuccess:
			want = m.Recipient
		case *ChannelFailure:
			want = m.Recipient
		default:
			wantOK = false
		}
		if rec != want || ok != wantOK {
			t.Errorf("%s: RecipientOf = %d, %v; want %d, %v", tc.name, rec, ok, want, wantOK)
		}
		if wantOK {
			if _, ok := RecipientOf(enc[:4]); ok {
				t.Errorf("%s: RecipientOf accepted 4 bytes", tc.name)
			}
		}
	}
	for _, p := range [][]byte{nil, {}, {MsgChannelData}, unhex(t, "5a 00000001"), unhex(t, "65 00000001"), unhex(t, "59 00000001")} {
		if rec, ok := RecipientOf(p); ok || rec != 0 {
			t.Errorf("RecipientOf(%x) = %d, %v", p, rec, ok)
		}
	}
	if rec, ok := RecipientOf(unhex(t, "64 01020304")); !ok || rec != 0x01020304 {
		t.Errorf("RecipientOf(CHANNEL_FAILURE) = %x, %v", rec, ok)
	}
}

func TestChannelDataHeaders(t *testing.T) {
	got := AppendChannelDataHeader([]byte("p"), 0x01020304, 0x10)
	if want := unhex(t, "70 5e 01020304 00000010"); !bytes.Equal(got, want) {
		t.Errorf("AppendChannelDataHeader = %x, want %x", got, want)
	}
	got = AppendChannelExtendedDataHeader(nil, 1, ExtendedDataStderr, 0)
	if want := unhex(t, "5f 00000001 00000001 00000000"); !bytes.Equal(got, want) {
		t.Errorf("AppendChannelExtendedDataHeader = %x, want %x", got, want)
	}
	if n := len(AppendChannelDataHeader(nil, 0, 0)); n != ChannelDataHeaderLen {
		t.Errorf("data header %d bytes, want ChannelDataHeaderLen", n)
	}
	if n := len(AppendChannelExtendedDataHeader(nil, 0, 0, 0)); n != ChannelExtendedDataHeaderLen {
		t.Errorf("extended data header %d bytes, want ChannelExtendedDataHeaderLen", n)
	}
	// Header + data is exactly what Marshal writes.
	data := []byte("payload bytes")
	b := append(AppendChannelExtendedDataHeader(nil, 4, 2, len(data)), data...)
	if want := (&ChannelExtendedData{Recipient: 4, Code: 2, Data: data}).Marshal(nil); !bytes.Equal(b, want) {
		t.Errorf("header+data %x, Marshal %x", b, want)
	}
}

func TestChannelDataPathNoAlloc(t *testing.T) {
	p := channelDataPayload()
	x := (&ChannelExtendedData{Recipient: 1, Code: 1, Data: make([]byte, 1024)}).Marshal(nil)
	w := (&ChannelWindowAdjust{Recipient: 1, Bytes: 1 << 20}).Marshal(nil)
	buf := make([]byte, 0, 64)
	var sum uint64
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseChannelData", func() {
			rec, data, err := ParseChannelData(p)
			if err == nil {
				sum += uint64(rec) + uint64(len(data))
			}
		}},
		{"ParseChannelExtendedData", func() {
			rec, code, data, err := ParseChannelExtendedData(x)
			if err == nil {
				sum += uint64(rec) + uint64(code) + uint64(len(data))
			}
		}},
		{"ParseWindowAdjust", func() {
			rec, n, err := ParseWindowAdjust(w)
			if err == nil {
				sum += uint64(rec) + uint64(n)
			}
		}},
		{"RecipientOf", func() {
			rec, _ := RecipientOf(p)
			sum += uint64(rec)
		}},
		{"AppendChannelDataHeader", func() {
			buf = AppendChannelDataHeader(buf[:0], 7, 32<<10)
		}},
		{"AppendChannelExtendedDataHeader", func() {
			buf = AppendChannelExtendedDataHeader(buf[:0], 7, ExtendedDataStderr, 32<<10)
		}},
	}
	for _, tt := range tests {
		if allocs := testing.AllocsPerRun(100, tt.f); allocs != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tt.name, allocs)
		}
	}
	if sum == 0 {
		t.Error("nothing decoded")
	}
}

func BenchmarkParseChannelData(b *testing.B) {
	p := channelDataPayload()
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, _, err := ParseChannelData(p); err != nil {
			b.Fatal(err)
		}
	}
}

// Fuzz targets for the connection protocol decoders (see fuzz_test.go).

func FuzzGlobalRequest(f *testing.F) {
	fuzzMessage[GlobalRequest](f, caseSeeds[GlobalRequest](connCases())...)
}

func FuzzRequestSuccess(f *testing.F) {
	fuzzMessage[RequestSuccess](f, caseSeeds[RequestSuccess](connCases())...)
}

func FuzzChannelOpen(f *testing.F) {
	fuzzMessage[ChannelOpen](f, caseSeeds[ChannelOpen](connCases())...)
}

func FuzzChannelOpenConfirm(f *testing.F) {
	fuzzMessage[ChannelOpenConfirm](f, caseSeeds[ChannelOpenConfirm](connCases())...)
}

func FuzzChannelOpenFailure(f *testing.F) {
	fuzzMessage[ChannelOpenFailure](f, caseSeeds[ChannelOpenFailure](connCases())...)
}

func FuzzChannelWindowAdjust(f *testing.F) {
	fuzzMessage[ChannelWindowAdjust](f, caseSeeds[ChannelWindowAdjust](connCases())...)
}

func FuzzChannelData(f *testing.F) {
	fuzzMessage[ChannelData](f, caseSeeds[ChannelData](connCases())...)
}

func FuzzChannelExtendedData(f *testing.F) {
	fuzzMessage[ChannelExtendedData](f, caseSeeds[ChannelExtendedData](connCases())...)
}

func FuzzChannelRequest(f *testing.F) {
	fuzzMessage[ChannelRequest](f, caseSeeds[ChannelRequest](connCases())...)
}

// addConnSeeds adds every connection case (and its first half) as a seed.
func addConnSeeds(f *testing.F) {
	for _, tc := range connCases() {
		enc := tc.msg.Marshal(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
}

// The fast paths must agree with Unmarshal on any input.
func FuzzParseChannelData(f *testing.F) {
	addConnSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		var m ChannelData
		errM := m.Unmarshal(p)
		rec, data, err := ParseChannelData(p)
		if !reflect.DeepEqual(err, errM) {
			t.Fatalf("err %v, Unmarshal %v", err, errM)
		}
		if err == nil && (rec != m.Recipient || !bytes.Equal(data, m.Data) || cap(data) != len(data)) {
			t.Fatalf("got %d %x, Unmarshal %+v", rec, data, m)
		}
	})
}

func FuzzParseChannelExtendedData(f *testing.F) {
	addConnSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		var m ChannelExtendedData
		errM := m.Unmarshal(p)
		rec, code, data, err := ParseChannelExtendedData(p)
		if !reflect.DeepEqual(err, errM) {
			t.Fatalf("err %v, Unmarshal %v", err, errM)
		}
		if err == nil && (rec != m.Recipient || code != m.Code || !bytes.Equal(data, m.Data) || cap(data) != len(data)) {
			t.Fatalf("got %d %d %x, Unmarshal %+v", rec, code, data, m)
		}
	})
}

func FuzzParseWindowAdjust(f *testing.F) {
	addConnSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		var m ChannelWindowAdjust
		errM := m.Unmarshal(p)
		rec, n, err := ParseWindowAdjust(p)
		if !reflect.DeepEqual(err, errM) {
			t.Fatalf("err %v, Unmarshal %v", err, errM)
		}
		if err == nil && (rec != m.Recipient || n != m.Bytes) {
			t.Fatalf("got %d %d, Unmarshal %+v", rec, n, m)
		}
	})
}

func FuzzRecipientOf(f *testing.F) {
	addConnSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		rec, ok := RecipientOf(p)
		r := NewReader(p)
		num := r.Byte()
		want := r.Uint32()
		wantOK := r.Err() == nil && num >= MsgChannelOpenConfirm && num <= MsgChannelFailure
		if !wantOK {
			want = 0
		}
		if rec != want || ok != wantOK {
			t.Fatalf("RecipientOf = %d, %v; want %d, %v", rec, ok, want, wantOK)
		}
	})
}
