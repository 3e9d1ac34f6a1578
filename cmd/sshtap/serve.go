package main

// `sshtap serve` runs an sshtap server on a local address and shows the
// events of every client that connects, e.g. to watch what an OpenSSH client
// sends:
//
//	sshtap serve --host-key ./hostkey --authorized-keys ~/.ssh/id_ed25519.pub
//	ssh -p 2222 -o UserKnownHostsFile=/dev/null 127.0.0.1 uname -a
//
// THIS IS A TESTING SERVER. An authenticated client runs commands with
// /bin/sh -c as the user running sshtap serve, with that user's
// permissions. It listens on 127.0.0.1:2222 by default; binding to another
// address (--listen 0.0.0.0:2222) is the user's choice and gets a warning.
//
// Flags and behaviour:
//
//   - --listen ADDR (default 127.0.0.1:2222). Port 0 picks a free port.
//     The first line on stdout is "listening on HOST:PORT" (the bound
//     address), the second "host key TYPE SHA256:... FILE".
//   - --host-key FILE (required). When FILE does not exist, a new ed25519
//     key is generated and written to FILE (mode 0600, OpenSSH private key
//     format) and FILE.pub, and used from then on. An existing FILE is
//     loaded (any unencrypted key type x/crypto/ssh parses); like sshd, it is
//     refused when group or others may access it.
//   - Authentication, at least one of: --authorized-keys FILE (OpenSSH
//     authorized_keys format; key options such as restrict, from= or
//     command= are parsed and IGNORED), --password PASS or --password-env
//     VAR (the password in the environment variable VAR, which keeps it off
//     the command line and ps; passwords are for testing only), --no-auth
//     (anyone who can connect gets in: throwaway testing only). --user NAME
//     accepts only that user name.
//   - --once serves one connection (the listener is closed when it is
//     accepted) and exits 0 when it ends. --max-conns N serves at most N
//     connections at a time; more are accepted and closed at once.
//   - --allow-forwarding lets clients use port forwarding (direct-tcpip,
//     tcpip-forward and their streamlocal forms); it is refused otherwise.
//   - Transport: --rekey-every BYTES|DURATION (e.g. 1M, 512K, 1G, 30s, 10m),
//     --mac-policy disconnect|discard|accept, --kex/--ciphers/--macs/
//     --hostkey-algos LIST (comma-separated, checked against what sshtap
//     supports).
//   - Events: --json, --events FILE, --only, --except, --color,
//     --no-summary, as for the client. Each connection's events are labelled
//     "#N HOST:PORT" (N counts connections from 1); a note marks when a
//     client connects and when it is gone, followed by its summary.
//
// Sessions:
//
//   - exec: /bin/sh -c COMMAND, with the client's stdin, stdout and stderr,
//     its exit status, or exit-signal when the command was killed by a
//     signal. Client "signal" requests are delivered to the command.
//   - shell: /bin/sh (interactive when a pty was requested).
//   - pty-req: a real pseudo-terminal (Linux /dev/ptmx) of the requested
//     size, resized on window-change; TERM is set from the request. Terminal
//     modes are ignored. Where no pty can be allocated the command runs
//     without one, after a message on the client's stderr.
//   - env: only LANG and LC_* are accepted; other names are refused
//     (CHANNEL_FAILURE) with a note. The command's environment is otherwise
//     minimal, as sshd makes it: PATH (sshtap's), HOME, USER, LOGNAME,
//     SHELL=/bin/sh, SSH_CLIENT, SSH_CONNECTION. It runs in the user's home
//     directory.
//   - subsystem (sftp, ...): refused (CHANNEL_FAILURE) with a note.
//   - agent forwarding: when requested, the forwarded agent's identities
//     are listed in a note; commands do not get SSH_AUTH_SOCK.
//   - x11-req is acknowledged by the library and otherwise ignored.
//
// On SIGINT/SIGTERM the listener is closed, every connection is sent
// DISCONNECT (by-application), running commands are killed, and sshtap
// serve exits 0 once everything has ended. Failing to listen, or a bad
// host key, exits 255.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
	"sshtap/cipher"
	"sshtap/internal/eventfmt"
	"sshtap/kex"
)

const serveUsage = `sshtap serve --host-key FILE [--listen ADDR] (--authorized-keys FILE | --password PASS | --password-env VAR | --no-auth) [--user NAME] [--once] [--max-conns N] [--allow-forwarding] [--rekey-every BYTES|DURATION] [--mac-policy disconnect|discard|accept] [--kex LIST] [--ciphers LIST] [--macs LIST] [--hostkey-algos LIST] [--json] [--events FILE] [--only KINDS] [--except KINDS] [--color auto|always|never] [--no-summary]`

const serveDefaultListen = "127.0.0.1:2222"

// serveFlags are the options of `sshtap serve`.
type serveFlags struct {
	listen          string
	hostKey         string
	authorizedKeys  string
	password        string
	passwordSet     bool
	passwordEnv     string
	noAuth          bool
	user            string
	once            bool
	maxConns        string
	allowForwarding bool
	rekeyEvery      string
	macPolicy       string
	kex             string
	ciphers         string
	macs            string
	hostKeyAlgos    string
	help            bool
}

func (f *serveFlags) opts() []opt {
	return []opt{
		stringOpt(0, "listen", &f.listen),
		stringOpt(0, "host-key", &f.hostKey),
		stringOpt(0, "authorized-keys", &f.authorizedKeys),
		{long: "password", arg: true, set: func(v string) error { f.password, f.passwordSet = v, true; return nil }},
		stringOpt(0, "password-env", &f.passwordEnv),
		flagOpt(0, "no-auth", &f.noAuth),
		stringOpt(0, "user", &f.user),
		flagOpt(0, "once", &f.once),
		stringOpt(0, "max-conns", &f.maxConns),
		flagOpt(0, "allow-forwarding", &f.allowForwarding),
		stringOpt(0, "rekey-every", &f.rekeyEvery),
		stringOpt(0, "mac-policy", &f.macPolicy),
		stringOpt(0, "kex", &f.kex),
		stringOpt(0, "ciphers", &f.ciphers),
		stringOpt(0, "macs", &f.macs),
		stringOpt(0, "hostkey-algos", &f.hostKeyAlgos),
		flagOpt('h', "help", &f.help),
	}
}

// serveHookKey is the context key of a func(label string, c *sshtap.Conn)
// that runServe calls for each connection after subscribing its own event
// output and before the handshake: tests observe the events in-process
// without depending on the rendered format.
type serveHookKey struct{}

// runServe is `sshtap serve`.
func (a *app) runServe(ctx context.Context, args []string) int {
	var f serveFlags
	var ef eventFlags
	// Positional arguments are an error (stopAtArg false).
	if _, err := parseOpts(args, append(f.opts(), ef.opts()...), false, serveUsage); err != nil {
		return a.fail(err)
	}
	if f.help {
		fmt.Fprintf(a.stdout, "usage: %s\n", serveUsage)
		return exitOK
	}
	cfg, maxConns, err := a.serveConfig(&f)
	if err != nil {
		return a.fail(err)
	}
	out, err := a.openEvents(&ef, serveUsage)
	if err != nil {
		return a.fail(err)
	}
	defer out.close()

	signer, generated, err := serveHostKey(f.hostKey)
	if err != nil {
		return a.fail(err)
	}
	cfg.HostKeys = []ssh.Signer{signer}

	addr := f.listen
	if addr == "" {
		addr = serveDefaultListen
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return a.fail(fmt.Errorf("cannot listen on %s: %w", addr, err))
	}
	bound := ln.Addr().String()
	fmt.Fprintf(a.stdout, "listening on %s\n", bound)
	how := "loaded from " + f.hostKey
	if generated {
		how = "new key written to " + f.hostKey + " and " + f.hostKey + ".pub"
	}
	fmt.Fprintf(a.stdout, "host key %s %s (%s)\n", signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), how)
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		fmt.Fprintf(a.stderr, "sshtap: warning: listening on %s, beyond loopback: authenticated clients run commands as this user\n", bound)
	}
	if f.noAuth {
		fmt.Fprintf(a.stderr, "sshtap: warning: --no-auth: anyone who can connect to %s runs commands as this user\n", bound)
	}

	hook, _ := ctx.Value(serveHookKey{}).(func(string, *sshtap.Conn))
	s := newServer(out, cfg, maxConns, hook, f.allowForwarding, a.getenv)
	s.serve(ctx, ln, f.once)
	return exitOK
}

// serveConfig builds the ServerConfig (without host keys) from the flags.
func (a *app) serveConfig(f *serveFlags) (*sshtap.ServerConfig, int, error) {
	bad := func(format string, args ...any) error {
		return &usageError{msg: fmt.Sprintf(format, args...), usage: serveUsage}
	}
	if f.hostKey == "" {
		return nil, 0, bad("--host-key FILE is required (a new ed25519 key is written there if FILE does not exist)")
	}
	if f.passwordSet && f.passwordEnv != "" {
		return nil, 0, bad("--password and --password-env exclude each other")
	}
	if !f.noAuth && f.authorizedKeys == "" && !f.passwordSet && f.passwordEnv == "" {
		return nil, 0, bad("no way to authenticate clients: give --authorized-keys FILE, --password PASS, --password-env VAR or --no-auth")
	}
	maxConns := 0
	if f.maxConns != "" {
		n, err := strconv.Atoi(f.maxConns)
		if err != nil || n < 1 {
			return nil, 0, bad("--max-conns: %q is not a positive number", f.maxConns)
		}
		maxConns = n
	}
	cfg := &sshtap.ServerConfig{NoClientAuth: f.noAuth}
	userOK := func(meta sshtap.ConnMetadata) error {
		if f.user != "" && meta.User() != f.user {
			return fmt.Errorf("user %q is not %q (--user)", meta.User(), f.user)
		}
		return nil
	}

	if f.authorizedKeys != "" {
		keys, err := readAuthorizedKeys(f.authorizedKeys)
		if err != nil {
			return nil, 0, err
		}
		cfg.PublicKeyCallback = func(meta sshtap.ConnMetadata, key ssh.PublicKey) (*sshtap.Permissions, error) {
			if err := userOK(meta); err != nil {
				return nil, err
			}
			blob := key.Marshal()
			for _, k := range keys {
				if subtle.ConstantTimeCompare(k.Marshal(), blob) == 1 {
					return &sshtap.Permissions{Extensions: map[string]string{"pubkey-fp": ssh.FingerprintSHA256(key)}}, nil
				}
			}
			return nil, errors.New("key not in --authorized-keys")
		}
	}
	if f.passwordSet || f.passwordEnv != "" {
		pass := f.password
		if f.passwordEnv != "" {
			pass = a.getenv(f.passwordEnv)
			if pass == "" {
				return nil, 0, bad("--password-env: environment variable %s is empty or not set", f.passwordEnv)
			}
		}
		if pass == "" {
			return nil, 0, bad("--password: the password must not be empty")
		}
		want := []byte(pass)
		cfg.PasswordCallback = func(meta sshtap.ConnMetadata, password []byte) (*sshtap.Permissions, error) {
			if err := userOK(meta); err != nil {
				return nil, err
			}
			if subtle.ConstantTimeCompare(password, want) != 1 {
				return nil, errors.New("wrong password")
			}
			return &sshtap.Permissions{}, nil
		}
	}

	tc := &cfg.TransportConfig
	if f.rekeyEvery != "" {
		b, d, err := parseRekeyEvery(f.rekeyEvery)
		if err != nil {
			return nil, 0, bad("--rekey-every: %v", err)
		}
		tc.RekeyBytes, tc.RekeyInterval = b, d
	}
	if f.macPolicy != "" {
		policy, err := parseMACPolicy(f.macPolicy)
		if err != nil {
			return nil, 0, bad("--mac-policy: %v", err)
		}
		tc.MACPolicy = policy
	}
	lists := []struct {
		name           string
		val            string
		def, supported []string
		dst            *[]string
	}{
		{"kex", f.kex, kex.DefaultKexAlgos, kex.SupportedKexAlgos, &tc.KexAlgorithms},
		{"ciphers", f.ciphers, cipher.DefaultCiphers, cipher.SupportedCiphers, &tc.Ciphers},
		{"macs", f.macs, cipher.DefaultMACs, cipher.SupportedMACs, &tc.MACs},
		{"hostkey-algos", f.hostKeyAlgos, kex.DefaultHostKeyAlgos, kex.SupportedHostKeyAlgos, &tc.HostKeyAlgorithms},
	}
	for _, l := range lists {
		if l.val == "" {
			continue
		}
		names, err := algorithmList(l.val, l.def, l.supported)
		if err != nil {
			return nil, 0, bad("--%s: %v", l.name, err)
		}
		*l.dst = names
	}
	if slices.Contains(tc.HostKeyAlgorithms, kex.HostKeyRSA) || slices.Contains(tc.HostKeyAlgorithms, kex.HostKeyRSACert) {
		cfg.AllowSHA1RSA = true
	}
	return cfg, maxConns, nil
}

// readAuthorizedKeys reads an OpenSSH authorized_keys file. Key options are
// parsed and ignored; a line that does not parse is an error naming it.
func readAuthorizedKeys(path string) ([]ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--authorized-keys: %w", err)
	}
	var keys []ssh.PublicKey
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("--authorized-keys: %s:%d: %v", path, i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--authorized-keys: %s has no keys", path)
	}
	return keys, nil
}

// serveHostKey loads the host key from path, or generates an ed25519 key
// and writes it there (0600) and to path.pub when path does not exist.
func serveHostKey(path string) (ssh.Signer, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		s, err := generateHostKey(path)
		return s, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("host key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, false, fmt.Errorf("host key %s: permissions %04o are too open: a private key must not be accessible by others; run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, false, fmt.Errorf("host key %s is encrypted; sshtap serve needs an unencrypted key", path)
		}
		return nil, false, fmt.Errorf("host key %s: %v", path, err)
	}
	return s, false, nil
}

func generateHostKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	host, _ := os.Hostname()
	comment := "sshtap-serve@" + host
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	// O_EXCL: never overwrite a key another process wrote meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("host key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("host key: %w", err)
	}
	pub := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(signer.PublicKey())), "\n") + " " + comment + "\n"
	if err := os.WriteFile(path+".pub", []byte(pub), 0o644); err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	return signer, nil
}

// server serves the accepted connections of one runServe.
type server struct {
	out      *eventOutput
	base     *sshtap.ServerConfig
	maxConns int
	hook     func(string, *sshtap.Conn)
	forward  bool
	home     string
	username string
	getenv   func(string) string

	hsCtx    context.Context // handshakes; cancelled at shutdown, after DISCONNECT was sent
	hsCancel context.CancelFunc

	mu       sync.Mutex
	active   int // admitted connections not yet ended (for --max-conns)
	conns    map[*sshtap.Conn]struct{}
	closing  bool
	sessions int
	idle     *sync.Cond // signalled when sessions drops to 0
	wg       sync.WaitGroup
}

func newServer(out *eventOutput, cfg *sshtap.ServerConfig, maxConns int, hook func(string, *sshtap.Conn), forward bool, getenv func(string) string) *server {
	s := &server{out: out, base: cfg, maxConns: maxConns, hook: hook, forward: forward, getenv: getenv, conns: map[*sshtap.Conn]struct{}{}}
	s.idle = sync.NewCond(&s.mu)
	s.hsCtx, s.hsCancel = context.WithCancel(context.Background())
	if u, err := user.Current(); err == nil {
		s.username, s.home = u.Username, u.HomeDir
	}
	if s.home == "" {
		s.home, _ = os.UserHomeDir()
	}
	return s
}

// serve accepts connections until ctx is done (or after the first with
// once), then waits for every connection and session to end.
func (s *server) serve(ctx context.Context, ln net.Listener, once bool) {
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-stop:
		}
		ln.Close()
		s.shutdown(ctx.Err() != nil)
	}()

	n := 0
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				break
			}
			// EMFILE and the like: wait a little rather than spin.
			s.out.w.Note("", "accept: "+err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		n++
		label := fmt.Sprintf("#%d %s", n, nc.RemoteAddr())
		if once {
			ln.Close()
		}
		// Counted here, at admission, not when handle registers the
		// Conn: a connection accepted a moment ago counts already.
		s.mu.Lock()
		full := s.maxConns > 0 && s.active >= s.maxConns
		if !full {
			s.active++
		}
		s.mu.Unlock()
		if full {
			s.out.w.Note(label, fmt.Sprintf("refused: %d connections already (--max-conns)", s.maxConns))
			nc.Close()
			continue
		}
		s.wg.Add(1)
		go s.handle(label, nc)
		if once {
			break
		}
	}
	// Wait for the connections (the stopper disconnects them on ctx
	// cancel), then stop the stopper; then wait for the sessions.
	s.wg.Wait()
	close(stop)
	<-stopped
	s.mu.Lock()
	for s.sessions > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

// shutdown marks the server closing and, when cancelled, disconnects every
// connection (by-application) and ends the handshakes in progress.
func (s *server) shutdown(cancelled bool) {
	s.mu.Lock()
	s.closing = true
	var conns []*sshtap.Conn
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if cancelled {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Disconnect(sshtap.DisconnectByApplication, "sshtap serve is shutting down")
			}()
		}
		wg.Wait()
	}
	s.hsCancel()
}

// slotConn is an admitted connection's socket: closing it frees the
// connection's --max-conns slot first.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// free frees the slot (once).
func (c *slotConn) free() { c.once.Do(c.release) }

func (c *slotConn) Close() error {
	c.free()
	return c.Conn.Close()
}

// handle serves one connection until it ends.
func (s *server) handle(label string, nc net.Conn) {
	defer s.wg.Done()
	start := time.Now()
	s.out.w.SetConnStart(label, start) // the connect note counts from the connect too
	s.out.w.Note(label, fmt.Sprintf("client connected from %s to %s", nc.RemoteAddr(), nc.LocalAddr()))

	cfg := *s.base
	var sessions connSessions
	cfg.SessionHandler = func(ss *sshtap.ServerSession) {
		sessions.start()
		defer sessions.end()
		s.session(label, ss)
	}
	// Refused requests get CHANNEL_FAILURE, as sshd answers them, so the
	// client knows (ssh prints nothing for env, "subsystem request failed"
	// for a subsystem).
	cfg.AllowSessionRequest = func(_ sshtap.ConnMetadata, typ, detail string) bool {
		switch typ {
		case "subsystem":
			s.out.w.Note(label, fmt.Sprintf("session: subsystem %q refused (not supported by sshtap serve)", detail))
			return false
		case "env":
			if detail == "LANG" || strings.HasPrefix(detail, "LC_") {
				return true
			}
			s.out.w.Note(label, fmt.Sprintf("session: env %s refused (only LANG and LC_* are accepted)", detail))
			return false
		}
		return true
	}
	if s.forward {
		cfg.ForwardPermission = func(_ sshtap.ConnMetadata, kind, addr string) bool {
			s.out.w.Note(label, fmt.Sprintf("forwarding %s %s allowed (--allow-forwarding)", kind, addr))
			return true
		}
	} else {
		cfg.ForwardPermission = func(_ sshtap.ConnMetadata, kind, addr string) bool {
			s.out.w.Note(label, fmt.Sprintf("forwarding %s %s refused (no --allow-forwarding)", kind, addr))
			return false
		}
	}
	// The slot is free before the socket closes, so a client that saw its
	// connection end can connect again at once under --max-conns. The
	// Conn closes the socket itself when the connection fails (garbage
	// instead of an identification string, say), before Handshake
	// returns: the slot goes with that Close.
	sc := &slotConn{Conn: nc, release: func() {
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
	}}
	c := sshtap.ServerConn(sc, &cfg)
	var sum eventfmt.Summary
	done := s.out.watch(c, label, &sum)
	if s.hook != nil {
		s.hook(label, c)
	}

	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()

	var err error
	if closing {
		err = c.Disconnect(sshtap.DisconnectByApplication, "sshtap serve is shutting down")
	} else if err = c.Handshake(s.hsCtx); err == nil {
		err = c.Wait()
	}
	sc.free()
	c.Close()
	s.out.drain(done)
	// The connection's sessions end with it (their commands are killed);
	// their last notes come before "client gone" and the summary.
	sessions.wait(5 * time.Second)

	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if err == nil {
		err = c.Err()
	}
	// Notes are written at once while events are rendered by the watch
	// goroutine: who authenticated is told here, after the last event,
	// rather than in between the user-auth events.
	msg := "client gone"
	if c.Authenticated() {
		msg = fmt.Sprintf("client (user %q", c.User())
		if p := c.Permissions(); p != nil && p.Extensions["pubkey-fp"] != "" {
			msg += ", key " + p.Extensions["pubkey-fp"]
		}
		msg += ") gone"
	}
	elapsed := time.Since(start)
	msg += fmt.Sprintf(" after %v", elapsed.Round(time.Millisecond))
	if err != nil {
		msg += ": " + err.Error()
	}
	s.out.w.Note(label, msg)
	s.out.finish(label, &sum, c.Stats(), elapsed)
}

// connSessions counts one connection's running session handlers.
type connSessions struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0 while someone waits
}

func (cs *connSessions) start() {
	cs.mu.Lock()
	cs.n++
	cs.mu.Unlock()
}

func (cs *connSessions) end() {
	cs.mu.Lock()
	cs.n--
	if cs.n == 0 && cs.idle != nil {
		close(cs.idle)
		cs.idle = nil
	}
	cs.mu.Unlock()
}

// wait waits, at most d, until no session handler runs.
func (cs *connSessions) wait(d time.Duration) {
	cs.mu.Lock()
	if cs.n == 0 {
		cs.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	cs.idle = ch
	cs.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// sessionStart counts a running session handler.
func (s *server) sessionStart() {
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
}

func (s *server) sessionEnd() {
	s.mu.Lock()
	s.sessions--
	if s.sessions == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}
