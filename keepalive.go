package sshtap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// KeepAlive configures client keepalive probes, like OpenSSH's
// ServerAliveInterval and ServerAliveCountMax.
//
// Every Interval the client sends one probe and waits up to Interval for its
// answer: a PING (ping@openssh.com) when the server announced that
// extension in EXT_INFO, otherwise a "keepalive@openssh.com" global request
// with want_reply set, to which any reply counts (OpenSSH answers with
// SSH_MSG_REQUEST_FAILURE, RFC 4254 §4). Each answer publishes a
// *PingEvent with the round-trip time and resets the miss count; after
// CountMax probes in a row went unanswered the Conn fails with a
// *KeepAliveError (so a silent peer is detected CountMax to CountMax+1
// intervals after its last answer, as with OpenSSH). Probes start once the
// handshake, user authentication included, completed.
type KeepAlive struct {
	// Interval between probes; zero disables keepalives.
	Interval time.Duration
	// CountMax is the number of consecutive unanswered probes after which
	// the connection is considered dead. Zero means 3 (OpenSSH's default).
	CountMax int
}

// KeepAliveError is the Conn's error when the peer stopped answering
// keepalive probes.
type KeepAliveError struct {
	Interval time.Duration // time allowed for each probe
	Missed   int           // consecutive unanswered probes
}

func (e *KeepAliveError) Error() string {
	return fmt.Sprintf("sshtap: keepalive: timeout, peer not responding (%d probes unanswered, %v each)", e.Missed, e.Interval)
}

// Timeout reports true: the error is a timeout (it is a net.Error).
func (e *KeepAliveError) Timeout() bool { return true }

// Temporary reports false (net.Error).
func (e *KeepAliveError) Temporary() bool { return false }

// keepAlive is the prober of one Conn. It has no goroutine of its own: a
// time.AfterFunc timer runs one probe at a time, and its goroutine lives only
// until that probe is answered or times out.
type keepAlive struct {
	c        *Conn
	interval time.Duration
	countMax int

	mu     sync.Mutex
	timer  *time.Timer
	misses int
}

// startKeepAlive starts the keepalive prober if Config.KeepAlive asks for
// one. It must be called once the connection is authenticated (the
// connection protocol is available); later calls do nothing.
func (c *Conn) startKeepAlive() {
	if !c.isClient || c.ccfg == nil || c.ccfg.KeepAlive.Interval <= 0 {
		return
	}
	ka := &keepAlive{c: c, interval: c.ccfg.KeepAlive.Interval, countMax: c.ccfg.KeepAlive.CountMax}
	if ka.countMax <= 0 {
		ka.countMax = 3
	}
	c.mu.Lock()
	started := c.keepAliveStarted
	c.keepAliveStarted = true
	if !started {
		c.keepAlive = ka
	}
	c.mu.Unlock()
	if started {
		return
	}
	ka.mu.Lock()
	ka.timer = time.AfterFunc(ka.interval, ka.tick)
	ka.mu.Unlock()
}

// stop stops the prober (the Conn ended).
func (ka *keepAlive) stop() {
	ka.mu.Lock()
	defer ka.mu.Unlock()
	if ka.timer != nil {
		ka.timer.Stop()
	}
}

// tick runs one probe on the timer's goroutine and schedules the next.
func (ka *keepAlive) tick() {
	c := ka.c
	select {
	case <-c.closing:
		return
	default:
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), ka.interval)
	rtt, err := ka.probe(ctx)
	cancel()
	if err != nil && c.Err() != nil {
		return // the Conn ended; nothing to probe any more
	}
	ka.mu.Lock()
	if err == nil {
		ka.misses = 0
	} else {
		ka.misses++
	}
	misses := ka.misses
	ka.mu.Unlock()
	if err == nil && !c.peerHasPing() && c.hub.wants(KindPing) {
		// Ping publishes its own PingEvent (handlePong).
		c.hub.publish(&PingEvent{Header: now(), RTT: rtt})
	}
	if misses >= ka.countMax {
		ka.fail(&KeepAliveError{Interval: ka.interval, Missed: misses})
		return
	}
	next := ka.interval - time.Since(start)
	if next < 0 {
		next = 0
	}
	ka.mu.Lock()
	ka.timer.Reset(next)
	ka.mu.Unlock()
}

// probe sends one keepalive and waits for any answer, bounded by ctx.
func (ka *keepAlive) probe(ctx context.Context) (time.Duration, error) {
	c := ka.c
	if c.peerHasPing() {
		rtt, err := c.Ping(ctx)
		if !errors.Is(err, ErrPingUnsupported) {
			return rtt, err
		}
	}
	sent := time.Now()
	// OpenSSH's client sends keepalive@openssh.com with want_reply; a
	// server that does not know it answers REQUEST_FAILURE (RFC 4254 §4),
	// which is just as good a sign of life.
	if _, _, err := c.SendGlobalRequest(ctx, "keepalive@openssh.com", true, nil); err != nil {
		return 0, err
	}
	return time.Since(sent), nil
}

// fail ends the Conn with err, telling the peer why if it still listens
// (RFC 4253 §11.1: DISCONNECT may be sent at any time).
func (ka *keepAlive) fail(err error) {
	ka.c.abort(err, DisconnectConnectionLost, "keepalive timeout: peer not responding")
}

func (c *Conn) peerHasPing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerPing
}
