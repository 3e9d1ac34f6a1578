package sshtap_test

import (
	"bytes"
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

// Host certificates need no sshtap-specific API. A server lists the
// certificate signer (ssh.NewCertSigner) next to the plain key in
// ServerConfig.HostKeys and offers both, certificates first, as sshd does
// with HostKey and HostCertificate. A client's HostKeyCallback is an
// ssh.HostKeyCallback, so x/crypto's ssh.CertChecker.CheckHostKey checks
// the certificate (host type, CA, validity, the host name among the
// principals, signature) as it is; knownhosts.New builds one from the
// @cert-authority lines of known_hosts files.
func ExampleConfig_hostCertificate() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The CA and the server's certified host key (ssh-keygen -s ca -h -n
	// server.example -I web host_key.pub does the same).
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := ssh.NewSignerFromKey(caPriv)
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(hostPriv)
	cert := &ssh.Certificate{
		Key: hostKey.PublicKey(), CertType: ssh.HostCert, KeyId: "web",
		ValidPrincipals: []string{"server.example"},
		ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		log.Fatal(err)
	}
	certSigner, _ := ssh.NewCertSigner(cert, hostKey)

	scfg := &sshtap.ServerConfig{HostKeys: []ssh.Signer{hostKey, certSigner}, NoClientAuth: true}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, address string) bool {
			return bytes.Equal(auth.Marshal(), ca.PublicKey().Marshal())
		},
	}
	ccfg := &sshtap.Config{
		Addr:            "server.example:22", // the name the certificate must list
		HostKeyCallback: checker.CheckHostKey,
	}

	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s, err := sshtap.NewServerConn(ctx, b, scfg); err == nil {
			s.Wait()
			s.Close()
		}
	}()
	c, err := sshtap.NewClientConn(ctx, a, ccfg)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { c.Close(); <-done }()
	fmt.Println("host key algorithm:", c.Algorithms().HostKey)
	// Output:
	// host key algorithm: ssh-ed25519-cert-v01@openssh.com
}
