package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// opensshFileClient runs OpenSSH's sftp or scp against addr with key.
func opensshFileClient(t *testing.T, bin, addr string, key *testpeer.Key, args ...string) (string, error) {
	t.Helper()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	all := []string{"-F", "/dev/null", "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=no",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-i", key.Path, "-P", port}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testpeer.Binary(t, bin), append(all, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func randomFile(t *testing.T, path string, size int) [32]byte {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// OpenSSH's sftp (batch mode) and scp against sshtap serve's sftp
// subsystem: 64 MiB each way with equal SHA-256, mkdir, rename, ls, rm,
// rmdir; paths that lead out of the root are refused.
func TestServeSFTP(t *testing.T) {
	testpeer.Require(t, "sftp", "scp")
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	local := filepath.Join(base, "local")
	for _, d := range []string{root, local, filepath.Join(base, "outside")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "outside", "secret"), []byte("not yours"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symbolic link inside the root that points out of it.
	if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", filepath.Join(base, "hk"),
		"--authorized-keys", writeAuthorizedKeys(t, key), "--sftp-root", root)

	size := 64 << 20
	sum := randomFile(t, filepath.Join(local, "big.bin"), size)
	batch := filepath.Join(base, "batch")
	os.WriteFile(batch, []byte(strings.Join([]string{
		"put " + filepath.Join(local, "big.bin") + " big.bin",
		"mkdir sub",
		"rename big.bin sub/moved.bin",
		"ls -l sub",
		"get sub/moved.bin " + filepath.Join(local, "back.bin"),
		"rm sub/moved.bin",
		"rmdir sub",
		"ls /",
	}, "\n")+"\n"), 0o644)
	out, err := opensshFileClient(t, "sftp", r.addr, key, "-b", batch, "u@127.0.0.1")
	if err != nil {
		t.Fatalf("sftp -b: %v\n%s\nserve:\n%s", err, out, r.stderr.String())
	}
	if !strings.Contains(out, "moved.bin") || !strings.Contains(out, "escape") {
		t.Errorf("sftp listings lack moved.bin or escape:\n%s", out)
	}
	if fileSum(t, filepath.Join(local, "back.bin")) != sum {
		t.Fatal("the file came back different through sftp")
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("root holds %d entries after rm and rmdir, want the symlink only", len(entries))
	}

	// RENAME does not replace an existing file (POSIX rename does), RMDIR
	// removes directories only; "-" lets the batch go on after a failure.
	small := filepath.Join(local, "small.txt")
	os.WriteFile(small, []byte("small\n"), 0o644)
	os.WriteFile(batch, []byte(strings.Join([]string{
		"put " + small + " a.txt",
		"put " + small + " b.txt",
		"-rename a.txt b.txt",
		"-rmdir a.txt",
		"-rm /",
	}, "\n")+"\n"), 0o644)
	if out, err := opensshFileClient(t, "sftp", r.addr, key, "-b", batch, "u@127.0.0.1"); err != nil {
		t.Fatalf("sftp -b: %v\n%s", err, out)
	}
	for _, name := range []string{"a.txt", "b.txt"} {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			t.Errorf("%s: %v (a refused rename, rmdir or rm took it)", name, err)
		}
		os.Remove(filepath.Join(root, name))
	}

	// scp (the SFTP protocol since OpenSSH 9.0), both ways.
	if out, err := opensshFileClient(t, "scp", r.addr, key, filepath.Join(local, "big.bin"), "u@127.0.0.1:/scp.bin"); err != nil {
		t.Fatalf("scp up: %v\n%s", err, out)
	}
	if fileSum(t, filepath.Join(root, "scp.bin")) != sum {
		t.Fatal("scp upload differs")
	}
	if out, err := opensshFileClient(t, "scp", r.addr, key, "u@127.0.0.1:/scp.bin", filepath.Join(local, "scp-back.bin")); err != nil {
		t.Fatalf("scp down: %v\n%s", err, out)
	}
	if fileSum(t, filepath.Join(local, "scp-back.bin")) != sum {
		t.Fatal("scp download differs")
	}

	// Out of the root: "..", an absolute path, a symbolic link.
	for _, path := range []string{"../outside/secret", filepath.Join(base, "outside", "secret"), "escape/secret"} {
		b := filepath.Join(base, "escape-batch")
		os.WriteFile(b, []byte("get "+path+" "+filepath.Join(local, "stolen")+"\n"), 0o644)
		if out, err := opensshFileClient(t, "sftp", r.addr, key, "-b", b, "u@127.0.0.1"); err == nil {
			t.Errorf("get %s succeeded:\n%s", path, out)
		}
		if _, err := os.Stat(filepath.Join(local, "stolen")); err == nil {
			t.Fatalf("get %s fetched the file outside the root", path)
		}
	}
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	if !strings.Contains(r.stderr.String(), "session: subsystem sftp (rooted at "+root+")") {
		t.Errorf("no sftp note:\n%s", r.stderr.String())
	}
}

// sshtap serve with two host keys and OpenSSH's ssh -o UpdateHostKeys=yes
// knowing one: ssh learns the other, which serve proves.
func TestServeUpdateHostKeys(t *testing.T) {
	testpeer.Require(t, "ssh")
	key := testpeer.NewKey(t, testpeer.KeyEd25519)
	ecdsa := testpeer.NewKey(t, testpeer.KeyECDSA256)
	dir := t.TempDir()
	hk := filepath.Join(dir, "hk")
	r := startServe(t, nil, "--listen", "127.0.0.1:0", "--host-key", hk, "--host-key", ecdsa.Path,
		"--authorized-keys", writeAuthorizedKeys(t, key), "--no-sftp")
	select {
	case l := <-r.stdout.lines:
		if !strings.HasPrefix(l, "host key ecdsa-sha2-nistp256 ") {
			t.Fatalf("second host key line %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no second host key line")
	}
	pub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	port := r.addr[strings.LastIndexByte(r.addr, ':')+1:]
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte("[127.0.0.1]:"+port+" "+f[0]+" "+f[1]+"\n"), 0o600)
	res := testpeer.SSHClient{Addr: r.addr, User: "u", Keys: []*testpeer.Key{key}, KnownHosts: kh, Command: []string{"true"},
		Options: []string{"UpdateHostKeys=yes", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256"}}.Run(t)
	if res.ExitCode != 0 {
		t.Fatalf("ssh: %s", res)
	}
	data, _ := os.ReadFile(kh)
	if !strings.Contains(string(data), strings.Fields(ecdsa.AuthorizedKey)[1]) {
		t.Errorf("known_hosts lacks serve's ECDSA key after UpdateHostKeys:\n%s", data)
	}
}
