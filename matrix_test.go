package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/kex"
)

// mxCase is one algorithm combination of the matrix.
type mxCase struct {
	kex, hostKeyAlgo, cipher, mac string
	signer                        ssh.Signer
	allowSHA1                     bool
}

func (c mxCase) name() string {
	n := c.kex + "/" + c.hostKeyAlgo + "/" + c.cipher
	if !cipher.IsAEAD(c.cipher) {
		n += "+" + c.mac
	}
	return n
}

// mxSigner returns the test signer that serves a host key algorithm.
func mxSigner(t testing.TB, algo string) ssh.Signer {
	t.Helper()
	testKeys(t)
	switch algo {
	case kex.HostKeyED25519:
		return testEd25519
	case kex.HostKeyECDSA256:
		return testECDSA256
	case kex.HostKeyECDSA384:
		return testECDSA384
	case kex.HostKeyECDSA521:
		return testECDSA521
	case kex.HostKeyRSASHA256, kex.HostKeyRSASHA512, kex.HostKeyRSA:
		return testRSA
	}
	t.Fatalf("no test signer for %s", algo)
	return nil
}

// mxAllHostKeyAlgos are the plain (non-certificate) host key algorithms, one
// per key type and RSA signature hash; ssh-rsa needs AllowSHA1RSA.
var mxAllHostKeyAlgos = []string{
	kex.HostKeyED25519, kex.HostKeyECDSA256, kex.HostKeyECDSA384, kex.HostKeyECDSA521,
	kex.HostKeyRSASHA256, kex.HostKeyRSASHA512, kex.HostKeyRSA,
}

// mxConfigs builds configs that offer exactly the algorithms of c on both
// sides. The client's HostKeyCallback records the key it was shown.
func mxConfigs(c mxCase, seen *ssh.PublicKey) (*Config, *ServerConfig) {
	tc := TransportConfig{
		KexAlgorithms:     []string{c.kex},
		HostKeyAlgorithms: []string{c.hostKeyAlgo},
		Ciphers:           []string{c.cipher},
		MACs:              []string{c.mac},
		RekeyInterval:     -1,
	}
	ccfg := &Config{NoAuth: true,
		TransportConfig: tc,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			*seen = key
			return nil
		},
	}
	scfg := &ServerConfig{TransportConfig: tc, HostKeys: []ssh.Signer{c.signer}, AllowSHA1RSA: c.allowSHA1}
	return ccfg, scfg
}

// wantAlgorithms is what both sides must report for c.
func (c mxCase) wantAlgorithms() Algorithms {
	mac := c.mac
	if cipher.IsAEAD(c.cipher) {
		mac = ""
	}
	d := DirectionAlgorithms{Cipher: c.cipher, MAC: mac, Compression: "none"}
	return Algorithms{Kex: c.kex, HostKey: c.hostKeyAlgo, ClientToServer: d, ServerToClient: d}
}

// mxRun runs one matrix case: handshake, algorithm checks on both sides,
// IGNORE traffic both ways, one rekey, traffic again.
func mxRun(t *testing.T, c mxCase) {
	t.Helper()
	var seen ssh.PublicKey
	ccfg, scfg := mxConfigs(c, &seen)
	p := handshakePair(t, ccfg, scfg)

	want := c.wantAlgorithms()
	for _, side := range []struct {
		name string
		conn *Conn
	}{{"client", p.client}, {"server", p.server}} {
		if got := side.conn.Algorithms(); got != want {
			t.Errorf("%s Algorithms() = %+v, want %+v", side.name, got, want)
		}
		if !side.conn.Strict() {
			t.Errorf("%s: strict kex not in force between two sshtap peers", side.name)
		}
	}
	wantKey := c.signer.PublicKey().Marshal()
	if seen == nil || !bytes.Equal(seen.Marshal(), wantKey) {
		t.Errorf("HostKeyCallback saw %v, want the server's %s key", seen, c.signer.PublicKey().Type())
	}
	if !bytes.Equal(p.client.HostKey(), wantKey) || !bytes.Equal(p.server.HostKey(), wantKey) {
		t.Errorf("HostKey() differs from the server's key (client %x, server %x)", p.client.HostKey(), p.server.HostKey())
	}
	if sid := p.client.SessionID(); len(sid) == 0 || !bytes.Equal(sid, p.server.SessionID()) {
		t.Errorf("session IDs differ: client %x, server %x", sid, p.server.SessionID())
	}
	sid := p.client.SessionID()

	mxTraffic(t, p, c.name()+" before rekey", 3)

	ckex := p.client.Subscribe(context.Background(), KindKex)
	defer ckex.Close()
	skex := p.server.Subscribe(context.Background(), KindKex)
	defer skex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.client.Rekey(ctx); err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	for _, s := range []struct {
		name string
		sub  *Subscription
		conn *Conn
	}{{"client", ckex, p.client}, {"server", skex, p.server}} {
		evs := collect(t, s.sub, 20*time.Second, func(e Event) bool { _, ok := e.(*KexEvent); return ok })
		ke, ok := evs[len(evs)-1].(*KexEvent)
		if !ok {
			t.Fatalf("%s: subscription ended before the rekey's KexEvent: %v", s.name, evs)
		}
		if ke.Initial || !ke.Strict || ke.Algorithms != want || !bytes.Equal(ke.HostKey, wantKey) {
			t.Errorf("%s rekey KexEvent = {Initial:%v Strict:%v Algorithms:%+v}, want a strict rekey with %+v", s.name, ke.Initial, ke.Strict, ke.Algorithms, want)
		}
		if n := s.conn.Stats().Rekeys; n != 1 {
			t.Errorf("%s Stats().Rekeys = %d, want 1", s.name, n)
		}
		if got := s.conn.Algorithms(); got != want {
			t.Errorf("%s Algorithms() after rekey = %+v, want %+v", s.name, got, want)
		}
	}
	if !bytes.Equal(p.client.SessionID(), sid) || !bytes.Equal(p.server.SessionID(), sid) {
		t.Errorf("session ID changed by the rekey")
	}
	mxTraffic(t, p, c.name()+" after rekey", 3)
}

// mxTraffic sends n distinct IGNORE payloads each way at once and checks
// that the other side reports exactly those, in order.
func mxTraffic(t *testing.T, p pair, tag string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type dir struct {
		name     string
		from, to *Conn
	}
	dirs := []dir{{"c->s", p.client, p.server}, {"s->c", p.server, p.client}}
	subs := make([]*Subscription, len(dirs))
	for i, d := range dirs {
		subs[i] = d.to.Subscribe(ctx, KindIgnore)
		defer subs[i].Close()
	}
	payload := func(d dir, i int) []byte {
		// Distinct sizes around block and MAC boundaries, distinct contents.
		b := bytes.Repeat([]byte{byte(i + 1)}, i*37)
		return append([]byte(fmt.Sprintf("%s %s #%d|", tag, d.name, i)), b...)
	}
	errc := make(chan error, len(dirs))
	for _, d := range dirs {
		go func() {
			for i := range n {
				if err := d.from.SendIgnore(ctx, payload(d, i)); err != nil {
					errc <- fmt.Errorf("%s SendIgnore %d: %w", d.name, i, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range dirs {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range dirs {
		var got []*IgnoreEvent
		collect(t, subs[i], 20*time.Second, func(e Event) bool {
			if ie, ok := e.(*IgnoreEvent); ok {
				got = append(got, ie)
			}
			return len(got) == n
		})
		if len(got) != n {
			t.Fatalf("%s %s: got %d IGNOREs, want %d", tag, d.name, len(got), n)
		}
		for j := range n {
			want := payload(d, j)
			if got[j].Length != len(want) || !bytes.Equal(got[j].Data, want[:min(len(want), MaxEventData)]) {
				t.Errorf("%s %s: IGNORE %d = %.40q... (%d bytes), want %.40q... (%d)", tag, d.name, j, got[j].Data, got[j].Length, want, len(want))
			}
		}
	}
}

// mxCipherMACs lists every cipher with every MAC (AEAD ciphers once, with
// a MAC list they ignore).
func mxCipherMACs() [][2]string {
	var out [][2]string
	for _, c := range cipher.SupportedCiphers {
		if cipher.IsAEAD(c) {
			out = append(out, [2]string{c, cipher.HMACSHA256})
			continue
		}
		for _, m := range cipher.SupportedMACs {
			out = append(out, [2]string{c, m})
		}
	}
	return out
}

// TestMatrixCipherMAC covers every cipher × MAC with one fast kex.
func TestMatrixCipherMAC(t *testing.T) {
	for _, cm := range mxCipherMACs() {
		c := mxCase{kex: kex.Curve25519SHA256, hostKeyAlgo: kex.HostKeyED25519, cipher: cm[0], mac: cm[1]}
		c.signer = mxSigner(t, c.hostKeyAlgo)
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			mxRun(t, c)
		})
	}
}

// TestMatrixKex covers every kex method with one cipher and host key.
func TestMatrixKex(t *testing.T) {
	for _, k := range kex.SupportedKexAlgos {
		c := mxCase{kex: k, hostKeyAlgo: kex.HostKeyED25519, cipher: cipher.AES128GCM, mac: cipher.HMACSHA256}
		c.signer = mxSigner(t, c.hostKeyAlgo)
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			mxRun(t, c)
		})
	}
}

// TestMatrixHostKey covers every host key type and RSA signature algorithm
// with one kex.
func TestMatrixHostKey(t *testing.T) {
	for _, hk := range mxAllHostKeyAlgos {
		c := mxCase{kex: kex.Curve25519SHA256, hostKeyAlgo: hk, cipher: cipher.Chacha20Poly1305, mac: cipher.HMACSHA256,
			allowSHA1: hk == kex.HostKeyRSA}
		c.signer = mxSigner(t, c.hostKeyAlgo)
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			mxRun(t, c)
		})
	}
}

// TestMatrixCross is a true cross product of the cheaper kex methods, every
// host key algorithm and a spread of cipher/MAC pairs (every cipher, both MAC
// modes and both MAC families, HMAC and UMAC, appear; TestMatrixCipherMAC
// has every MAC).
func TestMatrixCross(t *testing.T) {
	kexes := []string{kex.Curve25519SHA256, kex.Curve25519SHA256LibSSH, kex.ECDHP256, kex.ECDHP384, kex.MLKEM768X25519, kex.DHGroup14SHA256}
	cms := [][2]string{
		{cipher.Chacha20Poly1305, cipher.HMACSHA256},
		{cipher.AES128GCM, cipher.HMACSHA1},
		{cipher.AES256GCM, cipher.HMACSHA512},
		{cipher.AES128CTR, cipher.HMACSHA256ETM},
		{cipher.AES192CTR, cipher.UMAC64},
		{cipher.AES256CTR, cipher.HMACSHA1ETM},
	}
	if testing.Short() {
		kexes = kexes[:2]
	}
	for _, k := range kexes {
		for _, hk := range mxAllHostKeyAlgos {
			for _, cm := range cms {
				c := mxCase{kex: k, hostKeyAlgo: hk, cipher: cm[0], mac: cm[1], allowSHA1: hk == kex.HostKeyRSA}
				c.signer = mxSigner(t, hk)
				t.Run(c.name(), func(t *testing.T) {
					t.Parallel()
					mxRun(t, c)
				})
			}
		}
	}
}

// TestMatrixPreferenceOrder checks that with full lists the client's first
// choice that the server has wins, per RFC 4253 §7.1, on both sides.
func TestMatrixPreferenceOrder(t *testing.T) {
	testKeys(t)
	ccfg := &Config{NoAuth: true, TransportConfig: TransportConfig{
		KexAlgorithms:     []string{kex.ECDHP384, kex.Curve25519SHA256},
		HostKeyAlgorithms: []string{kex.HostKeyECDSA521, kex.HostKeyRSASHA256, kex.HostKeyED25519},
		Ciphers:           []string{cipher.AES256CTR, cipher.Chacha20Poly1305},
		MACs:              []string{cipher.HMACSHA1ETM, cipher.HMACSHA512},
	}}
	scfg := &ServerConfig{
		TransportConfig: TransportConfig{
			KexAlgorithms: []string{kex.Curve25519SHA256, kex.ECDHP384},
			Ciphers:       []string{cipher.Chacha20Poly1305, cipher.AES256CTR},
			MACs:          []string{cipher.HMACSHA512, cipher.HMACSHA1ETM},
		},
		HostKeys: []ssh.Signer{testEd25519, testRSA},
	}
	p := handshakePair(t, ccfg, scfg)
	d := DirectionAlgorithms{Cipher: cipher.AES256CTR, MAC: cipher.HMACSHA1ETM, Compression: "none"}
	want := Algorithms{Kex: kex.ECDHP384, HostKey: kex.HostKeyRSASHA256, ClientToServer: d, ServerToClient: d}
	if got := p.client.Algorithms(); got != want {
		t.Errorf("client Algorithms() = %+v, want %+v", got, want)
	}
	if got := p.server.Algorithms(); got != want {
		t.Errorf("server Algorithms() = %+v, want %+v", got, want)
	}
	mxTraffic(t, p, "preference", 2)
}

// TestMatrixNegotiationFailure: disjoint cipher lists fail the handshake
// with a *NegotiationError naming both lists; the server ends too, having
// sent or seen KEY_EXCHANGE_FAILED or the closed stream.
func TestMatrixNegotiationFailure(t *testing.T) {
	cases := []struct {
		name                 string
		ccfg                 *Config
		scfg                 *ServerConfig
		what                 string
		clientList, srvrList []string
	}{
		{
			name:       "ciphers",
			ccfg:       &Config{NoAuth: true, TransportConfig: TransportConfig{Ciphers: []string{cipher.AES128CTR, cipher.AES192CTR}}},
			scfg:       &ServerConfig{TransportConfig: TransportConfig{Ciphers: []string{cipher.Chacha20Poly1305, cipher.AES256GCM}}},
			what:       "cipher",
			clientList: []string{cipher.AES128CTR, cipher.AES192CTR},
			srvrList:   []string{cipher.Chacha20Poly1305, cipher.AES256GCM},
		},
		{
			name:       "macs",
			ccfg:       &Config{NoAuth: true, TransportConfig: TransportConfig{Ciphers: []string{cipher.AES128CTR}, MACs: []string{cipher.HMACSHA1}}},
			scfg:       &ServerConfig{TransportConfig: TransportConfig{Ciphers: []string{cipher.AES128CTR}, MACs: []string{cipher.HMACSHA256ETM}}},
			what:       "mac",
			clientList: []string{cipher.HMACSHA1},
			srvrList:   []string{cipher.HMACSHA256ETM},
		},
		{
			name:       "kex",
			ccfg:       &Config{NoAuth: true, TransportConfig: TransportConfig{KexAlgorithms: []string{kex.ECDHP256}}},
			scfg:       &ServerConfig{TransportConfig: TransportConfig{KexAlgorithms: []string{kex.Curve25519SHA256}}},
			what:       "kex",
			clientList: []string{kex.ECDHP256},
			srvrList:   []string{kex.Curve25519SHA256},
		},
		{
			// ssh-rsa (SHA-1) is offered only with AllowSHA1RSA.
			name:       "ssh-rsa-not-allowed",
			ccfg:       &Config{NoAuth: true, TransportConfig: TransportConfig{HostKeyAlgorithms: []string{kex.HostKeyRSA}}},
			scfg:       &ServerConfig{HostKeys: []ssh.Signer{mxSigner(t, kex.HostKeyRSA)}},
			what:       "host key",
			clientList: []string{kex.HostKeyRSA},
			srvrList:   []string{kex.HostKeyRSASHA512, kex.HostKeyRSASHA256},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			testKeys(t)
			if len(tc.scfg.HostKeys) == 0 {
				tc.scfg.HostKeys = []ssh.Signer{testEd25519}
			}
			tc.ccfg.HostKeyCallback = ssh.InsecureIgnoreHostKey()
			c := ClientConn(a, tc.ccfg)
			s := ServerConn(b, tc.scfg)
			csub := c.Subscribe(context.Background(), KindAll)
			ssub := s.Subscribe(context.Background(), KindAll)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			serr := make(chan error, 1)
			go func() { serr <- s.Handshake(ctx) }()
			cerr := c.Handshake(ctx)
			se := <-serr
			defer c.Close()
			defer s.Close()

			for _, side := range []struct {
				name string
				err  error
			}{{"client", cerr}, {"server", se}} {
				var ne *NegotiationError
				if !errors.As(side.err, &ne) {
					// The server may lose the race with the client's close,
					// but then it must have seen the client's DISCONNECT or
					// the stream end, never succeed.
					var de *DisconnectError
					switch {
					case side.name != "server":
					case errors.As(side.err, &de) && de.Remote && de.Reason == DisconnectKeyExchangeFailed:
						continue
					case errors.Is(side.err, io.EOF), errors.Is(side.err, io.ErrClosedPipe), errors.Is(side.err, net.ErrClosed):
						continue
					}
					t.Fatalf("%s handshake error = %v, want a *NegotiationError", side.name, side.err)
				}
				if !strings.HasPrefix(ne.What, tc.what) {
					t.Errorf("%s: NegotiationError.What = %q, want %q...", side.name, ne.What, tc.what)
				}
				// The kex lists as offered carry the pseudo-algorithms
				// (ext-info-c, kex-strict-*); the real names must match.
				real := func(l []string) []string { return slices.DeleteFunc(slices.Clone(l), kex.IsPseudo) }
				if !slices.Equal(real(ne.Client), tc.clientList) || !slices.Equal(real(ne.Server), tc.srvrList) {
					t.Errorf("%s: NegotiationError lists = client %q server %q, want %q and %q", side.name, ne.Client, ne.Server, tc.clientList, tc.srvrList)
				}
				msg := side.err.Error()
				for _, n := range append(slices.Clone(tc.clientList), tc.srvrList...) {
					if !strings.Contains(msg, n) {
						t.Errorf("%s: error %q does not name %q", side.name, msg, n)
					}
				}
			}

			// Each side announced KEY_EXCHANGE_FAILED (a local
			// DisconnectEvent) or, at least, saw the other end; either way
			// the last event is a ClosedEvent with the error.
			for _, side := range []struct {
				name string
				sub  *Subscription
				err  error
			}{{"client", csub, cerr}, {"server", ssub, se}} {
				evs := collect(t, side.sub, 10*time.Second, func(e Event) bool { _, ok := e.(*ClosedEvent); return ok })
				sawKexFailed := false
				for _, e := range evs {
					if d, ok := e.(*DisconnectEvent); ok && d.Reason == DisconnectKeyExchangeFailed {
						sawKexFailed = true
					}
				}
				var ne *NegotiationError
				if errors.As(side.err, &ne) && !sawKexFailed {
					t.Errorf("%s failed negotiation but published no KEY_EXCHANGE_FAILED DisconnectEvent: %v", side.name, evs)
				}
				ce := evs[len(evs)-1].(*ClosedEvent)
				if ce.Err == nil {
					t.Errorf("%s ClosedEvent.Err is nil", side.name)
				}
			}
		})
	}
}
