package sshtap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"sshtap/internal/wire"
	"sshtap/kex"
	"sshtap/packet"
)

// scriptedPeer is an io.ReadWriteCloser that plays back fixed bytes as the
// peer's output and discards what it is sent.
type scriptedPeer struct {
	r      *bytes.Reader
	closed chan struct{}
}

func newScriptedPeer(b []byte) *scriptedPeer {
	return &scriptedPeer{r: bytes.NewReader(b), closed: make(chan struct{})}
}

func (s *scriptedPeer) Read(b []byte) (int, error) {
	select {
	case <-s.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	return s.r.Read(b)
}

func (s *scriptedPeer) Write(b []byte) (int, error) { return len(b), nil }

func (s *scriptedPeer) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

// plainPackets frames payloads as unencrypted packets (before NEWKEYS).
func plainPackets(payloads ...[]byte) []byte {
	var w packet.Writer
	var out []byte
	for _, p := range payloads {
		out = w.AppendPacket(out, p)
	}
	return out
}

func serverKexInitPayload(t testing.TB) []byte {
	p := &kex.Proposal{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	m, err := p.KexInit(kex.Server, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.Marshal(nil)
}

// FuzzClientTransport feeds arbitrary server output to a client: the
// version exchange, banner lines and the first (unencrypted) packets up to
// and into the key exchange. Whatever the bytes, the client must end with an
// error, not hang, panic or leak.
func FuzzClientTransport(f *testing.F) {
	kexinit := serverKexInitPayload(f)
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	f.Add([]byte("banner line\r\nanother\nSSH-2.0-x\n"))
	f.Add([]byte("SSH-1.5-old\r\n"))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets(kexinit)...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets((&wire.Ignore{Data: []byte("hi")}).Marshal(nil), kexinit)...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets((&wire.Debug{Message: "m"}).Marshal(nil), (&wire.Disconnect{Reason: 2, Message: "bye"}).Marshal(nil))...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets(kexinit, (&wire.KexECDHReply{HostKey: []byte{0, 0, 0, 1, 'x'}, ServerPub: make([]byte, 32)}).Marshal(nil))...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), 0, 0, 0, 12, 10, 99, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		peer := newScriptedPeer(data)
		cfg := &Config{NoAuth: true, HostKeyCallback: insecure}
		cfg.EventBuffer = 4
		c := ClientConn(peer, cfg)
		sub := c.Subscribe(context.Background(), KindAll)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.Handshake(ctx)
		if err == nil {
			t.Fatal("handshake succeeded against scripted bytes")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("handshake hung: %v", err)
		}
		c.Close()
		var last Event
		for ev := range sub.Events() {
			last = ev
		}
		if last == nil || last.Kind() != KindClosed {
			t.Fatalf("last event %v", last)
		}
	})
}

// FuzzServerTransport is FuzzClientTransport for the server side.
func FuzzServerTransport(f *testing.F) {
	testKeys(f)
	p := &kex.Proposal{Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}
	m, _ := p.KexInit(kex.Client, true, nil)
	kexinit := m.Marshal(nil)
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	f.Add([]byte("not a version\r\n"))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets(kexinit)...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets(kexinit, (&wire.KexECDHInit{ClientPub: make([]byte, 32)}).Marshal(nil))...))
	f.Add(append([]byte("SSH-2.0-x\r\n"), plainPackets((&wire.ServiceRequest{Service: "ssh-userauth"}).Marshal(nil))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		peer := newScriptedPeer(data)
		scfg := &ServerConfig{HostKeys: allHostKeys(t)[:1]}
		c := ServerConn(peer, scfg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.Handshake(ctx)
		if err == nil {
			t.Fatal("handshake succeeded against scripted bytes")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("handshake hung: %v", err)
		}
		c.Close()
	})
}
