package sshconfig

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBoundedWork feeds near-limit adversarial inputs and checks that
// parsing and lookup finish quickly.
func TestBoundedWork(t *testing.T) {
	var ids strings.Builder
	for i := 0; ids.Len() < MaxFileSize-64; i++ {
		fmt.Fprintf(&ids, "IdentityFile /k%d\nBogus%d x\n", i, i)
	}
	long := strings.Repeat("a", MaxLineLen-100)
	star := strings.Repeat("*a", 1000) + "b"
	inputs := map[string]string{
		"many identity files": ids.String(),
		"long patterns": strings.Repeat("HostName "+strings.Repeat("a", 1000)+"\nMatch host "+star+"\nHost "+star+"\n", 150) +
			"Host " + long + "\n",
		"long quoted": "User \"" + long + "\"\n",
	}
	for name, src := range inputs {
		start := time.Now()
		c, err := Parse(strings.NewReader(src), name, ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h := c.Lookup(strings.Repeat("a", 1000))
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s took %v", name, d)
		}
		if len(c.Warnings) > MaxWarnings {
			t.Errorf("%s: %d warnings", name, len(c.Warnings))
		}
		_ = h
	}
}

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		s, p string
		want bool
	}{
		{"abc", "abc", true}, {"abc", "a*", true}, {"abc", "*c", true}, {"abc", "a?c", true},
		{"abc", "a??c", false}, {"", "*", true}, {"", "", true}, {"a", "", false},
		{"abcabd", "*ab?", true}, {"aXbYc", "a*b*c", true}, {"aXbY", "a*b*c", false},
		{"x", "**x**", true}, {"Abc", "abc", false},
	} {
		if got := matchPattern(tc.s, tc.p); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v", tc.s, tc.p, got)
		}
	}
	if matchPatternList("B.example", "a.example,b.*", true) != 1 ||
		matchPatternList("b.example", "*,!b.*", true) != -1 ||
		matchPatternList("c", "a,b", false) != 0 {
		t.Error("matchPatternList")
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		line, kw, rest string
	}{
		{"  Port 22", "Port", "22"}, {"Port=22", "Port", "22"}, {"Port = 22", "Port", "22"},
		{"Port =  = 22", "Port", "= 22"}, {"\tUser\tx  \r", "User", "x"},
	} {
		kw, rest, ok := splitKeyword(tc.line)
		if !ok || kw != tc.kw || rest != tc.rest {
			t.Errorf("splitKeyword(%q) = %q %q %v", tc.line, kw, rest, ok)
		}
	}
	args, ok := splitArgs(`a "b c" d"e f"g 'h"i' j\ k \"l #m`)
	want := []string{"a", "b c", "de fg", `h"i`, "j k", `"l`}
	if !ok || strings.Join(args, "|") != strings.Join(want, "|") {
		t.Errorf("splitArgs = %q %v", args, ok)
	}
}
