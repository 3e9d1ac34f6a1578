package testpeer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultClientTimeout bounds one client run unless the builder sets Timeout.
const DefaultClientTimeout = 30 * time.Second

// ClientResult is the outcome of one OpenSSH ssh or dbclient run.
type ClientResult struct {
	Args     []string // the full command line
	Stdout   string
	Stderr   string // for ssh: the -vvv log, interleaved with the remote command's stderr
	ExitCode int    // the client's exit status; 255 is ssh's own error, -1 killed
	TimedOut bool   // the run hit its timeout and was killed
}

// SSHLog parses Stderr as an OpenSSH -vvv log.
func (r *ClientResult) SSHLog() *SSHLog { return ParseSSHLog(r.Stderr) }

// String summarises the run for test failure messages.
func (r *ClientResult) String() string {
	var b strings.Builder
	b.WriteString(strings.Join(r.Args, " "))
	b.WriteString("\nexit: ")
	b.WriteString(strconv.Itoa(r.ExitCode))
	if r.TimedOut {
		b.WriteString(" (timed out)")
	}
	b.WriteString("\nstdout:\n" + r.Stdout + "\nstderr:\n" + r.Stderr)
	return b.String()
}

// splitLoopback checks that addr is 127.0.0.1:PORT and splits it.
func splitLoopback(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("testpeer: address %q: %v", addr, err)
	}
	if host != "127.0.0.1" {
		t.Fatalf("testpeer: address %q: only 127.0.0.1 is allowed", addr)
	}
	return host, port
}

// runClient runs cmd with a timeout, killing its whole process group when
// the timeout hits.
func runClient(t testing.TB, bin string, args []string, env []string, stdin io.Reader, timeout time.Duration) *ClientResult {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		killTree(cmd.Process.Pid)
		return nil
	}
	// If a grandchild (a ProxyCommand) keeps the output pipes open, Wait
	// gives up on them after this long instead of hanging.
	cmd.WaitDelay = 5 * time.Second
	res := &ClientResult{Args: append([]string{bin}, args...), ExitCode: -1}
	err := cmd.Run()
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	res.TimedOut = ctx.Err() != nil
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		res.ExitCode = cmd.ProcessState.ExitCode()
	default:
		t.Fatalf("testpeer: run %s: %v", bin, err)
	}
	return res
}

// SSHClient builds a run of the OpenSSH client:
//
//	ssh -F /dev/null [-o OPTION]... -o UserKnownHostsFile=FILE
//	    -o StrictHostKeyChecking=no -o IdentitiesOnly=yes -o BatchMode=yes
//	    [-i KEY]... -p PORT -vvv [FLAG]... USER@127.0.0.1 [COMMAND]...
type SSHClient struct {
	// Addr is "127.0.0.1:PORT" (nothing else is allowed).
	Addr string
	// User defaults to "root".
	User string
	// Keys are the identities (-i). None means no publickey attempt.
	Keys []*Key
	// KnownHosts is the UserKnownHostsFile; default a new empty file.
	KnownHosts string
	// Options are extra -o values ("Ciphers=aes128-ctr",
	// "HostKeyAlgorithms=ssh-ed25519", "ProxyCommand=..."). ssh keeps the
	// first value of an option, so these come first and override the
	// defaults above.
	Options []string
	// Flags are extra arguments before the destination ("-N", "-T", "-tt",
	// "-L", "8080:127.0.0.1:80", "-A", ...).
	Flags []string
	// Command is the remote command; empty runs none (use Flags "-N").
	Command []string
	// Stdin is fed to ssh; default empty.
	Stdin io.Reader
	// Timeout defaults to DefaultClientTimeout.
	Timeout time.Duration
}

// Run runs ssh and returns its output and exit code. A non-zero exit is not
// a test failure; the caller checks ExitCode.
func (c SSHClient) Run(t testing.TB) *ClientResult {
	t.Helper()
	bin := Binary(t, "ssh")
	_, port := splitLoopback(t, c.Addr)
	user := c.User
	if user == "" {
		user = "root"
	}
	kh := c.KnownHosts
	if kh == "" {
		kh = filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, nil, 0o600); err != nil {
			t.Fatalf("testpeer: %v", err)
		}
	}
	args := []string{"-F", "/dev/null"}
	for _, o := range c.Options {
		args = append(args, "-o", o)
	}
	args = append(args,
		"-o", "UserKnownHostsFile="+kh,
		"-o", "StrictHostKeyChecking=no",
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes")
	for _, k := range c.Keys {
		args = append(args, "-i", k.Path)
	}
	args = append(args, "-p", port, "-vvv")
	args = append(args, c.Flags...)
	args = append(args, user+"@127.0.0.1")
	args = append(args, c.Command...)
	return runClient(t, bin, args, os.Environ(), c.Stdin, c.Timeout)
}

// RunSSH runs the OpenSSH client against addr ("127.0.0.1:PORT") as root
// with key (nil for none) and the remote command; see [SSHClient].
func RunSSH(t testing.TB, addr string, key *Key, command ...string) *ClientResult {
	t.Helper()
	c := SSHClient{Addr: addr, Command: command}
	if key != nil {
		c.Keys = []*Key{key}
	}
	return c.Run(t)
}

// DBClient builds a run of dropbear's client:
//
//	dbclient -y [-i KEY]... -p PORT [ARG]... USER@127.0.0.1 [COMMAND]...
//
// with HOME set to a new temporary directory, because dbclient writes
// $HOME/.ssh/known_hosts. Keys are converted with dropbearconvert.
type DBClient struct {
	// Addr is "127.0.0.1:PORT" (nothing else is allowed).
	Addr string
	// User defaults to "root".
	User string
	Keys []*Key
	// Args are extra dbclient arguments before the destination, e.g. "-c",
	// "aes128-ctr", "-m", "hmac-sha1", "-T", "-t", "-N", "-y" (a second -y
	// disables host key checking entirely).
	Args    []string
	Command []string
	Stdin   io.Reader
	Timeout time.Duration
}

// Run runs dbclient and returns its output and exit code.
func (c DBClient) Run(t testing.TB) *ClientResult {
	t.Helper()
	bin := Binary(t, "dbclient")
	_, port := splitLoopback(t, c.Addr)
	user := c.User
	if user == "" {
		user = "root"
	}
	args := []string{"-y"}
	for _, k := range c.Keys {
		args = append(args, "-i", k.DropbearPath(t))
	}
	args = append(args, "-p", port)
	args = append(args, c.Args...)
	args = append(args, user+"@127.0.0.1")
	args = append(args, c.Command...)
	env := append(os.Environ(), "HOME="+t.TempDir())
	return runClient(t, bin, args, env, c.Stdin, c.Timeout)
}
