package main

import (
	"bufio"
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"sshtap"
)

// scrape fetches a Prometheus text page and returns its samples by the
// name and labels as written.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// sshtap serve --metrics: a scrape after real traffic shows it.
func TestServeMetrics(t *testing.T) {
	r := startServe(t, map[string]string{"PW": "pw"}, "--listen", "127.0.0.1:0", "--host-key", filepath.Join(t.TempDir(), "hk"),
		"--password-env", "PW", "--metrics", "127.0.0.1:0", "--no-sftp")
	var url string
	select {
	case l := <-r.stdout.lines:
		var ok bool
		if url, ok = strings.CutPrefix(l, "metrics on "); !ok {
			t.Fatalf("third stdout line %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no metrics line")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(pw string) (*sshtap.Conn, error) {
		return sshtap.Dial(ctx, "tcp", r.addr, &sshtap.Config{User: "u", Auth: []sshtap.AuthMethod{sshtap.Password(pw)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	}
	if c, err := dial("wrong"); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}
	c, err := dial("pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("head -c 200000 /dev/zero")
	if err != nil || len(out) != 200000 {
		t.Fatalf("Output: %d bytes, %v", len(out), err)
	}
	var m map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = scrape(t, url)
		if m[`sshtap_server_connections{state="unauthenticated"}`] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for key, want := range map[string]float64{
		"sshtap_server_connections_accepted_total":         2,
		`sshtap_server_connections{state="authenticated"}`: 1,
		"sshtap_server_auth_failures_total":                1,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if got := m[`sshtap_server_bytes_total{direction="written"}`]; got < 200000 {
		t.Errorf("server bytes written %v, want at least the command's 200000", got)
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}
