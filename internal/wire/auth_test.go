package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// authCases holds at least one non-trivial value per user authentication
// message type.
func authCases() []msgCase {
	pk := AppendPublicKeyAuth(nil, PublicKeyAuth{Signed: true, Algorithm: "ssh-ed25519", PublicKey: []byte("blob"), Signature: []byte("sig")}, false)
	return []msgCase{
		{"UserAuthRequestNone", MsgUserAuthRequest, &UserAuthRequest{User: "alice", Service: ServiceConnection, Method: MethodNone, Rest: []byte{}}, func() message { return new(UserAuthRequest) }},
		{"UserAuthRequestPublicKey", MsgUserAuthRequest, &UserAuthRequest{User: "bob", Service: ServiceConnection, Method: MethodPublicKey, Rest: pk}, func() message { return new(UserAuthRequest) }},
		{"UserAuthRequestPassword", MsgUserAuthRequest, &UserAuthRequest{User: "ü", Service: ServiceConnection, Method: MethodPassword, Rest: AppendPasswordAuth(nil, PasswordAuth{Password: "pw"})}, func() message { return new(UserAuthRequest) }},
		{"UserAuthFailure", MsgUserAuthFailure, &UserAuthFailure{Methods: []string{"publickey", "password", "keyboard-interactive"}, PartialSuccess: true}, func() message { return new(UserAuthFailure) }},
		{"UserAuthFailureEmpty", MsgUserAuthFailure, &UserAuthFailure{}, func() message { return new(UserAuthFailure) }},
		{"UserAuthSuccess", MsgUserAuthSuccess, &UserAuthSuccess{}, func() message { return new(UserAuthSuccess) }},
		{"UserAuthBanner", MsgUserAuthBanner, &UserAuthBanner{Message: "Welcome\r\n", Language: "en"}, func() message { return new(UserAuthBanner) }},
		{"UserAuthPKOK", MsgUserAuthPKOK, &UserAuthPKOK{Algorithm: "rsa-sha2-512", PublicKey: []byte("\x00\x00\x00\x07ssh-rsa")}, func() message { return new(UserAuthPKOK) }},
		{"UserAuthPasswdChangeReq", MsgUserAuthPasswdChangeReq, &UserAuthPasswdChangeReq{Prompt: "Password expired", Language: ""}, func() message { return new(UserAuthPasswdChangeReq) }},
		{"UserAuthInfoRequest", MsgUserAuthInfoRequest, &UserAuthInfoRequest{Name: "n", Instruction: "i", Language: "", Prompts: []Prompt{{"Password: ", false}, {"Name: ", true}}}, func() message { return new(UserAuthInfoRequest) }},
		{"UserAuthInfoRequestNone", MsgUserAuthInfoRequest, &UserAuthInfoRequest{Instruction: "no prompts"}, func() message { return new(UserAuthInfoRequest) }},
		{"UserAuthInfoResponse", MsgUserAuthInfoResponse, &UserAuthInfoResponse{Responses: []string{"secret", ""}}, func() message { return new(UserAuthInfoResponse) }},
		{"UserAuthInfoResponseNone", MsgUserAuthInfoResponse, &UserAuthInfoResponse{}, func() message { return new(UserAuthInfoResponse) }},
	}
}

// restOf returns the field of m that takes the rest of the payload.
func restOf(m message) (rest []byte, ok bool) {
	switch m := m.(type) {
	case *UserAuthRequest:
		return m.Rest, true
	case *GlobalRequest:
		return m.Data, true
	case *RequestSuccess:
		return m.Data, true
	case *ChannelOpen:
		return m.Extra, true
	case *ChannelOpenConfirm:
		return m.Extra, true
	case *ChannelRequest:
		return m.Data, true
	}
	return nil, false
}

// testMessages runs the round-trip, truncation and wrong-number checks of
// messages_test.go over cases, allowing for a last field that takes the
// rest of the payload.
func testMessages(t *testing.T, cases []msgCase) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, tc := range cases {
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
				// Trailing bytes are ignored (future extensions), or become
				// part of the last field when it takes the rest.
				long := append(bytes.Clone(enc), "future"...)
				got2 := tc.zero()
				if err := got2.Unmarshal(long); err != nil {
					t.Fatalf("with trailing bytes: %v", err)
				}
				if rest, ok := restOf(got2); ok {
					if !bytes.HasSuffix(rest, []byte("future")) {
						t.Errorf("with trailing bytes: rest field %q", rest)
					}
					if re := got2.Marshal(nil); !bytes.Equal(re, long) {
						t.Errorf("with trailing bytes re-encoded %x", re)
					}
				} else if !reflect.DeepEqual(got2, tc.msg) {
					t.Errorf("with trailing bytes decoded %#v", got2)
				}
			})
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				enc := tc.msg.Marshal(nil)
				rest, _ := restOf(tc.msg)
				fixed := len(enc) - len(rest)
				for i := 0; i < len(enc); i++ {
					got := tc.zero()
					if err := got.Unmarshal(enc); err != nil {
						t.Fatal(err)
					}
					before := reflect.ValueOf(got).Elem().Interface()
					err := got.Unmarshal(enc[:i:i])
					if i >= fixed {
						// Cut inside the rest field: still a message.
						if err != nil {
							t.Fatalf("cut at %d inside the rest field: %v", i, err)
						}
						continue
					}
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
	})
	t.Run("WrongNumber", func(t *testing.T) {
		for _, tc := range cases {
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
	})
}

func TestAuthMessages(t *testing.T) { testMessages(t, authCases()) }

func testEncodings(t *testing.T, tests []struct {
	name string
	msg  message
	want string
}) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.msg.Marshal(nil), unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Marshal = %x\nwant      %x", got, want)
			}
		})
	}
}

// Exact encodings, written out by hand from the RFC layouts.
func TestAuthMessageEncodings(t *testing.T) {
	testEncodings(t, []struct {
		name string
		msg  message
		want string
	}{
		{"UserAuthRequest", &UserAuthRequest{User: "u", Service: "s", Method: "none"}, "32 00000001 75 00000001 73 00000004 6e6f6e65"},
		{"UserAuthRequestRest", &UserAuthRequest{User: "", Service: "", Method: "m", Rest: []byte{1, 2}}, "32 00000000 00000000 00000001 6d 0102"},
		{"UserAuthFailure", &UserAuthFailure{Methods: []string{"a", "b"}, PartialSuccess: true}, "33 00000003 612c62 01"},
		{"UserAuthSuccess", &UserAuthSuccess{}, "34"},
		{"UserAuthBanner", &UserAuthBanner{Message: "hi", Language: "en"}, "35 00000002 6869 00000002 656e"},
		{"UserAuthPKOK", &UserAuthPKOK{Algorithm: "a", PublicKey: []byte{9}}, "3c 00000001 61 00000001 09"},
		{"UserAuthPasswdChangeReq", &UserAuthPasswdChangeReq{Prompt: "p", Language: ""}, "3c 00000001 70 00000000"},
		{"UserAuthInfoRequest", &UserAuthInfoRequest{Name: "n", Instruction: "", Language: "", Prompts: []Prompt{{"P", false}, {"Q", true}}},
			"3c 00000001 6e 00000000 00000000 00000002 00000001 50 00 00000001 51 01"},
		{"UserAuthInfoRequestNone", &UserAuthInfoRequest{}, "3c 00000000 00000000 00000000 00000000"},
		{"UserAuthInfoResponse", &UserAuthInfoResponse{Responses: []string{"r", ""}}, "3d 00000002 00000001 72 00000000"},
	})
}

func TestUserAuthRequestFields(t *testing.T) {
	enc := (&UserAuthRequest{User: "alice", Service: "ssh-connection", Method: "publickey"}).Marshal(nil)
	tests := []struct {
		cut   int
		field string
	}{
		{1, "user name"},
		{1 + 4 + 5, "service name"},
		{1 + 4 + 5 + 4 + 14 + 2, "method name"},
	}
	for _, tt := range tests {
		var m UserAuthRequest
		err := m.Unmarshal(enc[:tt.cut])
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != tt.field {
			t.Errorf("cut at %d: err = %v, want field %q", tt.cut, err, tt.field)
		}
	}
}

func TestUserAuthRequestAliasing(t *testing.T) {
	enc := (&UserAuthRequest{User: "u", Service: "s", Method: "m", Rest: []byte("xyz")}).Marshal(nil)
	var m UserAuthRequest
	if err := m.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	enc[len(enc)-3] = 'X'
	enc[5] = 'U'
	if string(m.Rest) != "Xyz" {
		t.Errorf("Rest = %q, want it to alias the payload", m.Rest)
	}
	if m.User != "u" {
		t.Errorf("User = %q, want a copy", m.User)
	}
}

func TestUserAuthInfoBounds(t *testing.T) {
	req := func(n uint32, prompts int) []byte {
		b := (&UserAuthInfoRequest{}).Marshal(nil)
		b = b[:len(b)-4]
		b = AppendUint32(b, n)
		for range prompts {
			b = AppendString(b, "p")
			b = AppendBool(b, true)
		}
		return b
	}
	resp := func(n uint32, responses int) []byte {
		b := []byte{MsgUserAuthInfoResponse}
		b = AppendUint32(b, n)
		for range responses {
			b = AppendString(b, "")
		}
		return b
	}
	tests := []struct {
		name    string
		msg     message
		in      []byte
		want    int
		wantErr error
		field   string
	}{
		{"request zero", new(UserAuthInfoRequest), req(0, 0), 0, nil, ""},
		{"request max", new(UserAuthInfoRequest), req(MaxPrompts, MaxPrompts), MaxPrompts, nil, ""},
		{"request over max", new(UserAuthInfoRequest), req(MaxPrompts+1, MaxPrompts+1), 0, ErrTooMany, "num-prompts"},
		{"request huge", new(UserAuthInfoRequest), req(0xffffffff, 1), 0, ErrTooMany, "num-prompts"},
		{"request beyond payload", new(UserAuthInfoRequest), req(100, 3), 0, ErrShort, "num-prompts"},
		{"request missing echo", new(UserAuthInfoRequest), append(req(2, 1), 0, 0, 0, 1, 'x'), 0, ErrShort, "echo"},
		{"response zero", new(UserAuthInfoResponse), resp(0, 0), 0, nil, ""},
		{"response max", new(UserAuthInfoResponse), resp(MaxPrompts, MaxPrompts), MaxPrompts, nil, ""},
		{"response over max", new(UserAuthInfoResponse), resp(MaxPrompts+1, MaxPrompts+1), 0, ErrTooMany, "num-responses"},
		{"response huge", new(UserAuthInfoResponse), resp(0xffffffff, 0), 0, ErrTooMany, "num-responses"},
		{"response beyond payload", new(UserAuthInfoResponse), resp(3, 2), 0, ErrShort, "num-responses"},
		{"response bad string", new(UserAuthInfoResponse), append(resp(2, 1), 0, 0, 0, 9, 'x', 'y', 'z', 'w'), 0, ErrShort, "response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.msg.Unmarshal(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, tt.wantErr) || de.Field != tt.field {
					t.Fatalf("err = %v, want %v in %q", err, tt.wantErr, tt.field)
				}
			}
			var n int
			switch m := tt.msg.(type) {
			case *UserAuthInfoRequest:
				n = len(m.Prompts)
			case *UserAuthInfoResponse:
				n = len(m.Responses)
			}
			if n != tt.want {
				t.Errorf("%d entries, want %d", n, tt.want)
			}
		})
	}
}

func TestUserAuthFailureBadNameList(t *testing.T) {
	p := []byte{MsgUserAuthFailure}
	p = AppendString(p, "password,,publickey")
	p = AppendBool(p, false)
	var m UserAuthFailure
	if err := m.Unmarshal(p); !errors.Is(err, ErrEmptyName) {
		t.Errorf("err = %v, want ErrEmptyName", err)
	}
}

// methodCase is one method-specific field set of USERAUTH_REQUEST.
type methodCase struct {
	name  string
	enc   []byte
	parse func([]byte) (any, error)
	want  any
}

func methodCases() []methodCase {
	pk := func(hostbound bool) func([]byte) (any, error) {
		return func(b []byte) (any, error) { return ParsePublicKeyAuth(b, hostbound) }
	}
	pw := func(b []byte) (any, error) { return ParsePasswordAuth(b) }
	ki := func(b []byte) (any, error) { return ParseKeyboardInteractiveAuth(b) }
	query := PublicKeyAuth{Algorithm: "ssh-ed25519", PublicKey: []byte("key")}
	signed := PublicKeyAuth{Signed: true, Algorithm: "rsa-sha2-256", PublicKey: []byte("key"), Signature: []byte("signature")}
	hbQuery := PublicKeyAuth{Algorithm: "ssh-ed25519", PublicKey: []byte("key"), HostKey: []byte("hostkey")}
	hbSigned := PublicKeyAuth{Signed: true, Algorithm: "ssh-ed25519", PublicKey: []byte("key"), HostKey: []byte{}, Signature: []byte("s")}
	pass := PasswordAuth{Password: "hunter2"}
	change := PasswordAuth{Change: true, Password: "old", NewPassword: "new"}
	kbd := KeyboardInteractiveAuth{Language: "", Submethods: "pam"}
	return []methodCase{
		{"PublicKeyQuery", AppendPublicKeyAuth(nil, query, false), pk(false), query},
		{"PublicKeySigned", AppendPublicKeyAuth(nil, signed, false), pk(false), signed},
		{"HostboundQuery", AppendPublicKeyAuth(nil, hbQuery, true), pk(true), hbQuery},
		{"HostboundSigned", AppendPublicKeyAuth(nil, hbSigned, true), pk(true), hbSigned},
		{"Password", AppendPasswordAuth(nil, pass), pw, pass},
		{"PasswordChange", AppendPasswordAuth(nil, change), pw, change},
		{"KeyboardInteractive", AppendKeyboardInteractiveAuth(nil, kbd), ki, kbd},
	}
}

func TestAuthMethodFields(t *testing.T) {
	for _, tc := range methodCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse(tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parsed %#v\nwant %#v", got, tc.want)
			}
			got, err = tc.parse(append(bytes.Clone(tc.enc), "future"...))
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("with trailing bytes: %#v, %v", got, err)
			}
			for i := range len(tc.enc) {
				got, err := tc.parse(tc.enc[:i:i])
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrShort) || de.Msg != MsgUserAuthRequest {
					t.Fatalf("truncated at %d: err = %v", i, err)
				}
				if !strings.HasPrefix(err.Error(), "sshtap: wire: SSH_MSG_USERAUTH_REQUEST: ") {
					t.Errorf("error text %q", err)
				}
				if !reflect.ValueOf(got).IsZero() {
					t.Errorf("truncated at %d: returned %#v", i, got)
				}
			}
		})
	}
}

func TestAuthMethodEncodings(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		// RFC 4252 §7: query without signature.
		{"publickey query", AppendPublicKeyAuth(nil, PublicKeyAuth{Algorithm: "a", PublicKey: []byte{1}, HostKey: []byte{7}, Signature: []byte{8}}, false),
			"00 00000001 61 00000001 01"},
		{"publickey signed", AppendPublicKeyAuth(nil, PublicKeyAuth{Signed: true, Algorithm: "a", PublicKey: []byte{1}, HostKey: []byte{7}, Signature: []byte{8}}, false),
			"01 00000001 61 00000001 01 00000001 08"},
		// OpenSSH PROTOCOL §3.1: the host key follows the key blob.
		{"hostbound signed", AppendPublicKeyAuth(nil, PublicKeyAuth{Signed: true, Algorithm: "a", PublicKey: []byte{1}, HostKey: []byte{7}, Signature: []byte{8}}, true),
			"01 00000001 61 00000001 01 00000001 07 00000001 08"},
		{"hostbound query", AppendPublicKeyAuth(nil, PublicKeyAuth{Algorithm: "a", PublicKey: []byte{1}, HostKey: []byte{7}}, true),
			"00 00000001 61 00000001 01 00000001 07"},
		// RFC 4252 §8.
		{"password", AppendPasswordAuth(nil, PasswordAuth{Password: "p", NewPassword: "ignored"}), "00 00000001 70"},
		{"password change", AppendPasswordAuth(nil, PasswordAuth{Change: true, Password: "o", NewPassword: "n"}), "01 00000001 6f 00000001 6e"},
		// RFC 4256 §3.1.
		{"keyboard-interactive", AppendKeyboardInteractiveAuth(nil, KeyboardInteractiveAuth{Submethods: "s"}), "00000000 00000001 73"},
	}
	for _, tt := range tests {
		if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s: got %x, want %x", tt.name, tt.got, want)
		}
	}
}

func TestParsePublicKeyAuthAliasing(t *testing.T) {
	enc := AppendPublicKeyAuth(nil, PublicKeyAuth{Signed: true, Algorithm: "a", PublicKey: []byte("k"), HostKey: []byte("h"), Signature: []byte("s")}, true)
	m, err := ParsePublicKeyAuth(enc, true)
	if err != nil {
		t.Fatal(err)
	}
	enc[len(enc)-1] = 'S'
	if string(m.Signature) != "S" {
		t.Errorf("Signature = %q, want it to alias the input", m.Signature)
	}
	if cap(m.PublicKey) != len(m.PublicKey) {
		t.Error("PublicKey capacity extends into the next field")
	}
}

func TestPublicKeySignedData(t *testing.T) {
	sid := []byte{0xaa, 0xbb}
	// RFC 4252 §7, written out by hand.
	want := unhex(t, "00000002 aabb 32 00000001 75 0000000e 7373682d636f6e6e656374696f6e 00000009 7075626c69636b6579 01 00000001 61 00000002 6b6b")
	got := PublicKeySignedData(sid, "u", ServiceConnection, MethodPublicKey, "a", []byte("kk"), []byte("ignored"))
	if !bytes.Equal(got, want) {
		t.Errorf("publickey: got %x\nwant %x", got, want)
	}
	if cap(got) != len(got) {
		t.Errorf("capacity %d, length %d", cap(got), len(got))
	}
	// The signed data is the session id followed by the request itself,
	// less the signature (RFC 4252 §7; OpenSSH PROTOCOL §3.1 for hostbound).
	for _, method := range []string{MethodPublicKey, MethodPublicKeyHostbound} {
		hostbound := method == MethodPublicKeyHostbound
		sig := []byte("the signature")
		req := UserAuthRequest{User: "user", Service: ServiceConnection, Method: method,
			Rest: AppendPublicKeyAuth(nil, PublicKeyAuth{Signed: true, Algorithm: "ssh-ed25519", PublicKey: []byte("pub"), HostKey: []byte("host"), Signature: sig}, hostbound)}
		full := req.Marshal(nil)
		want := append(AppendBytes(nil, []byte("session")), full[:len(full)-4-len(sig)]...)
		got := PublicKeySignedData([]byte("session"), "user", ServiceConnection, method, "ssh-ed25519", []byte("pub"), []byte("host"))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %x\nwant %x", method, got, want)
		}
	}
}

// Fuzz targets for the user authentication decoders (see fuzz_test.go).

// caseSeeds returns the values of cases whose type is T.
func caseSeeds[T any](cases []msgCase) []message {
	var out []message
	for _, c := range cases {
		if reflect.TypeOf(c.msg) == reflect.TypeFor[*T]() {
			out = append(out, c.msg)
		}
	}
	return out
}

func FuzzUserAuthRequest(f *testing.F) {
	fuzzMessage[UserAuthRequest](f, caseSeeds[UserAuthRequest](authCases())...)
}

func FuzzUserAuthFailure(f *testing.F) {
	fuzzMessage[UserAuthFailure](f, caseSeeds[UserAuthFailure](authCases())...)
}

func FuzzUserAuthBanner(f *testing.F) {
	fuzzMessage[UserAuthBanner](f, caseSeeds[UserAuthBanner](authCases())...)
}

func FuzzUserAuthPKOK(f *testing.F) {
	fuzzMessage[UserAuthPKOK](f, caseSeeds[UserAuthPKOK](authCases())...)
}

func FuzzUserAuthPasswdChangeReq(f *testing.F) {
	fuzzMessage[UserAuthPasswdChangeReq](f, caseSeeds[UserAuthPasswdChangeReq](authCases())...)
}

func FuzzUserAuthInfoRequest(f *testing.F) {
	fuzzMessage[UserAuthInfoRequest](f, caseSeeds[UserAuthInfoRequest](authCases())...)
}

func FuzzUserAuthInfoResponse(f *testing.F) {
	fuzzMessage[UserAuthInfoResponse](f, caseSeeds[UserAuthInfoResponse](authCases())...)
}

// fuzzPayload checks a ParseX/Append pair like fuzzMessage: no panic, only
// *DecodeError, input untouched, and anything accepted re-encodes to data
// that parses to the same value and re-encodes identically.
func fuzzPayload[T any](f *testing.F, parse func([]byte) (T, error), app func(*T, []byte) []byte, seeds ...T) {
	for _, s := range seeds {
		enc := app(&s, nil)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		orig := bytes.Clone(p)
		m, err := parse(p)
		if !bytes.Equal(p, orig) {
			t.Fatal("parse modified its input")
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if !reflect.ValueOf(m).IsZero() {
				t.Fatalf("error %v with non-zero result %#v", err, m)
			}
			return
		}
		enc := app(&m, nil)
		m2, err := parse(enc)
		if err != nil {
			t.Fatalf("re-encoded %x does not parse: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %#v to %#v", m, m2)
		}
		if enc2 := app(&m2, nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding unstable: %x vs %x", enc, enc2)
		}
	})
}

func FuzzPublicKeyAuth(f *testing.F) {
	for _, tc := range methodCases() {
		if m, ok := tc.want.(PublicKeyAuth); ok {
			f.Add(tc.enc, m.HostKey != nil)
			f.Add(tc.enc[:len(tc.enc)/2], m.HostKey != nil)
		}
	}
	f.Fuzz(func(t *testing.T, p []byte, hostbound bool) {
		parse := func(b []byte) (PublicKeyAuth, error) { return ParsePublicKeyAuth(b, hostbound) }
		app := func(m *PublicKeyAuth, b []byte) []byte { return AppendPublicKeyAuth(b, *m, hostbound) }
		m, err := parse(p)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		if (m.HostKey != nil) != hostbound || (m.Signature != nil) != m.Signed {
			t.Fatalf("optional fields wrong: %#v", m)
		}
		// RFC 4251 §5: any non-zero boolean is TRUE; Append writes 1.
		enc := app(&m, nil)
		if (p[0] != 0) != m.Signed || !bytes.HasPrefix(p[1:], enc[1:]) {
			t.Fatalf("re-encoded %x does not match the input %x", enc, p)
		}
		m2, err := parse(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %#v to %#v (%v)", m, m2, err)
		}
	})
}

func FuzzPasswordAuth(f *testing.F) {
	fuzzPayload(f, ParsePasswordAuth,
		func(m *PasswordAuth, b []byte) []byte { return AppendPasswordAuth(b, *m) },
		PasswordAuth{Password: "pw"}, PasswordAuth{Change: true, Password: "a", NewPassword: "b"})
}

func FuzzKeyboardInteractiveAuth(f *testing.F) {
	fuzzPayload(f, ParseKeyboardInteractiveAuth,
		func(m *KeyboardInteractiveAuth, b []byte) []byte { return AppendKeyboardInteractiveAuth(b, *m) },
		KeyboardInteractiveAuth{Submethods: "pam,bsdauth"})
}
