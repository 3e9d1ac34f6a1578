package testpeer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The dedicated account dropbear tests log in as (see the package doc).
const (
	TestUser     = "sshtaptest"
	TestUserHome = "/var/lib/sshtaptest"
)

// lockPath serialises user creation and authorized_keys updates between
// tests and test binaries.
const lockPath = "/run/sshtap-testpeer.lock"

// blockTag starts the marker comments around each instance's keys.
const blockTag = "# sshtap-testpeer "

// withLock runs f holding an exclusive flock on lockPath.
func withLock(t testing.TB, f func()) {
	t.Helper()
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("testpeer: open lock %s: %v", lockPath, err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("testpeer: flock %s: %v", lockPath, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	f()
}

// TestUserAccount is the looked-up [TestUser].
type TestUserAccount struct {
	Name     string
	Home     string
	UID, GID int
}

// EnsureTestUser creates, if missing, the system user [TestUser] with home
// [TestUserHome] (mode 0700, owned by it), shell /bin/sh and password field
// "*", plus ~/.ssh. It needs root and useradd; it skips otherwise (fails
// with SSHTAP_INTEROP=1). It is idempotent and safe to call concurrently.
func EnsureTestUser(t testing.TB) TestUserAccount {
	t.Helper()
	RequireRoot(t)
	var acct TestUserAccount
	withLock(t, func() {
		u, err := user.Lookup(TestUser)
		if err != nil {
			Require(t, "useradd")
			args := []string{"--system", "--home-dir", TestUserHome, "--no-create-home",
				"--shell", "/bin/sh", "--password", "*"}
			if _, gerr := user.LookupGroup(TestUser); gerr == nil {
				args = append(args, "--gid", TestUser)
			} else {
				args = append(args, "--user-group")
			}
			args = append(args, TestUser)
			out, err := exec.Command(Binary(t, "useradd"), args...).CombinedOutput()
			if err != nil {
				t.Fatalf("testpeer: useradd %s: %v: %s", strings.Join(args, " "), err, out)
			}
			if u, err = user.Lookup(TestUser); err != nil {
				t.Fatalf("testpeer: user %s after useradd: %v", TestUser, err)
			}
		}
		if !filepath.IsAbs(u.HomeDir) || u.HomeDir == "/" {
			t.Fatalf("testpeer: user %s has home %q; expected %s", TestUser, u.HomeDir, TestUserHome)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		acct = TestUserAccount{Name: TestUser, Home: u.HomeDir, UID: uid, GID: gid}
		// dropbear insists that home, ~/.ssh and authorized_keys are owned by
		// the user (or root) and not writable by group or others.
		for _, d := range []string{acct.Home, filepath.Join(acct.Home, ".ssh")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatalf("testpeer: %v", err)
			}
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatalf("testpeer: %v", err)
			}
			if err := os.Chmod(d, 0o700); err != nil {
				t.Fatalf("testpeer: %v", err)
			}
		}
	})
	return acct
}

// authorizeTestUserKeys adds lines to the test user's shared
// authorized_keys as one marked block and removes the block in t.Cleanup.
func authorizeTestUserKeys(t testing.TB, acct TestUserAccount, lines []string) {
	t.Helper()
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	id := fmt.Sprintf("pid=%d id=%s", os.Getpid(), hex.EncodeToString(idb[:]))
	path := filepath.Join(acct.Home, ".ssh", "authorized_keys")
	withLock(t, func() {
		kept := readKeptAuthorizedKeys(t, path, "")
		kept = append(kept, blockTag+"begin "+id)
		kept = append(kept, lines...)
		kept = append(kept, blockTag+"end "+id)
		writeAuthorizedKeys(t, acct, path, kept)
	})
	t.Cleanup(func() {
		withLock(t, func() {
			writeAuthorizedKeys(t, acct, path, readKeptAuthorizedKeys(t, path, id))
		})
	})
}

// readKeptAuthorizedKeys returns the lines of the file without the block
// with id drop and without blocks of processes that no longer exist.
func readKeptAuthorizedKeys(t testing.TB, path, drop string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	var kept []string
	skipping := "" // id of the block being dropped
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		if skipping != "" {
			if l == blockTag+"end "+skipping {
				skipping = ""
			}
			continue
		}
		if rest, ok := strings.CutPrefix(l, blockTag+"begin "); ok {
			if rest == drop || !blockOwnerAlive(rest) {
				skipping = rest
				continue
			}
		}
		kept = append(kept, l)
	}
	return kept
}

// blockOwnerAlive reports whether the process named by "pid=N id=X" exists.
func blockOwnerAlive(id string) bool {
	f := strings.Fields(id)
	if len(f) == 0 {
		return true
	}
	pidStr, ok := strings.CutPrefix(f[0], "pid=")
	if !ok {
		return true
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return true
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// writeAuthorizedKeys replaces path atomically with lines, owned by the
// test user, mode 0600.
func writeAuthorizedKeys(t testing.TB, acct TestUserAccount, path string, lines []string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".authorized_keys.*")
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	content := strings.Join(lines, "\n")
	if content != "" {
		content += "\n"
	}
	_, err = tmp.WriteString(content)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Chown(acct.UID, acct.GID)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		t.Fatalf("testpeer: write %s: %v", path, err)
	}
}

// DropbearOptions configures [StartDropbear].
type DropbearOptions struct {
	// HostKeys are passed with -r (dropbear accepts at most four). Default:
	// [HostKeys](t, KeyEd25519, KeyECDSA256, KeyECDSA521, KeyRSA3072).
	// Dropbear 2022.83 offers rsa-sha2-256 and ssh-rsa even without an RSA
	// key and then dies ("Failed assertion (rsa.c:164): `key != NULL'") if
	// the client picks one, so keep an RSA key unless the test wants that.
	HostKeys []*Key
	// AuthorizedKeys are authorised for [TestUser]. nil means one fresh
	// Ed25519 key; a non-nil empty slice means none.
	AuthorizedKeys []*Key
	// AuthorizedKeysLines are extra raw authorized_keys lines.
	AuthorizedKeysLines []string
	// PasswordAuth leaves password logins enabled. By default the harness
	// passes -s (like sshd's "PasswordAuthentication no"): otherwise dbclient
	// without a tty tries ten empty passwords, ~0.3 s each, after a refused key.
	PasswordAuth bool
	// Args are extra dropbear flags, e.g. "-s", "-j", "-k", "-T", "2",
	// "-W", "65536", "-m". -p, -P, -R, -F, -E and -i are set by the harness
	// and not allowed here.
	Args []string
}

// Dropbear is a running dropbear server on 127.0.0.1.
type Dropbear struct {
	Addr string // "127.0.0.1:PORT"
	Port int
	// User is the account to log in as: [TestUser].
	User       string
	HostKeys   []*Key
	ClientKeys []*Key

	proc *process
}

// StartDropbear starts "dropbear -F -E -P PIDFILE -p 127.0.0.1:PORT -r
// KEY... [-s] [ARGS...]" and returns once it listens. Its authorized keys are added to
// [TestUser]'s authorized_keys (see the package doc) for the test's
// duration. It skips (fails with SSHTAP_INTEROP=1) without dropbear or
// root. dropbear and everything it started are killed in t.Cleanup; its log
// is dumped with t.Log if the test failed.
func StartDropbear(t testing.TB, opts DropbearOptions) *Dropbear {
	t.Helper()
	bin := Binary(t, "dropbear")
	Require(t, "dropbearconvert")
	RequireRoot(t)
	for _, a := range opts.Args {
		switch a {
		case "-p", "-P", "-R", "-F", "-E", "-i":
			t.Fatalf("testpeer: dropbear flag %s is set by the harness", a)
		}
	}
	hostKeys := opts.HostKeys
	if len(hostKeys) == 0 {
		hostKeys = HostKeys(t, KeyEd25519, KeyECDSA256, KeyECDSA521, KeyRSA3072)
	}
	if len(hostKeys) > 4 {
		t.Fatalf("testpeer: dropbear 2022.83 accepts at most 4 host keys (\"Too many hostkeys\"), got %d", len(hostKeys))
	}
	clientKeys := opts.AuthorizedKeys
	if clientKeys == nil {
		clientKeys = []*Key{NewKey(t, KeyEd25519)}
	}
	var lines []string
	for _, k := range clientKeys {
		lines = append(lines, k.AuthorizedKey)
	}
	for _, l := range opts.AuthorizedKeysLines {
		if strings.ContainsAny(l, "\r\n") || strings.HasPrefix(l, blockTag) {
			t.Fatalf("testpeer: bad authorized_keys line %q", l)
		}
		lines = append(lines, l)
	}
	acct := EnsureTestUser(t)
	if len(lines) > 0 {
		authorizeTestUserKeys(t, acct, lines)
	}

	dir := t.TempDir()
	var keyArgs []string
	for _, k := range hostKeys {
		keyArgs = append(keyArgs, "-r", k.DropbearPath(t))
	}
	p, port := startListener(t, "dropbear", dir, func(port int, _ string) *exec.Cmd {
		args := []string{"-F", "-E", "-P", filepath.Join(dir, "dropbear.pid"),
			"-p", "127.0.0.1:" + strconv.Itoa(port)}
		args = append(args, keyArgs...)
		if !opts.PasswordAuth {
			args = append(args, "-s")
		}
		args = append(args, opts.Args...)
		return exec.Command(bin, args...)
	})
	return &Dropbear{
		Addr:       "127.0.0.1:" + strconv.Itoa(port),
		Port:       port,
		User:       acct.Name,
		HostKeys:   hostKeys,
		ClientKeys: clientKeys,
		proc:       p,
	}
}

// ClientKey returns the first authorized client key (nil if none).
func (d *Dropbear) ClientKey() *Key { return firstKey(d.ClientKeys) }

// Log returns dropbear's log so far.
func (d *Dropbear) Log() string { return d.proc.log() }

// WaitLog polls dropbear's log until it contains substr, failing the test
// after 10 s, and returns the log.
func (d *Dropbear) WaitLog(t testing.TB, substr string) string {
	t.Helper()
	l, ok := d.proc.waitLog(substr, logTimeout)
	if !ok {
		t.Fatalf("testpeer: dropbear log has no %q after %v", substr, logTimeout)
	}
	return l
}

// Pid returns the listening dropbear's process id.
func (d *Dropbear) Pid() int { return d.proc.pid() }

// Stop kills dropbear and all its children now and waits for it;
// t.Cleanup does this anyway.
func (d *Dropbear) Stop(t testing.TB) { t.Helper(); d.proc.stop(t) }

// KnownHostsFile writes a known_hosts file with all host keys for Addr and
// returns its path.
func (d *Dropbear) KnownHostsFile(t testing.TB) string {
	t.Helper()
	return writeKnownHosts(t, d.Addr, d.HostKeys)
}
