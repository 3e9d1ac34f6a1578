package sshtap

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"

	"sshtap/internal/testpeer"
)

// pkg/sftp's client over an sshtap Conn (through NewSSHClient) against
// sshd's internal-sftp: a 64 MiB file up and down with equal SHA-256, list,
// stat, rename, remove, and a clear error for a missing file.
func TestInteropSFTPClient(t *testing.T) {
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{Config: []string{"Subsystem sftp internal-sftp"}})
	c, _ := ioSessionDial(t, d.Addr, d.User, d.ClientKey(), 0)
	client, err := NewSSHClient(ioContext(t), c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	dir := t.TempDir() // sshd runs on this machine: its files are ours to check
	size := int64(64 << 20)
	if testing.Short() {
		size = 4 << 20
	}
	src := rand.New(rand.NewPCG(1, 2))
	up := sha256.New()
	f, err := sc.Create(filepath.Join(dir, "up.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.MultiWriter(f, up), io.LimitReader(readerFunc(func(b []byte) (int, error) {
		for i := range b {
			b[i] = byte(src.Uint32())
		}
		return len(b), nil
	}), size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join(dir, "up.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(local) != [32]byte(up.Sum(nil)) {
		t.Fatal("the uploaded file differs on the server")
	}

	if err := sc.Rename(filepath.Join(dir, "up.bin"), filepath.Join(dir, "moved.bin")); err != nil {
		t.Fatal(err)
	}
	st, err := sc.Stat(filepath.Join(dir, "moved.bin"))
	if err != nil || st.Size() != size || st.IsDir() {
		t.Fatalf("Stat = %v, %v", st, err)
	}
	entries, err := sc.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "moved.bin" {
		t.Fatalf("ReadDir = %v, %v", entries, err)
	}

	g, err := sc.Open(filepath.Join(dir, "moved.bin"))
	if err != nil {
		t.Fatal(err)
	}
	down := sha256.New()
	n, err := g.WriteTo(down)
	g.Close()
	if err != nil || n != size || !equalSum(down.Sum(nil), up.Sum(nil)) {
		t.Fatalf("download: %d bytes, %v, same SHA-256: %v", n, err, equalSum(down.Sum(nil), up.Sum(nil)))
	}

	if err := sc.Remove(filepath.Join(dir, "moved.bin")); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Stat(filepath.Join(dir, "moved.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a removed file = %v, want fs.ErrNotExist", err)
	}
	if _, err := sc.Open(filepath.Join(dir, "never-there")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing file = %v, want fs.ErrNotExist", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

func equalSum(a, b []byte) bool { return string(a) == string(b) }
