package sshtap

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// Limits of the version exchange. RFC 4253 §4.2: the identification string
// is at most 255 bytes including CR LF; OpenSSH's client skips at most 1024
// earlier lines of at most 8192 bytes each.
const (
	maxVersionLine  = 255
	maxBannerLine   = 8192
	maxBannerLines  = 1024
	maxPreambleSize = maxBannerLines * maxBannerLine
)

// versionExchange sends our identification string and reads the peer's
// (RFC 4253 §4.2). A client reports earlier lines as BannerLineEvents.
// Bytes after the peer's line stay in the read buffer for the packet layer.
func (c *Conn) versionExchange() error {
	ours := c.cfg.version()
	var out []byte
	if !c.isClient {
		for _, l := range c.scfg.Preamble {
			if strings.HasPrefix(l, "SSH-") || strings.ContainsAny(l, "\r\n") {
				return &VersionError{Msg: "preamble line may not start with SSH- or contain a line break", Line: trunc(l)}
			}
			out = append(append(out, l...), '\r', '\n')
		}
	}
	if len(ours)+2 > maxVersionLine || strings.ContainsAny(ours, "\r\n\x00") {
		return &VersionError{Msg: "our identification string is invalid", Line: trunc(ours)}
	}
	out = append(append(out, ours...), '\r', '\n')
	// Queued like any message of the transport goroutine: both sides send
	// their identification at once, and a synchronous stream would
	// deadlock if each waited for its write.
	c.omu.Lock()
	if c.err == nil {
		c.pushLocked(out, outPacket{raw: true})
		c.verQueued = true
	}
	c.omu.Unlock()
	c.kick()

	lines := 0
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if bytes.HasPrefix(line, []byte("SSH-")) {
			if len(line)+2 > maxVersionLine {
				return &VersionError{Msg: "identification string longer than 255 bytes", Line: trunc(string(line))}
			}
			// RFC 4253 §5.1: "SSH-1.99-" announces compatibility with 2.0.
			if !bytes.HasPrefix(line, []byte("SSH-2.0-")) && !bytes.HasPrefix(line, []byte("SSH-1.99-")) {
				return &VersionError{Msg: "unsupported protocol version", Line: trunc(string(line))}
			}
			if bytes.IndexByte(line, 0) >= 0 {
				return &VersionError{Msg: "NUL in identification string", Line: trunc(string(line))}
			}
			peer := append([]byte(nil), line...)
			c.mu.Lock()
			if c.isClient {
				c.clientVersion, c.serverVersion = []byte(ours), peer
			} else {
				c.clientVersion, c.serverVersion = peer, []byte(ours)
			}
			c.mu.Unlock()
			return nil
		}
		// RFC 4253 §4.2: only the server may send lines before its
		// identification string; OpenSSH's server drops a client that does.
		if !c.isClient {
			return &VersionError{Msg: "client sent a line that is not an identification string", Line: trunc(string(line))}
		}
		// OpenSSH (kex_exchange_identification) refuses a NUL in any line
		// before the identification string: binary junk is not a banner.
		if bytes.IndexByte(line, 0) >= 0 {
			return &VersionError{Msg: "NUL in a line before the identification string", Line: trunc(string(line))}
		}
		lines++
		if lines > maxBannerLines {
			return &VersionError{Msg: "no identification string after 1024 lines"}
		}
		if c.hub.wants(KindBannerLine) {
			c.hub.publish(&BannerLineEvent{Header: now(), Line: string(line)})
		}
	}
}

// readLine returns the next line from the stream without its terminator
// (CR LF or a bare LF, which RFC 4253 §4.2 tolerates). The returned slice
// aliases the read buffer and is valid until the next read.
func (c *Conn) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.rbuf[c.rpos:c.rend], '\n'); i >= 0 {
			line := c.rbuf[c.rpos : c.rpos+i]
			c.rpos += i + 1
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > maxBannerLine {
				return nil, &VersionError{Msg: "line longer than 8192 bytes before the identification string", Line: trunc(string(line))}
			}
			if bytes.IndexByte(line, '\r') >= 0 && bytes.HasPrefix(line, []byte("SSH-")) {
				return nil, &VersionError{Msg: "CR not followed by LF in identification string", Line: trunc(string(line))}
			}
			return line, nil
		}
		// No terminator yet: the line is too long once it has more than
		// maxBannerLine bytes besides a final CR (whose LF may follow).
		if n := c.rend - c.rpos; n > maxBannerLine+1 || n == maxBannerLine+1 && c.rbuf[c.rend-1] != '\r' {
			return nil, &VersionError{Msg: "line longer than 8192 bytes before the identification string", Line: trunc(string(c.rbuf[c.rpos:c.rend]))}
		}
		c.sizeReadBuffer(c.rend - c.rpos + 1)
		if err := c.fill(); err != nil {
			if c.rend > c.rpos {
				return nil, &VersionError{Msg: "connection closed during version exchange", Line: trunc(string(c.rbuf[c.rpos:c.rend]))}
			}
			return nil, c.readErrorVersion(err)
		}
	}
}

func (c *Conn) readErrorVersion(err error) error {
	if e := c.Err(); e != nil {
		return e // we closed it
	}
	if errors.Is(err, io.EOF) {
		return &VersionError{Msg: "no identification string: connection closed by peer", Err: err}
	}
	return &VersionError{Msg: "no identification string: read failed", Err: err}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
