package sshtap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"sshtap/internal/testpeer"
)

// OpenSSH's ssh -o UpdateHostKeys=yes against a Server with ed25519, ECDSA
// and RSA host keys, knowing only the ed25519 one: the server announces
// all three after authentication (hostkeys-00@openssh.com), proves the
// new ones (hostkeys-prove-00@openssh.com), and ssh records them.
func TestInteropHostKeysUpdate(t *testing.T) {
	testpeer.Require(t, "ssh")
	testKeys(t)
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	hostKeys := []ssh.Signer{testEd25519, testECDSA256, testRSA}
	// The session ends only once ssh's hostkeys-prove-00 was answered:
	// ssh sends it when the announcement arrives, possibly after its
	// command, and learns nothing if the session closes first.
	var proved sync.Map // *Conn -> chan struct{}, closed once the proof is answered
	s := &Server{
		Config: &ServerConfig{
			HostKeys:          hostKeys,
			PublicKeyCallback: acceptKey(key.PublicKey),
			SessionHandler: func(ss *ServerSession) {
				if ch, ok := proved.Load(ss.Conn()); ok {
					select {
					case <-ch.(chan struct{}):
					case <-time.After(ioTimeout):
					}
				}
			},
		},
		ConnState: func(c *Conn, st ConnState) {
			if st != StateNew {
				return
			}
			done := make(chan struct{})
			proved.Store(c, done)
			sub := c.Subscribe(context.Background(), KindGlobalRequest)
			go func() {
				defer sub.Close()
				for ev := range sub.Events() {
					if g, ok := ev.(*GlobalRequestEvent); ok && g.Name == "hostkeys-prove-00@openssh.com" {
						close(done)
						return
					}
				}
			}()
		},
	}
	addr := testServer(t, s)
	host := "[127.0.0.1]:" + addr[strings.LastIndexByte(addr, ':')+1:]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{host}, testEd25519.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := testpeer.SSHClient{Addr: addr, Keys: []*testpeer.Key{key}, KnownHosts: kh, Command: []string{"true"},
		Options: []string{"UpdateHostKeys=yes", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512"}}.Run(t)
	if res.ExitCode != 0 {
		t.Fatalf("ssh: %s", res)
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	for _, hk := range hostKeys {
		if !bytes.Contains(data, []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hk.PublicKey()))))) {
			t.Errorf("known_hosts lacks the %s host key after UpdateHostKeys:\n%s\nssh said:\n%s", hk.PublicKey().Type(), data, grepLines(res.Stderr, "hostkey"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(l), sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The client's side against sshd with several host keys: the keys sshd
// announces after authentication arrive as a *HostKeysEvent, and
// ProveHostKeys has sshd prove them; a key it does not hold fails. Each
// call publishes a *HostKeyProofEvent with its outcome.
func TestInteropProveHostKeys(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{HostKeys: []*testpeer.Key{
		testpeer.NewKey(t, testpeer.KeyEd25519), testpeer.NewKey(t, testpeer.KeyECDSA256), testpeer.NewKey(t, testpeer.KeyRSA3072),
	}})
	c, sub := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), KindHostKeys|KindHostKeyProof)
	evs := collect(t, sub, 10*time.Second, func(e Event) bool { return e.Kind() == KindHostKeys })
	ev := evs[len(evs)-1].(*HostKeysEvent)
	var keys []ssh.PublicKey
	for _, blob := range ev.Keys {
		k, err := ssh.ParsePublicKey(blob)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if len(keys) != 3 {
		t.Fatalf("sshd announced %d keys, want 3", len(keys))
	}
	ctx := ioContext(t)
	if err := c.ProveHostKeys(ctx, keys); err != nil {
		t.Fatalf("ProveHostKeys: %v", err)
	}
	testKeys(t)
	var pe *HostKeyProofError
	if err := c.ProveHostKeys(ctx, []ssh.PublicKey{testEd25519.PublicKey()}); !errors.As(err, &pe) {
		t.Fatalf("a key sshd does not hold: %v", err)
	}
	var proofs []*HostKeyProofEvent
	collect(t, sub, 10*time.Second, func(e Event) bool {
		if p, ok := e.(*HostKeyProofEvent); ok {
			proofs = append(proofs, p)
		}
		return len(proofs) == 2
	})
	if p := proofs[0]; !p.Proven || p.Err != "" || len(p.Keys) != 3 || !bytes.Equal(p.Keys[2], keys[2].Marshal()) {
		t.Errorf("first proof event %+v, want the 3 keys proven", p)
	}
	if p := proofs[1]; p.Proven || !strings.Contains(p.Err, "hostkeys-prove") || len(p.Keys) != 1 {
		t.Errorf("second proof event %+v, want one key unproven with the error", p)
	}
}
