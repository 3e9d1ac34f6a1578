package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"sshtap/internal/testpeer"
)

var (
	benchBinOnce sync.Once
	benchDir     string // removed by TestMain
	benchBin     string
	benchBinErr  error
)

// benchBinary builds sshtap without the race detector, for timing.
func benchBinary(b *testing.B) string {
	benchBinOnce.Do(func() {
		// Not b.TempDir: that goes when the first sub-benchmark ends.
		benchDir, benchBinErr = os.MkdirTemp("", "sshtap-bench-")
		if benchBinErr != nil {
			return
		}
		benchBin = filepath.Join(benchDir, "sshtap")
		out, err := exec.Command("go", "build", "-o", benchBin, ".").CombinedOutput()
		if err != nil {
			benchBinErr = &buildError{err: err, out: string(out)}
		}
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	return benchBin
}

// BenchmarkCLIExec compares, side by side against one local sshd, one
// `sshtap HOST true` with one `ssh HOST true`: process start, TCP connect,
// key exchange, publickey authentication, one exec and the disconnect. Each
// op is one process run, the way a script uses either tool. Run:
//
//	go test -run '^$' -bench CLIExec -benchtime 20x ./cmd/sshtap/
func BenchmarkCLIExec(b *testing.B) {
	testpeer.Require(b, "sshd", "ssh")
	d := testpeer.StartSSHD(b, testpeer.SSHDOptions{})
	home := b.TempDir()
	sshDir := filepath.Join(home, ".ssh")
	os.MkdirAll(sshDir, 0o700)
	keyPath := filepath.Join(sshDir, "id_ed25519")
	if err := os.WriteFile(keyPath, d.ClientKeys[0].Private, 0o600); err != nil {
		b.Fatal(err)
	}
	known := filepath.Join(sshDir, "known_hosts")
	var lines []byte
	for _, hk := range d.HostKeys {
		lines = append(lines, hk.KnownHostsLine(d.Addr)+"\n"...)
	}
	if err := os.WriteFile(known, lines, 0o600); err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(d.Port)
	env := []string{"HOME=" + home, "USER=root", "PATH=" + os.Getenv("PATH")}
	run := func(b *testing.B, name string, args ...string) {
		for b.Loop() {
			cmd := exec.Command(name, args...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", name, err, out)
			}
		}
	}
	b.Run("sshtap", func(b *testing.B) {
		run(b, benchBinary(b), "-p", port, "--no-summary", "--only", "closed", "-i", keyPath, "root@127.0.0.1", "true")
	})
	b.Run("openssh", func(b *testing.B) {
		run(b, "ssh", "-p", port, "-F", "none", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+known,
			"-i", keyPath, "root@127.0.0.1", "true")
	})
}
