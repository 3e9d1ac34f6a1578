package sshconfig

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, always returns an *Error on
// failure, and that Lookup and Expand on the result never panic. Includes
// are served from memory: every included file has the fuzz input as its
// contents, which exercises nesting, cycles and the input bounds.
func FuzzParse(f *testing.F) {
	f.Add([]byte("Host *\n User x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reads := 0
		opts := ParseOptions{
			Home:      "/home/u",
			LocalUser: "lu",
			Glob:      func(p string) ([]string, error) { return []string{p}, nil },
			ReadFile: func(string) ([]byte, error) {
				reads++
				return data, nil
			},
		}
		c, err := Parse(bytes.NewReader(data), "/home/u/.ssh/config", opts)
		if reads > MaxFiles {
			t.Fatalf("%d include reads", reads)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			_ = err.Error()
			return
		}
		for _, host := range []string{"x", "a.example.com", "", "Foo"} {
			h := c.Lookup(host)
			for _, s := range h.IdentityFile {
				_ = h.Expand(s, Tokens{Getenv: func(string) string { return "v" }})
			}
			_ = h.KnownHostsFiles(Tokens{})
			_, _ = h.Get("hostname")
			_ = h.GetAll("sendenv")
		}
	})
}

// FuzzParseCommandLine checks that ParseCommandLine never panics, returns
// an *Error on failure, never yields a Host, Match or Include item, and
// that Lookup on the result never panics. The input is split at NUL bytes
// into options.
func FuzzParseCommandLine(f *testing.F) {
	f.Add([]byte("User=u\x00Port 22"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var options []string
		for o := range bytes.SplitSeq(data, []byte{0}) {
			options = append(options, string(o))
		}
		c, err := ParseCommandLine(options, ParseOptions{Home: "/home/u", LocalUser: "lu"})
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Line > len(options) {
				t.Fatalf("error %T %v is not an *Error naming an option", err, err)
			}
			return
		}
		for _, it := range c.items {
			if it.kind != kSetting {
				t.Fatalf("option %d gave a %v item", it.line, it.kind)
			}
		}
		h := c.Lookup("x")
		_, _ = h.Get("hostname")
	})
}
