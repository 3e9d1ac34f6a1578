package testpeer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 15 * time.Second // a peer must be listening within this
	stopTimeout  = 10 * time.Second // a killed peer must be reaped within this
	logTimeout   = 10 * time.Second // WaitLog's deadline
	maxPortTries = 5
)

// process is a started peer. Its stdout and stderr go to a log file (so
// exec.Cmd starts no copying goroutines) and one goroutine waits for it;
// that goroutine ends when the process is reaped in stop.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	stopped sync.Once
}

// startProcess starts cmd with a fresh process group, the log file at
// logPath as stderr (and stdout unless set) and SIGKILL as parent-death
// signal, so a crashed test binary does not leave peers behind.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd.Stderr = logf
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// log returns everything the process logged so far.
func (p *process) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	return string(b)
}

// waitLog polls the log until it contains substr, up to timeout.
func (p *process) waitLog(substr string, timeout time.Duration) (string, bool) {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 20*time.Millisecond) {
		l := p.log()
		if strings.Contains(l, substr) {
			return l, true
		}
		if time.Now().After(deadline) {
			return l, false
		}
		time.Sleep(delay) // polling interval, bounded by the deadline
	}
}

// stop kills the process and all its descendants and waits for the
// process to be reaped, failing t if it is not. It is idempotent.
func (p *process) stop(t testing.TB) {
	t.Helper()
	if err := p.kill(); err != nil {
		t.Errorf("testpeer: %v", err)
	}
}

// kill is stop without a testing.TB; only the first call does anything.
func (p *process) kill() error {
	var err error
	p.stopped.Do(func() {
		if !p.exited() {
			killTree(p.pid())
		}
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			err = fmt.Errorf("%s (pid %d) not reaped %v after SIGKILL", p.name, p.pid(), stopTimeout)
		}
	})
	return err
}

// registerCleanup stops the process in t.Cleanup and, if the test failed,
// logs the process's log afterwards.
func (p *process) registerCleanup(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testpeer: %s log (%s):\n%s", p.name, p.logPath, p.log())
		}
	})
	t.Cleanup(func() { p.stop(t) })
}

// procInfo is the part of /proc/PID/stat the harness needs.
type procInfo struct{ ppid, pgrp int }

// scanProcs reads ppid and pgrp of every process.
func scanProcs() map[int]procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	m := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 {
			continue
		}
		ppid, err1 := strconv.Atoi(f[1])
		pgrp, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		m[pid] = procInfo{ppid: ppid, pgrp: pgrp}
	}
	return m
}

// killTree SIGKILLs root and every process descended from it or in its
// process group. The processes are first frozen with SIGSTOP, rescanning
// until no new one appears, so none can fork a child that escapes.
func killTree(root int) {
	frozen := map[int]bool{root: true}
	_ = syscall.Kill(root, syscall.SIGSTOP)
	for range 20 {
		procs := scanProcs()
		added := false
		for changed := true; changed; {
			changed = false
			for pid, pi := range procs {
				if frozen[pid] {
					continue
				}
				if frozen[pi.ppid] || pi.pgrp == root {
					frozen[pid] = true
					_ = syscall.Kill(pid, syscall.SIGSTOP)
					changed, added = true, true
				}
			}
		}
		if !added {
			break
		}
	}
	for pid := range frozen {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// listening reports whether process pid has a TCP socket listening on
// 127.0.0.1:port, from /proc/net/tcp and /proc/PID/fd. ok is false when
// /proc cannot be read.
func listening(pid, port int) (yes, ok bool) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
		if len(f) >= 10 && f[1] == want && f[3] == "0A" {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return false, true
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return false, true
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && inodes[l] {
			return true, true
		}
	}
	return false, true
}

// errPortInUse means the peer could not bind its port; the caller retries
// with another one.
var errPortInUse = errors.New("port in use")

// waitListening polls until p listens on 127.0.0.1:port, p exits, or the
// start deadline passes.
func waitListening(p *process, port int) error {
	deadline := time.Now().Add(startTimeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 20*time.Millisecond) {
		if p.exited() {
			l := p.log()
			if strings.Contains(l, "Address already in use") {
				return errPortInUse
			}
			return fmt.Errorf("%s exited before listening (%v)", p.name, p.waitErr)
		}
		yes, ok := listening(p.pid(), port)
		if !ok { // no /proc: fall back to connecting
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				c.Close()
				yes = true
			}
		}
		if yes {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on 127.0.0.1:%d after %v", p.name, port, startTimeout)
		}
		select { // polling interval, bounded by the deadline; exit ends it early
		case <-p.done:
		case <-time.After(delay):
		}
	}
}

// startListener starts a peer made by build on a free port, retrying with
// a new port when the bind fails, and registers its cleanup. The log of
// attempt i goes to dir/name.i.log.
func startListener(t testing.TB, name, dir string, build func(port int, logPath string) *exec.Cmd) (*process, int) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testpeer: %s: find a free port on 127.0.0.1: %v", name, err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("%s.%d.log", name, attempt))
		p, err := startProcess(name, build(port, logPath), logPath)
		if err != nil {
			t.Fatalf("testpeer: start %s: %v", name, err)
		}
		err = waitListening(p, port)
		if err == nil {
			p.registerCleanup(t)
			return p, port
		}
		p.stop(t)
		if errors.Is(err, errPortInUse) && attempt+1 < maxPortTries {
			t.Logf("testpeer: %s: port %d taken, retrying", name, port)
			continue
		}
		t.Fatalf("testpeer: %v; log:\n%s", err, p.log())
	}
}
