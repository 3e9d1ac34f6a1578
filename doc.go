// Package sshtap is an SSH-2 implementation (transport, user
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
// the same over an existing stream. ClientConn and ServerConn return a Conn without
// doing I/O, so that a subscription made before Handshake sees the
// handshake's events:
//
//	c := sshtap.ClientConn(netConn, cfg)
//	sub := c.Subscribe(ctx, sshtap.KindKex|sshtap.KindDebug)
//	err := c.Handshake(ctx)
//
// # Concurrency
//
// Each Conn has one goroutine of its own, the transport goroutine: it
// reads packets, runs key exchanges, handles transport messages and copies
// channel data into the channels' buffers. Packets are sealed and written
// on the goroutine that sends them, one Write per call, under one write
// lock; the transport goroutine's own replies (window adjustments, key
// exchange messages, answers to requests) are queued and written by the
// next writer, or by a short-lived flusher goroutine when nobody writes.
// Handlers of the peer's channel opens and requests run on goroutines that
// live while they have work. All methods are safe for concurrent use, and
// Close may be called from any goroutine, user callbacks included. The
// first fatal error sticks: every later call returns it. Each callback's
// doc comment (Config, ServerConfig, TransportConfig) says which goroutine
// runs it and what it must not do.
//
// # Cancellation
//
// Every call that waits on the peer can be cancelled without ending the
// Conn. Calls that take a context (Handshake, NewSession, OpenChannel, Dial,
// Listen, Ping, Rekey, the Send methods, RemoteListener.CloseContext) stop
// waiting when it ends and return its cause. The rest follow
// the net.Conn model: Channel reads and writes honour the channel's
// deadlines and its Close, and Session methods (the requests, Wait, Run,
// Output, CombinedOutput) return once Session.Close is called, from any
// goroutine (context.AfterFunc(ctx, func() { s.Close() }) ties a Session to
// a context). Nothing waits on a hidden timer: the timeouts that exist
// (ServerConfig.LoginGraceTime, TransportConfig.ChannelOpenTimeout,
// Config.X11Timeout, keepalives) are documented fields. Conn.Close ends
// everything at once.
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
// # Files
//
// The package is grouped by layer, and a file calls into its own layer or
// a lower one (the transport goroutine hands connection messages up through
// dispatch):
//
//   - transport (RFC 4253): conn.go (the record layer: write path, abort
//     path, goroutines and lock order), transport.go (read path and
//     dispatch), handshake.go (key exchange), version.go, rw.go (the I/O
//     seam), events.go and subscription.go, config.go, errors.go;
//   - user authentication (RFC 4252, 4256): auth_client.go, auth_server.go,
//     auth_types.go, msgqueue.go;
//   - connection (RFC 4254): mux.go (the channel table and dispatch),
//     channel.go, request.go, global.go, session.go, session_server.go,
//     forward.go, x11.go, agent.go, keepalive.go.
//
// # Packages
//
// Below this package, internal/wire holds every byte layout (message
// codecs), cipher the packet protection, packet the binary packet protocol
// and kex the key exchange; none of them starts goroutines or does I/O.
package sshtap
