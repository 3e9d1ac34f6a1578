package wire

// Request- and type-specific data: the Data of ChannelRequest (RFC 4254
// §6), GlobalRequest and RequestSuccess (RFC 4254 §7, OpenSSH PROTOCOL
// §2.4–§2.5), and the Extra of ChannelOpen (RFC 4254 §6.3.2, §7, OpenSSH
// PROTOCOL §2.4). Each is a struct T with
//
//	func (m *T) Append(b []byte) []byte    // appends the data (no message header)
//	func ParseT(data []byte) (T, error)    // data is the Data / Extra field
//
// []byte fields alias data, strings copy, trailing bytes are ignored (except
// by ParseHostKeys, which reads to the end). Errors are *DecodeError whose
// Msg is the message that normally carries the data (CHANNEL_REQUEST,
// CHANNEL_OPEN, GLOBAL_REQUEST or REQUEST_SUCCESS) and whose Field starts
// with the request or channel type name.

// Channel types (RFC 4254 §6.1, §6.3.2, §7.2; OpenSSH PROTOCOL §2.1,
// §2.3, §2.4).
const (
	ChannelTypeSession              = "session"
	ChannelTypeX11                  = "x11"
	ChannelTypeDirectTCPIP          = "direct-tcpip"
	ChannelTypeForwardedTCPIP       = "forwarded-tcpip"
	ChannelTypeDirectStreamLocal    = "direct-streamlocal@openssh.com"
	ChannelTypeForwardedStreamLocal = "forwarded-streamlocal@openssh.com"
	ChannelTypeAuthAgent            = "auth-agent@openssh.com"
	ChannelTypeTun                  = "tun@openssh.com"
)

// Channel request types (RFC 4254 §6.2–§6.10, RFC 4335 §3, OpenSSH
// PROTOCOL §2.1, §2.3, §4.2).
const (
	RequestPty          = "pty-req"
	RequestX11          = "x11-req"
	RequestEnv          = "env"
	RequestShell        = "shell"
	RequestExec         = "exec"
	RequestSubsystem    = "subsystem"
	RequestWindowChange = "window-change"
	RequestXonXoff      = "xon-xoff"
	RequestSignal       = "signal"
	RequestExitStatus   = "exit-status"
	RequestExitSignal   = "exit-signal"
	RequestBreak        = "break"
	RequestAuthAgent    = "auth-agent-req@openssh.com"
	RequestEOW          = "eow@openssh.com"
	RequestKeepalive    = "keepalive@openssh.com" // also a global request
)

// Global request names (RFC 4254 §7.1, OpenSSH PROTOCOL §2.2, §2.4, §2.5).
const (
	RequestTCPIPForward             = "tcpip-forward"
	RequestCancelTCPIPForward       = "cancel-tcpip-forward"
	RequestStreamLocalForward       = "streamlocal-forward@openssh.com"
	RequestCancelStreamLocalForward = "cancel-streamlocal-forward@openssh.com"
	RequestHostKeys                 = "hostkeys-00@openssh.com"
	RequestHostKeysProve            = "hostkeys-prove-00@openssh.com"
	RequestNoMoreSessions           = "no-more-sessions@openssh.com"
)

// Terminal mode opcodes (RFC 4254 §8, RFC 8160 for IUTF8). Opcodes 1..159
// carry a uint32 argument; TTYOpEnd ends the stream; 160..255 stop parsing.
const (
	TTYOpEnd     byte = 0
	TermVINTR    byte = 1
	TermVQUIT    byte = 2
	TermVERASE   byte = 3
	TermVKILL    byte = 4
	TermVEOF     byte = 5
	TermVEOL     byte = 6
	TermVEOL2    byte = 7
	TermVSTART   byte = 8
	TermVSTOP    byte = 9
	TermVSUSP    byte = 10
	TermVDSUSP   byte = 11
	TermVREPRINT byte = 12
	TermVWERASE  byte = 13
	TermVLNEXT   byte = 14
	TermVFLUSH   byte = 15
	TermVSWTCH   byte = 16
	TermVSTATUS  byte = 17
	TermVDISCARD byte = 18
	TermIGNPAR   byte = 30
	TermPARMRK   byte = 31
	TermINPCK    byte = 32
	TermISTRIP   byte = 33
	TermINLCR    byte = 34
	TermIGNCR    byte = 35
	TermICRNL    byte = 36
	TermIUCLC    byte = 37
	TermIXON     byte = 38
	TermIXANY    byte = 39
	TermIXOFF    byte = 40
	TermIMAXBEL  byte = 41
	TermIUTF8    byte = 42 // RFC 8160
	TermISIG     byte = 50
	TermICANON   byte = 51
	TermXCASE    byte = 52
	TermECHO     byte = 53
	TermECHOE    byte = 54
	TermECHOK    byte = 55
	TermECHONL   byte = 56
	TermNOFLSH   byte = 57
	TermTOSTOP   byte = 58
	TermIEXTEN   byte = 59
	TermECHOCTL  byte = 60
	TermECHOKE   byte = 61
	TermPENDIN   byte = 62
	TermOPOST    byte = 70
	TermOLCUC    byte = 71
	TermONLCR    byte = 72
	TermOCRNL    byte = 73
	TermONOCR    byte = 74
	TermONLRET   byte = 75
	TermCS7      byte = 90
	TermCS8      byte = 91
	TermPARENB   byte = 92
	TermPARODD   byte = 93
	TTYOpISpeed  byte = 128
	TTYOpOSpeed  byte = 129
)

// TerminalMode is one (opcode, argument) pair of the encoded terminal modes
// of a pty-req (RFC 4254 §8).
type TerminalMode struct {
	Opcode byte
	Value  uint32
}

// AppendTerminalModes appends the encoded terminal modes (RFC 4254 §8:
// "byte opcode, uint32 argument" pairs, "terminated by opcode TTY_OP_END
// (0x00)"), not as an SSH string: use the result as PtyReq.Modes. Opcodes
// must be in 1..159.
func AppendTerminalModes(b []byte, modes []TerminalMode) []byte {
	for _, m := range modes {
		b = append(b, m.Opcode)
		b = AppendUint32(b, m.Value)
	}
	return append(b, TTYOpEnd)
}

// ParseTerminalModes decodes PtyReq.Modes. RFC 4254 §8: "The stream is
// terminated by opcode TTY_OP_END (0x00). Opcodes 1 to 159 have a single
// uint32 argument. Opcodes 160 to 255 are not yet defined, and cause
// parsing to stop (they should only be used after any other data)."
// Parsing stops at TTY_OP_END, at an opcode >= 160, or (leniently) at the
// end of modes; an opcode without its full uint32 argument fails with
// ErrShort. It returns nil when no mode is set. Unknown opcodes in 1..159
// are returned as sent.
func ParseTerminalModes(modes []byte) ([]TerminalMode, error) {
	// Count first so the result is allocated once, sized by the input.
	n := 0
	for i := 0; i < len(modes); i += 5 {
		op := modes[i]
		if op == TTYOpEnd || op >= 160 {
			break
		}
		if len(modes)-i < 5 {
			r := NewReader(nil)
			r.SetMsg(MsgChannelRequest)
			r.Fail("pty-req terminal mode argument", ErrShort)
			return nil, r.Err()
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]TerminalMode, n)
	r := NewReader(modes)
	for i := range out {
		out[i].Opcode = r.Byte()
		out[i].Value = r.Uint32()
	}
	return out, nil
}

// reqReader returns a Reader over data reporting num in its errors.
func reqReader(data []byte, num byte) Reader {
	r := NewReader(data)
	r.SetMsg(num)
	return r
}

// PtyReq is the data of a "pty-req" channel request (RFC 4254 §6.2):
//
//	string    TERM environment variable value (e.g., vt100)
//	uint32    terminal width, characters (e.g., 80)
//	uint32    terminal height, rows (e.g., 24)
//	uint32    terminal width, pixels (e.g., 640)
//	uint32    terminal height, pixels (e.g., 480)
//	string    encoded terminal modes
type PtyReq struct {
	Term                          string
	Cols, Rows, WidthPx, HeightPx uint32
	Modes                         []byte // encoded modes (see ParseTerminalModes); aliases data
}

// Append appends the request data to b.
func (m *PtyReq) Append(b []byte) []byte {
	b = AppendString(b, m.Term)
	b = AppendUint32(b, m.Cols)
	b = AppendUint32(b, m.Rows)
	b = AppendUint32(b, m.WidthPx)
	b = AppendUint32(b, m.HeightPx)
	return AppendBytes(b, m.Modes)
}

// ParsePtyReq decodes pty-req data. The modes are not decoded (see
// ParseTerminalModes).
func ParsePtyReq(data []byte) (PtyReq, error) {
	r := reqReader(data, MsgChannelRequest)
	var m PtyReq
	m.Term = r.Field("pty-req TERM").String()
	m.Cols = r.Field("pty-req terminal width, characters").Uint32()
	m.Rows = r.Field("pty-req terminal height, rows").Uint32()
	m.WidthPx = r.Field("pty-req terminal width, pixels").Uint32()
	m.HeightPx = r.Field("pty-req terminal height, pixels").Uint32()
	m.Modes = r.Field("pty-req encoded terminal modes").Bytes()
	if err := r.Err(); err != nil {
		return PtyReq{}, err
	}
	return m, nil
}

// X11Req is the data of an "x11-req" channel request (RFC 4254 §6.3.1):
//
//	boolean   single connection
//	string    x11 authentication protocol
//	string    x11 authentication cookie
//	uint32    x11 screen number
type X11Req struct {
	SingleConnection         bool
	AuthProtocol, AuthCookie string
	Screen                   uint32
}

// Append appends the request data to b.
func (m *X11Req) Append(b []byte) []byte {
	b = AppendBool(b, m.SingleConnection)
	b = AppendString(b, m.AuthProtocol)
	b = AppendString(b, m.AuthCookie)
	return AppendUint32(b, m.Screen)
}

// ParseX11Req decodes x11-req data.
func ParseX11Req(data []byte) (X11Req, error) {
	r := reqReader(data, MsgChannelRequest)
	var m X11Req
	m.SingleConnection = r.Field("x11-req single connection").Bool()
	m.AuthProtocol = r.Field("x11-req authentication protocol").String()
	m.AuthCookie = r.Field("x11-req authentication cookie").String()
	m.Screen = r.Field("x11-req screen number").Uint32()
	if err := r.Err(); err != nil {
		return X11Req{}, err
	}
	return m, nil
}

// EnvReq is the data of an "env" channel request (RFC 4254 §6.4):
//
//	string    variable name
//	string    variable value
type EnvReq struct {
	Name, Value string
}

// Append appends the request data to b.
func (m *EnvReq) Append(b []byte) []byte {
	b = AppendString(b, m.Name)
	return AppendString(b, m.Value)
}

// ParseEnvReq decodes env data.
func ParseEnvReq(data []byte) (EnvReq, error) {
	r := reqReader(data, MsgChannelRequest)
	name := r.Field("env variable name").String()
	value := r.Field("env variable value").String()
	if err := r.Err(); err != nil {
		return EnvReq{}, err
	}
	return EnvReq{Name: name, Value: value}, nil
}

// ExecReq is the data of an "exec" channel request (RFC 4254 §6.5):
//
//	string    command
type ExecReq struct {
	Command string
}

// Append appends the request data to b.
func (m *ExecReq) Append(b []byte) []byte { return AppendString(b, m.Command) }

// ParseExecReq decodes exec data.
func ParseExecReq(data []byte) (ExecReq, error) {
	r := reqReader(data, MsgChannelRequest)
	cmd := r.Field("exec command").String()
	if err := r.Err(); err != nil {
		return ExecReq{}, err
	}
	return ExecReq{Command: cmd}, nil
}

// SubsystemReq is the data of a "subsystem" channel request (RFC 4254
// §6.5):
//
//	string    subsystem name
type SubsystemReq struct {
	Name string
}

// Append appends the request data to b.
func (m *SubsystemReq) Append(b []byte) []byte { return AppendString(b, m.Name) }

// ParseSubsystemReq decodes subsystem data.
func ParseSubsystemReq(data []byte) (SubsystemReq, error) {
	r := reqReader(data, MsgChannelRequest)
	name := r.Field("subsystem name").String()
	if err := r.Err(); err != nil {
		return SubsystemReq{}, err
	}
	return SubsystemReq{Name: name}, nil
}

// WindowChange is the data of a "window-change" channel request (RFC 4254
// §6.7):
//
//	uint32    terminal width, columns
//	uint32    terminal height, rows
//	uint32    terminal width, pixels
//	uint32    terminal height, pixels
type WindowChange struct {
	Cols, Rows, WidthPx, HeightPx uint32
}

// Append appends the request data to b.
func (m *WindowChange) Append(b []byte) []byte {
	b = AppendUint32(b, m.Cols)
	b = AppendUint32(b, m.Rows)
	b = AppendUint32(b, m.WidthPx)
	return AppendUint32(b, m.HeightPx)
}

// ParseWindowChange decodes window-change data.
func ParseWindowChange(data []byte) (WindowChange, error) {
	r := reqReader(data, MsgChannelRequest)
	var m WindowChange
	m.Cols = r.Field("window-change terminal width, columns").Uint32()
	m.Rows = r.Field("window-change terminal height, rows").Uint32()
	m.WidthPx = r.Field("window-change terminal width, pixels").Uint32()
	m.HeightPx = r.Field("window-change terminal height, pixels").Uint32()
	if err := r.Err(); err != nil {
		return WindowChange{}, err
	}
	return m, nil
}

// SignalReq is the data of a "signal" channel request (RFC 4254 §6.9):
//
//	string    signal name (without the "SIG" prefix)
type SignalReq struct {
	Name string
}

// Append appends the request data to b.
func (m *SignalReq) Append(b []byte) []byte { return AppendString(b, m.Name) }

// ParseSignalReq decodes signal data.
func ParseSignalReq(data []byte) (SignalReq, error) {
	r := reqReader(data, MsgChannelRequest)
	name := r.Field("signal name").String()
	if err := r.Err(); err != nil {
		return SignalReq{}, err
	}
	return SignalReq{Name: name}, nil
}

// ExitStatus is the data of an "exit-status" channel request (RFC 4254
// §6.10):
//
//	uint32    exit_status
type ExitStatus struct {
	Status uint32
}

// Append appends the request data to b.
func (m *ExitStatus) Append(b []byte) []byte { return AppendUint32(b, m.Status) }

// ParseExitStatus decodes exit-status data.
func ParseExitStatus(data []byte) (ExitStatus, error) {
	r := reqReader(data, MsgChannelRequest)
	st := r.Field("exit-status exit_status").Uint32()
	if err := r.Err(); err != nil {
		return ExitStatus{}, err
	}
	return ExitStatus{Status: st}, nil
}

// ExitSignal is the data of an "exit-signal" channel request (RFC 4254
// §6.10):
//
//	string    signal name (without the "SIG" prefix)
//	boolean   core dumped
//	string    error message in ISO-10646 UTF-8 encoding
//	string    language tag [RFC3066]
type ExitSignal struct {
	Signal            string
	CoreDumped        bool
	Message, Language string
}

// Append appends the request data to b.
func (m *ExitSignal) Append(b []byte) []byte {
	b = AppendString(b, m.Signal)
	b = AppendBool(b, m.CoreDumped)
	b = AppendString(b, m.Message)
	return AppendString(b, m.Language)
}

// ParseExitSignal decodes exit-signal data.
func ParseExitSignal(data []byte) (ExitSignal, error) {
	r := reqReader(data, MsgChannelRequest)
	var m ExitSignal
	m.Signal = r.Field("exit-signal signal name").String()
	m.CoreDumped = r.Field("exit-signal core dumped").Bool()
	m.Message = r.Field("exit-signal error message").String()
	m.Language = r.Field("exit-signal language tag").String()
	if err := r.Err(); err != nil {
		return ExitSignal{}, err
	}
	return m, nil
}

// DirectTCPIP is the Extra of a "direct-tcpip" channel open (RFC 4254
// §7.2):
//
//	string    host to connect
//	uint32    port to connect
//	string    originator IP address
//	uint32    originator port
type DirectTCPIP struct {
	Host       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// Append appends the channel open data to b.
func (m *DirectTCPIP) Append(b []byte) []byte {
	b = AppendString(b, m.Host)
	b = AppendUint32(b, m.Port)
	b = AppendString(b, m.OriginAddr)
	return AppendUint32(b, m.OriginPort)
}

// ParseDirectTCPIP decodes direct-tcpip open data. Ports are returned as
// sent (not checked against 65535).
func ParseDirectTCPIP(data []byte) (DirectTCPIP, error) {
	r := reqReader(data, MsgChannelOpen)
	var m DirectTCPIP
	m.Host = r.Field("direct-tcpip host to connect").String()
	m.Port = r.Field("direct-tcpip port to connect").Uint32()
	m.OriginAddr = r.Field("direct-tcpip originator IP address").String()
	m.OriginPort = r.Field("direct-tcpip originator port").Uint32()
	if err := r.Err(); err != nil {
		return DirectTCPIP{}, err
	}
	return m, nil
}

// ForwardedTCPIP is the Extra of a "forwarded-tcpip" channel open (RFC
// 4254 §7.2):
//
//	string    address that was connected
//	uint32    port that was connected
//	string    originator IP address
//	uint32    originator port
type ForwardedTCPIP struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// Append appends the channel open data to b.
func (m *ForwardedTCPIP) Append(b []byte) []byte {
	b = AppendString(b, m.Addr)
	b = AppendUint32(b, m.Port)
	b = AppendString(b, m.OriginAddr)
	return AppendUint32(b, m.OriginPort)
}

// ParseForwardedTCPIP decodes forwarded-tcpip open data.
func ParseForwardedTCPIP(data []byte) (ForwardedTCPIP, error) {
	r := reqReader(data, MsgChannelOpen)
	var m ForwardedTCPIP
	m.Addr = r.Field("forwarded-tcpip address that was connected").String()
	m.Port = r.Field("forwarded-tcpip port that was connected").Uint32()
	m.OriginAddr = r.Field("forwarded-tcpip originator IP address").String()
	m.OriginPort = r.Field("forwarded-tcpip originator port").Uint32()
	if err := r.Err(); err != nil {
		return ForwardedTCPIP{}, err
	}
	return m, nil
}

// TCPIPForward is the data of a "tcpip-forward" or "cancel-tcpip-forward"
// global request (RFC 4254 §7.1):
//
//	string    address to bind (e.g., "0.0.0.0")
//	uint32    port number to bind
type TCPIPForward struct {
	Addr string
	Port uint32
}

// Append appends the request data to b.
func (m *TCPIPForward) Append(b []byte) []byte {
	b = AppendString(b, m.Addr)
	return AppendUint32(b, m.Port)
}

// ParseTCPIPForward decodes tcpip-forward / cancel-tcpip-forward data.
func ParseTCPIPForward(data []byte) (TCPIPForward, error) {
	r := reqReader(data, MsgGlobalRequest)
	addr := r.Field("tcpip-forward address to bind").String()
	port := r.Field("tcpip-forward port number to bind").Uint32()
	if err := r.Err(); err != nil {
		return TCPIPForward{}, err
	}
	return TCPIPForward{Addr: addr, Port: port}, nil
}

// TCPIPForwardReply is the RequestSuccess data answering a "tcpip-forward"
// request for port 0 (RFC 4254 §7.1: "If a client passes 0 as port number
// to bind and has 'want reply' as TRUE, then the server allocates the next
// available unprivileged port number and replies with ... uint32 port that
// was bound on the server"). For other ports the reply carries no data.
type TCPIPForwardReply struct {
	Port uint32
}

// Append appends the reply data to b.
func (m *TCPIPForwardReply) Append(b []byte) []byte { return AppendUint32(b, m.Port) }

// ParseTCPIPForwardReply decodes the REQUEST_SUCCESS data of tcpip-forward.
func ParseTCPIPForwardReply(data []byte) (TCPIPForwardReply, error) {
	r := reqReader(data, MsgRequestSuccess)
	port := r.Field("tcpip-forward port that was bound").Uint32()
	if err := r.Err(); err != nil {
		return TCPIPForwardReply{}, err
	}
	return TCPIPForwardReply{Port: port}, nil
}

// X11Open is the Extra of an "x11" channel open (RFC 4254 §6.3.2):
//
//	string    originator address (e.g., "192.168.7.38")
//	uint32    originator port
type X11Open struct {
	OriginAddr string
	OriginPort uint32
}

// Append appends the channel open data to b.
func (m *X11Open) Append(b []byte) []byte {
	b = AppendString(b, m.OriginAddr)
	return AppendUint32(b, m.OriginPort)
}

// ParseX11Open decodes x11 open data.
func ParseX11Open(data []byte) (X11Open, error) {
	r := reqReader(data, MsgChannelOpen)
	addr := r.Field("x11 originator address").String()
	port := r.Field("x11 originator port").Uint32()
	if err := r.Err(); err != nil {
		return X11Open{}, err
	}
	return X11Open{OriginAddr: addr, OriginPort: port}, nil
}

// DirectStreamLocal is the Extra of a "direct-streamlocal@openssh.com"
// channel open (OpenSSH PROTOCOL §2.4):
//
//	string		socket path
//	string		reserved
//	uint32		reserved
type DirectStreamLocal struct {
	Path, Reserved string
	ReservedPort   uint32
}

// Append appends the channel open data to b.
func (m *DirectStreamLocal) Append(b []byte) []byte {
	b = AppendString(b, m.Path)
	b = AppendString(b, m.Reserved)
	return AppendUint32(b, m.ReservedPort)
}

// ParseDirectStreamLocal decodes direct-streamlocal@openssh.com open data.
func ParseDirectStreamLocal(data []byte) (DirectStreamLocal, error) {
	r := reqReader(data, MsgChannelOpen)
	var m DirectStreamLocal
	m.Path = r.Field("direct-streamlocal socket path").String()
	m.Reserved = r.Field("direct-streamlocal reserved string").String()
	m.ReservedPort = r.Field("direct-streamlocal reserved uint32").Uint32()
	if err := r.Err(); err != nil {
		return DirectStreamLocal{}, err
	}
	return m, nil
}

// StreamLocalForward is the data of a "streamlocal-forward@openssh.com" or
// "cancel-streamlocal-forward@openssh.com" global request (OpenSSH
// PROTOCOL §2.4):
//
//	string		socket path
type StreamLocalForward struct {
	Path string
}

// Append appends the request data to b.
func (m *StreamLocalForward) Append(b []byte) []byte { return AppendString(b, m.Path) }

// ParseStreamLocalForward decodes (cancel-)streamlocal-forward data.
func ParseStreamLocalForward(data []byte) (StreamLocalForward, error) {
	r := reqReader(data, MsgGlobalRequest)
	path := r.Field("streamlocal-forward socket path").String()
	if err := r.Err(); err != nil {
		return StreamLocalForward{}, err
	}
	return StreamLocalForward{Path: path}, nil
}

// ForwardedStreamLocal is the Extra of a
// "forwarded-streamlocal@openssh.com" channel open (OpenSSH PROTOCOL
// §2.4):
//
//	string		socket path
//	string		reserved for future use
type ForwardedStreamLocal struct {
	Path, Reserved string
}

// Append appends the channel open data to b.
func (m *ForwardedStreamLocal) Append(b []byte) []byte {
	b = AppendString(b, m.Path)
	return AppendString(b, m.Reserved)
}

// ParseForwardedStreamLocal decodes forwarded-streamlocal@openssh.com open
// data.
func ParseForwardedStreamLocal(data []byte) (ForwardedStreamLocal, error) {
	r := reqReader(data, MsgChannelOpen)
	path := r.Field("forwarded-streamlocal socket path").String()
	reserved := r.Field("forwarded-streamlocal reserved").String()
	if err := r.Err(); err != nil {
		return ForwardedStreamLocal{}, err
	}
	return ForwardedStreamLocal{Path: path, Reserved: reserved}, nil
}

// HostKeys is the data of the "hostkeys-00@openssh.com" and
// "hostkeys-prove-00@openssh.com" global requests (one public key blob per
// string) and of the REQUEST_SUCCESS answering hostkeys-prove (one
// signature per string, in request order) (OpenSSH PROTOCOL §2.5):
//
//	string[]	hostkeys
//
// The strings run to the end of the data; there is no count.
type HostKeys struct {
	Keys [][]byte // each aliases data; nil when there are none
}

// Append appends the strings to b.
func (m *HostKeys) Append(b []byte) []byte {
	for _, k := range m.Keys {
		b = AppendBytes(b, k)
	}
	return b
}

// ParseHostKeys decodes a list of strings filling data exactly. A
// truncated last string fails with ErrShort (Msg 0: the same data appears
// in GLOBAL_REQUEST and REQUEST_SUCCESS). Keys of unknown types are the
// caller's to skip ("ignore unknown key types").
func ParseHostKeys(data []byte) (HostKeys, error) {
	r := NewReader(data)
	// Count first so the result is allocated once; each string takes at
	// least 4 bytes, so the count is bounded by len(data)/4.
	n := 0
	for c := r; c.Len() > 0; n++ {
		c.Field("hostkeys string").Bytes()
		if err := c.Err(); err != nil {
			return HostKeys{}, err
		}
	}
	if n == 0 {
		return HostKeys{}, nil
	}
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = r.Bytes()
	}
	return HostKeys{Keys: keys}, nil
}
