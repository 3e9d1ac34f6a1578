package sshtap

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// ssh.CertChecker, unchanged, decides user certificates signed by
// ssh-keygen -s, for logins from OpenSSH's ssh with CertificateFile: a good
// certificate gets in with its extensions as the Conn's permissions; an
// expired one and one for another principal are refused with the checker's
// reason on the server side.
func TestInteropUserCertificates(t *testing.T) {
	testpeer.Require(t, "ssh", "ssh-keygen")
	ca := testpeer.NewKey(t, testpeer.KeyEd25519)
	user := testpeer.NewKey(t, testpeer.KeyEd25519)
	dir := t.TempDir()
	certFor := func(name string, args ...string) string {
		pub := filepath.Join(dir, name+".pub")
		if err := os.WriteFile(pub, []byte(user.AuthorizedKey+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(testpeer.Binary(t, "ssh-keygen"), append(append([]string{"-q", "-s", ca.Path, "-I", name}, args...), pub)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
		}
		return filepath.Join(dir, name+"-cert.pub")
	}
	good := certFor("good", "-n", "alice", "-V", "-5m:+1h")
	expired := certFor("expired", "-n", "alice", "-V", "20200101:20200102")
	other := certFor("other", "-n", "bob", "-V", "-5m:+1h")
	elsewhere := certFor("elsewhere", "-n", "alice", "-V", "-5m:+1h", "-O", "source-address=10.9.9.9/32,192.0.2.0/24")
	here := certFor("here", "-n", "alice", "-V", "-5m:+1h", "-O", "source-address=10.9.9.9/32,127.0.0.1")

	checker := &ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool {
		return bytes.Equal(k.Marshal(), ca.PublicKey.Marshal())
	}}
	testKeys(t)
	var mu sync.Mutex
	var reasons []string
	var perms []*Permissions
	watching := map[*Conn]chan struct{}{}
	s := &Server{
		Config: &ServerConfig{
			HostKeys:          []ssh.Signer{testEd25519},
			PublicKeyCallback: XPublicKeyCallback(checker.Authenticate),
			SessionHandler:    func(ss *ServerSession) { ss.Write([]byte("in as " + ss.Conn().User() + "\n")) },
		},
		ConnState: func(c *Conn, st ConnState) {
			switch st {
			case StateNew:
				sub := c.Subscribe(context.Background(), KindUserAuth)
				done := make(chan struct{})
				mu.Lock()
				watching[c] = done
				mu.Unlock()
				go func() {
					defer close(done)
					for ev := range sub.Events() {
						if ua, ok := ev.(*UserAuthEvent); ok && ua.Result == AuthFailure && ua.Err != "" {
							mu.Lock()
							reasons = append(reasons, ua.Err)
							mu.Unlock()
						}
					}
				}()
			case StateActive:
				mu.Lock()
				perms = append(perms, c.Permissions())
				mu.Unlock()
			case StateClosed:
				// Its events are all recorded before the Server lets go
				// of the connection.
				mu.Lock()
				done := watching[c]
				mu.Unlock()
				<-done
			}
		},
	}
	addr := testServer(t, s)
	login := func(cert string) *testpeer.ClientResult {
		return testpeer.SSHClient{Addr: addr, User: "alice", Keys: []*testpeer.Key{user},
			Options: []string{"CertificateFile=" + cert}, Command: []string{"true"}}.Run(t)
	}

	if res := login(good); res.ExitCode != 0 || res.Stdout != "in as alice\n" {
		t.Fatalf("good certificate: %s", res)
	}
	mu.Lock()
	if len(perms) != 1 || perms[0] == nil {
		t.Errorf("permissions %v", perms)
	} else if _, ok := perms[0].Extensions["permit-pty"]; !ok {
		t.Errorf("the certificate's extensions are not the Conn's permissions: %v", perms[0])
	}
	mu.Unlock()

	// source-address, which ssh.CertChecker leaves to the server.
	if res := login(here); res.ExitCode != 0 {
		t.Fatalf("certificate for 127.0.0.1: %s", res)
	}
	for _, c := range []struct{ cert, reason string }{
		{expired, "ssh: cert has expired"},
		{other, `principal "alice" not in the set of valid principals`},
		{elsewhere, `source-address "10.9.9.9/32,192.0.2.0/24" does not allow 127.0.0.1`},
	} {
		if res := login(c.cert); res.ExitCode == 0 {
			t.Errorf("%s: login succeeded", filepath.Base(c.cert))
		}
		// The server's record of the refusal comes with the connection's
		// end, which the client saw first: wait for the Server.
		waitServerIdle(t, s)
		mu.Lock()
		found := false
		for _, r := range reasons {
			found = found || strings.Contains(r, c.reason)
		}
		mu.Unlock()
		if !found {
			t.Errorf("%s: no refusal %q among the server's reasons %q", filepath.Base(c.cert), c.reason, reasons)
		}
	}
}
