package wire

import (
	"bytes"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type message interface {
	Marshal(b []byte) []byte
	Unmarshal(p []byte) error
}

type msgCase struct {
	name string
	num  byte
	msg  message        // value to encode; decoding must reproduce it
	zero func() message // fresh receiver
}

func mustBig(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic(s)
	}
	return n
}

func sampleKexInit() *KexInit {
	return &KexInit{
		Cookie:                  [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		KexAlgos:                []string{"mlkem768x25519-sha256", "curve25519-sha256", "ext-info-c", "kex-strict-c-v00@openssh.com"},
		HostKeyAlgos:            []string{"ssh-ed25519", "rsa-sha2-512"},
		CiphersClientServer:     []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"},
		CiphersServerClient:     []string{"aes256-ctr"},
		MACsClientServer:        []string{"hmac-sha2-256-etm@openssh.com"},
		MACsServerClient:        []string{"hmac-sha2-256"},
		CompressionClientServer: []string{"none"},
		CompressionServerClient: []string{"none", "zlib@openssh.com"},
		FirstKexFollows:         true,
	}
}

// msgCases holds at least one non-trivial value per message type.
func msgCases() []msgCase {
	return []msgCase{
		{"Disconnect", MsgDisconnect, &Disconnect{Reason: DisconnectByApplication, Message: "bye", Language: "en"}, func() message { return new(Disconnect) }},
		{"DisconnectEmpty", MsgDisconnect, &Disconnect{Reason: DisconnectProtocolError}, func() message { return new(Disconnect) }},
		{"Ignore", MsgIgnore, &Ignore{Data: []byte("padding\x00\xff")}, func() message { return new(Ignore) }},
		{"Unimplemented", MsgUnimplemented, &Unimplemented{Seq: 0xfffffffe}, func() message { return new(Unimplemented) }},
		{"Debug", MsgDebug, &Debug{AlwaysDisplay: true, Message: "hello", Language: ""}, func() message { return new(Debug) }},
		{"ServiceRequest", MsgServiceRequest, &ServiceRequest{Service: "ssh-userauth"}, func() message { return new(ServiceRequest) }},
		{"ServiceAccept", MsgServiceAccept, &ServiceAccept{Service: "ssh-connection"}, func() message { return new(ServiceAccept) }},
		{"ExtInfo", MsgExtInfo, &ExtInfo{Extensions: []Extension{
			{Name: "server-sig-algs", Value: []byte("ssh-ed25519,rsa-sha2-512")},
			{Name: "ping@openssh.com", Value: []byte("0")},
			{Name: "empty", Value: []byte{}},
		}}, func() message { return new(ExtInfo) }},
		{"ExtInfoNone", MsgExtInfo, &ExtInfo{}, func() message { return new(ExtInfo) }},
		{"KexInit", MsgKexInit, sampleKexInit(), func() message { return new(KexInit) }},
		{"KexInitEmpty", MsgKexInit, &KexInit{Reserved: 7}, func() message { return new(KexInit) }},
		{"NewKeys", MsgNewKeys, &NewKeys{}, func() message { return new(NewKeys) }},
		{"KexECDHInit", MsgKexECDHInit, &KexECDHInit{ClientPub: bytes.Repeat([]byte{9}, 32)}, func() message { return new(KexECDHInit) }},
		{"KexECDHReply", MsgKexECDHReply, &KexECDHReply{HostKey: []byte("hostkey"), ServerPub: bytes.Repeat([]byte{7}, 32), Signature: []byte("sig")}, func() message { return new(KexECDHReply) }},
		{"KexDHInit", MsgKexDHInit, &KexDHInit{E: mustBig("9a378f9b2e332a7")}, func() message { return new(KexDHInit) }},
		{"KexDHInitNegative", MsgKexDHInit, &KexDHInit{E: mustBig("-deadbeef")}, func() message { return new(KexDHInit) }},
		{"KexDHReply", MsgKexDHReply, &KexDHReply{HostKey: []byte("hostkey"), F: mustBig("80"), Signature: []byte("sig")}, func() message { return new(KexDHReply) }},
		{"KexDHGexRequest", MsgKexDHGexRequest, &KexDHGexRequest{Min: 2048, N: 3072, Max: 8192}, func() message { return new(KexDHGexRequest) }},
		{"KexDHGexRequestOld", MsgKexDHGexRequestOld, &KexDHGexRequestOld{N: 2048}, func() message { return new(KexDHGexRequestOld) }},
		{"KexDHGexGroup", MsgKexDHGexGroup, &KexDHGexGroup{P: mustBig("ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd1"), G: big.NewInt(2)}, func() message { return new(KexDHGexGroup) }},
		{"KexDHGexInit", MsgKexDHGexInit, &KexDHGexInit{E: mustBig("1234567890abcdef")}, func() message { return new(KexDHGexInit) }},
		{"KexDHGexReply", MsgKexDHGexReply, &KexDHGexReply{HostKey: []byte("k"), F: big.NewInt(0), Signature: []byte("s")}, func() message { return new(KexDHGexReply) }},
		{"Ping", MsgPing, &Ping{Data: []byte("ping data")}, func() message { return new(Ping) }},
		{"Pong", MsgPong, &Pong{Data: []byte{}}, func() message { return new(Pong) }},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range msgCases() {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			enc := tc.msg.Marshal(prefix)
			if !bytes.HasPrefix(enc, prefix) {
				t.Fatal("Marshal did not append")
			}
			enc = enc[len(prefix):]
			if enc[0] != tc.num {
				t.Fatalf("message number %d, want %d", enc[0], tc.num)
			}
			got := tc.zero()
			if err := got.Unmarshal(enc); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("decoded %#v\nwant %#v", got, tc.msg)
			}
			if re := got.Marshal(nil); !bytes.Equal(re, enc) {
				t.Errorf("re-encoded %x\nwant %x", re, enc)
			}
			// Trailing bytes are ignored (future extensions).
			got2 := tc.zero()
			if err := got2.Unmarshal(append(bytes.Clone(enc), "future"...)); err != nil {
				t.Fatalf("with trailing bytes: %v", err)
			}
			if _, isIgnore := tc.msg.(*Ignore); !isIgnore && !reflect.DeepEqual(got2, tc.msg) {
				t.Errorf("with trailing bytes decoded %#v", got2)
			}
		})
	}
}

// Truncating any message at any byte offset is an error, never a panic,
// and the receiver is left unchanged.
func TestMessageTruncated(t *testing.T) {
	for _, tc := range msgCases() {
		if _, ok := tc.msg.(*Ignore); ok {
			continue // lenient, see TestIgnoreLenient
		}
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.msg.Marshal(nil)
			for i := 0; i < len(enc); i++ {
				got := tc.zero()
				if err := got.Unmarshal(enc); err != nil {
					t.Fatal(err)
				}
				before := reflect.ValueOf(got).Elem().Interface()
				err := got.Unmarshal(enc[:i:i])
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrShort) {
					t.Fatalf("truncated at %d: err = %v, want *DecodeError wrapping ErrShort", i, err)
				}
				if de.Msg != tc.num {
					t.Errorf("truncated at %d: DecodeError.Msg = %d, want %d", i, de.Msg, tc.num)
				}
				if !strings.HasPrefix(err.Error(), "sshtap: wire: "+MsgName(tc.num)+": ") {
					t.Errorf("error text %q", err)
				}
				if !reflect.DeepEqual(reflect.ValueOf(got).Elem().Interface(), before) {
					t.Errorf("truncated at %d: receiver modified", i)
				}
			}
		})
	}
}

func TestMessageWrongNumber(t *testing.T) {
	for _, tc := range msgCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.msg.Marshal(nil)
			for _, bad := range []byte{0, tc.num + 1, tc.num - 1, 255} {
				enc[0] = bad
				err := tc.zero().Unmarshal(enc)
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrMsgNumber) || de.Msg != tc.num {
					t.Errorf("number %d: err = %v", bad, err)
				}
			}
		})
	}
}

// Exact encodings, written out by hand from the RFC layouts.
func TestMessageEncodings(t *testing.T) {
	tests := []struct {
		name string
		msg  message
		want string
	}{
		{"Disconnect", &Disconnect{Reason: 2, Message: "x", Language: ""}, "01 00000002 00000001 78 00000000"},
		{"Ignore", &Ignore{Data: []byte{0xaa}}, "02 00000001 aa"},
		{"Unimplemented", &Unimplemented{Seq: 3}, "03 00000003"},
		{"Debug", &Debug{AlwaysDisplay: true, Message: "m", Language: "en"}, "04 01 00000001 6d 00000002 656e"},
		{"ServiceRequest", &ServiceRequest{Service: "ssh-userauth"}, "05 0000000c 7373682d7573657261757468"},
		{"ServiceAccept", &ServiceAccept{Service: "a"}, "06 00000001 61"},
		{"ExtInfo", &ExtInfo{Extensions: []Extension{{Name: "a", Value: []byte("0")}}}, "07 00000001 00000001 61 00000001 30"},
		{"KexInit", &KexInit{Cookie: [16]byte{15: 1}, KexAlgos: []string{"a", "b"}, LanguagesServerClient: []string{"c"}, FirstKexFollows: false, Reserved: 0},
			"14 00000000000000000000000000000001 00000003 612c62" + strings.Repeat(" 00000000", 8) + " 00000001 63 00 00000000"},
		{"NewKeys", &NewKeys{}, "15"},
		{"KexECDHInit", &KexECDHInit{ClientPub: []byte{1, 2}}, "1e 00000002 0102"},
		{"KexECDHReply", &KexECDHReply{HostKey: []byte{1}, ServerPub: []byte{2}, Signature: []byte{3}}, "1f 00000001 01 00000001 02 00000001 03"},
		{"KexDHInit", &KexDHInit{E: big.NewInt(0x80)}, "1e 00000002 0080"},
		{"KexDHInitNil", &KexDHInit{}, "1e 00000000"},
		{"KexDHReply", &KexDHReply{HostKey: []byte{1}, F: big.NewInt(-1), Signature: nil}, "1f 00000001 01 00000001 ff 00000000"},
		{"KexDHGexRequest", &KexDHGexRequest{Min: 2048, N: 3072, Max: 8192}, "22 00000800 00000c00 00002000"},
		{"KexDHGexRequestOld", &KexDHGexRequestOld{N: 1024}, "1e 00000400"},
		{"KexDHGexGroup", &KexDHGexGroup{P: big.NewInt(23), G: big.NewInt(5)}, "1f 00000001 17 00000001 05"},
		{"KexDHGexInit", &KexDHGexInit{E: big.NewInt(1)}, "20 00000001 01"},
		{"KexDHGexReply", &KexDHGexReply{HostKey: []byte{}, F: big.NewInt(2), Signature: []byte{4}}, "21 00000000 00000001 02 00000001 04"},
		{"Ping", &Ping{Data: []byte("p")}, "c0 00000001 70"},
		{"Pong", &Pong{Data: []byte("p")}, "c1 00000001 70"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.msg.Marshal(nil), unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Marshal = %x\nwant      %x", got, want)
			}
		})
	}
}

func TestMessageAliasing(t *testing.T) {
	enc := (&KexECDHReply{HostKey: []byte("hk"), ServerPub: []byte("q"), Signature: []byte("s")}).Marshal(nil)
	var m KexECDHReply
	if err := m.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	enc[5] = 'X' // first byte of K_S
	if string(m.HostKey) != "Xk" {
		t.Errorf("HostKey = %q, want it to alias the payload", m.HostKey)
	}
	// Strings copy.
	enc = (&ServiceRequest{Service: "ssh-userauth"}).Marshal(nil)
	var s ServiceRequest
	if err := s.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	enc[5] = 'X'
	if s.Service != "ssh-userauth" {
		t.Errorf("Service = %q, want a copy", s.Service)
	}
}

// RFC 4253 §11.2: IGNORE "MUST" be understood at any time; a truncated
// string still yields the bytes present.
func TestIgnoreLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []byte
	}{
		{"number only", "02", []byte{}},
		{"partial length", "02 00 00", []byte{}},
		{"truncated data", "02 00 00 00 05 61 62", []byte("ab")},
		{"huge length", "02 ff ff ff ff 61", []byte("a")},
		{"exact", "02 00 00 00 02 61 62", []byte("ab")},
		{"trailing", "02 00 00 00 01 61 62", []byte("a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Ignore{Data: []byte("old")}
			if err := m.Unmarshal(unhex(t, tt.in)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Data, tt.want) || m.Data == nil {
				t.Errorf("Data = %#v, want %q", m.Data, tt.want)
			}
		})
	}
	var m Ignore
	if err := m.Unmarshal(nil); !errors.Is(err, ErrShort) {
		t.Errorf("empty payload: %v", err)
	}
	if err := m.Unmarshal([]byte{MsgDebug, 0, 0, 0, 0}); !errors.Is(err, ErrMsgNumber) {
		t.Errorf("wrong number: %v", err)
	}
}

func TestExtInfoBounds(t *testing.T) {
	withCount := func(n uint32, pairs int) []byte {
		b := []byte{MsgExtInfo}
		b = AppendUint32(b, n)
		for range pairs {
			b = AppendString(b, "n")
			b = AppendString(b, "")
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    int
		wantErr error
	}{
		{"zero", withCount(0, 0), 0, nil},
		{"max", withCount(MaxExtensions-1, MaxExtensions-1), MaxExtensions - 1, nil},
		// OpenSSH 9.6 kex_input_ext_info: "if (ninfo >= 1024) ... too many".
		{"at limit", withCount(MaxExtensions, MaxExtensions), 0, ErrTooMany},
		{"huge count", withCount(0xffffffff, 1), 0, ErrTooMany},
		{"count beyond payload", withCount(1000, 2), 0, ErrShort},
		{"short pair", withCount(2, 1), 0, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m ExtInfo
			err := m.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(m.Extensions) != tt.want {
				t.Errorf("%d extensions, want %d", len(m.Extensions), tt.want)
			}
		})
	}
}

func TestKexInitNameListErrors(t *testing.T) {
	base := sampleKexInit()
	tests := []struct {
		name    string
		mutate  func(k *KexInit)
		field   string
		wantErr error
	}{
		{"nul in language", func(k *KexInit) { k.LanguagesClientServer = []string{"e\x00"} }, "languages_client_to_server", ErrBadName},
		{"nul in kex", func(k *KexInit) { k.KexAlgos = []string{"", "a\x00b"} }, "kex_algorithms", ErrBadName},
		{"too many host keys", func(k *KexInit) { k.HostKeyAlgos = slices.Repeat([]string{"x"}, MaxNameListEntries+1) }, "server_host_key_algorithms", ErrTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := *base
			tt.mutate(&k)
			var got KexInit
			err := got.Unmarshal(k.Marshal(nil))
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tt.wantErr) || de.Field != tt.field || de.Msg != MsgKexInit {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

// kexInitWithRawLists encodes a KEXINIT whose ten name-lists are the given
// strings verbatim, so that a test can put in what AppendNameList never
// writes.
func kexInitWithRawLists(lists [10]string, follows bool) []byte {
	b := append([]byte{MsgKexInit}, make([]byte, 16)...)
	for _, l := range lists {
		b = AppendString(b, l)
	}
	b = AppendBool(b, follows)
	return AppendUint32(b, 0)
}

// TestKexInitSkipsEmptyNames: a KEXINIT whose lists have a trailing, a
// leading or a doubled comma (libssh 0.10 ends every list with one)
// decodes with the empty names dropped, in every one of the ten lists.
func TestKexInitSkipsEmptyNames(t *testing.T) {
	want := sampleKexInit()
	want.Cookie = [16]byte{}
	want.LanguagesClientServer = []string{"en"}
	want.LanguagesServerClient = []string{"en", "de"}
	lists := func(k *KexInit) [10][]string {
		return [10][]string{k.KexAlgos, k.HostKeyAlgos, k.CiphersClientServer, k.CiphersServerClient,
			k.MACsClientServer, k.MACsServerClient, k.CompressionClientServer, k.CompressionServerClient,
			k.LanguagesClientServer, k.LanguagesServerClient}
	}
	for _, shape := range []struct {
		name string
		edit func(names []string) string
	}{
		{"trailing", func(n []string) string { return strings.Join(n, ",") + "," }},
		{"leading", func(n []string) string { return "," + strings.Join(n, ",") }},
		{"doubled", func(n []string) string { return strings.Join(n, ",,") + ",," }},
		{"all", func(n []string) string { return ",," + strings.Join(n, ",,") + "," }},
	} {
		t.Run(shape.name, func(t *testing.T) {
			var raw [10]string
			for i, l := range lists(want) {
				raw[i] = shape.edit(l)
			}
			p := kexInitWithRawLists(raw, true)
			orig := bytes.Clone(p)
			var got KexInit
			if err := got.Unmarshal(p); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("decoded %+v\nwant    %+v", got, *want)
			}
			if !bytes.Equal(p, orig) {
				t.Error("Unmarshal modified the payload")
			}
		})
	}
	t.Run("commas only", func(t *testing.T) {
		var got KexInit
		if err := got.Unmarshal(kexInitWithRawLists([10]string{",", ",,", ",", ",", ",", ",", ",", ",", ",", ","}, false)); err != nil {
			t.Fatal(err)
		}
		for i, l := range lists(&got) {
			if l != nil {
				t.Errorf("list %d = %q, want empty", i, l)
			}
		}
	})
}

func TestKexInitMarshalNoAlloc(t *testing.T) {
	k := sampleKexInit()
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		buf = k.Marshal(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("KexInit.Marshal: %v allocs/op, want 0", allocs)
	}
}

func TestReaderChannelDataNoAlloc(t *testing.T) {
	p := channelDataPayload()
	var sum int
	allocs := testing.AllocsPerRun(100, func() {
		sum += readChannelData(p)
	})
	if allocs != 0 {
		t.Errorf("Reader on CHANNEL_DATA: %v allocs/op, want 0", allocs)
	}
	if sum == 0 {
		t.Error("nothing read")
	}
}

func TestAppendMpintNoAlloc(t *testing.T) {
	n := mustBig("ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd1")
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendMpint(buf[:0], n)
		buf = AppendMpintBytes(buf, []byte{0, 0x80, 1})
	})
	if allocs != 0 {
		t.Errorf("AppendMpint: %v allocs/op, want 0", allocs)
	}
}

// channelDataPayload is an SSH_MSG_CHANNEL_DATA (RFC 4254 §5.2):
// byte 94, uint32 recipient channel, string data.
func channelDataPayload() []byte {
	p := []byte{MsgChannelData}
	p = AppendUint32(p, 7)
	return AppendBytes(p, bytes.Repeat([]byte{'x'}, 32<<10))
}

func readChannelData(p []byte) int {
	r := NewReader(p)
	if !r.Expect(MsgChannelData) {
		return 0
	}
	ch := r.Field("recipient channel").Uint32()
	data := r.Field("data").Bytes()
	if r.Err() != nil {
		return 0
	}
	return int(ch) + len(data)
}

func BenchmarkKexInitMarshal(b *testing.B) {
	k := sampleKexInit()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = k.Marshal(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkKexInitUnmarshal(b *testing.B) {
	p := sampleKexInit().Marshal(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	var k KexInit
	for b.Loop() {
		if err := k.Unmarshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReaderChannelData(b *testing.B) {
	p := channelDataPayload()
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if readChannelData(p) == 0 {
			b.Fatal("decode failed")
		}
	}
}
