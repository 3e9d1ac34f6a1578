package agentproxy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"sshtap"
	"sshtap/agentproxy"
)

// Agent forwarding through a Proxy: the client's agent (here an in-process
// keyring) serves the server's requests under a Policy, and every request
// is published to the client's subscriptions as an *AgentRequestEvent.
// The server reaches the forwarded agent with ForwardedAgent.
func ExampleProxy() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, userKey, _ := ed25519.GenerateKey(rand.Reader)
	keyring := agent.NewKeyring()
	keyring.Add(agent.AddedKey{PrivateKey: userKey, Comment: "demo key"})
	proxy := &agentproxy.Proxy{
		Backing: keyring,
		Policy:  agentproxy.Policy{AllowSign: func(agentproxy.SignRequest) bool { return false }},
	}

	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewSignerFromKey(hostPriv)
	scfg := &sshtap.ServerConfig{
		HostKeys:     []ssh.Signer{hostKey},
		NoClientAuth: true,
		SessionHandler: func(s *sshtap.ServerSession) {
			ag, closer, err := agentproxy.ForwardedAgent(s.Context(), s)
			if err != nil {
				fmt.Fprintln(s, "no agent:", err)
				return
			}
			defer closer.Close()
			keys, _ := ag.List()
			for _, k := range keys {
				fmt.Fprintln(s, "server sees:", k.Comment)
			}
			if len(keys) > 0 {
				_, err := ag.Sign(keys[0], []byte("data"))
				fmt.Fprintln(s, "server may sign:", err == nil)
			}
		},
	}
	a, b := net.Pipe()
	go func() {
		srv, err := sshtap.NewServerConn(ctx, b, scfg)
		if err != nil {
			return
		}
		srv.Wait()
	}()
	c := sshtap.ClientConn(a, &sshtap.Config{HostKeyCallback: ssh.InsecureIgnoreHostKey(), AgentHandler: proxy.Handler()})
	sub := c.Subscribe(ctx, sshtap.KindAgentRequest)
	if err := c.Handshake(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := agentproxy.EnableForwarding(s); err != nil {
		log.Fatal(err)
	}
	out, _ := s.Output("")
	fmt.Print(string(out))
	for range 2 {
		ev := (<-sub.Events()).(*sshtap.AgentRequestEvent)
		fmt.Println("client saw:", ev.Request, "allowed:", ev.Allowed)
	}
	// Output:
	// server sees: demo key
	// server may sign: false
	// client saw: list allowed: true
	// client saw: sign allowed: false
}
