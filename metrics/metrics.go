// Package metrics exports sshtap's counters to Prometheus: a collector of
// a Server's aggregate counters and gauges (Server.Stats), and one of a
// single Conn's (Conn.Stats). It lives apart from package sshtap so that
// the library itself depends only on golang.org/x/crypto.
//
// Both collectors read the snapshot at each scrape; they keep no state of
// their own and start no goroutine.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"sshtap"
)

var verdicts = [...]string{sshtap.MACDisconnect: "disconnect", sshtap.MACDiscard: "discard", sshtap.MACAccept: "accept"}

// connDescs are the metrics both collectors export from Stats fields.
type connDescs struct {
	bytes, packets, rekeys, macFailures, authFailures, openChannels *prometheus.Desc
}

func newConnDescs(prefix string, labels prometheus.Labels) connDescs {
	d := func(name, help string, varLabels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prefix+name, help, varLabels, labels)
	}
	return connDescs{
		bytes:        d("bytes_total", "Bytes on the underlying streams, SSH framing included.", "direction"),
		packets:      d("packets_total", "SSH binary packets.", "direction"),
		rekeys:       d("rekeys_total", "Completed key exchanges after the first of each connection."),
		macFailures:  d("mac_failures_total", "Packets that failed authentication, by the MAC policy's verdict.", "verdict"),
		authFailures: d("auth_failures_total", "Failed user authentication requests (method none excluded)."),
		openChannels: d("open_channels", "Channels open now."),
	}
}

func (d connDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.bytes, d.packets, d.rekeys, d.macFailures, d.authFailures, d.openChannels} {
		ch <- x
	}
}

func (d connDescs) collect(ch chan<- prometheus.Metric, bytesRead, bytesWritten, packetsRead, packetsWritten, rekeys uint64,
	mac [3]uint64, authFailures uint64, openChannels int) {
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	counter(d.bytes, bytesRead, "read")
	counter(d.bytes, bytesWritten, "written")
	counter(d.packets, packetsRead, "read")
	counter(d.packets, packetsWritten, "written")
	counter(d.rekeys, rekeys)
	for v, n := range mac {
		counter(d.macFailures, n, verdicts[v])
	}
	counter(d.authFailures, authFailures)
	ch <- prometheus.MustNewConstMetric(d.openChannels, prometheus.GaugeValue, float64(openChannels))
}

// ServerCollector exports a Server's Stats as sshtap_server_* metrics.
type ServerCollector struct {
	srv                            *sshtap.Server
	conn                           connDescs
	accepted, dropped, connections *prometheus.Desc
}

// NewServerCollector returns a collector of srv's Stats; labels (may be
// nil) are added to every metric, e.g. to tell several servers apart.
// Register it with prometheus.MustRegister or a prometheus.Registry.
func NewServerCollector(srv *sshtap.Server, labels prometheus.Labels) *ServerCollector {
	return &ServerCollector{
		srv:      srv,
		conn:     newConnDescs("sshtap_server_", labels),
		accepted: prometheus.NewDesc("sshtap_server_connections_accepted_total", "Connections accepted.", nil, labels),
		dropped: prometheus.NewDesc("sshtap_server_connections_dropped_total",
			"Connections dropped: max_startups (MaxStartups, at the accept), max_conns (MaxConns, at authentication), login_grace (LoginGraceTime).",
			[]string{"reason"}, labels),
		connections: prometheus.NewDesc("sshtap_server_connections", "Connections now, by state.", []string{"state"}, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *ServerCollector) Describe(ch chan<- *prometheus.Desc) {
	c.conn.describe(ch)
	ch <- c.accepted
	ch <- c.dropped
	ch <- c.connections
}

// Collect implements prometheus.Collector.
func (c *ServerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	c.conn.collect(ch, st.BytesRead, st.BytesWritten, st.PacketsRead, st.PacketsWritten, st.Rekeys, st.MACFailures, st.AuthFailures, st.OpenChannels)
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(st.Accepted))
	for reason, n := range map[string]uint64{"max_startups": st.DroppedStartups, "max_conns": st.RefusedConns, "login_grace": st.LoginGraceExpired} {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.Unauthenticated), "unauthenticated")
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.Authenticated), "authenticated")
}

// ConnCollector exports one Conn's Stats as sshtap_conn_* metrics, for a
// client (or any Conn) that lives as long as the process's registry.
type ConnCollector struct {
	c    *sshtap.Conn
	conn connDescs
	rtt  *prometheus.Desc
}

// NewConnCollector returns a collector of c's Stats; labels (may be nil)
// are added to every metric, e.g. {"peer": "db1"}.
func NewConnCollector(c *sshtap.Conn, labels prometheus.Labels) *ConnCollector {
	return &ConnCollector{
		c:    c,
		conn: newConnDescs("sshtap_conn_", labels),
		rtt:  prometheus.NewDesc("sshtap_conn_last_ping_rtt_seconds", "The last Ping round trip (0 before one).", nil, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *ConnCollector) Describe(ch chan<- *prometheus.Desc) {
	c.conn.describe(ch)
	ch <- c.rtt
}

// Collect implements prometheus.Collector.
func (c *ConnCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.c.Stats()
	c.conn.collect(ch, st.BytesRead, st.BytesWritten, st.PacketsRead, st.PacketsWritten, st.Rekeys, st.MACFailures, st.AuthFailures, st.OpenChannels)
	ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, st.LastPingRTT.Seconds())
}
