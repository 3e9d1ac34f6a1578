package sshtap

// Bulk-transfer and exec-latency benchmarks: the sshtap client, the
// x/crypto/ssh client and the OpenSSH client against one local sshd, side by
// side in one `go test -bench` run, plus sshtap client <-> sshtap server.
//
// Every transfer op moves transferBytes() bytes through one session:
//
//   - download: the remote command is "head -c N /dev/zero"; the client reads
//     its standard output and discards it (counting the bytes).
//   - upload: the remote command is "cat > /dev/null"; the client writes N
//     zero bytes from one reused 32 KiB buffer to its standard input, closes
//     it and waits for the exit status.
//
// N is 64 MiB by default and 1 GiB with SSHTAP_BENCH_GIB=1. MB/s counts N
// per op (b.SetBytes). The sshtap and x/crypto clients dial once per
// sub-benchmark (outside the timer) and run one session per op; the OpenSSH
// client is one `ssh` process per op, so its figures include process start,
// the handshake and authentication (~250 ms per op here, see
// BenchmarkExecLatency: a large part of a 64 MiB op, little of a 1 GiB one).
// Every op against sshd also pays sshd's per-session cost (the command runs
// through the user's shell; a ~40 ms stall before the session starts, as
// sshd turns on TCP_NODELAY late), so 64 MiB figures are below the data
// path's.
// allocs/MiB is runtime.MemStats.Mallocs over the timed ops divided by the
// MiB moved: the whole benchmark process (client transport, session copies),
// for the Go clients only (for openssh it would count os/exec, not ssh).
//
// internal/benchcmp/run.sh transfer runs them and prints ratio tables.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// transferBytes is N, the bytes moved per transfer op.
func transferBytes() int64 {
	if os.Getenv("SSHTAP_BENCH_GIB") == "1" {
		return 1 << 30
	}
	return 64 << 20
}

// countWriter discards what it is given and counts it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// writeZeros writes n zero bytes to w from buf.
func writeZeros(w io.Writer, buf []byte, n int64) error {
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		m, err := w.Write(chunk)
		n -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

// transferSession is what sshtap's and x/crypto's sessions have in common
// for a transfer.
type transferSession interface {
	Run(cmd string) error
	Start(cmd string) error
	Wait() error
	StdinPipe() (io.WriteCloser, error)
}

// transferOnce moves n bytes through s: "download" runs downCmd and counts
// its stdout (installed with setStdout); "upload" runs upCmd and writes n
// zero bytes to its stdin from buf.
func transferOnce(b *testing.B, s transferSession, setStdout func(io.Writer), dir, upCmd, downCmd string, n int64, buf []byte) {
	if dir == "download" {
		var w countWriter
		setStdout(&w)
		if err := s.Run(downCmd); err != nil {
			b.Fatal(err)
		}
		if w.n != n {
			b.Fatalf("read %d bytes, want %d", w.n, n)
		}
		return
	}
	in, err := s.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(upCmd); err != nil {
		b.Fatal(err)
	}
	if err := writeZeros(in, buf, n); err != nil {
		b.Fatal(err)
	}
	in.Close()
	if err := s.Wait(); err != nil {
		b.Fatal(err)
	}
}

// runTransferOps times b.N runs of op, each moving n bytes, and reports
// MB/s, allocs/op and allocs/MiB.
func runTransferOps(b *testing.B, n int64, op func()) {
	b.SetBytes(n)
	b.ReportAllocs()
	var m allocMeter
	m.start(b)
	for range b.N {
		op()
	}
	m.stop(b, n)
}

// allocMeter measures mallocs per MiB over the timed part of a benchmark.
type allocMeter struct{ before runtime.MemStats }

func (m *allocMeter) start(b *testing.B) {
	runtime.ReadMemStats(&m.before)
	b.ResetTimer()
}

func (m *allocMeter) stop(b *testing.B, n int64) {
	b.StopTimer()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	mib := float64(b.N) * float64(n) / (1 << 20)
	if !benchRaceEnabled() && mib > 0 {
		b.ReportMetric(float64(after.Mallocs-m.before.Mallocs)/mib, "allocs/MiB")
	}
}

// benchTransferSSHD starts the sshd of the transfer and latency benchmarks,
// or skips b.
func benchTransferSSHD(b *testing.B) *testpeer.SSHD {
	testpeer.Require(b, "sshd", "ssh")
	testpeer.RequireRoot(b)
	ciphers := make([]string, 0, len(benchThroughputCiphers))
	for _, c := range benchThroughputCiphers {
		ciphers = append(ciphers, c.cipher)
	}
	return testpeer.StartSSHD(b, testpeer.SSHDOptions{
		HostKeys: testpeer.HostKeys(b, testpeer.KeyEd25519),
		Config: []string{
			"Ciphers " + strings.Join(ciphers, ","),
			"LogLevel ERROR",
			"MaxStartups 100",
			"UseDNS no",
		},
	})
}

// sshtapBenchClientConfig is the sshtap client config for d with one cipher.
func sshtapBenchClientConfig(d *testpeer.SSHD, cipherName, mac string) *Config {
	tc := TransportConfig{Ciphers: []string{cipherName}}
	if mac != "" {
		tc.MACs = []string{mac}
	}
	return &Config{
		TransportConfig: tc,
		User:            d.User,
		Auth:            []AuthMethod{PublicKeys(d.ClientKey().Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	}
}

// xcryptoBenchClientConfig is the x/crypto/ssh client config for d.
func xcryptoBenchClientConfig(d *testpeer.SSHD, cipherName, mac string) *ssh.ClientConfig {
	c := ssh.Config{Ciphers: []string{cipherName}}
	if mac != "" {
		c.MACs = []string{mac}
	}
	return &ssh.ClientConfig{
		Config:          c,
		User:            d.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(d.ClientKey().Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         20 * time.Second,
	}
}

// opensshBench runs the OpenSSH client against d.
type opensshBench struct {
	bin  string
	args []string // up to and including USER@HOST
	env  []string
}

func newOpensshBench(b *testing.B, d *testpeer.SSHD, cipherName, mac string) *opensshBench {
	bin := testpeer.Binary(b, "ssh")
	args := []string{"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "UpdateHostKeys=no",
		"-o", "IdentitiesOnly=yes",
		"-o", "ControlMaster=no",
		"-o", "LogLevel=ERROR",
		"-i", d.ClientKey().Path,
	}
	if cipherName != "" {
		args = append(args, "-c", cipherName)
	}
	if mac != "" {
		args = append(args, "-m", mac)
	}
	args = append(args, "-p", strconv.Itoa(d.Port), d.User+"@127.0.0.1")
	home := b.TempDir()
	return &opensshBench{bin: bin, args: args, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}}
}

func (o *opensshBench) command(remote string) *exec.Cmd {
	cmd := exec.Command(o.bin, append(append([]string(nil), o.args...), remote)...)
	cmd.Env = o.env
	return cmd
}

const benchUploadCmd = "cat > /dev/null"

func benchDownloadCmd(n int64) string { return fmt.Sprintf("head -c %d /dev/zero", n) }

// BenchmarkTransfer: upload and download of N bytes (see the top of this
// file) through one session, per cipher, by the sshtap, x/crypto/ssh and
// OpenSSH clients against the same local sshd.
func BenchmarkTransfer(b *testing.B) {
	d := benchTransferSSHD(b)
	n := transferBytes()
	buf := make([]byte, benchChunk)
	for _, dir := range []string{"upload", "download"} {
		b.Run(dir, func(b *testing.B) {
			b.Run("sshtap", func(b *testing.B) {
				for _, c := range benchThroughputCiphers {
					b.Run(throughputName(c.cipher, c.mac), func(b *testing.B) {
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						conn, err := Dial(ctx, "tcp", d.Addr, sshtapBenchClientConfig(d, c.cipher, c.mac))
						cancel()
						if err != nil {
							b.Fatal(err)
						}
						defer conn.Close()
						runTransferOps(b, n, func() {
							s, err := conn.NewSession(context.Background())
							if err != nil {
								b.Fatal(err)
							}
							defer s.Close()
							transferOnce(b, s, func(w io.Writer) { s.Stdout = w }, dir, benchUploadCmd, benchDownloadCmd(n), n, buf)
						})
					})
				}
			})
			b.Run("xcrypto", func(b *testing.B) {
				for _, c := range benchThroughputCiphers {
					b.Run(throughputName(c.cipher, c.mac), func(b *testing.B) {
						client, err := ssh.Dial("tcp", d.Addr, xcryptoBenchClientConfig(d, c.cipher, c.mac))
						if err != nil {
							b.Fatal(err)
						}
						defer client.Close()
						runTransferOps(b, n, func() {
							s, err := client.NewSession()
							if err != nil {
								b.Fatal(err)
							}
							defer s.Close()
							transferOnce(b, s, func(w io.Writer) { s.Stdout = w }, dir, benchUploadCmd, benchDownloadCmd(n), n, buf)
						})
					})
				}
			})
			b.Run("openssh", func(b *testing.B) {
				for _, c := range benchThroughputCiphers {
					b.Run(throughputName(c.cipher, c.mac), func(b *testing.B) {
						o := newOpensshBench(b, d, c.cipher, c.mac)
						op := func() {
							var stderr strings.Builder
							if dir == "download" {
								var w countWriter
								cmd := o.command(benchDownloadCmd(n))
								cmd.Stdout, cmd.Stderr = &w, &stderr
								if err := cmd.Run(); err != nil {
									b.Fatalf("ssh: %v: %s", err, stderr.String())
								}
								if w.n != n {
									b.Fatalf("read %d bytes, want %d", w.n, n)
								}
								return
							}
							cmd := o.command(benchUploadCmd)
							cmd.Stderr = &stderr
							in, err := cmd.StdinPipe()
							if err != nil {
								b.Fatal(err)
							}
							if err := cmd.Start(); err != nil {
								b.Fatal(err)
							}
							werr := writeZeros(in, buf, n)
							in.Close()
							if err := errors.Join(werr, cmd.Wait()); err != nil {
								b.Fatalf("ssh: %v: %s", err, stderr.String())
							}
						}
						b.SetBytes(n)
						b.ReportAllocs()
						b.ResetTimer()
						for range b.N {
							op()
						}
					})
				}
			})
		})
	}
}

// benchSshtapServer is an sshtap server on a loopback TCP port serving
// "upload" (discard stdin), "download N" (write N zero bytes) and "true".
type benchSshtapServer struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startBenchSshtapServer(b *testing.B, cipherName, mac string) *benchSshtapServer {
	testKeys(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	tc := TransportConfig{Ciphers: []string{cipherName}}
	if mac != "" {
		tc.MACs = []string{mac}
	}
	buf := make([]byte, benchChunk)
	scfg := &ServerConfig{
		TransportConfig: tc,
		HostKeys:        []ssh.Signer{testEd25519},
		PublicKeyCallback: func(ConnMetadata, ssh.PublicKey) (*Permissions, error) {
			return nil, nil
		},
		SessionHandler: func(s *ServerSession) {
			cmd := s.Command()
			switch {
			case cmd == "upload":
				io.Copy(io.Discard, s)
			case strings.HasPrefix(cmd, "download "):
				n, _ := strconv.ParseInt(strings.TrimPrefix(cmd, "download "), 10, 64)
				writeZeros(s, buf[:len(buf):len(buf)], n)
			}
		},
	}
	srv := &benchSshtapServer{addr: ln.Addr().String(), ln: ln}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			srv.wg.Add(1)
			go func() {
				defer srv.wg.Done()
				c := ServerConn(nc, scfg)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := c.Handshake(ctx)
				cancel()
				if err == nil {
					c.Wait()
				}
				c.Close()
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		srv.wg.Wait()
	})
	return srv
}

// sshtapPairClientConfig is the sshtap client config for a benchSshtapServer.
func sshtapPairClientConfig(cipherName, mac string) *Config {
	tc := TransportConfig{Ciphers: []string{cipherName}}
	if mac != "" {
		tc.MACs = []string{mac}
	}
	return &Config{
		TransportConfig: tc,
		User:            "bench",
		Auth:            []AuthMethod{PublicKeys(testEd25519)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	}
}

// BenchmarkTransferSshtapPair: BenchmarkTransfer's upload and download with
// the sshtap client and an in-process sshtap server over loopback TCP (the
// server's session handler discards stdin or writes N zero bytes). allocs/MiB
// counts both ends, as they share the process.
func BenchmarkTransferSshtapPair(b *testing.B) {
	n := transferBytes()
	buf := make([]byte, benchChunk)
	for _, dir := range []string{"upload", "download"} {
		b.Run(dir, func(b *testing.B) {
			for _, c := range benchThroughputCiphers {
				b.Run(throughputName(c.cipher, c.mac), func(b *testing.B) {
					srv := startBenchSshtapServer(b, c.cipher, c.mac)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					conn, err := Dial(ctx, "tcp", srv.addr, sshtapPairClientConfig(c.cipher, c.mac))
					cancel()
					if err != nil {
						b.Fatal(err)
					}
					defer conn.Close()
					runTransferOps(b, n, func() {
						s, err := conn.NewSession(context.Background())
						if err != nil {
							b.Fatal(err)
						}
						defer s.Close()
						transferOnce(b, s, func(w io.Writer) { s.Stdout = w }, dir, "upload", "download "+strconv.FormatInt(n, 10), n, buf)
					})
				})
			}
		})
	}
}

// BenchmarkExecLatency: one op is dial + key exchange + public key
// authentication + a session running "true" + close, with
// chacha20-poly1305@openssh.com and every implementation's default kex and
// host key algorithms.
//
//   - sshtap, xcrypto, openssh: against the local sshd. sshd forks and
//     re-executes itself per connection and runs the command through the
//     shell; its per-command stall of ~40 ms (it turns on TCP_NODELAY late)
//     is in all three and dominates them. openssh includes process start.
//   - sshtap-pair: the sshtap client against an in-process sshtap server over
//     loopback TCP (the handler returns at once: exit status 0).
func BenchmarkExecLatency(b *testing.B) {
	run := func(b *testing.B, op func() error) {
		b.ReportAllocs()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
	sshtapOp := func(addr string, cfg *Config) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := Dial(ctx, "tcp", addr, cfg)
			if err != nil {
				return err
			}
			defer conn.Close()
			s, err := conn.NewSession(ctx)
			if err != nil {
				return err
			}
			return s.Run("true")
		}
	}
	b.Run("sshtap", func(b *testing.B) {
		d := benchTransferSSHD(b)
		run(b, sshtapOp(d.Addr, sshtapBenchClientConfig(d, benchCipher, "")))
	})
	b.Run("xcrypto", func(b *testing.B) {
		d := benchTransferSSHD(b)
		cfg := xcryptoBenchClientConfig(d, benchCipher, "")
		run(b, func() error {
			client, err := ssh.Dial("tcp", d.Addr, cfg)
			if err != nil {
				return err
			}
			defer client.Close()
			s, err := client.NewSession()
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Run("true")
		})
	})
	b.Run("openssh", func(b *testing.B) {
		d := benchTransferSSHD(b)
		o := newOpensshBench(b, d, benchCipher, "")
		run(b, func() error {
			cmd := o.command("true")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("ssh: %v: %s", err, out)
			}
			return nil
		})
	})
	b.Run("sshtap-pair", func(b *testing.B) {
		srv := startBenchSshtapServer(b, benchCipher, "")
		run(b, sshtapOp(srv.addr, sshtapPairClientConfig(benchCipher, "")))
	})
}
