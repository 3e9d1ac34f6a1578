package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"sshtap/internal/testpeer"
)

// cliTransferCipher is the cipher both clients use in BenchmarkCLITransfer.
const cliTransferCipher = "aes128-gcm@openssh.com"

// cliTransferBytes is the size of one BenchmarkCLITransfer op: 1 GiB, or
// SSHTAP_CLI_TRANSFER_MIB MiB (e.g. 64 for a quick check).
func cliTransferBytes(b *testing.B) int64 {
	s := os.Getenv("SSHTAP_CLI_TRANSFER_MIB")
	if s == "" {
		return 1 << 30
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("SSHTAP_CLI_TRANSFER_MIB=%q: want a positive number of MiB", s)
	}
	return n << 20
}

// BenchmarkCLITransfer moves N bytes (1 GiB by default, see
// cliTransferBytes) through one session of the sshtap command and of
// OpenSSH's ssh, each run as a process against the same local sshd with
// the same key and cipher (aes128-gcm@openssh.com):
//
//   - download: the remote command is "head -c N /dev/zero"; the client's
//     stdout is /dev/null.
//   - upload: the remote command is "cat > /dev/null"; the client's stdin is
//     a pipe the benchmark fills with N zero bytes (128 KiB writes), as in
//     `head -c N /dev/zero | ssh host 'cat > /dev/null'`.
//
// Besides MB/s (N over the wall time of the whole process run: start,
// handshake and authentication included), it reports the client process's
// own resource usage from wait4 (os.ProcessState.SysUsage) per GiB moved:
// cs/GiB (voluntary + involuntary context switches), vcs/GiB (voluntary
// only), cpu-s/GiB (user + system CPU seconds) and sys-s/GiB (system).
//
// sshd logs in as the dedicated account testpeer.TestUser, whose shell is
// /bin/sh (dash) with no startup files, rather than root: root's bash reads
// ~/.bashrc for commands run by sshd, which costs time per command that
// neither client is responsible for. sshd reads authorized_keys as that
// user, so the key is in a world-readable file of its own.
//
// The sshtap binary is built without -race and runs with events reduced to
// "closed" and no summary. For repetitions set SSHTAP_CLI_TRANSFER_ROUNDS:
// the sub-benchmarks then run in rounds (download and upload, sshtap and
// openssh, which client goes first alternating from round to round), so
// that both clients see the same machine weather; -count would run each
// sub-benchmark's repetitions back to back. With -benchtime 1x each sample
// is one transfer. internal/benchcmp prints medians and ratios:
//
//	SSHTAP_CLI_TRANSFER_ROUNDS=5 go test -run '^$' -bench CLITransfer -benchtime 1x -timeout 60m ./cmd/sshtap | go run ./internal/benchcmp
//
// SSHTAP_CLI_TRANSFER_MIB=64 makes a quick check.
func BenchmarkCLITransfer(b *testing.B) {
	testpeer.Require(b, "sshd", "ssh")
	acct := testpeer.EnsureTestUser(b)
	n := cliTransferBytes(b)
	bin := benchBinary(b)

	key := testpeer.NewKey(b, testpeer.KeyEd25519)
	akDir, err := os.MkdirTemp("", "sshtap-bench-ak-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(akDir) })
	ak := filepath.Join(akDir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(key.AuthorizedKey+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(akDir, 0o755); err != nil {
		b.Fatal(err)
	}
	d := testpeer.StartSSHD(b, testpeer.SSHDOptions{
		HostKeys:       testpeer.HostKeys(b, testpeer.KeyEd25519),
		AuthorizedKeys: []*testpeer.Key{key},
		Config: []string{
			"AuthorizedKeysFile " + ak, // first value wins over the harness's
			"Ciphers " + cliTransferCipher,
			"LogLevel ERROR",
			"UseDNS no",
		},
	})
	known := d.KnownHostsFile(b)
	home := b.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	common := []string{"-p", strconv.Itoa(d.Port), "-F", "none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + known,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-i", key.Path,
	}
	dest := acct.Name + "@127.0.0.1"
	clients := []struct {
		name, bin string
		args      []string
	}{
		{"sshtap", bin, append(append([]string{}, common...),
			"-o", "Ciphers="+cliTransferCipher, "--no-summary", "--only", "closed", dest)},
		{"openssh", testpeer.Binary(b, "ssh"), append(append([]string{}, common...),
			"-c", cliTransferCipher, "-o", "LogLevel=ERROR", "-o", "ControlMaster=no",
			"-o", "UpdateHostKeys=no", dest)},
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })

	for r := range cliTransferRounds(b) {
		for _, dir := range []string{"download", "upload"} {
			for i := range clients {
				c := clients[i]
				if r%2 == 1 { // alternate which client goes first
					c = clients[len(clients)-1-i]
				}
				// Rounds after the first are named ...#01, #02 by the
				// testing package; benchcmp counts them as samples.
				b.Run(c.name+"/"+dir, func(b *testing.B) {
					var ru usage
					b.SetBytes(n)
					for b.Loop() {
						ru.add(cliTransferOnce(b, c.bin, c.args, env, dir, n, devNull))
					}
					ru.report(b, n)
				})
			}
		}
	}
}

// cliTransferRounds is how many times BenchmarkCLITransfer runs each of its
// sub-benchmarks, in alternation: SSHTAP_CLI_TRANSFER_ROUNDS, default 1.
// (-count repeats each sub-benchmark back to back instead.)
func cliTransferRounds(b *testing.B) int {
	s := os.Getenv("SSHTAP_CLI_TRANSFER_ROUNDS")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("SSHTAP_CLI_TRANSFER_ROUNDS=%q: want a positive count", s)
	}
	return n
}

// cliTransferOnce runs one client process for one transfer and returns its
// resource usage.
func cliTransferOnce(b *testing.B, bin string, args, env []string, dir string, n int64, devNull *os.File) *syscall.Rusage {
	remote := "cat > /dev/null"
	if dir == "download" {
		remote = fmt.Sprintf("head -c %d /dev/zero", n)
	}
	cmd := exec.Command(bin, append(append([]string{}, args...), remote)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = devNull, &stderr
	var feed chan error
	if dir == "upload" {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdin = r
		if err := cmd.Start(); err != nil {
			r.Close()
			w.Close()
			b.Fatal(err)
		}
		r.Close()
		feed = make(chan error, 1)
		go func() {
			buf := make([]byte, 128<<10)
			var err error
			for left := n; left > 0 && err == nil; {
				k := min(int64(len(buf)), left)
				_, err = w.Write(buf[:k])
				left -= k
			}
			w.Close()
			feed <- err
		}()
	} else if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	err := cmd.Wait()
	if feed != nil {
		if ferr := <-feed; err == nil && ferr != nil {
			err = fmt.Errorf("feeding stdin: %w", ferr)
		}
	}
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(bin), dir, err, stderr.Bytes())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatalf("no rusage for %s", bin)
	}
	return ru
}

// usage sums client processes' resource usage.
type usage struct {
	cpu, sys    float64 // seconds
	vcsw, ivcsw int64
	ops         int
}

func (u *usage) add(ru *syscall.Rusage) {
	u.cpu += tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	u.sys += tvSeconds(ru.Stime)
	u.vcsw += ru.Nvcsw
	u.ivcsw += ru.Nivcsw
	u.ops++
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// report reports the sums per GiB moved.
func (u *usage) report(b *testing.B, n int64) {
	gib := float64(u.ops) * float64(n) / (1 << 30)
	if gib == 0 {
		return
	}
	b.ReportMetric(float64(u.vcsw+u.ivcsw)/gib, "cs/GiB")
	b.ReportMetric(float64(u.vcsw)/gib, "vcs/GiB")
	b.ReportMetric(u.cpu/gib, "cpu-s/GiB")
	b.ReportMetric(u.sys/gib, "sys-s/GiB")
}
