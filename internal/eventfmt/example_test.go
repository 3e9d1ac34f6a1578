package eventfmt_test

import (
	"os"
	"time"

	"sshtap"
	"sshtap/internal/eventfmt"
)

func Example() {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) sshtap.Header {
		return sshtap.Header{Time: start.Add(time.Duration(ms) * time.Millisecond)}
	}
	evs := []sshtap.Event{
		&sshtap.KexEvent{Header: at(12), Initial: true, Strict: true, Duration: 8100 * time.Microsecond,
			Algorithms: sshtap.Algorithms{Kex: "curve25519-sha256", HostKey: "ssh-ed25519",
				ClientToServer: sshtap.DirectionAlgorithms{Cipher: "chacha20-poly1305@openssh.com"},
				ServerToClient: sshtap.DirectionAlgorithms{Cipher: "chacha20-poly1305@openssh.com"}}},
		&sshtap.PingEvent{Header: at(1500), RTT: 1200 * time.Microsecond},
		&sshtap.DisconnectEvent{Header: at(2000), Reason: sshtap.DisconnectByApplication, Message: "bye\x1b[2J", Remote: true},
	}
	var sum eventfmt.Summary
	for _, json := range []bool{false, true} {
		w := eventfmt.New(os.Stdout, eventfmt.Options{JSON: json, Start: start, Show: sshtap.KindAll})
		for _, ev := range evs {
			sum.Add(ev)
			w.Event("", ev)
		}
	}
	eventfmt.New(os.Stdout, eventfmt.Options{Start: start}).WriteSummary("", &sum, sshtap.Stats{BytesRead: 4242, BytesWritten: 3100}, 2*time.Second)
	// Output:
	// +0.012s kex            initial curve25519-sha256 ssh-ed25519 c2s chacha20-poly1305@openssh.com s2c chacha20-poly1305@openssh.com strict (8.1ms)
	// +1.500s ping           rtt=1.2ms
	// +2.000s disconnect     remote reason=11 (by-application) "bye\x1b[2J"
	// {"time":"2026-01-02T03:04:05.012Z","elapsed":0.012,"kind":"kex","initial":true,"strict":true,"kex":"curve25519-sha256","host_key_alg":"ssh-ed25519","c2s_cipher":"chacha20-poly1305@openssh.com","c2s_mac":"","c2s_compression":"","s2c_cipher":"chacha20-poly1305@openssh.com","s2c_mac":"","s2c_compression":"","duration_ms":8.1}
	// {"time":"2026-01-02T03:04:06.5Z","elapsed":1.5,"kind":"ping","rtt_ms":1.2}
	// {"time":"2026-01-02T03:04:07Z","elapsed":2,"kind":"disconnect","reason":11,"reason_name":"BY_APPLICATION","message":"bye\u001b[2J","language":"","remote":true}
	// summary after 2.000s
	//   bytes    4.1 KiB in (4242), 3.0 KiB out (3100)
	//   rekeys   0
	//   rtt      min 1.2ms  avg 1.2ms  max 1.2ms  (2 pings)
	//   events   6 in total
	//            disconnect 2        kex 2               ping 2
}
