package metrics_test

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sshtap"
	"sshtap/metrics"
)

// A Server's metrics on a Prometheus registry, served at /metrics.
func ExampleNewServerCollector() {
	srv := &sshtap.Server{Config: &sshtap.ServerConfig{}} // with host keys and callbacks, then srv.Serve(ln)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewServerCollector(srv, prometheus.Labels{"server": "bastion"}))
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	mfs, _ := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Println(n)
	}
	// Output:
	// sshtap_server_auth_failures_total
	// sshtap_server_bytes_total
	// sshtap_server_connections
	// sshtap_server_connections_accepted_total
	// sshtap_server_connections_dropped_total
	// sshtap_server_mac_failures_total
	// sshtap_server_open_channels
	// sshtap_server_packets_total
	// sshtap_server_rekeys_total
}
