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
//   - --host-key FILE (required; repeat it for several host keys, which are
//     all announced to clients after authentication for OpenSSH's
//     UpdateHostKeys, one "host key" line each). When FILE does not exist, a new ed25519
//     key is generated and written to FILE (mode 0600, OpenSSH private key
//     format) and FILE.pub, and used from then on. An existing FILE is
//     loaded (any unencrypted key type x/crypto/ssh parses); like sshd, it is
//     refused when group or others may access it.
//   - --host-cert FILE (repeatable, sshd's HostCertificate): an OpenSSH host
//     certificate (ssh-keygen -s CA -h -n NAMES -I ID host_key.pub) of the
//     public key of one --host-key. The server then offers the
//     certificate's *-cert-v01@openssh.com algorithms before the plain ones
//     of the same key, as sshd does; a certificate whose key is none of the
//     --host-key keys, or that is not a host certificate, is an error. One
//     "host certificate" line each follows the "host key" lines on stdout.
//     Announcements after authentication carry the plain keys only, as
//     sshd's do.
//   - Authentication, at least one of: --authorized-keys FILE (OpenSSH
//     authorized_keys format; key options such as restrict, from= or
//     command= are parsed and IGNORED), --password PASS or --password-env
//     VAR (the password in the environment variable VAR, which keeps it off
//     the command line and ps; passwords are for testing only), --no-auth
//     (anyone who can connect gets in: throwaway testing only). --user NAME
//     accepts only that user name.
//   - --once serves one connection (the listener is closed when it is
//     accepted) and exits 0 when it ends.
//   - Limits (sshd's names and defaults): --login-grace-time DURATION
//     (default 2m) counts from the accept and covers the version
//     exchange, the key exchange and authentication; --max-startups
//     START:RATE:FULL or N (default 10:30:100) drops new connections at
//     random while that many are unauthenticated, with sshd's line
//     "Exceeded MaxStartups"; --max-conns N bounds authenticated
//     connections (a client that authenticates past it is disconnected,
//     TOO_MANY_CONNECTIONS), so unauthenticated sockets never lock users
//     out; --max-sessions N (default 10) bounds sessions per connection.
//     Each dropped or refused connection gets a note.
//   - --metrics ADDR serves Prometheus metrics at http://ADDR/metrics
//     (package sshtap/metrics: the server's connections, drops, traffic,
//     authentication and MAC failures; with Go's and the process's); the
//     third line on stdout is "metrics on http://HOST:PORT/metrics".
//   - Compression: zlib@openssh.com when the client asks (ssh -C), as
//     sshd offers it; --no-compression refuses it.
//   - --allow-forwarding lets clients use port forwarding (direct-tcpip,
//     tcpip-forward and their streamlocal forms); it is refused otherwise.
//   - Transport: --rekey-every BYTES|DURATION (e.g. 1M, 512K, 1G, 30s, 10m),
//     --mac-policy disconnect|discard|accept, --kex/--ciphers/--macs/
//     --hostkey-algos/--pubkey-algos LIST (comma-separated, checked against
//     what sshtap supports; "+a,b" adds to the defaults, "-a,b" removes,
//     "^a,b" puts first, as in sshd_config: --ciphers +aes128-cbc). Legacy
//     algorithms (SHA-1 kex, ssh-rsa, CBC, hmac-md5, hmac-sha1-96) are
//     only offered when named.
//     The MACs offered by default are sshd's: the library's default list
//     plus hmac-sha1-etm@openssh.com and hmac-sha1 after their SHA-2
//     counterparts.
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
//   - subsystem sftp: served by github.com/pkg/sftp's request server,
//     rooted at the user's home directory or --sftp-root DIR (the client
//     sees it as "/"; no path, ".." or symbolic link leads out of it; symlink
//     creation is not offered), so OpenSSH's sftp and scp work; --no-sftp
//     turns it off. Other subsystems are refused (CHANNEL_FAILURE) with a
//     note.
//   - agent forwarding: when requested, the forwarded agent's identities
//     are listed in a note; commands do not get SSH_AUTH_SOCK.
//   - x11-req is acknowledged by the library and otherwise ignored.
//
// On SIGINT/SIGTERM the listener is closed, every connection is sent
// DISCONNECT (by-application), running commands are killed, and sshtap
// serve exits 0 once everything has ended. Failing to listen, or a bad
// host key, exits 255.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
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

const serveUsage = `sshtap serve --host-key FILE [--host-key FILE]... [--host-cert FILE]... [--listen ADDR] (--authorized-keys FILE | --password PASS | --password-env VAR | --no-auth) [--user NAME] [--once] [--max-conns N] [--max-startups START:RATE:FULL|N] [--max-sessions N] [--login-grace-time DURATION] [--sftp-root DIR | --no-sftp] [--metrics ADDR] [--no-compression] [--allow-forwarding] [--rekey-every BYTES|DURATION] [--mac-policy disconnect|discard|accept] [--kex LIST] [--ciphers LIST] [--macs LIST] [--hostkey-algos LIST] [--pubkey-algos LIST] [--json] [--events FILE] [--only KINDS] [--except KINDS] [--color auto|always|never] [--no-summary]`

const serveDefaultListen = "127.0.0.1:2222"

// serveFlags are the options of `sshtap serve`.
type serveFlags struct {
	listen          string
	hostKeys        []string // --host-key, repeatable
	hostCerts       []string // --host-cert, repeatable
	authorizedKeys  string
	password        string
	passwordSet     bool
	passwordEnv     string
	noAuth          bool
	user            string
	once            bool
	maxConns        string
	maxStartups     string
	maxSessions     string
	loginGrace      string
	sftpRoot        string
	noSFTP          bool
	metrics         string
	noCompression   bool
	allowForwarding bool
	rekeyEvery      string
	macPolicy       string
	kex             string
	ciphers         string
	macs            string
	hostKeyAlgos    string
	pubkeyAlgos     string
	help            bool
}

func (f *serveFlags) opts() []opt {
	return []opt{
		stringOpt(0, "listen", &f.listen),
		listOpt(0, "host-key", &f.hostKeys),
		listOpt(0, "host-cert", &f.hostCerts),
		stringOpt(0, "authorized-keys", &f.authorizedKeys),
		{long: "password", arg: true, set: func(v string) error { f.password, f.passwordSet = v, true; return nil }},
		stringOpt(0, "password-env", &f.passwordEnv),
		flagOpt(0, "no-auth", &f.noAuth),
		stringOpt(0, "user", &f.user),
		flagOpt(0, "once", &f.once),
		stringOpt(0, "max-conns", &f.maxConns),
		stringOpt(0, "max-startups", &f.maxStartups),
		stringOpt(0, "max-sessions", &f.maxSessions),
		stringOpt(0, "login-grace-time", &f.loginGrace),
		stringOpt(0, "sftp-root", &f.sftpRoot),
		flagOpt(0, "no-sftp", &f.noSFTP),
		stringOpt(0, "metrics", &f.metrics),
		flagOpt(0, "no-compression", &f.noCompression),
		flagOpt(0, "allow-forwarding", &f.allowForwarding),
		stringOpt(0, "rekey-every", &f.rekeyEvery),
		stringOpt(0, "mac-policy", &f.macPolicy),
		stringOpt(0, "kex", &f.kex),
		stringOpt(0, "ciphers", &f.ciphers),
		stringOpt(0, "macs", &f.macs),
		stringOpt(0, "hostkey-algos", &f.hostKeyAlgos),
		stringOpt(0, "pubkey-algos", &f.pubkeyAlgos),
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
	cfg, limits, err := a.serveConfig(&f)
	if err != nil {
		return a.fail(err)
	}
	out, err := a.openEvents(&ef, serveUsage)
	if err != nil {
		return a.fail(err)
	}
	defer out.close()

	var hows []string
	for _, file := range f.hostKeys {
		signer, generated, err := serveHostKey(file)
		if err != nil {
			return a.fail(err)
		}
		cfg.HostKeys = append(cfg.HostKeys, signer)
		how := "loaded from " + file
		if generated {
			how = "new key written to " + file + " and " + file + ".pub"
		}
		hows = append(hows, how)
	}
	var certLines []string
	for _, file := range f.hostCerts {
		cs, err := serveHostCert(file, cfg.HostKeys[:len(f.hostKeys)])
		if err != nil {
			return a.fail(err)
		}
		cfg.HostKeys = append(cfg.HostKeys, cs)
		certLines = append(certLines, describeHostCert(cs.PublicKey().(*ssh.Certificate), file))
	}

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
	for i, how := range hows {
		pub := cfg.HostKeys[i].PublicKey()
		fmt.Fprintf(a.stdout, "host key %s %s (%s)\n", pub.Type(), ssh.FingerprintSHA256(pub), how)
	}
	for _, l := range certLines {
		fmt.Fprintln(a.stdout, l)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		fmt.Fprintf(a.stderr, "sshtap: warning: listening on %s, beyond loopback: authenticated clients run commands as this user\n", bound)
	}
	if f.noAuth {
		fmt.Fprintf(a.stderr, "sshtap: warning: --no-auth: anyone who can connect to %s runs commands as this user\n", bound)
	}

	hook, _ := ctx.Value(serveHookKey{}).(func(string, *sshtap.Conn))
	s := newServer(out, cfg, hook, f.allowForwarding, a.getenv)
	s.once = f.once
	s.sftpRoot = limits.sftpRoot
	s.srv = &sshtap.Server{
		NewConn:     s.newConn,
		ConnState:   s.connState,
		MaxConns:    limits.maxConns,
		MaxStartups: limits.startups,
		Logger:      slog.New(logHandler{out.w}),
	}
	if f.metrics != "" {
		stop, err := serveMetrics(ctx, f.metrics, s.srv, a.stdout)
		if err != nil {
			ln.Close()
			return a.fail(err)
		}
		defer stop()
	}
	s.serve(ctx, ln)
	return exitOK
}

// serveLimits are the Server's limits from the flags.
type serveLimits struct {
	maxConns int
	startups sshtap.MaxStartups
	sftpRoot string // "" with --no-sftp
}

// serveConfig builds the ServerConfig (without host keys) and the limits
// from the flags.
func (a *app) serveConfig(f *serveFlags) (*sshtap.ServerConfig, serveLimits, error) {
	bad := func(format string, args ...any) error {
		return &usageError{msg: fmt.Sprintf(format, args...), usage: serveUsage}
	}
	var limits serveLimits
	if len(f.hostKeys) == 0 {
		return nil, limits, bad("--host-key FILE is required (a new ed25519 key is written there if FILE does not exist)")
	}
	if f.passwordSet && f.passwordEnv != "" {
		return nil, limits, bad("--password and --password-env exclude each other")
	}
	if !f.noAuth && f.authorizedKeys == "" && !f.passwordSet && f.passwordEnv == "" {
		return nil, limits, bad("no way to authenticate clients: give --authorized-keys FILE, --password PASS, --password-env VAR or --no-auth")
	}
	cfg := &sshtap.ServerConfig{NoClientAuth: f.noAuth}
	for _, n := range []struct {
		name, val string
		dst       *int
	}{{"max-conns", f.maxConns, &limits.maxConns}, {"max-sessions", f.maxSessions, &cfg.MaxSessions}} {
		if n.val == "" {
			continue
		}
		v, err := strconv.Atoi(n.val)
		if err != nil || v < 1 {
			return nil, limits, bad("--%s: %q is not a positive number", n.name, n.val)
		}
		*n.dst = v
	}
	if f.maxStartups != "" {
		m, err := sshtap.ParseMaxStartups(f.maxStartups)
		if err != nil {
			return nil, limits, bad("--max-startups: %q: want START:RATE:FULL (as sshd's MaxStartups, e.g. 10:30:100) or a number", f.maxStartups)
		}
		limits.startups = m
	}
	switch {
	case f.noSFTP && f.sftpRoot != "":
		return nil, limits, bad("--sftp-root and --no-sftp exclude each other")
	case !f.noSFTP:
		limits.sftpRoot = f.sftpRoot
		if limits.sftpRoot == "" {
			if u, err := user.Current(); err == nil && u.HomeDir != "" {
				limits.sftpRoot = u.HomeDir
			} else if limits.sftpRoot, err = os.UserHomeDir(); err != nil {
				return nil, limits, fmt.Errorf("sftp: no home directory (give --sftp-root DIR or --no-sftp): %w", err)
			}
		}
		if fi, err := os.Stat(limits.sftpRoot); err != nil || !fi.IsDir() {
			return nil, limits, bad("--sftp-root: %s is not a directory", limits.sftpRoot)
		}
	}
	if f.loginGrace != "" {
		d, err := time.ParseDuration(f.loginGrace)
		if err != nil || d <= 0 {
			return nil, limits, bad("--login-grace-time: %q is not a positive duration (e.g. 30s, 2m)", f.loginGrace)
		}
		cfg.LoginGraceTime = d
	}
	userOK := func(meta sshtap.ConnMetadata) error {
		if f.user != "" && meta.User() != f.user {
			return fmt.Errorf("user %q is not %q (--user)", meta.User(), f.user)
		}
		return nil
	}

	if f.authorizedKeys != "" {
		keys, err := readAuthorizedKeys(f.authorizedKeys)
		if err != nil {
			return nil, limits, err
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
				return nil, limits, bad("--password-env: environment variable %s is empty or not set", f.passwordEnv)
			}
		}
		if pass == "" {
			return nil, limits, bad("--password: the password must not be empty")
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
	tc.MACs = serveDefaultMACs
	if !f.noCompression {
		// sshd's default: compression when the client asks (ssh -C).
		tc.Compression = []string{sshtap.CompressionNone, sshtap.CompressionZlibSSH}
	}
	if f.rekeyEvery != "" {
		b, d, err := parseRekeyEvery(f.rekeyEvery)
		if err != nil {
			return nil, limits, bad("--rekey-every: %v", err)
		}
		tc.RekeyBytes, tc.RekeyInterval = b, d
	}
	if f.macPolicy != "" {
		policy, err := parseMACPolicy(f.macPolicy)
		if err != nil {
			return nil, limits, bad("--mac-policy: %v", err)
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
		{"macs", f.macs, serveDefaultMACs, cipher.SupportedMACs, &tc.MACs},
		{"hostkey-algos", f.hostKeyAlgos, kex.DefaultHostKeyAlgos, kex.SupportedHostKeyAlgos, &tc.HostKeyAlgorithms},
		{"pubkey-algos", f.pubkeyAlgos, sshtap.DefaultServerPublicKeyAlgorithms, sshtap.SupportedServerPublicKeyAlgorithms, &cfg.PublicKeyAlgorithms},
	}
	for _, l := range lists {
		if l.val == "" {
			continue
		}
		names, err := algorithmList(l.val, l.def, l.supported)
		if err != nil {
			return nil, limits, bad("--%s: %v", l.name, err)
		}
		*l.dst = names
	}
	if slices.Contains(tc.HostKeyAlgorithms, kex.HostKeyRSA) || slices.Contains(tc.HostKeyAlgorithms, kex.HostKeyRSACert) {
		cfg.AllowSHA1RSA = true
	}
	return cfg, limits, nil
}

// serveDefaultMACs is sshd's default MAC list (OpenSSH 9.2 myproposal.h,
// KEX_SERVER_MAC): the library's default with the two SHA-1 MACs after their
// SHA-2 counterparts, so that a client that can only do hmac-sha1 gets in as
// it would with sshd. The client's preference decides (RFC 4253 §7.1), so a
// client that has anything better never gets SHA-1.
var serveDefaultMACs = []string{
	cipher.UMAC64ETM, cipher.UMAC128ETM, cipher.HMACSHA256ETM, cipher.HMACSHA512ETM, cipher.HMACSHA1ETM,
	cipher.UMAC64, cipher.UMAC128, cipher.HMACSHA256, cipher.HMACSHA512, cipher.HMACSHA1,
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

// serveHostCert loads the host certificate in file (one line of
// ssh-keygen's FILE-cert.pub) and pairs it with the host key it certifies,
// as sshd pairs HostCertificate with HostKey.
func serveHostCert(file string, keys []ssh.Signer) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("host certificate: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("host certificate %s: %v", file, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("host certificate %s holds a plain %s key, not a certificate (make one with ssh-keygen -s CA -h -n NAMES -I ID KEY.pub)", file, pub.Type())
	}
	if cert.CertType != ssh.HostCert {
		return nil, fmt.Errorf("host certificate %s is a user certificate; a host certificate is made with ssh-keygen -h", file)
	}
	for _, s := range keys {
		if bytes.Equal(s.PublicKey().Marshal(), cert.Key.Marshal()) {
			cs, err := ssh.NewCertSigner(cert, s)
			if err != nil {
				return nil, fmt.Errorf("host certificate %s: %v", file, err)
			}
			return cs, nil
		}
	}
	return nil, fmt.Errorf("host certificate %s certifies %s key %s, which is not the key of any --host-key", file, cert.Key.Type(), ssh.FingerprintSHA256(cert.Key))
}

// describeHostCert is serve's "host certificate" line on stdout.
func describeHostCert(cert *ssh.Certificate, file string) string {
	principals := strings.Join(cert.ValidPrincipals, ",")
	if principals == "" {
		principals = "(none)"
	}
	return fmt.Sprintf("host certificate %s %s (loaded from %s; ID %q, serial %d, principals %s, CA %s %s, valid %s)",
		cert.Type(), ssh.FingerprintSHA256(cert.Key), file, cert.KeyId, cert.Serial, principals,
		cert.SignatureKey.Type(), ssh.FingerprintSHA256(cert.SignatureKey), certValidity(cert))
}

// certValidity words a certificate's validity interval as ssh-keygen -L
// does ("forever", "from T to T", "after T", "before T"), in UTC.
func certValidity(cert *ssh.Certificate) string {
	const layout = "2006-01-02T15:04:05Z"
	after, before := cert.ValidAfter, cert.ValidBefore
	forever := before == ssh.CertTimeInfinity || before > math.MaxInt64
	switch {
	case after == 0 && forever:
		return "forever"
	case after == 0:
		return "before " + time.Unix(int64(before), 0).UTC().Format(layout)
	case forever:
		return "after " + time.Unix(int64(min(after, math.MaxInt64)), 0).UTC().Format(layout)
	}
	return "from " + time.Unix(int64(min(after, math.MaxInt64)), 0).UTC().Format(layout) + " to " + time.Unix(int64(before), 0).UTC().Format(layout)
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

// server serves the connections of one runServe through an sshtap.Server:
// it gives each connection its label, its event output and its
// configuration, and tells how it ended.
type server struct {
	out      *eventOutput
	base     *sshtap.ServerConfig
	hook     func(string, *sshtap.Conn)
	forward  bool
	home     string
	username string
	getenv   func(string) string
	once     bool
	sftpRoot string // "" with --no-sftp
	ln       net.Listener
	srv      *sshtap.Server

	mu       sync.Mutex
	n        int // connections accepted
	conns    map[*sshtap.Conn]*serveConn
	live     sync.WaitGroup // connections not yet ended
	sessions int
	idle     *sync.Cond // signalled when sessions drops to 0
}

// serveConn is one connection's state.
type serveConn struct {
	label    string
	start    time.Time
	sessions connSessions
	sum      eventfmt.Summary
	done     <-chan struct{} // the event output's end
}

func newServer(out *eventOutput, cfg *sshtap.ServerConfig, hook func(string, *sshtap.Conn), forward bool, getenv func(string) string) *server {
	s := &server{out: out, base: cfg, hook: hook, forward: forward, getenv: getenv, conns: map[*sshtap.Conn]*serveConn{}}
	s.idle = sync.NewCond(&s.mu)
	if u, err := user.Current(); err == nil {
		s.username, s.home = u.Username, u.HomeDir
	}
	if s.home == "" {
		s.home, _ = os.UserHomeDir()
	}
	return s
}

// serve serves ln until ctx is done (or, with once, until the first
// connection ended), then waits for every connection and session to end.
func (s *server) serve(ctx context.Context, ln net.Listener) {
	s.ln = ln
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(ln) }()
	ended := false
	select {
	case <-ctx.Done():
	case err := <-served:
		ended = true
		if !s.once {
			s.out.w.Note("", "accept: "+err.Error())
		}
		// With --once the listener was closed at the first accept: wait
		// for that connection (or the signal).
		all := make(chan struct{})
		go func() { s.live.Wait(); close(all) }()
		select {
		case <-ctx.Done():
		case <-all:
		}
	}
	// Every connection still up is sent DISCONNECT by-application, and its
	// commands are killed.
	s.srv.Close()
	if !ended {
		<-served
	}
	s.live.Wait()
	s.mu.Lock()
	for s.sessions > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

// logHandler turns the Server's log records (dropped connections, accept
// errors) into notes.
type logHandler struct{ w *eventfmt.Writer }

func (h logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h logHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logHandler) WithGroup(string) slog.Handler            { return h }

func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	msg := strings.TrimPrefix(r.Message, "sshtap: ")
	label := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "remote" {
			label = a.Value.String()
		} else {
			msg += ": " + a.Value.String()
		}
		return true
	})
	return h.w.Note(label, msg)
}

// newConn makes the Conn of an accepted socket (the Server's NewConn).
func (s *server) newConn(nc net.Conn) *sshtap.Conn {
	s.mu.Lock()
	if s.once && s.n > 0 {
		// Accepted from the backlog before the listener was closed.
		s.mu.Unlock()
		return nil
	}
	s.n++
	label := fmt.Sprintf("#%d %s", s.n, nc.RemoteAddr())
	s.live.Add(1)
	s.mu.Unlock()
	if s.once {
		s.ln.Close()
	}
	sc := &serveConn{label: label, start: time.Now()}
	s.out.w.SetConnStart(label, sc.start) // the connect note counts from the connect too
	s.out.w.Note(label, fmt.Sprintf("client connected from %s to %s", nc.RemoteAddr(), nc.LocalAddr()))

	cfg := *s.base
	cfg.SessionHandler = func(ss *sshtap.ServerSession) {
		sc.sessions.start()
		defer sc.sessions.end()
		s.session(label, ss)
	}
	// Refused requests get CHANNEL_FAILURE, as sshd answers them, so the
	// client knows (ssh prints nothing for env, "subsystem request failed"
	// for a subsystem).
	cfg.AllowSessionRequest = func(_ sshtap.ConnMetadata, typ, detail string) bool {
		switch typ {
		case "subsystem":
			if detail == "sftp" && s.sftpRoot != "" {
				return true
			}
			why := "sshtap serve serves sftp only"
			if detail == "sftp" {
				why = "--no-sftp"
			}
			s.out.w.Note(label, fmt.Sprintf("session: subsystem %q refused (%s)", detail, why))
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
	c := sshtap.ServerConn(nc, &cfg)
	sc.done = s.out.watch(c, label, &sc.sum)
	if s.hook != nil {
		s.hook(label, c)
	}
	s.mu.Lock()
	s.conns[c] = sc
	s.mu.Unlock()
	return c
}

// connState tells how a connection ended (the Server's ConnState).
func (s *server) connState(c *sshtap.Conn, st sshtap.ConnState) {
	if st != sshtap.StateClosed {
		return
	}
	s.mu.Lock()
	sc := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	defer s.live.Done()
	s.out.drain(sc.done)
	// The connection's sessions end with it (their commands are killed);
	// their last notes come before "client gone" and the summary.
	sc.sessions.wait(5 * time.Second)

	err := c.Err()
	var de *sshtap.DisconnectError
	if errors.As(err, &de) && !de.Remote && de.Reason == sshtap.DisconnectTooManyConnections {
		s.out.w.Note(sc.label, fmt.Sprintf("refused at authentication: %d authenticated connections already (--max-conns)", s.srv.MaxConns))
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
	elapsed := time.Since(sc.start)
	msg += fmt.Sprintf(" after %v", elapsed.Round(time.Millisecond))
	if err != nil {
		msg += ": " + err.Error()
	}
	s.out.w.Note(sc.label, msg)
	s.out.finish(sc.label, &sc.sum, c.Stats(), elapsed)
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
