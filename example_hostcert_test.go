package sshtap_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"slices"
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
//
// One check is missing there: ssh.CertChecker accepts a CA signature made
// with any algorithm the CA's key can verify, ssh-rsa (RSA with SHA-1)
// included, where OpenSSH's default CASignatureAlgorithms has no ssh-rsa
// and refuses such a certificate ("Certificate signed with disallowed
// algorithm"). The callback below adds that check before handing the key
// to the checker.
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
	// OpenSSH 9.2's CASignatureAlgorithms default.
	caSignatureAlgorithms := []string{
		ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
	ccfg := &sshtap.Config{
		Addr: "server.example:22", // the name the certificate must list
		HostKeyCallback: func(addr string, remote net.Addr, key ssh.PublicKey) error {
			if c, ok := key.(*ssh.Certificate); ok && (c.Signature == nil || !slices.Contains(caSignatureAlgorithms, c.Signature.Format)) {
				return errors.New("host certificate signed with a disallowed algorithm")
			}
			return checker.CheckHostKey(addr, remote, key)
		},
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
