package sshtap_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"sshtap"
)

// Existing x/crypto/ssh and pkg/sftp code runs over an sshtap connection:
// NewSSHClient turns the Conn into an *ssh.Client, and sftp.NewClient
// takes that. Here the server is sshtap too, serving the "sftp" subsystem
// with pkg/sftp's server (a ServerSession is an io.ReadWriteCloser).
func ExampleNewSSHClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	scfg := &sshtap.ServerConfig{
		SessionHandler: func(s *sshtap.ServerSession) {
			if s.Subsystem() != "sftp" {
				s.Exit(1)
				return
			}
			srv, err := sftp.NewServer(s, sftp.WithServerWorkingDirectory(dir))
			if err != nil {
				s.Exit(1)
				return
			}
			srv.Serve()
			srv.Close()
		},
	}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer stop()

	client, err := sshtap.NewSSHClient(ctx, c) // an *ssh.Client
	if err != nil {
		log.Fatal(err)
	}
	sc, err := sftp.NewClient(client)
	if err != nil {
		log.Fatal(err)
	}
	defer sc.Close()
	f, _ := sc.Create(filepath.Join(dir, "hello.txt"))
	io.WriteString(f, "hello over sftp\n")
	f.Close()
	data, _ := os.ReadFile(filepath.Join(dir, "hello.txt"))
	fmt.Print(string(data))
	infos, _ := sc.ReadDir(dir)
	for _, fi := range infos {
		fmt.Println(fi.Name(), fi.Size())
	}
	// Output:
	// hello over sftp
	// hello.txt 16
}

// Subscription.Log writes a connection's events to a *slog.Logger until
// the connection ends; every event is a slog.LogValuer.
func ExampleSubscription_Log() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scfg := &sshtap.ServerConfig{}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})

	// Times and durations vary; leave them out of this example's output.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "rtt" {
				return slog.Attr{}
			}
			return a
		},
	}))
	sub := c.Subscribe(ctx, sshtap.KindPing)
	done := make(chan error, 1)
	go func() { done <- sub.Log(logger) }()

	c.Ping(ctx) // a round trip: a PingEvent, logged at Debug
	stop()
	fmt.Println("Log returned:", <-done)
	// Output:
	// level=DEBUG msg=ping event.kind=ping
	// level=INFO msg=closed event.kind=closed event.err="sshtap: connection closed: use of closed network connection"
	// Log returned: sshtap: connection closed: use of closed network connection
}

// Listen asks the server to listen (tcpip-forward) and returns a
// net.Listener whose connections the server forwards over the SSH
// connection. Close cancels the forwarding.
func ExampleConn_Listen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scfg := &sshtap.ServerConfig{
		ForwardPermission: func(meta sshtap.ConnMetadata, kind, addr string) bool {
			return kind == "tcpip-forward" && strings.HasPrefix(addr, "127.0.0.1:")
		},
	}
	c, stop := exampleServe(ctx, scfg, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	defer stop()

	ln, err := c.Listen(ctx, "tcp", "127.0.0.1:0") // the server picks the port
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintln(conn, "hello from the client side")
	}()

	// Someone connects to the server's port...
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	line, _ := io.ReadAll(conn)
	fmt.Print(string(line))
	// Output:
	// hello from the client side
}
