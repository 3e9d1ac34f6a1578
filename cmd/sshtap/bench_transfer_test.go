package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// cliTransferCiphers are the cipher (and MAC) pairs BenchmarkCLITransfer
// runs, in the form of the variant names; SSHTAP_CLI_TRANSFER_CIPHERS picks
// some (a comma-separated list of cipher names).
var cliTransferCiphers = []struct{ cipher, mac string }{
	{"chacha20-poly1305@openssh.com", ""},
	{"aes128-gcm@openssh.com", ""},
	{"aes256-gcm@openssh.com", ""},
	{"aes128-ctr", "hmac-sha2-256-etm@openssh.com"},
}

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
// cliTransferBytes) through one session of three client processes against
// the same local sshd with the same key, for each cipher of
// cliTransferCiphers: the sshtap command, OpenSSH's ssh, and xclient
// (internal/xclient), a small golang.org/x/crypto/ssh client.
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
// only), cpu-s/GiB (user + system CPU seconds) and sys-s/GiB (system); and
// srv-cpu-s/GiB, the CPU of the server side of the connection: each
// connection is served by its own "sshd -i" started by the benchmark on the
// accepted socket, whose rusage covers sshd's processes and the remote
// command.
//
// sshd logs in as the dedicated account testpeer.TestUser, whose shell is
// /bin/sh (dash) with no startup files, rather than root: root's bash reads
// ~/.bashrc for commands run by sshd, which costs time per command that
// none of the clients is responsible for. sshd reads authorized_keys as that
// user, so the key is in a world-readable file of its own.
//
// The sshtap binary is built without -race and runs with events reduced to
// "closed" and no summary. For repetitions set SSHTAP_CLI_TRANSFER_ROUNDS:
// the sub-benchmarks then run in rounds (every cipher, direction and
// client, the clients' order rotating from round to round), so that all
// of them see the same machine weather; -count would run each
// sub-benchmark's repetitions back to back. With -benchtime 1x each sample
// is one transfer. internal/benchcmp prints medians and ratios:
//
//	SSHTAP_CLI_TRANSFER_ROUNDS=3 go test -run '^$' -bench CLITransfer -benchtime 1x -timeout 60m ./cmd/sshtap | go run ./internal/benchcmp
//
// SSHTAP_CLI_TRANSFER_MIB=64 makes a quick check.
func BenchmarkCLITransfer(b *testing.B) {
	testpeer.Require(b, "sshd", "ssh")
	acct := testpeer.EnsureTestUser(b)
	n := cliTransferBytes(b)
	bin := benchBinary(b)
	xclient := benchXClient(b)
	ciphers := cliTransferCiphers
	if only := os.Getenv("SSHTAP_CLI_TRANSFER_CIPHERS"); only != "" {
		ciphers = nil
		for _, c := range cliTransferCiphers {
			if slices.Contains(strings.Split(only, ","), c.cipher) {
				ciphers = append(ciphers, c)
			}
		}
		if len(ciphers) == 0 {
			b.Fatalf("SSHTAP_CLI_TRANSFER_CIPHERS=%q names none of the benchmark's ciphers", only)
		}
	}

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
	var cipherNames, macs []string
	for _, c := range cliTransferCiphers {
		cipherNames = append(cipherNames, c.cipher)
		if c.mac != "" {
			macs = append(macs, c.mac)
		}
	}
	d := testpeer.StartSSHD(b, testpeer.SSHDOptions{
		HostKeys:       testpeer.HostKeys(b, testpeer.KeyEd25519),
		AuthorizedKeys: []*testpeer.Key{key},
		Config: []string{
			"AuthorizedKeysFile " + ak, // first value wins over the harness's
			"Ciphers " + strings.Join(cipherNames, ","),
			"MACs " + strings.Join(macs, ","),
			"LogLevel ERROR",
			"UseDNS no",
		},
	})
	front := startSSHDFront(b, d.ConfigPath)
	home := b.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	port := strconv.Itoa(front.port)
	// The clients connect to the front's port, served with sshd's host key.
	known := filepath.Join(home, "known_hosts")
	if err := os.WriteFile(known, []byte("[127.0.0.1]:"+port+" "+d.HostKeys[0].AuthorizedKey+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	common := []string{"-p", port, "-F", "none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + known,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-i", key.Path,
	}
	dest := acct.Name + "@127.0.0.1"
	type client struct {
		name, bin string
		args      func(cipher, mac string) []string
	}
	clients := []client{
		{"sshtap", bin, func(cipher, mac string) []string {
			a := append(slices.Clone(common), "-o", "Ciphers="+cipher)
			if mac != "" {
				a = append(a, "-o", "MACs="+mac)
			}
			return append(a, "--no-summary", "--only", "closed", dest)
		}},
		{"openssh", testpeer.Binary(b, "ssh"), func(cipher, mac string) []string {
			a := append(slices.Clone(common), "-c", cipher)
			if mac != "" {
				a = append(a, "-m", mac)
			}
			return append(a, "-o", "LogLevel=ERROR", "-o", "ControlMaster=no", "-o", "UpdateHostKeys=no", dest)
		}},
		{"xcrypto", xclient, func(cipher, mac string) []string {
			a := []string{"-p", port, "-i", key.Path, "-k", known, "-c", cipher}
			if mac != "" {
				a = append(a, "-m", mac)
			}
			return append(a, dest)
		}},
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })

	for r := range cliTransferRounds(b) {
		for _, ci := range ciphers {
			variant := ci.cipher
			if ci.mac != "" {
				variant += "+" + ci.mac
			}
			for _, dir := range []string{"download", "upload"} {
				for i := range clients {
					// Rotate which client goes first from round to round.
					c := clients[(i+r)%len(clients)]
					// Rounds after the first are named ...#01, #02 by
					// the testing package; benchcmp counts them as
					// samples.
					b.Run(c.name+"/"+variant+"-"+dir, func(b *testing.B) {
						var ru, srv usage
						b.SetBytes(n)
						for b.Loop() {
							ru.add(cliTransferOnce(b, c.bin, c.args(ci.cipher, ci.mac), env, dir, n, devNull))
							srv.add(front.served(b))
						}
						ru.report(b, n)
						if gib := float64(srv.ops) * float64(n) / (1 << 30); gib > 0 {
							b.ReportMetric(srv.cpu/gib, "srv-cpu-s/GiB")
						}
					})
				}
			}
		}
	}
}

// benchXClient builds internal/xclient.
func benchXClient(b *testing.B) string {
	bin := filepath.Join(filepath.Dir(benchBinary(b)), "xclient")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	out, err := exec.Command("go", "build", "-o", bin, "sshtap/internal/xclient").CombinedOutput()
	if err != nil {
		b.Fatalf("building xclient: %v\n%s", err, out)
	}
	return bin
}

// sshdFront accepts connections on 127.0.0.1 and serves each with its own
// "sshd -i" on the accepted socket, so that the server side of every
// connection is a process tree the benchmark can account for. sshd's
// monitor may end before the session process it forked (which then
// becomes an orphan), so sshd runs under a reaper (TestSSHDReaperProcess)
// that waits for every descendant: the reaper's rusage from wait4 covers
// them all, the remote command included.
type sshdFront struct {
	port  int
	usage chan *syscall.Rusage
}

// reaperEnv tells TestSSHDReaperProcess sshd's path and config file, one
// per line.
const reaperEnv = "SSHTAP_SSHD_REAPER"

func startSSHDFront(b *testing.B, conf string) *sshdFront {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	f := &sshdFront{port: ln.Addr().(*net.TCPAddr).Port, usage: make(chan *syscall.Rusage, 1)}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			file, err := nc.(*net.TCPConn).File()
			nc.Close()
			if err != nil {
				f.usage <- nil
				continue
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestSSHDReaperProcess$")
			cmd.Env = append(os.Environ(), reaperEnv+"="+testpeer.SSHDPath+"\n"+conf)
			cmd.ExtraFiles = []*os.File{file} // fd 3
			var ru *syscall.Rusage
			if cmd.Run(); cmd.ProcessState != nil {
				// The exit status is the client's business (a failed
				// transfer fails on the client side).
				ru, _ = cmd.ProcessState.SysUsage().(*syscall.Rusage)
			}
			file.Close()
			f.usage <- ru
		}
	})
	return f
}

// TestSSHDReaperProcess is BenchmarkCLITransfer's wrapper of "sshd -i"
// (see sshdFront); it skips unless started by it. It serves the socket on
// fd 3 with sshd, as a child subreaper (PR_SET_CHILD_SUBREAPER, Linux), and
// returns once every descendant was reaped.
func TestSSHDReaperProcess(t *testing.T) {
	spec := os.Getenv(reaperEnv)
	if spec == "" {
		t.Skip("the sshd -i wrapper of BenchmarkCLITransfer")
	}
	sshd, conf, _ := strings.Cut(spec, "\n")
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	sock := os.NewFile(3, "socket")
	cmd := exec.Command(sshd, "-i", "-f", conf)
	cmd.Stdin, cmd.Stdout = sock, sock
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	// Reap sshd and whatever it left behind, until no child is left.
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.ECHILD {
			return
		}
		if err != nil && err != syscall.EINTR {
			t.Fatalf("wait4: %v", err)
		}
	}
}

// served returns the resource usage of the sshd that served the last
// connection, once it ended.
func (f *sshdFront) served(b *testing.B) *syscall.Rusage {
	select {
	case ru := <-f.usage:
		if ru == nil {
			b.Fatal("the sshd -i of the transfer did not run")
		}
		return ru
	case <-time.After(time.Minute):
		b.Fatal("the sshd -i of the transfer did not end")
		return nil
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
