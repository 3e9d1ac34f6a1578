package sshtap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"sshtap/internal/wire"
)

// sendKexInitThenData makes c behave like AsyncSSH at its rekey limit: it
// sends KEXINIT and, right behind it, CHANNEL_DATA for recipient (which
// sshtap itself would hold until its NEWKEYS).
func (c *Conn) sendKexInitThenData(recipient uint32, data []byte) error {
	c.omu.Lock()
	_, err := c.beginKexLocked(false, false)
	if err == nil {
		p := wire.AppendChannelDataHeader(nil, recipient, len(data))
		c.pushLocked(append(p, data...), outPacket{})
	}
	c.omu.Unlock()
	c.kick()
	return err
}

// TestDataRightAfterPeerKexInit: connection layer messages that a peer
// sends after its KEXINIT (AsyncSSH does, in either role) are dispatched as
// usual, the rekey completes, and the data arrives; in both roles.
func TestDataRightAfterPeerKexInit(t *testing.T) {
	for _, role := range []string{"client-sends", "server-sends"} {
		t.Run(role, func(t *testing.T) {
			got := make(chan *Channel, 1)
			scfg := &ServerConfig{}
			scfg.ChannelHandlers = map[string]func(*NewChannel){"x": acceptInto(got)}
			p := handshakePair(t, nil, scfg)
			cch, sch := openPair(t, p, got, "x")
			sender, senderCh, receiver, receiverCh := p.client, cch, p.server, sch
			if role == "server-sends" {
				sender, senderCh, receiver, receiverCh = p.server, sch, p.client, cch
			}
			ctx := tctx(t)
			sub := receiver.Subscribe(ctx, KindKex)
			msg := []byte("data in flight behind a KEXINIT")
			if err := sender.sendKexInitThenData(senderCh.RemoteID(), msg); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(receiverCh, buf); err != nil {
				t.Fatalf("read: %v (receiver error %v)", err, receiver.Err())
			}
			if !bytes.Equal(buf, msg) {
				t.Fatalf("got %q", buf)
			}
			evs := collect(t, sub, 10*time.Second, func(e Event) bool { return e.Kind() == KindKex })
			if ke := evs[len(evs)-1].(*KexEvent); ke.Initial {
				t.Fatal("no rekey")
			}
			// The connection goes on after the exchange.
			if _, err := receiverCh.Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(senderCh, buf[:2]); err != nil || string(buf[:2]) != "ok" {
				t.Fatalf("after the rekey: %q, %v", buf[:2], err)
			}
			if err := sender.Err(); err != nil {
				t.Fatal(err)
			}
			if err := receiver.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRekeyStormShortCommands: a server that starts a key exchange every
// 2 KiB while the client runs hundreds of short commands (channel open,
// exec, output, exit status, close: every message kind of a session meets
// a key exchange somewhere) gets through at least 1,000 rekeys without a
// stall.
func TestRekeyStormShortCommands(t *testing.T) {
	scfg := &ServerConfig{SessionHandler: func(s *ServerSession) {
		fmt.Fprintf(s, "ran %s\n", s.Command())
		s.Exit(len(s.Command()) % 7)
	}}
	scfg.RekeyBytes = 2 << 10
	p := handshakePair(t, nil, scfg)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const wantRekeys = 1000
	for i := 0; p.server.Stats().Rekeys < wantRekeys; i++ {
		if i > 20000 {
			t.Fatalf("only %d rekeys after %d commands", p.server.Stats().Rekeys, i)
		}
		s, err := p.client.NewSession(ctx)
		if err != nil {
			t.Fatalf("command %d: NewSession: %v (rekeys %d)", i, err, p.server.Stats().Rekeys)
		}
		cmd := fmt.Sprintf("cmd-%d", i)
		out, err := s.Output(cmd)
		var ee *ExitError
		if want := len(cmd) % 7; want == 0 && err != nil || want != 0 && (!errors.As(err, &ee) || ee.Status != want) {
			t.Fatalf("command %d: %v (rekeys %d)", i, err, p.server.Stats().Rekeys)
		}
		if string(out) != "ran "+cmd+"\n" {
			t.Fatalf("command %d: output %q", i, out)
		}
		s.Close()
	}
	// An exchange the last command's messages started may still be in
	// flight, done on one side and not yet on the other: wait for both
	// sides to agree.
	if _, err := p.client.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := kexSettled(t, p, 20*time.Second); n < wantRekeys {
		t.Fatalf("%d rekeys", n)
	}
}
