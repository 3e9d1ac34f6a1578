package sshtap

import (
	"net"
	"testing"
	"time"
)

// Config.KeepAlive alone starts the probes: the handshake starts them, no
// call needed.
func TestKeepAliveStartsWithTheHandshake(t *testing.T) {
	a, b := net.Pipe()
	p := handshakeOver(t, a, b, &Config{KeepAlive: KeepAlive{Interval: 30 * time.Millisecond, CountMax: kaNeverGiveUp}}, nil)
	sub := p.client.Subscribe(kaContext(t), KindPing)
	defer sub.Close()
	waitPings(t, sub, 2)
}
