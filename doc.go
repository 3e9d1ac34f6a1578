// Package sshtap is an SSH-2 implementation (transport, and in time user
// authentication and the connection protocol; client and server roles)
// whose observability is a stream of typed events on Go channels.
//
// It is the Go answer to libssh2's libssh2_session_callback_set2: where
// libssh2 calls C callbacks for IGNORE, DEBUG, DISCONNECT, MACERROR, X11,
// SEND and RECV, sshtap publishes *IgnoreEvent, *DebugEvent,
// *DisconnectEvent, *MACMismatchEvent and more on subscriptions that fit a
// select loop, decides MAC failures with TransportConfig.MACPolicy, and runs
// over any io.ReadWriter (FuncReadWriter adapts send/recv funcs).
//
// # Connections
//
// Dial connects and runs the handshake; NewClientConn and NewServerConn do
// the same over an existing stream. Client and Server return a Conn without
// doing I/O, so that a subscription made before Handshake sees the
// handshake's events:
//
//	c := sshtap.Client(netConn, cfg)
//	sub := c.Subscribe(ctx, sshtap.KindKex|sshtap.KindDebug)
//	err := c.Handshake(ctx)
//
// Each Conn has two goroutines: the transport goroutine reads packets, runs
// key exchanges and handles transport messages; the writer goroutine writes
// what callers sealed. Every blocking call takes a context. The first fatal
// error sticks.
//
// # Events
//
// The seven rules of the design hold for every subscription:
//
//  1. Publishing never blocks: the kind filter runs first (unwanted kinds
//     cost nothing) and the send does not wait.
//  2. A full subscription drops the newest event and counts it; the next
//     delivered event is preceded by one *LaggedEvent.
//  3. Every ending is one *ClosedEvent, last, then the channel closes.
//  4. No goroutine per subscription.
//  5. Subscribing before the handshake sees its events; subscribing on an
//     ended Conn yields only its ClosedEvent.
//  6. Event payloads are copies.
//  7. Synchronous decisions are not events: the MAC policy is a config func
//     called on the transport goroutine.
//
// # Packages
//
// Below this package, internal/wire holds the message codecs, cipher the
// packet protection, packet the binary packet protocol and kex the key
// exchange; none of them starts goroutines or does I/O.
package sshtap
