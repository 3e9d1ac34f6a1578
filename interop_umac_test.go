package sshtap

import (
	"bytes"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"sshtap/cipher"
	"sshtap/internal/testpeer"
)

// The UMAC MACs (umac-64/128[-etm]@openssh.com) with OpenSSH in both roles,
// each with aes128-ctr so the MAC is really used, moving a few MiB each way
// (hundreds of packets, so the UMAC-64 pad's shared AES block for pairs of
// sequence numbers and both halves of it are exercised) across key
// exchanges, which start new UMAC keys.

var ioUMACs = []string{cipher.UMAC64ETM, cipher.UMAC128ETM, cipher.UMAC64, cipher.UMAC128}

// ioRandomData returns n deterministic pseudo-random bytes.
func ioRandomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := mrand.New(mrand.NewPCG(seed, 4418))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestInteropUMACClientSSHD: our client against an sshd that offers only
// the UMAC MACs and aes128-ctr; per MAC, 3 MiB through cat, a rekey, and
// 1 MiB more. sshd's log must show the MAC negotiated in both directions.
func TestInteropUMACClientSSHD(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{
		"Ciphers aes128-ctr",
		"MACs " + strings.Join(ioUMACs, ","),
	}})
	data := ioRandomData(3<<20, 1)
	for _, mac := range ioUMACs {
		t.Run(mac, func(t *testing.T) {
			ctx := ioContext(t)
			cfg := &Config{User: d.User, Auth: []AuthMethod{PublicKeys(d.ClientKey().Signer)}, HostKeyCallback: insecure,
				TransportConfig: TransportConfig{Ciphers: []string{cipher.AES128CTR}, MACs: []string{mac}, RekeyInterval: -1}}
			start := len(d.Log())
			c, err := Dial(ctx, "tcp", d.Addr, cfg)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			want := DirectionAlgorithms{Cipher: cipher.AES128CTR, MAC: mac, Compression: CompressionNone}
			if a := c.Algorithms(); a.ClientToServer != want || a.ServerToClient != want {
				t.Fatalf("negotiated %+v, want %+v both ways", a, want)
			}
			ioCat(t, c, data)
			if err := c.Rekey(ctx); err != nil {
				t.Fatalf("Rekey: %v", err)
			}
			ioCat(t, c, data[:1<<20])
			if st := c.Stats(); st.Rekeys != 1 || st.BytesWritten < 4<<20 || st.BytesRead < 4<<20 {
				t.Errorf("stats %+v, want one rekey and 4 MiB each way", st)
			}
			log := d.Log()[start:]
			for _, dir := range []string{"client->server", "server->client"} {
				if line := "kex: " + dir + " cipher: aes128-ctr MAC: " + mac + " compression: none"; !strings.Contains(log, line) {
					t.Errorf("sshd's log lacks %q", line)
				}
			}
		})
	}
}

// TestInteropUMACServerSSH: OpenSSH's ssh with -o MACs=<one UMAC> and
// aes128-ctr against our server (whose default list offers all four),
// 4 MiB through cat with RekeyLimit=1M, so ssh rekeys several times in the
// middle of the stream.
func TestInteropUMACServerSSH(t *testing.T) {
	testpeer.Require(t, "ssh")
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	addr, served := ioEchoServer(t, key, TransportConfig{})
	data := ioRandomData(4<<20, 2)
	for i, mac := range ioUMACs {
		t.Run(mac, func(t *testing.T) {
			res := testpeer.SSHClient{Addr: addr, Keys: []*testpeer.Key{key}, Flags: []string{"-T"}, Command: []string{"cat"},
				Options: []string{"Ciphers=aes128-ctr", "MACs=" + mac, "RekeyLimit=1M", "ConnectTimeout=10"},
				Stdin:   bytes.NewReader(data), Timeout: ioTimeout}.Run(t)
			if res.ExitCode != 0 || res.Stdout != string(data) {
				t.Fatalf("ssh: exit %d, %d bytes of %d\n%s", res.ExitCode, len(res.Stdout), len(data), res.Stderr[max(0, len(res.Stderr)-2000):])
			}
			kexes := res.SSHLog().Kex
			if len(kexes) < 3 {
				t.Errorf("ssh logged %d key exchanges for 4 MiB with RekeyLimit=1M, want several", len(kexes))
			}
			for j, k := range kexes {
				if k.CipherCtoS != cipher.AES128CTR || k.MACCtoS != mac || k.MACStoC != mac {
					t.Errorf("ssh's key exchange %d: %+v, want aes128-ctr with %s", j, k, mac)
				}
			}
			conns := served()
			if len(conns) != i+1 {
				t.Fatalf("%d connections, want %d", len(conns), i+1)
			}
			c := conns[i]
			want := DirectionAlgorithms{Cipher: cipher.AES128CTR, MAC: mac, Compression: CompressionNone}
			if a := c.Algorithms(); a.ClientToServer != want || a.ServerToClient != want {
				t.Errorf("server negotiated %+v, want %+v both ways", a, want)
			}
			if st := c.Stats(); st.Rekeys == 0 || st.BytesRead < uint64(len(data)) || st.BytesWritten < uint64(len(data)) {
				t.Errorf("server stats %+v, want rekeys and 4 MiB each way", st)
			}
		})
	}
}
