package sshconfig

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// interopConfig avoids anything ssh -G would execute or resolve (no
// Match exec/canonical/final, no canonicalization).
const interopConfig = `# interop
Host alpha
  HostName Alpha.Example.COM
  User alice
  Port 2201
  IdentityFile ~/.ssh/alpha
Host *.corp !bad.corp
  User corp
  IdentityFile "~/.ssh/corp %h"
Host b?ta gamma
  Port=2202
Match host *.example.com
  StrictHostKeyChecking accept-new
  UserKnownHostsFile /tmp/kh1 /tmp/kh2
Match originalhost gamma
  User gam
  HostName %h.example.com
Match user corp
  Port 2203
Host *
  User def
  IdentityFile ~/.ssh/common
  IdentityFile ~/.ssh/alpha
  SendEnv LANG
  SendEnv LC_*
  LogLevel verbose
  ForwardAgent no
  UserKnownHostsFile /tmp/kh3
`

func TestInteropSSHG(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHTAP_INTEROP") == "1" {
			t.Fatal("ssh not found but SSHTAP_INTEROP=1")
		}
		t.Skip("ssh not installed")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "config")
	if err := os.WriteFile(file, []byte(interopConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseFile(file, ParseOptions{Home: dir, LocalUser: "nobody-local"})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"alpha", "x.corp", "bad.corp", "beta", "gamma", "other", "web.example.com"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, sshPath, "-G", "-F", file, host)
		cmd.Stdin = nil
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("ssh -G %s: %v", host, err)
		}
		g := map[string][]string{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), " ")
			g[k] = append(g[k], v)
		}
		h := c.Lookup(host)
		check := func(what string, got, want any) {
			t.Helper()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s: Lookup %q, ssh -G %q", host, what, got, want)
			}
		}
		check("hostname", h.HostName, g["hostname"][0])
		port := h.Port
		if port == 0 {
			port = 22
		}
		check("port", strconv.Itoa(port), g["port"][0])
		check("user", h.User, g["user"][0])
		check("identityfile", h.IdentityFile, g["identityfile"])
		check("userknownhostsfile", strings.Join(h.UserKnownHostsFile, " "), g["userknownhostsfile"][0])
		check("sendenv", h.SendEnv, g["sendenv"])
		check("loglevel", h.LogLevel, g["loglevel"][0])
		check("forwardagent", h.ForwardAgent, g["forwardagent"][0])
		shk := h.StrictHostKeyChecking
		if shk == "" {
			shk = "ask" // ssh's default
		}
		check("stricthostkeychecking", shk, g["stricthostkeychecking"][0])
	}
}
