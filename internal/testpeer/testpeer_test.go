package testpeer

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRequireSkipsMissingBinary(t *testing.T) {
	t.Setenv(InteropEnv, "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Require(t, "sshtap-no-such-binary")
	})
	if !skipped {
		t.Fatal("Require did not skip for a missing binary")
	}
	if _, err := lookBinary("sshd"); err == nil {
		t.Run("present", func(t *testing.T) { Require(t, "sshd") })
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	Require(t, "ssh-keygen")
	a, b := NewKey(t, KeyEd25519), NewKey(t, KeyEd25519)
	if a.Is(b.PublicKey) {
		t.Fatal("NewKey returned the same key twice")
	}
	h1, h2 := HostKeys(t, KeyECDSA256), HostKeys(t, KeyECDSA256)
	if !h1[0].Is(h2[0].PublicKey) || h1[0].Path == h2[0].Path {
		t.Fatal("HostKeys should share key material but not files")
	}
	wantType := map[KeyType]string{
		KeyEd25519: "ssh-ed25519", KeyECDSA256: "ecdsa-sha2-nistp256", KeyECDSA384: "ecdsa-sha2-nistp384",
		KeyECDSA521: "ecdsa-sha2-nistp521", KeyRSA3072: "ssh-rsa",
	}
	for _, k := range HostKeys(t) {
		if got := k.PublicKey.Type(); got != wantType[k.Type] {
			t.Errorf("%s: public key type %s, want %s", k.Type, got, wantType[k.Type])
		}
		pub, err := os.ReadFile(k.PublicPath)
		if err != nil {
			t.Fatal(err)
		}
		parsed, _, _, _, err := ssh.ParseAuthorizedKey(pub)
		if err != nil || !k.Is(parsed) {
			t.Errorf("%s: .pub does not match (%v)", k.Type, err)
		}
		if fi, err := os.Stat(k.Path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: private key mode: %v %v", k.Type, fi.Mode(), err)
		}
		if !strings.HasPrefix(k.KnownHostsLine("127.0.0.1:2222"), "[127.0.0.1]:2222 "+wantType[k.Type]+" ") {
			t.Errorf("%s: known_hosts line %q", k.Type, k.KnownHostsLine("127.0.0.1:2222"))
		}
	}
}

// TestSSHDOpenSSHClient logs in to our sshd with the real ssh client and
// checks what the -vvv log parser extracts from a real log.
func TestSSHDOpenSSHClient(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	res := RunSSH(t, s.Addr, s.ClientKey(), "true")
	if res.ExitCode != 0 {
		t.Fatalf("ssh failed:\n%s", res)
	}
	l := res.SSHLog()
	if !strings.HasPrefix(l.RemoteVersion, "OpenSSH_") {
		t.Errorf("RemoteVersion %q", l.RemoteVersion)
	}
	k := l.FirstKex()
	if len(l.Kex) != 1 || k.Kex == "" || k.HostKey == "" || k.CipherCtoS == "" || k.CipherStoC == "" ||
		k.MACCtoS == "" || k.CompressionStoC != "none" {
		t.Errorf("negotiation %+v (%d kex)", k, len(l.Kex))
	}
	if l.LocalProposal == nil || l.PeerProposal == nil ||
		!slices.Contains(l.PeerProposal.Kex, k.Kex) || !slices.Contains(l.LocalProposal.CiphersCtoS, k.CipherCtoS) {
		t.Errorf("proposals %+v %+v", l.LocalProposal, l.PeerProposal)
	}
	if !l.ServiceAccepted || !l.ReachedUserAuth() || !slices.Contains(l.AuthMethods, "publickey") {
		t.Errorf("user auth not seen: accepted=%v methods=%v", l.ServiceAccepted, l.AuthMethods)
	}
	if !l.Authenticated || l.AuthMethod != "publickey" || l.ExitStatus != 0 {
		t.Errorf("authenticated=%v method=%q exit=%d", l.Authenticated, l.AuthMethod, l.ExitStatus)
	}
	// sshd sends one DEBUG message per authorized_keys check (query + sign).
	if len(l.RemoteDebug) != 2 || !strings.Contains(l.RemoteDebug[0], "key options:") {
		t.Errorf("RemoteDebug %q", l.RemoteDebug)
	}
	if !slices.Contains(l.Received, 52) || !slices.Contains(l.Sent, 50) {
		t.Errorf("sent %v received %v", l.Sent, l.Received)
	}
	if strings.Contains(res.Stderr, "permanently_set_uid") {
		t.Error("sshd's session debug log leaked into the channel's stderr")
	}
	sl := ParseSSHLog(s.WaitLog(t, "Accepted publickey for root"))
	if sl.PeerProposal == nil || !slices.Equal(sl.PeerProposal.Kex, l.LocalProposal.Kex) {
		t.Errorf("sshd log: peer proposal %+v, client sent %+v", sl.PeerProposal, l.LocalProposal)
	}
	if len(sl.Kex) != 1 || sl.Kex[0] != k {
		t.Errorf("sshd log negotiation %+v, client %+v", sl.Kex, k)
	}
}

// TestSSHDAlgorithms checks configured algorithms and every host key type.
func TestSSHDAlgorithms(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{Config: []string{
		"KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha256",
		"Ciphers aes128-ctr,aes256-gcm@openssh.com",
		"MACs hmac-sha2-256",
		"Compression no",
	}})
	res := RunSSH(t, s.Addr, s.ClientKey(), "true")
	if res.ExitCode != 0 {
		t.Fatalf("ssh failed:\n%s", res)
	}
	want := Negotiation{Kex: "curve25519-sha256", HostKey: "ssh-ed25519",
		CipherCtoS: "aes128-ctr", MACCtoS: "hmac-sha2-256", CompressionCtoS: "none",
		CipherStoC: "aes128-ctr", MACStoC: "hmac-sha2-256", CompressionStoC: "none"}
	if got := res.SSHLog().FirstKex(); got != want {
		t.Errorf("negotiated %+v, want %+v", got, want)
	}

	res = SSHClient{Addr: s.Addr, Keys: s.ClientKeys, Command: []string{"true"},
		Options: []string{"Ciphers=aes256-gcm@openssh.com", "KexAlgorithms=diffie-hellman-group14-sha256"}}.Run(t)
	got := res.SSHLog().FirstKex()
	if res.ExitCode != 0 || got.CipherStoC != "aes256-gcm@openssh.com" || got.MACStoC != "<implicit>" ||
		got.Kex != "diffie-hellman-group14-sha256" {
		t.Errorf("AEAD negotiation %+v:\n%s", got, res)
	}

	algs := map[string]KeyType{
		"ssh-ed25519": KeyEd25519, "ecdsa-sha2-nistp256": KeyECDSA256, "ecdsa-sha2-nistp384": KeyECDSA384,
		"ecdsa-sha2-nistp521": KeyECDSA521, "rsa-sha2-256": KeyRSA3072, "rsa-sha2-512": KeyRSA3072,
	}
	for alg, typ := range algs {
		res := SSHClient{Addr: s.Addr, Keys: s.ClientKeys, Command: []string{"true"},
			KnownHosts: s.KnownHostsFile(t),
			Options:    []string{"HostKeyAlgorithms=" + alg, "StrictHostKeyChecking=yes"}}.Run(t)
		l := res.SSHLog()
		if res.ExitCode != 0 || l.FirstKex().HostKey != alg {
			t.Errorf("%s: negotiated %q:\n%s", alg, l.FirstKex().HostKey, res)
			continue
		}
		i := slices.IndexFunc(s.HostKeys, func(k *Key) bool { return k.Type == typ })
		wantFP := ssh.FingerprintSHA256(s.HostKeys[i].PublicKey)
		if !strings.HasSuffix(l.ServerHostKey, " "+wantFP) {
			t.Errorf("%s: server host key %q, want fingerprint %s", alg, l.ServerHostKey, wantFP)
		}
	}
}

func TestSSHDMaxAuthTries(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{Config: []string{"MaxAuthTries 2"}})
	res := SSHClient{Addr: s.Addr, Keys: NewKeys(t, KeyEd25519, KeyEd25519, KeyEd25519), Command: []string{"true"}}.Run(t)
	l := res.SSHLog()
	if res.ExitCode != 255 || l.Disconnect == nil || l.Disconnect.Reason != 2 ||
		l.Disconnect.Message != "Too many authentication failures" {
		t.Fatalf("disconnect %+v:\n%s", l.Disconnect, res)
	}
	if !l.ReachedUserAuth() || l.Authenticated {
		t.Errorf("reached=%v authenticated=%v", l.ReachedUserAuth(), l.Authenticated)
	}
}

func TestSSHDNegotiationFailure(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{HostKeys: HostKeys(t, KeyEd25519)})
	res := SSHClient{Addr: s.Addr, Keys: s.ClientKeys, Options: []string{"Ciphers=3des-cbc"}, Command: []string{"true"}}.Run(t)
	l := res.SSHLog()
	if res.ExitCode != 255 || !strings.HasPrefix(l.NegotiationFailure, "no matching cipher found") {
		t.Fatalf("negotiation failure %q:\n%s", l.NegotiationFailure, res)
	}
	if l.ReachedUserAuth() || l.Disconnect != nil {
		t.Errorf("reached=%v disconnect=%+v", l.ReachedUserAuth(), l.Disconnect)
	}
}

// pipeConn adapts an io.ReadWriteCloser to net.Conn for x/crypto/ssh.
type pipeConn struct{ io.ReadWriteCloser }

func (pipeConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (pipeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (pipeConn) SetDeadline(time.Time) error      { return nil }
func (pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (pipeConn) SetWriteDeadline(time.Time) error { return nil }

// TestSSHDInetd runs a whole session with x/crypto/ssh over sshd -i pipes,
// which also checks the Signer and PublicKey helpers.
func TestSSHDInetd(t *testing.T) {
	t.Parallel()
	c := SSHDInetd(t, SSHDOptions{})
	var rwc io.ReadWriteCloser = c
	cfg := &ssh.ClientConfig{
		User: c.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(c.ClientKey().Signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range c.HostKeys {
				if k.Is(key) {
					return nil
				}
			}
			return fmt.Errorf("unknown host key %s", ssh.FingerprintSHA256(key))
		},
		Timeout: 10 * time.Second,
	}
	conn, chans, reqs, err := ssh.NewClientConn(pipeConn{rwc}, "127.0.0.1:22", cfg)
	if err != nil {
		t.Fatalf("handshake over sshd -i: %v", err)
	}
	client := ssh.NewClient(conn, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("echo via-inetd")
	if err != nil || string(out) != "via-inetd\n" {
		t.Fatalf("output %q, %v", out, err)
	}
	c.WaitLog(t, "Accepted publickey for root from UNKNOWN port 65535")
	if err := client.Close(); err != nil {
		t.Log(err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

// TestStopKillsChildren checks that Stop kills sshd's per-connection
// children and the commands they run, not just the listener.
func TestStopKillsChildren(t *testing.T) {
	t.Parallel()
	Require(t, "ssh") // before the goroutine: Run must not skip there
	s := StartSSHD(t, SSHDOptions{HostKeys: HostKeys(t, KeyEd25519)})
	marker := "3" + strconv.Itoa(100000+os.Getpid()%100000) // a unique sleep argument
	done := make(chan *ClientResult, 1)
	go func() {
		done <- SSHClient{Addr: s.Addr, Keys: s.ClientKeys, Command: []string{"exec sleep " + marker}, Timeout: 60 * time.Second}.Run(t)
	}()
	s.WaitLog(t, "Starting session: command for root")
	waitFor(t, func() bool { return findProc("sleep\x00"+marker+"\x00") != 0 })
	s.Stop(t)
	res := <-done
	if res.ExitCode == 0 || res.TimedOut {
		t.Errorf("ssh survived sshd's death:\n%s", res)
	}
	waitFor(t, func() bool { return findProc("sleep\x00"+marker+"\x00") == 0 })
}

// findProc returns the pid of a process whose cmdline equals cmdline, or 0.
func findProc(cmdline string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == cmdline {
			return pid
		}
	}
	return 0
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestPortRetry makes the first attempt bind a port that is taken and
// checks that startListener retries on another one.
func TestPortRetry(t *testing.T) {
	t.Parallel()
	Require(t, "sshd")
	RequireRoot(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	setup := prepareSSHD(t, SSHDOptions{HostKeys: HostKeys(t, KeyEd25519)}, true)
	attempts := 0
	_, port := startListener(t, "sshd", setup.dir, func(port int, logPath string) *exec.Cmd {
		attempts++
		if attempts == 1 {
			port = takenPort
		}
		return exec.Command(SSHDPath, "-D", "-E", logPath, "-f", setup.conf, "-p", strconv.Itoa(port))
	})
	if attempts != 2 || port == takenPort {
		t.Fatalf("attempts %d, port %d (taken %d)", attempts, port, takenPort)
	}
}

func TestDropbearDBClient(t *testing.T) {
	t.Parallel()
	var key *Key
	t.Run("session", func(t *testing.T) {
		d := StartDropbear(t, DropbearOptions{})
		key = d.ClientKey()
		if d.User != TestUser {
			t.Errorf("User %q", d.User)
		}
		res := DBClient{Addr: d.Addr, User: d.User, Keys: d.ClientKeys, Command: []string{"true"}}.Run(t)
		if res.ExitCode != 0 {
			t.Fatalf("dbclient true failed:\n%s", res)
		}
		res = DBClient{Addr: d.Addr, User: d.User, Keys: d.ClientKeys, Command: []string{"id -un; echo $HOME"}}.Run(t)
		if res.ExitCode != 0 || res.Stdout != TestUser+"\n"+TestUserHome+"\n" {
			t.Fatalf("dbclient id failed:\n%s", res)
		}
		d.WaitLog(t, "Pubkey auth succeeded for '"+TestUser+"'")
		res = DBClient{Addr: d.Addr, User: d.User, Keys: NewKeys(t, KeyEd25519), Command: []string{"true"}}.Run(t)
		if res.ExitCode == 0 {
			t.Fatalf("dbclient with an unauthorized key succeeded:\n%s", res)
		}
	})
	// The key's block is gone from the shared authorized_keys after cleanup.
	if key == nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(TestUserHome, ".ssh", "authorized_keys"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if strings.Contains(string(b), strings.Fields(key.AuthorizedKey)[1]) {
		t.Errorf("key still authorized after cleanup:\n%s", b)
	}
}

// stripPseudo drops the pseudo-algorithms that ssh -Q does not list.
func stripPseudo(l []string) []string {
	return slices.DeleteFunc(slices.Clone(l), func(s string) bool {
		return strings.HasPrefix(s, "kexguess2@") || strings.HasPrefix(s, "kex-strict-") || strings.HasPrefix(s, "ext-info-")
	})
}

// TestDropbearSupported connects the OpenSSH client to dropbear and dbclient
// to sshd and compares their real KEXINITs with Supported's fixed lists.
func TestDropbearSupported(t *testing.T) {
	t.Parallel()
	d := StartDropbear(t, DropbearOptions{HostKeys: HostKeys(t, KeyEd25519, KeyECDSA256, KeyECDSA384, KeyECDSA521)})
	res := SSHClient{Addr: d.Addr, User: d.User, Keys: d.ClientKeys, Command: []string{"true"}}.Run(t)
	l := res.SSHLog()
	if res.ExitCode != 0 || l.PeerProposal == nil {
		t.Fatalf("ssh to dropbear failed:\n%s", res)
	}
	if !strings.HasPrefix(l.RemoteVersion, "dropbear_") || !l.ReachedUserAuth() || !l.Authenticated {
		t.Errorf("version %q reached %v authenticated %v", l.RemoteVersion, l.ReachedUserAuth(), l.Authenticated)
	}
	p := l.PeerProposal
	check := func(peer, query string, got []string) {
		t.Helper()
		if want := Supported(t, peer, query); !slices.Equal(stripPseudo(got), want) {
			t.Errorf("%s %s: KEXINIT has %v, Supported says %v", peer, query, got, want)
		}
	}
	check("dropbear", "kex", p.Kex)
	check("dropbear", "cipher", p.CiphersStoC)
	check("dropbear", "mac", p.MACsCtoS)
	check("dropbear", "compression", p.CompressionStoC)
	check("dropbear", "key", []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521", "rsa-sha2-256", "ssh-rsa", "ssh-dss"}) // sanity of the table itself
	// Quirk: dropbear 2022.83 always offers rsa-sha2-256 and ssh-rsa, even
	// without an RSA host key (and dies on an assertion if they are chosen).
	if want := []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"rsa-sha2-256", "ssh-rsa"}; !slices.Equal(p.HostKey, want) {
		t.Errorf("dropbear host key algorithms %v, want %v", p.HostKey, want)
	}

	s := StartSSHD(t, SSHDOptions{HostKeys: HostKeys(t, KeyEd25519)})
	res = DBClient{Addr: s.Addr, Keys: s.ClientKeys, Command: []string{"true"}}.Run(t)
	if res.ExitCode != 0 {
		t.Fatalf("dbclient to sshd failed:\n%s", res)
	}
	sl := ParseSSHLog(s.WaitLog(t, "Accepted publickey for root"))
	if sl.PeerProposal == nil {
		t.Fatal("no client proposal in sshd's log")
	}
	cp := sl.PeerProposal
	check("dbclient", "kex", cp.Kex)
	check("dbclient", "key", cp.HostKey)
	check("dbclient", "cipher", cp.CiphersCtoS)
	check("dbclient", "mac", cp.MACsStoC)
	check("dbclient", "compression", cp.CompressionCtoS)
	if !cp.FirstKexFollows {
		t.Error("dbclient did not send a guessed first kex packet")
	}
}

func TestSupportedSSH(t *testing.T) {
	t.Parallel()
	Require(t, "ssh")
	for q, want := range map[string]string{
		"kex": "curve25519-sha256", "cipher": "aes128-ctr", "mac": "hmac-sha2-256-etm@openssh.com",
		"key": "ssh-ed25519", "compression": "none",
	} {
		if got := Supported(t, "sshd", q); !slices.Contains(got, want) {
			t.Errorf("Supported(sshd, %s) = %v, missing %s", q, got, want)
		}
	}
}

// A trimmed real log (ssh -vvv against sshd 9.2, with a re-key and a
// DISCONNECT) for the parser alone.
const sampleLog = `OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026
debug1: Remote protocol version 2.0, remote software version OpenSSH_9.2p1 Debian-2+deb12u10
debug3: send packet: type 20
debug3: receive packet: type 20
debug2: local client KEXINIT proposal
debug2: KEX algorithms: curve25519-sha256,ext-info-c
debug2: host key algorithms: ssh-ed25519
debug2: ciphers ctos: aes128-ctr
debug2: ciphers stoc: aes256-ctr
debug2: MACs ctos: hmac-sha2-256
debug2: MACs stoc: hmac-sha1
debug2: compression ctos: none,zlib@openssh.com
debug2: compression stoc: none
debug2: languages ctos: 
debug2: languages stoc: 
debug2: first_kex_follows 0 
debug2: reserved 0 
debug2: peer server KEXINIT proposal
debug2: KEX algorithms: curve25519-sha256,kex-strict-s-v00@openssh.com
debug2: host key algorithms: ssh-ed25519,rsa-sha2-512
debug2: ciphers ctos: aes128-ctr
debug2: ciphers stoc: aes256-ctr
debug2: MACs ctos: hmac-sha2-256
debug2: MACs stoc: hmac-sha1
debug2: compression ctos: none
debug2: compression stoc: none
debug2: languages ctos: 
debug2: languages stoc: 
debug2: first_kex_follows 1 
debug2: reserved 0 
debug1: kex: algorithm: curve25519-sha256
debug1: kex: host key algorithm: ssh-ed25519
debug1: kex: server->client cipher: aes256-ctr MAC: hmac-sha1 compression: none
debug1: kex: client->server cipher: aes128-ctr MAC: hmac-sha2-256 compression: none
debug1: Server host key: ssh-ed25519 SHA256:mKfKEiS8B6QmwoYxDTLkO6S1jIZilJF3E4cxyBkb/Cs
debug1: SSH2_MSG_SERVICE_ACCEPT received
debug1: Authentications that can continue: publickey,keyboard-interactive
debug3: receive packet: type 52
Authenticated to 127.0.0.1 ([127.0.0.1]:22022) using "publickey".
debug1: Remote: /tmp/ak:1: key options: agent-forwarding port-forwarding pty user-rc x11-forwarding
debug1: kex: algorithm: ecdh-sha2-nistp256
debug1: kex: host key algorithm: ssh-ed25519
debug1: kex: server->client cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none
debug1: kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none
debug3: receive packet: type 1
Received disconnect from 127.0.0.1 port 22022:11: disconnected by user
Disconnected from 127.0.0.1 port 22022
debug1: Exit status 3
`

func TestParseSSHLog(t *testing.T) {
	l := ParseSSHLog(sampleLog)
	if l.RemoteVersion != "OpenSSH_9.2p1 Debian-2+deb12u10" {
		t.Errorf("RemoteVersion %q", l.RemoteVersion)
	}
	if l.LocalProposal == nil || !slices.Equal(l.LocalProposal.Kex, []string{"curve25519-sha256", "ext-info-c"}) ||
		!slices.Equal(l.LocalProposal.CompressionCtoS, []string{"none", "zlib@openssh.com"}) ||
		l.LocalProposal.LanguagesCtoS != nil || l.LocalProposal.FirstKexFollows {
		t.Errorf("LocalProposal %+v", l.LocalProposal)
	}
	if l.PeerProposal == nil || !slices.Equal(l.PeerProposal.HostKey, []string{"ssh-ed25519", "rsa-sha2-512"}) ||
		!l.PeerProposal.FirstKexFollows {
		t.Errorf("PeerProposal %+v", l.PeerProposal)
	}
	want := []Negotiation{
		{Kex: "curve25519-sha256", HostKey: "ssh-ed25519", CipherStoC: "aes256-ctr", MACStoC: "hmac-sha1",
			CompressionStoC: "none", CipherCtoS: "aes128-ctr", MACCtoS: "hmac-sha2-256", CompressionCtoS: "none"},
		{Kex: "ecdh-sha2-nistp256", HostKey: "ssh-ed25519", CipherStoC: "chacha20-poly1305@openssh.com",
			MACStoC: "<implicit>", CompressionStoC: "none", CipherCtoS: "chacha20-poly1305@openssh.com",
			MACCtoS: "<implicit>", CompressionCtoS: "none"},
	}
	if !slices.Equal(l.Kex, want) {
		t.Errorf("Kex %+v", l.Kex)
	}
	if !l.ServiceAccepted || !l.Authenticated || l.AuthMethod != "publickey" || !l.ReachedUserAuth() ||
		!slices.Equal(l.AuthMethods, []string{"publickey", "keyboard-interactive"}) {
		t.Errorf("auth: %+v", l)
	}
	if l.Disconnect == nil || *l.Disconnect != (Disconnect{Reason: 11, Message: "disconnected by user"}) {
		t.Errorf("Disconnect %+v", l.Disconnect)
	}
	if !slices.Equal(l.Sent, []int{20}) || !slices.Equal(l.Received, []int{20, 52, 1}) {
		t.Errorf("sent %v received %v", l.Sent, l.Received)
	}
	if len(l.RemoteDebug) != 1 || l.ExitStatus != 3 ||
		l.ServerHostKey != "ssh-ed25519 SHA256:mKfKEiS8B6QmwoYxDTLkO6S1jIZilJF3E4cxyBkb/Cs" {
		t.Errorf("debug %q exit %d hostkey %q", l.RemoteDebug, l.ExitStatus, l.ServerHostKey)
	}
	if e := ParseSSHLog(""); e.ReachedUserAuth() || e.ExitStatus != -1 || e.Kex != nil {
		t.Errorf("empty log: %+v", e)
	}
	f := ParseSSHLog("Unable to negotiate with 127.0.0.1 port 2: no matching cipher found. Their offer: aes128-ctr\n")
	if f.NegotiationFailure != "no matching cipher found. Their offer: aes128-ctr" {
		t.Errorf("NegotiationFailure %q", f.NegotiationFailure)
	}
}
