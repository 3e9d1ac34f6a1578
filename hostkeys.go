package sshtap

// Host key rotation, the server's side (OpenSSH PROTOCOL §2.5): after user
// authentication the server announces all its host keys
// (hostkeys-00@openssh.com), and proves it holds the ones a client asks
// about (hostkeys-prove-00@openssh.com), so that a client can learn new
// keys before the old one is retired.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

// plainHostKeys returns the server's host keys as public key blobs, the
// keys of certificate signers included (PROTOCOL §2.5 announces plain
// keys), each once, in ServerConfig.HostKeys order.
func (c *Conn) plainHostKeys() [][]byte {
	var blobs [][]byte
	for _, s := range c.scfg.HostKeys {
		b := plainKey(s.PublicKey()).Marshal()
		if !slices.ContainsFunc(blobs, func(x []byte) bool { return bytes.Equal(x, b) }) {
			blobs = append(blobs, b)
		}
	}
	return blobs
}

// announceHostKeys sends hostkeys-00@openssh.com, as sshd does after user
// authentication ("the server may send ... all its host keys"; no reply).
func (c *Conn) announceHostKeys(ctx context.Context) {
	if c.scfg.NoHostKeyAnnouncement {
		return
	}
	data := (&wire.HostKeys{Keys: c.plainHostKeys()}).Append(nil)
	// Written directly: SendGlobalRequest would wait for the handshake,
	// which is what runs this.
	m := wire.GlobalRequest{Name: wire.RequestHostKeys, WantReply: false, Data: data}
	c.writePacket(ctx, m.Marshal(nil))
}

// proveHostKeys answers hostkeys-prove-00@openssh.com: for each key asked
// about, in order, a signature by that host key over
//
//	string "hostkeys-prove-00@openssh.com"
//	string session identifier
//	string hostkey
//
// (PROTOCOL §2.5); REQUEST_FAILURE if one is not ours. It runs on the
// transport goroutine, as sshd answers it, so that the reply precedes
// whatever the client's later requests cause (a client may leave when its
// command ends, and OpenSSH's records the keys only with the proof).
func (c *Conn) proveHostKeys(r *Request) {
	req, err := wire.ParseHostKeys(r.Payload)
	if err != nil || len(req.Keys) == 0 {
		r.Reply(false, nil)
		return
	}
	sid := c.SessionID()
	var sigs [][]byte
	for _, blob := range req.Keys {
		signer := c.hostSignerFor(blob)
		if signer == nil {
			r.Reply(false, nil)
			return
		}
		data := hostKeyProofData(sid, blob)
		var sig *ssh.Signature
		if as, ok := signer.(ssh.AlgorithmSigner); ok && plainKey(signer.PublicKey()).Type() == ssh.KeyAlgoRSA {
			// OpenSSH signs with rsa-sha2-512 for clients that know it;
			// SHA-1 signatures are not offered by default anywhere else.
			sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
		} else {
			sig, err = signer.Sign(rand.Reader, data)
		}
		if err != nil {
			r.Reply(false, nil)
			return
		}
		sigs = append(sigs, ssh.Marshal(sig))
	}
	r.Reply(true, (&wire.HostKeys{Keys: sigs}).Append(nil))
}

// hostSignerFor returns the host key signer whose plain public key is
// blob, or nil.
func (c *Conn) hostSignerFor(blob []byte) ssh.Signer {
	for _, s := range c.scfg.HostKeys {
		if bytes.Equal(plainKey(s.PublicKey()).Marshal(), blob) {
			return s
		}
	}
	return nil
}

// plainKey is k itself, or the certified key for a certificate.
func plainKey(k ssh.PublicKey) ssh.PublicKey {
	if cert, ok := k.(*ssh.Certificate); ok {
		return cert.Key
	}
	return k
}

// hostKeyProofData is what a hostkeys-prove-00@openssh.com signature
// covers (PROTOCOL §2.5).
func hostKeyProofData(sessionID, blob []byte) []byte {
	data := wire.AppendString(nil, wire.RequestHostKeysProve)
	data = wire.AppendBytes(data, sessionID)
	return wire.AppendBytes(data, blob)
}

// HostKeyProofError says which announced host key the server failed to
// prove.
type HostKeyProofError struct {
	Key ssh.PublicKey // nil when the whole request was refused
	Err error
}

func (e *HostKeyProofError) Error() string {
	if e.Key == nil {
		return "sshtap: hostkeys-prove: " + e.Err.Error()
	}
	return "sshtap: hostkeys-prove: " + e.Key.Type() + " " + ssh.FingerprintSHA256(e.Key) + ": " + e.Err.Error()
}

func (e *HostKeyProofError) Unwrap() error { return e.Err }

// ProveHostKeys asks the server to prove it holds keys
// (hostkeys-prove-00@openssh.com, OpenSSH PROTOCOL §2.5), typically keys
// from a *HostKeysEvent that the client does not know yet, and checks each
// signature against this connection's session identifier. It returns nil
// when every key is proven, and a *HostKeyProofError otherwise: only
// proven keys may be trusted (OpenSSH's UpdateHostKeys records nothing
// else). Either way it publishes a *HostKeyProofEvent with the outcome.
// Client only; it waits for the reply, bounded by ctx.
func (c *Conn) ProveHostKeys(ctx context.Context, keys []ssh.PublicKey) error {
	if !c.isClient {
		return errors.New("sshtap: ProveHostKeys is for clients")
	}
	blobs := make([][]byte, len(keys))
	for i, k := range keys {
		blobs[i] = k.Marshal()
	}
	err := c.checkHostKeyProofs(ctx, keys, blobs)
	if c.hub.wants(KindHostKeyProof) {
		ev := &HostKeyProofEvent{Header: now(), Keys: blobs, Proven: err == nil}
		if err != nil {
			ev.Err = err.Error()
		}
		c.hub.publish(ev)
	}
	return err
}

// checkHostKeyProofs sends the request and checks each signature.
func (c *Conn) checkHostKeyProofs(ctx context.Context, keys []ssh.PublicKey, blobs [][]byte) error {
	ok, reply, err := c.SendGlobalRequest(ctx, wire.RequestHostKeysProve, true, (&wire.HostKeys{Keys: blobs}).Append(nil))
	if err != nil {
		return err
	}
	if !ok {
		return &HostKeyProofError{Err: errors.New("refused by the server")}
	}
	sigs, err := wire.ParseHostKeys(reply)
	if err != nil || len(sigs.Keys) != len(keys) {
		return &HostKeyProofError{Err: fmt.Errorf("%d signatures for %d keys", len(sigs.Keys), len(keys))}
	}
	sid := c.SessionID()
	for i, k := range keys {
		var sig ssh.Signature
		if err := ssh.Unmarshal(sigs.Keys[i], &sig); err != nil {
			return &HostKeyProofError{Key: k, Err: err}
		}
		if k.Type() == ssh.KeyAlgoRSA && sig.Format == ssh.KeyAlgoRSA {
			return &HostKeyProofError{Key: k, Err: errors.New("SHA-1 RSA signature")}
		}
		if err := k.Verify(hostKeyProofData(sid, blobs[i]), &sig); err != nil {
			return &HostKeyProofError{Key: k, Err: err}
		}
	}
	return nil
}
