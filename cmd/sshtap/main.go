// Command sshtap connects to an SSH server like ssh(1) and shows what the
// transport does while it runs: key exchanges, banners, IGNORE and DEBUG
// messages, MAC mismatches and their verdicts, X11 and agent requests,
// keepalive round trips and the disconnect, live, as text or NDJSON.
//
//	sshtap [flags] [user@]host [command...]
//	sshtap demo [flags]     an embedded server exercising every event kind
//	sshtap serve [flags]    an sshtap server showing each client's events
//
// See cmd/sshtap/README.md for flags, the NDJSON schema and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
)

// Exit codes. Like ssh(1): a remote command's exit status passes through;
// anything that stops sshtap itself (bad usage, connection, host key,
// authentication, protocol errors) exits 255.
const (
	exitOK    = 0
	exitError = 255
)

// app is one run of the command. Tests build it with their own streams and
// environment; main uses the process's.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string // the environment for SendEnv; nil: none
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, environ: os.Environ}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// The first signal asks for a clean end (disconnect, summary); the
	// default action is back for the next one, so a second Ctrl-C always
	// ends sshtap.
	context.AfterFunc(ctx, stop)
	if clientMode(os.Args[1:]) && os.Getenv("GOMAXPROCS") == "" {
		// One connection's data path is one pipeline (socket, decryption,
		// the local stream), as in ssh's single thread. With a second P,
		// every hand-off between the transport goroutine and a copy
		// goroutine wakes an idle thread that then spins: measured against
		// sshd (1 GiB, aes128-gcm), one P moves more MB/s with a third
		// less CPU and a third fewer context switches. GOMAXPROCS in the
		// environment overrides it; serve and demo keep the default.
		runtime.GOMAXPROCS(1)
	}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// clientMode reports whether args run the client (not demo, serve or help).
func clientMode(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch args[0] {
	case "demo", "serve", "help":
		return false
	}
	return true
}

// run dispatches to a subcommand and returns the exit code. A first
// argument "demo" or "serve" selects the subcommand; to reach a host of
// that name, put a flag or a user before it (sshtap -p 22 demo, sshtap me@demo).
func (a *app) run(ctx context.Context, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return a.runDemo(ctx, args[1:])
		case "serve":
			return a.runServe(ctx, args[1:])
		case "help":
			a.usage(a.stdout)
			return exitOK
		}
	}
	return a.runClient(ctx, args)
}

// fail returns 0 for a nil err; otherwise it prints err as "sshtap: ..." and returns its exit code: 255 unless
// err carries another (an *exitStatus from the remote command).
func (a *app) fail(err error) int {
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) {
		return st.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "sshtap: %s\n", sanitizeLine(ue.msg))
		fmt.Fprintf(a.stderr, "usage: %s\n", ue.usage)
		return exitError
	}
	fmt.Fprintf(a.stderr, "sshtap: %s\n", errorText(err))
	return exitError
}

// errorText is err's message made fit to print: the library's "sshtap: "
// prefix, at its start or after the CLI's own wrapping ("opening a
// session: sshtap: ..."), is dropped (the line has one already).
// Peer-supplied text in it (a disconnect reason, an algorithm list, a
// signal name) was escaped where the message was made (eventfmt.Clean);
// any control character left is dropped here, so nothing in an error line
// can drive the terminal.
func errorText(err error) string {
	msg := strings.TrimPrefix(err.Error(), "sshtap: ")
	return sanitizeLine(strings.ReplaceAll(msg, ": sshtap: ", ": "))
}

// exitStatus carries a remote command's status as sshtap's own.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("remote exit status %d", e.code) }

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `usage: sshtap [flags] [user@]host [command...]
       sshtap demo [--json] [--events FILE] [--only KINDS] [--except KINDS]
                   [--color auto|always|never] [--no-summary] [--pace DURATION]
       sshtap serve [flags]        (sshtap serve --help)

Connection (as ssh): -p port, -l user, -i identity (repeatable), -F config,
  -o Option=value, -A, -X, -Y, -L spec, -R spec, -D [bind:]port (SOCKS),
  -e escape_char|none, -t, -T, -N, -q,
  -J [user@]host[:port][,...] (jump hosts), -W host:port (stdio forwarding)
Events: --json, --events FILE, --only KINDS, --except KINDS, --color auto|always|never,
  --no-summary
Transport: --rekey-every BYTES|DURATION, --keepalive DURATION, --mac-policy disconnect|discard|accept,
  --kex LIST, --ciphers LIST (-c), --macs LIST (-m), --hostkey-algos LIST;
  a LIST (and -o KexAlgorithms=, Ciphers=, MACs=, HostKeyAlgorithms=,
  PubkeyAcceptedAlgorithms=) may start with + (add to the defaults), - (remove)
  or ^ (put first), as in ssh_config: legacy algorithms such as aes128-cbc or
  diffie-hellman-group1-sha1 are offered only when named (-c +aes128-cbc)

Exit status: the remote command's, or 255 when sshtap fails (usage, connection,
host key, authentication). See cmd/sshtap/README.md.
`)
}
