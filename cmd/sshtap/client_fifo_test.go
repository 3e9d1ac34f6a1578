package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sshtap/internal/testpeer"
)

// TestClientEventsFifoStalledReader: a reader of the --events fifo that
// stops reading does not keep sshtap from exiting once the command ended:
// the events it did not take are dropped after a short wait.
func TestClientEventsFifoStalledReader(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	fifo := filepath.Join(t.TempDir(), "events")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that opens the fifo and never reads, with the smallest
	// pipe buffer, so that the events (pings every 20ms) fill it. The
	// pings are there to make events, so slow answers from sshd on a
	// loaded machine must not end the connection (ServerAliveCountMax).
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := unix.FcntlInt(r.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := runBin(t, 40*time.Second, []string{"HOME=" + home, "USER=root"}, "", "--json", "--keepalive", "20ms", "-o", "ServerAliveCountMax=100000",
		"--events", fifo, "-p", strconv.Itoa(d.Port), "root@127.0.0.1", "sleep 1; echo done")
	if res.code != 0 || res.stdout != "done\n" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", res.code, res.stdout, res.stderr)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v to exit with a stalled events reader", el)
	}
}
