package sshtap

import (
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/wire"
)

// hostkeys-prove-00@openssh.com: signatures by each key asked about, over
// the name, the session identifier and the key; a key that is not the
// server's fails the request.
func TestHostKeysProve(t *testing.T) {
	testKeys(t)
	p := handshakePair(t, nil, &ServerConfig{HostKeys: []ssh.Signer{testEd25519, testECDSA256, testRSA}})
	ctx := tctx(t)
	ask := [][]byte{testRSA.PublicKey().Marshal(), testECDSA256.PublicKey().Marshal()}
	ok, reply, err := p.client.SendGlobalRequest(ctx, wire.RequestHostKeysProve, true, (&wire.HostKeys{Keys: ask}).Append(nil))
	if err != nil || !ok {
		t.Fatalf("prove: %v, %v", ok, err)
	}
	sigs, err := wire.ParseHostKeys(reply)
	if err != nil || len(sigs.Keys) != len(ask) {
		t.Fatalf("reply: %d signatures, %v", len(sigs.Keys), err)
	}
	for i, blob := range ask {
		key, _ := ssh.ParsePublicKey(blob)
		var sig ssh.Signature
		if err := ssh.Unmarshal(sigs.Keys[i], &sig); err != nil {
			t.Fatal(err)
		}
		data := wire.AppendString(nil, wire.RequestHostKeysProve)
		data = wire.AppendBytes(data, p.client.SessionID())
		data = wire.AppendBytes(data, blob)
		if err := key.Verify(data, &sig); err != nil {
			t.Errorf("%s proof: %v", key.Type(), err)
		}
		if key.Type() == ssh.KeyAlgoRSA && sig.Format != ssh.KeyAlgoRSASHA512 {
			t.Errorf("RSA proof signed with %s, want rsa-sha2-512", sig.Format)
		}
	}
	other := (&wire.HostKeys{Keys: [][]byte{testECDSA384.PublicKey().Marshal()}}).Append(nil)
	if ok, _, err := p.client.SendGlobalRequest(ctx, wire.RequestHostKeysProve, true, other); ok || err != nil {
		t.Fatalf("prove of a key that is not the server's: %v, %v", ok, err)
	}
}
