package eventfmt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"sshtap"
)

// The NDJSON schema. Every object starts with the common fields; the field
// names are part of the CLI's interface (cmd/sshtap/EVENTS.md): they are
// only ever added, never renamed or removed.

type commonJSON struct {
	Time     string  `json:"time"`    // RFC 3339, nanoseconds, UTC
	Elapsed  float64 `json:"elapsed"` // seconds since Options.Start
	Conn     string  `json:"conn,omitempty"`
	Hop      string  `json:"hop,omitempty"`       // a jump host's connection
	HopIndex int     `json:"hop_index,omitempty"` // its place on the way, from 1
	Kind     string  `json:"kind"`
}

func common(src Source, kind string, t time.Time, since time.Duration) commonJSON {
	return commonJSON{
		Time:     t.UTC().Format(time.RFC3339Nano),
		Elapsed:  seconds(since),
		Conn:     src.Conn,
		Hop:      src.Hop,
		HopIndex: src.HopIndex,
		Kind:     kind,
	}
}

// seconds is d in seconds, rounded to the microsecond.
func seconds(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e6 }

// millis is d in milliseconds, rounded to the microsecond.
func millis(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// maxIgnoreHex is how many bytes of SSH_MSG_IGNORE data data_hex carries.
const maxIgnoreHex = 64

type noteJSON struct {
	commonJSON
	Message string `json:"message"`
}

type ignoreJSON struct {
	commonJSON
	Length    int    `json:"length"`
	DataHex   string `json:"data_hex"`
	Truncated bool   `json:"truncated,omitempty"`
}

type debugJSON struct {
	commonJSON
	AlwaysDisplay bool   `json:"always_display"`
	Message       string `json:"message"`
	Length        int    `json:"length"`
	Language      string `json:"language"`
}

type disconnectJSON struct {
	commonJSON
	Reason     uint32 `json:"reason"`
	ReasonName string `json:"reason_name"`
	Message    string `json:"message"`
	Language   string `json:"language"`
	Remote     bool   `json:"remote"`
}

type macMismatchJSON struct {
	commonJSON
	Seq                 uint32 `json:"seq"`
	Length              uint32 `json:"length"`
	Cipher              string `json:"cipher"`
	MAC                 string `json:"mac"`
	Mode                string `json:"mode"`
	LengthAuthenticated bool   `json:"length_authenticated"`
	Verdict             string `json:"verdict"`
}

type kexStartJSON struct {
	commonJSON
	Initial bool `json:"initial"`
	Remote  bool `json:"remote"`
}

type kexJSON struct {
	commonJSON
	Initial            bool    `json:"initial"`
	Strict             bool    `json:"strict"`
	Kex                string  `json:"kex"`
	HostKeyAlg         string  `json:"host_key_alg"`
	C2SCipher          string  `json:"c2s_cipher"`
	C2SMAC             string  `json:"c2s_mac"`
	C2SCompression     string  `json:"c2s_compression"`
	S2CCipher          string  `json:"s2c_cipher"`
	S2CMAC             string  `json:"s2c_mac"`
	S2CCompression     string  `json:"s2c_compression"`
	DurationMS         float64 `json:"duration_ms"`
	HostKeyType        string  `json:"host_key_type,omitempty"`
	HostKeyFingerprint string  `json:"host_key_fingerprint,omitempty"`
	// Legacy is omitted when no legacy algorithm was negotiated.
	Legacy []string `json:"legacy,omitempty"`
}

type bannerLineJSON struct {
	commonJSON
	Line string `json:"line"`
}

type unimplementedJSON struct {
	commonJSON
	Seq    uint32 `json:"seq"`
	Type   byte   `json:"type"`
	Remote bool   `json:"remote"`
}

type extensionJSON struct {
	Name     string `json:"name"`
	Value    string `json:"value,omitempty"`
	ValueHex string `json:"value_hex,omitempty"`
}

type extInfoJSON struct {
	commonJSON
	Extensions []extensionJSON `json:"extensions"`
}

type pingJSON struct {
	commonJSON
	RTTMS float64 `json:"rtt_ms"`
}

type x11OpenJSON struct {
	commonJSON
	OriginAddr string `json:"origin_addr"`
	OriginPort uint32 `json:"origin_port"`
}

type laggedJSON struct {
	commonJSON
	Dropped uint64 `json:"dropped"`
}

type closedJSON struct {
	commonJSON
	Error string `json:"error,omitempty"`
}

type authBannerJSON struct {
	commonJSON
	Message  string `json:"message"`
	Language string `json:"language"`
}

type userAuthJSON struct {
	commonJSON
	User      string   `json:"user"`
	Method    string   `json:"method"`
	Algorithm string   `json:"algorithm,omitempty"`
	Result    string   `json:"result"`
	Remaining []string `json:"remaining"`
	Error     string   `json:"error,omitempty"`
}

type hostKeysJSON struct {
	commonJSON
	Fingerprints []string `json:"fingerprints"`
	KeyTypes     []string `json:"key_types"`
}

// hostKeysOf describes key blobs: a fingerprint and a type each, in order.
func hostKeysOf(c commonJSON, keys [][]byte) hostKeysJSON {
	j := hostKeysJSON{commonJSON: c, Fingerprints: []string{}, KeyTypes: []string{}}
	for _, k := range keys {
		ki := describeKey(k)
		j.Fingerprints = append(j.Fingerprints, ki.Fingerprint)
		j.KeyTypes = append(j.KeyTypes, ki.Type)
	}
	return j
}

type hostKeyProofJSON struct {
	hostKeysJSON
	Proven bool   `json:"proven"`
	Err    string `json:"error,omitempty"`
}

type globalRequestJSON struct {
	commonJSON
	Name      string `json:"name"`
	WantReply bool   `json:"want_reply"`
	Handled   bool   `json:"handled"`
}

type agentRequestJSON struct {
	commonJSON
	Request   string `json:"request"`
	Key       string `json:"key,omitempty"`
	Flags     uint32 `json:"flags"`
	Extension string `json:"extension,omitempty"`
	Allowed   bool   `json:"allowed"`
	Error     string `json:"error,omitempty"`
}

type unknownJSON struct {
	commonJSON
	Unrendered string `json:"unrendered"`
}

type summaryJSON struct {
	commonJSON
	Counts       map[string]int `json:"counts"`
	Events       int            `json:"events"`
	BytesRead    uint64         `json:"bytes_read"`
	BytesWritten uint64         `json:"bytes_written"`
	Rekeys       uint64         `json:"rekeys"`
	Compression  *compressJSON  `json:"compression,omitempty"`
	Pings        int            `json:"pings"`
	RTTMinMS     *float64       `json:"rtt_min_ms,omitempty"`
	RTTAvgMS     *float64       `json:"rtt_avg_ms,omitempty"`
	RTTMaxMS     *float64       `json:"rtt_max_ms,omitempty"`
	Dropped      uint64         `json:"dropped"`
}

// compressJSON is a summary's compression figures: payload bytes before
// and after, each way.
type compressJSON struct {
	UncompressedIn  uint64 `json:"uncompressed_in"`
	CompressedIn    uint64 `json:"compressed_in"`
	UncompressedOut uint64 `json:"uncompressed_out"`
	CompressedOut   uint64 `json:"compressed_out"`
}

// jsonEvent returns the NDJSON object of ev.
func jsonEvent(c commonJSON, ev sshtap.Event) any {
	switch ev := ev.(type) {
	case *sshtap.IgnoreEvent:
		d := ev.Data
		if len(d) > maxIgnoreHex {
			d = d[:maxIgnoreHex]
		}
		return &ignoreJSON{c, ev.Length, hex.EncodeToString(d), ev.Length > len(d)}
	case *sshtap.DebugEvent:
		return &debugJSON{c, ev.AlwaysDisplay, ev.Message, ev.Length, ev.Language}
	case *sshtap.DisconnectEvent:
		return &disconnectJSON{c, uint32(ev.Reason), ev.Reason.String(), ev.Message, ev.Language, ev.Remote}
	case *sshtap.MACMismatchEvent:
		return &macMismatchJSON{c, ev.Seq, ev.Length, ev.Cipher, ev.MAC, ev.Mode.String(), ev.LengthAuthenticated, ev.Verdict.String()}
	case *sshtap.KexStartEvent:
		return &kexStartJSON{c, ev.Initial, ev.Remote}
	case *sshtap.KexEvent:
		a := ev.Algorithms
		ki := describeKey(ev.HostKey)
		return &kexJSON{
			commonJSON: c, Initial: ev.Initial, Strict: ev.Strict,
			Kex: a.Kex, HostKeyAlg: a.HostKey,
			C2SCipher: a.ClientToServer.Cipher, C2SMAC: a.ClientToServer.MAC, C2SCompression: a.ClientToServer.Compression,
			S2CCipher: a.ServerToClient.Cipher, S2CMAC: a.ServerToClient.MAC, S2CCompression: a.ServerToClient.Compression,
			DurationMS:  millis(ev.Duration),
			HostKeyType: ki.Type, HostKeyFingerprint: ki.Fingerprint,
			Legacy: ev.Legacy,
		}
	case *sshtap.BannerLineEvent:
		return &bannerLineJSON{c, ev.Line}
	case *sshtap.UnimplementedEvent:
		return &unimplementedJSON{c, ev.Seq, ev.Type, ev.Remote}
	case *sshtap.ExtInfoEvent:
		xs := make([]extensionJSON, len(ev.Extensions))
		for i, x := range ev.Extensions {
			xs[i].Name = x.Name
			if v, isHex := extValue(x.Value); isHex {
				xs[i].ValueHex = v
			} else {
				xs[i].Value = v
			}
		}
		return &extInfoJSON{c, xs}
	case *sshtap.PingEvent:
		return &pingJSON{c, millis(ev.RTT)}
	case *sshtap.X11OpenEvent:
		return &x11OpenJSON{c, ev.OriginAddr, ev.OriginPort}
	case *sshtap.LaggedEvent:
		return &laggedJSON{c, ev.Dropped}
	case *sshtap.ClosedEvent:
		j := &closedJSON{commonJSON: c}
		if err := closeError(ev.Err); err != nil {
			j.Error = err.Error()
		}
		return j
	case *sshtap.AuthBannerEvent:
		return &authBannerJSON{c, ev.Message, ev.Language}
	case *sshtap.UserAuthEvent:
		rem := ev.Remaining
		if rem == nil {
			rem = []string{}
		}
		return &userAuthJSON{c, ev.User, ev.Method, ev.Algorithm, ev.Result.String(), rem, ev.Err}
	case *sshtap.HostKeysEvent:
		j := hostKeysOf(c, ev.Keys)
		return &j
	case *sshtap.HostKeyProofEvent:
		return &hostKeyProofJSON{hostKeysJSON: hostKeysOf(c, ev.Keys), Proven: ev.Proven, Err: ev.Err}
	case *sshtap.GlobalRequestEvent:
		return &globalRequestJSON{c, ev.Name, ev.WantReply, ev.Handled}
	case *sshtap.AgentRequestEvent:
		return &agentRequestJSON{c, ev.Request, ev.Key, ev.Flags, ev.Extension, ev.Allowed, ev.Err}
	}
	return &unknownJSON{c, fmt.Sprintf("%T", ev)}
}

// extValue returns an EXT_INFO value as text when it is printable UTF-8,
// and as hex (isHex) otherwise.
func extValue(v []byte) (s string, isHex bool) {
	if utf8.Valid(v) {
		ok := true
		for _, r := range string(v) {
			if !safeRune(r) {
				ok = false
				break
			}
		}
		if ok {
			return string(v), false
		}
	}
	return hex.EncodeToString(v), true
}

func summaryToJSON(src Source, t time.Time, s summarySnapshot, st sshtap.Stats, elapsed time.Duration) *summaryJSON {
	j := &summaryJSON{
		commonJSON:   common(src, "summary", t, elapsed),
		Counts:       map[string]int{},
		Events:       s.total,
		BytesRead:    st.BytesRead,
		BytesWritten: st.BytesWritten,
		Rekeys:       st.Rekeys,
		Pings:        s.pings,
		Dropped:      s.dropped,
	}
	if st.CompressedOut > 0 || st.CompressedIn > 0 {
		j.Compression = &compressJSON{st.UncompressedIn, st.CompressedIn, st.UncompressedOut, st.CompressedOut}
	}
	for k, n := range s.counts {
		if n > 0 {
			j.Counts[k.String()] = n
		}
	}
	if s.pings > 0 {
		lo, avg, hi := millis(s.rttMin), millis(s.rttAvg), millis(s.rttMax)
		j.RTTMinMS, j.RTTAvgMS, j.RTTMaxMS = &lo, &avg, &hi
	}
	return j
}

// writeJSON appends v to b as one line of JSON. encoding/json escapes
// control characters below U+0020 and U+2028/U+2029 inside strings; writeJSON
// also escapes DEL, C1 controls, bidi overrides and every other rune that is
// not printable, so that the raw line is safe to show on a terminal
// (cat, tail -f) while the decoded strings are still exactly the peer's text
// (invalid UTF-8 aside, which encoding/json replaces by U+FFFD).
func writeJSON(b *bytes.Buffer, v any) error {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	p := tmp.Bytes()
	for len(p) > 0 {
		c := p[0]
		if c < utf8.RuneSelf && c != 0x7f {
			b.WriteByte(c)
			p = p[1:]
			continue
		}
		r, size := utf8.DecodeRune(p)
		p = p[size:]
		if r != utf8.RuneError && safeRune(r) {
			b.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
	return nil
}
