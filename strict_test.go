package sshtap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/internal/wire"
	"sshtap/kex"
	"sshtap/packet"
)

// ---------------------------------------------------------------------------
// A hand-rolled SSH peer (hp = hand peer) for the strict kex, version and
// seam tests: it speaks the transport byte by byte with internal/wire,
// packet, kex and cipher, so a test can put any message anywhere.

type hpPeer struct {
	t      testing.TB
	rw     io.ReadWriter
	server bool

	version     string // our identification line, without CR LF
	peerVersion string
	strict      bool // offer the kex-strict marker in the first KEXINIT
	kexAlgo     string
	hostKeyAlgo string
	cipher, mac string
	signer      ssh.Signer // server

	rbuf     []byte
	pr       packet.Reader
	pw       packet.Writer
	sid      []byte
	ourInit  []byte
	peerInit []byte
	algs     *kex.Algorithms
	// strictOn: both sides offered strict kex.
	strictOn bool
}

// hpNew makes a peer on one end of a net.Pipe with a read/write deadline
// so that a test cannot hang on it. Defaults: curve25519, ed25519,
// chacha20-poly1305, strict kex offered.
func hpNew(t testing.TB, conn net.Conn, server bool) *hpPeer {
	testKeys(t)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	p := &hpPeer{
		t: t, rw: conn, server: server,
		version: "SSH-2.0-handpeer_1.0", strict: true,
		kexAlgo: kex.Curve25519SHA256, hostKeyAlgo: kex.HostKeyED25519,
		cipher: cipher.Chacha20Poly1305, mac: cipher.HMACSHA256,
		signer: testEd25519,
	}
	return p
}

func (p *hpPeer) write(b []byte) error {
	_, err := p.rw.Write(b)
	return err
}

// fill reads more bytes into rbuf.
func (p *hpPeer) fill() error {
	var tmp [32 << 10]byte
	n, err := p.rw.Read(tmp[:])
	p.rbuf = append(p.rbuf, tmp[:n]...)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readLine returns the next line without CR LF.
func (p *hpPeer) readLine() (string, error) {
	for {
		if i := bytes.IndexByte(p.rbuf, '\n'); i >= 0 {
			line := strings.TrimSuffix(string(p.rbuf[:i]), "\r")
			p.rbuf = p.rbuf[i+1:]
			return line, nil
		}
		if err := p.fill(); err != nil {
			return "", err
		}
	}
}

// packet returns the framed bytes of payload under the current keys (and
// advances the sequence number).
func (p *hpPeer) packet(payload []byte) []byte { return p.pw.AppendPacket(nil, payload) }

func (p *hpPeer) writePacket(payload []byte) error { return p.write(p.packet(payload)) }

// readPacket returns the next packet payload (a copy).
func (p *hpPeer) readPacket() ([]byte, error) {
	for {
		if len(p.rbuf) > 0 {
			pl, n, err := p.pr.Next(p.rbuf)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				p.rbuf = p.rbuf[n:]
				return slices.Clone(pl), nil
			}
		}
		if err := p.fill(); err != nil {
			return nil, err
		}
	}
}

// readPacketSkip reads packets until one that is not IGNORE/DEBUG.
func (p *hpPeer) readPacketSkip() ([]byte, error) {
	for {
		pl, err := p.readPacket()
		if err != nil || (pl[0] != wire.MsgIgnore && pl[0] != wire.MsgDebug) {
			return pl, err
		}
	}
}

// kexInitPayload builds our first KEXINIT, with or without the strict
// marker.
func (p *hpPeer) kexInitPayload() []byte {
	role := kex.Client
	if p.server {
		role = kex.Server
	}
	prop := kex.Proposal{Kex: []string{p.kexAlgo}, HostKey: []string{p.hostKeyAlgo}, Ciphers: []string{p.cipher}, MACs: []string{p.mac}}
	m, err := prop.KexInit(role, true, nil)
	if err != nil {
		p.t.Fatalf("hand peer KEXINIT: %v", err)
	}
	if !p.strict {
		m.KexAlgos = slices.DeleteFunc(m.KexAlgos, func(s string) bool { return s == kex.StrictC || s == kex.StrictS })
	}
	p.ourInit = m.Marshal(nil)
	return p.ourInit
}

// versionLine is our identification line with CR LF.
func (p *hpPeer) versionLine() []byte { return []byte(p.version + "\r\n") }

// readVersion reads the peer's identification line (skipping nothing: our
// peer is sshtap, which sends none before it).
func (p *hpPeer) readVersion() error {
	l, err := p.readLine()
	if err != nil {
		return fmt.Errorf("hand peer: reading version: %w", err)
	}
	if !strings.HasPrefix(l, "SSH-2.0-") {
		return fmt.Errorf("hand peer: bad peer version %q", l)
	}
	p.peerVersion = l
	return nil
}

// readKexInit reads the peer's KEXINIT (skipping IGNORE/DEBUG).
func (p *hpPeer) readKexInit() error {
	pl, err := p.readPacketSkip()
	if err != nil {
		return fmt.Errorf("hand peer: reading KEXINIT: %w", err)
	}
	if pl[0] != wire.MsgKexInit {
		return fmt.Errorf("hand peer: got %s, want KEXINIT", wire.MsgName(pl[0]))
	}
	p.peerInit = pl
	return nil
}

// exchange runs the key exchange after both KEXINITs are out and in:
// method messages, NEWKEYS both ways, new keys in force. hook, if set, is
// called after our NEWKEYS is sent and the new outbound keys are in place.
func (p *hpPeer) exchange(afterNewKeys func() error) error {
	var ci, si wire.KexInit
	cInit, sInit := p.ourInit, p.peerInit
	if p.server {
		cInit, sInit = sInit, cInit
	}
	if err := ci.Unmarshal(cInit); err != nil {
		return err
	}
	if err := si.Unmarshal(sInit); err != nil {
		return err
	}
	algs, err := kex.Negotiate(&ci, &si)
	if err != nil {
		return err
	}
	p.algs = algs
	p.strictOn = kex.Has(ci.KexAlgos, kex.StrictC) && kex.Has(si.KexAlgos, kex.StrictS)
	cv, sv := []byte(p.version), []byte(p.peerVersion)
	if p.server {
		cv, sv = sv, cv
	}
	params := &kex.Params{Method: algs.Kex, HostKeyAlgo: algs.HostKey, ClientVersion: cv, ServerVersion: sv, ClientKexInit: cInit, ServerKexInit: sInit}
	if p.server {
		params.Role, params.HostKey = kex.Server, p.signer
	} else {
		params.Role = kex.Client
	}
	ex, err := kex.NewExchange(params)
	if err != nil {
		return err
	}
	out, err := ex.Start()
	if err != nil {
		return err
	}
	if out != nil {
		if err := p.writePacket(out); err != nil {
			return err
		}
	}
	var res *kex.Result
	for res == nil {
		pl, err := p.readPacket()
		if err != nil {
			return fmt.Errorf("hand peer: during kex: %w", err)
		}
		if pl[0] < 30 || pl[0] > 49 {
			return fmt.Errorf("hand peer: unexpected %s during kex", wire.MsgName(pl[0]))
		}
		if out, res, err = ex.Handle(pl); err != nil {
			return err
		}
		if out != nil {
			if err := p.writePacket(out); err != nil {
				return err
			}
		}
	}
	if p.sid == nil {
		p.sid = res.H
	}
	sealer, opener, err := p.keys(res)
	if err != nil {
		return err
	}
	if err := p.writePacket((&wire.NewKeys{}).Marshal(nil)); err != nil {
		return err
	}
	p.pw.SetSealer(sealer)
	if p.strictOn {
		p.pw.ResetSeq()
	}
	if afterNewKeys != nil {
		if err := afterNewKeys(); err != nil {
			return err
		}
	}
	pl, err := p.readPacket()
	if err != nil {
		return fmt.Errorf("hand peer: reading NEWKEYS: %w", err)
	}
	if pl[0] != wire.MsgNewKeys {
		return fmt.Errorf("hand peer: got %s, want NEWKEYS", wire.MsgName(pl[0]))
	}
	p.pr.SetOpener(opener)
	if p.strictOn {
		p.pr.ResetSeq()
	}
	return nil
}

func (p *hpPeer) keys(res *kex.Result) (cipher.Sealer, cipher.Opener, error) {
	a := p.algs
	type dir struct {
		c, m         string
		iv, key, mac byte
	}
	cs := dir{a.CipherCS, a.MACCS, 'A', 'C', 'E'}
	sc := dir{a.CipherSC, a.MACSC, 'B', 'D', 'F'}
	out, in := cs, sc
	if p.server {
		out, in = sc, cs
	}
	derive := func(d dir) (k, iv, mk []byte, err error) {
		kl, il, ml, err := cipher.Sizes(d.c, d.m)
		if err != nil {
			return nil, nil, nil, err
		}
		return kex.DeriveKey(res.Hash, res.K, res.H, p.sid, d.key, kl),
			kex.DeriveKey(res.Hash, res.K, res.H, p.sid, d.iv, il),
			kex.DeriveKey(res.Hash, res.K, res.H, p.sid, d.mac, ml), nil
	}
	k, iv, mk, err := derive(out)
	if err != nil {
		return nil, nil, err
	}
	s, err := cipher.NewSealer(out.c, out.m, k, iv, mk)
	if err != nil {
		return nil, nil, err
	}
	if k, iv, mk, err = derive(in); err != nil {
		return nil, nil, err
	}
	o, err := cipher.NewOpener(in.c, in.m, k, iv, mk)
	return s, o, err
}

// serveHandshake runs a whole server handshake the plain way: version,
// KEXINIT, kex, then answers the client's SERVICE_REQUEST.
func (p *hpPeer) serveHandshake() error {
	if err := p.keyExchange(p.kexInitPayload()); err != nil {
		return err
	}
	return p.serveService()
}

// keyExchange sends the identification string and kexInit, reads the
// Conn's, and runs the exchange.
func (p *hpPeer) keyExchange(kexInit []byte) error {
	if err := p.write(append(p.versionLine(), p.packet(kexInit)...)); err != nil {
		return err
	}
	if err := p.readVersion(); err != nil {
		return err
	}
	if err := p.readKexInit(); err != nil {
		return err
	}
	return p.exchange(nil)
}

// serveService answers the client's SERVICE_REQUEST for ssh-userauth.
func (p *hpPeer) serveService() error {
	pl, err := p.readPacketSkip()
	if err != nil {
		return fmt.Errorf("hand peer: reading SERVICE_REQUEST: %w", err)
	}
	var m wire.ServiceRequest
	if pl[0] != wire.MsgServiceRequest || m.Unmarshal(pl) != nil {
		return fmt.Errorf("hand peer: got %s, want SERVICE_REQUEST", wire.MsgName(pl[0]))
	}
	return p.writePacket((&wire.ServiceAccept{Service: m.Service}).Marshal(nil))
}

// hpGo runs f on a goroutine and returns a func that waits for its error.
func hpGo(f func() error) func() error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return func() error { return <-ch }
}

func hpIgnore(data string) []byte { return (&wire.Ignore{Data: []byte(data)}).Marshal(nil) }
func hpDebug(msg string) []byte   { return (&wire.Debug{Message: msg}).Marshal(nil) }

// plainPacket frames payload with no cipher and a throwaway sequence
// number: what a man in the middle can inject before NEWKEYS.
func plainPacket(payload []byte) []byte {
	var w packet.Writer
	return w.AppendPacket(nil, payload)
}

// hpClientAgainst runs an sshtap client against the hand-rolled server
// function srv over a net.Pipe and returns the client, its events up to the
// end of the handshake, its handshake error and srv's error.
func hpClientAgainst(t *testing.T, cfg *Config, srv func(p *hpPeer) error, setup func(p *hpPeer)) (*Conn, *Subscription, error, error) {
	t.Helper()
	a, b := net.Pipe()
	p := hpNew(t, b, true)
	if setup != nil {
		setup(p)
	}
	if cfg == nil {
		cfg = &Config{NoAuth: true}
	}
	if cfg.HostKeyCallback == nil {
		cfg.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	}
	c := ClientConn(a, cfg)
	sub := c.SubscribeBuffer(context.Background(), KindAll, 4096)
	wait := hpGo(func() error { return srv(p) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cerr := c.Handshake(ctx)
	if cerr != nil {
		// Let the hand peer see the end of the stream.
		c.Close()
	}
	serr := wait()
	t.Cleanup(func() {
		b.Close() // first, so that Close's DISCONNECT does not wait for a reader
		c.Close()
		sub.Close()
	})
	return c, sub, cerr, serr
}

// hpServerAgainst runs an sshtap server against the hand-rolled client
// function cli and returns the server, its events, its error from the
// transport handshake and cli's error.
func hpServerAgainst(t *testing.T, cfg *ServerConfig, cli func(p *hpPeer) error, setup func(p *hpPeer)) (*Conn, *Subscription, error, error) {
	t.Helper()
	a, b := net.Pipe()
	p := hpNew(t, a, false)
	if setup != nil {
		setup(p)
	}
	testKeys(t)
	if cfg == nil {
		cfg = &ServerConfig{}
	}
	if len(cfg.HostKeys) == 0 {
		cfg.HostKeys = []ssh.Signer{testEd25519}
	}
	s := ServerConn(b, cfg)
	sub := s.SubscribeBuffer(context.Background(), KindAll, 4096)
	wait := hpGo(func() error { return cli(p) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serr := serverKeyed(ctx, s)
	if serr != nil {
		s.Close()
	}
	cerr := wait()
	t.Cleanup(func() {
		a.Close()
		s.Close()
		sub.Close()
	})
	return s, sub, serr, cerr
}

// hpEvents drains sub without waiting beyond what is queued.
func hpEvents(sub *Subscription) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// ---------------------------------------------------------------------------
// A man in the middle (mitm) that parses one direction of a live stream
// into units (identification or banner lines, then packets) and lets a
// test rewrite each unit.

type mitmUnit struct {
	idx  int
	line bool   // a line before or including the identification string
	enc  bool   // after NEWKEYS
	msg  byte   // message number of a cleartext packet (0 when enc or line)
	raw  []byte // the bytes as received
}

// mitmPipe returns the client's and the server's stream ends with a relay
// between them. s2c and c2s, if set, rewrite the units of each direction:
// they return the bytes to forward (nil drops the unit). encTag is the tag
// size of the cipher in use after NEWKEYS, whose length must be in clear
// (AES-GCM, -etm); with encTag 0 encrypted bytes are passed through as
// they come, as units that are not packets.
func mitmPipe(t *testing.T, encTag int, s2c, c2s func(u mitmUnit) []byte) (client, server net.Conn) {
	t.Helper()
	c1, c2 := net.Pipe()
	s1, s2 := net.Pipe()
	var wg sync.WaitGroup
	stop := func() { c2.Close(); s2.Close() }
	wg.Add(2)
	go func() { defer wg.Done(); defer stop(); mitmRelay(s2, c2, encTag, s2c) }()
	go func() { defer wg.Done(); defer stop(); mitmRelay(c2, s2, encTag, c2s) }()
	t.Cleanup(func() { stop(); c1.Close(); s1.Close(); wg.Wait() })
	return c1, s1
}

func mitmRelay(src io.Reader, dst io.Writer, encTag int, edit func(u mitmUnit) []byte) {
	br := bufio.NewReaderSize(src, 64<<10)
	idx := 0
	emit := func(u mitmUnit) bool {
		u.idx = idx
		idx++
		out := u.raw
		if edit != nil {
			out = edit(u)
		}
		if len(out) == 0 {
			return true
		}
		_, err := dst.Write(out)
		return err == nil
	}
	// Lines up to and including the identification string.
	for {
		l, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if !emit(mitmUnit{line: true, raw: l}) {
			return
		}
		if bytes.HasPrefix(l, []byte("SSH-")) {
			break
		}
	}
	enc := false
	for {
		if enc && encTag == 0 {
			buf := make([]byte, 32<<10)
			n, err := br.Read(buf)
			if n > 0 && !emit(mitmUnit{enc: true, raw: buf[:n]}) {
				return
			}
			if err != nil {
				return
			}
			continue
		}
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if enc {
			n += encTag
		}
		if n > 1<<20 {
			return
		}
		raw := make([]byte, 4+n)
		copy(raw, hdr[:])
		if _, err := io.ReadFull(br, raw[4:]); err != nil {
			return
		}
		u := mitmUnit{enc: enc, raw: raw}
		if !enc && len(raw) > 5 {
			u.msg = raw[5]
		}
		if !emit(u) {
			return
		}
		if u.msg == wire.MsgNewKeys {
			enc = true
		}
	}
}

// ---------------------------------------------------------------------------
// Tests.

// mitmBeforeKexInit returns an editor that puts payload in front of the
// KEXINIT.
func mitmBeforeKexInit(payload []byte) func(u mitmUnit) []byte {
	return func(u mitmUnit) []byte {
		if u.msg == wire.MsgKexInit {
			return append(plainPacket(payload), u.raw...)
		}
		return u.raw
	}
}

// mitmAfterKexInit puts payload right after the KEXINIT.
func mitmAfterKexInit(payload []byte) func(u mitmUnit) []byte {
	return func(u mitmUnit) []byte {
		if u.msg == wire.MsgKexInit {
			return append(slices.Clone(u.raw), plainPacket(payload)...)
		}
		return u.raw
	}
}

// mitmHandshake runs an sshtap client and server through a relay and
// returns both handshake errors and the Conns.
func mitmHandshake(t *testing.T, encTag int, s2c, c2s func(u mitmUnit) []byte, ccfg *Config, scfg *ServerConfig) (pair, error, error) {
	t.Helper()
	cend, send := mitmPipe(t, encTag, s2c, c2s)
	p, cerr, serr := tryHandshake(cend, send, ccfg, scfg, 20*time.Second)
	t.Cleanup(func() { p.client.Close(); p.server.Close() })
	return p, cerr, serr
}

func wantStrictError(t *testing.T, who string, err error, contains string) {
	t.Helper()
	var se *StrictKexError
	if !errors.As(err, &se) {
		t.Fatalf("%s: error = %v, want a *StrictKexError", who, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("%s: error %q does not mention %q", who, err, contains)
	}
}

// mitmBeforeMsg puts payload right before the first cleartext packet of
// type msg.
func mitmBeforeMsg(msg byte, payload []byte) func(u mitmUnit) []byte {
	done := false
	return func(u mitmUnit) []byte {
		if !done && !u.enc && u.msg == msg {
			done = true
			return append(plainPacket(payload), u.raw...)
		}
		return u.raw
	}
}

// TestStrictBetweenSshtapPeers: two sshtap peers always agree on strict
// kex, on both sides, and report it in the initial KexEvent.
func TestStrictBetweenSshtapPeers(t *testing.T) {
	testKeys(t)
	a, b := net.Pipe()
	c := ClientConn(a, &Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	s := ServerConn(b, &ServerConfig{HostKeys: []ssh.Signer{testEd25519}, NoClientAuth: true})
	defer c.Close()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	csub := c.Subscribe(ctx, KindKex)
	ssub := s.Subscribe(ctx, KindKex)
	wait := hpGo(func() error { return s.Handshake(ctx) })
	if err := c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name string
		c    *Conn
		sub  *Subscription
	}{{"client", c, csub}, {"server", s, ssub}} {
		if !side.c.Strict() {
			t.Errorf("%s: Strict() = false", side.name)
		}
		evs := collect(t, side.sub, 10*time.Second, func(e Event) bool { _, ok := e.(*KexEvent); return ok })
		if ke := evs[len(evs)-1].(*KexEvent); !ke.Initial || !ke.Strict {
			t.Errorf("%s: initial KexEvent Initial=%v Strict=%v, want both", side.name, ke.Initial, ke.Strict)
		}
	}
}

// TestStrictRejectsMessageBeforeKexInit: with strict kex, KEXINIT must be
// the first packet; a man in the middle that slips a message in front of
// it (the first half of the Terrapin attack) is caught by either side.
func TestStrictRejectsMessageBeforeKexInit(t *testing.T) {
	for _, m := range []struct {
		name    string
		payload []byte
	}{
		{"ignore", hpIgnore("injected")},
		{"debug", hpDebug("injected")},
		{"unimplemented", (&wire.Unimplemented{Seq: 0}).Marshal(nil)},
	} {
		t.Run("client/"+m.name, func(t *testing.T) {
			t.Parallel()
			_, cerr, serr := mitmHandshake(t, 0, mitmBeforeKexInit(m.payload), nil, nil, nil)
			wantStrictError(t, "client", cerr, "first packet")
			if serr == nil {
				t.Errorf("server handshake succeeded though the client gave up")
			}
		})
		t.Run("server/"+m.name, func(t *testing.T) {
			t.Parallel()
			_, cerr, serr := mitmHandshake(t, 0, nil, mitmBeforeKexInit(m.payload), nil, nil)
			wantStrictError(t, "server", serr, "first packet")
			if cerr == nil {
				t.Errorf("client handshake succeeded though the server gave up")
			}
		})
	}
}

// TestStrictRejectsMessageDuringInitialKex: with strict kex, nothing but
// the key exchange's own messages may arrive until the first NEWKEYS.
func TestStrictRejectsMessageDuringInitialKex(t *testing.T) {
	for _, m := range []struct {
		name    string
		payload []byte
	}{
		{"ignore", hpIgnore("injected")},
		{"debug", hpDebug("injected")},
		{"unimplemented", (&wire.Unimplemented{Seq: 1}).Marshal(nil)},
	} {
		for _, where := range []struct {
			name string
			edit func(p []byte) func(mitmUnit) []byte
		}{
			{"after-kexinit", mitmAfterKexInit},
			{"before-newkeys", func(p []byte) func(mitmUnit) []byte { return mitmBeforeMsg(wire.MsgNewKeys, p) }},
		} {
			t.Run("client/"+m.name+"/"+where.name, func(t *testing.T) {
				t.Parallel()
				_, cerr, _ := mitmHandshake(t, 0, where.edit(m.payload), nil, nil, nil)
				wantStrictError(t, "client", cerr, "during initial key exchange")
			})
			t.Run("server/"+m.name+"/"+where.name, func(t *testing.T) {
				t.Parallel()
				_, _, serr := mitmHandshake(t, 0, nil, where.edit(m.payload), nil, nil)
				wantStrictError(t, "server", serr, "during initial key exchange")
			})
		}
	}
}

// TestStrictTerrapin: the Terrapin attack (CVE-2023-48795) on the server to
// client stream: inject an IGNORE before the server's KEXINIT, so the
// client's receive sequence number runs one ahead, and drop the first
// encrypted packet (the server's EXT_INFO), so it is back in step and the
// downgrade goes unnoticed. Strict kex must catch it.
func TestStrictTerrapin(t *testing.T) {
	tc := TransportConfig{Ciphers: []string{cipher.AES128GCM}} // length in clear: the relay can find packet ends
	dropped := 0
	s2c := func(u mitmUnit) []byte {
		switch {
		case u.msg == wire.MsgKexInit:
			return append(plainPacket(hpIgnore("terrapin")), u.raw...)
		case u.enc && dropped == 0:
			dropped++
			return nil
		}
		return u.raw
	}
	p, cerr, serr := mitmHandshake(t, 16, s2c, nil, &Config{NoAuth: true, TransportConfig: tc}, &ServerConfig{TransportConfig: tc})
	wantStrictError(t, "client", cerr, "first packet")
	if serr == nil {
		t.Errorf("server handshake succeeded")
	}
	if p.client.ServerSigAlgs() != nil {
		t.Errorf("client got EXT_INFO")
	}
}

// hpTerrapinServer is a hand-rolled server that plays Terrapin on itself:
// an IGNORE outside its own sequence numbering before KEXINIT (what a man
// in the middle injects) and its EXT_INFO sealed but never sent (what he
// drops). With drop false it only injects.
func hpTerrapinServer(drop bool) func(p *hpPeer) error {
	return func(p *hpPeer) error {
		out := append(p.versionLine(), plainPacket(hpIgnore("terrapin"))...)
		out = append(out, p.packet(p.kexInitPayload())...)
		if err := p.write(out); err != nil {
			return err
		}
		if err := p.readVersion(); err != nil {
			return err
		}
		if err := p.readKexInit(); err != nil {
			return err
		}
		ext := (&wire.ExtInfo{Extensions: []wire.Extension{{Name: "server-sig-algs", Value: []byte("ssh-ed25519")}}}).Marshal(nil)
		err := p.exchange(func() error {
			pkt := p.packet(ext)
			if drop {
				return nil
			}
			return p.write(pkt)
		})
		if err != nil {
			return err
		}
		return p.serveService()
	}
}

// TestStrictTerrapinControl shows what strict kex prevents: against a peer
// that does not offer it, the same attack (with chacha20-poly1305, whose
// nonce is the sequence number) goes through silently and the client never
// sees the EXT_INFO; injecting without dropping desynchronises the sequence
// numbers and the first encrypted packet fails authentication. When the
// hand-rolled server offers strict kex, the client refuses it.
func TestStrictTerrapinControl(t *testing.T) {
	t.Run("non-strict/inject+drop", func(t *testing.T) {
		c, sub, cerr, serr := hpClientAgainst(t, nil, hpTerrapinServer(true), func(p *hpPeer) { p.strict = false })
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
		}
		if c.Strict() {
			t.Errorf("Strict() = true against a peer without the marker")
		}
		sawIgnore := false
		for _, e := range hpEvents(sub) {
			switch e := e.(type) {
			case *ExtInfoEvent:
				t.Errorf("client saw the dropped EXT_INFO: %+v", e)
			case *IgnoreEvent:
				sawIgnore = sawIgnore || string(e.Data) == "terrapin"
			}
		}
		if !sawIgnore {
			t.Errorf("the injected IGNORE was not reported")
		}
		if c.ServerSigAlgs() != nil {
			t.Errorf("ServerSigAlgs() = %v, want none (EXT_INFO dropped)", c.ServerSigAlgs())
		}
	})
	t.Run("non-strict/inject-only", func(t *testing.T) {
		_, _, cerr, _ := hpClientAgainst(t, nil, hpTerrapinServer(false), func(p *hpPeer) { p.strict = false })
		var me *MACError
		if !errors.As(cerr, &me) {
			t.Fatalf("client error = %v, want a *MACError (sequence numbers out of step)", cerr)
		}
	})
	t.Run("strict/inject+drop", func(t *testing.T) {
		_, _, cerr, _ := hpClientAgainst(t, nil, hpTerrapinServer(true), nil)
		wantStrictError(t, "client", cerr, "first packet")
	})
}

// hpEarlyMessagesThenKex plays a peer that sends an IGNORE and a DEBUG
// before its KEXINIT and an IGNORE right after it, then runs the key
// exchange.
func hpEarlyMessagesThenKex(p *hpPeer) error {
	out := append(p.versionLine(), p.packet(hpIgnore("before kexinit"))...)
	out = append(out, p.packet(hpDebug("debug before kexinit"))...)
	out = append(out, p.packet(p.kexInitPayload())...)
	out = append(out, p.packet(hpIgnore("after kexinit"))...)
	if err := p.write(out); err != nil {
		return err
	}
	if err := p.readVersion(); err != nil {
		return err
	}
	if err := p.readKexInit(); err != nil {
		return err
	}
	return p.exchange(nil)
}

// TestStrictNotNegotiatedAcceptsEarlyMessages: without strict kex (a peer
// without the marker) messages before and during the initial kex are legal
// (RFC 4253 §11) and reported as events.
func TestStrictNotNegotiatedAcceptsEarlyMessages(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		srv := func(p *hpPeer) error {
			if err := hpEarlyMessagesThenKex(p); err != nil {
				return err
			}
			return p.serveService()
		}
		c, sub, cerr, serr := hpClientAgainst(t, nil, srv, func(p *hpPeer) { p.strict = false })
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, hand server %v", cerr, serr)
		}
		if c.Strict() {
			t.Errorf("Strict() = true against a peer without the marker")
		}
		hpWantEarlyEvents(t, hpEvents(sub), []string{"ignore:before kexinit", "debug:debug before kexinit", "ignore:after kexinit"})
	})
	t.Run("server", func(t *testing.T) {
		cli := hpEarlyMessagesThenKex
		s, sub, serr, cerr := hpServerAgainst(t, nil, cli, func(p *hpPeer) { p.strict = false })
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: server %v, hand client %v", serr, cerr)
		}
		if s.Strict() {
			t.Errorf("Strict() = true against a peer without the marker")
		}
		// The server is keyed (serverKeyed returns) a moment before its
		// transport goroutine publishes the KexEvent: wait for it rather
		// than drain what is queued.
		evs := collect(t, sub, 10*time.Second, func(e Event) bool { _, ok := e.(*KexEvent); return ok })
		hpWantEarlyEvents(t, evs, []string{"ignore:before kexinit", "debug:debug before kexinit", "ignore:after kexinit"})
	})
}

func hpWantEarlyEvents(t *testing.T, evs []Event, want []string) {
	t.Helper()
	var got []string
	kexDone := false
	for _, e := range evs {
		switch e := e.(type) {
		case *IgnoreEvent:
			got = append(got, "ignore:"+string(e.Data))
		case *DebugEvent:
			got = append(got, "debug:"+e.Message)
		case *KexEvent:
			kexDone = true
			if e.Strict {
				t.Errorf("KexEvent.Strict = true")
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if !kexDone {
		t.Errorf("no KexEvent")
	}
}

// TestStrictHandPeerRejected: the hand-rolled peers with the marker and an
// early IGNORE are refused by our client and server: the check does not
// depend on our own peer's behaviour.
func TestStrictHandPeerRejected(t *testing.T) {
	early := func(p *hpPeer) []byte {
		out := append(p.versionLine(), p.packet(hpIgnore("early"))...)
		return append(out, p.packet(p.kexInitPayload())...)
	}
	t.Run("client", func(t *testing.T) {
		_, _, cerr, _ := hpClientAgainst(t, nil, func(p *hpPeer) error {
			if err := p.write(early(p)); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, p.rw)
			return err
		}, nil)
		wantStrictError(t, "client", cerr, "first packet")
	})
	t.Run("server", func(t *testing.T) {
		_, _, serr, _ := hpServerAgainst(t, nil, func(p *hpPeer) error {
			if err := p.write(early(p)); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, p.rw)
			return err
		}, nil)
		wantStrictError(t, "server", serr, "first packet")
	})
}
