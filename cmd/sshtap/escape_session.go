package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"sshtap"
)

// rawTerm is the local terminal of an interactive session: raw while the
// session runs, restored when it ends and while sshtap is suspended (~^Z).
// Its methods may be called from any goroutine.
type rawTerm struct {
	mu   sync.Mutex
	tty  *os.File // nil: stdin is not a terminal (-tt)
	old  *term.State
	raw  bool
	done bool // finish was called: the session is over, raw mode never again
	out  *eventOutput
	sess *sshtap.Session
}

// enter puts the terminal in raw mode; false if it could not.
func (r *rawTerm) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty == nil || r.raw || r.done {
		return r.raw
	}
	old, err := term.MakeRaw(int(r.tty.Fd()))
	if err != nil {
		return false
	}
	if r.old == nil {
		r.old = old
	}
	r.raw = true
	r.out.setRaw(true)
	return true
}

// leave restores the terminal's settings from before the session.
func (r *rawTerm) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaveLocked()
}

// finish restores the terminal for good: a suspend that resumes after the
// session ended (its stdin goroutine outlives the session) leaves it as it
// is.
func (r *rawTerm) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	r.leaveLocked()
}

func (r *rawTerm) leaveLocked() {
	if !r.raw {
		return
	}
	term.Restore(int(r.tty.Fd()), r.old)
	r.raw = false
	r.out.setRaw(false)
}

// suspend stops sshtap as ~^Z asks: the terminal restored, SIGTSTP to
// itself (its default action stops the process: sshtap does not catch it),
// and once continued (SIGCONT, fg) the terminal raw again and its size,
// which may have changed meanwhile, sent to the server. It reports false
// when sshtap was not stopped.
//
// kill(2) may return before the stop takes hold (another thread takes
// the signal), so suspend waits for SIGCONT. The kernel discards a stop
// signal sent to an orphaned process group (no job-control shell above
// sshtap): then no SIGCONT comes, and suspend gives up after
// suspendGrace. (While stopped, the timer does not run out early: it
// is only looked at once sshtap runs again, with SIGCONT waiting.)
func (r *rawTerm) suspend() (stopped bool) {
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	r.leave()
	syscall.Kill(os.Getpid(), syscall.SIGTSTP)
	grace := time.NewTimer(suspendGrace)
	select {
	case <-cont:
		stopped = true
	case <-grace.C:
		// Resumed after a long stop, SIGCONT may still be on its way.
		select {
		case <-cont:
			stopped = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	grace.Stop()
	r.enter()
	if r.tty != nil {
		if w, h, err := term.GetSize(int(r.tty.Fd())); err == nil {
			r.sess.WindowChange(h, w)
		}
	}
	return stopped
}

// escapeRequestTimeout bounds a ~C request that waits for the server.
const escapeRequestTimeout = 10 * time.Second

// suspendGrace is how long suspend waits for a stop that may have been
// discarded.
const suspendGrace = 2 * time.Second

// copyEscaped copies the local terminal to the session's stdin through
// the escape filter until stdin ends or ~. is typed; it then returns true
// for ~. (the caller disconnects). Text for the user goes to stderr,
// already in the terminal's raw-mode form (CR LF).
func (c *client) copyEscaped(ctx context.Context, stdin io.Writer, in io.Reader, f *escapeFilter, rt *rawTerm) (disconnect bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		for _, st := range f.feed(buf[:n]) {
			switch st.action {
			case escSend:
				if _, werr := stdin.Write(st.data); werr != nil {
					return false
				}
			case escShow:
				c.app.stderr.Write(st.data)
			case escDisconnect:
				return true
			case escSuspend:
				if !rt.suspend() {
					io.WriteString(c.app.stderr, "sshtap was not suspended: no job control (its process group is orphaned)\r\n")
				}
			case escList:
				io.WriteString(c.app.stderr, c.forwardList())
			case escCommand:
				io.WriteString(c.app.stderr, c.escapeCommand(ctx, string(st.data)))
			}
		}
		if err != nil {
			return false
		}
	}
}

// escapeCommand runs one ~C command line, as ssh's: -L, -R and -D add a
// forward, -KL, -KR and -KD cancel one, -h (or ?) lists them. It returns
// what to show, each line ending in CR LF.
func (c *client) escapeCommand(ctx context.Context, line string) string {
	s := strings.TrimSpace(line)
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return ""
	}
	if s[0] == 'h' || s[0] == 'H' || s[0] == '?' {
		return "Commands:\r\n" +
			"      -L[bind_address:]port:host:hostport    Request local forward\r\n" +
			"      -R[bind_address:]port:host:hostport    Request remote forward\r\n" +
			"      -D[bind_address:]port                  Request dynamic forward\r\n" +
			"      -KL[bind_address:]port                 Cancel local forward\r\n" +
			"      -KR[bind_address:]port                 Cancel remote forward\r\n" +
			"      -KD[bind_address:]port                 Cancel dynamic forward\r\n"
	}
	cancel := false
	if s[0] == 'K' {
		cancel, s = true, s[1:]
	}
	if s == "" || !strings.ContainsRune("LRD", rune(s[0])) {
		return "Invalid command.\r\n"
	}
	flag, spec := "-"+s[:1], strings.TrimSpace(s[1:])
	if cancel {
		// The stdin goroutine runs this: a server that does not answer a
		// cancel-tcpip-forward must not keep ~. from being typed.
		rctx, cancelReq := context.WithTimeout(ctx, escapeRequestTimeout)
		n, err := c.cancelForward(rctx, flag, spec)
		cancelReq()
		switch {
		case err != nil:
			return fmt.Sprintf("Bad forwarding close specification: %s\r\n", sanitizeLine(err.Error()))
		case n == 0:
			return "Unknown port forwarding.\r\n"
		}
		return "Canceled forwarding.\r\n"
	}
	var (
		fs  forwardSpec
		err error
	)
	if flag == "-D" {
		fs, err = parseDynamicForward(spec)
	} else {
		fs, err = parseForward(spec)
	}
	if err != nil {
		what := "local"
		if flag == "-R" {
			what = "remote"
		}
		return fmt.Sprintf("Bad %s forwarding specification: %s\r\n", what, sanitizeLine(err.Error()))
	}
	// Bounded for the same reason (a tcpip-forward request waits for the
	// server's answer); the forward itself lives on with the connection.
	fw, err := c.addForward(ctx, flag, fs, escapeRequestTimeout)
	if err != nil {
		return fmt.Sprintf("Port forwarding failed: %s\r\n", sanitizeLine(errorText(err)))
	}
	msg := "Forwarding port.\r\n"
	if p := fw.allocatedPort(); p != "" {
		msg = fmt.Sprintf("Allocated port %s for remote forward to %s\r\n", p, fs.dialAddr) + msg
	}
	return msg
}
