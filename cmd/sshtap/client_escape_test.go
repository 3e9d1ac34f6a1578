package main

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshtap/internal/testpeer"
)

// The escape sequences on an interactive shell with sshd, typed on a real
// pty.

// readLine is typed to the remote shell: it reads one line and prints it
// in brackets, so the output shows exactly what the shell received. The
// line is typed once the computed mark "reading-2" is out: the shell has
// then left its line editor, whose terminal mode change may flush input
// typed earlier.
const readLine = "echo reading-$((1+1)); read v; echo \"got[$v]\"\r"

func TestClientEscapeDisconnect(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", strconv.Itoa(d.Port), "root@127.0.0.1")
	off := p.waitFor(0, "# ", 30*time.Second)
	// Not after a newline: "~." is data.
	p.send(readLine)
	off = p.waitFor(off, "reading-2", 20*time.Second)
	p.send("a~.b\r")
	off = p.waitFor(off, "got[a~.b]", 20*time.Second)
	off = p.waitFor(off, "# ", 20*time.Second)
	// The help, then ~. after a newline ends the connection.
	p.send("~?")
	off = p.waitFor(off, "only recognized immediately after newline", 20*time.Second)
	p.send("~.")
	p.waitFor(off, "~.", 20*time.Second)
	if code := p.wait(30 * time.Second); code != 255 {
		t.Errorf("exit code %d after ~., want 255 (as ssh)", code)
	}
	if out := p.output(); !strings.Contains(out, "connection to 127.0.0.1 closed (~.)") {
		t.Errorf("no 'connection ... closed' line after ~.:\n%s", out)
	}
	if !p.cooked() {
		t.Error("the terminal was left in raw mode")
	}
	d.WaitLog(t, "disconnected by user")
}

// TestClientEscapeTilde: ~~ sends one ~; -e none turns escapes off; -e
// with ^X notation makes a control character the escape character.
func TestClientEscapeTilde(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	env := []string{"HOME=" + home, "USER=root"}
	port := strconv.Itoa(d.Port)

	for _, tc := range []struct {
		name string
		args []string
		line string // typed while the shell reads a line
		got  string // what the shell received
		end  string // typed at the prompt to finish
		code int
	}{
		{"tilde-tilde", nil, "~~z~~\r", "got[~z~~]", "exit 4\r", 4},
		{"none", []string{"-e", "none"}, "~.\r", "got[~.]", "exit 5\r", 5},
		// ~ is not the escape character now; ^] is.
		{"control-char", []string{"-o", "EscapeChar=^]"}, "~.\r", "got[~.]", "\x1d.", 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startPTY(t, env, append(append([]string{"-p", port}, tc.args...), "root@127.0.0.1")...)
			off := p.waitFor(0, "# ", 30*time.Second)
			p.send(readLine)
			off = p.waitFor(off, "reading-2", 20*time.Second)
			p.send(tc.line)
			off = p.waitFor(off, tc.got, 20*time.Second)
			p.waitFor(off, "# ", 20*time.Second)
			p.send(tc.end)
			if code := p.wait(30 * time.Second); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
		})
	}
}

// TestClientEscapeCommandLine: ~C adds a -L forward and a -D forward at
// run time, ~# lists them, -KL cancels one.
func TestClientEscapeCommandLine(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	echo := echoServer(t)
	p := startPTY(t, []string{"HOME=" + home, "USER=root"}, "-p", strconv.Itoa(d.Port), "root@127.0.0.1")
	off := p.waitFor(0, "# ", 30*time.Second)

	lport := strconv.Itoa(freeTCPPort(t))
	laddr := "127.0.0.1:" + lport
	p.send("~C")
	off = p.waitFor(off, "sshtap> ", 20*time.Second)
	p.send("-L " + laddr + ":127.0.0.1:" + strconv.Itoa(echo.Port) + "\r")
	off = p.waitFor(off, "Forwarding port.", 20*time.Second)
	echoThrough(t, laddr, 100_000)

	dport := strconv.Itoa(freeTCPPort(t))
	p.send("~C-D 127.0.0.1:" + dport + "\r")
	off = p.waitFor(off, "Forwarding port.", 20*time.Second)
	c, reply := socksRequest(t, "127.0.0.1:"+dport, socks5Connect(1, []byte{127, 0, 0, 1}, echo.Port), 12)
	if reply[3] != 0 {
		t.Fatalf("SOCKS reply %x through the ~C -D forward", reply)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the ~C -D forward: %q %v", buf, err)
	}

	// ~# lists both forwards and the open SOCKS connection.
	p.send("~#")
	off = p.waitFor(off, "The following connections are open:", 20*time.Second)
	off = p.waitFor(off, "-> 127.0.0.1:"+strconv.Itoa(echo.Port), 20*time.Second)
	list := p.output()
	for _, w := range []string{"-L " + laddr + " -> 127.0.0.1:" + strconv.Itoa(echo.Port), "-D 127.0.0.1:" + dport + " (SOCKS"} {
		if !strings.Contains(list, w) {
			t.Errorf("~# output lacks %q:\n%s", w, list)
		}
	}
	c.Close()

	// Errors are shown, the session goes on.
	p.send("~C-L nonsense\r")
	off = p.waitFor(off, "Bad local forwarding specification", 20*time.Second)
	p.send("~C-KL 1\r")
	off = p.waitFor(off, "Unknown port forwarding.", 20*time.Second)
	p.send("~C-KL " + lport + "\r")
	off = p.waitFor(off, "Canceled forwarding.", 20*time.Second)
	if c, err := net.DialTimeout("tcp", laddr, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the cancelled -L listener %s still accepts", laddr)
	}
	// The shell still works, and saw none of it.
	p.send("echo still-$((3+4))\r")
	off = p.waitFor(off, "still-7", 20*time.Second)
	p.waitFor(off, "# ", 20*time.Second)
	p.send("exit\r")
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestClientEscapeSuspend: ~^Z stops sshtap with the terminal restored;
// once continued the session goes on in raw mode. sshtap runs as a job of
// a shell with job control, as from a login shell (a stop signal sent to
// an orphaned process group is discarded): the shell reports the stop
// (status 128+SIGTSTP), reads a line and resumes it with fg.
func TestClientEscapeSuspend(t *testing.T) {
	t.Parallel()
	d := testpeer.StartSSHD(t, testpeer.SSHDOptions{})
	home := peerHome(t, d, true)
	p := startPTYJob(t, []string{"HOME=" + home, "USER=root"}, "-p", strconv.Itoa(d.Port), "root@127.0.0.1")
	off := p.waitFor(0, "# ", 30*time.Second)
	p.send("echo before-$((1+1))\r")
	off = p.waitFor(off, "before-2", 20*time.Second)
	off = p.waitFor(off, "# ", 20*time.Second)
	if p.cooked() {
		t.Fatal("the terminal is not raw during the session")
	}
	p.send("~\x1a")
	off = p.waitFor(off, "[suspend sshtap]", 20*time.Second)
	off = p.waitFor(off, "job-status-"+strconv.Itoa(128+int(syscall.SIGTSTP)), 20*time.Second)
	if !p.cooked() {
		t.Error("the terminal is still raw while sshtap is suspended")
	}
	// fg continues it (SIGCONT): raw again, the session as it was.
	p.send("\r") // the line sh reads before fg
	// Nothing is printed when sshtap runs again: poll for the raw
	// terminal it sets up then.
	deadline := time.Now().Add(20 * time.Second)
	for p.cooked() {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal is not raw 20s after fg:\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
	p.send("echo back-$((2*4))\r")
	off = p.waitFor(off, "back-8", 20*time.Second)
	p.waitFor(off, "# ", 20*time.Second)
	p.send("exit 6\r")
	if code := p.wait(30 * time.Second); code != 6 {
		t.Errorf("exit code %d, want 6 (the remote shell's, through fg)", code)
	}
	if !p.cooked() {
		t.Error("the terminal was left in raw mode")
	}
}

// startPTYJob is startPTY with sshtap run by sh with job control, then
// resumed with fg when it stops and a line is typed; sh prints
// "job-status-N" in between.
func startPTYJob(t *testing.T, env []string, args ...string) *ptyProc {
	t.Helper()
	sh := testpeer.Binary(t, "sh")
	bin := sshtapBin(t)
	return startPTYWith(t, env, nil, nil, func(cmd *exec.Cmd) {
		cmd.Path = sh
		cmd.Args = append([]string{"sh", "-c", `set -m; "$0" "$@"; echo "job-status-$?"; read line; fg`, bin}, args...)
	}, args...)
}
