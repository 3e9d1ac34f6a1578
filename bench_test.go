package sshtap

// Benchmarks of the whole transport, side by side with golang.org/x/crypto/ssh
// (and OpenSSH where a real sshd is available) in one run, so that ratios are
// read off the same noisy machine at the same time. x/crypto/ssh is only the
// comparison: sshtap never goes through its transport.
//
// internal/benchcmp/run.sh runs these (and the cipher package's) with
// -count 3 and prints sshtap/x-crypto ratio tables.

import (
	"context"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
	"sshtap/kex"
)

// benchKexAlgos are the key exchange methods both sshtap and x/crypto/ssh
// implement on both sides.
var benchKexAlgos = []string{
	"mlkem768x25519-sha256",
	"curve25519-sha256",
	"ecdh-sha2-nistp256",
	"ecdh-sha2-nistp384",
	"ecdh-sha2-nistp521",
	"diffie-hellman-group14-sha256",
	"diffie-hellman-group16-sha512",
	"diffie-hellman-group-exchange-sha256",
}

const benchCipher = "chacha20-poly1305@openssh.com"

// benchGexGroups makes the sshtap server offer only the RFC 3526 2048-bit
// group for group exchange. The sshtap client asks for n=3072 (and would get
// group 15 from the built-in list) while the x/crypto client asks for 2048 and
// its server answers with group 14; with this list both benchmarks run the
// exchange over the same 2048-bit group.
var benchGexGroups = func() []kex.GexGroup {
	p, ok := new(big.Int).SetString(""+
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"+
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"+
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"+
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"+
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"+
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"+
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"+
		"3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
	if !ok {
		panic("bad group 14 prime")
	}
	return []kex.GexGroup{{P: p, G: big.NewInt(2)}}
}()

// benchSocketPair returns the two ends of a connected AF_UNIX stream socket
// pair.
//
// The in-process benchmarks run both implementations over it rather than
// net.Pipe: x/crypto/ssh deadlocks on net.Pipe (both sides write their
// version line before reading, and net.Pipe has no buffer), and a kernel
// socket makes the read and write syscalls per packet count, as they do on
// a real connection. sshtap over net.Pipe is measured too (sshtap-netpipe).
func benchSocketPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("socketpair: %v", err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f) // dups fd
		f.Close()
		if err != nil {
			tb.Fatalf("socketpair: %v", err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// benchRaceEnabled reports whether the test binary was built with -race,
// where allocation counts mean nothing.
func benchRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// sshtapBenchConfigs returns client and server configs for one kex method,
// cipher and MAC ("" for AEAD ciphers), with the ed25519 host key.
func sshtapBenchConfigs(kexAlgo, cipherName, mac string) (*Config, *ServerConfig) {
	testKeys(nil)
	tc := TransportConfig{
		KexAlgorithms:     []string{kexAlgo},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Ciphers:           []string{cipherName},
	}
	if mac != "" {
		tc.MACs = []string{mac}
	}
	// tryHandshake runs the whole handshake: user authentication with
	// "none", which the server accepts (NoClientAuth), as x/crypto's does.
	ccfg := &Config{TransportConfig: tc, HostKeyCallback: insecure}
	scfg := &ServerConfig{TransportConfig: tc, HostKeys: []ssh.Signer{testEd25519}, GexGroups: benchGexGroups}
	return ccfg, scfg
}

// xcryptoBenchConfigs is sshtapBenchConfigs for x/crypto/ssh. The server
// accepts the "none" user authentication (NoClientAuth).
func xcryptoBenchConfigs(kexAlgo, cipherName, mac string) (*ssh.ClientConfig, *ssh.ServerConfig) {
	testKeys(nil)
	c := ssh.Config{KeyExchanges: []string{kexAlgo}, Ciphers: []string{cipherName}}
	if mac != "" {
		c.MACs = []string{mac}
	}
	ccfg := &ssh.ClientConfig{
		Config:            c,
		User:              "bench",
		HostKeyCallback:   insecure,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
	}
	scfg := &ssh.ServerConfig{Config: c, NoClientAuth: true}
	scfg.AddHostKey(testEd25519)
	return ccfg, scfg
}

// xcryptoPair is a connected x/crypto/ssh client and server.
type xcryptoPair struct {
	client *ssh.Client
	server *ssh.ServerConn
	srvNew <-chan ssh.NewChannel // the server's incoming channels
	wg     sync.WaitGroup        // the server's request drainer
}

// xcryptoHandshake runs both x/crypto/ssh handshakes over a socket pair: key
// exchange, ssh-userauth service request and "none" authentication. With
// serveChannels false the server rejects every channel.
func xcryptoHandshake(tb testing.TB, ccfg *ssh.ClientConfig, scfg *ssh.ServerConfig, serveChannels bool) (*xcryptoPair, error) {
	a, b := benchSocketPair(tb)
	type res struct {
		sc    *ssh.ServerConn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	sres := make(chan res, 1)
	go func() {
		sc, chans, reqs, err := ssh.NewServerConn(b, scfg)
		sres <- res{sc, chans, reqs, err}
	}()
	cc, cchans, creqs, cerr := ssh.NewClientConn(a, "pipe", ccfg)
	if cerr != nil {
		a.Close()
	}
	s := <-sres
	if s.err != nil || cerr != nil {
		b.Close()
		a.Close()
		return nil, errors.Join(cerr, s.err)
	}
	p := &xcryptoPair{client: ssh.NewClient(cc, cchans, creqs), server: s.sc}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ssh.DiscardRequests(s.reqs)
	}()
	if serveChannels {
		p.srvNew = s.chans
	} else {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for nc := range s.chans {
				nc.Reject(ssh.Prohibited, "no channels")
			}
		}()
	}
	return p, nil
}

// close closes both ends and waits for every goroutine of the pair.
func (p *xcryptoPair) close() {
	p.client.Close()
	p.server.Close()
	p.client.Wait()
	p.server.Wait()
	if p.srvNew != nil {
		for nc := range p.srvNew {
			nc.Reject(ssh.Prohibited, "closing")
		}
	}
	p.wg.Wait()
}

// BenchmarkHandshake: one complete in-process handshake per op, client and
// server over a socket pair (see benchSocketPair), ed25519 host key,
// chacha20-poly1305@openssh.com.
//
//   - sshtap: Client + Server + Handshake, user authentication with "none"
//     (accepted by NoClientAuth) included, then Close of both (DISCONNECT,
//     wait for the goroutines).
//   - xcrypto: ssh.NewServerConn + ssh.NewClientConn, the same steps.
//     Then Close and Wait of both.
//
// diffie-hellman-group-exchange-sha256 uses a 2048-bit group on both sides
// (see benchGexGroups). group16-sha512 is 4096-bit DH and much slower.
func BenchmarkHandshake(b *testing.B) {
	testKeys(b)
	b.Run("sshtap", func(b *testing.B) {
		for _, k := range benchKexAlgos {
			b.Run(k, func(b *testing.B) {
				ccfg, scfg := sshtapBenchConfigs(k, benchCipher, "")
				b.ReportAllocs()
				for b.Loop() {
					a, c := benchSocketPair(b)
					p, cerr, serr := tryHandshake(a, c, ccfg, scfg, 20*time.Second)
					p.client.Close()
					p.server.Close()
					if cerr != nil || serr != nil {
						b.Fatalf("handshake: client: %v; server: %v", cerr, serr)
					}
				}
			})
		}
	})
	b.Run("xcrypto", func(b *testing.B) {
		for _, k := range benchKexAlgos {
			b.Run(k, func(b *testing.B) {
				ccfg, scfg := xcryptoBenchConfigs(k, benchCipher, "")
				b.ReportAllocs()
				for b.Loop() {
					p, err := xcryptoHandshake(b, ccfg, scfg, false)
					if err != nil {
						b.Fatal(err)
					}
					p.close()
				}
			})
		}
	})
}

// benchThroughputCiphers are the cipher (and MAC) combinations of
// BenchmarkTransportThroughput.
var benchThroughputCiphers = []struct{ cipher, mac string }{
	{"chacha20-poly1305@openssh.com", ""},
	{"aes128-gcm@openssh.com", ""},
	{"aes256-gcm@openssh.com", ""},
	{"aes128-ctr", "hmac-sha2-256-etm@openssh.com"},
}

func throughputName(cipherName, mac string) string {
	if mac == "" {
		return cipherName
	}
	return cipherName + "+" + mac
}

const benchChunk = 32 << 10

// benchNoRekey is the rekey byte limit of the throughput benchmarks: a run
// can move more than the default 1 GiB; both implementations are configured
// not to rekey during a run, so the figures are the data path alone.
const benchNoRekey = 1 << 40

// sshtapFlush returns once the client has read everything the server queued
// before the call: the client's PING is answered by a PONG that the server's
// transport queues behind the data already queued.
func sshtapFlush(tb testing.TB, p pair) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.client.Ping(ctx); err != nil {
		tb.Fatalf("ping: %v", err)
	}
}

// BenchmarkTransportThroughput moves 32 KiB payloads from server to client
// over a socket pair (see benchSocketPair); MB/s counts the 32 KiB of data
// per op. sshtap-netpipe is sshtap over net.Pipe (no syscalls; x/crypto/ssh
// cannot run over net.Pipe).
//
//   - sshtap: the server sends SSH_MSG_IGNORE packets carrying 32 KiB
//     (SendIgnore); the client has no subscriber for IGNORE and drops them
//     undecoded, so this is frame+seal, the write, the read and open of each
//     packet, without a channel layer (sshtap's is not in place yet).
//   - xcrypto: x/crypto/ssh has no raw transport API, so the comparable path
//     is a session channel: the server writes 32 KiB per Write (one
//     CHANNEL_DATA packet, its maximum packet size) and the client reads and
//     discards them, with window adjustments flowing back.
//
// This compares sshtap's transport against x/crypto's transport plus its
// channel layer (window accounting, the extra copy into and out of the
// channel buffer, WINDOW_ADJUST packets), so the ratio is indicative of
// transport efficiency, not a like-for-like channel comparison.
//
// Both sides end each run with a barrier (sshtap: a client PING answered
// behind the data; x/crypto: EOF after the last byte), so every byte counted
// has been opened by the client.
func BenchmarkTransportThroughput(b *testing.B) {
	testKeys(b)
	data := make([]byte, benchChunk)
	for i := range data {
		data[i] = byte(i)
	}
	sshtap := func(pipe func(testing.TB) (net.Conn, net.Conn)) func(b *testing.B) {
		return func(b *testing.B) {
			for _, c := range benchThroughputCiphers {
				b.Run(throughputName(c.cipher, c.mac), func(b *testing.B) {
					ccfg, scfg := sshtapBenchConfigs("curve25519-sha256", c.cipher, c.mac)
					ccfg.RekeyBytes, scfg.RekeyBytes = benchNoRekey, benchNoRekey
					a, s := pipe(b)
					p, cerr, serr := tryHandshake(a, s, ccfg, scfg, 20*time.Second)
					defer func() {
						p.client.Close()
						p.server.Close()
					}()
					if cerr != nil || serr != nil {
						b.Fatalf("handshake: client: %v; server: %v", cerr, serr)
					}
					ctx := context.Background()
					// Warm up: grow the read buffer and both output buffers.
					for range 64 {
						if err := p.server.SendIgnore(ctx, data); err != nil {
							b.Fatal(err)
						}
					}
					sshtapFlush(b, p)
					b.SetBytes(benchChunk)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						if err := p.server.SendIgnore(ctx, data); err != nil {
							b.Fatal(err)
						}
					}
					sshtapFlush(b, p)
					b.StopTimer()
				})
			}
		}
	}
	b.Run("sshtap", sshtap(benchSocketPair))
	b.Run("sshtap-netpipe", sshtap(func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }))
	b.Run("xcrypto", func(b *testing.B) {
		for _, c := range benchThroughputCiphers {
			b.Run(throughputName(c.cipher, c.mac), func(b *testing.B) {
				ccfg, scfg := xcryptoBenchConfigs("curve25519-sha256", c.cipher, c.mac)
				ccfg.RekeyThreshold, scfg.RekeyThreshold = benchNoRekey, benchNoRekey
				p, err := xcryptoHandshake(b, ccfg, scfg, true)
				if err != nil {
					b.Fatal(err)
				}
				defer p.close()
				// The client opens a session channel; the server writes.
				type accepted struct {
					ch  ssh.Channel
					err error
				}
				acc := make(chan accepted, 1)
				go func() {
					nc, ok := <-p.srvNew
					if !ok {
						acc <- accepted{err: errors.New("server: no channel")}
						return
					}
					ch, reqs, err := nc.Accept()
					if err == nil {
						go ssh.DiscardRequests(reqs)
					}
					acc <- accepted{ch, err}
				}()
				cch, creqs, err := p.client.OpenChannel("session", nil)
				if err != nil {
					b.Fatal(err)
				}
				go ssh.DiscardRequests(creqs)
				a := <-acc
				if a.err != nil {
					b.Fatal(a.err)
				}
				sch := a.ch
				read := make(chan int64, 1)
				go func() {
					n, _ := io.Copy(io.Discard, cch)
					read <- n
				}()
				// Warm up as for sshtap.
				for range 64 {
					if _, err := sch.Write(data); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(benchChunk)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := sch.Write(data); err != nil {
						b.Fatal(err)
					}
				}
				sch.CloseWrite()
				n := <-read
				b.StopTimer()
				if want := int64(b.N+64) * benchChunk; n != want {
					b.Fatalf("client read %d bytes, want %d", n, want)
				}
				sch.Close()
				cch.Close()
			})
		}
	})
}

// TestTransportZeroAllocs: in steady state, sending a 32 KiB SSH_MSG_IGNORE
// (frame, seal, write) and receiving it (read, open, drop) allocates nothing.
// testing.AllocsPerRun counts the mallocs of every goroutine, so the client's
// transport goroutine and both writer goroutines are included.
func TestTransportZeroAllocs(t *testing.T) {
	if benchRaceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	testKeys(t)
	for _, c := range benchThroughputCiphers {
		t.Run(throughputName(c.cipher, c.mac), func(t *testing.T) {
			ccfg, scfg := sshtapBenchConfigs("curve25519-sha256", c.cipher, c.mac)
			p := handshakePair(t, ccfg, scfg)
			ctx := context.Background()
			data := make([]byte, benchChunk)
			send := func() {
				if err := p.server.SendIgnore(ctx, data); err != nil {
					t.Fatal(err)
				}
			}
			for range 64 {
				send()
			}
			sshtapFlush(t, p)
			var before, after runtime.MemStats
			const runs = 256
			runtime.ReadMemStats(&before)
			allocs := testing.AllocsPerRun(runs, send)
			runtime.ReadMemStats(&after)
			sshtapFlush(t, p)
			// AllocsPerRun truncates the average; log the exact figure too.
			t.Logf("%d mallocs, %d bytes over %d packets (+1 warm-up run)",
				after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc, runs)
			if allocs != 0 {
				t.Errorf("SendIgnore path: %v allocations per 32 KiB packet, want 0", allocs)
			}
		})
	}
}

// BenchmarkHandshakeOpenSSH: handshakes against a real local sshd (OpenSSH,
// run by internal/testpeer), curve25519-sha256, chacha20-poly1305@openssh.com
// and the ed25519 host key for every client, one TCP connection per op.
//
//   - sshtap: Dial until SERVICE_ACCEPT, then Close.
//   - xcrypto: ssh.Dial with a key that is not authorized, timed until it
//     fails with "unable to authenticate": kex, the service request, and
//     user authentication ("none", then the public key query, both refused).
//   - openssh: "ssh -o BatchMode=yes ... true" with the same unauthorized
//     key, timed until the process exits with "Permission denied": the same
//     protocol steps as xcrypto plus process spawn and ssh's startup
//     (reading the key file, etc.).
//
// The *-none variants offer no key at all: only the "none" method, one auth
// round trip. sshd pads every failed authentication attempt to a minimum,
// per-user time (auth2.c ensure_minimum_time_since(user_specific_delay),
// 5 ms and more); OpenSSH 9.2 (Debian 12) pads "none" too (later releases
// exempt it), so xcrypto-none and openssh-none include one such delay and the
// wrong-key variants two, while sshtap, which stops at SERVICE_ACCEPT,
// includes none. sshd forks and re-executes itself for every connection,
// which is part of every figure here. allocs/op of openssh are those of the
// benchmark process spawning ssh, not of ssh.
func BenchmarkHandshakeOpenSSH(b *testing.B) {
	testpeer.Require(b, "sshd", "ssh")
	testpeer.RequireRoot(b)
	const kexAlgo, hostKeyAlgo = "curve25519-sha256", ssh.KeyAlgoED25519
	d := testpeer.StartSSHD(b, testpeer.SSHDOptions{
		HostKeys: testpeer.HostKeys(b, testpeer.KeyEd25519),
		Config: []string{
			"KexAlgorithms " + kexAlgo,
			"Ciphers " + benchCipher,
			"HostKeyAlgorithms " + hostKeyAlgo,
			"LogLevel ERROR",
			"MaxStartups 1000",
			"UseDNS no",
		},
	})
	wrong := testpeer.NewKey(b, testpeer.KeyEd25519) // never authorized

	b.Run("sshtap", func(b *testing.B) {
		cfg := &Config{
			TransportConfig: TransportConfig{
				KexAlgorithms:     []string{kexAlgo},
				HostKeyAlgorithms: []string{hostKeyAlgo},
				Ciphers:           []string{benchCipher},
			},
			HostKeyCallback: insecure,
			NoAuth:          true,
		}
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			c, err := Dial(ctx, "tcp", d.Addr, cfg)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})

	xcrypto := func(auth []ssh.AuthMethod) func(b *testing.B) {
		return func(b *testing.B) {
			cfg := &ssh.ClientConfig{
				Config:            ssh.Config{KeyExchanges: []string{kexAlgo}, Ciphers: []string{benchCipher}},
				User:              d.User,
				Auth:              auth,
				HostKeyCallback:   insecure,
				HostKeyAlgorithms: []string{hostKeyAlgo},
				Timeout:           20 * time.Second,
			}
			b.ReportAllocs()
			for b.Loop() {
				c, err := ssh.Dial("tcp", d.Addr, cfg)
				if err == nil {
					c.Close()
					b.Fatal("x/crypto/ssh authenticated with a key sshd does not know")
				}
				if !strings.Contains(err.Error(), "unable to authenticate") {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("xcrypto", xcrypto([]ssh.AuthMethod{ssh.PublicKeys(wrong.Signer)}))
	b.Run("xcrypto-none", xcrypto(nil))

	sshBin := testpeer.Binary(b, "ssh")
	_, port, err := net.SplitHostPort(d.Addr)
	if err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")} // no SSH_AUTH_SOCK
	openssh := func(identity []string) func(b *testing.B) {
		return func(b *testing.B) {
			args := []string{"-F", "/dev/null",
				"-o", "BatchMode=yes",
				"-o", "StrictHostKeyChecking=no",
				"-o", "UserKnownHostsFile=/dev/null",
				"-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "UpdateHostKeys=no",
				"-o", "IdentitiesOnly=yes",
				"-o", "ControlMaster=no",
				"-o", "LogLevel=ERROR",
				"-o", "KexAlgorithms=" + kexAlgo,
				"-o", "Ciphers=" + benchCipher,
				"-o", "HostKeyAlgorithms=" + hostKeyAlgo,
			}
			args = append(args, identity...)
			args = append(args, "-p", port, d.User+"@127.0.0.1", "true")
			for b.Loop() {
				cmd := exec.Command(sshBin, args...)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 255 || !strings.Contains(string(out), "Permission denied") {
					b.Fatalf("ssh: %v (want exit 255, Permission denied): %s", err, out)
				}
			}
		}
	}
	b.Run("openssh", openssh([]string{"-o", "PubkeyAuthentication=yes", "-i", wrong.Path}))
	b.Run("openssh-none", openssh([]string{"-o", "PubkeyAuthentication=no"}))
}
