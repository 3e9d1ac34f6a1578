package sshtap

// Events as log/slog values, and a subscription logged to a *slog.Logger.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"unicode/utf8"
)

// maxLogData is how many bytes of binary data a logged event shows (as
// hex, beside the whole length).
const maxLogData = 32

// bytesAttrs logs data as a hex prefix and its length.
func bytesAttrs(name string, data []byte, length int) []slog.Attr {
	d := data[:min(len(data), maxLogData)]
	return []slog.Attr{slog.String(name+"_hex", hex.EncodeToString(d)), slog.Int(name+"_len", length)}
}

// textAttr logs peer text: as it is when it is valid UTF-8 (the handler
// quotes it), as a hex prefix otherwise.
func textAttr(name, s string) slog.Attr {
	if utf8.ValidString(s) {
		return slog.String(name, s)
	}
	return slog.String(name+"_hex", hex.EncodeToString([]byte(s[:min(len(s), maxLogData)])))
}

// fingerprint is OpenSSH's SHA256 fingerprint of a key blob.
func fingerprint(blob []byte) string {
	h := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}

func eventValue(k Kind, attrs ...slog.Attr) slog.Value {
	return slog.GroupValue(append([]slog.Attr{slog.String("kind", k.String())}, attrs...)...)
}

// LogValue implements slog.LogValuer: the kind and the fields as
// attributes (so for every event).
func (e *IgnoreEvent) LogValue() slog.Value {
	return eventValue(KindIgnore, bytesAttrs("data", e.Data, e.Length)...)
}

func (e *DebugEvent) LogValue() slog.Value {
	return eventValue(KindDebug, slog.Bool("always_display", e.AlwaysDisplay), textAttr("message", e.Message),
		slog.Int("length", e.Length), textAttr("language", e.Language))
}

func (e *DisconnectEvent) LogValue() slog.Value {
	return eventValue(KindDisconnect, slog.Int("reason", int(e.Reason)), slog.String("reason_name", e.Reason.String()),
		textAttr("message", e.Message), slog.Bool("remote", e.Remote))
}

func (e *MACMismatchEvent) LogValue() slog.Value {
	return eventValue(KindMACMismatch, slog.Uint64("seq", uint64(e.Seq)), slog.Uint64("length", uint64(e.Length)),
		slog.String("cipher", e.Cipher), slog.String("mac", e.MAC), slog.String("mode", e.Mode.String()),
		slog.Bool("length_authenticated", e.LengthAuthenticated), slog.String("verdict", e.Verdict.String()))
}

func (e *KexStartEvent) LogValue() slog.Value {
	return eventValue(KindKexStart, slog.Bool("initial", e.Initial), slog.Bool("remote", e.Remote))
}

func directionValue(d DirectionAlgorithms) slog.Value {
	return slog.GroupValue(slog.String("cipher", d.Cipher), slog.String("mac", d.MAC), slog.String("compression", d.Compression))
}

func (e *KexEvent) LogValue() slog.Value {
	return eventValue(KindKex, slog.Bool("initial", e.Initial), slog.Bool("strict", e.Strict),
		slog.String("kex", e.Algorithms.Kex), slog.String("host_key_algorithm", e.Algorithms.HostKey),
		slog.Any("client_to_server", directionValue(e.Algorithms.ClientToServer)),
		slog.Any("server_to_client", directionValue(e.Algorithms.ServerToClient)),
		slog.Duration("duration", e.Duration), slog.String("host_key", fingerprint(e.HostKey)),
		slog.Any("legacy", e.Legacy))
}

func (e *BannerLineEvent) LogValue() slog.Value {
	return eventValue(KindBannerLine, textAttr("line", e.Line))
}

func (e *UnimplementedEvent) LogValue() slog.Value {
	return eventValue(KindUnimplemented, slog.Uint64("seq", uint64(e.Seq)), slog.Int("type", int(e.Type)), slog.Bool("remote", e.Remote))
}

func (e *ExtInfoEvent) LogValue() slog.Value {
	ext := make([]slog.Attr, 0, len(e.Extensions))
	for _, x := range e.Extensions {
		if utf8.Valid(x.Value) {
			ext = append(ext, slog.String(x.Name, string(x.Value)))
		} else {
			ext = append(ext, slog.Any(x.Name, slog.GroupValue(bytesAttrs("value", x.Value, len(x.Value))...)))
		}
	}
	return eventValue(KindExtInfo, slog.Any("extensions", slog.GroupValue(ext...)))
}

func (e *PingEvent) LogValue() slog.Value {
	return eventValue(KindPing, slog.Duration("rtt", e.RTT))
}

func (e *X11OpenEvent) LogValue() slog.Value {
	return eventValue(KindX11Open, slog.String("origin_addr", e.OriginAddr), slog.Uint64("origin_port", uint64(e.OriginPort)))
}

func (e *LaggedEvent) LogValue() slog.Value {
	return eventValue(KindLagged, slog.Uint64("dropped", e.Dropped))
}

func (e *ClosedEvent) LogValue() slog.Value {
	msg := ""
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return eventValue(KindClosed, slog.String("err", msg))
}

func (e *AuthBannerEvent) LogValue() slog.Value {
	return eventValue(KindAuthBanner, textAttr("message", e.Message), textAttr("language", e.Language))
}

func (e *UserAuthEvent) LogValue() slog.Value {
	return eventValue(KindUserAuth, textAttr("user", e.User), slog.String("method", e.Method), slog.String("algorithm", e.Algorithm),
		slog.String("result", e.Result.String()), slog.Any("remaining", e.Remaining), slog.String("err", e.Err))
}

func (e *HostKeysEvent) LogValue() slog.Value {
	fps := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		fps[i] = fingerprint(k)
	}
	return eventValue(KindHostKeys, slog.Any("keys", fps))
}

func (e *HostKeyProofEvent) LogValue() slog.Value {
	fps := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		fps[i] = fingerprint(k)
	}
	return eventValue(KindHostKeyProof, slog.Any("keys", fps), slog.Bool("proven", e.Proven), slog.String("err", e.Err))
}

func (e *GlobalRequestEvent) LogValue() slog.Value {
	return eventValue(KindGlobalRequest, textAttr("name", e.Name), slog.Bool("want_reply", e.WantReply), slog.Bool("handled", e.Handled))
}

func (e *AgentRequestEvent) LogValue() slog.Value {
	return eventValue(KindAgentRequest, slog.String("request", e.Request), slog.String("key", e.Key), slog.Uint64("flags", uint64(e.Flags)),
		slog.String("extension", e.Extension), slog.Bool("allowed", e.Allowed), slog.String("err", e.Err))
}

// eventLevel is the level an event is logged at: routine traffic at
// Debug, trouble at Warn, the rest at Info.
func eventLevel(ev Event) slog.Level {
	switch ev.Kind() {
	case KindIgnore, KindPing, KindKexStart, KindGlobalRequest:
		return slog.LevelDebug
	case KindMACMismatch, KindLagged, KindUnimplemented:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Log logs every event of the subscription to l, as it arrives, until the
// subscription ends (the Conn closed, ctx of Subscribe done, or Close), and
// returns the ClosedEvent's error. Each record has the event's time, its
// kind as the message and the event (a slog.LogValuer) under the key
// "event"; routine kinds (ignore, ping, kex-start, global-request) are
// logged at Debug, mac-mismatch, lagged and unimplemented at Warn, the
// rest at Info. It blocks: run it on a goroutine of your own, e.g.
// go sub.Log(logger).
func (s *Subscription) Log(l *slog.Logger) error {
	var err error
	ctx := context.Background()
	for ev := range s.Events() {
		if ce, ok := ev.(*ClosedEvent); ok {
			err = ce.Err
		}
		lvl := eventLevel(ev)
		if !l.Enabled(ctx, lvl) {
			continue
		}
		r := slog.NewRecord(ev.When(), lvl, ev.Kind().String(), 0)
		r.AddAttrs(slog.Any("event", ev))
		l.Handler().Handle(ctx, r)
	}
	return err
}
