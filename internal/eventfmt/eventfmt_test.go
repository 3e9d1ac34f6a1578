package eventfmt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"sshtap"
	"sshtap/cipher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	start = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at    = start.Add(1234 * time.Millisecond) // every sample happens at +1.234s
)

func hdr() sshtap.Header { return sshtap.Header{Time: at} }

// testKey returns a deterministic ed25519 host key blob and its fingerprint
// as x/crypto/ssh computes it.
func testKey(t testing.TB, seed byte) ([]byte, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	pk, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pk.Marshal(), ssh.FingerprintSHA256(pk)
}

// sample is one event with its expected renderings.
type sample struct {
	ev    sshtap.Event
	human string         // the whole human line (without "\n"), Start = start, no conn
	json  map[string]any // every kind-specific NDJSON field, as encoding/json decodes it
}

// samples returns one sample per kind. TestEveryKindHasARenderer fails when
// sshtap gains a kind that is missing here.
func samples(t testing.TB) map[sshtap.Kind]sample {
	key, fp := testKey(t, 1)
	key2, fp2 := testKey(t, 2)
	ignoreData := append([]byte("abc\x1b[31m\"\\"), make([]byte, 70)...)
	pad := func(kind string) string { return kind + strings.Repeat(" ", kindWidth+1-len(kind)) }
	line := func(kind, details string) string { return "+1.234s " + pad(kind) + details }
	return map[sshtap.Kind]sample{
		sshtap.KindIgnore: {
			ev:    &sshtap.IgnoreEvent{Header: hdr(), Data: ignoreData, Length: len(ignoreData)},
			human: line("ignore", `len=80 "abc\x1b[31m\"\\\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"...`),
			json: map[string]any{
				"length": 80.0, "data_hex": hex.EncodeToString(ignoreData[:64]), "truncated": true,
			},
		},
		sshtap.KindDebug: {
			ev:    &sshtap.DebugEvent{Header: hdr(), AlwaysDisplay: true, Message: "hello world", Length: 11, Language: "en"},
			human: line("debug", `always-display "hello world" lang=en`),
			json:  map[string]any{"always_display": true, "message": "hello world", "length": 11.0, "language": "en"},
		},
		sshtap.KindDisconnect: {
			ev:    &sshtap.DisconnectEvent{Header: hdr(), Reason: sshtap.DisconnectByApplication, Message: "bye", Remote: true},
			human: line("disconnect", `remote reason=11 (by-application) "bye"`),
			json: map[string]any{
				"reason": 11.0, "reason_name": "BY_APPLICATION", "message": "bye", "language": "", "remote": true,
			},
		},
		sshtap.KindMACMismatch: {
			ev: &sshtap.MACMismatchEvent{Header: hdr(), MACMismatch: sshtap.MACMismatch{
				Seq: 12, Length: 52, Cipher: "chacha20-poly1305@openssh.com", Mode: cipher.ModeAEAD, LengthAuthenticated: true,
			}, Verdict: sshtap.MACDiscard},
			human: line("mac-mismatch", "seq=12 len=52 chacha20-poly1305@openssh.com aead verdict=discard"),
			json: map[string]any{
				"seq": 12.0, "length": 52.0, "cipher": "chacha20-poly1305@openssh.com", "mac": "", "mode": "aead",
				"length_authenticated": true, "verdict": "discard",
			},
		},
		sshtap.KindKexStart: {
			ev:    &sshtap.KexStartEvent{Header: hdr(), Initial: false, Remote: true},
			human: line("kex-start", "rekey by=remote"),
			json:  map[string]any{"initial": false, "remote": true},
		},
		sshtap.KindKex: {
			ev: &sshtap.KexEvent{Header: hdr(), Initial: true, Strict: true, Duration: 8100 * time.Microsecond, HostKey: key,
				Algorithms: sshtap.Algorithms{
					Kex: "curve25519-sha256", HostKey: "ssh-ed25519",
					ClientToServer: sshtap.DirectionAlgorithms{Cipher: "chacha20-poly1305@openssh.com", Compression: "none"},
					ServerToClient: sshtap.DirectionAlgorithms{Cipher: "aes128-ctr", MAC: "hmac-sha2-256-etm@openssh.com", Compression: "zlib@openssh.com"},
				}},
			human: line("kex", "initial curve25519-sha256 ssh-ed25519 "+fp+
				" c2s chacha20-poly1305@openssh.com s2c aes128-ctr+hmac-sha2-256-etm@openssh.com+zlib@openssh.com strict (8.1ms)"),
			json: map[string]any{
				"initial": true, "strict": true, "kex": "curve25519-sha256", "host_key_alg": "ssh-ed25519",
				"c2s_cipher": "chacha20-poly1305@openssh.com", "c2s_mac": "", "c2s_compression": "none",
				"s2c_cipher": "aes128-ctr", "s2c_mac": "hmac-sha2-256-etm@openssh.com", "s2c_compression": "zlib@openssh.com",
				"duration_ms": 8.1, "host_key_type": "ssh-ed25519", "host_key_fingerprint": fp,
			},
		},
		sshtap.KindBannerLine: {
			ev:    &sshtap.BannerLineEvent{Header: hdr(), Line: "Exceeded MaxStartups"},
			human: line("banner-line", `"Exceeded MaxStartups"`),
			json:  map[string]any{"line": "Exceeded MaxStartups"},
		},
		sshtap.KindUnimplemented: {
			ev:    &sshtap.UnimplementedEvent{Header: hdr(), Seq: 7, Type: 200},
			human: line("unimplemented", "local seq=7 type=200"),
			json:  map[string]any{"seq": 7.0, "type": 200.0, "remote": false},
		},
		sshtap.KindExtInfo: {
			ev: &sshtap.ExtInfoEvent{Header: hdr(), Extensions: []sshtap.Extension{
				{Name: "server-sig-algs", Value: []byte("ssh-ed25519,rsa-sha2-512")},
				{Name: "ping@openssh.com", Value: []byte("0")},
				{Name: "bin", Value: []byte{0, 1, 0xff}},
			}},
			human: line("ext-info", "server-sig-algs=ssh-ed25519,rsa-sha2-512 ping@openssh.com=0 bin=0x0001ff"),
			json: map[string]any{"extensions": []any{
				map[string]any{"name": "server-sig-algs", "value": "ssh-ed25519,rsa-sha2-512"},
				map[string]any{"name": "ping@openssh.com", "value": "0"},
				map[string]any{"name": "bin", "value_hex": "0001ff"},
			}},
		},
		sshtap.KindPing: {
			ev:    &sshtap.PingEvent{Header: hdr(), RTT: 1200 * time.Microsecond},
			human: line("ping", "rtt=1.2ms"),
			json:  map[string]any{"rtt_ms": 1.2},
		},
		sshtap.KindX11Open: {
			ev:    &sshtap.X11OpenEvent{Header: hdr(), OriginAddr: "127.0.0.1", OriginPort: 40000},
			human: line("x11-open", "from 127.0.0.1:40000"),
			json:  map[string]any{"origin_addr": "127.0.0.1", "origin_port": 40000.0},
		},
		sshtap.KindLagged: {
			ev:    &sshtap.LaggedEvent{Header: hdr(), Dropped: 17},
			human: line("lagged", "dropped=17"),
			json:  map[string]any{"dropped": 17.0},
		},
		sshtap.KindClosed: {
			ev:    &sshtap.ClosedEvent{Header: hdr(), Err: io.EOF},
			human: line("closed", "EOF"),
			json:  map[string]any{"error": "EOF"},
		},
		sshtap.KindAuthBanner: {
			ev:    &sshtap.AuthBannerEvent{Header: hdr(), Message: "Welcome\r\nAuthorized use only\n"},
			human: line("auth-banner", `"Welcome\r\nAuthorized use only\n"`),
			json:  map[string]any{"message": "Welcome\r\nAuthorized use only\n", "language": ""},
		},
		sshtap.KindUserAuth: {
			ev: &sshtap.UserAuthEvent{Header: hdr(), User: "alice", Method: "publickey", Algorithm: "rsa-sha2-512",
				Result: sshtap.AuthFailure, Remaining: []string{"publickey", "password"}, Err: "no such key"},
			human: line("user-auth", `alice publickey rsa-sha2-512 failure remaining=publickey,password error="no such key"`),
			json: map[string]any{
				"user": "alice", "method": "publickey", "algorithm": "rsa-sha2-512", "result": "failure",
				"remaining": []any{"publickey", "password"}, "error": "no such key",
			},
		},
		sshtap.KindHostKeys: {
			ev:    &sshtap.HostKeysEvent{Header: hdr(), Keys: [][]byte{key, key2, []byte("junk")}},
			human: line("host-keys", "n=3 ssh-ed25519 "+fp+", ssh-ed25519 "+fp2+", "+fingerprint([]byte("junk"))),
			json: map[string]any{
				"fingerprints": []any{fp, fp2, fingerprint([]byte("junk"))},
				"key_types":    []any{"ssh-ed25519", "ssh-ed25519", ""},
			},
		},
		sshtap.KindHostKeyProof: {
			ev:    &sshtap.HostKeyProofEvent{Header: hdr(), Keys: [][]byte{key}, Err: "sshtap: hostkeys-prove: refused by the server"},
			human: line("host-key-proof", "unproven n=1 ssh-ed25519 "+fp+` error="sshtap: hostkeys-prove: refused by the server"`),
			json: map[string]any{
				"fingerprints": []any{fp}, "key_types": []any{"ssh-ed25519"},
				"proven": false, "error": "sshtap: hostkeys-prove: refused by the server",
			},
		},
		sshtap.KindGlobalRequest: {
			ev:    &sshtap.GlobalRequestEvent{Header: hdr(), Name: "keepalive@openssh.com", WantReply: true},
			human: line("global-request", "keepalive@openssh.com want-reply unhandled"),
			json:  map[string]any{"name": "keepalive@openssh.com", "want_reply": true, "handled": false},
		},
		sshtap.KindAgentRequest: {
			ev:    &sshtap.AgentRequestEvent{Header: hdr(), Request: "sign", Key: fp, Flags: 4, Allowed: true},
			human: line("agent-request", "sign "+fp+" flags=rsa-sha2-512 allowed"),
			json:  map[string]any{"request": "sign", "key": fp, "flags": 4.0, "allowed": true},
		},
	}
}

// render renders ev with o (Start defaulting to start, Show to all) and
// returns the output.
func render(t testing.TB, o Options, conn string, ev sshtap.Event) string {
	t.Helper()
	if o.Start.IsZero() {
		o.Start = start
	}
	if o.Show == 0 {
		o.Show = sshtap.KindAll
	}
	var b bytes.Buffer
	if err := New(&b, o).Event(conn, ev); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// decode decodes exactly one NDJSON line.
func decode(t testing.TB, out string) map[string]any {
	t.Helper()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("not one line: %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return m
}

func TestEveryKindHasARenderer(t *testing.T) {
	ss := samples(t)
	if len(Kinds()) != bitsSet(sshtap.KindAll) {
		t.Fatalf("Kinds() = %v, KindAll has %d bits", Kinds(), bitsSet(sshtap.KindAll))
	}
	for _, k := range Kinds() {
		s, ok := ss[k]
		if !ok {
			t.Errorf("kind %s (%#x) has no sample: add one, and a human and NDJSON renderer, and document it in cmd/sshtap/EVENTS.md", k, uint64(k))
			continue
		}
		if s.ev.Kind() != k {
			t.Errorf("sample for %s is a %s event", k, s.ev.Kind())
		}
		if _, ok := kindColors[k]; !ok {
			t.Errorf("kind %s has no colour", k)
		}
		if h := render(t, Options{}, "", s.ev); strings.Contains(h, "unrendered") {
			t.Errorf("kind %s has no human renderer: %q", k, h)
		}
		if _, ok := jsonEvent(commonJSON{}, s.ev).(*unknownJSON); ok {
			t.Errorf("kind %s has no NDJSON renderer", k)
		}
	}
}

func bitsSet(k sshtap.Kind) int {
	n := 0
	for ; k != 0; k &= k - 1 {
		n++
	}
	return n
}

func TestHuman(t *testing.T) {
	for k, s := range samples(t) {
		t.Run(k.String(), func(t *testing.T) {
			got := render(t, Options{}, "", s.ev)
			if got != s.human+"\n" {
				t.Errorf("got  %q\nwant %q", got, s.human+"\n")
			}
		})
	}
}

func TestHumanVariants(t *testing.T) {
	key, _ := testKey(t, 1)
	for _, tc := range []struct {
		name string
		conn string
		ev   sshtap.Event
		want string // the details, after the padded kind
	}{
		{"ignore-empty", "", &sshtap.IgnoreEvent{Header: hdr()}, "len=0"},
		{"debug-plain", "", &sshtap.DebugEvent{Header: hdr(), Message: "m"}, `"m"`},
		{"disconnect-local-unknown", "", &sshtap.DisconnectEvent{Header: hdr(), Reason: 99, Message: ""}, `local reason=99 (unknown(99)) ""`},
		{"disconnect-mac", "", &sshtap.DisconnectEvent{Header: hdr(), Reason: sshtap.DisconnectMACError, Message: "x"}, `local reason=5 (mac-error) "x"`},
		{"mac-classic-badlen", "", &sshtap.MACMismatchEvent{Header: hdr(), MACMismatch: sshtap.MACMismatch{
			Seq: 3, Length: 1 << 30, Cipher: "aes128-ctr", MAC: "hmac-sha2-256", Mode: cipher.ModeClassic,
		}}, "seq=3 len=1073741824 aes128-ctr hmac-sha2-256 classic bad-length verdict=disconnect"},
		{"mac-etm-accept", "", &sshtap.MACMismatchEvent{Header: hdr(), MACMismatch: sshtap.MACMismatch{
			Seq: 4, Length: 60, Cipher: "aes256-ctr", MAC: "hmac-sha2-512-etm@openssh.com", Mode: cipher.ModeETM, LengthAuthenticated: true,
		}, Verdict: sshtap.MACAccept}, "seq=4 len=60 aes256-ctr hmac-sha2-512-etm@openssh.com etm verdict=accept"},
		{"kex-start-initial", "", &sshtap.KexStartEvent{Header: hdr(), Initial: true}, "initial by=local"},
		{"kex-rekey-nostrict-nokey", "", &sshtap.KexEvent{Header: hdr(), Duration: 1500 * time.Millisecond, Algorithms: sshtap.Algorithms{
			Kex: "ecdh-sha2-nistp256", HostKey: "ssh-ed25519",
			ClientToServer: sshtap.DirectionAlgorithms{Cipher: "aes128-gcm@openssh.com"},
			ServerToClient: sshtap.DirectionAlgorithms{Cipher: "aes128-gcm@openssh.com"},
		}}, "rekey ecdh-sha2-nistp256 ssh-ed25519 c2s aes128-gcm@openssh.com s2c aes128-gcm@openssh.com (1.500s)"},
		{"kex-badkey", "", &sshtap.KexEvent{Header: hdr(), HostKey: key[:10], Algorithms: sshtap.Algorithms{Kex: "k", HostKey: "h",
			ClientToServer: sshtap.DirectionAlgorithms{Cipher: "c"}, ServerToClient: sshtap.DirectionAlgorithms{Cipher: "c"}}},
			"rekey k h " + fingerprint(key[:10]) + " c2s c s2c c (0ns)"},
		{"unimplemented-remote", "", &sshtap.UnimplementedEvent{Header: hdr(), Seq: 9, Remote: true}, "remote seq=9"},
		{"ext-info-empty", "", &sshtap.ExtInfoEvent{Header: hdr()}, "(none)"},
		{"ping-us", "", &sshtap.PingEvent{Header: hdr(), RTT: 850 * time.Microsecond}, "rtt=850µs"},
		{"x11-v6", "", &sshtap.X11OpenEvent{Header: hdr(), OriginAddr: "::1", OriginPort: 6010}, "from [::1]:6010"},
		{"closed-nil", "", &sshtap.ClosedEvent{Header: hdr()}, "closed"},
		{"closed-disconnect", "", &sshtap.ClosedEvent{Header: hdr(), Err: &sshtap.DisconnectError{Reason: 11, Message: "bye", Remote: true}},
			`sshtap: remote disconnect: BY_APPLICATION (11): "bye"`},
		{"user-auth-success", "", &sshtap.UserAuthEvent{Header: hdr(), User: "bob", Method: "password", Result: sshtap.AuthSuccess}, "bob password success"},
		{"user-auth-spaces", "", &sshtap.UserAuthEvent{Header: hdr(), User: "bob smith", Method: "none", Result: sshtap.AuthPartialSuccess},
			`"bob smith" none partial-success`},
		{"user-auth-empty-user", "", &sshtap.UserAuthEvent{Header: hdr(), User: "", Method: "none"}, `"" none failure`},
		{"host-keys-none", "", &sshtap.HostKeysEvent{Header: hdr()}, "n=0"},
		{"global-handled", "", &sshtap.GlobalRequestEvent{Header: hdr(), Name: "tcpip-forward", Handled: true}, "tcpip-forward handled"},
		{"agent-ext-denied", "", &sshtap.AgentRequestEvent{Header: hdr(), Request: "extension", Extension: "session-bind@openssh.com", Err: "agent: nope"},
			`extension session-bind@openssh.com denied error="agent: nope"`},
		{"agent-flags", "", &sshtap.AgentRequestEvent{Header: hdr(), Request: "sign", Flags: 2 | 4 | 8, Allowed: true},
			"sign flags=rsa-sha2-256|rsa-sha2-512|0x8 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := render(t, Options{}, tc.conn, tc.ev)
			kind := tc.ev.Kind().String()
			want := "+1.234s " + kind + strings.Repeat(" ", kindWidth+1-len(kind)) + tc.want + "\n"
			if got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestHumanConnAndTime(t *testing.T) {
	ev := &sshtap.PingEvent{Header: sshtap.Header{Time: start.Add(62*time.Second + 5*time.Millisecond)}, RTT: time.Millisecond}
	got := render(t, Options{}, "web1", ev)
	if want := "+62.005s [web1] ping" + strings.Repeat(" ", kindWidth-3) + "rtt=1.0ms\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// An event from before Start (it should not happen) is still readable.
	ev.Time = start.Add(-1500 * time.Millisecond)
	if got := render(t, Options{}, "", ev); !strings.HasPrefix(got, "-1.500s ping") {
		t.Errorf("got %q", got)
	}
	// The kind column lines up whatever the kind.
	col := -1
	for _, s := range samples(t) {
		h := render(t, Options{}, "", s.ev)
		i := len("+1.234s ") + kindWidth + 1
		if h[i-1] != ' ' || h[i] == ' ' {
			t.Errorf("details of %q do not start at column %d", h, i)
		}
		if col >= 0 && col != i {
			t.Errorf("columns differ")
		}
		col = i
	}
}

func TestJSON(t *testing.T) {
	for k, s := range samples(t) {
		t.Run(k.String(), func(t *testing.T) {
			m := decode(t, render(t, Options{JSON: true}, "c1", s.ev))
			want := map[string]any{
				"time": "2026-11-26T12:00:01.234Z", "elapsed": 1.234, "conn": "c1", "kind": k.String(),
			}
			for f, v := range s.json {
				want[f] = v
			}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("got  %v\nwant %v", m, want)
				for f := range want {
					if !reflect.DeepEqual(m[f], want[f]) {
						t.Errorf("field %s: got %#v, want %#v", f, m[f], want[f])
					}
				}
				for f := range m {
					if _, ok := want[f]; !ok {
						t.Errorf("unexpected field %s", f)
					}
				}
			}
		})
	}
}

func TestJSONOptionalFields(t *testing.T) {
	for _, tc := range []struct {
		ev     sshtap.Event
		absent []string
		check  map[string]any
	}{
		{&sshtap.ClosedEvent{Header: hdr()}, []string{"error", "conn"}, nil},
		{&sshtap.IgnoreEvent{Header: hdr(), Data: []byte{1, 2}, Length: 2}, []string{"truncated"}, map[string]any{"length": 2.0, "data_hex": "0102"}},
		{&sshtap.KexEvent{Header: hdr()}, []string{"host_key_fingerprint", "host_key_type"}, map[string]any{"initial": false, "duration_ms": 0.0}},
		{&sshtap.UserAuthEvent{Header: hdr(), User: "u", Method: "none"}, []string{"algorithm", "error"}, map[string]any{"remaining": []any{}, "result": "failure"}},
		{&sshtap.HostKeysEvent{Header: hdr()}, nil, map[string]any{"fingerprints": []any{}, "key_types": []any{}}},
		{&sshtap.AgentRequestEvent{Header: hdr(), Request: "list"}, []string{"key", "extension", "error"}, map[string]any{"allowed": false, "flags": 0.0}},
		{&sshtap.ExtInfoEvent{Header: hdr()}, nil, map[string]any{"extensions": []any{}}},
		{&sshtap.ExtInfoEvent{Header: hdr(), Extensions: []sshtap.Extension{{Name: "e"}}}, nil,
			map[string]any{"extensions": []any{map[string]any{"name": "e"}}}},
		{&sshtap.DisconnectEvent{Header: hdr(), Reason: 77}, nil, map[string]any{"reason": 77.0, "reason_name": "UNKNOWN(77)", "remote": false}},
	} {
		m := decode(t, render(t, Options{JSON: true}, "", tc.ev))
		for _, f := range tc.absent {
			if _, ok := m[f]; ok {
				t.Errorf("%s: field %s present: %v", tc.ev.Kind(), f, m)
			}
		}
		for f, v := range tc.check {
			if !reflect.DeepEqual(m[f], v) {
				t.Errorf("%s: %s = %#v, want %#v", tc.ev.Kind(), f, m[f], v)
			}
		}
	}
}

// hostile is text a hostile peer could send to fake lines or drive the
// terminal.
const hostile = "ok\x1b[2J\x1b]0;pwned\x07\nfake line\r\x7f\x9b\u009b\u202egnp.exe\u2028\U000e0041\xff\x00\t\\x1b\""

// checkOneSafeLine fails when out is not exactly one line free of control
// characters other than the colour sequences the Writer adds itself.
func checkOneSafeLine(t *testing.T, what, out string) {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("%s: not exactly one line: %q", what, out)
	}
	body := out[:len(out)-1]
	for _, c := range []string{colReset, colBold, colDim, colRed, colGreen, colYellow, colBlue, colMagenta, colCyan} {
		body = strings.ReplaceAll(body, c, "")
	}
	for i, r := range body {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			t.Errorf("%s: unsafe rune %U at %d in %q", what, r, i, out)
		}
	}
}

func TestSanitize(t *testing.T) {
	evs := []sshtap.Event{
		&sshtap.IgnoreEvent{Header: hdr(), Data: []byte(hostile), Length: len(hostile)},
		&sshtap.DebugEvent{Header: hdr(), Message: hostile, Language: hostile},
		&sshtap.DisconnectEvent{Header: hdr(), Message: hostile, Language: hostile},
		&sshtap.MACMismatchEvent{Header: hdr(), MACMismatch: sshtap.MACMismatch{Cipher: hostile, MAC: hostile}},
		&sshtap.KexEvent{Header: hdr(), Algorithms: sshtap.Algorithms{Kex: hostile, HostKey: hostile,
			ClientToServer: sshtap.DirectionAlgorithms{Cipher: hostile, MAC: hostile, Compression: hostile},
			ServerToClient: sshtap.DirectionAlgorithms{Cipher: hostile, MAC: hostile, Compression: hostile}}},
		&sshtap.BannerLineEvent{Header: hdr(), Line: hostile},
		&sshtap.ExtInfoEvent{Header: hdr(), Extensions: []sshtap.Extension{{Name: hostile, Value: []byte(hostile)}}},
		&sshtap.X11OpenEvent{Header: hdr(), OriginAddr: hostile},
		&sshtap.ClosedEvent{Header: hdr(), Err: errors.New(hostile)},
		&sshtap.ClosedEvent{Header: hdr(), Err: &sshtap.DisconnectError{Message: hostile, Remote: true}},
		&sshtap.AuthBannerEvent{Header: hdr(), Message: hostile, Language: hostile},
		&sshtap.UserAuthEvent{Header: hdr(), User: hostile, Method: hostile, Algorithm: hostile, Remaining: []string{hostile, hostile}, Err: hostile},
		&sshtap.HostKeysEvent{Header: hdr(), Keys: [][]byte{[]byte(hostile)}},
		&sshtap.GlobalRequestEvent{Header: hdr(), Name: hostile},
		&sshtap.AgentRequestEvent{Header: hdr(), Request: hostile, Key: hostile, Extension: hostile, Err: hostile},
	}
	for _, ev := range evs {
		for _, color := range []bool{false, true} {
			what := fmt.Sprintf("%s color=%v", ev.Kind(), color)
			out := render(t, Options{Color: color}, hostile, ev)
			checkOneSafeLine(t, what, out)
			// The fake line's text is still visible, escaped, for the reader.
			if ev.Kind() != sshtap.KindIgnore && ev.Kind() != sshtap.KindHostKeys && !strings.Contains(out, `\nfake line\r`) {
				t.Errorf("%s: escaped text missing: %q", what, out)
			}
		}
		// NDJSON: one line, no raw control bytes, and the peer's text comes
		// back exactly (invalid UTF-8 aside) when decoded.
		out := render(t, Options{JSON: true}, hostile, ev)
		checkOneSafeLine(t, ev.Kind().String()+" json", out)
		m := decode(t, out)
		if want := strings.ToValidUTF8(hostile, "\ufffd"); m["conn"] != want {
			t.Errorf("%s json: conn = %q, want %q", ev.Kind(), m["conn"], want)
		}
	}

	// Escapes cannot be faked: a literal backslash sequence is doubled.
	if got := clean(`a\x1b`); got != `a\\x1b` {
		t.Errorf("clean = %q", got)
	}
	if got := clean("tab\there\u00e9\u4e16"); got != `tab\there`+"\u00e9\u4e16" {
		t.Errorf("clean kept printable text badly: %q", got)
	}
	// A long peer text is cut in the human format, whole in NDJSON.
	long := strings.Repeat("é", 1000)
	h := render(t, Options{}, "", &sshtap.DebugEvent{Header: hdr(), Message: long})
	if !strings.Contains(h, "...(2000 bytes)") || len(h) > maxText+100 || !strings.Contains(h, strings.Repeat("é", 256)+`"`) {
		t.Errorf("long message not cut: %d bytes: %q", len(h), h[len(h)-40:])
	}
	h = render(t, Options{}, "", &sshtap.ClosedEvent{Header: hdr(), Err: errors.New(long)})
	if !strings.HasSuffix(h, strings.Repeat("é", 256)+"...(2000 bytes)\n") {
		t.Errorf("long error not cut: %q", h[len(h)-40:])
	}
	m := decode(t, render(t, Options{JSON: true}, "", &sshtap.DebugEvent{Header: hdr(), Message: long}))
	if m["message"] != long {
		t.Errorf("json message cut")
	}
	// Note text is escaped too.
	var b bytes.Buffer
	if err := New(&b, Options{Start: start}).Note(hostile, hostile); err != nil {
		t.Fatal(err)
	}
	checkOneSafeLine(t, "note", b.String())
}

func TestColor(t *testing.T) {
	ev := &sshtap.DisconnectEvent{Header: hdr(), Reason: 2, Message: "\x1b[31mred", Remote: true}
	plain := render(t, Options{}, "c", ev)
	if strings.Contains(plain, "\x1b") {
		t.Errorf("colour off but ESC in %q", plain)
	}
	col := render(t, Options{Color: true}, "c", ev)
	want := colDim + "+1.234s" + colReset + " " + colBold + "[c]" + colReset + " " + colRed + "disconnect" + colReset +
		strings.Repeat(" ", kindWidth+1-len("disconnect")) + `remote reason=2 (protocol-error) "\x1b[31mred"` + "\n"
	if col != want {
		t.Errorf("got  %q\nwant %q", col, want)
	}
	for _, tc := range []struct {
		ev    sshtap.Event
		color string
	}{
		{&sshtap.KexEvent{Header: hdr()}, colCyan},
		{&sshtap.KexStartEvent{Header: hdr()}, colCyan},
		{&sshtap.MACMismatchEvent{Header: hdr()}, colRed},
		{&sshtap.ClosedEvent{Header: hdr(), Err: io.EOF}, colRed},
		{&sshtap.ClosedEvent{Header: hdr()}, colGreen},
		{&sshtap.PingEvent{Header: hdr()}, colGreen},
		{&sshtap.LaggedEvent{Header: hdr()}, colYellow},
		{&sshtap.UserAuthEvent{Header: hdr(), Result: sshtap.AuthFailure}, colRed},
		{&sshtap.UserAuthEvent{Header: hdr(), Result: sshtap.AuthSuccess}, colGreen},
		{&sshtap.UserAuthEvent{Header: hdr(), Result: sshtap.AuthPartialSuccess}, colMagenta},
	} {
		out := render(t, Options{Color: true}, "", tc.ev)
		if k := tc.ev.Kind().String(); !strings.Contains(out, tc.color+k+colReset) {
			t.Errorf("%s: want colour %q: %q", k, tc.color, out)
		}
	}
	// JSON ignores Color.
	if out := render(t, Options{JSON: true, Color: true}, "", ev); strings.Contains(out, "\x1b") {
		t.Errorf("ESC in JSON: %q", out)
	}
	// Summary and note headers are coloured only with colour.
	var b bytes.Buffer
	w := New(&b, Options{Start: start, Color: true})
	w.Note("", "hi")
	w.WriteSummary("", &Summary{}, sshtap.Stats{}, time.Second)
	if !strings.Contains(b.String(), colBold+"note"+colReset) || !strings.Contains(b.String(), colBold+"summary"+colReset) {
		t.Errorf("no colour in %q", b.String())
	}
	b.Reset()
	w = New(&b, Options{Start: start})
	w.Note("", "hi")
	w.WriteSummary("", &Summary{}, sshtap.Stats{}, time.Second)
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("colour off but ESC in %q", b.String())
	}
}

func TestShow(t *testing.T) {
	ss := samples(t)
	for _, json := range []bool{false, true} {
		var b bytes.Buffer
		w := New(&b, Options{JSON: json, Start: start, Show: sshtap.KindPing | sshtap.KindKex})
		var shown []string
		for _, k := range Kinds() {
			if err := w.Event("", ss[k].ev); err != nil {
				t.Fatal(err)
			}
		}
		for l := range strings.Lines(b.String()) {
			if json {
				shown = append(shown, decode(t, l)["kind"].(string))
			} else {
				shown = append(shown, strings.Fields(l)[1])
			}
		}
		if want := []string{"kex", "ping"}; !slices.Equal(shown, want) {
			t.Errorf("json=%v: shown %v, want %v", json, shown, want)
		}
		// Notes are not kinds: always shown.
		b.Reset()
		w = New(&b, Options{JSON: json, Start: start})
		for _, k := range Kinds() {
			w.Event("", ss[k].ev)
		}
		if b.Len() != 0 {
			t.Errorf("Show 0 printed %q", b.String())
		}
		w.Note("", "connected")
		if !strings.Contains(b.String(), "connected") {
			t.Errorf("note not shown: %q", b.String())
		}
	}
}

func TestNote(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, Options{Start: time.Now().Add(-2 * time.Second)})
	if err := w.Note("c2", "connected to host:22"); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	if !strings.HasPrefix(got, "+2.0") || !strings.HasSuffix(got, "[c2] note"+strings.Repeat(" ", kindWidth-3)+"connected to host:22\n") {
		t.Errorf("got %q", got)
	}
	b.Reset()
	w = New(&b, Options{JSON: true, Start: time.Now().Add(-2 * time.Second)})
	w.Note("", "listening on [::]:2222")
	m := decode(t, b.String())
	if m["kind"] != "note" || m["message"] != "listening on [::]:2222" || m["elapsed"].(float64) < 2 || m["elapsed"].(float64) > 60 {
		t.Errorf("got %v", m)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil || !strings.HasSuffix(m["time"].(string), "Z") {
		t.Errorf("time %v: %v", m["time"], err)
	}
	if _, ok := m["conn"]; ok {
		t.Errorf("empty conn present")
	}
}

func TestZeroStartAndZeroTime(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, Options{Show: sshtap.KindAll})
	w.Event("", &sshtap.PingEvent{Header: sshtap.Header{Time: start}})
	w.Event("", &sshtap.PingEvent{Header: sshtap.Header{Time: start.Add(time.Second)}})
	lines := slices.Collect(strings.Lines(b.String()))
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "+0.000s ") || !strings.HasPrefix(lines[1], "+1.000s ") {
		t.Errorf("got %q", lines)
	}
	// An event without a time is shown at the time it is rendered.
	b.Reset()
	before := time.Now()
	New(&b, Options{JSON: true, Show: sshtap.KindAll, Start: before}).Event("", &sshtap.PingEvent{})
	m := decode(t, b.String())
	if tm, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil || tm.Before(before.Add(-time.Millisecond)) {
		t.Errorf("time %v (%v), before %v", m["time"], err, before)
	}
}

// fakeEvent is a kind sshtap does not publish: the renderers must not fail.
type fakeEvent struct{ sshtap.Header }

func (*fakeEvent) Kind() sshtap.Kind { return 1 << 40 }

func TestUnknownEvent(t *testing.T) {
	ev := &fakeEvent{hdr()}
	h := render(t, Options{Show: ^sshtap.Kind(0)}, "", ev)
	if !strings.Contains(h, "(unrendered *eventfmt.fakeEvent)") {
		t.Errorf("got %q", h)
	}
	m := decode(t, render(t, Options{JSON: true, Show: ^sshtap.Kind(0)}, "", ev))
	if m["kind"] != "0x10000000000" || m["unrendered"] != "*eventfmt.fakeEvent" {
		t.Errorf("got %v", m)
	}
	if err := New(io.Discard, Options{Show: sshtap.KindAll}).Event("", nil); err != nil {
		t.Errorf("nil event: %v", err)
	}
}

func TestParseKinds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sshtap.Kind
	}{
		{"kex", sshtap.KindKex},
		{"kex,ping,mac-mismatch", sshtap.KindKex | sshtap.KindPing | sshtap.KindMACMismatch},
		{" kex-start , x11-open\t", sshtap.KindKexStart | sshtap.KindX11Open},
		{"all", sshtap.KindAll},
		{"ping,all", sshtap.KindAll},
		{"ping,ping", sshtap.KindPing},
	} {
		got, err := ParseKinds(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// Every name Kind.String gives round-trips.
	for _, k := range Kinds() {
		if got, err := ParseKinds(k.String()); err != nil || got != k {
			t.Errorf("ParseKinds(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, in := range []string{"", "bogus", "kex,", "Kex", "kex ping", "kex|ping", "none", ",", "kex,,ping"} {
		got, err := ParseKinds(in)
		if err == nil {
			t.Errorf("ParseKinds(%q) = %v, want an error", in, got)
			continue
		}
		msg := err.Error()
		for _, name := range append(KindNames(), "all") {
			if !strings.Contains(msg, name) {
				t.Errorf("ParseKinds(%q) error %q does not list %q", in, msg, name)
			}
		}
	}
	if _, err := ParseKinds("kex,bogus"); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("error does not name the bad kind: %v", err)
	}
}

func TestSummary(t *testing.T) {
	var s Summary
	for _, ms := range []int{3, 1, 2} {
		s.Add(&sshtap.PingEvent{Header: hdr(), RTT: time.Duration(ms) * time.Millisecond})
	}
	s.Add(&sshtap.KexEvent{Header: hdr(), Initial: true})
	s.Add(&sshtap.KexEvent{Header: hdr()})
	s.Add(&sshtap.LaggedEvent{Header: hdr(), Dropped: 5})
	s.Add(&sshtap.LaggedEvent{Header: hdr(), Dropped: 2})
	s.Add(&sshtap.ClosedEvent{Header: hdr()})
	st := sshtap.Stats{BytesRead: 1536, BytesWritten: 3 << 20, Rekeys: 1}

	var b bytes.Buffer
	if err := New(&b, Options{JSON: true, Start: start}).WriteSummary("c", &s, st, 12500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	m := decode(t, b.String())
	want := map[string]any{
		"kind": "summary", "conn": "c", "elapsed": 12.5,
		"counts": map[string]any{"ping": 3.0, "kex": 2.0, "lagged": 2.0, "closed": 1.0},
		"events": 8.0, "bytes_read": 1536.0, "bytes_written": float64(3 << 20), "rekeys": 1.0,
		"pings": 3.0, "rtt_min_ms": 1.0, "rtt_avg_ms": 2.0, "rtt_max_ms": 3.0, "dropped": 7.0,
	}
	delete(m, "time")
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %v\nwant %v", m, want)
	}

	b.Reset()
	if err := New(&b, Options{Start: start}).WriteSummary("c", &s, st, 12500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, sub := range []string{
		"summary [c] after 12.500s\n",
		"bytes    1.5 KiB in (1536), 3.0 MiB out (3145728)\n",
		"rekeys   1\n",
		"rtt      min 1.0ms  avg 2.0ms  max 3.0ms  (3 pings)\n",
		"dropped  7 events",
		"events   8 in total\n",
		"ping 3", "kex 2", "lagged 2", "closed 1",
	} {
		if !strings.Contains(h, sub) {
			t.Errorf("summary lacks %q:\n%s", sub, h)
		}
	}
	if n := strings.Count(h, "\n"); n > 8 {
		t.Errorf("summary is %d lines", n)
	}
	// Counts in kind order: kex before ping before lagged before closed.
	if i, j := strings.Index(h, "kex 2"), strings.Index(h, "closed 1"); i > j {
		t.Errorf("kinds out of order:\n%s", h)
	}
}

func TestSummaryEmpty(t *testing.T) {
	for _, s := range []*Summary{nil, {}} {
		var b bytes.Buffer
		if err := New(&b, Options{JSON: true, Start: start}).WriteSummary("", s, sshtap.Stats{}, 0); err != nil {
			t.Fatal(err)
		}
		m := decode(t, b.String())
		for _, f := range []string{"rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "conn"} {
			if _, ok := m[f]; ok {
				t.Errorf("field %s present without pings: %v", f, m)
			}
		}
		if !reflect.DeepEqual(m["counts"], map[string]any{}) || m["pings"] != 0.0 || m["events"] != 0.0 {
			t.Errorf("got %v", m)
		}
		b.Reset()
		New(&b, Options{Start: start}).WriteSummary("", s, sshtap.Stats{}, 0)
		if h := b.String(); !strings.Contains(h, "rtt      no pings\n") || !strings.Contains(h, "events   none\n") || strings.Contains(h, "dropped") {
			t.Errorf("got %q", h)
		}
	}
}

func TestSummaryTable(t *testing.T) {
	var s Summary
	for i, k := range Kinds() {
		for range i + 1 {
			s.Add(samples(t)[k].ev)
		}
	}
	var b bytes.Buffer
	New(&b, Options{Start: start}).WriteSummary("", &s, sshtap.Stats{}, time.Second)
	lines := slices.Collect(strings.Lines(b.String()))
	var table []string
	for _, l := range lines {
		if strings.HasPrefix(l, "           ") {
			table = append(table, l)
		}
	}
	if want := (len(Kinds()) + 2) / 3; len(table) != want {
		t.Fatalf("%d table rows, want %d:\n%s", len(table), want, b.String())
	}
	// The columns line up: the second cell of every full row starts at
	// the same offset.
	var firstCol []int
	for _, l := range table {
		f := strings.Fields(l)
		if len(f) >= 4 { // a last row may hold a single cell
			firstCol = append(firstCol, strings.Index(l, " "+f[2]+" ")+1)
		}
		if len(f)%2 != 0 {
			t.Errorf("row %q is not name/count pairs", l)
		}
	}
	for _, c := range firstCol[1:] {
		if c != firstCol[0] {
			t.Errorf("columns do not line up:\n%s", strings.Join(table, ""))
		}
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l) - 1; n > 80 {
			t.Errorf("summary line of %d columns: %q", n, l)
		}
	}
	for i, k := range Kinds() {
		if !strings.Contains(b.String(), fmt.Sprintf(" %s %d", k, i+1)) {
			t.Errorf("no count for %s", k)
		}
	}
}

// lineChecker is an io.Writer that fails the test when a Write is not
// whole lines, and keeps them.
type lineChecker struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (c *lineChecker) Write(p []byte) (int, error) {
	if !bytes.HasSuffix(p, []byte("\n")) {
		c.t.Errorf("partial write %q", p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for l := range strings.Lines(string(p)) {
		c.lines = append(c.lines, l)
	}
	return len(p), nil
}

func TestConcurrent(t *testing.T) {
	const goroutines, each = 8, 200
	for _, isJSON := range []bool{false, true} {
		lc := &lineChecker{t: t}
		w := New(lc, Options{JSON: isJSON, Start: start, Show: sshtap.KindAll})
		var s Summary
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					ev := &sshtap.PingEvent{Header: hdr(), RTT: time.Duration(g*each+i+1) * time.Microsecond}
					s.Add(ev)
					if err := w.Event(fmt.Sprintf("g%d", g), ev); err != nil {
						t.Error(err)
					}
					if i%50 == 0 {
						w.Note("", "note")
						w.WriteSummary("", &s, sshtap.Stats{}, time.Second)
					}
				}
			})
		}
		wg.Wait()
		var pings int
		for _, l := range lc.lines {
			if isJSON {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if m["kind"] == "ping" {
					pings++
				}
			} else if strings.Contains(l, "] ping ") {
				pings++
			}
		}
		if pings != goroutines*each {
			t.Errorf("json=%v: %d ping lines, want %d", isJSON, pings, goroutines*each)
		}
		snap := s.snapshot()
		if snap.pings != goroutines*each || snap.counts[sshtap.KindPing] != goroutines*each ||
			snap.rttMin != time.Microsecond || snap.rttMax != goroutines*each*time.Microsecond {
			t.Errorf("summary %+v", snap)
		}
		// Average of 1..N µs is (N+1)/2 µs.
		if want := time.Duration(goroutines*each+1) * time.Microsecond / 2; snap.rttAvg != want {
			t.Errorf("avg %v, want %v", snap.rttAvg, want)
		}
	}
}

type errWriter struct{ n int }

var errBroken = errors.New("broken pipe")

func (e errWriter) Write(p []byte) (int, error) {
	if e.n >= 0 {
		return min(e.n, len(p)), nil
	}
	return 0, errBroken
}

func TestWriteErrors(t *testing.T) {
	for _, json := range []bool{false, true} {
		w := New(errWriter{n: -1}, Options{JSON: json, Show: sshtap.KindAll})
		if err := w.Event("", &sshtap.PingEvent{Header: hdr()}); !errors.Is(err, errBroken) {
			t.Errorf("Event: %v", err)
		}
		if err := w.Note("", "x"); !errors.Is(err, errBroken) {
			t.Errorf("Note: %v", err)
		}
		if err := w.WriteSummary("", &Summary{}, sshtap.Stats{}, 0); !errors.Is(err, errBroken) {
			t.Errorf("WriteSummary: %v", err)
		}
		w = New(errWriter{n: 3}, Options{JSON: json, Show: sshtap.KindAll})
		if err := w.Event("", &sshtap.PingEvent{Header: hdr()}); !errors.Is(err, io.ErrShortWrite) {
			t.Errorf("short write: %v", err)
		}
	}
	// A skipped event writes nothing, so it cannot fail.
	w := New(errWriter{n: -1}, Options{Show: sshtap.KindKex})
	if err := w.Event("", &sshtap.PingEvent{Header: hdr()}); err != nil {
		t.Errorf("skipped event: %v", err)
	}
}

func TestFormatters(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ns", 999: "999ns", 1500 * time.Nanosecond: "1µs", 850 * time.Microsecond: "850µs",
		time.Millisecond: "1.0ms", 8149 * time.Microsecond: "8.1ms", 999 * time.Millisecond: "999.0ms",
		time.Second: "1.000s", 90 * time.Second: "90.000s", -2 * time.Millisecond: "-2.0ms",
	} {
		if got := formatDur(d); got != want {
			t.Errorf("formatDur(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 1<<64 - 1: "16.0 EiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "+0.000s", 1234 * time.Millisecond: "+1.234s", 3723*time.Second + time.Millisecond: "+3723.001s", -time.Millisecond: "-0.001s",
	} {
		if got := formatElapsed(d); got != want {
			t.Errorf("formatElapsed(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestKindNames checks the exported helpers against sshtap.
func TestKindNames(t *testing.T) {
	names := KindNames()
	if len(names) != bitsSet(sshtap.KindAll) {
		t.Fatalf("names %v", names)
	}
	var all sshtap.Kind
	for _, k := range Kinds() {
		all |= k
	}
	if all != sshtap.KindAll {
		t.Errorf("Kinds() cover %v", all)
	}
	sorted := slices.Clone(names)
	sort.Strings(sorted)
	if len(slices.Compact(sorted)) != len(names) {
		t.Errorf("duplicate names %v", names)
	}
}

// TestConnStart: a connection's lines count from its own start once set,
// and from Options.Start again after ForgetConn.
func TestConnStart(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	w := New(&b, Options{JSON: true, Start: start, Show: sshtap.KindAll})
	ev := &sshtap.PingEvent{Header: sshtap.Header{Time: start.Add(10 * time.Second)}, RTT: time.Millisecond}
	w.SetConnStart("#1", start.Add(8*time.Second))
	if !w.HasConnStart("#1") || w.HasConnStart("#2") {
		t.Error("HasConnStart wrong after SetConnStart")
	}
	w.Event("#1", ev)
	w.Event("#2", ev)
	w.ForgetConn("#1")
	if w.HasConnStart("#1") {
		t.Error("HasConnStart true after ForgetConn")
	}
	w.Event("#1", ev)
	var got []float64
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m struct{ Elapsed float64 }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Elapsed)
	}
	if want := []float64{2, 10, 10}; !slices.Equal(got, want) {
		t.Fatalf("elapsed = %v, want %v", got, want)
	}
}

// TestClosedClean: a local Close or Disconnect (errors matching
// net.ErrClosed) is a clean end, shown as "closed" without an error; a
// remote disconnect or a failure keeps its error.
func TestClosedClean(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		clean bool
	}{
		{"nil", nil, true},
		{"local close", fmt.Errorf("sshtap: connection closed: %w", net.ErrClosed), true},
		{"local disconnect", &sshtap.DisconnectError{Reason: 11, Message: "bye"}, true},
		{"remote disconnect", &sshtap.DisconnectError{Reason: 11, Message: "bye", Remote: true}, false},
		{"io error", io.ErrUnexpectedEOF, false},
	} {
		var h, j bytes.Buffer
		ev := &sshtap.ClosedEvent{Header: sshtap.Header{Time: time.Now()}, Err: tc.err}
		New(&h, Options{Show: sshtap.KindAll}).Event("", ev)
		New(&j, Options{JSON: true, Show: sshtap.KindAll}).Event("", ev)
		var m map[string]any
		if err := json.Unmarshal(j.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		_, hasErr := m["error"]
		endsClean := strings.HasSuffix(strings.TrimSpace(h.String()), " closed")
		if hasErr == tc.clean || endsClean != tc.clean {
			t.Errorf("%s: human %q, json %v; want clean=%v", tc.name, h.String(), m, tc.clean)
		}
	}
}

// TestRoutineEventsNotRed: the "none" probe's failure and our own
// by-application disconnect are routine, not coloured as errors; a real
// failure and a remote disconnect are.
func TestRoutineEventsNotRed(t *testing.T) {
	now := sshtap.Header{Time: time.Now()}
	for _, tc := range []struct {
		ev  sshtap.Event
		red bool
	}{
		{&sshtap.UserAuthEvent{Header: now, Method: "none", Result: sshtap.AuthFailure}, false},
		{&sshtap.UserAuthEvent{Header: now, Method: "password", Result: sshtap.AuthFailure}, true},
		{&sshtap.DisconnectEvent{Header: now, Reason: sshtap.DisconnectByApplication}, false},
		{&sshtap.DisconnectEvent{Header: now, Reason: sshtap.DisconnectByApplication, Remote: true}, true},
		{&sshtap.DisconnectEvent{Header: now, Reason: sshtap.DisconnectProtocolError}, true},
	} {
		var b bytes.Buffer
		New(&b, Options{Color: true, Show: sshtap.KindAll}).Event("", tc.ev)
		if red := strings.Contains(b.String(), colRed); red != tc.red {
			t.Errorf("%+v: red=%v, want %v: %q", tc.ev, red, tc.red, b.String())
		}
	}
}

// TestKexLegacy: a kex that negotiated legacy algorithms gets a warning
// line after its kex line in the human view and a "legacy" list in NDJSON;
// without them there is neither.
func TestKexLegacy(t *testing.T) {
	ev := &sshtap.KexEvent{Header: hdr(), Initial: true, Algorithms: sshtap.Algorithms{
		Kex: "diffie-hellman-group1-sha1", HostKey: "ssh-rsa",
		ClientToServer: sshtap.DirectionAlgorithms{Cipher: "3des-cbc", MAC: "hmac-md5", Compression: "none"},
		ServerToClient: sshtap.DirectionAlgorithms{Cipher: "3des-cbc", MAC: "hmac-md5", Compression: "none"},
	}, Legacy: []string{"diffie-hellman-group1-sha1", "ssh-rsa", "3des-cbc", "hmac-md5"}}
	out := render(t, Options{}, "", ev)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " kex ") ||
		!strings.HasSuffix(lines[1], "legacy algorithm negotiated (weak, enabled by configuration): diffie-hellman-group1-sha1,ssh-rsa,3des-cbc,hmac-md5") ||
		!strings.Contains(lines[1], "warning") {
		t.Fatalf("human output:\n%s", out)
	}
	m := decode(t, render(t, Options{JSON: true}, "", ev))
	if got := fmt.Sprint(m["legacy"]); got != "[diffie-hellman-group1-sha1 ssh-rsa 3des-cbc hmac-md5]" {
		t.Errorf("NDJSON legacy = %v", m["legacy"])
	}
	ev.Legacy = nil
	if out := render(t, Options{}, "", ev); strings.Count(out, "\n") != 1 || strings.Contains(out, "legacy") {
		t.Errorf("no legacy algorithm, yet:\n%s", out)
	}
	if _, ok := decode(t, render(t, Options{JSON: true}, "", ev))["legacy"]; ok {
		t.Error("NDJSON has legacy without a legacy algorithm")
	}
}
