package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap"
	"sshtap/agentproxy"
	"sshtap/internal/eventfmt"
	"sshtap/internal/wire"
)

const demoUsage = "sshtap demo [--json] [--events FILE] [--only KINDS] [--except KINDS] [--color auto|always|never] [--no-summary] [--pace DURATION]"

// Defaults of `sshtap demo`.
const (
	demoTerminalPace = 150 * time.Millisecond // between steps when a person watches
	demoStepTimeout  = 10 * time.Second       // bound of every step: the demo never hangs
)

// slowSubscriberConn is the conn label of the LaggedEvent the demo's
// deliberately slow subscription receives.
const slowSubscriberConn = "slow-subscriber"

// runDemo is `sshtap demo`: an sshtap server runs in this process, a client
// connects to it over an in-memory pipe, and the server takes the client
// through every event kind. The client's events are the stream shown (on
// stderr or --events); the session's output goes to stdout.
func (a *app) runDemo(ctx context.Context, args []string) int {
	var ef eventFlags
	pace := ""
	help := false
	opts := append(ef.opts(), stringOpt(0, "pace", &pace), flagOpt('h', "help", &help))
	if _, err := parseOpts(args, opts, false, demoUsage); err != nil {
		return a.fail(err)
	}
	if help {
		fmt.Fprintln(a.stdout, "usage: "+demoUsage)
		return exitOK
	}
	var paceD time.Duration
	if pace != "" {
		d, err := time.ParseDuration(pace)
		if err != nil || d < 0 {
			return a.fail(&usageError{msg: fmt.Sprintf("--pace: %q is not a duration such as 200ms", pace), usage: demoUsage})
		}
		paceD = d
	}
	out, err := a.openEvents(&ef, demoUsage)
	if err != nil {
		return a.fail(err)
	}
	defer out.close()
	if pace == "" {
		// Pause between steps only when someone is watching the events.
		var dest io.Writer = a.stderr
		if out.file != nil {
			dest = out.file
		}
		if isTerminal(dest) {
			paceD = demoTerminalPace
		}
	}

	var sum eventfmt.Summary
	res, err := runDemoScript(ctx, demoOptions{
		stdout: a.stdout,
		pace:   paceD,
		show: func(conn string, ev sshtap.Event) {
			sum.Add(ev)
			out.w.Event(conn, ev)
		},
		note: func(msg string) { out.w.Note("", msg) },
	})
	if res != nil {
		out.finish("", &sum, res.stats, time.Since(out.start))
	}
	if err != nil {
		return a.fail(fmt.Errorf("demo: %w", err))
	}
	return exitOK
}

// demoOptions configure one run of the demo script.
type demoOptions struct {
	stdout io.Writer     // the session's output (nil: discarded)
	pace   time.Duration // pause after each step
	step   time.Duration // bound of each step; zero means demoStepTimeout

	// show gets every event of the client's stream, in order, before the
	// script looks at it (conn ""), and the slow subscriber's LaggedEvent
	// (conn slowSubscriberConn). It must be safe for concurrent use.
	show func(conn string, ev sshtap.Event)
	// note gets a one-line description of each step before it runs.
	note func(msg string)
}

// demoResult is what a demo run observed.
type demoResult struct {
	events []sshtap.Event      // the client's stream, in order, ending with its ClosedEvent
	lagged *sshtap.LaggedEvent // what the slow subscriber got
	mac    *sshtap.MACMismatchEvent
	stats  sshtap.Stats
}

// kinds returns the set of kinds observed, the slow subscriber's included.
func (r *demoResult) kinds() sshtap.Kind {
	var k sshtap.Kind
	for _, ev := range r.events {
		k |= ev.Kind()
	}
	if r.lagged != nil {
		k |= r.lagged.Kind()
	}
	return k
}

// demo is one run of the script.
type demo struct {
	o       demoOptions
	hostKey ssh.Signer
	client  *sshtap.Conn
	server  *sshtap.Conn
	seam    *faultSeam
	rec     *recorder
	res     demoResult

	wg        sync.WaitGroup // every goroutine the script starts
	srvHS     chan error     // the server's handshake result
	sessDone  chan error     // the server's session handler result
	x11Result chan error     // the client's X11 handler result
}

// runDemoScript runs the demo: it returns what was observed (nil only when
// the connection could not even be set up) and the first step that failed.
// Every goroutine and connection it started has ended when it returns.
func runDemoScript(ctx context.Context, o demoOptions) (*demoResult, error) {
	if o.step <= 0 {
		o.step = demoStepTimeout
	}
	if o.stdout == nil {
		o.stdout = io.Discard
	}
	if o.show == nil {
		o.show = func(string, sshtap.Event) {}
	}
	if o.note == nil {
		o.note = func(string) {}
	}
	d := &demo{
		o:         o,
		srvHS:     make(chan error, 1),
		sessDone:  make(chan error, 1),
		x11Result: make(chan error, 1),
	}
	if err := d.setup(); err != nil {
		return nil, err
	}
	err := d.script(ctx)
	d.shutdown()
	d.res.events = d.rec.all()
	d.res.stats = d.client.Stats()
	if err == nil {
		err = d.checkEnd()
	}
	return &d.res, err
}

// setup makes the keys, the pipe with its fault seam and both Conns, and
// subscribes to the client's events. No I/O happens yet.
func (d *demo) setup() error {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if d.hostKey, err = ssh.NewSignerFromKey(hostPriv); err != nil {
		return err
	}
	// The key the client's forwarded agent holds.
	_, userPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: userPriv, Comment: "sshtap-demo"}); err != nil {
		return err
	}
	proxy := &agentproxy.Proxy{Backing: keyring}

	scfg := &sshtap.ServerConfig{
		HostKeys: []ssh.Signer{d.hostKey},
		Preamble: []string{
			"sshtap demo: an embedded server is starting up",
			"sshtap demo: these lines come before the SSH version string",
		},
		Banner: "Welcome to the sshtap demo server. The password is \"demo\".\n",
		PasswordCallback: func(meta sshtap.ConnMetadata, password []byte) (*sshtap.Permissions, error) {
			if string(password) == "demo" {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		SessionHandler: d.serveSession,
	}
	ccfg := &sshtap.Config{
		HostKeyCallback: ssh.FixedHostKey(d.hostKey.PublicKey()),
		Addr:            "sshtap-demo",
		User:            "demo",
		// A wrong password first, so that a failed attempt shows too.
		Auth:         []sshtap.AuthMethod{sshtap.Password("guess"), sshtap.Password("demo")},
		X11Timeout:   d.o.step,
		AgentHandler: proxy.Handler(),
	}
	// Packets that fail authentication are dropped; the connection goes on.
	ccfg.MACPolicy = func(sshtap.MACMismatch) sshtap.MACVerdict { return sshtap.MACDiscard }

	cside, sside := net.Pipe()
	d.seam = &faultSeam{Conn: sside}
	d.client = sshtap.ClientConn(cside, ccfg)
	d.server = sshtap.ServerConn(d.seam, scfg)

	// Subscribed before the handshake: the stream shown and checked. The
	// buffer is large enough that it never lags.
	d.rec = newRecorder(d.o.show)
	sub := d.client.SubscribeBuffer(context.Background(), sshtap.KindAll, 4096)
	d.goFunc(func() { d.rec.run(sub) })

	// The client's X11 handler: it decides the X11 opens. Every open the
	// server makes is accepted and carries a short exchange.
	x11 := d.client.Subscribe(context.Background(), sshtap.KindX11Open)
	d.goFunc(func() { d.serveX11(x11) })
	return nil
}

// goFunc runs f on a goroutine that shutdown waits for.
func (d *demo) goFunc(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// shutdown closes both Conns (a no-op for a Conn that already ended) and
// waits for every goroutine of the run.
func (d *demo) shutdown() {
	d.client.Close()
	d.server.Close()
	d.wg.Wait()
}

// step runs one step of the script, bounded by the step timeout, after
// announcing it; then it pauses for the pace.
func (d *demo) step(ctx context.Context, name, note string, fn func(ctx context.Context) error) error {
	d.o.note(note)
	sctx, cancel := context.WithTimeout(ctx, d.o.step)
	err := fn(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if d.o.pace > 0 {
		t := time.NewTimer(d.o.pace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", name, context.Cause(ctx))
		}
	}
	return nil
}

// script is the demo, step by step.
func (d *demo) script(ctx context.Context) error {
	steps := []struct {
		name, note string
		fn         func(context.Context) error
	}{
		{"handshake", "connecting: banner lines, key exchange, EXT_INFO, user auth banner, a wrong password then the right one", d.stepHandshake},
		{"host keys", "server announces its host keys (hostkeys-00@openssh.com); the client has it prove them (hostkeys-prove-00@openssh.com)", d.stepHostKeys},
		{"keepalive", "server probes the client with a keepalive@openssh.com global request", d.stepKeepalive},
		{"debug and ignore", "server sends SSH_MSG_DEBUG and SSH_MSG_IGNORE", d.stepDebugIgnore},
		{"unimplemented", "client sends local-extension message 200; the server answers SSH_MSG_UNIMPLEMENTED", d.stepUnimplemented},
		{"ping", "client measures a ping@openssh.com round trip", d.stepPing},
		{"rekey", "server forces a key exchange", d.stepRekey},
		{"session", "client runs a command with X11 and agent forwarding: the server opens an X11 channel and uses the forwarded agent", d.stepSession},
		{"mac mismatch", "fault seam flips one bit of a server packet in transit; the client's MAC policy discards it and the connection goes on", d.stepMACMismatch},
		{"lagged", "server sends a burst of IGNOREs to a client subscription with room for one event", d.stepLagged},
		{"disconnect", "server disconnects with a reason", d.stepDisconnect},
	}
	for _, s := range steps {
		if err := d.step(ctx, s.name, s.note, s.fn); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) stepHandshake(ctx context.Context) error {
	d.goFunc(func() { d.srvHS <- d.server.Handshake(ctx) })
	if err := d.client.Handshake(ctx); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	select {
	case err := <-d.srvHS:
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("server handshake: %w", context.Cause(ctx))
	}
	// The handshake's events are published before it returns; these make
	// sure they were also seen (and shown).
	if _, err := waitEvent(ctx, d.rec, 0, "the initial key exchange", func(ev *sshtap.KexEvent) bool { return ev.Initial }); err != nil {
		return err
	}
	_, err := waitEvent(ctx, d.rec, 0, "the successful user auth", func(ev *sshtap.UserAuthEvent) bool { return ev.Result == sshtap.AuthSuccess })
	return err
}

func (d *demo) stepHostKeys(ctx context.Context) error {
	// OpenSSH PROTOCOL §2.5: the data is one string per public key blob.
	// The server has no API of its own for it, so it sends the request.
	blob := d.hostKey.PublicKey().Marshal()
	payload := (&wire.HostKeys{Keys: [][]byte{blob}}).Append(nil)
	from := d.rec.mark()
	if _, _, err := d.server.SendGlobalRequest(ctx, "hostkeys-00@openssh.com", false, payload); err != nil {
		return err
	}
	ev, err := waitEvent(ctx, d.rec, from, "the host keys", func(*sshtap.HostKeysEvent) bool { return true })
	if err != nil {
		return err
	}
	if len(ev.Keys) != 1 || !bytes.Equal(ev.Keys[0], blob) {
		return fmt.Errorf("client got %d host keys, want the server's one", len(ev.Keys))
	}
	from = d.rec.mark()
	if err := d.client.ProveHostKeys(ctx, []ssh.PublicKey{d.hostKey.PublicKey()}); err != nil {
		return err
	}
	_, err = waitEvent(ctx, d.rec, from, "the host key proof", func(e *sshtap.HostKeyProofEvent) bool { return e.Proven })
	return err
}

func (d *demo) stepKeepalive(ctx context.Context) error {
	from := d.rec.mark()
	// Any reply shows the peer is alive; an sshtap client, like OpenSSH,
	// answers it with a failure.
	if _, _, err := d.server.SendGlobalRequest(ctx, "keepalive@openssh.com", true, nil); err != nil {
		return err
	}
	_, err := waitEvent(ctx, d.rec, from, "the keepalive global request", func(ev *sshtap.GlobalRequestEvent) bool {
		return ev.Name == "keepalive@openssh.com"
	})
	return err
}

func (d *demo) stepDebugIgnore(ctx context.Context) error {
	from := d.rec.mark()
	if err := d.server.SendDebug(ctx, true, "hello from the sshtap demo server"); err != nil {
		return err
	}
	data := []byte("padding nobody reads")
	if err := d.server.SendIgnore(ctx, data); err != nil {
		return err
	}
	if _, err := waitEvent(ctx, d.rec, from, "the DEBUG message", func(*sshtap.DebugEvent) bool { return true }); err != nil {
		return err
	}
	_, err := waitEvent(ctx, d.rec, from, "the IGNORE message", func(ev *sshtap.IgnoreEvent) bool { return bytes.Equal(ev.Data, data) })
	return err
}

func (d *demo) stepUnimplemented(ctx context.Context) error {
	from := d.rec.mark()
	if err := d.client.SendExtensionMessage(ctx, 200, []byte("sshtap demo")); err != nil {
		return err
	}
	_, err := waitEvent(ctx, d.rec, from, "the server's UNIMPLEMENTED", func(ev *sshtap.UnimplementedEvent) bool { return ev.Remote })
	return err
}

func (d *demo) stepPing(ctx context.Context) error {
	from := d.rec.mark()
	if _, err := d.client.Ping(ctx); err != nil {
		return err
	}
	_, err := waitEvent(ctx, d.rec, from, "the ping", func(*sshtap.PingEvent) bool { return true })
	return err
}

func (d *demo) stepRekey(ctx context.Context) error {
	from := d.rec.mark()
	if err := d.server.Rekey(ctx); err != nil {
		return err
	}
	if _, err := waitEvent(ctx, d.rec, from, "the rekey's start", func(ev *sshtap.KexStartEvent) bool { return !ev.Initial }); err != nil {
		return err
	}
	_, err := waitEvent(ctx, d.rec, from, "the completed rekey", func(ev *sshtap.KexEvent) bool { return !ev.Initial })
	return err
}

// demoCommand is what the client runs on the demo server.
const demoCommand = "hello"

func (d *demo) stepSession(ctx context.Context) error {
	from := d.rec.mark()
	sess, err := d.client.NewSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	// A fake cookie, as ssh -X sends: the server's proxy display checks it.
	var cookie [16]byte
	rand.Read(cookie[:])
	if err := sess.RequestX11(false, "MIT-MAGIC-COOKIE-1", hex.EncodeToString(cookie[:]), 0); err != nil {
		return fmt.Errorf("x11-req: %w", err)
	}
	if err := agentproxy.EnableForwarding(sess); err != nil {
		return fmt.Errorf("agent forwarding: %w", err)
	}
	// Both streams to stdout, through one lock: the session copies them
	// on two goroutines.
	w := &syncWriter{w: d.o.stdout}
	sess.Stdout, sess.Stderr = w, w
	if err := sess.Start(demoCommand); err != nil {
		return err
	}
	waited := make(chan error, 1)
	d.goFunc(func() { waited <- sess.Wait() })
	select {
	case err := <-waited:
		if err != nil {
			return fmt.Errorf("command: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("command: %w", context.Cause(ctx))
	}
	select {
	case err := <-d.sessDone:
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("server session: %w", context.Cause(ctx))
	}
	select {
	case err := <-d.x11Result:
		if err != nil {
			return fmt.Errorf("client x11: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("client x11: %w", context.Cause(ctx))
	}
	if _, err := waitEvent(ctx, d.rec, from, "the X11 open", func(*sshtap.X11OpenEvent) bool { return true }); err != nil {
		return err
	}
	for _, req := range []string{"list", "sign"} {
		if _, err := waitEvent(ctx, d.rec, from, "the agent "+req+" request", func(ev *sshtap.AgentRequestEvent) bool {
			return ev.Request == req && ev.Allowed && ev.Err == ""
		}); err != nil {
			return err
		}
	}
	return nil
}

// serveSession is the demo server's session handler: it greets, uses the
// forwarded agent, opens an X11 channel as an X client on the server would,
// and exits 0, or 1 after writing what failed.
func (d *demo) serveSession(s *sshtap.ServerSession) {
	ctx, cancel := context.WithTimeout(s.Context(), d.o.step)
	defer cancel()
	err := d.sessionWork(ctx, s)
	select {
	case d.sessDone <- err: // the demo opens one session
	default:
	}
	if err != nil {
		fmt.Fprintf(s.Stderr(), "demo server: %v\n", err)
		s.Exit(1)
		return
	}
	s.Exit(0)
}

func (d *demo) sessionWork(ctx context.Context, s *sshtap.ServerSession) error {
	deadline, _ := ctx.Deadline()
	fmt.Fprintf(s, "sshtap demo server: hello %s, you ran %q\n", s.Conn().User(), s.Command())

	// The forwarded agent: list its keys and have it sign a challenge.
	ag, closer, err := agentproxy.ForwardedAgent(ctx, s)
	if err != nil {
		return fmt.Errorf("agent channel: %w", err)
	}
	if dl, ok := closer.(interface{ SetDeadline(time.Time) error }); ok {
		dl.SetDeadline(deadline)
	}
	keys, err := ag.List()
	if err != nil {
		closer.Close()
		return fmt.Errorf("agent list: %w", err)
	}
	if len(keys) == 0 {
		closer.Close()
		return errors.New("the forwarded agent holds no key")
	}
	challenge := []byte("sshtap demo challenge")
	sig, err := ag.Sign(keys[0], challenge)
	closer.Close()
	if err != nil {
		return fmt.Errorf("agent sign: %w", err)
	}
	pub, err := ssh.ParsePublicKey(keys[0].Blob)
	if err != nil {
		return fmt.Errorf("agent key: %w", err)
	}
	if err := pub.Verify(challenge, sig); err != nil {
		return fmt.Errorf("agent signature: %w", err)
	}
	fmt.Fprintf(s, "sshtap demo server: your forwarded agent signed a challenge with %s (%s)\n", ssh.FingerprintSHA256(pub), keys[0].Comment)

	// An X client connecting to the server's proxy display.
	ch, err := s.OpenX11Channel(ctx, "127.0.0.1", 6010)
	if err != nil {
		return fmt.Errorf("x11 open: %w", err)
	}
	defer ch.Close()
	ch.SetDeadline(deadline)
	if _, err := io.WriteString(ch, demoX11Hello); err != nil {
		return fmt.Errorf("x11 write: %w", err)
	}
	ch.CloseWrite()
	reply, err := io.ReadAll(ch)
	if err != nil {
		return fmt.Errorf("x11 read: %w", err)
	}
	if string(reply) != demoX11Reply {
		return fmt.Errorf("x11: the client answered %q, want %q", reply, demoX11Reply)
	}
	fmt.Fprintf(s, "sshtap demo server: an X11 channel carried %q and %q\n", demoX11Hello, reply)
	return nil
}

// What the X11 channel carries each way.
const (
	demoX11Hello = "X11 setup from the demo's X client"
	demoX11Reply = "X11 reply from the demo's X server"
)

// serveX11 is the client's X11 handler: it accepts each open and answers
// the X client; the first open's outcome goes to d.x11Result.
func (d *demo) serveX11(sub *sshtap.Subscription) {
	for ev := range sub.Events() {
		x, ok := ev.(*sshtap.X11OpenEvent)
		if !ok {
			continue
		}
		err := d.answerX11(x)
		select {
		case d.x11Result <- err:
		default:
		}
	}
}

func (d *demo) answerX11(x *sshtap.X11OpenEvent) error {
	ch, err := x.Accept()
	if err != nil {
		return err
	}
	defer ch.Close()
	ch.SetDeadline(time.Now().Add(d.o.step))
	got, err := io.ReadAll(ch)
	if err != nil {
		return err
	}
	if string(got) != demoX11Hello {
		return fmt.Errorf("the X client sent %q, want %q", got, demoX11Hello)
	}
	if _, err := io.WriteString(ch, demoX11Reply); err != nil {
		return err
	}
	return ch.CloseWrite()
}

func (d *demo) stepMACMismatch(ctx context.Context) error {
	// A ping round trip first: everything the server had to write is
	// through, so the next packet it writes is the one the seam corrupts.
	if _, err := d.client.Ping(ctx); err != nil {
		return fmt.Errorf("ping before: %w", err)
	}
	from := d.rec.mark()
	victim := []byte(strings.Repeat("this IGNORE is corrupted in transit and must never arrive. ", 4))
	after := []byte("the IGNORE after the corrupted one")
	// Byte 20 of the packet lies in the IGNORE's data whatever the cipher
	// mode: past the length, padding length, message type and data length.
	d.seam.arm(20, 0x01, len(victim))
	if err := d.server.SendIgnore(ctx, victim); err != nil {
		return err
	}
	if err := d.server.SendIgnore(ctx, after); err != nil {
		return err
	}
	mm, err := waitEvent(ctx, d.rec, from, "the MAC mismatch", func(*sshtap.MACMismatchEvent) bool { return true })
	if err != nil {
		return err
	}
	d.res.mac = mm
	if mm.Verdict != sshtap.MACDiscard {
		return fmt.Errorf("verdict %v, want discard", mm.Verdict)
	}
	if _, err := waitEvent(ctx, d.rec, from, "the IGNORE after the corrupted one", func(ev *sshtap.IgnoreEvent) bool {
		return bytes.Equal(ev.Data, after)
	}); err != nil {
		return err
	}
	for _, ev := range d.rec.since(from) {
		if ig, ok := ev.(*sshtap.IgnoreEvent); ok && len(ig.Data) == len(victim) {
			return errors.New("the corrupted packet was delivered")
		}
	}
	// The connection survived: another round trip works.
	if _, err := d.client.Ping(ctx); err != nil {
		return fmt.Errorf("ping after: %w", err)
	}
	return nil
}

// demoBurst is how many IGNOREs the server sends to the slow subscriber.
const demoBurst = 8

func (d *demo) stepLagged(ctx context.Context) error {
	// A subscription with room for one event that nobody reads during the
	// burst: the library drops the rest and says so with a LaggedEvent.
	slow := d.client.SubscribeBuffer(context.Background(), sshtap.KindIgnore, 1)
	defer slow.Close()
	last := []byte(fmt.Sprintf("burst %d/%d", demoBurst, demoBurst))
	for i := 1; i <= demoBurst; i++ {
		if err := d.server.SendIgnore(ctx, []byte(fmt.Sprintf("burst %d/%d", i, demoBurst))); err != nil {
			return err
		}
	}
	if _, err := waitEvent(ctx, d.rec, 0, "the end of the burst", func(ev *sshtap.IgnoreEvent) bool {
		return bytes.Equal(ev.Data, last)
	}); err != nil {
		return err
	}
	// The main stream may get the last IGNORE a moment before the slow
	// subscription is offered it (one publish, one subscription after the
	// other): wait until it was, which with one slot taken means dropped.
	for slow.Dropped() < demoBurst-1 {
		t := time.NewTimer(time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("the slow subscriber dropped %d of %d IGNOREs: %w", slow.Dropped(), demoBurst, context.Cause(ctx))
		}
	}
	// Now the slow subscriber reads: what is queued, then the lag count,
	// which the library delivers before the next event or at the end.
	var lag *sshtap.LaggedEvent
	read := 0
	note := func(ev sshtap.Event) {
		switch ev := ev.(type) {
		case *sshtap.LaggedEvent:
			if lag == nil {
				lag = ev
			}
		case *sshtap.IgnoreEvent:
			read++
		}
	}
drain:
	for {
		select {
		case ev := <-slow.Events():
			note(ev)
		default:
			break drain
		}
	}
	slow.Close()
	for ev := range slow.Events() {
		note(ev)
	}
	if lag == nil {
		return fmt.Errorf("the slow subscriber read %d of %d IGNOREs and got no LaggedEvent", read, demoBurst)
	}
	d.res.lagged = lag
	d.o.show(slowSubscriberConn, lag)
	return nil
}

// The disconnect the server ends the demo with.
const (
	demoDisconnectReason  = sshtap.DisconnectByApplication
	demoDisconnectMessage = "sshtap demo finished: every event kind was shown"
)

func (d *demo) stepDisconnect(ctx context.Context) error {
	from := d.rec.mark()
	if err := d.server.Disconnect(demoDisconnectReason, demoDisconnectMessage); err != nil {
		return err
	}
	ev, err := waitEvent(ctx, d.rec, from, "the server's DISCONNECT", func(*sshtap.DisconnectEvent) bool { return true })
	if err != nil {
		return err
	}
	if !ev.Remote || ev.Reason != demoDisconnectReason || ev.Message != demoDisconnectMessage {
		return fmt.Errorf("client got disconnect %v %q (remote %v)", ev.Reason, ev.Message, ev.Remote)
	}
	_, err = waitEvent(ctx, d.rec, from, "the end of the connection", func(*sshtap.ClosedEvent) bool { return true })
	return err
}

// checkEnd checks that the stream ended as the script did: with a
// ClosedEvent for the server's disconnect, and with every kind seen.
func (d *demo) checkEnd() error {
	evs := d.res.events
	if len(evs) == 0 {
		return errors.New("no events")
	}
	closed, ok := evs[len(evs)-1].(*sshtap.ClosedEvent)
	if !ok {
		return fmt.Errorf("the last event is %v, not closed", evs[len(evs)-1].Kind())
	}
	var de *sshtap.DisconnectError
	if !errors.As(closed.Err, &de) || !de.Remote {
		return fmt.Errorf("the connection ended with %v, not the server's disconnect", closed.Err)
	}
	if missing := sshtap.KindAll &^ d.res.kinds(); missing != 0 {
		return fmt.Errorf("no event of kind %v", missing)
	}
	return nil
}

// recorder keeps the client's stream, after showing each event, so that
// the script can wait for what a step should produce.
type recorder struct {
	show func(conn string, ev sshtap.Event)

	mu     sync.Mutex
	evs    []sshtap.Event
	wake   chan struct{} // closed and replaced when an event arrives
	closed bool
}

func newRecorder(show func(string, sshtap.Event)) *recorder {
	return &recorder{show: show, wake: make(chan struct{})}
}

// run records sub's events until its ClosedEvent.
func (r *recorder) run(sub *sshtap.Subscription) {
	for ev := range sub.Events() {
		r.show("", ev)
		r.mu.Lock()
		r.evs = append(r.evs, ev)
		if ev.Kind() == sshtap.KindClosed {
			r.closed = true
		}
		close(r.wake)
		r.wake = make(chan struct{})
		r.mu.Unlock()
	}
}

// mark returns the position of the next event.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func (r *recorder) since(from int) []sshtap.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sshtap.Event(nil), r.evs[from:]...)
}

func (r *recorder) all() []sshtap.Event { return r.since(0) }

// waitEvent waits, bounded by ctx, for the first event of type T at or
// after position from that match accepts.
func waitEvent[T sshtap.Event](ctx context.Context, r *recorder, from int, what string, match func(T) bool) (T, error) {
	var zero T
	for {
		r.mu.Lock()
		for _, ev := range r.evs[from:] {
			if t, ok := ev.(T); ok && match(t) {
				r.mu.Unlock()
				return t, nil
			}
		}
		from = len(r.evs)
		closed, wake := r.closed, r.wake
		var why error
		if closed {
			why = r.evs[len(r.evs)-1].(*sshtap.ClosedEvent).Err
		}
		r.mu.Unlock()
		if closed {
			return zero, fmt.Errorf("the connection ended before %s: %v", what, why)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return zero, fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		}
	}
}

// faultSeam is the demo's fault injection point: it wraps the server's end
// of the pipe, and once armed flips one bit of the next write of at least
// minLen bytes, on its way to the client. The server's writer goroutine
// writes whole packets, so the write starts at a packet boundary.
type faultSeam struct {
	net.Conn

	mu     sync.Mutex
	armed  bool
	off    int
	mask   byte
	minLen int
}

func (f *faultSeam) arm(off int, mask byte, minLen int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.off, f.mask, f.minLen = true, off, mask, minLen
}

func (f *faultSeam) Write(b []byte) (int, error) {
	f.mu.Lock()
	if f.armed && len(b) >= f.minLen && f.off < len(b) {
		b = bytes.Clone(b)
		b[f.off] ^= f.mask
		f.armed = false
	}
	f.mu.Unlock()
	return f.Conn.Write(b)
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
