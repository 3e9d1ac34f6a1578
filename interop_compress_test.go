package sshtap

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/crypto/ssh"

	"sshtap/internal/testpeer"
)

// zlib@openssh.com with OpenSSH in both roles: the sshtap client against
// sshd (whose default is "Compression yes"), and ssh -C against an sshtap
// server; the data comes through intact and compressed.
func TestInteropCompression(t *testing.T) {
	data := textLike(2 << 20)
	t.Run("sshtap-client", func(t *testing.T) {
		d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
		ctx := ioContext(t)
		c, err := Dial(ctx, "tcp", d.Addr, func() *Config {
			cfg := &Config{User: d.User, Auth: []AuthMethod{PublicKeys(d.ClientKey().Signer)}, HostKeyCallback: insecure}
			cfg.Compression = []string{CompressionZlibSSH, CompressionNone}
			return cfg
		}())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if a := c.Algorithms(); a.ClientToServer.Compression != CompressionZlibSSH || a.ServerToClient.Compression != CompressionZlibSSH {
			t.Fatalf("negotiated %+v", a)
		}
		ioCat(t, c, data)
		// Each key exchange starts new streams (RFC 4253 §6.2), as sshd does.
		for round := range 2 {
			if err := c.Rekey(ctx); err != nil {
				t.Fatalf("rekey %d: %v", round, err)
			}
			ioCat(t, c, data[:100000])
		}
		st := c.Stats()
		if st.CompressedOut == 0 || st.UncompressedOut < uint64(len(data)) || st.CompressedIn == 0 || st.UncompressedIn < uint64(len(data)) ||
			st.BytesWritten > uint64(len(data))/4 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("dbclient", func(t *testing.T) {
		// dropbear's client asks for zlib@openssh.com first; a server
		// offers it by default.
		testpeer.Require(t, "dbclient")
		testKeys(t)
		key := testpeer.NewKey(t, testpeer.KeyEd25519)
		algs := make(chan Algorithms, 1)
		s := &Server{
			Config: &ServerConfig{
				HostKeys:          []ssh.Signer{testEd25519},
				PublicKeyCallback: acceptKey(key.PublicKey),
				SessionHandler:    func(ss *ServerSession) { io.Copy(ss, ss) },
				TransportConfig:   TransportConfig{Compression: []string{CompressionNone, CompressionZlibSSH}},
			},
			ConnState: func(c *Conn, st ConnState) {
				if st == StateActive {
					algs <- c.Algorithms()
				}
			},
		}
		addr := testServer(t, s)
		res := testpeer.DBClient{Addr: addr, Keys: []*testpeer.Key{key}, Command: []string{"cat"}, Stdin: bytes.NewReader(data)}.Run(t)
		if res.ExitCode != 0 || res.Stdout != string(data) {
			t.Fatalf("dbclient: exit %d, %d bytes of %d\n%s", res.ExitCode, len(res.Stdout), len(data), res.Stderr)
		}
		if a := <-algs; a.ClientToServer.Compression != CompressionZlibSSH || a.ServerToClient.Compression != CompressionZlibSSH {
			t.Errorf("negotiated %+v", a)
		}
	})
	t.Run("ssh-client", func(t *testing.T) {
		testKeys(t)
		key := testpeer.NewKey(t, testpeer.KeyEd25519)
		addr, served := ioEchoServer(t, key, TransportConfig{Compression: []string{CompressionNone, CompressionZlibSSH}})
		// Half text, half random: with RekeyLimit=1M (which OpenSSH counts
		// in compressed bytes), key exchanges in the middle of the stream,
		// each starting new compression streams.
		data := append(bytes.Clone(data), ioRandomData(3<<20, 9)...)
		res := testpeer.SSHClient{Addr: addr, Keys: []*testpeer.Key{key}, Flags: []string{"-C"}, Command: []string{"cat"},
			Options: []string{"RekeyLimit=1M"}, Stdin: bytes.NewReader(data)}.Run(t)
		if res.ExitCode != 0 || res.Stdout != string(data) {
			t.Fatalf("ssh -C: exit %d, %d bytes of %d\n%s", res.ExitCode, len(res.Stdout), len(data), res.Stderr[max(0, len(res.Stderr)-2000):])
		}
		conns := served()
		if len(conns) != 1 {
			t.Fatalf("%d connections", len(conns))
		}
		st := conns[0].Stats()
		a := conns[0].Algorithms()
		if a.ClientToServer.Compression != CompressionZlibSSH || st.UncompressedIn < uint64(len(data)) || st.CompressedIn == 0 || st.CompressedIn > st.UncompressedIn*3/4 || st.Rekeys == 0 {
			t.Errorf("algorithms %+v, stats %+v", a, st)
		}
	})
}
