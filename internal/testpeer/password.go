package testpeer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// passwordMu and the lock file passwordLock serialise the tests that give
// the test user a password, within this process and across test processes
// (several packages' or engineers' runs at once).
var passwordMu sync.Mutex

const passwordLock = "/tmp/sshtap-testuser-password.lock"

// TestUserPassword gives [TestUser] a fresh random password (chpasswd, as
// root) for the test's duration and returns the user name and the password.
// The tests that use it run one at a time: the lock is held until the test's
// cleanup, which puts the original password field (normally "*", no
// password) back with usermod -p. It skips (fails with SSHTAP_INTEROP=1)
// without root, useradd, chpasswd or usermod.
func TestUserPassword(t testing.TB) (user, pw string) {
	t.Helper()
	acct := EnsureTestUser(t)
	chpasswd := Binary(t, "chpasswd")
	usermod := Binary(t, "usermod")
	passwordMu.Lock()
	lf, err := os.OpenFile(passwordLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		passwordMu.Unlock()
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		lf.Close()
		passwordMu.Unlock()
		t.Fatal(err)
	}
	unlock := func() {
		syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		lf.Close()
		passwordMu.Unlock()
	}
	orig, err := shadowField(acct.Name)
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer unlock()
		if out, err := exec.Command(usermod, "-p", orig, acct.Name).CombinedOutput(); err != nil {
			t.Errorf("usermod -p: %v: %s", err, out)
		}
	})
	var b [12]byte
	rand.Read(b[:])
	pw = "Tp-" + hex.EncodeToString(b[:])
	cmd := exec.Command(chpasswd)
	cmd.Stdin = strings.NewReader(acct.Name + ":" + pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
	return acct.Name, pw
}

// shadowField returns user's password field from /etc/shadow.
func shadowField(user string) (string, error) {
	b, err := os.ReadFile("/etc/shadow")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) > 1 && f[0] == user {
			return f[1], nil
		}
	}
	return "", errors.New("no /etc/shadow entry for " + user)
}
