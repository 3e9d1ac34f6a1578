package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// errNoPrompt means a question could not be asked: BatchMode, or no
// terminal and no askpass program.
var errNoPrompt = errors.New("cannot ask: no terminal (set SSH_ASKPASS or use keys)")

// errInterrupted is a question abandoned by Ctrl-C (or SIGTERM, SIGHUP).
var errInterrupted = errors.New("interrupted")

// prompter asks the user questions on the controlling terminal (/dev/tty,
// so redirected stdin and stdout stay the session's), or through an askpass
// program as ssh does: $SSH_ASKPASS when there is no terminal, or always
// when SSH_ASKPASS_REQUIRE=force.
type prompter struct {
	mu      sync.Mutex
	batch   bool
	askpass string
	force   bool
	tty     *os.File // opened lazily
	ttyErr  error
	opened  bool

	// onAsk, if set, is called with true before a question shows on the
	// terminal and with false after it was answered.
	onAsk func(asking bool)

	// interrupt, when closed, abandons the question being asked (the
	// terminal read is cut short and echo restored): Ctrl-C at a password
	// prompt ends sshtap as it ends ssh.
	interrupt <-chan struct{}
}

func newPrompter(getenv func(string) string, batch bool) *prompter {
	p := &prompter{batch: batch, askpass: getenv("SSH_ASKPASS")}
	switch getenv("SSH_ASKPASS_REQUIRE") {
	case "force":
		p.force = p.askpass != ""
	case "never":
		p.askpass = ""
	}
	return p
}

// available reports whether a question can be asked at all.
func (p *prompter) available() bool {
	if p.batch {
		return false
	}
	if p.askpass != "" {
		return true
	}
	return p.terminal() != nil
}

func (p *prompter) terminal() *os.File {
	if !p.opened {
		p.opened = true
		p.tty, p.ttyErr = os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if p.ttyErr == nil && !term.IsTerminal(fdOf(p.tty)) {
			p.tty.Close()
			p.tty, p.ttyErr = nil, errors.New("/dev/tty is not a terminal")
		}
	}
	return p.tty
}

// ask shows question and returns the answer without its newline; echo false
// hides the typing (passwords).
func (p *prompter) ask(question string, echo bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.batch {
		return "", errNoPrompt
	}
	tty := p.terminal()
	if p.askpass != "" && (p.force || tty == nil) {
		return p.runAskpass(question, echo)
	}
	if tty == nil {
		return "", errNoPrompt
	}
	if p.onAsk != nil {
		p.onAsk(true)
		defer p.onAsk(false)
	}
	if !echo {
		// Echo goes off before the prompt shows, as readpassphrase(3)
		// does: a password typed as soon as the prompt appears is never
		// echoed.
		restore, ok := echoOff(fdOf(tty))
		fmt.Fprint(tty, question)
		if !ok {
			// Fd puts the terminal back in blocking mode, which
			// term.ReadPassword needs; the read is then not cut short.
			b, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprint(tty, "\r\n")
			return string(b), err
		}
		line, err := p.readLine(tty)
		restore()
		fmt.Fprint(tty, "\r\n")
		return line, err
	}
	fmt.Fprint(tty, question)
	return p.readLine(tty)
}

// readLine reads one line from the terminal, cut short when interrupt
// closes.
func (p *prompter) readLine(tty *os.File) (string, error) {
	done := make(chan struct{})
	defer close(done)
	tty.SetReadDeadline(time.Time{})
	if p.interrupt != nil {
		go func() {
			select {
			case <-p.interrupt:
				tty.SetReadDeadline(time.Now())
			case <-done:
			}
		}()
	}
	line, err := bufio.NewReader(tty).ReadString('\n')
	if p.interrupt != nil {
		select {
		case <-p.interrupt:
			return "", errInterrupted
		default:
		}
	}
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// say writes an informational line on the terminal, if there is one.
func (p *prompter) say(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tty := p.terminal(); tty != nil && !p.batch {
		fmt.Fprint(tty, s)
	}
}

// runAskpass runs the askpass program with the question as its argument and
// reads the answer from its stdout, as ssh does (SSH_ASKPASS_PROMPT=confirm
// is not used: yes/no questions are asked as text).
func (p *prompter) runAskpass(question string, echo bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.askpass, strings.TrimSpace(question))
	cmd.Stdin = nil
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("askpass %s: %w", p.askpass, err)
	}
	return strings.TrimRight(string(out), "\r\n"), nil
}

func (p *prompter) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty != nil {
		p.tty.Close()
	}
}

// fdOf returns f's descriptor without File.Fd's side effect of switching it
// to blocking mode, which would stop read deadlines (and so interrupt) from
// working on the terminal.
func fdOf(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
