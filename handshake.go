package sshtap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap/cipher"
	"sshtap/internal/wire"
	"sshtap/kex"
)

// startKexLocked sends our KEXINIT and opens a key exchange round. From now
// until our NEWKEYS, writes other than key exchange messages wait
// (RFC 4253 §7.1). c.wmu is held.
func (c *Conn) startKexLocked(initial bool) (*kexRound, error) {
	return c.beginKexLocked(initial, false)
}

// beginKexLocked is startKexLocked; remote says the peer's KEXINIT started
// the exchange (reported in the KexStartEvent).
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
	hostKeyAlgos := c.clientHostKeyAlgos()
	if !c.isClient {
		hostKeyAlgos = c.serverHostKeyAlgos()
	}
	if len(hostKeyAlgos) == 0 {
		return nil, errors.New("sshtap: no usable host key algorithm (ServerConfig.HostKeys is empty?)")
	}
	if c.isClient {
		role = kex.Client
	}
	msg, err := c.cfg.proposal(hostKeyAlgos).KexInit(role, initial, c.cfg.rand())
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
	r.ourInitSeq = c.pw.Seq()
	if err := c.writeLocked(r.ourInit); err != nil {
		return nil, err
	}
	if c.hub.wants(KindKexStart) {
		c.hub.publish(&KexStartEvent{Header: now(), Initial: initial, Remote: remote})
	}
	return r, nil
}

func (c *Conn) clientHostKeyAlgos() []string {
	return orDefault(c.cfg.HostKeyAlgorithms, kex.DefaultHostKeyAlgos)
}

// serverHostKeyAlgos lists, in the configured (or default) order, the host
// key algorithms the server's keys can serve.
func (c *Conn) serverHostKeyAlgos() []string {
	have := map[string]bool{}
	var all []string
	for _, s := range c.scfg.HostKeys {
		for _, a := range kex.HostKeyAlgorithms(s, c.scfg.AllowSHA1RSA) {
			if !have[a] {
				have[a] = true
				all = append(all, a)
			}
		}
	}
	pref := c.cfg.HostKeyAlgorithms
	if len(pref) == 0 {
		pref = kex.SupportedHostKeyAlgos
	}
	var out []string
	for _, a := range pref {
		if have[a] {
			out = append(out, a)
		}
	}
	return out
}

func (c *Conn) serverSigner(algo string) ssh.Signer {
	for _, s := range c.scfg.HostKeys {
		for _, a := range kex.HostKeyAlgorithms(s, c.scfg.AllowSHA1RSA) {
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
	c.wmu.Lock()
	r := c.kex
	var err error
	if r == nil {
		// RFC 4253 §7.1: answer a KEXINIT with ours if we have not sent one.
		r, err = c.beginKexLocked(false, true)
	}
	c.wmu.Unlock()
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
		c.peerExtC = !c.isClient && kex.Has(peer.KexAlgos, kex.ExtInfoC)
		c.mu.Unlock()
	} else {
		c.mu.Lock()
		strict = c.strict
		c.mu.Unlock()
	}

	algs, err := kex.Negotiate(clientMsg, serverMsg)
	if err != nil {
		c.sendDisconnect(DisconnectKeyExchangeFailed, "no matching algorithm")
		return err
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
		c.sendDisconnect(DisconnectKeyExchangeFailed, "key exchange failed")
		return err
	}
	out, err := ex.Start()
	if err != nil {
		return err
	}
	if out != nil {
		if err := c.writeFromTransport(out); err != nil {
			return err
		}
	}
	var res *kex.Result
	for res == nil {
		p, _, err := c.readPacket()
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
				c.sendDisconnect(reason, "key exchange failed")
				return err
			}
			if out != nil {
				if err := c.writeFromTransport(out); err != nil {
					return err
				}
			}
			continue
		}
		if err := c.handleDuringKex(p, r.initial && strict); err != nil {
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

	// Send NEWKEYS and switch the outbound keys in one step (RFC 4253 §7.3),
	// then release held writes.
	c.wmu.Lock()
	err = c.writeLocked((&wire.NewKeys{}).Marshal(nil))
	if err == nil {
		c.pw.SetSealer(sealer)
		if strict {
			c.pw.ResetSeq() // strict kex: reset after each NEWKEYS sent
		}
		c.wLimit = c.cfg.rekeyBytes()
		r.sentNewKeys = true
		if r.initial && c.peerExtCLocked() {
			// RFC 8308 §2.4: the server's EXT_INFO is the first packet
			// after its first NEWKEYS.
			err = c.writeLocked(c.serverExtInfo())
		}
		for _, q := range c.queued {
			if err == nil {
				err = c.writeLocked(q)
			}
		}
		c.queued = nil
	}
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	r.openWrites()

	// Wait for the peer's NEWKEYS, then switch the inbound keys.
	for {
		p, _, err := c.readPacket()
		if err != nil {
			return err
		}
		if p[0] == wire.MsgNewKeys {
			break
		}
		if err := c.handleDuringKex(p, r.initial && strict); err != nil {
			return err
		}
	}
	c.pr.SetOpener(opener)
	if strict {
		c.pr.ResetSeq() // strict kex: reset after each NEWKEYS received
	}
	c.rAlgs = readDirection(algs, c.isClient)
	c.rLimit = c.cfg.rekeyBytes()

	pub := publicAlgorithms(algs)
	c.mu.Lock()
	c.algs = pub
	if c.sessionID == nil {
		c.sessionID = sessionID
		c.hostKey = res.HostKeyBlob
	}
	c.mu.Unlock()

	c.wmu.Lock()
	if c.kex == r {
		c.kex = nil
	}
	if !c.keyed {
		close(c.keyedCh)
	}
	c.keyed = true
	if iv := c.cfg.rekeyInterval(); iv > 0 {
		if c.rekeyTmr == nil {
			c.rekeyTmr = time.AfterFunc(iv, c.timedRekey)
		} else {
			c.rekeyTmr.Reset(iv)
		}
	}
	c.wmu.Unlock()
	if !r.initial {
		c.rekeys.Add(1)
	}
	if c.hub.wants(KindKex) {
		c.hub.publish(&KexEvent{
			Header:     now(),
			Initial:    r.initial,
			Strict:     strict,
			Algorithms: pub,
			Duration:   time.Since(r.start),
			HostKey:    append([]byte(nil), res.HostKeyBlob...),
		})
	}
	r.finish(nil)
	if r.initial && (!c.isClient || c.ccfg.NoServiceRequest) {
		c.transportIsReady()
	} else if r.initial {
		// The client continues with the service request (RFC 4253 §10).
		m := wire.ServiceRequest{Service: "ssh-userauth"}
		return c.writeFromTransport(m.Marshal(nil))
	}
	return nil
}

func (c *Conn) peerExtCLocked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerExtC
}

// serverSigAlgs are the public key algorithms we accept for user
// authentication, announced in server-sig-algs (RFC 8308 §3.1).
var serverSigAlgs = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

func (c *Conn) serverExtInfo() []byte {
	m := wire.ExtInfo{Extensions: []wire.Extension{
		{Name: "server-sig-algs", Value: []byte(joinNames(serverSigAlgs))},
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
			c.sendDisconnect(DisconnectHostKeyNotVerifiable, "host key changed")
			return &HostKeyError{Err: errors.New("host key changed during rekey")}
		}
		return nil
	}
	cb := c.ccfg.HostKeyCallback
	if cb == nil {
		c.sendDisconnect(DisconnectHostKeyNotVerifiable, "host key not verifiable")
		return &HostKeyError{Err: errors.New("Config.HostKeyCallback is nil (use knownhosts.New or ssh.InsecureIgnoreHostKey)")}
	}
	addr := c.addr
	remote := c.RemoteAddr()
	if remote == nil {
		remote = &net.TCPAddr{IP: net.IPv4zero}
	}
	if addr == "" {
		addr = remote.String()
	}
	if err := cb(addr, remote, res.HostKey); err != nil {
		c.sendDisconnect(DisconnectHostKeyNotVerifiable, "host key not verifiable")
		return &HostKeyError{Err: err}
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
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.kex == nil && c.werr == nil {
		c.startKexLocked(false)
	}
}

// strictViolation ends the connection for a strict kex violation.
func (c *Conn) strictViolation(msg string) error {
	c.sendDisconnect(DisconnectProtocolError, "strict KEX violation: "+msg)
	return &StrictKexError{Msg: msg}
}

func (c *Conn) protocolError(msg string, err error) error {
	c.sendDisconnect(DisconnectProtocolError, msg)
	return &ProtocolViolation{Msg: msg, Err: err}
}

// handleDuringKex handles a non-method packet received inside a key
// exchange. RFC 4253 §7.1 lets the peer send only transport generic
// messages then; under strict kex, during the initial exchange, not even
// those (kex-strict-*-v00@openssh.com).
//
// A DISCONNECT is always honoured, strict or not: it ends the connection,
// which is what strict kex asks for, and the peer's reason (say, a host
// key its user refused) is the error worth reporting, as OpenSSH does.
func (c *Conn) handleDuringKex(p []byte, strictInitial bool) error {
	t := p[0]
	if t == wire.MsgDisconnect {
		return c.handleGeneric(p)
	}
	if strictInitial {
		return c.strictViolation(fmt.Sprintf("unexpected %s during initial key exchange", wire.MsgName(t)))
	}
	switch t {
	case wire.MsgIgnore, wire.MsgDebug, wire.MsgUnimplemented:
		return c.handleGeneric(p)
	}
	return c.protocolError(fmt.Sprintf("unexpected %s during key exchange", wire.MsgName(t)), nil)
}
