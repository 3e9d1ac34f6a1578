package metrics

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"sshtap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gather returns the registry's metrics by name and label values.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			key := mf.GetName()
			for _, l := range m.Label {
				if l.GetName() == "server" || l.GetName() == "peer" {
					continue
				}
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// A scrape after real traffic: one client in, one refused password, a
// session's bytes; and a client Conn's own collector.
func TestCollectors(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewSignerFromKey(priv)
	srv := &sshtap.Server{Config: &sshtap.ServerConfig{
		HostKeys: []ssh.Signer{hk},
		PasswordCallback: func(m sshtap.ConnMetadata, pw []byte) (*sshtap.Permissions, error) {
			if string(pw) == "pw" {
				return nil, nil
			}
			return nil, errors.New("no")
		},
		SessionHandler: func(s *sshtap.ServerSession) { s.Write(make([]byte, 100000)) },
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(pw string) (*sshtap.Conn, error) {
		return sshtap.Dial(ctx, "tcp", ln.Addr().String(), &sshtap.Config{User: "u", Auth: []sshtap.AuthMethod{sshtap.Password(pw)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	}
	if c, err := dial("bad"); err == nil {
		c.Close()
		t.Fatal("bad password accepted")
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
	out, err := s.Output("x")
	if err != nil || len(out) != 100000 {
		t.Fatalf("Output: %d bytes, %v", len(out), err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewServerCollector(srv, prometheus.Labels{"server": "test"}), NewConnCollector(c, prometheus.Labels{"peer": "test"}))
	// The refused client's end may still be on its way to the Server.
	var m map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = gather(t, reg)
		if m["sshtap_server_connections{state=unauthenticated}"] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for key, want := range map[string]float64{
		"sshtap_server_connections_accepted_total":                  2,
		"sshtap_server_connections{state=authenticated}":            1,
		"sshtap_server_connections{state=unauthenticated}":          0,
		"sshtap_server_auth_failures_total":                         1,
		"sshtap_server_connections_dropped_total{reason=max_conns}": 0,
		"sshtap_server_mac_failures_total{verdict=disconnect}":      0,
		"sshtap_conn_auth_failures_total":                           0, // the refused client was another Conn
		"sshtap_conn_open_channels":                                 0,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if m["sshtap_server_bytes_total{direction=written}"] < 100000 || m["sshtap_conn_bytes_total{direction=read}"] < 100000 {
		t.Errorf("bytes: server wrote %v, client read %v; want the session's 100000 at least",
			m["sshtap_server_bytes_total{direction=written}"], m["sshtap_conn_bytes_total{direction=read}"])
	}
	if m["sshtap_conn_last_ping_rtt_seconds"] <= 0 || m["sshtap_server_packets_total{direction=read}"] == 0 {
		t.Errorf("ping rtt %v, server packets read %v", m["sshtap_conn_last_ping_rtt_seconds"], m["sshtap_server_packets_total{direction=read}"])
	}
	// What Collect sends matches what Describe announced.
	ped := prometheus.NewPedanticRegistry()
	ped.MustRegister(NewServerCollector(srv, nil), NewConnCollector(c, nil))
	if _, err := ped.Gather(); err != nil {
		t.Errorf("pedantic registry: %v", err)
	}
}
