package wire

// User authentication messages: RFC 4252 §5–§8, RFC 4256 §3 (keyboard-
// interactive) and OpenSSH PROTOCOL §3.1 (publickey-hostbound). See the
// package comment for lifetime rules: []byte fields alias the payload passed
// to Unmarshal (or the rest passed to ParseXxx), strings copy, trailing bytes
// are ignored unless a field takes the rest of the payload. On error
// Unmarshal returns a *DecodeError and leaves the receiver unchanged.

// Service names (RFC 4252 §1, RFC 4254 §1).
const (
	ServiceUserAuth   = "ssh-userauth"
	ServiceConnection = "ssh-connection"
)

// Authentication method names (RFC 4252 §5.2, §7, §8; RFC 4256 §3.1;
// OpenSSH PROTOCOL §3.1).
const (
	MethodNone                = "none"
	MethodPassword            = "password"
	MethodPublicKey           = "publickey"
	MethodPublicKeyHostbound  = "publickey-hostbound-v00@openssh.com"
	MethodKeyboardInteractive = "keyboard-interactive"
	MethodHostBased           = "hostbased"
)

// MaxPrompts bounds the prompt count of SSH_MSG_USERAUTH_INFO_REQUEST and
// the response count of SSH_MSG_USERAUTH_INFO_RESPONSE (RFC 4256 does not
// bound them; real servers send a handful).
const MaxPrompts = 256

// UserAuthRequest is SSH_MSG_USERAUTH_REQUEST (RFC 4252 §5):
//
//	byte      SSH_MSG_USERAUTH_REQUEST
//	string    user name in ISO-10646 UTF-8 encoding [RFC3629]
//	string    service name in US-ASCII
//	string    method name in US-ASCII
//	....      method specific fields
//
// Rest holds the method-specific fields undecoded; decode them with
// ParsePublicKeyAuth, ParsePasswordAuth or ParseKeyboardInteractiveAuth
// according to Method ("none" has no fields).
type UserAuthRequest struct {
	User, Service, Method string
	Rest                  []byte // aliases the payload after Unmarshal; empty (non-nil) when absent
}

// Marshal appends the payload to b (Rest verbatim).
func (m *UserAuthRequest) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthRequest)
	b = AppendString(b, m.User)
	b = AppendString(b, m.Service)
	b = AppendString(b, m.Method)
	return append(b, m.Rest...)
}

// Unmarshal decodes p. Everything after the method name is Rest. The user
// name is not checked for valid UTF-8.
func (m *UserAuthRequest) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthRequest)
	user := r.Field("user name").String()
	service := r.Field("service name").String()
	method := r.Field("method name").String()
	rest := r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	*m = UserAuthRequest{User: user, Service: service, Method: method, Rest: rest}
	return nil
}

// PublicKeyAuth holds the method-specific fields of a "publickey" (RFC 4252
// §7) or "publickey-hostbound-v00@openssh.com" (OpenSSH PROTOCOL §3.1)
// request:
//
//	boolean   FALSE (query) or TRUE (signed)
//	string    public key algorithm name
//	string    public key blob
//	string    server host key (hostbound only)
//	string    signature (only when TRUE)
type PublicKeyAuth struct {
	Signed    bool
	Algorithm string
	PublicKey []byte // aliases the input after ParsePublicKeyAuth
	HostKey   []byte // hostbound only: the server's host key blob (K_S); aliases
	Signature []byte // only when Signed; aliases
}

// AppendPublicKeyAuth appends m's fields (not the USERAUTH_REQUEST header)
// to b. HostKey is written only when hostbound, Signature only when Signed.
func AppendPublicKeyAuth(b []byte, m PublicKeyAuth, hostbound bool) []byte {
	b = AppendBool(b, m.Signed)
	b = AppendString(b, m.Algorithm)
	b = AppendBytes(b, m.PublicKey)
	if hostbound {
		b = AppendBytes(b, m.HostKey)
	}
	if m.Signed {
		b = AppendBytes(b, m.Signature)
	}
	return b
}

// ParsePublicKeyAuth decodes the method-specific fields of a publickey
// request (UserAuthRequest.Rest); hostbound selects the
// publickey-hostbound-v00@openssh.com layout, which has the server host key
// after the key blob. HostKey and Signature are nil when absent. Errors are
// *DecodeError with Msg MsgUserAuthRequest. Trailing bytes are ignored.
func ParsePublicKeyAuth(rest []byte, hostbound bool) (PublicKeyAuth, error) {
	r := NewReader(rest)
	r.SetMsg(MsgUserAuthRequest)
	var m PublicKeyAuth
	m.Signed = r.Field("publickey signed flag").Bool()
	m.Algorithm = r.Field("publickey algorithm name").String()
	m.PublicKey = r.Field("publickey key blob").Bytes()
	if hostbound {
		// OpenSSH PROTOCOL §3.1: "string server host key" follows the
		// public key blob.
		m.HostKey = r.Field("publickey server host key").Bytes()
	}
	if m.Signed {
		// RFC 4252 §7: the signature is present only when the boolean is
		// TRUE.
		m.Signature = r.Field("publickey signature").Bytes()
	}
	if err := r.Err(); err != nil {
		return PublicKeyAuth{}, err
	}
	return m, nil
}

// PublicKeySignedData returns the data a publickey request's signature
// covers (RFC 4252 §7):
//
//	string    session identifier
//	byte      SSH_MSG_USERAUTH_REQUEST
//	string    user name
//	string    service name
//	string    "publickey"
//	boolean   TRUE
//	string    public key algorithm name
//	string    public key to be used for authentication
//
// method is written as given ("publickey" or
// "publickey-hostbound-v00@openssh.com"); for the hostbound method the
// server host key string follows the key (OpenSSH PROTOCOL §3.1: the whole
// request is signed), otherwise hostKey is ignored.
func PublicKeySignedData(sessionID []byte, user, service, method, algorithm string, pubKey, hostKey []byte) []byte {
	hostbound := method == MethodPublicKeyHostbound
	n := 4 + len(sessionID) + 1 + 4 + len(user) + 4 + len(service) + 4 + len(method) + 1 +
		4 + len(algorithm) + 4 + len(pubKey)
	if hostbound {
		n += 4 + len(hostKey)
	}
	b := make([]byte, 0, n)
	b = AppendBytes(b, sessionID)
	b = append(b, MsgUserAuthRequest)
	b = AppendString(b, user)
	b = AppendString(b, service)
	b = AppendString(b, method)
	b = AppendBool(b, true)
	b = AppendString(b, algorithm)
	b = AppendBytes(b, pubKey)
	if hostbound {
		b = AppendBytes(b, hostKey)
	}
	return b
}

// PasswordAuth holds the method-specific fields of a "password" request
// (RFC 4252 §8):
//
//	boolean   FALSE
//	string    plaintext password in ISO-10646 UTF-8 encoding [RFC3629]
//
// or, answering SSH_MSG_USERAUTH_PASSWD_CHANGEREQ:
//
//	boolean   TRUE
//	string    plaintext old password in ISO-10646 UTF-8 encoding [RFC3629]
//	string    plaintext new password in ISO-10646 UTF-8 encoding [RFC3629]
type PasswordAuth struct {
	Change      bool
	Password    string // the (old) password
	NewPassword string // only when Change
}

// AppendPasswordAuth appends m's fields to b; NewPassword only when Change.
func AppendPasswordAuth(b []byte, m PasswordAuth) []byte {
	b = AppendBool(b, m.Change)
	b = AppendString(b, m.Password)
	if m.Change {
		b = AppendString(b, m.NewPassword)
	}
	return b
}

// ParsePasswordAuth decodes the method-specific fields of a password
// request (UserAuthRequest.Rest). Errors are *DecodeError with Msg
// MsgUserAuthRequest. Trailing bytes are ignored.
func ParsePasswordAuth(rest []byte) (PasswordAuth, error) {
	r := NewReader(rest)
	r.SetMsg(MsgUserAuthRequest)
	var m PasswordAuth
	m.Change = r.Field("password change flag").Bool()
	m.Password = r.Field("password").String()
	if m.Change {
		m.NewPassword = r.Field("new password").String()
	}
	if err := r.Err(); err != nil {
		return PasswordAuth{}, err
	}
	return m, nil
}

// KeyboardInteractiveAuth holds the method-specific fields of a
// "keyboard-interactive" request (RFC 4256 §3.1):
//
//	string    language tag (as defined in [RFC-3066])
//	string    submethods (ISO-10646 UTF-8)
type KeyboardInteractiveAuth struct {
	Language, Submethods string
}

// AppendKeyboardInteractiveAuth appends m's fields to b.
func AppendKeyboardInteractiveAuth(b []byte, m KeyboardInteractiveAuth) []byte {
	b = AppendString(b, m.Language)
	return AppendString(b, m.Submethods)
}

// ParseKeyboardInteractiveAuth decodes the method-specific fields of a
// keyboard-interactive request (UserAuthRequest.Rest). RFC 4256 §3.1 says
// the language tag is deprecated and SHOULD be empty; it is returned as
// sent. Errors are *DecodeError with Msg MsgUserAuthRequest. Trailing bytes
// are ignored.
func ParseKeyboardInteractiveAuth(rest []byte) (KeyboardInteractiveAuth, error) {
	r := NewReader(rest)
	r.SetMsg(MsgUserAuthRequest)
	lang := r.Field("keyboard-interactive language tag").String()
	sub := r.Field("keyboard-interactive submethods").String()
	if err := r.Err(); err != nil {
		return KeyboardInteractiveAuth{}, err
	}
	return KeyboardInteractiveAuth{Language: lang, Submethods: sub}, nil
}

// UserAuthFailure is SSH_MSG_USERAUTH_FAILURE (RFC 4252 §5.1):
//
//	byte         SSH_MSG_USERAUTH_FAILURE
//	name-list    authentications that can continue
//	boolean      partial success
type UserAuthFailure struct {
	Methods        []string
	PartialSuccess bool
}

// Marshal appends the payload to b.
func (m *UserAuthFailure) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthFailure)
	b = AppendNameList(b, m.Methods)
	return AppendBool(b, m.PartialSuccess)
}

// Unmarshal decodes p. The name-list is checked as in Reader.NameList; an
// empty list decodes as nil.
func (m *UserAuthFailure) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthFailure)
	methods := r.Field("authentications that can continue").NameList()
	partial := r.Field("partial success").Bool()
	if err := r.Err(); err != nil {
		return err
	}
	*m = UserAuthFailure{Methods: methods, PartialSuccess: partial}
	return nil
}

// UserAuthSuccess is SSH_MSG_USERAUTH_SUCCESS (RFC 4252 §5.1): "byte
// SSH_MSG_USERAUTH_SUCCESS", no fields. It has no Unmarshal: a received
// one is recognised by its message number.
type UserAuthSuccess struct{}

// Marshal appends the payload to b.
func (m *UserAuthSuccess) Marshal(b []byte) []byte { return append(b, MsgUserAuthSuccess) }

// UserAuthBanner is SSH_MSG_USERAUTH_BANNER (RFC 4252 §5.4):
//
//	byte      SSH_MSG_USERAUTH_BANNER
//	string    message in ISO-10646 UTF-8 encoding [RFC3629]
//	string    language tag [RFC3066]
type UserAuthBanner struct {
	Message, Language string
}

// Marshal appends the payload to b.
func (m *UserAuthBanner) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthBanner)
	b = AppendString(b, m.Message)
	return AppendString(b, m.Language)
}

// Unmarshal decodes p. The message is not checked or filtered; RFC 4252
// §5.4 warns that displaying it unfiltered enables terminal control
// character attacks, so callers must sanitise it.
func (m *UserAuthBanner) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthBanner)
	msg := r.Field("message").String()
	lang := r.Field("language tag").String()
	if err := r.Err(); err != nil {
		return err
	}
	*m = UserAuthBanner{Message: msg, Language: lang}
	return nil
}

// UserAuthPKOK is SSH_MSG_USERAUTH_PK_OK (RFC 4252 §7), the answer to a
// publickey query (number 60, shared with PASSWD_CHANGEREQ and
// INFO_REQUEST: decode by the method in progress):
//
//	byte      SSH_MSG_USERAUTH_PK_OK
//	string    public key algorithm name from the request
//	string    public key blob from the request
type UserAuthPKOK struct {
	Algorithm string
	PublicKey []byte // aliases the payload after Unmarshal
}

// Marshal appends the payload to b.
func (m *UserAuthPKOK) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthPKOK)
	b = AppendString(b, m.Algorithm)
	return AppendBytes(b, m.PublicKey)
}

// Unmarshal decodes p.
func (m *UserAuthPKOK) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthPKOK)
	alg := r.Field("public key algorithm name").String()
	key := r.Field("public key blob").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	*m = UserAuthPKOK{Algorithm: alg, PublicKey: key}
	return nil
}

// UserAuthPasswdChangeReq is SSH_MSG_USERAUTH_PASSWD_CHANGEREQ (RFC 4252
// §8; number 60):
//
//	byte      SSH_MSG_USERAUTH_PASSWD_CHANGEREQ
//	string    prompt in ISO-10646 UTF-8 encoding [RFC3629]
//	string    language tag [RFC3066]
//
// Only the client decodes it (sshtap's server offers no password change),
// so it has no Marshal.
type UserAuthPasswdChangeReq struct {
	Prompt, Language string
}

// Unmarshal decodes p. The prompt is not filtered (see UserAuthBanner).
func (m *UserAuthPasswdChangeReq) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthPasswdChangeReq)
	prompt := r.Field("prompt").String()
	lang := r.Field("language tag").String()
	if err := r.Err(); err != nil {
		return err
	}
	*m = UserAuthPasswdChangeReq{Prompt: prompt, Language: lang}
	return nil
}

// Prompt is one prompt of SSH_MSG_USERAUTH_INFO_REQUEST. RFC 4256 §3.2:
// echo "SHOULD be set to TRUE if the user's response can be displayed".
type Prompt struct {
	Text string
	Echo bool
}

// UserAuthInfoRequest is SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 §3.2;
// number 60):
//
//	byte      SSH_MSG_USERAUTH_INFO_REQUEST
//	string    name (ISO-10646 UTF-8)
//	string    instruction (ISO-10646 UTF-8)
//	string    language tag (as defined in [RFC-3066])
//	int       num-prompts
//	string    prompt[1] (ISO-10646 UTF-8)
//	boolean   echo[1]
//	...
//	string    prompt[num-prompts] (ISO-10646 UTF-8)
//	boolean   echo[num-prompts]
//
// ("int" is a uint32.) Zero prompts are valid and still need an
// INFO_RESPONSE.
type UserAuthInfoRequest struct {
	Name, Instruction, Language string
	Prompts                     []Prompt // nil when there are none
}

// Marshal appends the payload to b.
func (m *UserAuthInfoRequest) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthInfoRequest)
	b = AppendString(b, m.Name)
	b = AppendString(b, m.Instruction)
	b = AppendString(b, m.Language)
	b = AppendUint32(b, uint32(len(m.Prompts)))
	for i := range m.Prompts {
		b = AppendString(b, m.Prompts[i].Text)
		b = AppendBool(b, m.Prompts[i].Echo)
	}
	return b
}

// Unmarshal decodes p. More than MaxPrompts prompts fail with ErrTooMany; a
// count larger than the remaining bytes could hold fails with ErrShort
// before anything is allocated. Texts are not filtered (see
// UserAuthBanner).
func (m *UserAuthInfoRequest) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthInfoRequest)
	name := r.Field("name").String()
	instr := r.Field("instruction").String()
	lang := r.Field("language tag").String()
	n := r.Field("num-prompts").Uint32()
	if r.Err() == nil && n > MaxPrompts {
		r.Fail("num-prompts", ErrTooMany)
	}
	// Each prompt needs at least 5 bytes (empty string, boolean).
	if r.Err() == nil && uint64(n) > uint64(r.Len()/5) {
		r.Fail("num-prompts", ErrShort)
	}
	if err := r.Err(); err != nil {
		return err
	}
	var prompts []Prompt
	if n > 0 {
		prompts = make([]Prompt, n)
	}
	for i := range prompts {
		prompts[i].Text = r.Field("prompt").String()
		prompts[i].Echo = r.Field("echo").Bool()
	}
	if err := r.Err(); err != nil {
		return err
	}
	*m = UserAuthInfoRequest{Name: name, Instruction: instr, Language: lang, Prompts: prompts}
	return nil
}

// UserAuthInfoResponse is SSH_MSG_USERAUTH_INFO_RESPONSE (RFC 4256 §3.4;
// number 61):
//
//	byte      SSH_MSG_USERAUTH_INFO_RESPONSE
//	int       num-responses
//	string    response[1] (ISO-10646 UTF-8)
//	...
//	string    response[num-responses] (ISO-10646 UTF-8)
type UserAuthInfoResponse struct {
	Responses []string // nil when there are none
}

// Marshal appends the payload to b.
func (m *UserAuthInfoResponse) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthInfoResponse)
	b = AppendUint32(b, uint32(len(m.Responses)))
	for _, s := range m.Responses {
		b = AppendString(b, s)
	}
	return b
}

// Unmarshal decodes p. More than MaxPrompts responses fail with
// ErrTooMany; a count larger than the remaining bytes could hold fails
// with ErrShort before anything is allocated. RFC 4256 §3.4 requires the
// count to match the request's num-prompts; that check is the caller's.
func (m *UserAuthInfoResponse) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgUserAuthInfoResponse)
	n := r.Field("num-responses").Uint32()
	if r.Err() == nil && n > MaxPrompts {
		r.Fail("num-responses", ErrTooMany)
	}
	// Each response needs at least 4 bytes (an empty string).
	if r.Err() == nil && uint64(n) > uint64(r.Len()/4) {
		r.Fail("num-responses", ErrShort)
	}
	if err := r.Err(); err != nil {
		return err
	}
	var resp []string
	if n > 0 {
		resp = make([]string, n)
	}
	for i := range resp {
		resp[i] = r.Field("response").String()
	}
	if err := r.Err(); err != nil {
		return err
	}
	m.Responses = resp
	return nil
}
