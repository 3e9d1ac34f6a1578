package sshtap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/internal/wire"
	"sshtap/kex"
)

// beginKexLocked queues our KEXINIT and opens a key exchange round; remote
// says the peer's KEXINIT started it (reported in the KexStartEvent). From
// now until our NEWKEYS, other messages are held (RFC 4253 §7.1: "Once a
// party has sent a SSH_MSG_KEXINIT message for key exchange or re-exchange,
// until it has sent a SSH_MSG_NEWKEYS message, it MUST NOT send any
// messages other than" transport, algorithm negotiation and key exchange
// method messages). The caller kicks the queue after unlocking. omu is
// held.
func (c *Conn) beginKexLocked(initial, remote bool) (*kexRound, error) {
	if c.kex != nil {
		return c.kex, nil
	}
	if !initial && !remote && !c.isClient && !c.authenticated.Load() && !c.preAuthRekey {
		// OpenSSH's client dies on a KEXINIT before authentication
		// ("client can't cope with rekeying pre-auth"), so a server does
		// not start one; it does answer one a client starts (remote).
		return nil, ErrRekeyBeforeAuth
	}
	role := kex.Server
	var hostKeyAlgos []string
	var err error
	if c.isClient {
		hostKeyAlgos, err = c.cfg.hostKeyAlgorithms()
	} else if _, err = c.scfg.publicKeyAlgorithms(); err == nil {
		hostKeyAlgos, err = c.serverHostKeyAlgos()
	}
	if err != nil {
		return nil, err
	}
	if len(hostKeyAlgos) == 0 {
		return nil, errors.New("sshtap: no usable host key algorithm (ServerConfig.HostKeys is empty?)")
	}
	if c.isClient {
		role = kex.Client
	}
	prop, err := c.cfg.proposal(hostKeyAlgos)
	if err != nil {
		return nil, err
	}
	msg, err := prop.KexInit(role, initial, c.cfg.rand())
	if err != nil {
		return nil, err
	}
	r := &kexRound{
		initial:     initial,
		start:       time.Now(),
		ourMsg:      msg,
		ourInit:     msg.Marshal(nil),
		writesOpen:  make(chan struct{}),
		finished:    make(chan struct{}),
		remoteFirst: remote,
	}
	c.kex = r
	c.pushLocked(r.ourInit, outPacket{round: r})
	if c.hub.wants(KindKexStart) {
		c.hub.publish(&KexStartEvent{Header: now(), Initial: initial, Remote: remote})
	}
	return r, nil
}

// releaseHeldLocked moves the messages held during our key exchange to the
// queue, in order. omu is held.
func (c *Conn) releaseHeldLocked() {
	for _, p := range c.held {
		c.pushLocked(p, outPacket{})
	}
	c.held, c.heldBytes = nil, 0
}

// serverHostKeyAlgos lists, in the configured (or default) order, the host
// key algorithms the server's keys can serve.
func (c *Conn) serverHostKeyAlgos() ([]string, error) {
	pref := kex.SupportedHostKeyAlgos
	if len(c.cfg.HostKeyAlgorithms) > 0 {
		var err error
		if pref, err = c.cfg.hostKeyAlgorithms(); err != nil {
			return nil, err
		}
	}
	have := map[string]bool{}
	sha1 := c.serverAllowsSHA1RSA()
	for _, s := range c.scfg.HostKeys {
		for _, a := range kex.HostKeyAlgorithms(s, sha1) {
			have[a] = true
		}
	}
	var out []string
	for _, a := range pref {
		if have[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// serverAllowsSHA1RSA reports whether the server signs with ssh-rsa
// (SHA-1): when ServerConfig.AllowSHA1RSA says so, or when the configured
// HostKeyAlgorithms name ssh-rsa or its certificate form.
func (c *Conn) serverAllowsSHA1RSA() bool {
	if c.scfg.AllowSHA1RSA {
		return true
	}
	if len(c.cfg.HostKeyAlgorithms) == 0 {
		return false
	}
	l, err := c.cfg.hostKeyAlgorithms()
	return err == nil && (kex.Has(l, kex.HostKeyRSA) || kex.Has(l, kex.HostKeyRSACert))
}

func (c *Conn) serverSigner(algo string) ssh.Signer {
	sha1 := c.serverAllowsSHA1RSA()
	for _, s := range c.scfg.HostKeys {
		for _, a := range kex.HostKeyAlgorithms(s, sha1) {
			if a == algo {
				return s
			}
		}
	}
	return nil
}

// runKex runs one key exchange round on the transport goroutine, from the
// peer's KEXINIT (payload, received with sequence number seq) to the peer's
// NEWKEYS.
func (c *Conn) runKex(payload []byte, seq uint32) error {
	peerInit := append([]byte(nil), payload...) // hashed as received (RFC 4253 §8)
	var peer wire.KexInit
	if err := peer.Unmarshal(peerInit); err != nil {
		return c.protocolError("bad KEXINIT", err)
	}
	c.omu.Lock()
	r := c.kex
	var err error
	if r == nil {
		if err := c.peerKexAllowed(); err != nil {
			c.omu.Unlock()
			return c.abort(err, DisconnectProtocolError, err.Error())
		}
		// RFC 4253 §7.1: answer a KEXINIT with ours if we have not sent one.
		r, err = c.beginKexLocked(false, true)
	}
	if r != nil {
		r.peerKexInit = true
	}
	c.omu.Unlock()
	c.kick()
	if err != nil {
		return err
	}

	clientMsg, serverMsg := r.ourMsg, &peer
	clientInit, serverInit := r.ourInit, peerInit
	if !c.isClient {
		clientMsg, serverMsg = serverMsg, clientMsg
		clientInit, serverInit = serverInit, clientInit
	}
	strict := false
	if r.initial {
		// Strict kex: we always offer it, so it is on when the peer offers it
		// in its first KEXINIT, and then KEXINIT must have been the first
		// packet the peer sent.
		marker := kex.StrictS
		if !c.isClient {
			marker = kex.StrictC
		}
		strict = kex.Has(peer.KexAlgos, marker)
		if strict && seq != 0 {
			return c.strictViolation("KEXINIT was not the first packet")
		}
		c.mu.Lock()
		c.strict = strict
		c.peerExtInfoC = !c.isClient && kex.Has(peer.KexAlgos, kex.ExtInfoC)
		c.mu.Unlock()
	} else {
		c.mu.Lock()
		strict = c.strict
		c.mu.Unlock()
	}

	algs, err := kex.Negotiate(clientMsg, serverMsg)
	if err != nil {
		return c.abort(err, DisconnectKeyExchangeFailed, "no matching algorithm")
	}
	// RFC 4253 §7: a wrongly guessed first kex packet from the peer is
	// ignored. (We never guess.)
	discardGuess := peer.FirstKexFollows && kex.GuessWrong(clientMsg, serverMsg)

	c.mu.Lock()
	sessionID := c.sessionID
	clientVersion, serverVersion := c.clientVersion, c.serverVersion
	c.mu.Unlock()

	params := &kex.Params{
		Role:          kex.Server,
		Method:        algs.Kex,
		HostKeyAlgo:   algs.HostKey,
		Rand:          c.cfg.rand(),
		ClientVersion: clientVersion,
		ServerVersion: serverVersion,
		ClientKexInit: clientInit,
		ServerKexInit: serverInit,
	}
	if c.isClient {
		params.Role = kex.Client
	} else {
		params.HostKey = c.serverSigner(algs.HostKey)
		params.Groups = c.scfg.GexGroups
	}
	ex, err := kex.NewExchange(params)
	if err != nil {
		return c.abort(err, DisconnectKeyExchangeFailed, "key exchange failed")
	}
	out, err := ex.Start()
	if err != nil {
		return err
	}
	if out != nil {
		if err := c.queue(out); err != nil {
			return err
		}
	}
	var res *kex.Result
	for res == nil {
		p, seq, err := c.readPacket()
		if err != nil {
			return err
		}
		if discardGuess {
			discardGuess = false
			continue
		}
		if t := p[0]; t >= 30 && t <= 49 {
			out, res, err = ex.Handle(p)
			if err != nil {
				reason := DisconnectKeyExchangeFailed
				var pe *kex.ProtocolError
				if errors.As(err, &pe) {
					reason = DisconnectProtocolError
				}
				return c.abort(err, reason, "key exchange failed")
			}
			if out != nil {
				if err := c.queue(out); err != nil {
					return err
				}
			}
			continue
		}
		if err := c.handleDuringKex(p, seq, r.initial, strict); err != nil {
			return err
		}
	}

	if c.isClient {
		if err := c.checkHostKey(res, r.initial); err != nil {
			return err
		}
	}
	if sessionID == nil {
		sessionID = res.H
	}
	sealer, opener, err := c.newKeys(res, algs, sessionID)
	if err != nil {
		return err
	}

	// Queue NEWKEYS with the switch to the new outbound keys (RFC 4253
	// §7.3), then release the held messages after it.
	c.mu.Lock()
	extInfo := r.initial && c.peerExtInfoC
	c.mu.Unlock()
	c.omu.Lock()
	if c.err != nil {
		err := c.err
		c.omu.Unlock()
		return err
	}
	wcomp := algs.CompressionSC
	if c.isClient {
		wcomp = algs.CompressionCS
	}
	c.pushLocked((&wire.NewKeys{}).Marshal(nil), outPacket{sealer: sealer, strict: strict, comp: wcomp})
	r.sentNewKeys = true
	if extInfo {
		// RFC 8308 §2.4: the server's EXT_INFO is the first packet after
		// its first NEWKEYS.
		c.pushLocked(c.serverExtInfo(), outPacket{})
	}
	c.releaseHeldLocked()
	r.openWritesLocked()
	c.omu.Unlock()
	c.kick()

	// Wait for the peer's NEWKEYS, then switch the inbound keys.
	for {
		p, seq, err := c.readPacket()
		if err != nil {
			return err
		}
		if p[0] == wire.MsgNewKeys {
			break
		}
		if err := c.handleDuringKex(p, seq, r.initial, strict); err != nil {
			return err
		}
	}
	c.pr.SetOpener(opener)
	if strict {
		c.pr.ResetSeq() // strict kex: reset after each NEWKEYS received
	}
	c.rAlgs = readDirection(algs, c.isClient)
	c.setReadCompression(c.rAlgs.Compression)
	c.rLimit = c.cfg.rekeyBytes()

	pub := publicAlgorithms(algs)
	c.mu.Lock()
	c.algs = pub
	if c.sessionID == nil {
		c.sessionID = sessionID
		c.hostKey = res.HostKeyBlob
	}
	c.mu.Unlock()

	c.omu.Lock()
	if c.kex == r {
		c.kex = nil
	}
	if iv := c.cfg.rekeyInterval(); iv > 0 && c.err == nil {
		if c.rekeyTimer == nil {
			c.rekeyTimer = time.AfterFunc(iv, c.timedRekey)
		} else {
			c.rekeyTimer.Reset(iv)
		}
	}
	c.omu.Unlock()
	if !c.keyed.Swap(true) {
		close(c.keyedCh)
	}
	if !r.initial {
		c.rekeys.Add(1)
	}
	c.kexTrafficMark = c.trafficBesidesReads()
	if c.hub.wants(KindKex) {
		c.hub.publish(&KexEvent{
			Header:     now(),
			Initial:    r.initial,
			Strict:     strict,
			Algorithms: pub,
			Duration:   time.Since(r.start),
			HostKey:    append([]byte(nil), res.HostKeyBlob...),
			Legacy:     pub.Legacy(),
		})
	}
	r.finish(nil)
	if r.initial && (!c.isClient || c.ccfg.NoServiceRequest) {
		c.setAuthReady()
	} else if r.initial {
		// The client continues with the service request (RFC 4253 §10).
		m := wire.ServiceRequest{Service: "ssh-userauth"}
		return c.queue(m.Marshal(nil))
	}
	return nil
}

// serverExtInfo announces, among others, the public key algorithms we
// accept for user authentication in server-sig-algs (RFC 8308 §3.1).
func (c *Conn) serverExtInfo() []byte {
	sigAlgs, err := c.scfg.publicKeyAlgorithms()
	if err != nil {
		// Refused at the first key exchange (checkServerConfig); the
		// defaults keep a later call harmless.
		sigAlgs = DefaultServerPublicKeyAlgorithms
	}
	m := wire.ExtInfo{Extensions: []wire.Extension{
		{Name: "server-sig-algs", Value: []byte(joinNames(sigAlgs))},
		{Name: "ping@openssh.com", Value: []byte("0")},
		// OpenSSH PROTOCOL §3.1: the server accepts the
		// publickey-hostbound-v00@openssh.com method.
		{Name: "publickey-hostbound@openssh.com", Value: []byte("0")},
	}}
	return m.Marshal(nil)
}

func joinNames(n []string) string {
	var b bytes.Buffer
	for i, s := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

// checkHostKey runs the HostKeyCallback on the first key exchange; a rekey
// must present the same host key.
func (c *Conn) checkHostKey(res *kex.Result, initial bool) error {
	if !initial {
		if !bytes.Equal(res.HostKeyBlob, c.HostKey()) {
			return c.abort(&HostKeyError{Err: errors.New("host key changed during rekey")}, DisconnectHostKeyNotVerifiable, "host key changed")
		}
		return nil
	}
	cb := c.ccfg.HostKeyCallback
	if cb == nil {
		err := &HostKeyError{Err: errors.New("Config.HostKeyCallback is nil (use knownhosts.New or ssh.InsecureIgnoreHostKey)")}
		return c.abort(err, DisconnectHostKeyNotVerifiable, "host key not verifiable")
	}
	addr := c.addr
	remote := c.RemoteAddr()
	if remote == nil {
		remote = &net.TCPAddr{IP: net.IPv4zero}
	}
	if addr == "" {
		addr = remote.String()
	}
	var err error
	c.callback(func() { err = cb(addr, remote, res.HostKey) })
	if err != nil {
		return c.abort(&HostKeyError{Err: err}, DisconnectHostKeyNotVerifiable, "host key not verifiable")
	}
	return nil
}

// newKeys derives the keys of both directions (RFC 4253 §7.2) and builds
// our sealer (outbound) and opener (inbound).
func (c *Conn) newKeys(res *kex.Result, a *kex.Algorithms, sessionID []byte) (cipher.Sealer, cipher.Opener, error) {
	type dir struct {
		cipher, mac     string
		ivL, keyL, macL byte
	}
	cs := dir{a.CipherCS, a.MACCS, 'A', 'C', 'E'}
	sc := dir{a.CipherSC, a.MACSC, 'B', 'D', 'F'}
	derive := func(d dir) (key, iv, macKey []byte, err error) {
		kl, il, ml, err := cipher.Sizes(d.cipher, d.mac)
		if err != nil {
			return nil, nil, nil, err
		}
		iv = kex.DeriveKey(res.Hash, res.K, res.H, sessionID, d.ivL, il)
		key = kex.DeriveKey(res.Hash, res.K, res.H, sessionID, d.keyL, kl)
		macKey = kex.DeriveKey(res.Hash, res.K, res.H, sessionID, d.macL, ml)
		return key, iv, macKey, nil
	}
	out, in := cs, sc
	if !c.isClient {
		out, in = sc, cs
	}
	k, iv, mk, err := derive(out)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := cipher.NewSealer(out.cipher, out.mac, k, iv, mk)
	if err != nil {
		return nil, nil, err
	}
	k, iv, mk, err = derive(in)
	if err != nil {
		return nil, nil, err
	}
	opener, err := cipher.NewOpener(in.cipher, in.mac, k, iv, mk)
	if err != nil {
		return nil, nil, err
	}
	return sealer, opener, nil
}

func publicAlgorithms(a *kex.Algorithms) Algorithms {
	return Algorithms{
		Kex:            a.Kex,
		HostKey:        a.HostKey,
		ClientToServer: DirectionAlgorithms{Cipher: a.CipherCS, MAC: a.MACCS, Compression: a.CompressionCS},
		ServerToClient: DirectionAlgorithms{Cipher: a.CipherSC, MAC: a.MACSC, Compression: a.CompressionSC},
	}
}

func readDirection(a *kex.Algorithms, isClient bool) DirectionAlgorithms {
	p := publicAlgorithms(a)
	if isClient {
		return p.ServerToClient
	}
	return p.ClientToServer
}

// timedRekey starts a key exchange when RekeyInterval has passed.
func (c *Conn) timedRekey() {
	c.omu.Lock()
	if c.kex == nil && c.err == nil {
		c.beginKexLocked(false, false)
	}
	c.omu.Unlock()
	c.kick()
}

// strictViolation ends the connection for a strict kex violation.
func (c *Conn) strictViolation(msg string) error {
	return c.abort(&StrictKexError{Msg: msg}, DisconnectProtocolError, "strict KEX violation: "+msg)
}

// protocolError ends the connection for a peer's protocol violation.
func (c *Conn) protocolError(msg string, err error) error {
	return c.abort(&ProtocolViolation{Msg: msg, Err: err}, DisconnectProtocolError, msg)
}

// handleDuringKex handles a packet (received with sequence number seq)
// that is not a key exchange method message, inside a key exchange.
//
// RFC 4253 §7.1 lets the peer send only transport generic messages after
// its KEXINIT; under strict kex (kex-strict-*-v00@openssh.com), during the
// initial exchange, not even those. A rekey is more lenient, as OpenSSH
// is: connection layer messages (50 and up) that a peer sends right after
// its KEXINIT (AsyncSSH does, its data already in flight) are dispatched
// as usual; only other transport messages are refused.
//
// A DISCONNECT is always honoured, strict or not: it ends the connection,
// which is what strict kex asks for, and the peer's reason (say, a host
// key its user refused) is the error worth reporting, as OpenSSH does.
func (c *Conn) handleDuringKex(p []byte, seq uint32, initial, strict bool) error {
	t := p[0]
	if t == wire.MsgDisconnect {
		return c.handleGeneric(p)
	}
	if initial && strict {
		return c.strictViolation(fmt.Sprintf("unexpected %s during initial key exchange", wire.MsgName(t)))
	}
	switch t {
	case wire.MsgIgnore, wire.MsgDebug, wire.MsgUnimplemented:
		return c.handleGeneric(p)
	}
	if !initial && t >= 50 {
		return c.dispatch(p, seq)
	}
	return c.protocolError(fmt.Sprintf("unexpected %s during key exchange", wire.MsgName(t)), nil)
}

// freeKexTraffic is the traffic (both directions, since the previous key
// exchange) after which a peer may start a key exchange without counting
// against TransportConfig.PeerKexLimit.
const freeKexTraffic = 256 << 10

// peerKexAllowed applies TransportConfig.PeerKexLimit to a key exchange
// the peer starts (transport goroutine only). A key exchange costs far
// more CPU than it takes the peer to ask for one; one after real traffic
// (an OpenSSH RekeyLimit) is always allowed, others draw on a bucket that
// refills at the limit's rate.
//
// The finite-field groups cost tens of milliseconds per exchange (8192-bit
// group 18 the most), too much for traffic to pay for: exchanges with them
// always count. omu is held.
func (c *Conn) peerKexAllowed() error {
	limit := c.cfg.peerKexLimit(c.isClient)
	if limit <= 0 {
		return nil
	}
	c.mu.Lock()
	finiteField := strings.HasPrefix(c.algs.Kex, "diffie-hellman-")
	c.mu.Unlock()
	// The packet reader counts the bytes of the packets read since the
	// peer's NEWKEYS, that is since the last exchange.
	traffic := c.pr.Stats().Bytes + c.trafficBesidesReads() - c.kexTrafficMark
	if !finiteField && traffic >= freeKexTraffic {
		return nil
	}
	now := time.Now()
	if c.kexTokenTime.IsZero() {
		c.kexTokens = float64(limit)
	} else {
		c.kexTokens = min(float64(limit), c.kexTokens+now.Sub(c.kexTokenTime).Minutes()*float64(limit))
	}
	c.kexTokenTime = now
	if c.kexTokens < 1 {
		return &ProtocolViolation{Msg: fmt.Sprintf("too many key exchanges: more than %d a minute with little traffic in between", limit)}
	}
	c.kexTokens--
	return nil
}

// trafficBesidesReads is the bytes written, plus what compression saved
// each way: payloads count at their uncompressed size, as OpenSSH's
// RekeyLimit counts them.
func (c *Conn) trafficBesidesReads() uint64 {
	return c.bytesOut.Load() + c.zIn[0].Load() - c.zIn[1].Load() + c.zOut[0].Load() - c.zOut[1].Load()
}
