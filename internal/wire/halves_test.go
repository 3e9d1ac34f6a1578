package wire

// The other half of the codecs of messages sshtap only sends or only
// receives, so that the round-trip tables (msgCases, connCases, authCases)
// can hold every message. They are test code on purpose: the package keeps
// only what sshtap calls (deadcode checks it in .ci/run).
//
// Decoders of messages sshtap sends but never decodes: a message with
// nothing after its number (NEWKEYS, USERAUTH_SUCCESS, REQUEST_FAILURE) is
// recognised by that number, and one with nothing after the recipient
// channel (CHANNEL_EOF, CLOSE, SUCCESS, FAILURE) is decoded by RecipientOf.

func (m *NewKeys) Unmarshal(p []byte) error { return unmarshalNumber(p, MsgNewKeys) }

func (m *UserAuthSuccess) Unmarshal(p []byte) error { return unmarshalNumber(p, MsgUserAuthSuccess) }

func (m *RequestFailure) Unmarshal(p []byte) error { return unmarshalNumber(p, MsgRequestFailure) }

func (m *ChannelEOF) Unmarshal(p []byte) error {
	return unmarshalRecipient(p, MsgChannelEOF, &m.Recipient)
}

func (m *ChannelClose) Unmarshal(p []byte) error {
	return unmarshalRecipient(p, MsgChannelClose, &m.Recipient)
}

func (m *ChannelSuccess) Unmarshal(p []byte) error {
	return unmarshalRecipient(p, MsgChannelSuccess, &m.Recipient)
}

func (m *ChannelFailure) Unmarshal(p []byte) error {
	return unmarshalRecipient(p, MsgChannelFailure, &m.Recipient)
}

// unmarshalNumber checks the message number; trailing bytes are ignored.
func unmarshalNumber(p []byte, num byte) error {
	r := NewReader(p)
	r.Expect(num)
	return r.Err()
}

// unmarshalRecipient decodes a message made of its number and one uint32
// recipient channel, storing it only on success.
func unmarshalRecipient(p []byte, num byte, dst *uint32) error {
	r := NewReader(p)
	r.Expect(num)
	recipient := r.Field("recipient channel").Uint32()
	if err := r.Err(); err != nil {
		return err
	}
	*dst = recipient
	return nil
}

// Encoders of messages sshtap receives but never sends: its server offers
// no password change, its group exchange client sends the RFC 4419 §5
// request with min and max, and channel data goes out through
// AppendChannelDataHeader / AppendChannelExtendedDataHeader.

func (m *UserAuthPasswdChangeReq) Marshal(b []byte) []byte {
	b = append(b, MsgUserAuthPasswdChangeReq)
	b = AppendString(b, m.Prompt)
	return AppendString(b, m.Language)
}

func (m *KexDHGexRequestOld) Marshal(b []byte) []byte {
	b = append(b, MsgKexDHGexRequestOld)
	return AppendUint32(b, m.N)
}

func (m *ChannelData) Marshal(b []byte) []byte {
	b = AppendChannelDataHeader(b, m.Recipient, len(m.Data))
	return append(b, m.Data...)
}

func (m *ChannelExtendedData) Marshal(b []byte) []byte {
	b = AppendChannelExtendedDataHeader(b, m.Recipient, m.Code, len(m.Data))
	return append(b, m.Data...)
}
