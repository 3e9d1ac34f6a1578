package sshtap

// handleAgentOpen serves an incoming "auth-agent@openssh.com" open on a
// client (OpenSSH PROTOCOL, agent forwarding): it is accepted only if a
// session of this Conn requested agent forwarding (auth-agent-req@openssh.com)
// and Config.AgentHandler is set; the handler then gets the channel on this
// goroutine (one per open) and owns it.
func (c *Conn) handleAgentOpen(nc *NewChannel) {
	var h func(*Channel)
	if c.ccfg != nil {
		h = c.ccfg.AgentHandler
	}
	if !c.agentRequested() || h == nil {
		// Like X11, an agent open nobody asked for is refused: it would
		// give the server the use of our keys.
		nc.Reject(OpenProhibited, "agent forwarding not requested")
		return
	}
	ch, err := nc.Accept()
	if err != nil {
		return
	}
	h(ch)
}
