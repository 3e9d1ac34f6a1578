package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		for _, d := range []string{binDir, benchDir} {
			if d != "" {
				os.RemoveAll(d)
			}
		}
		os.Exit(code)
	}))
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// sshtapBin builds the command once per test binary and returns its path:
// the tests run it as a user would.
func sshtapBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "sshtap-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "sshtap")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = &buildError{err: err, out: string(out)}
		}
	})
	if binErr != nil {
		t.Fatalf("building sshtap: %v", binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// hermeticEnv keeps the machine's /etc/ssh/ssh_config out of the tests:
// every run starts from it, and a test's env may override it.
const hermeticEnv = "SSHTAP_SYSTEM_CONFIG=none"

// runBin runs the built command with args and env (added to a minimal
// environment with HOME set to home, when not empty), feeding stdin, bounded
// by d. It fails the test when the process cannot run or times out.
func runBin(t testing.TB, d time.Duration, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshtapBin(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), hermeticEnv}, env...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sshtap %v: timed out after %v\nstdout:\n%s\nstderr:\n%s", args, d, so.String(), se.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sshtap %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: so.String(), stderr: se.String(), code: code}
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// readFile returns a file's content, failing the test when it cannot.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
