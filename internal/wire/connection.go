package wire

import "encoding/binary"

// Connection protocol messages: RFC 4254 §4 (global requests) and §5
// (channels). See the package comment for lifetime rules: []byte fields
// alias the payload passed to Unmarshal, strings copy. Messages whose last
// field is request- or type-specific data (GlobalRequest, RequestSuccess,
// ChannelOpen, ChannelOpenConfirm, ChannelRequest) keep everything after
// the fixed fields in that field; the others ignore trailing bytes. On
// error Unmarshal returns a *DecodeError and leaves the receiver unchanged.
// Window and packet-size policy belongs to the caller.

// Channel open failure reason codes (RFC 4254 §5.1, RFC 4250 §4.3).
const (
	OpenAdministrativelyProhibited uint32 = 1
	OpenConnectFailed              uint32 = 2
	OpenUnknownChannelType         uint32 = 3
	OpenResourceShortage           uint32 = 4
)

// ExtendedDataStderr is the data_type_code of stderr in
// SSH_MSG_CHANNEL_EXTENDED_DATA (RFC 4254 §5.2, RFC 4250 §4.4).
const ExtendedDataStderr uint32 = 1

// Header sizes of the data messages: AppendChannelDataHeader writes
// ChannelDataHeaderLen bytes (byte, uint32 recipient, uint32 length) and
// AppendChannelExtendedDataHeader ChannelExtendedDataHeaderLen (plus the
// uint32 data_type_code). A payload is header + data.
const (
	ChannelDataHeaderLen         = 9
	ChannelExtendedDataHeaderLen = 13
)

// GlobalRequest is SSH_MSG_GLOBAL_REQUEST (RFC 4254 §4):
//
//	byte      SSH_MSG_GLOBAL_REQUEST
//	string    request name in US-ASCII only
//	boolean   want reply
//	....      request-specific data follows
type GlobalRequest struct {
	Name      string
	WantReply bool
	Data      []byte // the rest of the payload; aliases it; empty (non-nil) when absent
}

// Marshal appends the payload to b (Data verbatim).
func (m *GlobalRequest) Marshal(b []byte) []byte {
	b = append(b, MsgGlobalRequest)
	b = AppendString(b, m.Name)
	b = AppendBool(b, m.WantReply)
	return append(b, m.Data...)
}

// Unmarshal decodes p; everything after want reply is Data.
func (m *GlobalRequest) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgGlobalRequest)
	name := r.Field("request name").String()
	want := r.Field("want reply").Bool()
	data := r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	*m = GlobalRequest{Name: name, WantReply: want, Data: data}
	return nil
}

// RequestSuccess is SSH_MSG_REQUEST_SUCCESS (RFC 4254 §4):
//
//	byte      SSH_MSG_REQUEST_SUCCESS
//	....      response specific data
type RequestSuccess struct {
	Data []byte // the rest of the payload; aliases it; empty (non-nil) when absent
}

// Marshal appends the payload to b (Data verbatim).
func (m *RequestSuccess) Marshal(b []byte) []byte {
	b = append(b, MsgRequestSuccess)
	return append(b, m.Data...)
}

// Unmarshal decodes p; everything after the message number is Data.
func (m *RequestSuccess) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgRequestSuccess)
	data := r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	m.Data = data
	return nil
}

// RequestFailure is SSH_MSG_REQUEST_FAILURE (RFC 4254 §4): "byte
// SSH_MSG_REQUEST_FAILURE", no fields. It has no Unmarshal: a received one
// is recognised by its message number.
type RequestFailure struct{}

// Marshal appends the payload to b.
func (m *RequestFailure) Marshal(b []byte) []byte { return append(b, MsgRequestFailure) }

// ChannelOpen is SSH_MSG_CHANNEL_OPEN (RFC 4254 §5.1):
//
//	byte      SSH_MSG_CHANNEL_OPEN
//	string    channel type in US-ASCII only
//	uint32    sender channel
//	uint32    initial window size
//	uint32    maximum packet size
//	....      channel type specific data follows
type ChannelOpen struct {
	Type                      string
	Sender, Window, MaxPacket uint32
	Extra                     []byte // the rest of the payload; aliases it; empty (non-nil) when absent
}

// Marshal appends the payload to b (Extra verbatim).
func (m *ChannelOpen) Marshal(b []byte) []byte {
	b = append(b, MsgChannelOpen)
	b = AppendString(b, m.Type)
	b = AppendUint32(b, m.Sender)
	b = AppendUint32(b, m.Window)
	b = AppendUint32(b, m.MaxPacket)
	return append(b, m.Extra...)
}

// Unmarshal decodes p; everything after the maximum packet size is Extra.
func (m *ChannelOpen) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelOpen)
	typ := r.Field("channel type").String()
	sender := r.Field("sender channel").Uint32()
	window := r.Field("initial window size").Uint32()
	maxPacket := r.Field("maximum packet size").Uint32()
	extra := r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelOpen{Type: typ, Sender: sender, Window: window, MaxPacket: maxPacket, Extra: extra}
	return nil
}

// ChannelOpenConfirm is SSH_MSG_CHANNEL_OPEN_CONFIRMATION (RFC 4254 §5.1):
//
//	byte      SSH_MSG_CHANNEL_OPEN_CONFIRMATION
//	uint32    recipient channel
//	uint32    sender channel
//	uint32    initial window size
//	uint32    maximum packet size
//	....      channel type specific data follows
type ChannelOpenConfirm struct {
	Recipient, Sender, Window, MaxPacket uint32
	Extra                                []byte // the rest of the payload; aliases it; empty (non-nil) when absent
}

// Marshal appends the payload to b (Extra verbatim).
func (m *ChannelOpenConfirm) Marshal(b []byte) []byte {
	b = append(b, MsgChannelOpenConfirm)
	b = AppendUint32(b, m.Recipient)
	b = AppendUint32(b, m.Sender)
	b = AppendUint32(b, m.Window)
	b = AppendUint32(b, m.MaxPacket)
	return append(b, m.Extra...)
}

// Unmarshal decodes p; everything after the maximum packet size is Extra.
func (m *ChannelOpenConfirm) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelOpenConfirm)
	recipient := r.Field("recipient channel").Uint32()
	sender := r.Field("sender channel").Uint32()
	window := r.Field("initial window size").Uint32()
	maxPacket := r.Field("maximum packet size").Uint32()
	extra := r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelOpenConfirm{Recipient: recipient, Sender: sender, Window: window, MaxPacket: maxPacket, Extra: extra}
	return nil
}

// ChannelOpenFailure is SSH_MSG_CHANNEL_OPEN_FAILURE (RFC 4254 §5.1):
//
//	byte      SSH_MSG_CHANNEL_OPEN_FAILURE
//	uint32    recipient channel
//	uint32    reason code
//	string    description in ISO-10646 UTF-8 encoding [RFC3629]
//	string    language tag [RFC3066]
type ChannelOpenFailure struct {
	Recipient, Reason uint32
	Message, Language string
}

// Marshal appends the payload to b.
func (m *ChannelOpenFailure) Marshal(b []byte) []byte {
	b = append(b, MsgChannelOpenFailure)
	b = AppendUint32(b, m.Recipient)
	b = AppendUint32(b, m.Reason)
	b = AppendString(b, m.Message)
	return AppendString(b, m.Language)
}

// Unmarshal decodes p. Unknown reason codes are returned as sent.
func (m *ChannelOpenFailure) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelOpenFailure)
	recipient := r.Field("recipient channel").Uint32()
	reason := r.Field("reason code").Uint32()
	msg := r.Field("description").String()
	lang := r.Field("language tag").String()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelOpenFailure{Recipient: recipient, Reason: reason, Message: msg, Language: lang}
	return nil
}

// ChannelWindowAdjust is SSH_MSG_CHANNEL_WINDOW_ADJUST (RFC 4254 §5.2):
//
//	byte      SSH_MSG_CHANNEL_WINDOW_ADJUST
//	uint32    recipient channel
//	uint32    bytes to add
//
// See ParseWindowAdjust for the allocation-free form.
type ChannelWindowAdjust struct {
	Recipient, Bytes uint32
}

// Marshal appends the payload to b.
func (m *ChannelWindowAdjust) Marshal(b []byte) []byte {
	b = append(b, MsgChannelWindowAdjust)
	b = AppendUint32(b, m.Recipient)
	return AppendUint32(b, m.Bytes)
}

// Unmarshal decodes p. RFC 4254 §5.2 caps the window at 2^32 - 1; that
// check is the caller's.
func (m *ChannelWindowAdjust) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelWindowAdjust)
	recipient := r.Field("recipient channel").Uint32()
	n := r.Field("bytes to add").Uint32()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelWindowAdjust{Recipient: recipient, Bytes: n}
	return nil
}

// ChannelData is SSH_MSG_CHANNEL_DATA (RFC 4254 §5.2):
//
//	byte      SSH_MSG_CHANNEL_DATA
//	uint32    recipient channel
//	string    data
//
// Data goes out as AppendChannelDataHeader followed by the bytes, so the
// type has no Marshal; see ParseChannelData for the allocation-free
// decoder.
type ChannelData struct {
	Recipient uint32
	Data      []byte // aliases the payload after Unmarshal
}

// Unmarshal decodes p.
func (m *ChannelData) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelData)
	recipient := r.Field("recipient channel").Uint32()
	data := r.Field("data").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelData{Recipient: recipient, Data: data}
	return nil
}

// ChannelExtendedData is SSH_MSG_CHANNEL_EXTENDED_DATA (RFC 4254 §5.2):
//
//	byte      SSH_MSG_CHANNEL_EXTENDED_DATA
//	uint32    recipient channel
//	uint32    data_type_code
//	string    data
//
// Data goes out as AppendChannelExtendedDataHeader followed by the bytes,
// so the type has no Marshal; see ParseChannelExtendedData for the
// allocation-free decoder.
type ChannelExtendedData struct {
	Recipient, Code uint32
	Data            []byte // aliases the payload after Unmarshal
}

// Unmarshal decodes p. Unknown data type codes are returned as sent.
func (m *ChannelExtendedData) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelExtendedData)
	recipient := r.Field("recipient channel").Uint32()
	code := r.Field("data_type_code").Uint32()
	data := r.Field("data").Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelExtendedData{Recipient: recipient, Code: code, Data: data}
	return nil
}

// ChannelEOF is SSH_MSG_CHANNEL_EOF (RFC 4254 §5.3):
//
//	byte      SSH_MSG_CHANNEL_EOF
//	uint32    recipient channel
//
// It has no Unmarshal: RecipientOf decodes a received one.
type ChannelEOF struct {
	Recipient uint32
}

// Marshal appends the payload to b.
func (m *ChannelEOF) Marshal(b []byte) []byte {
	b = append(b, MsgChannelEOF)
	return AppendUint32(b, m.Recipient)
}

// ChannelClose is SSH_MSG_CHANNEL_CLOSE (RFC 4254 §5.3):
//
//	byte      SSH_MSG_CHANNEL_CLOSE
//	uint32    recipient channel
//
// It has no Unmarshal: RecipientOf decodes a received one.
type ChannelClose struct {
	Recipient uint32
}

// Marshal appends the payload to b.
func (m *ChannelClose) Marshal(b []byte) []byte {
	b = append(b, MsgChannelClose)
	return AppendUint32(b, m.Recipient)
}

// ChannelRequest is SSH_MSG_CHANNEL_REQUEST (RFC 4254 §5.4):
//
//	byte      SSH_MSG_CHANNEL_REQUEST
//	uint32    recipient channel
//	string    request type in US-ASCII characters only
//	boolean   want reply
//	....      type-specific data follows
type ChannelRequest struct {
	Recipient uint32
	Type      string
	WantReply bool
	Data      []byte // the rest of the payload; aliases it; empty (non-nil) when absent
}

// Marshal appends the payload to b (Data verbatim).
func (m *ChannelRequest) Marshal(b []byte) []byte {
	b = append(b, MsgChannelRequest)
	b = AppendUint32(b, m.Recipient)
	b = AppendString(b, m.Type)
	b = AppendBool(b, m.WantReply)
	return append(b, m.Data...)
}

// Unmarshal decodes p; everything after want reply is Data.
func (m *ChannelRequest) Unmarshal(p []byte) error {
	r := NewReader(p)
	r.Expect(MsgChannelRequest)
	recipient := r.Field("recipient channel").Uint32()
	typ := r.Field("request type").String()
	want := r.Field("want reply").Bool()
	data := r.Rest()
	if err := r.Err(); err != nil {
		return err
	}
	*m = ChannelRequest{Recipient: recipient, Type: typ, WantReply: want, Data: data}
	return nil
}

// ChannelSuccess is SSH_MSG_CHANNEL_SUCCESS (RFC 4254 §5.4):
//
//	byte      SSH_MSG_CHANNEL_SUCCESS
//	uint32    recipient channel
//
// It has no Unmarshal: RecipientOf decodes a received one.
type ChannelSuccess struct {
	Recipient uint32
}

// Marshal appends the payload to b.
func (m *ChannelSuccess) Marshal(b []byte) []byte {
	b = append(b, MsgChannelSuccess)
	return AppendUint32(b, m.Recipient)
}

// ChannelFailure is SSH_MSG_CHANNEL_FAILURE (RFC 4254 §5.4):
//
//	byte      SSH_MSG_CHANNEL_FAILURE
//	uint32    recipient channel
//
// It has no Unmarshal: RecipientOf decodes a received one.
type ChannelFailure struct {
	Recipient uint32
}

// Marshal appends the payload to b.
func (m *ChannelFailure) Marshal(b []byte) []byte {
	b = append(b, MsgChannelFailure)
	return AppendUint32(b, m.Recipient)
}

// Allocation-free data path.

// ParseChannelData decodes an SSH_MSG_CHANNEL_DATA payload without
// allocating on success: data aliases p. Errors are the same *DecodeError
// ChannelData.Unmarshal returns. Trailing bytes are ignored.
func ParseChannelData(p []byte) (recipient uint32, data []byte, err error) {
	// byte 94, uint32 recipient channel, uint32 length, data.
	if len(p) >= ChannelDataHeaderLen && p[0] == MsgChannelData {
		n := uint64(binary.BigEndian.Uint32(p[5:]))
		if n <= uint64(len(p)-ChannelDataHeaderLen) {
			end := ChannelDataHeaderLen + int(n)
			return binary.BigEndian.Uint32(p[1:]), p[ChannelDataHeaderLen:end:end], nil
		}
	}
	var m ChannelData
	return 0, nil, m.Unmarshal(p)
}

// ParseChannelExtendedData decodes an SSH_MSG_CHANNEL_EXTENDED_DATA payload
// without allocating on success: data aliases p. Errors are the same
// *DecodeError ChannelExtendedData.Unmarshal returns. Trailing bytes are
// ignored.
func ParseChannelExtendedData(p []byte) (recipient, code uint32, data []byte, err error) {
	// byte 95, uint32 recipient channel, uint32 data_type_code, uint32
	// length, data.
	if len(p) >= ChannelExtendedDataHeaderLen && p[0] == MsgChannelExtendedData {
		n := uint64(binary.BigEndian.Uint32(p[9:]))
		if n <= uint64(len(p)-ChannelExtendedDataHeaderLen) {
			end := ChannelExtendedDataHeaderLen + int(n)
			return binary.BigEndian.Uint32(p[1:]), binary.BigEndian.Uint32(p[5:]),
				p[ChannelExtendedDataHeaderLen:end:end], nil
		}
	}
	var m ChannelExtendedData
	return 0, 0, nil, m.Unmarshal(p)
}

// ParseWindowAdjust decodes an SSH_MSG_CHANNEL_WINDOW_ADJUST payload
// without allocating on success. Errors are the same *DecodeError
// ChannelWindowAdjust.Unmarshal returns. Trailing bytes are ignored.
func ParseWindowAdjust(p []byte) (recipient, n uint32, err error) {
	if len(p) >= 9 && p[0] == MsgChannelWindowAdjust {
		return binary.BigEndian.Uint32(p[1:]), binary.BigEndian.Uint32(p[5:]), nil
	}
	var m ChannelWindowAdjust
	return 0, 0, m.Unmarshal(p)
}

// RecipientOf returns the recipient channel of a channel message: RFC 4254
// §5 messages 91 (OPEN_CONFIRMATION) to 100 (CHANNEL_FAILURE) all start with
// "uint32 recipient channel" after the message number. ok is false for
// other message numbers (including CHANNEL_OPEN, which has a sender channel
// instead) and for payloads too short to hold it.
func RecipientOf(p []byte) (recipient uint32, ok bool) {
	if len(p) < 5 || p[0] < MsgChannelOpenConfirm || p[0] > MsgChannelFailure {
		return 0, false
	}
	return binary.BigEndian.Uint32(p[1:]), true
}

// AppendChannelDataHeader appends the first ChannelDataHeaderLen bytes of
// an SSH_MSG_CHANNEL_DATA payload carrying n data bytes (byte 94, uint32
// recipient channel, uint32 n); the caller appends the n bytes. n must be
// in [0, 2^32). It does not allocate when b has room.
func AppendChannelDataHeader(b []byte, recipient uint32, n int) []byte {
	b = append(b, MsgChannelData)
	b = AppendUint32(b, recipient)
	return AppendUint32(b, uint32(n))
}

// AppendChannelExtendedDataHeader appends the first
// ChannelExtendedDataHeaderLen bytes of an SSH_MSG_CHANNEL_EXTENDED_DATA
// payload carrying n data bytes (byte 95, uint32 recipient channel, uint32
// data_type_code, uint32 n); the caller appends the n bytes. n must be in
// [0, 2^32). It does not allocate when b has room.
func AppendChannelExtendedDataHeader(b []byte, recipient, code uint32, n int) []byte {
	b = append(b, MsgChannelExtendedData)
	b = AppendUint32(b, recipient)
	b = AppendUint32(b, code)
	return AppendUint32(b, uint32(n))
}
