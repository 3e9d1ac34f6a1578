package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// resolveProxy sets s.jumps and s.proxyCommand from -J, -o and the config
// files, and s.stdioForward from -W, with ssh's rules:
//
//   - ProxyJump and ProxyCommand are one setting: whichever is obtained
//     first wins (ssh_config(5): "the first obtained value will be used"),
//     so a config's ProxyJump hides a later ProxyCommand and the other way
//     round, and the command line (-J, -o) wins over the user's file,
//     which wins over the system-wide one.
//   - "none" disables the keyword; a ProxyJump none still lets a
//     ProxyCommand obtained later apply, as ssh does, while ProxyCommand
//     none disables both.
//   - -J together with -o ProxyJump or -o ProxyCommand is refused (ssh
//     refuses or ignores one, depending on their order).
func (s *settings) resolveProxy(f *clientFlags, l lookup) error {
	bad := func(format string, a ...any) error {
		return &usageError{msg: fmt.Sprintf(format, a...), usage: clientUsage}
	}
	var p proxyChoice
	if f.jumpSet {
		// An empty -J is an error, not "no jump host" (ssh: "Invalid -J
		// argument").
		if !strings.EqualFold(f.jump, "none") {
			for hop := range strings.SplitSeq(f.jump, ",") {
				if _, _, _, err := parseJumpHost(hop); err != nil {
					return bad("invalid -J argument %q: %v", f.jump, err)
				}
			}
		}
		if _, ok := l.opts.Get("proxyjump"); ok {
			return bad("-J and -o ProxyJump given together")
		}
		if cmd, ok := l.opts.Get("proxycommand"); ok && !strings.EqualFold(cmd, "none") {
			return bad("-J and -o ProxyCommand given together")
		}
		p.addJump(f.jump)
	}
	// Each source in precedence order; within one, sshconfig has already
	// let the first of the two keywords hide the other.
	for _, h := range l.hosts() {
		if v, ok := h.Get("proxyjump"); ok {
			p.addJump(v)
		}
		if v, ok := h.Get("proxycommand"); ok {
			p.addCommand(v)
		}
	}
	if p.jumpSet && !strings.EqualFold(p.jump, "none") {
		for hop := range strings.SplitSeq(p.jump, ",") {
			if _, _, _, err := parseJumpHost(hop); err != nil {
				return bad("ProxyJump %s: %v", p.jump, err)
			}
			s.jumps = append(s.jumps, hop)
		}
		return s.resolveStdioForward(f, bad)
	}
	if p.cmdSet && !strings.EqualFold(p.cmd, "none") {
		if p.cmd == "-" {
			// ssh then speaks SSH over its own stdin and stdout.
			return bad("ProxyCommand -: a connection over sshtap's own stdin and stdout is not supported")
		}
		expanded, err := expandProxyCommand(p.cmd, s.hostname, s.port, s.user, s.host)
		if err != nil {
			return bad("ProxyCommand: %v", err)
		}
		s.proxyCommand = expanded
	}
	return s.resolveStdioForward(f, bad)
}

// proxyChoice is ProxyJump and ProxyCommand as obtained so far, from the
// sources in precedence order (readconf.c's rules for the two options).
type proxyChoice struct {
	jump, cmd       string
	jumpSet, cmdSet bool
}

// addJump obtains a ProxyJump: "none" when no ProxyJump was obtained yet;
// any other value only when neither keyword was, and it then also sets
// ProxyCommand none.
func (p *proxyChoice) addJump(v string) {
	if strings.EqualFold(v, "none") {
		if !p.jumpSet {
			p.jump, p.jumpSet = "none", true
		}
		return
	}
	if !p.jumpSet && !p.cmdSet {
		p.jump, p.jumpSet = v, true
		p.cmd, p.cmdSet = "none", true
	}
}

// addCommand obtains a ProxyCommand when none was obtained yet.
func (p *proxyChoice) addCommand(v string) {
	if !p.cmdSet {
		p.cmd, p.cmdSet = v, true
	}
}

// resolveStdioForward reads -W host:port. As in ssh, it implies -N and -T
// and clears every forwarding (ClearAllForwardings): the connection only
// carries the one channel.
func (s *settings) resolveStdioForward(f *clientFlags, bad func(string, ...any) error) error {
	if f.stdioForward == "" {
		return nil
	}
	host, port, ok := cutPort(f.stdioForward)
	if !ok || host == "" {
		return bad("-W %s: want host:port", f.stdioForward)
	}
	if _, err := parsePort(port); err != nil {
		return bad("-W %s: %v", f.stdioForward, err)
	}
	if s.command != "" {
		return bad("-W takes no remote command")
	}
	s.stdioForward = joinHostPort(host, port)
	s.locals, s.remotes, s.dynamics, s.forwardAgent, s.forwardX11 = nil, nil, nil, false, false
	s.requestTTY = "no"
	return nil
}

// parseJumpHost reads one jump host as ProxyJump and -J take it:
// [user@]host[:port] (an IPv6 address in brackets) or
// ssh://[user@]host[:port]. port is 0 when not given.
func parseJumpHost(spec string) (user, host string, port int, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return "", "", 0, errors.New("empty jump host")
	}
	if strings.HasPrefix(spec, "ssh://") {
		user, host, port, err = parseDestination(spec)
	} else {
		rest := spec
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			user, rest = rest[:i], rest[i+1:]
		}
		host = rest
		if h, p, ok := cutPort(rest); ok {
			if port, err = parsePort(p); err != nil {
				return "", "", 0, fmt.Errorf("%s: %v", spec, err)
			}
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if err != nil {
		return "", "", 0, fmt.Errorf("%s: %v", spec, err)
	}
	// ssh checks each hop as it checks a destination on its command line
	// (readconf.c parse_jump: ssh_valid_hostname, ssh_valid_ruser); each
	// reaches the hop's own ProxyCommand tokens and the "ssh -W" ssh
	// runs for it.
	if host == "" || !validHostname(host) {
		return "", "", 0, fmt.Errorf("%q is not a valid host name", host)
	}
	// A space, which ssh_valid_ruser allows, would make the hop's user
	// ambiguous in the comma-separated list: refused.
	if !validRemoteUser(user) || strings.ContainsAny(user, " \t") {
		return "", "", 0, fmt.Errorf("%q is not a valid user name", user)
	}
	return user, host, port, nil
}

// expandProxyCommand expands ProxyCommand's tokens (ssh_config(5)
// TOKENS: ProxyCommand accepts %%, %h, %n, %p and %r): %h is the host
// name connected to, %n the host as typed, %p the port, %r the remote
// user. Any other token is an error, as in ssh.
func expandProxyCommand(cmd, hostname string, port int, user, orig string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != '%' {
			b.WriteByte(cmd[i])
			continue
		}
		if i+1 >= len(cmd) {
			return "", errors.New("a % at the end")
		}
		i++
		switch cmd[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(hostname)
		case 'n':
			b.WriteString(orig)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(user)
		default:
			return "", fmt.Errorf("unknown token %%%c (ProxyCommand takes %%h, %%n, %%p, %%r and %%%%)", cmd[i])
		}
	}
	return b.String(), nil
}

// proxyProcess is a running ProxyCommand: the SSH connection is written to
// its stdin and read from its stdout (the transport's io.ReadWriter seam);
// its stderr is passed through. Close ends it: its stdin is closed and it
// gets SIGHUP at once (as ssh sends it), then SIGKILL if it has not exited
// after exitWait; Close returns once it was reaped. Read, Write and Close
// may be called from different goroutines; Close may be called more than
// once.
type proxyProcess struct {
	cmd    *exec.Cmd
	stdin  *os.File // the write end of its stdin
	stdout *os.File // the read end of its stdout

	// exitWait is how long Close waits for the command to exit after
	// SIGHUP before it sends SIGKILL.
	exitWait time.Duration

	once   sync.Once
	exited chan struct{}
}

// startProxyCommand runs command with sh -c (ssh uses the user's shell
// and "exec"; sh -c with exec keeps no lingering shell either).
func startProxyCommand(command string, stderr io.Writer) (*proxyProcess, error) {
	// Pipes of our own rather than exec's StdinPipe/StdoutPipe: Wait
	// closes those when the process exits, and the last bytes it wrote
	// (the end of the session) could be lost before they are read.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", "exec "+command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	// It stays in sshtap's process group, as ssh leaves it: in a group
	// of its own, a background one, a command that asks on /dev/tty
	// ("ssh -W" asking a password) would be stopped by SIGTTIN. A Ctrl-C
	// typed before the session's raw mode reaches both, as with ssh.
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	p := &proxyProcess{cmd: cmd, stdin: inW, stdout: outR, exitWait: proxyExitWait, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proxyProcess) Read(b []byte) (int, error) {
	n, err := p.stdout.Read(b)
	if err != nil && errors.Is(err, os.ErrClosed) {
		err = io.EOF
	}
	return n, err
}

func (p *proxyProcess) Write(b []byte) (int, error) { return p.stdin.Write(b) }

// proxyExitWait is how long Close waits for the command to exit after
// SIGHUP before it sends SIGKILL.
const proxyExitWait = 2 * time.Second

func (p *proxyProcess) Close() error {
	p.once.Do(func() {
		p.stdin.Close()
		// The connection is over: SIGHUP at once, as ssh sends it
		// (sshconnect.c ssh_kill_proxy_command). Signal is a no-op once
		// the command has exited.
		p.cmd.Process.Signal(syscall.SIGHUP)
		t := time.NewTimer(p.exitWait)
		select {
		case <-p.exited:
		case <-t.C:
			// ssh leaves a command that ignores SIGHUP to init;
			// sshtap does not leave it running.
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
		t.Stop()
		p.stdout.Close()
	})
	return nil
}

// stdioForward is -W: stdin goes to a direct-tcpip channel to
// s.stdioForward, the channel's data to stdout. It ends when the far side
// closes (after stdin's end was passed on as EOF) or stdout fails.
func (c *client) stdioForward(ctx context.Context) error {
	ch, err := c.conn.Dial(ctx, "tcp", c.s.stdioForward)
	if err != nil {
		return fmt.Errorf("stdio forwarding to %s failed: %w", c.s.stdioForward, err)
	}
	defer ch.Close()
	c.note("stdio forwarding to " + c.s.stdioForward) // shown under -v
	go func() {
		// Ends with stdin; a stdin that never ends is left behind when
		// the channel closes first (sshtap then exits).
		io.Copy(ch, c.app.stdin)
		if cw, ok := ch.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(c.app.stdout, ch)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil && c.conn.Err() != nil {
			return describeConnError(c.conn.Err())
		}
		return nil
	case <-ctx.Done():
		return nil
	}
}
