package sshtap

// Interop of the legacy algorithms (kex.IsLegacy, cipher.IsLegacy) with
// OpenSSH 9.2, which still implements all of them but enables them only
// when configured: each case restricts the peer to one legacy algorithm in
// its category, and sshtap reaches it only through the "+name" opt-in.
// Dropbear 2022.83 has none of them but diffie-hellman-group14-sha1, which
// the algorithm matrices of interop_test.go already run against it.

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/internal/testpeer"
	"sshtap/kex"
)

// legacyCase is one legacy algorithm: the sshd_config (or ssh -o) lines
// that leave the peer only it, and the sshtap configuration that opts in.
type legacyCase struct {
	name     string
	peer     []string // "Keyword value" lines for sshd_config; "Keyword=value" for ssh -o
	opt      func(*TransportConfig)
	what     string // NegotiationError.What without the opt-in
	want     func(Algorithms) string
	hostKeys []testpeer.KeyType
}

func legacyCases() []legacyCase {
	kexCase := func(name string) legacyCase {
		return legacyCase{name: name, peer: []string{"KexAlgorithms " + name},
			opt: func(c *TransportConfig) { c.KexAlgorithms = []string{"+" + name} }, what: "kex",
			want: func(a Algorithms) string { return a.Kex }}
	}
	cipherCase := func(name string) legacyCase {
		return legacyCase{name: name, peer: []string{"Ciphers " + name},
			opt: func(c *TransportConfig) { c.Ciphers = []string{"+" + name} }, what: "cipher",
			want: func(a Algorithms) string { return a.ClientToServer.Cipher }}
	}
	// A MAC is negotiated only beside a non-AEAD cipher: the peer gets
	// aes128-ctr (hmac-md5 also goes with 3des-cbc below, in the classic
	// Encrypt-and-MAC order RFC 4253 §6 defines for it).
	macCase := func(name, cipherName string) legacyCase {
		c := legacyCase{name: name + "/" + cipherName, peer: []string{"Ciphers " + cipherName, "MACs " + name},
			opt: func(c *TransportConfig) {
				c.MACs = []string{"+" + name}
				if cipher.IsLegacy(cipherName) {
					c.Ciphers = []string{"+" + cipherName}
				}
			}, what: "mac",
			want: func(a Algorithms) string { return a.ServerToClient.MAC }}
		if cipher.IsLegacy(cipherName) {
			c.what = "cipher"
		}
		return c
	}
	return []legacyCase{
		kexCase(kex.DHGroup1SHA1),
		kexCase(kex.DHGroup14SHA1),
		kexCase(kex.DHGexSHA1),
		cipherCase(cipher.AES128CBC),
		cipherCase(cipher.AES192CBC),
		cipherCase(cipher.AES256CBC),
		cipherCase(cipher.TripleDESCBC),
		macCase(cipher.HMACSHA196, cipher.AES128CTR),
		macCase(cipher.HMACMD5, cipher.AES128CTR),
		macCase(cipher.HMACMD5, cipher.TripleDESCBC),
		macCase(cipher.HMACSHA196, cipher.AES256CBC),
		{name: kex.HostKeyRSA, peer: []string{"HostKeyAlgorithms " + kex.HostKeyRSA},
			opt:  func(c *TransportConfig) { c.HostKeyAlgorithms = []string{"+" + kex.HostKeyRSA} },
			what: "host key", want: func(a Algorithms) string { return a.HostKey },
			hostKeys: []testpeer.KeyType{testpeer.KeyRSA3072}},
	}
}

// legacyData is what each case moves through "cat" both ways.
var legacyData = bytes.Repeat([]byte("legacy algorithms for old peers\n"), 8192) // 256 KiB

// TestInteropLegacyClientSSHD: for each legacy algorithm, sshd offers only
// it; our client with the defaults fails negotiation with a
// *NegotiationError naming the category, and with "+name" connects, runs
// cat over 256 KiB each way, negotiated name and flags it in its KexEvent.
func TestInteropLegacyClientSSHD(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "sshd")
	testpeer.RequireRoot(t)
	for _, lc := range legacyCases() {
		t.Run(lc.name, func(t *testing.T) {
			t.Parallel()
			hk := lc.hostKeys
			if hk == nil {
				hk = []testpeer.KeyType{testpeer.KeyEd25519}
			}
			s := testpeer.StartSSHD(t, testpeer.SSHDOptions{HostKeys: testpeer.HostKeys(t, hk...), Config: lc.peer})

			// Not opted in: negotiation fails, naming what.
			ctx := ioContext(t)
			conn, err := Dial(ctx, "tcp", s.Addr, &Config{NoAuth: true, HostKeyCallback: insecure})
			if err == nil {
				conn.Close()
				t.Fatalf("defaults negotiated %+v with a peer offering only %s", conn.Algorithms(), lc.name)
			}
			var ne *NegotiationError
			if !errors.As(err, &ne) || !strings.HasPrefix(ne.What, lc.what) {
				t.Fatalf("without opt-in: %v (%T), want a *NegotiationError for %s", err, err, lc.what)
			}

			// Opted in.
			cfg := &Config{User: s.User, Auth: []AuthMethod{PublicKeys(s.ClientKey().Signer)}, HostKeyCallback: insecure}
			lc.opt(&cfg.TransportConfig)
			nc, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			c := ClientConn(nc, cfg)
			t.Cleanup(func() { c.Close() })
			sub := c.SubscribeBuffer(ctx, KindKex, 8)
			if err := c.Handshake(ctx); err != nil {
				t.Fatalf("handshake with +%s: %v", lc.name, err)
			}
			ioCat(t, c, legacyData)
			a := c.Algorithms()
			name := strings.SplitN(lc.name, "/", 2)[0]
			if got := lc.want(a); got != name {
				t.Errorf("negotiated %s, want %s (%+v)", got, name, a)
			}
			sub.Close()
			var kx *KexEvent
			for _, ev := range ioDrain(sub) {
				if e, ok := ev.(*KexEvent); ok && kx == nil {
					kx = e
				}
			}
			if kx == nil || !slices.Contains(kx.Legacy, name) || !slices.Equal(kx.Legacy, a.Legacy()) {
				t.Errorf("KexEvent %+v: Legacy does not name %s", kx, name)
			}
		})
	}
}

// TestInteropLegacyUserAuthSSHD: sshd accepting only ssh-rsa (SHA-1) for
// publickey logins refuses our RSA key by default and accepts it with
// Config.PublicKeyAlgorithms "+ssh-rsa", signed with SHA-1.
func TestInteropLegacyUserAuthSSHD(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "sshd")
	testpeer.RequireRoot(t)
	k := testpeer.NewKey(t, testpeer.KeyRSA3072)
	s := testpeer.StartSSHD(t, testpeer.SSHDOptions{
		HostKeys:       testpeer.HostKeys(t, testpeer.KeyEd25519),
		AuthorizedKeys: []*testpeer.Key{k},
		Config:         []string{"PubkeyAcceptedAlgorithms " + ssh.KeyAlgoRSA},
	})
	c, evs, err := iaDial(t, s.Addr, &Config{User: s.User, Auth: []AuthMethod{PublicKeys(k.Signer)}})
	if err == nil || c.Authenticated() {
		t.Fatalf("logged in with SHA-1 RSA without opting in: %v", authSummary(evs))
	}
	c, evs, err = iaDial(t, s.Addr, &Config{User: s.User, Auth: []AuthMethod{PublicKeys(k.Signer)},
		PublicKeyAlgorithms: []string{"+" + ssh.KeyAlgoRSA}})
	if err != nil {
		t.Fatalf("handshake with +ssh-rsa: %v\nevents: %v", err, authSummary(evs))
	}
	if ok := iaSuccess(evs); !c.Authenticated() || ok == nil || ok.Algorithm != ssh.KeyAlgoRSA {
		t.Fatalf("events %v, want success with ssh-rsa", authSummary(evs))
	}
	sess := ioSession(t, c)
	if out, err := sess.Output("echo ok"); err != nil || string(out) != "ok\n" {
		t.Fatalf("echo: %q, %v", out, err)
	}
	s.WaitLog(t, "Accepted publickey for root from 127.0.0.1 port")
	if l := s.Log(); !strings.Contains(l, "RSA "+ssh.FingerprintSHA256(k.PublicKey)) {
		t.Errorf("sshd log does not name the key")
	}
}

// TestInteropLegacyServerSSH: the OpenSSH client restricted to one legacy
// algorithm against our server opted in with "+name" runs cat over 256 KiB
// each way; against our server's defaults it fails to negotiate. The
// ssh-rsa case also logs in with an RSA key signing ssh-rsa, which the
// server accepts through ServerConfig.PublicKeyAlgorithms "+ssh-rsa".
func TestInteropLegacyServerSSH(t *testing.T) {
	t.Parallel()
	testpeer.Require(t, "ssh")
	testKeys(t)
	for _, lc := range legacyCases() {
		t.Run(lc.name, func(t *testing.T) {
			t.Parallel()
			var opts []string
			for _, l := range lc.peer {
				kw, v, _ := strings.Cut(l, " ")
				opts = append(opts, kw+"="+v)
			}
			opts = append(opts, "ConnectTimeout=10")
			plain := &ServerConfig{HostKeys: allHostKeys(t), NoClientAuth: true, SessionHandler: testSessionHandler}
			r := testpeer.SSHClient{Addr: ioSessionServerWith(t, plain), Flags: []string{"-T"}, Command: []string{"echo", "hi"},
				Options: opts}.Run(t)
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, "no matching") {
				t.Errorf("ssh against defaults: exit %d, want a negotiation failure:\n%s", r.ExitCode, r.Stderr)
			}

			cfg := &ServerConfig{HostKeys: allHostKeys(t), NoClientAuth: true, SessionHandler: testSessionHandler}
			lc.opt(&cfg.TransportConfig)
			r = testpeer.SSHClient{Addr: ioSessionServerWith(t, cfg), Flags: []string{"-T"}, Command: []string{"cat"},
				Stdin: bytes.NewReader(legacyData), Options: opts}.Run(t)
			if r.ExitCode != 0 || r.Stdout != string(legacyData) {
				t.Fatalf("cat: exit %d, %d of %d bytes back:\n%s", r.ExitCode, len(r.Stdout), len(legacyData), r.Stderr)
			}
			n := r.SSHLog().FirstKex()
			name := strings.SplitN(lc.name, "/", 2)[0]
			if got := []string{n.Kex, n.HostKey, n.CipherCtoS, n.MACCtoS}; !slices.Contains(got, name) {
				t.Errorf("ssh negotiated %+v, want %s", n, name)
			}
		})
	}
	t.Run("publickey-ssh-rsa", func(t *testing.T) {
		t.Parallel()
		k := testpeer.NewKey(t, testpeer.KeyRSA3072)
		cfg := &ServerConfig{HostKeys: allHostKeys(t), PublicKeyCallback: authAcceptKeys(k.PublicKey),
			PublicKeyAlgorithms: []string{"+" + ssh.KeyAlgoRSA}}
		addr, wait := iaServe(t, cfg)
		log, code := iaRunSSH(t, addr, "tester", []*testpeer.Key{k}, nil, "BatchMode=yes",
			"PubkeyAcceptedAlgorithms="+ssh.KeyAlgoRSA)
		evs, err := wait()
		if err != nil {
			t.Fatalf("server handshake: %v\nssh (exit %d):\n%s", err, code, log)
		}
		if ok := iaSuccess(evs); ok == nil || ok.Algorithm != ssh.KeyAlgoRSA {
			t.Errorf("server events %v, want success with ssh-rsa", authSummary(evs))
		}
	})
}
