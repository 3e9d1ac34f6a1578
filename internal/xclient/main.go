// Command xclient is the golang.org/x/crypto/ssh client of the process
// benchmark (cmd/sshtap's BenchmarkCLITransfer): a program the size of what
// a Go service would write with x/crypto/ssh, run like ssh:
//
//	xclient -p PORT -i KEY -k KNOWN_HOSTS -c CIPHER [-m MAC] USER@HOST COMMAND
//
// It runs COMMAND in one session with the process's standard streams and
// exits with the remote exit status (255 when the connection failed).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func main() {
	port := flag.String("p", "22", "port")
	keyPath := flag.String("i", "", "private key file")
	known := flag.String("k", "", "known_hosts file")
	cipherName := flag.String("c", "", "cipher (default: x/crypto's list)")
	mac := flag.String("m", "", "MAC (default: x/crypto's list)")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: xclient -p PORT -i KEY -k KNOWN_HOSTS [-c CIPHER] [-m MAC] USER@HOST COMMAND")
		os.Exit(2)
	}
	user, host, ok := strings.Cut(flag.Arg(0), "@")
	if !ok {
		fail(errors.New("destination must be USER@HOST"))
	}
	status, err := run(user, host, *port, *keyPath, *known, *cipherName, *mac, strings.Join(flag.Args()[1:], " "))
	if err != nil {
		fail(err)
	}
	os.Exit(status)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "xclient:", err)
	os.Exit(255)
}

func run(user, host, port, keyPath, known, cipherName, mac, command string) (int, error) {
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		return 0, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return 0, err
	}
	hostKeys, err := knownhosts.New(known)
	if err != nil {
		return 0, err
	}
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
	}
	if cipherName != "" {
		cfg.Ciphers = []string{cipherName}
	}
	if mac != "" {
		cfg.MACs = []string{mac}
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(host, port), cfg)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = s.Run(command)
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), nil
	}
	return 0, err
}
