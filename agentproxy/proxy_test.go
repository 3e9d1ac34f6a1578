package agentproxy

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestMain(m *testing.M) {
	// agent.ServeAgent logs every failed request; keep test output readable.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}

// servePipe serves p on one end of a net.Pipe and returns an agent client on
// the other; cleanup closes the pipe and waits for Serve to return.
func servePipe(t *testing.T, p *Proxy) agent.ExtendedAgent {
	t.Helper()
	a, _ := serveRaw(t, p)
	return agent.NewClient(a)
}

// serveRaw is servePipe without an agent client: x/crypto's client reads
// replies on a goroutine of its own, so a test that writes and reads raw
// frames must not make one.
func serveRaw(t *testing.T, p *Proxy) (net.Conn, <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { done <- p.Serve(b, nil); b.Close(); close(finished) }()
	t.Cleanup(func() { a.Close(); <-finished })
	return a, done
}

func newKeyring(t *testing.T, n int) (agent.Agent, []ssh.PublicKey) {
	t.Helper()
	kr := agent.NewKeyring()
	var pubs []ssh.PublicKey
	for i := 0; i < n; i++ {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := kr.Add(agent.AddedKey{PrivateKey: priv, Comment: "k" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
		s, _ := ssh.NewSignerFromKey(priv)
		pubs = append(pubs, s.PublicKey())
	}
	return kr, pubs
}

func TestProxyKeyringListSign(t *testing.T) {
	kr, pubs := newKeyring(t, 2)
	c := servePipe(t, &Proxy{Backing: kr})
	keys, err := c.List()
	if err != nil || len(keys) != 2 {
		t.Fatalf("List: %d keys, %v", len(keys), err)
	}
	data := []byte("data to sign")
	sig, err := c.Sign(pubs[1], data)
	if err != nil {
		t.Fatal(err)
	}
	if err := pubs[1].Verify(data, sig); err != nil {
		t.Fatal(err)
	}
	// Mutations are refused by default.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := c.Add(agent.AddedKey{PrivateKey: priv}); err == nil {
		t.Error("Add allowed without AllowMutations")
	}
	if err := c.RemoveAll(); err == nil {
		t.Error("RemoveAll allowed without AllowMutations")
	}
	if err := c.Lock([]byte("x")); err == nil {
		t.Error("Lock allowed without AllowMutations")
	}
	if keys, _ := kr.List(); len(keys) != 2 {
		t.Errorf("backing keyring changed: %d keys", len(keys))
	}
	if _, err := c.Extension("nope@example.com", nil); err == nil {
		t.Error("unknown extension succeeded")
	}
}

func TestProxyPolicy(t *testing.T) {
	kr, pubs := newKeyring(t, 2)
	hidden := string(pubs[0].Marshal())
	var asked []SignRequest
	p := &Proxy{Backing: kr, Policy: Policy{
		AllowSign: func(r SignRequest) bool {
			asked = append(asked, r)
			return !bytes.Equal(r.Data, []byte("deny me"))
		},
		FilterKeys: func(ks []*agent.Key) []*agent.Key {
			var out []*agent.Key
			for _, k := range ks {
				if string(k.Marshal()) != hidden {
					out = append(out, k)
				}
			}
			return out
		},
		AllowMutations: true,
	}}
	c := servePipe(t, p)
	keys, err := c.List()
	if err != nil || len(keys) != 1 || string(keys[0].Marshal()) != string(pubs[1].Marshal()) {
		t.Fatalf("List with filter: %v, %v", keys, err)
	}
	if _, err := c.Sign(pubs[0], []byte("x")); err == nil {
		t.Error("signed with a hidden key")
	}
	if _, err := c.Sign(pubs[1], []byte("deny me")); err == nil {
		t.Error("AllowSign denial ignored")
	}
	if _, err := c.Sign(pubs[1], []byte("ok")); err != nil {
		t.Errorf("allowed sign: %v", err)
	}
	if len(asked) != 2 {
		t.Errorf("AllowSign called %d times, want 2 (not for hidden keys)", len(asked))
	}
	if err := c.Remove(pubs[1]); err != nil {
		t.Errorf("Remove with AllowMutations: %v", err)
	}
	if keys, _ := kr.List(); len(keys) != 1 {
		t.Errorf("after Remove: %d keys", len(keys))
	}
}

func TestProxyOversizedFrame(t *testing.T) {
	kr, _ := newKeyring(t, 1)
	a, done := serveRaw(t, &Proxy{Backing: kr})
	a.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxMessageSize+1)
	if _, err := a.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Serve: %v, want ErrTooLarge", err)
	}
	// A frame of exactly the limit is read (and refused by the agent
	// protocol as garbage, but not for its size).
	a2, done2 := serveRaw(t, &Proxy{Backing: kr})
	frame := make([]byte, 4+MaxMessageSize)
	binary.BigEndian.PutUint32(frame, MaxMessageSize)
	frame[4] = 11 // REQUEST_IDENTITIES with trailing junk
	a2.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := a2.Write(frame)
		wrote <- err
	}()
	var rep [5]byte
	if _, err := io.ReadFull(a2, rep[:]); err != nil {
		t.Fatalf("reply to a max-size frame: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write max-size frame: %v", err)
	}
	a2.Close()
	if err := <-done2; errors.Is(err, ErrTooLarge) {
		t.Fatal("max-size frame refused as too large")
	}
}

func TestDialUnset(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, _, err := Dial(""); err == nil || !bytes.Contains([]byte(err.Error()), []byte("SSH_AUTH_SOCK")) {
		t.Fatalf("Dial with SSH_AUTH_SOCK unset: %v", err)
	}
	if _, _, err := Dial(os.DevNull); err == nil {
		t.Fatal("Dial(/dev/null) succeeded")
	}
}

// rwPair is the remote side's bytes as input and a sink for replies.
type rwPair struct {
	r io.Reader
	w io.Writer
}

func (p rwPair) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p rwPair) Write(b []byte) (int, error) { return p.w.Write(b) }

// FuzzServeAgent feeds arbitrary bytes as the remote side of a proxied
// agent channel to Proxy.Serve with an in-process keyring behind it.
func FuzzServeAgent(f *testing.F) {
	frame := func(b ...byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		return append(out, b...)
	}
	f.Add(frame(11))
	f.Add(frame(11)[:3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 11})
	kr, pubs := newKeyringF(f)
	sign := ssh.Marshal(struct {
		T     byte
		Key   []byte
		Data  []byte
		Flags uint32
	}{13, pubs[0].Marshal(), []byte("hi"), 0})
	f.Add(frame(sign...))
	f.Add(frame(sign...)[:10])
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		p := &Proxy{Backing: kr, Policy: Policy{AllowMutations: false}}
		p.Serve(rwPair{bytes.NewReader(in), &out}, nil)
		if out.Len() > 4*len(in)+1<<16 {
			t.Fatalf("reply of %d bytes to %d bytes of input", out.Len(), len(in))
		}
	})
}

func newKeyringF(f *testing.F) (agent.Agent, []ssh.PublicKey) {
	kr := agent.NewKeyring()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	kr.Add(agent.AddedKey{PrivateKey: priv})
	s, _ := ssh.NewSignerFromKey(priv)
	return kr, []ssh.PublicKey{s.PublicKey()}
}
