package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sampleOutput = `goos: linux
BenchmarkHandshake/sshtap/curve25519-sha256-2   	     100	    400000 ns/op	  295640 B/op	     283 allocs/op
BenchmarkHandshake/sshtap/curve25519-sha256-2   	     100	    300000 ns/op	  295640 B/op	     283 allocs/op
BenchmarkHandshake/xcrypto/curve25519-sha256-2  	     100	    600000 ns/op	   45048 B/op	     403 allocs/op
BenchmarkTransportThroughput/sshtap/aes128-gcm@openssh.com-2  	3	27164 ns/op	1200.00 MB/s	13874 B/op	0 allocs/op
BenchmarkTransportThroughput/xcrypto/aes128-gcm@openssh.com-2 	3	36688 ns/op	 600.00 MB/s	55029 B/op	29 allocs/op
BenchmarkSealOpen/chacha20-poly1305@openssh.com-2 	1	61562 ns/op	 532.73 MB/s	0 B/op	0 allocs/op
PASS
`

func TestTable(t *testing.T) {
	s, err := parse(strings.NewReader(sampleOutput))
	if err != nil || len(s) != 6 {
		t.Fatalf("parse: %d samples, %v", len(s), err)
	}
	var b strings.Builder
	write(&b, group(s))
	out := b.String()
	for _, want := range []string{
		"== Handshake", "sshtap/xcrypto", "350.0µs", "0.58", // median 350µs / 600µs
		"== TransportThroughput", "2.00", // 1200 / 600 MB/s
		"== SealOpen", "chacha20-poly1305@openssh.com", "533",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTableModeFamilies(t *testing.T) {
	const in = `BenchmarkTransfer/upload/sshtap/aes128-gcm@openssh.com-2 	1	357485355 ns/op	 180.00 MB/s	 1.297 allocs/MiB	10859600 B/op	83 allocs/op
BenchmarkTransfer/upload/xcrypto/aes128-gcm@openssh.com-2 	1	363333098 ns/op	 90.00 MB/s	 65.47 allocs/MiB	185216 B/op	4190 allocs/op
BenchmarkTransfer/upload/openssh/aes128-gcm@openssh.com-2 	1	469371935 ns/op	 120.00 MB/s	36736 B/op	48 allocs/op
BenchmarkTransfer/download/sshtap/aes128-gcm@openssh.com-2 	1	399314221 ns/op	 168.06 MB/s	 1.125 allocs/MiB	8731608 B/op	72 allocs/op
`
	s, err := parse(strings.NewReader(in))
	if err != nil || len(s) != 4 {
		t.Fatalf("parse: %d samples, %v", len(s), err)
	}
	var b strings.Builder
	write(&b, group(s))
	out := b.String()
	for _, want := range []string{
		"== Transfer/upload", "== Transfer/download", "allocs/MiB",
		"sshtap/xcrypto", "sshtap/openssh", "2.00", "1.50", "65.5",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExtraMetrics(t *testing.T) {
	// The second sshtap line is a repetition under the same name (#01).
	const in = `BenchmarkCLITransfer/sshtap/download-2 	1	2000000000 ns/op	 500.00 MB/s	 1.000 cpu-s/GiB	 30000 cs/GiB
BenchmarkCLITransfer/sshtap/download#01-2 	1	2000000000 ns/op	 520.00 MB/s	 1.200 cpu-s/GiB	 50000 cs/GiB
BenchmarkCLITransfer/openssh/download-2 	1	2000000000 ns/op	 250.00 MB/s	 0.800 cpu-s/GiB	 20000 cs/GiB
`
	s, err := parse(strings.NewReader(in))
	if err != nil || len(s) != 3 {
		t.Fatalf("parse: %d samples, %v", len(s), err)
	}
	var b strings.Builder
	write(&b, group(s))
	out := b.String()
	for _, want := range []string{
		"== CLITransfer", "2.04", // 510 / 250 MB/s
		"cs/GiB", "40000", "2.00", // median 40000 / 20000
		"cpu-s/GiB", "1.1", "1.38", "0.8", // median 1.1 / 0.8
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "#01") {
		t.Errorf("repetition not merged:\n%s", out)
	}
}
