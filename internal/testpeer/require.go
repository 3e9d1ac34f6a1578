package testpeer

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InteropEnv is the environment variable that turns skips into failures.
const InteropEnv = "SSHTAP_INTEROP"

// SSHDPath is the absolute path sshd is run from (sshd refuses a relative
// path for re-execution).
const SSHDPath = "/usr/sbin/sshd"

// debianPackage maps a binary name to the Debian package that ships it.
var debianPackage = map[string]string{
	"sshd":            "openssh-server",
	"ssh":             "openssh-client",
	"ssh-keygen":      "openssh-client",
	"ssh-add":         "openssh-client",
	"ssh-agent":       "openssh-client",
	"ssh-keyscan":     "openssh-client",
	"scp":             "openssh-client",
	"sftp":            "openssh-client",
	"dropbear":        "dropbear-bin",
	"dbclient":        "dropbear-bin",
	"dropbearkey":     "dropbear-bin",
	"dropbearconvert": "dropbear-bin",
	"xauth":           "xauth",
	"curl":            "curl",
	"nc":              "netcat-openbsd",
	"useradd":         "passwd",
	"usermod":         "passwd",
	"chpasswd":        "passwd",
	"bash":            "bash",
}

// Interop reports whether SSHTAP_INTEROP=1, i.e. whether missing peers are
// failures rather than skips.
func Interop() bool { return os.Getenv(InteropEnv) == "1" }

// skipOrFail skips the test, or fails it when SSHTAP_INTEROP=1.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if Interop() {
		t.Fatalf("testpeer: "+format+" ("+InteropEnv+"=1, so this is a failure)", args...)
	}
	t.Skipf("testpeer: "+format, args...)
}

// lookBinary finds a binary by name. sshd is only ever taken from
// SSHDPath; other names are searched in $PATH and then in /usr/sbin,
// /usr/bin, /sbin and /bin (a non-root $PATH often lacks the sbin dirs).
func lookBinary(name string) (string, error) {
	if filepath.IsAbs(name) {
		if isExecutable(name) {
			return name, nil
		}
		return "", errors.New("not an executable file")
	}
	if name == "sshd" {
		if isExecutable(SSHDPath) {
			return SSHDPath, nil
		}
		return "", errors.New(SSHDPath + " not found")
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Require skips the test with a message naming the binary and the Debian
// package that provides it if any of binaries is not installed; with
// SSHTAP_INTEROP=1 it fails the test instead. Names are plain command names
// ("sshd", "ssh", "dropbear", "dbclient", "xauth", ...) or absolute paths.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	for _, b := range binaries {
		if _, err := lookBinary(b); err != nil {
			pkg := debianPackage[filepath.Base(b)]
			if pkg == "" {
				pkg = "the package that provides it"
			}
			skipOrFail(t, "%s is not installed (%v); install the Debian package %s (apt-get install %s)", b, err, pkg, pkg)
		}
	}
}

// RequireRoot skips the test (fails it with SSHTAP_INTEROP=1) unless the
// process runs as root, which sshd and the dropbear test user need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "this test runs sshd/dropbear and needs root (euid is %d)", os.Geteuid())
	}
}

// Binary returns the absolute path of an installed binary after [Require]
// (so it skips or fails when the binary is missing).
func Binary(t testing.TB, name string) string {
	t.Helper()
	Require(t, name)
	p, err := lookBinary(name)
	if err != nil {
		t.Fatalf("testpeer: %s: %v", name, err)
	}
	return p
}
