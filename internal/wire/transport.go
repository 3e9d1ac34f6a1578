package wire

// Generic transport messages: RFC 4253 §10 and §11, RFC 8308 §2.3, and
// OpenSSH PROTOCOL "ping@openssh.com". See the package comment for lifetime
// rules: []byte fields alias the payload passed to Unmarshal, strings copy,
// trailing bytes are ignored. On error Unmarshal returns a *DecodeError and
// leaves the receiver unchanged.

// Disconnect reason codes (RFC 4250 §4.2.2).
const (
	DisconnectHostNotAllowedToConnect     uint32 = 1
	DisconnectProtocolError               uint32 = 2
	DisconnectKeyExchangeFailed           uint32 = 3
	DisconnectReserved                    uint32 = 4
	DisconnectMACError                    uint32 = 5
	DisconnectCompressionError            uint32 = 6
	DisconnectServiceNotAvailable         uint32 = 7
	DisconnectProtocolVersionNotSupported uint32 = 8
	DisconnectHostKeyNotVerifiable        uint32 = 9
	DisconnectConnectionLost              uint32 = 10
	DisconnectByApplication               uint32 = 11
	DisconnectTooManyConnections          uint32 = 12
	DisconnectAuthCancelledByUser         uint32 = 13
	DisconnectNoMoreAuthMethodsAvailable  uint32 = 14
	DisconnectIllegalUserName             uint32 = 15
)

// Disconnect is SSH_MSG_DISCONNECT (RFC 4253 §11.1):
//
//	byte      SSH_MSG_DISCONNECT
//	uint32    reason code
//	string    description in ISO-10646 UTF-8 encoding [RFC3629]
//	string    language tag [RFC3066]
type Disconnect struct {
	Reason            uint32
	Message, Language string
}

// Marshal appends the payload to b.
func (m *Disconnect) Marshal(b []byte) []byte {
	b = append(b, MsgDisconnect)
	b = AppendUint32(b, m.Reason)
	b = AppendString(b, m.Message)
	return AppendString(b, m.Language)
}

// Unmarshal decodes p. The description is not checked for valid UTF-8.
func (m *Disconnect) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgDisconnect)
	reason := r.Field("reason code").Uint32()
	msg := r.Field("description").String()
	lang := r.Field("language tag").String()
	if err := r.Err(); err != nil {
		return err
	}
	*m = Disconnect{Reason: reason, Message: msg, Language: lang}
	return nil
}

// Ignore is SSH_MSG_IGNORE (RFC 4253 §11.2):
//
//	byte      SSH_MSG_IGNORE
//	string    data
type Ignore struct {
	Data []byte // aliases the payload
}

// Marshal appends the payload to b.
func (m *Ignore) Marshal(b []byte) []byte {
	b = append(b, MsgIgnore)
	return AppendBytes(b, m.Data)
}

// Unmarshal decodes p leniently. RFC 4253 §11.2: "All implementations MUST
// understand (and ignore) this message at any time", so only a wrong
// message number is an error: a missing or short length field yields empty
// Data, and a declared length beyond the payload yields the bytes present.
func (m *Ignore) Unmarshal(p []byte) error {
	r := NewReader(p)
	if !r.Expect(MsgIgnore) {
		return r.Err()
	}
	rest := r.Rest()
	if len(rest) < 4 {
		*m = Ignore{Data: rest[len(rest):]}
		return nil
	}
	n := uint64(rest[0])<<24 | uint64(rest[1])<<16 | uint64(rest[2])<<8 | uint64(rest[3])
	data := rest[4:]
	if n < uint64(len(data)) {
		data = data[:n:n]
	}
	*m = Ignore{Data: data}
	return nil
}

// Unimplemented is SSH_MSG_UNIMPLEMENTED (RFC 4253 §11.4):
//
//	byte      SSH_MSG_UNIMPLEMENTED
//	uint32    packet sequence number of rejected message
type Unimplemented struct {
	Seq uint32
}

// Marshal appends the payload to b.
func (m *Unimplemented) Marshal(b []byte) []byte {
	b = append(b, MsgUnimplemented)
	return AppendUint32(b, m.Seq)
}

// Unmarshal decodes p.
func (m *Unimplemented) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUnimplemented)
	seq := r.Field("sequence number").Uint32()
	if err := r.Err(); err != nil {
		return err
	}
	m.Seq = seq
	return nil
}

// Debug is SSH_MSG_DEBUG (RFC 4253 §11.3):
//
//	byte      SSH_MSG_DEBUG
//	boolean   always_display
//	string    message in ISO-10646 UTF-8 encoding [RFC3629]
//	string    language tag [RFC3066]
type Debug struct {
	AlwaysDisplay     bool
	Message, Language string
}

// Marshal appends the payload to b.
func (m *Debug) Marshal(b []byte) []byte {
	b = append(b, MsgDebug)
	b = AppendBool(b, m.AlwaysDisplay)
	b = AppendString(b, m.Message)
	return AppendString(b, m.Language)
}

// Unmarshal decodes p. The message is not checked for valid UTF-8; callers
// displaying it must sanitise it (RFC 4253 §11.3 warns of terminal control
// characters).
func (m *Debug) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgDebug)
	always := r.Field("always_display").Bool()
	msg := r.Field("message").String()
	lang := r.Field("language tag").String()
	if err := r.Err(); err != nil {
		return err
	}
	*m = Debug{AlwaysDisplay: always, Message: msg, Language: lang}
	return nil
}

// ServiceRequest is SSH_MSG_SERVICE_REQUEST (RFC 4253 §10):
//
//	byte      SSH_MSG_SERVICE_REQUEST
//	string    service name
type ServiceRequest struct {
	Service string
}

// Marshal appends the payload to b.
func (m *ServiceRequest) Marshal(b []byte) []byte {
	b = append(b, MsgServiceRequest)
	return AppendString(b, m.Service)
}

// Unmarshal decodes p.
func (m *ServiceRequest) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgServiceRequest)
	s := r.Field("service name").String()
	if err := r.Err(); err != nil {
		return err
	}
	m.Service = s
	return nil
}

// ServiceAccept is SSH_MSG_SERVICE_ACCEPT (RFC 4253 §10):
//
//	byte      SSH_MSG_SERVICE_ACCEPT
//	string    service name
type ServiceAccept struct {
	Service string
}

// Marshal appends the payload to b.
func (m *ServiceAccept) Marshal(b []byte) []byte {
	b = append(b, MsgServiceAccept)
	return AppendString(b, m.Service)
}

// Unmarshal decodes p.
func (m *ServiceAccept) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgServiceAccept)
	s := r.Field("service name").String()
	if err := r.Err(); err != nil {
		return err
	}
	m.Service = s
	return nil
}

// MaxExtensions bounds the EXT_INFO extension count: OpenSSH 9.6+
// (kex_input_ext_info) refuses 1024 or more entries.
const MaxExtensions = 1024

// Extension is one (name, value) pair of SSH_MSG_EXT_INFO. Value's format
// is defined per extension (RFC 8308 §2.3: "the value ... MAY be empty or
// contain a single name-list, or arbitrary binary data").
type Extension struct {
	Name  string
	Value []byte // aliases the payload after Unmarshal
}

// ExtInfo is SSH_MSG_EXT_INFO (RFC 8308 §2.3):
//
//	byte       SSH_MSG_EXT_INFO (value 7)
//	uint32     nr-extensions
//	repeat the following 2 fields "nr-extensions" times:
//	  string   extension-name
//	  string   extension-value (binary)
type ExtInfo struct {
	Extensions []Extension
}

// Marshal appends the payload to b.
func (m *ExtInfo) Marshal(b []byte) []byte {
	b = append(b, MsgExtInfo)
	b = AppendUint32(b, uint32(len(m.Extensions)))
	for i := range m.Extensions {
		b = AppendString(b, m.Extensions[i].Name)
		b = AppendBytes(b, m.Extensions[i].Value)
	}
	return b
}

// Unmarshal decodes p. A count of MaxExtensions or more fails with
// ErrTooMany. Duplicate names are kept in order (RFC 8308 §2.3 does not
// allow them, but rejecting them is the consumer's choice).
func (m *ExtInfo) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgExtInfo)
	n := r.Field("nr-extensions").Uint32()
	if r.Err() == nil && n >= MaxExtensions {
		r.Fail("nr-extensions", ErrTooMany)
	}
	if err := r.Err(); err != nil {
		return err
	}
	// Each pair needs at least 8 bytes, so the count is also bounded by
	// the payload length before anything is allocated.
	if uint64(n) > uint64(r.Len()/8) {
		r.Fail("nr-extensions", ErrShort)
		return r.Err()
	}
	var exts []Extension
	if n > 0 {
		exts = make([]Extension, n)
	}
	for i := range exts {
		exts[i].Name = r.Field("extension-name").String()
		exts[i].Value = r.Field("extension-value").Bytes()
	}
	if err := r.Err(); err != nil {
		return err
	}
	m.Extensions = exts
	return nil
}

// Ping is SSH_MSG_PING (OpenSSH PROTOCOL §1.9 "ping@openssh.com"):
//
//	byte		SSH_MSG_PING
//	string		data
type Ping struct {
	Data []byte // aliases the payload after Unmarshal
}

// Marshal appends the payload to b.
func (m *Ping) Marshal(b []byte) []byte {
	b = append(b, MsgPing)
	return AppendBytes(b, m.Data)
}

// Unmarshal decodes p.
func (m *Ping) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgPing)
	d := r.Field("data").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	m.Data = d
	return nil
}

// Pong is SSH_MSG_PONG (OpenSSH PROTOCOL §1.9): "Upon receiving
// SSH2_MSG_PING, an implementation MUST reply with SSH2_MSG_PONG
// containing the same data".
//
//	byte		SSH_MSG_PONG
//	string		data
type Pong struct {
	Data []byte // aliases the payload after Unmarshal
}

// Marshal appends the payload to b.
func (m *Pong) Marshal(b []byte) []byte {
	b = append(b, MsgPong)
	return AppendBytes(b, m.Data)
}

// Unmarshal decodes p.
func (m *Pong) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgPong)
	d := r.Field("data").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	m.Data = d
	return nil
}
