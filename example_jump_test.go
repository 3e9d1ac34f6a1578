package sshtap_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
)

// DialSSH reaches a server through a jump host, as ssh -J does: the jump
// host opens a direct-tcpip channel to the target and the second SSH
// connection runs inside it, with its own keys, host key check and events.
func ExampleConn_DialSSH() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(priv)

	// The target: a server that greets and says where the connection came
	// from; it is reached only through the jump host.
	target := &sshtap.Server{Config: &sshtap.ServerConfig{
		HostKeys:     []ssh.Signer{hostKey},
		NoClientAuth: true,
		SessionHandler: func(s *sshtap.ServerSession) {
			fmt.Fprintf(s, "target: hello %s\n", s.Conn().User())
			s.Exit(0)
		},
	}}
	// The jump host lets its clients open direct-tcpip channels to the
	// target's address and to nothing else.
	var targetAddr string
	jump := &sshtap.Server{Config: &sshtap.ServerConfig{
		HostKeys:     []ssh.Signer{hostKey},
		NoClientAuth: true,
		ForwardPermission: func(_ sshtap.ConnMetadata, kind, addr string) bool {
			return kind == "direct-tcpip" && addr == targetAddr
		},
	}}
	var lns []net.Listener
	for _, srv := range []*sshtap.Server{target, jump} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		lns = append(lns, ln)
		go srv.Serve(ln)
	}
	targetAddr = lns[0].Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	checkKey := func(name string) ssh.HostKeyCallback {
		return func(addr string, _ net.Addr, key ssh.PublicKey) error {
			// A real client looks addr up in known_hosts, one entry per hop.
			fmt.Printf("%s: host key checked for the hop's own address: %v\n", name, addr == map[string]string{"jump": lns[1].Addr().String(), "target": targetAddr}[name])
			return nil
		}
	}
	bastion, err := sshtap.Dial(ctx, "tcp", lns[1].Addr().String(), &sshtap.Config{User: "alice", HostKeyCallback: checkKey("jump")})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := bastion.DialSSH(ctx, targetAddr, &sshtap.Config{User: "bob", HostKeyCallback: checkKey("target")})
	if err != nil {
		log.Fatal(err)
	}
	s, err := conn.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	out, err := s.Output("hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))

	// Closing the inner connection closes its channel; the jump host's
	// connection stays up for more.
	conn.Close()
	fmt.Println("jump host still up:", bastion.Err() == nil)
	bastion.Close()
	target.Shutdown(ctx)
	jump.Shutdown(ctx)
	// Output:
	// jump: host key checked for the hop's own address: true
	// target: host key checked for the hop's own address: true
	// target: hello bob
	// jump host still up: true
}
