package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type appender interface{ Append(b []byte) []byte }

// parseAs adapts a ParseX function to return a pointer, comparable with
// the case values.
func parseAs[T any, PT interface {
	*T
	appender
}](parse func([]byte) (T, error)) func([]byte) (appender, error) {
	return func(b []byte) (appender, error) {
		v, err := parse(b)
		if err != nil {
			if !reflect.ValueOf(v).IsZero() {
				return PT(&v), errors.New("non-zero value returned with " + err.Error())
			}
			return nil, err
		}
		return PT(&v), nil
	}
}

type payloadCase struct {
	name  string
	v     appender
	parse func([]byte) (appender, error)
	num   byte   // DecodeError.Msg
	field string // DecodeError.Field prefix
}

// payloadCases holds at least one non-trivial value per request payload.
func payloadCases() []payloadCase {
	pty := parseAs[PtyReq](ParsePtyReq)
	return []payloadCase{
		{"PtyReq", &PtyReq{Term: "xterm-256color", Cols: 80, Rows: 24, WidthPx: 640, HeightPx: 480,
			Modes: AppendTerminalModes(nil, []TerminalMode{{TermVINTR, 3}, {TermIUTF8, 1}, {TTYOpISpeed, 38400}, {TTYOpOSpeed, 38400}})}, pty, MsgChannelRequest, "pty-req "},
		{"PtyReqNoModes", &PtyReq{Term: "vt100", Modes: []byte{}}, pty, MsgChannelRequest, "pty-req "},
		{"X11Req", &X11Req{SingleConnection: true, AuthProtocol: "MIT-MAGIC-COOKIE-1", AuthCookie: "0123456789abcdef0123456789abcdef", Screen: 0}, parseAs[X11Req](ParseX11Req), MsgChannelRequest, "x11-req "},
		{"EnvReq", &EnvReq{Name: "LANG", Value: "C.UTF-8"}, parseAs[EnvReq](ParseEnvReq), MsgChannelRequest, "env "},
		{"ExecReq", &ExecReq{Command: "echo 'hi' \x00 there"}, parseAs[ExecReq](ParseExecReq), MsgChannelRequest, "exec "},
		{"SubsystemReq", &SubsystemReq{Name: "sftp"}, parseAs[SubsystemReq](ParseSubsystemReq), MsgChannelRequest, "subsystem "},
		{"WindowChange", &WindowChange{Cols: 132, Rows: 43, WidthPx: 1, HeightPx: 2}, parseAs[WindowChange](ParseWindowChange), MsgChannelRequest, "window-change "},
		{"SignalReq", &SignalReq{Name: "INT"}, parseAs[SignalReq](ParseSignalReq), MsgChannelRequest, "signal "},
		{"ExitStatus", &ExitStatus{Status: 130}, parseAs[ExitStatus](ParseExitStatus), MsgChannelRequest, "exit-status "},
		{"ExitSignal", &ExitSignal{Signal: "SEGV", CoreDumped: true, Message: "Segmentation fault", Language: "en-US"}, parseAs[ExitSignal](ParseExitSignal), MsgChannelRequest, "exit-signal "},
		{"DirectTCPIP", &DirectTCPIP{Host: "example.com", Port: 443, OriginAddr: "127.0.0.1", OriginPort: 50000}, parseAs[DirectTCPIP](ParseDirectTCPIP), MsgChannelOpen, "direct-tcpip "},
		{"ForwardedTCPIP", &ForwardedTCPIP{Addr: "0.0.0.0", Port: 8080, OriginAddr: "::1", OriginPort: 40000}, parseAs[ForwardedTCPIP](ParseForwardedTCPIP), MsgChannelOpen, "forwarded-tcpip "},
		{"TCPIPForward", &TCPIPForward{Addr: "", Port: 0}, parseAs[TCPIPForward](ParseTCPIPForward), MsgGlobalRequest, "tcpip-forward "},
		{"TCPIPForwardReply", &TCPIPForwardReply{Port: 34567}, parseAs[TCPIPForwardReply](ParseTCPIPForwardReply), MsgRequestSuccess, "tcpip-forward "},
		{"X11Open", &X11Open{OriginAddr: "192.168.7.38", OriginPort: 6000}, parseAs[X11Open](ParseX11Open), MsgChannelOpen, "x11 "},
		{"DirectStreamLocal", &DirectStreamLocal{Path: "/run/app.sock", Reserved: "", ReservedPort: 0}, parseAs[DirectStreamLocal](ParseDirectStreamLocal), MsgChannelOpen, "direct-streamlocal "},
		{"StreamLocalForward", &StreamLocalForward{Path: "/tmp/fwd.sock"}, parseAs[StreamLocalForward](ParseStreamLocalForward), MsgGlobalRequest, "streamlocal-forward "},
		{"ForwardedStreamLocal", &ForwardedStreamLocal{Path: "/tmp/fwd.sock", Reserved: "r"}, parseAs[ForwardedStreamLocal](ParseForwardedStreamLocal), MsgChannelOpen, "forwarded-streamlocal "},
		{"HostKeys", &HostKeys{Keys: [][]byte{[]byte("key one"), {}, []byte("key three")}}, parseAs[HostKeys](ParseHostKeys), 0, "hostkeys "},
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, tc := range payloadCases() {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			enc := tc.v.Append(prefix)
			if !bytes.HasPrefix(enc, prefix) {
				t.Fatal("Append did not append")
			}
			enc = enc[len(prefix):]
			got, err := tc.parse(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Errorf("parsed %#v\nwant %#v", got, tc.v)
			}
			if re := got.Append(nil); !bytes.Equal(re, enc) {
				t.Errorf("re-encoded %x\nwant %x", re, enc)
			}
			if _, ok := tc.v.(*HostKeys); ok {
				return // reads to the end, see TestHostKeys
			}
			got, err = tc.parse(append(bytes.Clone(enc), "future"...))
			if err != nil || !reflect.DeepEqual(got, tc.v) {
				t.Errorf("with trailing bytes: %#v, %v", got, err)
			}
		})
	}
}

func TestPayloadTruncated(t *testing.T) {
	for _, tc := range payloadCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.v.Append(nil)
			for i := 0; i < len(enc); i++ {
				got, err := tc.parse(enc[:i:i])
				if hk, ok := tc.v.(*HostKeys); ok {
					// A cut between strings is a shorter list.
					if n := stringBoundary(hk, i); n >= 0 {
						if err != nil || len(got.(*HostKeys).Keys) != n {
							t.Fatalf("cut at string boundary %d: %#v, %v", i, got, err)
						}
						continue
					}
				}
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrShort) {
					t.Fatalf("truncated at %d: err = %v, want *DecodeError wrapping ErrShort", i, err)
				}
				if de.Msg != tc.num || !strings.HasPrefix(de.Field, tc.field) {
					t.Errorf("truncated at %d: Msg %d Field %q, want %d %q...", i, de.Msg, de.Field, tc.num, tc.field)
				}
				if got != nil {
					t.Errorf("truncated at %d: returned %#v", i, got)
				}
			}
		})
	}
}

// stringBoundary returns how many whole strings of hk end exactly at
// offset i, or -1 when i falls inside one.
func stringBoundary(hk *HostKeys, i int) int {
	off := 0
	for n, k := range hk.Keys {
		if off == i {
			return n
		}
		off += 4 + len(k)
	}
	if off == i {
		return len(hk.Keys)
	}
	return -1
}

// Exact encodings, written out by hand from RFC 4254 §6–§7 and OpenSSH
// PROTOCOL §2.4–§2.5.
func TestPayloadEncodings(t *testing.T) {
	tests := []struct {
		name string
		v    appender
		want string
	}{
		{"PtyReq", &PtyReq{Term: "vt", Cols: 80, Rows: 24, WidthPx: 0, HeightPx: 0, Modes: []byte{0x35, 0, 0, 0, 1, 0}},
			"00000002 7674 00000050 00000018 00000000 00000000 00000006 3500000001 00"},
		{"X11Req", &X11Req{SingleConnection: false, AuthProtocol: "p", AuthCookie: "c", Screen: 1}, "00 00000001 70 00000001 63 00000001"},
		{"EnvReq", &EnvReq{Name: "A", Value: "b"}, "00000001 41 00000001 62"},
		{"ExecReq", &ExecReq{Command: "ls"}, "00000002 6c73"},
		{"SubsystemReq", &SubsystemReq{Name: "sftp"}, "00000004 73667470"},
		{"WindowChange", &WindowChange{Cols: 1, Rows: 2, WidthPx: 3, HeightPx: 4}, "00000001 00000002 00000003 00000004"},
		{"SignalReq", &SignalReq{Name: "TERM"}, "00000004 5445524d"},
		{"ExitStatus", &ExitStatus{Status: 1}, "00000001"},
		{"ExitSignal", &ExitSignal{Signal: "KILL", CoreDumped: false, Message: "", Language: ""}, "00000004 4b494c4c 00 00000000 00000000"},
		{"DirectTCPIP", &DirectTCPIP{Host: "h", Port: 22, OriginAddr: "o", OriginPort: 1}, "00000001 68 00000016 00000001 6f 00000001"},
		{"ForwardedTCPIP", &ForwardedTCPIP{Addr: "a", Port: 80, OriginAddr: "o", OriginPort: 2}, "00000001 61 00000050 00000001 6f 00000002"},
		{"TCPIPForward", &TCPIPForward{Addr: "", Port: 0}, "00000000 00000000"},
		{"TCPIPForwardReply", &TCPIPForwardReply{Port: 0x8000}, "00008000"},
		{"X11Open", &X11Open{OriginAddr: "x", OriginPort: 6000}, "00000001 78 00001770"},
		{"DirectStreamLocal", &DirectStreamLocal{Path: "/s", Reserved: "", ReservedPort: 0}, "00000002 2f73 00000000 00000000"},
		{"StreamLocalForward", &StreamLocalForward{Path: "/s"}, "00000002 2f73"},
		{"ForwardedStreamLocal", &ForwardedStreamLocal{Path: "/s"}, "00000002 2f73 00000000"},
		{"HostKeys", &HostKeys{Keys: [][]byte{{1}, {2, 3}}}, "00000001 01 00000002 0203"},
		{"HostKeysNone", &HostKeys{}, ""},
	}
	for _, tt := range tests {
		if got, want := tt.v.Append(nil), unhex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("%s: Append = %x, want %x", tt.name, got, want)
		}
	}
}

func TestPtyReqModesAliasing(t *testing.T) {
	enc := (&PtyReq{Term: "t", Modes: []byte{TermECHO, 0, 0, 0, 1, TTYOpEnd}}).Append(nil)
	m, err := ParsePtyReq(enc)
	if err != nil {
		t.Fatal(err)
	}
	enc[len(enc)-2] = 0
	if m.Modes[4] != 0 {
		t.Error("Modes does not alias the data")
	}
	if cap(m.Modes) != len(m.Modes) {
		t.Error("Modes capacity extends past the field")
	}
}

func TestParseTerminalModes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []TerminalMode
		wantErr error
	}{
		{"empty", "", nil, nil},
		{"end only", "00", nil, nil},
		{"one", "35 00000001 00", []TerminalMode{{TermECHO, 1}}, nil},
		{"speeds", "80 00009600 81 00009600 00", []TerminalMode{{TTYOpISpeed, 38400}, {TTYOpOSpeed, 38400}}, nil},
		// RFC 4254 §8: the stream "is terminated by opcode TTY_OP_END".
		{"data after end", "01 00000003 00 02 00000004", []TerminalMode{{TermVINTR, 3}}, nil},
		// "Opcodes 160 to 255 are not yet defined, and cause parsing to stop".
		{"stop at 160", "01 00000003 a0 ff", []TerminalMode{{TermVINTR, 3}}, nil},
		{"stop at 255", "ff", nil, nil},
		{"159 has an argument", "9f 00000007 00", []TerminalMode{{159, 7}}, nil},
		{"unknown opcode kept", "63 00000001", []TerminalMode{{99, 1}}, nil},
		{"no end", "2a 00000001", []TerminalMode{{TermIUTF8, 1}}, nil},
		{"short argument", "35 000000", nil, ErrShort},
		{"opcode only", "01 00000003 35", nil, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTerminalModes(unhex(t, tt.in))
			if tt.wantErr != nil {
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, tt.wantErr) || de.Msg != MsgChannelRequest {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	modes := []TerminalMode{{TermVINTR, 3}, {TermICRNL, 1}, {TermIUTF8, 1}, {TTYOpOSpeed, 9600}}
	enc := AppendTerminalModes(nil, modes)
	if want := unhex(t, "01 00000003 24 00000001 2a 00000001 81 00002580 00"); !bytes.Equal(enc, want) {
		t.Errorf("AppendTerminalModes = %x, want %x", enc, want)
	}
	if got, err := ParseTerminalModes(enc); err != nil || !reflect.DeepEqual(got, modes) {
		t.Errorf("round trip: %v, %v", got, err)
	}
	if got := AppendTerminalModes(nil, nil); !bytes.Equal(got, []byte{TTYOpEnd}) {
		t.Errorf("no modes: %x", got)
	}
}

func TestHostKeys(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    [][]byte
		wantErr error
	}{
		{"empty", "", nil, nil},
		{"one empty string", "00000000", [][]byte{{}}, nil},
		{"two", "00000001 aa 00000002 bbcc", [][]byte{{0xaa}, {0xbb, 0xcc}}, nil},
		{"partial length", "00000001 aa 0000", nil, ErrShort},
		{"length beyond data", "00000001 aa 00000003 bbcc", nil, ErrShort},
		{"huge length", "ffffffff 00", nil, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.in)
			got, err := ParseHostKeys(in)
			if tt.wantErr != nil {
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, tt.wantErr) || de.Field != "hostkeys string" {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Keys, tt.want) {
				t.Errorf("got %x, want %x", got.Keys, tt.want)
			}
			if err == nil && !bytes.Equal(got.Append(nil), in) {
				t.Errorf("re-encoded %x", got.Append(nil))
			}
		})
	}
	in := unhex(t, "00000001 aa 00000001 bb")
	got, err := ParseHostKeys(in)
	if err != nil {
		t.Fatal(err)
	}
	in[4] = 0x11
	if got.Keys[0][0] != 0x11 || cap(got.Keys[0]) != 1 {
		t.Error("Keys do not alias the data, or their capacity extends past the string")
	}
}

// A whole request round trip through the message layer.
func TestChannelRequestWithPayload(t *testing.T) {
	pty := PtyReq{Term: "xterm", Cols: 80, Rows: 24, Modes: AppendTerminalModes(nil, []TerminalMode{{TermECHO, 0}})}
	msg := (&ChannelRequest{Recipient: 4, Type: RequestPty, WantReply: true, Data: pty.Append(nil)}).Marshal(nil)
	var req ChannelRequest
	if err := req.Unmarshal(msg); err != nil {
		t.Fatal(err)
	}
	got, err := ParsePtyReq(req.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, pty) {
		t.Errorf("got %#v", got)
	}
	modes, err := ParseTerminalModes(got.Modes)
	if err != nil || len(modes) != 1 || modes[0] != (TerminalMode{TermECHO, 0}) {
		t.Errorf("modes %v, %v", modes, err)
	}
}

// Fuzz targets for the request payload decoders (see fuzz_test.go).

func FuzzPtyReq(f *testing.F) {
	fuzzPayload(f, ParsePtyReq, (*PtyReq).Append, PtyReq{Term: "xterm", Cols: 80, Rows: 24, Modes: AppendTerminalModes(nil, []TerminalMode{{TermIUTF8, 1}})})
}

func FuzzTerminalModes(f *testing.F) {
	f.Add(AppendTerminalModes(nil, []TerminalMode{{TermVINTR, 3}, {TermIUTF8, 1}, {TTYOpISpeed, 38400}}))
	f.Add([]byte{TermECHO, 0, 0, 0, 1, 0xa0, 1})
	f.Add([]byte{TermECHO, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		modes, err := ParseTerminalModes(p)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || modes != nil {
				t.Fatalf("error %T %v with %v", err, err, modes)
			}
			return
		}
		if len(modes) > len(p)/5 || (modes != nil && len(modes) == 0) {
			t.Fatalf("%d modes from %d bytes", len(modes), len(p))
		}
		for _, m := range modes {
			if m.Opcode == TTYOpEnd || m.Opcode >= 160 {
				t.Fatalf("opcode %d returned", m.Opcode)
			}
		}
		enc := AppendTerminalModes(nil, modes)
		if !bytes.HasPrefix(p, enc[:len(enc)-1]) {
			t.Fatalf("re-encoded %x is not a prefix of %x", enc, p)
		}
		again, err := ParseTerminalModes(enc)
		if err != nil || !reflect.DeepEqual(again, modes) {
			t.Fatalf("round trip %v -> %v, %v", modes, again, err)
		}
	})
}

func FuzzX11Req(f *testing.F) {
	fuzzPayload(f, ParseX11Req, (*X11Req).Append, X11Req{SingleConnection: true, AuthProtocol: "MIT-MAGIC-COOKIE-1", AuthCookie: "00ff", Screen: 1})
}

func FuzzEnvReq(f *testing.F) {
	fuzzPayload(f, ParseEnvReq, (*EnvReq).Append, EnvReq{Name: "LANG", Value: "C"})
}

func FuzzExecReq(f *testing.F) {
	fuzzPayload(f, ParseExecReq, (*ExecReq).Append, ExecReq{Command: "uname -a"})
}

func FuzzSubsystemReq(f *testing.F) {
	fuzzPayload(f, ParseSubsystemReq, (*SubsystemReq).Append, SubsystemReq{Name: "sftp"})
}

func FuzzWindowChange(f *testing.F) {
	fuzzPayload(f, ParseWindowChange, (*WindowChange).Append, WindowChange{Cols: 80, Rows: 24})
}

func FuzzSignalReq(f *testing.F) {
	fuzzPayload(f, ParseSignalReq, (*SignalReq).Append, SignalReq{Name: "HUP"})
}

func FuzzExitStatus(f *testing.F) {
	fuzzPayload(f, ParseExitStatus, (*ExitStatus).Append, ExitStatus{Status: 255})
}

func FuzzExitSignal(f *testing.F) {
	fuzzPayload(f, ParseExitSignal, (*ExitSignal).Append, ExitSignal{Signal: "TERM", CoreDumped: true, Message: "m", Language: "en"})
}

func FuzzDirectTCPIP(f *testing.F) {
	fuzzPayload(f, ParseDirectTCPIP, (*DirectTCPIP).Append, DirectTCPIP{Host: "localhost", Port: 80, OriginAddr: "127.0.0.1", OriginPort: 1234})
}

func FuzzForwardedTCPIP(f *testing.F) {
	fuzzPayload(f, ParseForwardedTCPIP, (*ForwardedTCPIP).Append, ForwardedTCPIP{Addr: "0.0.0.0", Port: 8080, OriginAddr: "10.0.0.1", OriginPort: 4321})
}

func FuzzTCPIPForward(f *testing.F) {
	fuzzPayload(f, ParseTCPIPForward, (*TCPIPForward).Append, TCPIPForward{Addr: "localhost", Port: 0})
}

func FuzzTCPIPForwardReply(f *testing.F) {
	fuzzPayload(f, ParseTCPIPForwardReply, (*TCPIPForwardReply).Append, TCPIPForwardReply{Port: 40000})
}

func FuzzX11Open(f *testing.F) {
	fuzzPayload(f, ParseX11Open, (*X11Open).Append, X11Open{OriginAddr: "127.0.0.1", OriginPort: 6010})
}

func FuzzDirectStreamLocal(f *testing.F) {
	fuzzPayload(f, ParseDirectStreamLocal, (*DirectStreamLocal).Append, DirectStreamLocal{Path: "/tmp/s"})
}

func FuzzStreamLocalForward(f *testing.F) {
	fuzzPayload(f, ParseStreamLocalForward, (*StreamLocalForward).Append, StreamLocalForward{Path: "/tmp/s"})
}

func FuzzForwardedStreamLocal(f *testing.F) {
	fuzzPayload(f, ParseForwardedStreamLocal, (*ForwardedStreamLocal).Append, ForwardedStreamLocal{Path: "/tmp/s"})
}

// HostKeys data is a list of strings filling the data exactly, so anything
// accepted re-encodes to the input itself.
func FuzzHostKeys(f *testing.F) {
	f.Add((&HostKeys{Keys: [][]byte{[]byte("\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x01k"), {}}}).Append(nil))
	f.Add([]byte{0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := ParseHostKeys(p)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || m.Keys != nil {
				t.Fatalf("error %T %v with %v", err, err, m.Keys)
			}
			return
		}
		if enc := m.Append(nil); !bytes.Equal(enc, p) {
			t.Fatalf("re-encoded %x, input %x", enc, p)
		}
		if m.Keys != nil && len(m.Keys) == 0 {
			t.Fatal("empty non-nil Keys")
		}
	})
}
