package sshconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInclude(t *testing.T) {
	home := t.TempDir()
	writeFiles(t, home, map[string]string{
		".ssh/config": "Include config.d/*.conf\n" +
			"Include ~/.ssh/extra ~/.ssh/missing-is-fine\n" +
			"Host nomatch\n Include " + filepath.Join(home, "inactive") + "\n" +
			"Host *\n IdentityFile ~/.ssh/last\n",
		".ssh/config.d/10-a.conf": "Host a\n User ua\n IdentityFile ~/.ssh/a\n",
		".ssh/config.d/20-b.conf": "Host b\n User ub\nHost *\n IdentityFile ~/.ssh/glob\n",
		".ssh/config.d/ignored":   "User nope\n",
		".ssh/extra":              "Match host zzz\nPort 99\n",
		"inactive":                "Port 1\nUser inactive\n",
	})
	c, err := ParseFile(filepath.Join(home, ".ssh/config"), ParseOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Lookup("a")
	if h.User != "ua" || h.Port != 0 {
		t.Errorf("a: user %q port %d", h.User, h.Port)
	}
	if want := []string{"~/.ssh/a", "~/.ssh/glob", "~/.ssh/last"}; !reflect.DeepEqual(h.IdentityFile, want) {
		t.Errorf("a: %q", h.IdentityFile)
	}
	if got := h.IdentityFiles(Tokens{})[0]; got != home+"/.ssh/a" {
		t.Errorf("expanded %q", got)
	}
	h = c.Lookup("b")
	if h.User != "ub" {
		t.Errorf("b: user %q", h.User)
	}
	// Host * inside 20-b.conf must not leak past the Include: the
	// "Host nomatch" block in the outer file still governs its Include.
	if h := c.Lookup("zzz"); h.Port != 99 || h.User != "" {
		t.Errorf("zzz: port %d user %q", h.Port, h.User)
	}
}

func TestIncludeMatchDoesNotClobber(t *testing.T) {
	home := t.TempDir()
	writeFiles(t, home, map[string]string{
		"main": "Host x\n Include inc\n User fromouter\n",
		// The included file ends inside a non-matching block.
		".ssh/inc": "Host nothing\n Port 5\n",
	})
	c, err := ParseFile(filepath.Join(home, "main"), ParseOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Lookup("x"); h.User != "fromouter" || h.Port != 0 {
		t.Errorf("user %q port %d", h.User, h.Port)
	}
	if h := c.Lookup("y"); h.User != "" {
		t.Errorf("y: user %q", h.User)
	}
}

func TestIncludeSystemRelative(t *testing.T) {
	var seen []string
	opts := ParseOptions{System: true,
		Glob:     func(p string) ([]string, error) { seen = append(seen, p); return nil, nil },
		ReadFile: func(string) ([]byte, error) { return nil, errors.New("unused") }}
	if _, err := Parse(strings.NewReader("Include ssh_config.d/*.conf\n"), "/etc/ssh/ssh_config", opts); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seen, []string{"/etc/ssh/ssh_config.d/*.conf"}) {
		t.Errorf("%q", seen)
	}
}

func TestIncludeCycle(t *testing.T) {
	home := t.TempDir()
	writeFiles(t, home, map[string]string{
		".ssh/config": "User u\nInclude one\n",
		".ssh/one":    "\nInclude two\n",
		".ssh/two":    "Host *\n Include config\n",
	})
	_, err := ParseFile(filepath.Join(home, ".ssh/config"), ParseOptions{Home: home})
	var pe *Error
	if !errors.Is(err, ErrIncludeCycle) || !errors.As(err, &pe) || pe.Line != 2 || pe.File != filepath.Join(home, ".ssh/two") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "two:2:") {
		t.Errorf("message %q", err)
	}
}

func TestIncludeDepth(t *testing.T) {
	home := t.TempDir()
	files := map[string]string{}
	for i := 0; i < 20; i++ {
		files[fmt.Sprintf(".ssh/f%d", i)] = fmt.Sprintf("Include f%d\n", i+1)
	}
	files[".ssh/f20"] = "User deep\n"
	writeFiles(t, home, files)
	_, err := ParseFile(filepath.Join(home, ".ssh/f0"), ParseOptions{Home: home})
	if !errors.Is(err, ErrIncludeDepth) || !strings.Contains(err.Error(), "f16:1:") {
		t.Fatalf("got %v", err)
	}
	c, err := ParseFile(filepath.Join(home, ".ssh/f5"), ParseOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Lookup("x").User; u != "deep" {
		t.Errorf("user %q", u)
	}
	_, err = ParseFile(filepath.Join(home, ".ssh/f15"), ParseOptions{Home: home, MaxDepth: 2})
	if !errors.Is(err, ErrIncludeDepth) {
		t.Fatalf("MaxDepth 2: %v", err)
	}
}

func TestIncludeUnreadable(t *testing.T) {
	home := t.TempDir()
	writeFiles(t, home, map[string]string{".ssh/d/x": ""})
	_, err := Parse(strings.NewReader("\nInclude d\n"), "cfg", ParseOptions{Home: home})
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("including a directory: %v", err)
	}
}

func TestIncludeFanOutBounded(t *testing.T) {
	// Every file includes 4 files (all distinct names) 16 levels deep:
	// 4^16 reads unless bounded.
	body := []byte("Include a b c d\n" + strings.Repeat("# pad\n", 100))
	n, reads := 0, 0
	opts := ParseOptions{MaxDepth: 1000,
		Glob: func(p string) ([]string, error) { n++; return []string{fmt.Sprintf("/f%d", n)}, nil },
		ReadFile: func(string) ([]byte, error) {
			reads++
			return body, nil
		},
	}
	_, err := Parse(strings.NewReader(string(body)), "root", opts)
	if !errors.Is(err, ErrTooMuchInput) || reads > MaxFiles {
		t.Fatalf("got %v after %d reads", err, reads)
	}
}

func TestIncludeDevZero(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Parse(strings.NewReader("Include /dev/zero\n"), "cfg", ParseOptions{})
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseFile("/dev/null", ParseOptions{}); err != nil {
		t.Fatalf("/dev/null: %v", err)
	}
}

func TestIncludeCycleRelativeRoot(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs := filepath.Join(dir, "cfg")
	writeFiles(t, dir, map[string]string{"cfg": "Include " + abs + "\n"})
	_, err := ParseFile("cfg", ParseOptions{Home: dir})
	if !errors.Is(err, ErrIncludeCycle) {
		t.Fatalf("got %v", err)
	}
}
